"""Speed-up of ML-LLG over the exact-field LLG of every system, measured in one run.

For each system of a finished workflow run (``results/<system>/train/...``) the
script times full LLG steps (the production integrator of ``simulate``: semi-implicit
midpoint, Langevin noise, the model's classical terms) with the exact field provider
and with the trained ML model on the same lattice and the same initial state, back to
back in one process:

* equilibrium systems: the study's exact solver (``sample.solver``, ED) on the training
  lattice, and KPM on a larger lattice (``--kpm-L``; ED is out of reach there);
* the driven strip: the NEGF solver at the largest bias on the training strip against
  the V = 0 model plus the model of that bias.

Usage (from the repository root, after ``snakemake --cores 2 --config scale=repro``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/speedups.py --scale repro

It prints a Markdown table (seconds per LLG step, median of ``--repeats`` steps after
one warm-up step, and the ratio exact / ML) and writes it to
``results/benchmarks/speedups.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import yaml

from mllg import textures
from mllg.config import load_system_files, selected_systems, validate_config, voltage_tag
from mllg.providers import ml_provider
from mllg.workflow import System, build_model

REPO = Path(__file__).resolve().parents[1]


def step_time(provider, system: dict, lattice, spins: np.ndarray, repeats: int) -> float:
    """Median wall time of one production LLG step (after one warm-up step), seconds."""
    llg = System.of(system).llg(provider, seed=0)
    times = []
    for k in range(repeats + 1):
        t0 = time.perf_counter()
        for frame in llg.run(spins, 1, every=1, energy=False):
            spins = frame.spins
        if k:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def kpm_solver(system: dict, size: int):
    """KPM provider (default moments and probing) of an equilibrium system on L x L."""
    from mllg.electrons.kpm import KernelPolynomial

    keys = ("lattice", "t1", "t2", "t3", "J", "filling", "mu", "kT")
    _, ham, ens = build_model({**{k: system["model"][k] for k in keys}, "L": size})
    return KernelPolynomial(ham, ens)


def rows_of(name: str, system: dict, results: Path, kpm_size: int, repeats: int) -> list[dict]:
    """Timing rows of one system."""
    train = results / name / "train"
    rows = []
    sys_ = System.of(system)
    if sys_.kind == "driven":
        volts = sorted(float(v) for v in system["sample"]["voltages"])
        bias = max(volts, key=abs)
        tag = voltage_tag(bias)
        size = int(system["sample"]["L"])
        exact = sys_.exact_solver(size, bias=bias)
        lat = exact.hamiltonian.lattice
        base = [train / voltage_tag(0.0) / "seed0" / "model"]
        ml = ml_provider([train / tag / "seed0" / "model"], lat, base)
        spins = sys_.speed_probe(lat)
        cases = [(f"NEGF, V = {bias:+.2f}", exact, lat, spins)]
    else:
        size = int(system["sample"]["L"])
        exact = sys_.exact_solver(size)
        lat = exact.hamiltonian.lattice
        ml = ml_provider([train / "eq" / "seed0" / "model"], lat)
        spins = textures.random_spins(lat.N, np.random.default_rng(1))
        cases = [(system["sample"]["solver"].upper(), exact, lat, spins)]
        big = sys_.lattice(kpm_size)
        cases.append(("KPM", kpm_solver(system, kpm_size), big, None))
    for solver, exact_provider, lattice, s0 in cases:
        s0 = s0 if s0 is not None else textures.random_spins(lattice.N, np.random.default_rng(1))
        ml_lat = ml if lattice is lat else ml_provider([train / "eq" / "seed0" / "model"], lattice)
        t_ml = step_time(ml_lat, system, lattice, s0, repeats)
        t_exact = step_time(exact_provider, system, lattice, s0, repeats)
        rows.append(
            {
                "system": name,
                "lattice": f"{lattice.Lx}x{lattice.Ly}",
                "sites": int(lattice.N),
                "exact_solver": solver,
                "exact_s_per_step": t_exact,
                "ml_s_per_step": t_ml,
                "speedup": t_exact / t_ml,
            }
        )
        print(
            f"| {name} | {rows[-1]['lattice']} | {solver} | {t_exact:.4g} | {t_ml:.4g} "
            f"| {t_exact / t_ml:.0f} |",
            flush=True,
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="repro", choices=["demo", "repro", "paper"])
    ap.add_argument("--results", default=str(REPO / "results"))
    ap.add_argument("--systems", nargs="*", default=None, help="default: every trained system")
    ap.add_argument("--kpm-L", type=int, default=48, help="lattice of the KPM comparison")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    results = Path(args.results)
    user = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg = load_system_files(REPO / "config")
    cfg.update({**user, "system": "all", "scale": args.scale})
    validate_config(cfg, REPO / "workflow" / "schemas" / "config.schema.yaml")
    names = args.systems or [n for n in selected_systems(cfg) if (results / n / "train").exists()]
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, load {os.getloadavg()[0]:.1f}"
    )
    print("| system | lattice | exact solver | exact s/step | ML s/step | speed-up |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name in names:
        rows += rows_of(name, cfg["systems"][name], results, args.kpm_L, args.repeats)
    out = results / "benchmarks" / "speedups.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"scale": args.scale, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
