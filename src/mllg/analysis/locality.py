"""Locality of the exchange field: how far the field at a site feels the spins.

``delta(r)`` is the relative rms change of the perpendicular field ``h_perp`` at a
centre site c when every spin farther than r from c (minimum-image distance on the
torus, in nearest-neighbour units) is replaced by that of an independent configuration
of the same kind:

    delta(r) = sqrt(< |dh_perp,c|^2 >) / sqrt(< |h_perp|^2 >)

with the average over pairs and centres, and the scale the rms of ``h_perp`` over all
sites of the first configurations. ``delta(r) / sqrt(2)`` estimates the error of the
best r-local model of those fields (a BP model with cutoff r), the floor no descriptor
of that range can beat.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import NDArray

from mllg.lattice import Lattice

__all__ = ["field_change"]


def field_change(
    lattice: Lattice,
    solver,
    pairs: Iterable[tuple[NDArray, NDArray]],
    radii: Iterable[float],
    rng: np.random.Generator,
    centres: int = 1,
) -> dict[str, float]:
    """``delta(r)`` (module notes) for every radius of ``radii``.

    Parameters
    ----------
    lattice : periodic Lattice.
    solver : exact solver with ``solve(spins).fields`` (units of t).
    pairs : iterable of ``(a, b)`` spin configurations (N, 3): a configuration and an
        independent one of the same kind.
    radii : radii r (nearest-neighbour distances).
    rng : generator of the ``centres`` random centre sites per pair.

    Returns
    -------
    dict
        ``{str(r): delta(r)}`` and ``rms_h_perp`` (units of t).
    """
    radii = list(radii)
    size = np.array([lattice.Lx, lattice.Ly])
    scale2, dist_cache = [], {}
    errs: dict[float, list[float]] = {r: [] for r in radii}
    for a, b in pairs:
        ha = solver.solve(a).fields
        hp = ha - (ha * a).sum(-1, keepdims=True) * a
        scale2.append((hp**2).sum(-1).mean())
        for c in rng.choice(lattice.N, centres, replace=False):
            c = int(c)
            if c not in dist_cache:
                d = (lattice.coords - lattice.coords[c] + size // 2) % size - size // 2
                dist_cache[c] = np.linalg.norm(d @ lattice.primitive, axis=1)
            for r in radii:
                s = a.copy()
                far = dist_cache[c] > r + 1e-9
                s[far] = b[far]
                dh = solver.solve(s).fields[c] - ha[c]
                errs[r].append(float(np.sum((dh - np.dot(dh, a[c]) * a[c]) ** 2)))
    scale = float(np.sqrt(np.mean(scale2)))
    out = {str(r): float(np.sqrt(np.mean(errs[r])) / scale) for r in radii}
    out["rms_h_perp"] = scale
    return out
