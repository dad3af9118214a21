"""Locality floor of ED exchange fields vs cutoff radius and electronic temperature.

For a configuration ``S`` and a centre site ``c``, the spins farther than ``r`` from
``c`` are replaced by those of an independent configuration of the same kind and the
ED field at ``c`` is recomputed. The relative rms change of ``h_perp`` at ``c``,
``delta(r) = sqrt(<|dh_perp(c)|^2>) / rms(h_perp)``, measures how much of the field is
decided outside the radius ``r``; an ``r``-local model (any descriptor, any network)
cannot beat about ``delta(r) / sqrt(2)`` on such data. Measured for the kinds of
configurations an LLG run visits: ordered states with noise (``sigma``) and random
(quench) states.

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/descriptors_locality.py --system tetra
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/descriptors_locality.py --system de \
        --mu -4.023 --kTs 0.01 0.2 --kinds 0.5 random   # grand canonical labels
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time

import numpy as np

from mllg.analysis.locality import field_change
from mllg.electrons.base import Ensemble
from mllg.electrons.ed import ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import make_lattice
from mllg.textures import normalize, random_spins, tetrahedral, three_sublattice_120

SYSTEMS = {
    # name: (lattice, J, filling, ordered texture)
    "tetra": ("triangular", 2.0, 0.25, tetrahedral),
    "120": ("triangular", 6.0, 0.5, three_sublattice_120),
    "de": ("square", 6.0, 0.485, None),
}


def configs(lat, texture, kind: str, rng) -> np.ndarray:
    """One configuration: ``random`` or ordered state + Gaussian noise of width ``kind``."""
    if kind == "random":
        return random_spins(lat.N, rng)
    base = texture(lat) if texture is not None else np.tile([0.0, 0.0, 1.0], (lat.N, 1))
    return normalize(base + float(kind) * rng.normal(size=base.shape))


def floor(lat, ed, texture, kind, radii, n_samples, rng) -> dict:
    """``delta(r)`` for each radius on generated configurations (see module docstring)."""
    pairs = (
        (configs(lat, texture, kind, rng), configs(lat, texture, kind, rng))
        for _ in range(n_samples)
    )
    return field_change(lat, ed, pairs, radii, rng)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--system", choices=list(SYSTEMS), default="tetra")
    p.add_argument("--L", type=int, default=16)
    p.add_argument("--kTs", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    p.add_argument("--kinds", nargs="+", default=["0.2", "0.5", "random"])
    p.add_argument("--radii", type=float, nargs="+", default=[2, 3, 4, 5, 6])
    p.add_argument("--samples", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--mu", type=float, default=None, help="grand canonical at this mu (default: canonical)"
    )
    args = p.parse_args()
    kind_l, J, filling, texture = SYSTEMS[args.system]
    lat = make_lattice(kind_l, args.L, args.L)
    res = {"system": args.system, "L": args.L, "J": J, "filling": filling, "mu": args.mu}
    res["floor"] = {}
    t0 = time.perf_counter()
    for kT in args.kTs:
        ens = (
            Ensemble.canonical(filling, kT)
            if args.mu is None
            else Ensemble.grand_canonical(args.mu, kT)
        )
        ed = ExactDiagonalization(SdHamiltonian(lat, J=J), ens)
        for kind in args.kinds:
            rng = np.random.default_rng(args.seed)
            f = floor(lat, ed, texture, kind, args.radii, args.samples, rng)
            res["floor"][f"kT={kT} {kind}"] = f
            print(f"kT={kT} configs={kind}:", json.dumps(f), flush=True)
    res["wall_s"] = time.perf_counter() - t0
    print(json.dumps(res))


if __name__ == "__main__":
    main()
