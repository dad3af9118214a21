"""Double-exchange quench textures: our ML-LLG frames against the published 100x100 ones.

The published frames (``../shared/reference/double_exchange_square_100x100_quench``,
Zhang & Chern, PRL 127, 146401 (2021)) and the frames of our trajectories
(``results/square_double_exchange/simulate/eq/seed*.zarr``) go through the same
observables of :mod:`mllg.analysis.order`: nearest-neighbour ``S_i . S_j``, the
staggered magnetization ``|sum_i (-1)^(x+y) S_i| / N``, the local-order fractions
(FM / AF / neither, threshold 1/2) and the Neel domain size around M.

Usage::

    .venv/bin/python benchmarks/reference_quench.py [--results results]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mllg.analysis.order import nn_correlation, order_fractions, quench_series
from mllg.io import lattice_from_attrs, open_store
from mllg.lattice import make_lattice

REPO = Path(__file__).resolve().parents[1]
REFERENCE = (
    REPO.parent
    / "shared"
    / "reference"
    / "double_exchange_square_100x100_quench"
    / "de_square_100x100_quench_frames.npz"
)


def observables(lattice, spins: np.ndarray) -> dict[str, float]:
    """Texture observables of one frame (N, 3), see the module docstring."""
    stag = (-1.0) ** (lattice.x + lattice.y)
    frac = order_fractions(lattice, spins)
    series = quench_series(lattice, spins[None], "ferro_af")
    return {
        "nn": float(nn_correlation(lattice, spins).mean()),
        "m_stag": float(np.linalg.norm((stag[:, None] * spins).mean(0))),
        "ferro": float(frac["ferro"]),
        "antiferro": float(frac["antiferro"]),
        "other": float(frac["other"]),
        "neel_length": float(series["length"][0]),
    }


def row(label: str, obs: dict[str, float]) -> str:
    return (
        f"| {label} | {obs['nn']:.3f} | {obs['m_stag']:.3f} | {obs['ferro']:.3f} | "
        f"{obs['antiferro']:.3f} | {obs['other']:.3f} | {obs['neel_length']:.1f} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(REPO / "results"))
    args = ap.parse_args()
    print("| frames | nn S.S | \\|M_stag\\| | FM | AF | neither | Neel length |")
    print("|---|---|---|---|---|---|---|")
    ref = np.load(REFERENCE)
    lat = make_lattice("square", int(ref["L"]))
    # reference site index i = x + 100 y, the same order as mllg's square lattice
    assert np.array_equal(ref["x"], lat.x) and np.array_equal(ref["y"], lat.y)
    for k, label in enumerate(ref["frame_label"]):
        print(row(f"published 100x100, frame c{label}", observables(lat, ref["spins"][k])))
    for path in sorted(Path(args.results).glob("square_double_exchange/simulate/eq/seed*.zarr")):
        ds = open_store(path)
        lat = lattice_from_attrs(ds.attrs)
        spins = ds["spins"].transpose("frame", "site", "vec").values
        times = ds["time"].values
        for k in (len(times) // 10, len(times) // 2, len(times) - 1):
            label = f"ours {lat.Lx}x{lat.Ly} {path.stem}, t = {times[k]:g}"
            print(row(label, observables(lat, spins[k])))


if __name__ == "__main__":
    main()
