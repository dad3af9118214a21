"""Spin textures: random states and the ordered states of the s-d model.

All textures are arrays of classical unit vectors of shape (N, 3) in the site order
``i = x + Lx * y`` of :class:`mllg.lattice.Lattice`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mllg.lattice import Lattice

__all__ = [
    "ferromagnet",
    "neel",
    "normalize",
    "random_spins",
    "tetrahedral",
    "three_sublattice_120",
]


def normalize(spins: NDArray) -> NDArray[np.float64]:
    """Rescale vectors to unit length along the last axis."""
    spins = np.asarray(spins, dtype=float)
    return spins / np.linalg.norm(spins, axis=-1, keepdims=True)


def random_spins(n_sites: int, rng: np.random.Generator | int | None = None) -> NDArray[np.float64]:
    """Spins drawn uniformly on the unit sphere (infinite-temperature state)."""
    rng = np.random.default_rng(rng)
    return normalize(rng.normal(size=(n_sites, 3)))


def ferromagnet(lattice: Lattice, direction: NDArray | None = None) -> NDArray[np.float64]:
    """Uniform state along ``direction`` (default +z)."""
    d = normalize(np.asarray([0.0, 0.0, 1.0] if direction is None else direction, dtype=float))
    return np.tile(d, (lattice.N, 1))


def three_sublattice_120(lattice: Lattice) -> NDArray[np.float64]:
    """Coplanar 120 deg state on the triangular lattice (ordering wavevector K).

    ``S_i = (cos phi_i, sin phi_i, 0)`` with ``phi_i = 2 pi (x - y) / 3``; needs
    ``Lx`` and ``Ly`` divisible by 3.
    """
    _require(lattice, "triangular", 3)
    phi = 2 * np.pi * ((lattice.x - lattice.y) % 3) / 3
    return np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], axis=1)


_TETRA = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=float) / np.sqrt(3)


def tetrahedral(lattice: Lattice, chirality: int = 1) -> NDArray[np.float64]:
    """Four-sublattice tetrahedral state on the triangular lattice (M-point order).

    Sublattice ``(x mod 2) + 2 (y mod 2)`` carries one corner of a regular tetrahedron,
    so every nearest-neighbour pair has ``S_i . S_j = -1/3``. ``chirality = -1`` mirrors
    the spins (S -> -S), which flips the sign of the scalar chirality. Needs even sizes.
    """
    _require(lattice, "triangular", 2)
    if chirality not in (1, -1):
        raise ValueError(f"chirality={chirality!r} must be +1 or -1.")
    return chirality * _TETRA[(lattice.x % 2) + 2 * (lattice.y % 2)]


def neel(lattice: Lattice) -> NDArray[np.float64]:
    """Checkerboard antiferromagnet along z on a square lattice (or strip)."""
    sign = 1.0 - 2.0 * ((lattice.x + lattice.y) % 2)
    return np.stack([np.zeros(lattice.N), np.zeros(lattice.N), sign], axis=1)


def _require(lattice: Lattice, kind: str, period: int) -> None:
    if lattice.kind != kind:
        raise ValueError(f"this texture needs a {kind} lattice, not {lattice.kind!r}.")
    if lattice.Lx % period or lattice.Ly % period:
        raise ValueError(
            f"this texture needs Lx and Ly divisible by {period}; got {lattice.Lx}x{lattice.Ly}."
        )
