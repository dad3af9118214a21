"""Two-dimensional Bravais lattices, neighbour shells and point-group operations.

Conventions
-----------
Sites sit at integer lattice coordinates ``(x, y)`` with ``0 <= x < Lx``, ``0 <= y < Ly``;
the site index is ``i = x + Lx * y`` (x runs fastest). Cartesian positions are
``r = x a1 + y a2`` in units of the nearest-neighbour distance:

* square:     ``a1 = (1, 0)``, ``a2 = (0, 1)``
* triangular: ``a1 = (1, 0)``, ``a2 = (1/2, sqrt(3)/2)``
* strip:      square geometry, ``Lx`` sites along the transport direction x (always open:
  the leads attach there) and ``W = Ly`` sites across, periodic or open along y.

Displacements and point-group matrices act on integer coefficient vectors ``(n1, n2)``
meaning ``n1 a1 + n2 a2``. On periodic directions the minimal-image convention holds
implicitly: a neighbour offset wraps around the torus.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "KINDS",
    "Lattice",
    "Shell",
    "make_lattice",
]

KINDS = ("square", "triangular", "strip")

_PRIMITIVE = {
    "square": np.array([[1.0, 0.0], [0.0, 1.0]]),
    "triangular": np.array([[1.0, 0.0], [0.5, np.sqrt(3.0) / 2.0]]),
    "strip": np.array([[1.0, 0.0], [0.0, 1.0]]),
}

# Generators of the site point groups, as integer matrices on (n1, n2).
_GENERATORS = {
    # D4: C4 rotation and the mirror y -> -y.
    "square": [np.array([[0, -1], [1, 0]]), np.array([[1, 0], [0, -1]])],
    # D6: C6 maps a1 -> a2 and a2 -> a2 - a1; mirror y -> -y maps a2 -> a1 - a2.
    "triangular": [np.array([[0, -1], [1, 1]]), np.array([[1, 1], [0, -1]])],
    # Driven strip: the bias fixes the x direction; only the mirror y -> -y survives.
    "strip": [np.array([[1, 0], [0, -1]])],
}


@dataclass(frozen=True)
class Shell:
    """One neighbour shell: all lattice vectors of a given length.

    Attributes
    ----------
    distance : float
        Length of the displacement in units of the nearest-neighbour distance.
    offsets : ndarray of int, shape (m, 2)
        Displacements ``(n1, n2)`` in the lattice basis, sorted by polar angle.
    neighbours : ndarray of int, shape (N, m)
        ``neighbours[i, k]`` is the site at ``r_i + offsets[k]``; ``-1`` where an open
        boundary removes it.
    """

    distance: float
    offsets: NDArray[np.int64]
    neighbours: NDArray[np.int64]


@dataclass(frozen=True)
class Lattice:
    """A finite 2D lattice of ``Lx x Ly`` sites.

    Parameters
    ----------
    kind : {"square", "triangular", "strip"}
        Lattice type; ``strip`` is a square-lattice ribbon open along x.
    Lx, Ly : int
        Number of sites along a1 and a2 (for a strip, ``Ly`` is the width ``W``).
    periodic_y : bool
        Periodicity along a2. Square and triangular lattices are periodic in both
        directions; a strip is open along x and periodic along y only if requested.
    """

    kind: str
    Lx: int
    Ly: int
    periodic_y: bool = True
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"lattice kind {self.kind!r} is not allowed; use one of {KINDS}.")
        for name in ("Lx", "Ly"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                label = "strip width W" if (self.kind == "strip" and name == "Ly") else name
                raise ValueError(f"lattice size {label}={value!r} must be a positive integer.")
        if self.kind != "strip" and not self.periodic_y:
            raise ValueError(
                f"periodic_y=False is only allowed for a strip, not for kind={self.kind!r}."
            )

    # ------------------------------------------------------------------ geometry
    @property
    def N(self) -> int:
        """Number of sites."""
        return self.Lx * self.Ly

    @property
    def periodic(self) -> tuple[bool, bool]:
        """Periodicity along (a1, a2)."""
        if self.kind == "strip":
            return (False, self.periodic_y)
        return (True, True)

    @property
    def primitive(self) -> NDArray[np.float64]:
        """Primitive vectors as rows ``[a1, a2]`` (Cartesian, nearest-neighbour distance 1)."""
        return _PRIMITIVE[self.kind]

    @cached_property
    def coords(self) -> NDArray[np.int64]:
        """Integer lattice coordinates ``(x, y)`` of every site, shape (N, 2)."""
        i = np.arange(self.N)
        return np.stack([i % self.Lx, i // self.Lx], axis=1)

    @property
    def x(self) -> NDArray[np.int64]:
        return self.coords[:, 0]

    @property
    def y(self) -> NDArray[np.int64]:
        return self.coords[:, 1]

    @cached_property
    def positions(self) -> NDArray[np.float64]:
        """Cartesian positions ``r_i = x a1 + y a2``, shape (N, 2)."""
        return self.coords @ self.primitive

    def index(self, x: NDArray, y: NDArray) -> NDArray[np.int64]:
        """Site index of integer coordinates, wrapped on periodic directions, -1 outside."""
        x = np.asarray(x)
        y = np.asarray(y)
        px, py = self.periodic
        valid = np.ones(np.broadcast(x, y).shape, dtype=bool)
        if px:
            x = np.mod(x, self.Lx)
        else:
            valid &= (x >= 0) & (x < self.Lx)
        if py:
            y = np.mod(y, self.Ly)
        else:
            valid &= (y >= 0) & (y < self.Ly)
        return np.where(valid, x + self.Lx * y, -1).astype(np.int64)

    # ------------------------------------------------------------------ shells
    def lattice_vectors(self, r_max: float) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """All nonzero lattice vectors with length <= ``r_max``, sorted by length then angle.

        Returns
        -------
        offsets : ndarray of int, shape (m, 2)
        lengths : ndarray of float, shape (m,)
        """
        n = int(np.ceil(2.0 * r_max)) + 1
        g = np.arange(-n, n + 1)
        n1, n2 = np.meshgrid(g, g, indexing="ij")
        off = np.stack([n1.ravel(), n2.ravel()], axis=1)
        cart = off @ self.primitive
        length = np.round(np.hypot(cart[:, 0], cart[:, 1]), 9)
        angle = np.round(np.mod(np.arctan2(cart[:, 1], cart[:, 0]), 2 * np.pi), 9)
        keep = (length > 0) & (length <= r_max + 1e-9)
        off, length, angle = off[keep], length[keep], angle[keep]
        order = np.lexsort((angle, length))
        return off[order], length[order]

    def shells(self, r_cut: float) -> list[Shell]:
        """Neighbour shells up to the cutoff radius ``r_cut`` (inclusive).

        Vectorized: one gather per shell, ``O(N m)`` work for ``m`` neighbours.
        """
        key = ("shells", round(float(r_cut), 9))
        if key not in self._cache:
            offsets, lengths = self.lattice_vectors(r_cut)
            dists, starts = np.unique(lengths, return_index=True)
            bounds = list(starts) + [len(lengths)]
            xs, ys = self.x[:, None], self.y[:, None]
            out = []
            for k, d in enumerate(dists):
                off = offsets[bounds[k] : bounds[k + 1]]
                nb = self.index(xs + off[None, :, 0], ys + off[None, :, 1])
                out.append(Shell(float(d), off, nb))
            self._cache[key] = out
        return self._cache[key]

    def bonds(self, shell: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Directed bonds ``(i, j)`` of neighbour shell ``shell`` (1 = nearest), both directions.

        On a small periodic lattice an offset may wrap onto the same pair twice; such
        bonds are kept, which reproduces the finite-lattice band structure exactly.
        """
        if shell < 1:
            raise ValueError(f"neighbour shell index shell={shell} must be >= 1.")
        shells = self._shells_at_least(shell)
        nb = shells[shell - 1].neighbours
        i = np.repeat(np.arange(self.N), nb.shape[1])
        j = nb.ravel()
        ok = j >= 0
        return i[ok], j[ok]

    def _shells_at_least(self, count: int) -> list[Shell]:
        r = 1.0
        while len(self.shells(r)) < count:
            r += 0.5
        return self.shells(r)

    # ------------------------------------------------------------------ symmetry
    @cached_property
    def point_group(self) -> list[NDArray[np.int64]]:
        """Site point-group operations as integer matrices acting on ``(n1, n2)``.

        D4 (8 elements) for square, D6 (12) for triangular, {E, M_y} for a strip.
        The identity comes first.
        """
        gens = _GENERATORS[self.kind]
        group = [np.eye(2, dtype=np.int64)]
        frontier = list(group)
        while frontier:
            new = []
            for g in frontier:
                for h in gens:
                    p = (h @ g).astype(np.int64)
                    if not any(np.array_equal(p, q) for q in group):
                        group.append(p)
                        new.append(p)
            frontier = new
        return group

    def site_permutation(self, op: NDArray[np.int64], centre: int = 0) -> NDArray[np.int64]:
        """Site permutation of a point-group operation about site ``centre``.

        ``perm[i]`` is the site at ``r_c + R (r_i - r_c)``; spins transform as
        ``S'[perm[i]] = S[i]`` (equivalently ``S' = S[inverse]``). Open boundaries give
        ``-1`` for sites mapped outside the lattice. On a periodic lattice the map is a
        bijection only if the torus is compatible with the operation (e.g. Lx == Ly).
        """
        op = np.asarray(op, dtype=np.int64)
        c = self.coords[centre]
        d = self.coords - c
        if self.periodic[0]:
            d[:, 0] = (d[:, 0] + self.Lx // 2) % self.Lx - self.Lx // 2
        if self.periodic[1]:
            d[:, 1] = (d[:, 1] + self.Ly // 2) % self.Ly - self.Ly // 2
        nd = d @ op.T
        return self.index(c[0] + nd[:, 0], c[1] + nd[:, 1])

    # ------------------------------------------------------------------ reciprocal space
    @cached_property
    def reciprocal(self) -> NDArray[np.float64]:
        """Reciprocal primitive vectors as rows ``[b1, b2]`` with ``a_i . b_j = 2 pi delta_ij``."""
        return 2 * np.pi * np.linalg.inv(self.primitive).T

    def kgrid(self) -> NDArray[np.float64]:
        """Allowed Cartesian wavevectors of the periodic finite lattice, shape (N, 2).

        ``k = (m1 / Lx) b1 + (m2 / Ly) b2`` ordered as ``m1 + Lx * m2``: the raveled
        ``numpy.fft.fft2`` of a site field reshaped as ``(Ly, Lx)`` (indexed ``[y, x]``).
        """
        m = self.coords.astype(float)
        frac = np.stack([m[:, 0] / self.Lx, m[:, 1] / self.Ly], axis=1)
        return frac @ self.reciprocal

    def high_symmetry_points(self) -> dict[str, NDArray[np.float64]]:
        """Cartesian high-symmetry wavevectors: ``M`` points (and ``K`` for triangular)."""
        b1, b2 = self.reciprocal
        if self.kind == "triangular":
            return {
                "M": np.array([b1 / 2, b2 / 2, (b1 + b2) / 2]),
                "K": np.array([(2 * b1 + b2) / 3, (b1 + 2 * b2) / 3]),
            }
        return {"M": np.array([(b1 + b2) / 2]), "X": np.array([b1 / 2, b2 / 2])}


def make_lattice(kind: str, Lx: int, Ly: int | None = None, periodic_y: bool = True) -> Lattice:
    """Build a lattice; ``Ly`` defaults to ``Lx`` (for a strip give the width ``W``)."""
    return Lattice(kind, int(Lx), int(Lx if Ly is None else Ly), periodic_y=periodic_y)
