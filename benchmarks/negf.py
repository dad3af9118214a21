"""NEGF benchmarks: field-evaluation timings and direct NEGF-LLG domain-wall runs.

Usage (from the repository root, one thread per process)::

    OMP_NUM_THREADS=1 python benchmarks/negf.py timing [--repeat 5]
    OMP_NUM_THREADS=1 python benchmarks/negf.py dw --W 1 --Lx 64 [--steps 800]
    OMP_NUM_THREADS=1 python benchmarks/negf.py sample --Lx 64 --out /tmp/negf.zarr

``timing`` prints the median wall time of one field evaluation ``h(S)`` of a relaxed-ish
random-tilt domain wall, for several strip sizes ``Lx x W``, for

* ``kwant-mumps`` / ``kwant-sparse``: window term from Kwant scattering states solved
  with ``kwant.solvers.mumps`` / ``kwant.solvers.sparse`` (equilibrium contour by RGF);
* ``rgf``: everything by recursive Green's functions (the default engine);
* ``dense``: :class:`mllg.electrons.negf.DenseNEGF` (numpy inverse of ``z - H - Sigma``),

all with the same tolerance and on the same configuration, the number of energies of
one evaluation (contour + window, after warm-up), the MUMPS/sparse time ratio and the
largest field difference of each engine from ``rgf``. Warm-up calls (panel caches) are
not timed. The dense path is skipped above N = 400 sites.

``sample`` writes NEGF training data (random and Langevin NEGF-LLG walls at several V,
:func:`mllg.negf_sampling.sample_negf`) for the system of the ``dw`` runs and prints the
perpendicular-field statistics per origin and V.

``dw`` relaxes a 180 deg wall at V = 0 and then runs NEGF-LLG at several biases,
fitting the wall centre X(t) (tanh fit of S_z) and reporting the velocity dX/dt and the
precession rate of the wall azimuth. Convention of the driven runs (project decision):
``mllg.dynamics.LLG(..., precession=+1)``, i.e.
``dS/dt = +S x h - alpha S x (S x h)``, the equation of motion of a spin angular
momentum with ``H = -J S . sigma`` (``dS/dt = i[H, S]``); electron plus local spin is
then conserved and a current pushes the wall along the electron flow (V > 0: electrons
flow from left to right). ``--precession -1`` runs the design default instead (same
fields, the wall moves the other way). ``--out FILE.json`` writes X(t), the wall width
and azimuth for every V.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np

from mllg.analysis.domain_wall import domain_wall
from mllg.electrons.negf import strip_negf
from mllg.lattice import Lattice
from mllg.negf_sampling import driven_wall_runs

# Physical system of the domain-wall runs (units of t1 = 1).
SYSTEM = dict(J=3.0, mu=-3.0, kT=0.0, t_lead=2.0, t_coupling=2.0)
K_EASY = 0.01


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.node()} {cpu}, python {sys.version.split()[0]}"


def timing(
    repeat: int, sizes: list[tuple[int, int]], tol: float, only: list[str] | None = None
) -> None:
    rng = np.random.default_rng(1)
    print(f"# NEGF field-evaluation time, median of {repeat} (s); tol={tol}; {machine()}")
    print(
        "| Lx x W | 2N | energies | rgf | kwant-mumps | kwant-sparse | dense "
        "| mumps/sparse | max diff vs rgf |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for lx, w in sizes:
        lat = Lattice("strip", lx, w, periodic_y=False)
        s = domain_wall(lat, width=3.0) + 0.1 * rng.normal(size=(lat.N, 3))
        s /= np.linalg.norm(s, axis=1, keepdims=True)
        engines = {
            "rgf": dict(),
            "kwant-mumps": dict(window="kwant", kwant_solver="mumps"),
            "kwant-sparse": dict(window="kwant", kwant_solver="sparse"),
            "dense": dict(dense=True),
        }
        times, fields, nodes = {}, {}, 0
        for name, kw in engines.items():
            if (name == "dense" and lat.N > 400) or (only and name not in only):
                times[name] = float("nan")
                continue
            neg = strip_negf(lx, w, bias=0.3, tol=tol, **SYSTEM, **kw)
            fields[name] = neg(s)  # warm-up: builds panel caches
            ts = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                neg(s)
                ts.append(time.perf_counter() - t0)
            times[name] = statistics.median(ts)
            if name == "rgf":
                nodes = sum(neg.last_nodes.values())
        ref = fields.get("rgf", next(iter(fields.values())))
        diff = max(np.abs(f - ref).max() for f in fields.values())
        cells = " | ".join(f"{times[k]:.3g}" for k in engines)
        ratio = times["kwant-mumps"] / times["kwant-sparse"]
        print(
            f"| {lx} x {w} | {2 * lat.N} | {nodes} | {cells} | {ratio:.2f} | {diff:.1e} |",
            flush=True,
        )


def dw(
    lx: int,
    w: int,
    steps: int,
    voltages: list[float],
    alpha: float,
    dt: float,
    relax_steps: int = 1000,
    precession: int = 1,
    out: str | None = None,
) -> dict:
    """Relax a wall at V = 0, then run NEGF-LLG at every V; print the velocity table.

    Uses :func:`mllg.negf_sampling.driven_wall_runs`; writes its result (without the
    relaxed spins) to ``out`` as JSON if given and returns it.
    """
    t0 = time.perf_counter()
    neg = strip_negf(lx, w, tol=1e-5, **SYSTEM)
    res = driven_wall_runs(
        neg, voltages, n_steps=steps, every=max(1, steps // 20), alpha=alpha, dt=dt,
        K=K_EASY, relax_steps=relax_steps, relax_alpha=0.5, precession=precession,
    )  # fmt: skip
    print(
        f"# NEGF-LLG wall, {lx} x {w}, {SYSTEM}, K={K_EASY}, alpha={alpha}, dt={dt}, "
        f"precession={precession:+d}, {steps} steps; relaxed at V=0 ({relax_steps} steps, "
        f"alpha=0.5): X={res['relaxed_position']:.4f}, width={res['relaxed_width']:.3f}; "
        f"total {time.perf_counter() - t0:.0f} s; {machine()}"
    )
    print(
        "| V | v = dX/dt (sites/t) | stderr | v/V | X(end) - X(0) | dphi/dt (1/t) "
        "| width | max quad err | s/step |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in res["runs"]:
        v, x, t = r["bias"], r["position"], np.array(r["time"])
        dphi = np.polyfit(t, r["phi"], 1)[0]
        ratio = f"{r['velocity'] / v:+.4f}" if v else "-"
        print(
            f"| {v:+.2f} | {r['velocity']:+.5f} | {r['velocity_err']:.1e} | {ratio} | "
            f"{x[-1] - x[0]:+.3f} | {dphi:+.5f} | {np.mean(r['width']):.3f} | "
            f"{r['max_quad_error']:.1e} | {r['seconds'] / steps:.3f} |",
            flush=True,
        )
    res.pop("relaxed_spins")
    res |= {"Lx": lx, "W": w, **SYSTEM}
    if out:
        with open(out, "w") as fh:
            json.dump(res, fh, indent=1)
    return res


def sample(
    lx: int, w: int, voltages: list[float], n_configs: int, n_thermal: int, steps: int,
    kT_spin: float, out: str | None,
) -> None:  # fmt: skip
    """NEGF training data (random + thermal walls) for the driven system; summary table."""
    from mllg.negf_sampling import sample_negf

    neg = strip_negf(lx, w, tol=1e-6, **SYSTEM)
    thermal = dict(kT_spin=kT_spin, n_steps=steps, K=K_EASY, precession=1)
    t0 = time.perf_counter()
    ds = sample_negf(
        neg, voltages, n_configs, seed=0, path=out, n_thermal=n_thermal, thermal=thermal,
        noise=0.3,
    )  # fmt: skip
    wall_s = time.perf_counter() - t0
    print(
        f"# NEGF sampling, {lx} x {w}, {SYSTEM}, {n_configs} random + {n_thermal} thermal "
        f"walls ({thermal}), V = {voltages}: {ds.sizes['frame']} frames in {wall_s:.0f} s; "
        f"store {out}; {machine()}"
    )
    print("| origin | V | frames | rms h_perp | rms (h(V) - h(0))_perp | max quad err |")
    print("|---|---|---|---|---|---|")
    s_all, h_all = ds["spins"].values, ds["fields"].values
    h_perp = h_all - np.sum(h_all * s_all, axis=-1, keepdims=True) * s_all
    bias, origin = ds["bias"].values, ds["origin"].values
    nv = len(voltages)
    ref = np.repeat(h_perp[bias == 0.0], nv, axis=0) if 0.0 in voltages else None
    for o in (0, 1):
        for v in voltages:
            k = (origin == o) & (bias == v)
            if not k.any():
                continue
            neq = f"{np.sqrt(np.mean((h_perp[k] - ref[k]) ** 2)):.2e}" if ref is not None else "-"
            print(
                f"| {('random', 'thermal')[o]} | {v:+.2f} | {int(k.sum())} | "
                f"{np.sqrt(np.mean(h_perp[k] ** 2)):.3f} | {neq} | "
                f"{ds['quad_error'].values[k].max():.1e} |"
            )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("timing")
    a.add_argument("--repeat", type=int, default=5)
    a.add_argument("--tol", type=float, default=1e-6)
    a.add_argument("--engines", default="", help="comma-separated subset (default: all)")
    a.add_argument(
        "--sizes", default="16x1,32x1,64x1,128x1,16x2,32x2,16x4,32x4",
        help="comma-separated LxxW list",
    )  # fmt: skip
    b = sub.add_parser("dw")
    b.add_argument("--Lx", type=int, default=64)
    b.add_argument("--W", type=int, default=1)
    b.add_argument("--steps", type=int, default=800)
    b.add_argument("--alpha", type=float, default=0.1)
    b.add_argument("--dt", type=float, default=0.2)
    b.add_argument("--voltages", default="0,0.1,-0.1,0.2,-0.2,0.4,-0.4")
    b.add_argument("--relax-steps", type=int, default=1000)
    b.add_argument(
        "--precession", type=int, choices=(1, -1), default=1,
        help="sign p of p S x h in mllg.dynamics.LLG (+1: spin angular momentum, default)",
    )  # fmt: skip
    b.add_argument("--out", default=None, help="write X(t) per V to this JSON file")
    c = sub.add_parser("sample")
    c.add_argument("--Lx", type=int, default=64)
    c.add_argument("--W", type=int, default=1)
    c.add_argument("--voltages", default="0,0.2,-0.2,0.4,-0.4")
    c.add_argument("--configs", type=int, default=8)
    c.add_argument("--thermal", type=int, default=4)
    c.add_argument("--steps", type=int, default=50)
    c.add_argument("--kT-spin", type=float, default=0.01)
    c.add_argument("--out", default=None, help="zarr store to write")
    args = p.parse_args()
    if args.cmd == "timing":
        sizes = [tuple(int(v) for v in item.split("x")) for item in args.sizes.split(",")]
        timing(args.repeat, sizes, args.tol, [e for e in args.engines.split(",") if e])
    elif args.cmd == "sample":
        volts = [float(v) for v in args.voltages.split(",")]
        sample(
            args.Lx, args.W, volts, args.configs, args.thermal, args.steps, args.kT_spin,
            args.out,
        )  # fmt: skip
    else:
        volts = [float(v) for v in args.voltages.split(",")]
        dw(
            args.Lx, args.W, args.steps, volts, args.alpha, args.dt, args.relax_steps,
            args.precession, args.out,
        )  # fmt: skip


if __name__ == "__main__":
    main()
