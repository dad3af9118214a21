"""Committee uncertainty of independently seeded BP models on familiar and unfamiliar states.

Loads the exported models given on the command line (same system, different seeds),
and prints the mean per-site committee spread
``sigma_i = sqrt(mean_m |h_perp^(m) - <h_perp>|^2)`` (units of t) on fresh configurations
like the training data (ordered state + noise) and unlike it (other orders, random spins).

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/descriptors_committee.py --system 120 \\
        results/triangular_120/train/eq/seed0/model \\
        results/triangular_120/train/eq/seed1/model
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mllg.nn import Committee, load_model
from mllg.textures import ferromagnet, normalize, random_spins, tetrahedral, three_sublattice_120

ORDERS = {"120": three_sublattice_120, "tetra": tetrahedral, "fm": ferromagnet}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("models", nargs="+", type=Path)
    p.add_argument("--system", choices=["120", "tetra"], default="120")
    p.add_argument("--frames", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(1)
    members = [load_model(m) for m in args.models]
    lat = members[0].lattice
    com = Committee(members)
    rng = np.random.default_rng(123)

    def noisy(order, lo=0.05, hi=0.7):
        base = ORDERS[order](lat)
        return np.stack(
            [
                normalize(base + rng.uniform(lo, hi) * rng.normal(size=base.shape))
                for _ in range(args.frames)
            ]
        )

    other = "tetra" if args.system == "120" else "120"
    sets = {
        f"{args.system} + noise (like training)": noisy(args.system),
        f"{other} + noise 0.2 (never seen)": noisy(other, 0.2, 0.2),
        "ferromagnet + noise 0.2 (never seen)": noisy("fm", 0.2, 0.2),
        "random spins (quench start)": np.stack(
            [random_spins(lat.N, rng) for _ in range(args.frames)]
        ),
    }
    out = {name: float(com.predict(s)["sigma"].mean()) for name, s in sets.items()}
    for name, v in out.items():
        print(f"| {name} | {v:.2e} |")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
