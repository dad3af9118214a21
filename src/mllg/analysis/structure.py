"""Spin structure factor of periodic lattices.

.. math::

    S(q) = \\frac{1}{N} \\sum_a \\left| \\sum_i S_i^a e^{-i q \\cdot r_i} \\right|^2

on the allowed wavevectors ``q = (m1/Lx) b1 + (m2/Ly) b2`` of the finite lattice, computed
with one 2D FFT per frame (``q . r_i = 2 pi (m1 x/Lx + m2 y/Ly)`` for ``r_i = x a1 + y a2``),
so the triangular reciprocal lattice is handled exactly. ``sum_q S(q) = N`` for unit spins.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mllg.lattice import Lattice

__all__ = [
    "kgrid_index",
    "structure_factor",
    "weight_fraction",
]


def structure_factor(lattice: Lattice, spins: NDArray) -> NDArray[np.float64]:
    """S(q) for spins (..., N, 3), returned flat as (..., N) in the order of ``lattice.kgrid()``."""
    if lattice.kind == "strip":
        raise ValueError("the structure factor needs a periodic lattice, not a strip.")
    s = np.asarray(spins, dtype=float)
    grid = s.reshape(s.shape[:-2] + (lattice.Ly, lattice.Lx, 3))
    amp = np.fft.fft2(grid, axes=(-3, -2))
    sq = np.sum(np.abs(amp) ** 2, axis=-1) / lattice.N
    return sq.reshape(s.shape[:-2] + (lattice.N,))


def kgrid_index(lattice: Lattice, q: NDArray) -> NDArray[np.int64]:
    """Flat indices in ``lattice.kgrid()`` of Cartesian wavevectors q (..., 2).

    Wavevectors are reduced modulo the reciprocal lattice; a q not on the finite grid
    raises ValueError.
    """
    frac = np.asarray(q, float) @ np.linalg.inv(lattice.reciprocal)
    m = frac * np.array([lattice.Lx, lattice.Ly])
    mi = np.rint(m)
    if np.any(np.abs(m - mi) > 1e-8):
        raise ValueError(f"wavevector(s) {q} are not on the {lattice.Lx}x{lattice.Ly} grid.")
    mi = mi.astype(np.int64)
    return (mi[..., 0] % lattice.Lx) + lattice.Lx * (mi[..., 1] % lattice.Ly)


def weight_fraction(lattice: Lattice, spins: NDArray, point: str) -> NDArray[np.float64]:
    """Fraction of the total S(q) weight at the high-symmetry points named ``point`` (M, K, X)."""
    sq = structure_factor(lattice, spins)
    idx = np.unique(kgrid_index(lattice, lattice.high_symmetry_points()[point]))
    return sq[..., idx].sum(-1) / sq.sum(-1)
