"""KPM exchange fields: accuracy vs moments / colour distance, and scaling against ED.

Run (single-threaded BLAS, as reported in RESULTS.md)::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/kpm.py [flags]

Without flags every part runs in one process; flags select parts: ``--accuracy`` (a),
``--triangular`` (a'), ``--auto`` (e), ``--scaling`` (b), ``--slope`` (c), ``--ratio48``
(d); ``--quick`` shortens the lists.

(a) perpendicular-field relative RMSE of KPM vs ED *at the same kT and ensemble*
    (canonical): vs M with exact probing (one colour per site: pure Chebyshev
    truncation) for the Dirichlet, Jackson and Lorentz kernels on 12x12 double exchange,
    and vs colour distance d (with the in-solve estimate) on the four 30x30
    double-exchange reference snapshots (t=1, J=6, N_e=873).
(a') 24x24 triangular (f=1/4, J=2): decay of |rho_ij| with distance (ED), error vs d and
    its estimate, mu error, for a perturbed tetrahedral state, random spins and a
    Langevin-sampled state near the tetrahedral order; d=12 with grand canonical mu_ED,
    M=1000, random phases and the Lorentz kernel (the candidate causes).
(e) the colouring ``distance="auto"`` picks vs kT on 48x48 for both systems.
(b) time per field evaluation of ED and KPM (defaults) on random square-lattice
    double-exchange states from 12x12 to 128x128 (median of repeats; ED stops when one
    evaluation would exceed ED_LIMIT_S, estimated from the N^3 law of the previous size:
    marked as not run, nothing is extrapolated into the table), the log-log slope of KPM,
    the crossover size and the KPM/ED ratio at 48x48 with the KPM error there.
(c) KPM time at a fixed colouring (d=12, 144 colours) on L = 24..120: the N dependence.
(d) 48x48 KPM (median of 3) and ED back to back.
(f) ``--crossover``: ED vs KPM time and KPM error over L = 24..48 and kT = 0.01..0.2
    (grand canonical double exchange): where each exact solver is the faster one.

rel-RMSE_perp = rms(h_perp^KPM - h_perp^ED) / rms(h_perp^ED), h_perp = h - (h.S) S.
"""

from __future__ import annotations

import os
import platform
import sys
import time
import warnings

import numpy as np

from mllg.electrons.base import Ensemble
from mllg.electrons.ed import ExactDiagonalization
from mllg.electrons.kpm import KernelPolynomial, KPMAccuracyWarning
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import make_lattice
from mllg.textures import normalize, random_spins, tetrahedral

REF = "/work/shared/reference/double_exchange_square_30x30/de_square_30x30_snapshots.npz"
KT = 0.05
ED_LIMIT_S = 900.0
QUICK = "--quick" in sys.argv


def perp(h: np.ndarray, s: np.ndarray) -> np.ndarray:
    return h - np.sum(h * s, axis=-1, keepdims=True) * s


def rel_perp(h: np.ndarray, ref: np.ndarray, s: np.ndarray) -> float:
    return float(np.sqrt(np.mean((perp(h, s) - perp(ref, s)) ** 2) / np.mean(perp(ref, s) ** 2)))


def timed(fn, repeats: int):
    out, ts = None, []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return out, float(np.median(ts))


def kpm(ham, ens, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KPMAccuracyWarning)
        return KernelPolynomial(ham, ens, **kw)


def solve_quiet(solver, spins):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KPMAccuracyWarning)
        return solver.solve(spins)


def header() -> None:
    print("# KPM benchmark")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"cpus={os.cpu_count()}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}"
    )
    print(time.strftime("run at %Y-%m-%d %H:%M:%S UTC", time.gmtime()))


def accuracy_tables() -> None:
    ref = np.load(REF)
    spins = ref["spins"]
    lat = make_lattice("square", 30)
    ham = SdHamiltonian(lat, J=6.0)
    ens = Ensemble.canonical(873 / 1800, KT)
    ed, t_ed = timed(lambda: ExactDiagonalization(ham, ens).solve(spins), 1)
    print(
        f"\n## (a) accuracy, 30x30 double exchange (J=6, N_e=873, canonical, kT={KT}); "
        f"ED reference at the same kT ({t_ed / 4:.1f} s per snapshot)"
    )
    frames = range(4)
    print(
        f"\n### vs M: truncation only (exact probing, one colour per site), 12x12 square "
        f"J=6, f=0.485, random spins, kT={KT}, ED same kT; Dirichlet vs Jackson kernel"
    )
    print("| M | pi*a/M | dirichlet | jackson | lorentz (lambda=4) | bound 2|J|eps (dirichlet) |")
    print("|---|---|---|---|---|---|")
    l12 = make_lattice("square", 12)
    h12 = SdHamiltonian(l12, J=6.0)
    s12 = random_spins(l12.N, 3)
    e12 = ExactDiagonalization(h12, ens).solve(s12)
    for M in [100, 200, 300, 400, 600, 800, 1000]:
        errs, bound = [], None
        for kernel in ("dirichlet", "jackson", "lorentz"):
            solver = kpm(h12, ens, moments=M, distance=None, kernel=kernel)
            errs.append(rel_perp(solve_quiet(solver, s12).fields, e12.fields, s12))
            bound = solver.info["field_error_bound"] if bound is None else bound
        print(
            f"| {M} | {np.pi * solver.a / M:.3f} | {errs[0]:.2e} | {errs[1]:.2e} | "
            f"{errs[2]:.2e} | {bound:.1e} |",
            flush=True,
        )
    frames = range(4)
    print(
        "\n### vs colour distance d (default M, Dirichlet); in brackets the in-solve "
        "estimate `info['probing_error_rel']` (16 check sites)"
    )
    print("| d | colours | shortest | M | s/eval | snap0 | snap1 | snap2 | snap3 | max |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for d in [8, 12, "auto"] if QUICK else [4, 6, 8, 12, "auto", 21.2]:
        solver = kpm(ham, ens, distance=d)
        errs, ests, ts = [], [], []
        for f in frames:
            r, t = timed(lambda f=f, solver=solver: solve_quiet(solver, spins[f]), 1)
            errs.append(rel_perp(r.fields, ed.fields[f], spins[f]))
            ests.append(solver.info["probing_error_rel"])
            ts.append(t)
        row = " | ".join(f"{e:.2e} ({q:.1e})" for e, q in zip(errs, ests))
        label = f"auto ({solver.colouring.shortest:.1f})" if d == "auto" else d
        print(
            f"| {label} | {solver.colouring.n_colours} | {solver.colouring.shortest:.2f} | "
            f"{solver.moments} | {np.median(ts):.1f} | {row} | {max(errs):.2e} |",
            flush=True,
        )


def rho_decay(lattice, rho_full: np.ndarray, r_max: int) -> list[float]:
    """rms over site pairs of the Frobenius norm of the 2x2 block rho_ij, in bins [r, r+1)."""
    n = lattice.N
    blocks = np.sqrt((np.abs(rho_full.reshape(n, 2, n, 2)) ** 2).sum(axis=(1, 3)))
    a1, a2 = lattice.primitive
    dx = lattice.x[:, None] - lattice.x[None, :]
    dy = lattice.y[:, None] - lattice.y[None, :]
    dist = np.full(dx.shape, np.inf)
    for sx in (-1, 0, 1):
        for sy in (-1, 0, 1):
            r = (dx + sx * lattice.Lx)[..., None] * a1 + (dy + sy * lattice.Ly)[..., None] * a2
            dist = np.minimum(dist, np.hypot(r[..., 0], r[..., 1]))
    return [
        float(np.sqrt(np.mean(blocks[(dist >= r) & (dist < r + 1)] ** 2))) for r in range(r_max + 1)
    ]


def triangular_tables() -> None:
    """24x24 triangular, f=1/4, J=2: states, decay of rho, error vs d, causes, defaults."""
    from mllg.dynamics import LLG
    from mllg.electrons.base import occupations

    print(f"\n## (a') accuracy, 24x24 triangular (J=2, f=1/4, canonical, kT={KT}), ED same kT")
    lt = make_lattice("triangular", 24)
    ham_t = SdHamiltonian(lt, J=2.0)
    ens_t = Ensemble.canonical(0.25, KT)
    ed_t = ExactDiagonalization(ham_t, ens_t)
    rng = np.random.default_rng(7)
    states = {
        "tetrahedral + 0.3 noise": normalize(tetrahedral(lt) + 0.3 * rng.normal(size=(lt.N, 3))),
        "random": random_spins(lt.N, 7),
    }
    # Langevin-sampled near the ordered state: ED-LLG from the tetrahedral state, bath kT
    n_lv = 4 if QUICK else 20
    llg = LLG(ed_t, alpha=0.5, dt=0.1, kT=KT, seed=5)
    t0 = time.perf_counter()
    frames = list(llg.run(tetrahedral(lt), n_lv, every=n_lv, energy=False))
    states[f"Langevin from tetrahedral (ED-LLG, bath kT={KT}, t={0.1 * n_lv:g})"] = frames[-1].spins
    print(
        f"(Langevin state: {n_lv} ED-LLG steps, alpha=0.5, dt=0.1, "
        f"{time.perf_counter() - t0:.0f} s)"
    )
    refs = {}
    print(
        "\n### decay of the density matrix: rms over pairs of ||rho_ij|| (2x2 block, "
        "Frobenius) in distance bins [r, r+1), ED"
    )
    r_max = 12
    print(
        "| state | mu (ED) | min |eps - mu| | perp rms (ED) | "
        + " | ".join(f"r={r}" for r in range(r_max + 1))
        + " |"
    )
    print("|---|---|---|---|" + "---|" * (r_max + 1))
    for name, s in states.items():
        h = ham_t.dense(s[None])[0]
        e, u = np.linalg.eigh(h)
        f_occ, mu, _ = occupations(e, ens_t)
        rho_full = (u * f_occ) @ u.conj().T
        ref_t = ed_t.solve(s)
        refs[name] = ref_t
        prms = np.sqrt(np.mean(perp(ref_t.fields, s) ** 2))
        dec = rho_decay(lt, rho_full, r_max)
        print(
            f"| {name} | {mu:.4f} | {np.min(np.abs(e - mu)):.3f} | {prms:.4f} | "
            + " | ".join(f"{v:.1e}" for v in dec)
            + " |",
            flush=True,
        )

    print(
        "\n### vs colour distance d (default M); est = in-solve estimate "
        "`info['probing_error_rel']`, mu error = mu_KPM - mu_ED"
    )
    print("| state | d | colours | M | rel-RMSE perp | est | mu error | s/eval | ED s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, s in states.items():
        _, t_e = timed(lambda s=s: ed_t.solve(s), 1)
        for d in [12, "auto"] if QUICK else [8, 12, 13.8, "auto"]:
            solver = kpm(ham_t, ens_t, distance=d)
            r, t = timed(lambda s=s, solver=solver: solve_quiet(solver, s), 1)
            err = rel_perp(r.fields, refs[name].fields, s)
            label = "auto (None)" if d == "auto" and solver.distance is None else d
            print(
                f"| {name} | {label} | {solver.colouring.n_colours} | {solver.moments} | "
                f"{err:.2e} | {solver.info['probing_error_rel']:.1e} | "
                f"{r.mu[0] - refs[name].mu[0]:+.1e} | {t:.1f} | {t_e:.1f} |",
                flush=True,
            )

    print("\n### causes at d=12 (144 colours): canonical mu, kernel/M and phases ruled out")
    print(
        "| state | default (canonical) | grand canonical at mu_ED | M=1000 | random phases "
        "| lorentz kernel |"
    )
    print("|---|---|---|---|---|---|")
    for name, s in list(states.items())[:2]:
        ref_t = refs[name]
        gc = Ensemble.grand_canonical(float(ref_t.mu[0]), KT)
        errs = []
        for e, kw in (
            (ens_t, {}),
            (gc, {}),
            (ens_t, {"moments": 1000}),
            (ens_t, {"random_phases": True, "seed": 1}),
            (ens_t, {"kernel": "lorentz"}),
        ):
            solver = kpm(ham_t, e, distance=12, **kw)
            errs.append(rel_perp(solve_quiet(solver, s).fields, ref_t.fields, s))
        print(f"| {name} | " + " | ".join(f"{v:.2e}" for v in errs) + " |", flush=True)


def auto_table() -> None:
    """The auto colouring vs kT on 48x48 (construction only: reference-state estimates)."""
    print(
        "\n## (e) `distance='auto'`: colouring chosen vs kT on 48x48 (random reference state, "
        "target 5e-3); est = estimated rel-RMSE perp of the chosen and the next smaller "
        "colouring"
    )
    print(
        "| system | kT | M | chosen colours | shortest | est (chosen) | next smaller: colours, "
        "est | setup s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    systems = [
        ("square DE J=6 f=0.485", "square", 6.0, 0.485),
        ("triangular J=2 f=1/4", "triangular", 2.0, 0.25),
    ]
    for label, kind, J, f in systems:
        lat = make_lattice(kind, 48)
        ham = SdHamiltonian(lat, J=J)
        for kT in [0.2, 0.05] if QUICK else [0.2, 0.1, 0.05]:
            solver, t = timed(lambda ham=ham, kT=kT, f=f: kpm(ham, Ensemble.canonical(f, kT)), 1)
            tab = solver.auto_table
            n = solver.colouring.n_colours
            idx = [i for i, row in enumerate(tab) if row[0] == n]
            est = f"{tab[idx[0]][2]:.1e}" if idx else "exact"
            k = (idx[0] if idx else len(tab)) - 1
            prev = f"{tab[k][0]}, {tab[k][2]:.1e}" if k >= 0 else "-"
            print(
                f"| {label} | {kT} | {solver.moments} | {n} | {solver.colouring.shortest:.2f} | "
                f"{est} | {prev} | {t:.1f} |",
                flush=True,
            )


def scaling_table() -> None:
    sizes = [12, 16, 24, 32] if QUICK else [12, 16, 24, 32, 48, 64, 96, 128]
    ens = Ensemble.canonical(0.485, KT)
    print(
        f"\n## (b) time per field evaluation, square double exchange (J=6, f=0.485, "
        f"kT={KT}, canonical), random spins, KPM defaults (distance='auto', M auto)"
    )
    print(
        "| L | N | ED s | KPM s | colours | M | KPM/ED speedup | KPM rel-RMSE perp vs ED | "
        "est | setup s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    t_ed_prev, n_prev = None, None
    for L in sizes:
        lat = make_lattice("square", L)
        ham = SdHamiltonian(lat, J=6.0)
        s = random_spins(lat.N, L)
        solver, t_setup = timed(lambda ham=ham: kpm(ham, ens), 1)
        reps = 3 if lat.N <= 2500 else 1
        rk, t_k = timed(lambda s=s, solver=solver: solve_quiet(solver, s), reps)
        t_e, err = float("nan"), float("nan")
        predicted = None if t_ed_prev is None else t_ed_prev * (lat.N / n_prev) ** 3
        if predicted is None or predicted < ED_LIMIT_S:
            re, t_e = timed(
                lambda ham=ham, s=s: ExactDiagonalization(ham, ens).solve(s), 2 if L <= 32 else 1
            )
            err = rel_perp(rk.fields, re.fields, s)
            t_ed_prev, n_prev = t_e, lat.N
        ed_txt = f"{t_e:.2f}" if np.isfinite(t_e) else f"not run (N^3 estimate > {ED_LIMIT_S:.0f})"
        ratio = f"{t_e / t_k:.2f}" if np.isfinite(t_e) else "-"
        err_txt = f"{err:.2e}" if np.isfinite(err) else "-"
        print(
            f"| {L} | {lat.N} | {ed_txt} | {t_k:.2f} | {solver.colouring.n_colours} | "
            f"{solver.moments} | {ratio} | {err_txt} | "
            f"{solver.info['probing_error_rel']:.1e} | {t_setup:.1f} |",
            flush=True,
        )
        rows.append((L, lat.N, t_e, t_k, solver.colouring.n_colours))
    n = np.array([r[1] for r in rows], float)
    tk = np.array([r[3] for r in rows])
    big = n >= 1000
    slope = np.polyfit(np.log(n[big]), np.log(tk[big]), 1)[0]
    cols = np.array([r[4] for r in rows], float)
    slope_c = np.polyfit(np.log(n[big]), np.log(tk[big] / cols[big]), 1)[0]
    print(
        f"\nKPM log-log slope of time vs N (N >= 1000): {slope:.3f}; "
        f"per colour (time / n_colours): {slope_c:.3f}"
    )
    ed_rows = [r for r in rows if np.isfinite(r[2])]
    cross = [r[0] for r in ed_rows if r[3] < r[2]]
    print(f"crossover: KPM faster than ED from L = {cross[0] if cross else 'none measured'}")
    for r in ed_rows:
        if r[0] == 48:
            print(f"KPM/ED speedup at 48x48: {r[2] / r[3]:.2f}")
    small = [r for r in ed_rows if r[0] < (cross[0] if cross else 10**9)]
    if cross and small:
        # log-log interpolation of t_KPM / t_ED between the last ED-faster and first
        # KPM-faster sizes
        lo = small[-1]
        hi = next(r for r in ed_rows if r[0] == cross[0])
        y0, y1 = np.log(lo[3] / lo[2]), np.log(hi[3] / hi[2])
        n_x = np.exp(np.log(lo[1]) + (np.log(hi[1]) - np.log(lo[1])) * y0 / (y0 - y1))
        print(
            f"crossover (log-log interpolation of t_KPM/t_ED = 1): N ~ {n_x:.0f} "
            f"(L ~ {np.sqrt(n_x):.0f})"
        )


def kpm_slope_table() -> None:
    """KPM only, sizes that are multiples of 12: the same 144-colour 12x12 superlattice on
    every size, so time/N isolates the linear scaling from the colour count."""
    sizes = [24, 48, 72] if QUICK else [24, 48, 72, 96, 120]
    ens = Ensemble.canonical(0.485, KT)
    print(
        f"\n## (c) KPM time per field evaluation at fixed colouring (144 colours), "
        f"square J=6, f=0.485, kT={KT}, d=12, M auto (median of repeats)"
    )
    print("| L | N | KPM s | repeats | s per site (x1e3) |")
    print("|---|---|---|---|---|")
    n, t = [], []
    for L in sizes:
        lat = make_lattice("square", L)
        solver = kpm(SdHamiltonian(lat, J=6.0), ens, distance=12)
        s = random_spins(lat.N, L)
        reps = 3 if L <= 72 else 2
        _, tk = timed(lambda s=s, solver=solver: solve_quiet(solver, s), reps)
        assert solver.colouring.n_colours == 144
        print(f"| {L} | {lat.N} | {tk:.2f} | {reps} | {1e3 * tk / lat.N:.3f} |", flush=True)
        n.append(lat.N)
        t.append(tk)
    slope = np.polyfit(np.log(n), np.log(t), 1)[0]
    print(f"\nKPM log-log slope (fixed 144 colours, N = {n[0]}..{n[-1]}): {slope:.3f}")


def estimator_check() -> None:
    """In-solve probing-error estimate vs the true error on 30x30 snapshot 1 (errors
    concentrated on a few sites) and on the triangular tetrahedral state."""
    ref = np.load(REF)
    lat = make_lattice("square", 30)
    ham = SdHamiltonian(lat, J=6.0)
    ens = Ensemble.canonical(873 / 1800, KT)
    print("\n## (f) probing-error estimate (16 stratified check sites) vs true rel-RMSE perp")
    print("| system | d | colours | true | estimate |")
    print("|---|---|---|---|---|")
    s = ref["spins"][1]
    ed = ExactDiagonalization(ham, ens).solve(s)
    for d in (6, 8, 12):
        solver = kpm(ham, ens, distance=d)
        r = solve_quiet(solver, s)
        print(
            f"| 30x30 DE snapshot 1 | {d} | {solver.colouring.n_colours} | "
            f"{rel_perp(r.fields, ed.fields, s):.2e} | "
            f"{solver.info['probing_error_rel']:.2e} |",
            flush=True,
        )
    lt = make_lattice("triangular", 24)
    ham_t = SdHamiltonian(lt, J=2.0)
    ens_t = Ensemble.canonical(0.25, KT)
    rng = np.random.default_rng(7)
    s = normalize(tetrahedral(lt) + 0.3 * rng.normal(size=(lt.N, 3)))
    ed = ExactDiagonalization(ham_t, ens_t).solve(s)
    for d in (8, 12):
        solver = kpm(ham_t, ens_t, distance=d)
        r = solve_quiet(solver, s)
        print(
            f"| 24x24 triangular tetrahedral + 0.3 noise | {d} | {solver.colouring.n_colours} | "
            f"{rel_perp(r.fields, ed.fields, s):.2e} | "
            f"{solver.info['probing_error_rel']:.2e} |",
            flush=True,
        )


def ratio48() -> None:
    """KPM (median of 3) and ED (one run) back to back on one random 48x48 state."""
    lat = make_lattice("square", 48)
    ham = SdHamiltonian(lat, J=6.0)
    s = random_spins(lat.N, 48)
    ens = Ensemble.canonical(0.485, KT)
    solver = kpm(ham, ens)
    r, tk = timed(lambda: solve_quiet(solver, s), 3)
    e, te = timed(lambda: ExactDiagonalization(ham, ens).solve(s), 1)
    print(
        f"\n## (d) 48x48 back to back: KPM {tk:.2f} s (median of 3, "
        f"{solver.colouring.n_colours} colours), ED {te:.1f} s, "
        f"ratio {te / tk:.1f}, rel-RMSE perp {rel_perp(r.fields, e.fields, s):.2e}"
    )


def crossover_table() -> None:
    """(f) ED vs KPM over lattice size and electron temperature: the faster exact solver.

    Square double exchange (J = 6), grand canonical at mu = -4.023 (the filling-matched
    mu of n = 0.97 at kT = 0.01, as the labels of the double-exchange repro), one random
    state per size. ED is timed once per size (its cost does not depend on kT); KPM at
    its defaults (automatic colouring and moments, the colouring choice included in its
    time, as in a label job) once per (size, kT), with its
    perpendicular-field error against ED at the same kT.
    """
    sizes = [24, 30] if "--quick" in sys.argv else [24, 30, 36, 48]
    kts = [0.01, 0.05, 0.1, 0.2]
    print("\n## (f) ED vs KPM crossover, square DE J = 6, grand canonical mu = -4.023")
    print("| L | 2N | kT | ED (s) | KPM (s) | KPM colours | KPM error vs ED | faster |")
    print("|---|---|---|---|---|---|---|---|")
    for size in sizes:
        lat = make_lattice("square", size)
        ham = SdHamiltonian(lat, J=6.0)
        s = random_spins(lat.N, size)
        eds = {}
        t_ed = None
        for kT in kts:
            ens = Ensemble.grand_canonical(-4.023, kT)
            t0 = time.perf_counter()
            eds[kT] = ExactDiagonalization(ham, ens).solve(s)
            t_ed = time.perf_counter() - t0 if t_ed is None else t_ed
            t0 = time.perf_counter()
            solver = kpm(ham, ens)
            r = solve_quiet(solver, s)
            t_k = time.perf_counter() - t0
            err = rel_perp(r.fields, eds[kT].fields, s)
            print(
                f"| {size} | {2 * lat.N} | {kT} | {t_ed:.2f} | {t_k:.2f} | "
                f"{solver.colouring.n_colours} | {err:.2e} | {'ED' if t_ed <= t_k else 'KPM'} |",
                flush=True,
            )


if __name__ == "__main__":
    parts = {
        "--accuracy": accuracy_tables,
        "--triangular": triangular_tables,
        "--auto": auto_table,
        "--scaling": scaling_table,
        "--slope": kpm_slope_table,
        "--ratio48": ratio48,
        "--estimator": estimator_check,
        "--crossover": crossover_table,
    }
    chosen = [fn for flag, fn in parts.items() if flag in sys.argv]
    header()
    for fn in chosen or [
        accuracy_tables,
        triangular_tables,
        auto_table,
        scaling_table,
        kpm_slope_table,
    ]:
        fn()
