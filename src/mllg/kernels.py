"""Compiled CPU kernels (Numba) of the descriptor's object values and their adjoint.

The object values of :class:`mllg.descriptors.BondDescriptor` are, for object ``k`` with
vertices at the padded-grid offsets ``o_k0, o_k1 (, o_k2)`` from site ``i``,

.. math::

    v_k(i) = S_{i+o_{k0}} \\cdot S_{i+o_{k1}} \\quad \\text{(bond)}, \\qquad
    v_k(i) = S_{i+o_{k0}} \\cdot (S_{i+o_{k1}} \\times S_{i+o_{k2}}) \\quad
    \\text{(triangle)},

dimensionless. The reference implementation (:mod:`mllg.descriptors`: shape fields on the
anchor rectangle, then one crop per object) is written in torch operations, which keeps
derivatives of every order for training; at inference its many small operations per
evaluation are dominated by dispatch overhead and memory traffic. These kernels compute
``v`` in one pass over ``(object, site)`` and its adjoint

.. math::

    \\frac{\\partial E}{\\partial S_j} = \\sum_k \\sum_i g_k(i)\\,
    \\frac{\\partial v_k(i)}{\\partial S_j}, \\qquad g_k(i) = \\partial E / \\partial v_k(i),

in one pass that scatters ``g S_{i+o_{k1}}`` to vertex 0 and ``g S_{i+o_{k0}}`` to vertex 1
(bonds), ``g S_{i+o_{k1}} x S_{i+o_{k2}}`` and its cyclic permutations (triangles).

Layout: the spins (F, N, 3) are first copied into a padded, channel-major grid flattened
to ``(F, 3, P)`` (row length ``wp``; ``source[p]`` is the site at grid point ``p``, or -1
for a zero spin beyond an open edge); site ``i = y lx + x`` sits at grid position
``q = y wp + x``, and every vertex offset is a flat offset from ``q`` (the padding makes
every read in bounds). The adjoint folds the grid gradient back onto the sites (wrapped
copies add to their site). :func:`values` and :func:`add_adjoint` take a range of lattice
rows, so a caller can evaluate a block of sites at a time (the provider's fused path).
The kernels are serial: Numba's OpenMP threads would spin-wait next to torch's own
thread pool and slow down the torch operations, so with several threads the parallelism
stays in the network's GEMMs.

Numba compiles the kernels on first use (a few seconds) and caches them on disk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ObjectPlan",
    "add_adjoint",
    "object_values",
    "object_values_adjoint",
    "pad",
    "unpad",
    "values",
]

_KERNELS: dict = {}


def _compiled() -> dict:
    """The jitted kernels (compiled, or loaded from Numba's cache, on first use)."""
    if _KERNELS:
        return _KERNELS
    import numba

    # Inner loops run over one lattice row through row slices (unit-stride views): in
    # that form LLVM vectorizes them (flat indexing is not vectorized); one loop per
    # spin component keeps the pointers per loop few enough for its alias checks.
    @numba.njit(cache=True, fastmath=True)
    def values(grid, offsets, tri, y0, y1, lx, wp, out):  # pragma: no cover - compiled
        for f in range(grid.shape[0]):
            s = grid[f]
            for k in range(offsets.shape[0]):
                o0, o1, o2 = offsets[k, 0], offsets[k, 1], offsets[k, 2]
                for y in range(y0, y1):
                    q = y * wp
                    r = out[f, k, (y - y0) * lx : (y - y0 + 1) * lx]
                    if tri[k]:
                        for c in range(3):  # component c of S_0 times (S_1 x S_2)_c
                            a = s[c, q + o0 : q + o0 + lx]
                            b1 = s[(c + 1) % 3, q + o1 : q + o1 + lx]
                            b2 = s[(c + 2) % 3, q + o1 : q + o1 + lx]
                            c1 = s[(c + 1) % 3, q + o2 : q + o2 + lx]
                            c2 = s[(c + 2) % 3, q + o2 : q + o2 + lx]
                            if c == 0:
                                for x in range(lx):
                                    r[x] = a[x] * (b1[x] * c2[x] - b2[x] * c1[x])
                            else:
                                for x in range(lx):
                                    r[x] += a[x] * (b1[x] * c2[x] - b2[x] * c1[x])
                    else:
                        a0, b0 = s[0, q + o0 : q + o0 + lx], s[0, q + o1 : q + o1 + lx]
                        a1, b1 = s[1, q + o0 : q + o0 + lx], s[1, q + o1 : q + o1 + lx]
                        a2, b2 = s[2, q + o0 : q + o0 + lx], s[2, q + o1 : q + o1 + lx]
                        for x in range(lx):
                            r[x] = a0[x] * b0[x] + a1[x] * b1[x] + a2[x] * b2[x]

    @numba.njit(cache=True, fastmath=True)
    def adjoint(grid, grad, offsets, tri, y0, y1, lx, wp, acc):  # pragma: no cover - compiled
        for f in range(grid.shape[0]):
            s = grid[f]
            a = acc[f]
            for k in range(offsets.shape[0]):
                if tri[k]:
                    # vertex v receives g (S_{v+1} x S_{v+2}) (cyclic)
                    for v in range(3):
                        ov = offsets[k, v]
                        o1 = offsets[k, (v + 1) % 3]
                        o2 = offsets[k, (v + 2) % 3]
                        for y in range(y0, y1):
                            q = y * wp
                            w = grad[f, k, (y - y0) * lx : (y - y0 + 1) * lx]
                            for c in range(3):
                                d = a[c, q + ov : q + ov + lx]
                                b1 = s[(c + 1) % 3, q + o1 : q + o1 + lx]
                                b2 = s[(c + 2) % 3, q + o1 : q + o1 + lx]
                                c1 = s[(c + 1) % 3, q + o2 : q + o2 + lx]
                                c2 = s[(c + 2) % 3, q + o2 : q + o2 + lx]
                                for x in range(lx):
                                    d[x] += w[x] * (b1[x] * c2[x] - b2[x] * c1[x])
                else:
                    # vertex v receives g S_{1-v}
                    for v in range(2):
                        ov = offsets[k, v]
                        o1 = offsets[k, 1 - v]
                        for y in range(y0, y1):
                            q = y * wp
                            w = grad[f, k, (y - y0) * lx : (y - y0 + 1) * lx]
                            for c in range(3):
                                d = a[c, q + ov : q + ov + lx]
                                b = s[c, q + o1 : q + o1 + lx]
                                for x in range(lx):
                                    d[x] += w[x] * b[x]

    @numba.njit(cache=True)
    def pad(spins, source, grid):  # pragma: no cover - compiled
        for f in range(spins.shape[0]):
            for p in range(source.shape[0]):
                j = source[p]
                for c in range(3):
                    grid[f, c, p] = spins[f, j, c] if j >= 0 else 0.0

    @numba.njit(cache=True)
    def unpad(acc, source, out):  # pragma: no cover - compiled
        for f in range(acc.shape[0]):
            for p in range(source.shape[0]):
                j = source[p]
                if j >= 0:
                    for c in range(3):
                        out[f, j, c] += acc[f, c, p]

    _KERNELS.update(values=values, adjoint=adjoint, pad=pad, unpad=unpad)
    return _KERNELS


@dataclass(frozen=True)
class ObjectPlan:
    """Geometry of the object values on the padded grid (built by the descriptor).

    Attributes
    ----------
    offsets : (K, 3) int64
        Flat grid offsets of the vertices of every object from its site (for bonds the
        third column repeats the second and is not read).
    tri : (K,) bool
        Triangle (scalar chirality) objects; the others are bonds.
    source : (P,) int64
        Site copied to every grid point, -1 for zero spins.
    ly, lx, wp : int
        Lattice rows and columns, padded row length.
    """

    offsets: NDArray[np.int64]
    tri: NDArray[np.bool_]
    source: NDArray[np.int64]
    ly: int
    lx: int
    wp: int


def pad(spins: NDArray, plan: ObjectPlan) -> NDArray:
    """Padded channel-major grid (F, 3, P) of C-contiguous spins (F, N, 3), their dtype."""
    grid = np.empty((spins.shape[0], 3, plan.source.shape[0]), dtype=spins.dtype)
    _compiled()["pad"](spins, plan.source, grid)
    return grid


def values(grid: NDArray, plan: ObjectPlan, rows: tuple[int, int] | None = None) -> NDArray:
    """Object values ``v`` (F, K, n) of the sites in lattice rows ``[y0, y1)`` (default
    all; ``n = (y1 - y0) lx``) from the padded ``grid`` of :func:`pad`."""
    y0, y1 = rows or (0, plan.ly)
    out = np.empty((grid.shape[0], plan.offsets.shape[0], (y1 - y0) * plan.lx), grid.dtype)
    _compiled()["values"](grid, plan.offsets, plan.tri, y0, y1, plan.lx, plan.wp, out)
    return out


def add_adjoint(
    grid: NDArray,
    grad: NDArray,
    plan: ObjectPlan,
    acc: NDArray,
    rows: tuple[int, int] | None = None,
) -> None:
    """``acc += sum_{k, i} grad_k(i) dv_k(i)/d grid`` for the sites of rows ``[y0, y1)``
    (``grad`` (F, K, n) as :func:`values` returns ``v``; ``acc`` shaped like ``grid``)."""
    y0, y1 = rows or (0, plan.ly)
    _compiled()["adjoint"](grid, grad, plan.offsets, plan.tri, y0, y1, plan.lx, plan.wp, acc)


def unpad(acc: NDArray, plan: ObjectPlan, n_sites: int) -> NDArray:
    """Fold a grid gradient (F, 3, P) back onto the sites: (F, N, 3)."""
    out = np.zeros((acc.shape[0], n_sites, 3), dtype=acc.dtype)
    _compiled()["unpad"](acc, plan.source, out)
    return out


def object_values(spins: NDArray, plan: ObjectPlan) -> tuple[NDArray, NDArray]:
    """Padded grid (F, 3, P) and object values ``v`` (F, K, N) of spins (F, N, 3)."""
    grid = pad(spins, plan)
    return grid, values(grid, plan)


def object_values_adjoint(grid: NDArray, grad: NDArray, plan: ObjectPlan, n_sites: int) -> NDArray:
    """``dE/dS`` (F, N, 3) from ``grad = dE/dv`` (F, K, N) at the padded ``grid``
    of :func:`object_values`: the adjoint of the values, folded back onto the sites."""
    acc = np.zeros(grid.shape, dtype=grid.dtype)
    add_adjoint(grid, grad, plan, acc)
    return unpad(acc, plan, n_sites)
