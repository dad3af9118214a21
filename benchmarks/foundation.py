"""Foundation benchmarks: lattice shells, Hamiltonian updates, ED per frame, LLG step.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/foundation.py
Prints a markdown table (median of repeats) to paste into benchmarks/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np

from mllg import textures as tx
from mllg.dynamics import LLG
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import make_lattice


def median_time(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    rows = []
    for L in (64, 256):
        lat = make_lattice("triangular", L)

        def shells(lat=lat):
            lat._cache.clear()
            lat.shells(4.0)

        rows.append((f"shells r_c=4 (8 shells), triangular {L}x{L}", median_time(shells)))
        t_build = median_time(lambda lat=lat: SdHamiltonian(lat, t1=1, t2=0.2, t3=0.1, J=2), 3)
        rows.append((f"build sparse H (t1,t2,t3), {L}x{L}", t_build))
        ham = SdHamiltonian(lat, J=2)
        s = tx.random_spins(lat.N, 0)
        H = ham.matrix(s)
        rows.append(
            (
                f"update on-site blocks of H, {L}x{L}",
                median_time(lambda ham=ham, H=H, s=s: ham.update(H, s)),
            )
        )
    for L in (12, 18, 24, 30):
        lat = make_lattice("triangular", L)
        ed = ExactDiagonalization(SdHamiltonian(lat, J=2), Ensemble.canonical(0.25))
        s = tx.random_spins(lat.N, 0)
        rows.append(
            (
                f"ED fields+energy, {L}x{L} (dim {2 * lat.N})",
                median_time(lambda ed=ed, s=s: ed.solve(s), 3),
            )
        )
    lat = make_lattice("triangular", 12)
    ed = ExactDiagonalization(SdHamiltonian(lat, J=2), Ensemble.canonical(0.25))
    llg = LLG(ed, alpha=0.5, dt=0.05, kT=0.1, seed=0)
    s = tx.random_spins(lat.N, 0)
    rows.append(("ED-LLG midpoint step, 12x12", median_time(lambda: llg.step(s), 5)))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, numpy {np.__version__}"
    )
    print("| operation | median time (s) |\n| --- | --- |")
    for name, t in rows:
        print(f"| {name} | {t:.4g} |")


if __name__ == "__main__":
    main()
