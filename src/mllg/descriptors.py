"""Symmetry-invariant descriptors of the local magnetic environment of every site.

A descriptor ``G_i`` summarizes the classical spins within a cutoff radius ``r_c`` of
site ``i``. It must be invariant under

1. global SO(3) spin rotations, so it is built from *bond variables*
   ``b_jk = S_j . S_k`` and *scalar chiralities* ``chi_jkl = S_j . (S_k x S_l)``
   (triangle vertices ordered counter-clockwise);
2. the site point group ``G`` of the lattice (D6 triangular, D4 square, ``{E, M_y}`` for
   the driven strip, which keeps the x direction because of the bias and the leads);
3. lattice translations (every site uses the same offsets).

Objects and orbits
------------------
Around a centre site the *objects* are (a) the centre–neighbour bonds ``(0, d)`` for every
lattice vector ``|d| <= r_c``, (b) the neighbour–neighbour bonds ``(d, d')`` with both
ends inside the disk and ``|d - d'| <= bond_cut``, and (c) if ``chirality`` is on, the
oriented triangles with all three vertices in the disk (centre included) and all edges
``<= triangle_cut``. The point group permutes the objects; it splits them into orbits.
On an orbit of ``n`` objects the values ``v`` transform by a signed permutation
``v -> P(g) v`` (chiralities pick up ``det g`` because a mirror reverses the orientation).

Irreducible representations
---------------------------
The dihedral group ``D_n`` (``n`` rotations, ``n`` mirrors; ``n = 4, 6, 1``) has the real
orthogonal irreps ``D^(m)``: ``m = 0`` gives ``A1`` (1) and ``A2`` (``det g``);
``0 < m < n/2`` the 2D irreps ``E_m`` (rotation by ``theta`` -> ``R(m theta)``, a mirror
with axis at angle ``phi`` -> ``[[cos 2m phi, sin 2m phi], [sin 2m phi, -cos 2m phi]]``);
for even ``n``, ``m = n/2`` is diagonal and splits into ``B1`` and ``B2``.
Each orbit is decomposed with the projectors
``P^Gamma_ab = (d_Gamma / |G|) sum_g D^Gamma_ab(g) P(g)`` into coefficient vectors
``f^{Gamma,a}`` (one per copy ``a`` of ``Gamma``) that transform as
``f -> D^Gamma(g) f``.

Invariants (the bispectrum descriptor)
--------------------------------------
* ``A1`` coefficients themselves (invariant, signed; degree 1 in the bond variables);
* the power spectrum ``p^{Gamma,a} = |f^{Gamma,a}|^2`` of every non-trivial copy;
* relative phases against reference vectors. For every non-trivial irrep the reference
  is ``r^Gamma = n_Gamma^{-1/2} sum_a f^{Gamma,a}`` (all copies at this site) and
  ``r^1 = 1``; for every copy and every pair of references the bispectrum components
  ``B_k = T^k_{abc} f^{Gamma,a}_a r^{Gamma1}_b r^{Gamma2}_c``, where ``T^k`` span the
  invariant tensors of ``Gamma x Gamma1 x Gamma2`` (computed numerically by group
  averaging). With ``Gamma1 = Gamma, Gamma2 = 1`` this is the projection
  ``f^{Gamma,a} . r^Gamma`` (the component along the reference); with ``Gamma2 = A2`` it
  is the signed component perpendicular to it;
* the triple invariants of the references among themselves, which fix the relative
  orientation of the different irreps.

For references that do not vanish these invariants determine every coefficient vector
up to one common point-group operation, i.e. the environment up to symmetry
(complete for generic environments); all of them are polynomials (degree 1 to 3) in the
bond variables and hence smooth in the spins.

Which invariance is physical (chirality)
----------------------------------------
Without spin-orbit coupling the spin and the lattice transform independently: the
symmetry group of the s-d energy ``E[S]`` with real hoppings is translations x the
site point group ``G`` acting on *positions only* x ``O(3)`` acting on all spins
(``SO(3)`` rotations and time reversal ``S -> -S``, an antiunitary symmetry of ``H`` for
real hoppings, so ``E[-S] = E[S]`` and ``h[-S] = -h[S]``; checked with ED in the tests).
A scalar chirality ``chi = S_j . (S_k x S_l)`` is ``SO(3)``-invariant, odd under a
lattice mirror (it reverses the orientation of the triangle) and odd under time
reversal. Consequences:

* The two uniform tetrahedral states (``chi = +-``) are images of each other under a
  lattice mirror (and under time reversal); ED gives them equal energies and mapped
  fields (they differ only in the sign of the Chern number, not in ``E`` or ``h``). A
  descriptor of the energy must therefore give them the *same* value: here it does,
  because mirrors are in ``G`` and act on the chiralities with ``det g = -1``.
  Keeping the chirality sign "relative to the lattice orientation" (a ``C_n``-only
  descriptor) would be correct but throw away an exact symmetry.
* What is physical is the chirality *relative to the rest of the environment*: the
  relative sign of different triangles (a chiral domain wall), or of the chirality and
  the handedness of the bond pattern. These configurations are related by no symmetry
  and get different descriptors (tested), provided the degree-3 invariants
  (``triples=True``) that couple ``A2`` to the bond irreps are kept; with
  ``triples=False`` only the relative signs within each irrep survive.
* Time reversal is *not* imposed on the descriptor: the bias of the driven strip breaks
  it (a current reverses under ``S -> -S``), so ``S`` and ``-S`` of a generic state get
  different descriptors. For equilibrium data the training can impose it by
  augmentation (``TrainConfig(augment_time_reversal=True)``).

The *plain* descriptor is the list of object values in a fixed lattice orientation
(SO(3)- and translation-invariant, not point-group symmetrized), as in the published
reference code.

Implementation (channel-major, no gathers)
------------------------------------------
All tensors inside the descriptor are *channel-major*, ``(F, rows, N)`` with the ``N``
sites of one row contiguous, so every elementwise operation is one vectorized pass over
the sites; the descriptor returns the transposed view ``(F, N, n_features)``.

* Spins are laid out on the ``(Ly, Lx)`` grid and padded once: wrapped copies along
  periodic directions, zero spins along open ones (missing sites count as zero spins,
  so their bond variables vanish). A translation by ``d`` is then a strided *view* of the
  padded grid (no gather; its backward is a slice copy, not a scatter-add).
* Every object is a *shape* (its vertex offsets relative to an anchor vertex) placed at
  an anchor offset ``a``. The shape fields ``B_d(j) = S_j . S_{j+d}`` and
  ``chi(j) = S_j . (S_{j+d1} x S_{j+d2})`` are computed once per shape on the rectangle
  of sites covering all anchors, and object ``k`` at site ``i`` is the field of its shape
  at ``i + a_k``: a view copy (:class:`_Crop`), whose backward adds the gradient rows back
  at the shifted positions (:class:`_Uncrop`; the two are each other's adjoint, so every
  derivative order is exact).
* The bispectrum is linear algebra on the irrep blocks: one GEMM gives the coefficients
  and the references, ``[c; R] = W^T v``, with every irrep stored partner-major so that
  ``f^Gamma_a`` (all copies) is a contiguous block; the copy terms are
  ``B^{Gamma}_{c,k} = sum_a f^{Gamma}_{a,c} M_{a,k}`` with ``M = W_T^T (R o R)``, one GEMM
  over the products of reference components ``(R o R)_{(b,e)} = R_b R_e`` (``b <= e``,
  ``R_0 = 1``); the reference triples are ``sum_a R_a M'_{a,k}`` likewise.
* Inference on a CPU (``descriptor.kernels = True``, set by
  :class:`mllg.nn.provider.MLFieldProvider`): the object values and their first
  derivative come from the compiled kernels of :mod:`mllg.kernels` (one pass over objects
  and sites each way instead of the shape fields and the crops); the torch operations
  above stay the definition, the training path and the CUDA path, and the tests check
  the two against each other. The kernels give first derivatives only: a
  ``create_graph=True`` backward through them raises.

Everything is batched over frames and sites (no Python loops over sites or frames;
the loops run over shapes, objects and irreps) and differentiable to any order in the
spins (``create_graph=True`` for training).

Module layout
-------------
One module above the ~600-line guideline because it is one descriptor: the group theory,
the object geometry and the channel-major torch evaluation define one set of features,
and the evaluation works on private layouts built with the geometry (shape windows, crop
plan and compiled-kernel plan of :class:`BondDescriptor`, partner-major irrep blocks and
term groups of :class:`BispectrumDescriptor`). Sections: group theory
(:func:`cartesian_ops`, :func:`irreps`, :func:`invariant_tensors`) | geometry (objects,
orbits, symmetry-adapted bases) | torch helpers (padding, crops, shape fields, kernel
values, site-major view) | torch modules (:class:`BondDescriptor`,
:class:`PlainDescriptor`, :class:`BispectrumDescriptor`) | :func:`make_descriptor`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from mllg.kernels import ObjectPlan
from mllg.lattice import Lattice
from mllg.settings import DESCRIPTOR_KINDS, DescriptorConfig

__all__ = [
    "DESCRIPTOR_KINDS",
    "BispectrumDescriptor",
    "BondDescriptor",
    "DescriptorConfig",
    "PlainDescriptor",
    "cartesian_ops",
    "invariant_tensors",
    "irreps",
    "make_descriptor",
]

_EPS = 1e-9


# ---------------------------------------------------------------------------- group theory
def cartesian_ops(lattice: Lattice) -> NDArray[np.float64]:
    """Point-group operations as Cartesian orthogonal matrices, shape (|G|, 2, 2).

    An integer matrix ``M`` acting on lattice coefficients ``n`` (``r = n^T A`` with the
    primitive vectors as rows of ``A``) is ``C = A^T M A^{-T}`` in Cartesian coordinates.
    """
    a = lattice.primitive
    ops = [a.T @ m @ np.linalg.inv(a.T) for m in lattice.point_group]
    return np.array(ops)


def irreps(lattice: Lattice) -> dict[str, NDArray[np.float64]]:
    """Real orthogonal irreps of the site point group, ``{name: D (|G|, d, d)}``.

    Ordered as in ``lattice.point_group``; ``A1`` first. See the module docstring.
    """
    cart = cartesian_ops(lattice)
    n_rot = len(cart) // 2  # D_n has n rotations and n mirrors
    det = np.round(np.linalg.det(cart))
    ang = np.arctan2(cart[:, 1, 0], cart[:, 0, 0])  # theta (rotations) or 2 phi (mirrors)

    def rep(m: int) -> NDArray[np.float64]:
        c, s = np.cos(m * ang), np.sin(m * ang)
        return np.stack([np.stack([c, -det * s], -1), np.stack([s, det * c], -1)], -2)

    out = {
        "A1": np.ones((len(cart), 1, 1)),
        "A2": det[:, None, None].astype(float),
    }
    for m in range(1, (n_rot + 1) // 2):
        out[f"E{m}"] = rep(m)
    if n_rot % 2 == 0 and n_rot > 1:
        d = rep(n_rot // 2)
        out["B1"] = d[:, :1, :1].copy()
        out["B2"] = d[:, 1:, 1:].copy()
    return out


def invariant_tensors(reps: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    """Orthonormal basis of the invariant tensors of a product of representations.

    Returns ``T`` of shape ``(k, d1, d2, ...)`` with
    ``sum D1_{aa'} D2_{bb'} ... T_{a'b'...} = T_{ab...}`` for every group element.
    """
    n_g = reps[0].shape[0]
    dims = [r.shape[1] for r in reps]
    avg = np.zeros((int(np.prod(dims)),) * 2)
    for g in range(n_g):
        k = np.ones((1, 1))
        for r in reps:
            k = np.kron(k, r[g])
        avg += k
    avg /= n_g
    w, v = np.linalg.eigh(0.5 * (avg + avg.T))
    basis = v[:, w > 0.5].T
    return basis.reshape((basis.shape[0], *dims))


# ---------------------------------------------------------------------------- geometry
@dataclass(frozen=True)
class _Objects:
    keys: list  # canonical object keys in orbit order
    orbit_sizes: list[int]
    perms: list  # per orbit: (|G|, n, n) signed permutation matrices


def _canonical(obj: tuple, cart_of) -> tuple[tuple, int]:
    """Canonical key of a bond or triangle and the sign relating it to the input order."""
    if len(obj) == 2:
        return tuple(sorted(obj)), 1
    p = [cart_of(q) for q in obj]
    area = (p[1][0] - p[0][0]) * (p[2][1] - p[0][1]) - (p[1][1] - p[0][1]) * (p[2][0] - p[0][0])
    sign = 1 if area > 0 else -1
    ordered = list(obj) if sign > 0 else [obj[0], obj[2], obj[1]]
    k = ordered.index(min(ordered))
    return tuple(ordered[k:] + ordered[:k]), sign


def _enumerate_objects(lattice: Lattice, cfg: DescriptorConfig) -> _Objects:
    offs, _ = lattice.lattice_vectors(cfg.r_cut)
    pts = [(0, 0)] + [tuple(int(c) for c in o) for o in offs]
    prim = lattice.primitive

    def cart_of(q: tuple) -> NDArray:
        return np.asarray(q, dtype=float) @ prim

    xyz = np.array([cart_of(q) for q in pts])
    dist = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1)
    raw: list[tuple] = [(pts[0], pts[b]) for b in range(1, len(pts))]
    inner_r = cfg.r_cut if cfg.inner_r_cut is None else cfg.inner_r_cut
    inner = [a for a in range(len(pts)) if dist[0, a] <= inner_r + _EPS]
    if cfg.bond_cut > 0:
        for a, b in itertools.combinations(inner[1:], 2):
            if dist[a, b] <= cfg.bond_cut + _EPS:
                raw.append((pts[a], pts[b]))
    if cfg.chirality:
        tcut = cfg.triangle_cut
        if tcut is None:
            tcut = 1.0 if lattice.kind == "triangular" else np.sqrt(2.0)
        close = dist <= tcut + _EPS
        for a, b, c in itertools.combinations(inner, 3):
            if close[a, b] and close[b, c] and close[a, c]:
                raw.append((pts[a], pts[b], pts[c]))
    canon = [_canonical(o, cart_of)[0] for o in raw]
    ops = lattice.point_group

    def act(key: tuple, m: NDArray) -> tuple[tuple, int]:
        moved = tuple(tuple(int(c) for c in m @ np.asarray(q)) for q in key)
        return _canonical(moved, cart_of)

    seen: set = set()
    keys: list = []
    sizes: list[int] = []
    perms: list = []
    for key in canon:
        if key in seen:
            continue
        orbit = [key]
        index = {key: 0}
        frontier = [key]
        while frontier:
            nxt = []
            for k in frontier:
                for m in ops:
                    k2, _ = act(k, m)
                    if k2 not in index:
                        index[k2] = len(orbit)
                        orbit.append(k2)
                        nxt.append(k2)
            frontier = nxt
        n = len(orbit)
        p = np.zeros((len(ops), n, n))
        for g, m in enumerate(ops):
            for j, k in enumerate(orbit):
                k2, s = act(k, m)
                p[g, index[k2], j] = s
        seen.update(orbit)
        keys.extend(orbit)
        sizes.append(n)
        perms.append(p)
    return _Objects(keys, sizes, perms)


def _decompose(perm: NDArray, reps: dict[str, NDArray]) -> dict[str, NDArray]:
    """Symmetry-adapted basis of one orbit: ``{irrep: E (copies, d, n)}`` with ``f = E v``."""
    n_g = perm.shape[0]
    out = {}
    total = 0
    for name, d in reps.items():
        dim = d.shape[1]
        proj = np.einsum("gab,gij->abij", d, perm) * dim / n_g  # (d, d, n, n)
        w, v = np.linalg.eigh(0.5 * (proj[0, 0] + proj[0, 0].T))
        u = v[:, w > 0.5]  # first partners, orthonormal
        if u.shape[1] == 0:
            continue
        e = np.einsum("aij,jc->cai", proj[:, 0], u)  # (copies, d, n)
        out[name] = e
        total += e.shape[0] * dim
    if total != perm.shape[1]:
        raise RuntimeError(f"irrep decomposition covers {total} of {perm.shape[1]} dimensions.")
    return out


# ---------------------------------------------------------------------------- torch helpers
def _runs(index: NDArray[np.int64]) -> list[tuple[int, int]]:
    """Split a padded index line into runs ``(start, length)``; ``start = -1`` is zeros."""
    runs: list[tuple[int, int]] = []
    for j in index.tolist():
        if runs and (
            (j < 0 and runs[-1][0] < 0)
            or (j >= 0 and runs[-1][0] >= 0 and runs[-1][0] + runs[-1][1] == j)
        ):
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((j if j >= 0 else -1, 1))
    return runs


def _pad(x: torch.Tensor, dim: int, runs: list[tuple[int, int]]) -> torch.Tensor:
    """Concatenate slices (and zero blocks) of ``x`` along ``dim`` (differentiable)."""
    if len(runs) == 1 and runs[0] == (0, x.shape[dim]):
        return x
    parts = []
    for start, length in runs:
        if start < 0:
            shape = list(x.shape)
            shape[dim] = length
            parts.append(x.new_zeros(shape))
        else:
            parts.append(x.narrow(dim, start, length))
    return torch.cat(parts, dim=dim)


class _Crop(torch.autograd.Function):
    """``out[:, k] = B[:, s_k, y_k : y_k + Ly, x_k : x_k + Lx]`` (object values from fields).

    Linear in ``B``; its adjoint is :class:`_Uncrop` and vice versa, so derivatives of
    every order are exact.
    """

    @staticmethod
    def forward(ctx, fields: torch.Tensor, plan: tuple) -> torch.Tensor:
        crops, (ly, lx) = plan
        ctx.plan = plan
        ctx.field_shape = tuple(fields.shape[1:])
        out = fields.new_empty(fields.shape[0], len(crops), ly, lx)
        for k, (s, y, x) in enumerate(crops):
            out[:, k] = fields[:, s, y : y + ly, x : x + lx]
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return _Uncrop.apply(grad, ctx.plan, ctx.field_shape), None


class _Uncrop(torch.autograd.Function):
    """Adjoint of :class:`_Crop`: ``B[:, s_k, y_k:, x_k:] += g[:, k]`` (zeros elsewhere)."""

    @staticmethod
    def forward(ctx, grad: torch.Tensor, plan: tuple, field_shape: tuple) -> torch.Tensor:
        crops, (ly, lx) = plan
        ctx.plan = plan
        out = grad.new_zeros(grad.shape[0], *field_shape)
        for k, (s, y, x) in enumerate(crops):
            out[:, s, y : y + ly, x : x + lx] += grad[:, k]
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        return _Crop.apply(grad, ctx.plan), None, None


def _cyclic(grid: torch.Tensor) -> torch.Tensor:
    """Channels ``(x, y, z, x, y)``: ``[:, 1:4]`` is ``(y, z, x)``, ``[:, 2:5]`` ``(z, x, y)``."""
    return torch.cat([grid, grid[:, :2]], dim=1)


def _cross(q: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """``q x r`` along dim 1 for cyclic five-channel views (:func:`_cyclic`)."""
    return q[:, 1:4] * r[:, 2:5] - q[:, 2:5] * r[:, 1:4]


class _ShapeFields(torch.autograd.Function):
    """Shape fields from the padded spin grid, with an analytic backward.

    ``plan = (windows, (Hy, Hx))``: per shape the grid offsets of its vertices; output
    ``(F, n_shapes, Hy, Hx)``. Bonds ``B = S_0 . S_1``; triangles
    ``chi = S_0 . (S_1 x S_2)``. The backward adds ``g S_1`` at vertex 0 and ``g S_0`` at
    vertex 1 (bonds) and ``g S_1 x S_2``, ``g S_2 x S_0``, ``g S_0 x S_1`` (triangles) into
    a zero grid; it is written with differentiable operations, so second derivatives
    (``create_graph=True``) are exact.
    """

    @staticmethod
    def forward(ctx, grid: torch.Tensor, plan: tuple) -> torch.Tensor:
        ctx.save_for_backward(grid)
        ctx.plan = plan
        return _shape_fields(grid, plan)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (grid,) = ctx.saved_tensors
        windows, (hy, hx) = ctx.plan
        g5 = _cyclic(grid) if any(len(w) == 3 for w in windows) else grid
        out = torch.zeros_like(grid)

        def win(t: torch.Tensor, o: tuple[int, int]) -> torch.Tensor:
            return t[:, :, o[0] : o[0] + hy, o[1] : o[1] + hx]

        for s, w in enumerate(windows):
            g = grad[:, s, None]
            if len(w) == 2:
                win(out, w[0]).addcmul_(g, win(grid, w[1]))
                win(out, w[1]).addcmul_(g, win(grid, w[0]))
            else:
                v = [win(g5, o) for o in w]
                for j in range(3):
                    cross = _cross(v[(j + 1) % 3], v[(j + 2) % 3])
                    win(out, w[j]).addcmul_(g, cross)
        return out, None


def _shape_fields(grid: torch.Tensor, plan: tuple) -> torch.Tensor:
    """Forward of :class:`_ShapeFields` (see there)."""
    windows, (hy, hx) = plan
    g5 = _cyclic(grid) if any(len(w) == 3 for w in windows) else grid
    out = grid.new_empty(grid.shape[0], len(windows), hy, hx)
    for s, w in enumerate(windows):
        v = [g5[:, :, o[0] : o[0] + hy, o[1] : o[1] + hx] for o in w]
        prod = v[0][:, :3] * (v[1][:, :3] if len(w) == 2 else _cross(v[1], v[2]))
        torch.sum(prod, dim=1, out=out[:, s])
    return out


class _KernelValues(torch.autograd.Function):
    """Object values (F, K, N) of CPU spins (F, N, 3) by :mod:`mllg.kernels`.

    The backward is the kernels' adjoint (first derivatives only).
    """

    @staticmethod
    def forward(ctx, spins: torch.Tensor, plan) -> torch.Tensor:
        from mllg import kernels

        grid, v = kernels.object_values(spins.detach().contiguous().numpy(), plan)
        ctx.save_for_backward(torch.from_numpy(grid))
        ctx.plan = plan
        ctx.n_sites = spins.shape[1]
        return torch.from_numpy(v)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        from mllg import kernels

        if torch.is_grad_enabled():
            raise RuntimeError(
                "the descriptor's compiled kernels give first derivatives only; set "
                "descriptor.kernels = False for create_graph=True (training)."
            )
        (grid,) = ctx.saved_tensors
        d = kernels.object_values_adjoint(
            grid.numpy(), grad.contiguous().numpy(), ctx.plan, ctx.n_sites
        )
        return torch.from_numpy(d), None


class _SiteMajor(torch.autograd.Function):
    """``(F, R, N) -> (F, N, R)`` transposed *view*; the backward returns a contiguous
    channel-major gradient (one copy only if the incoming gradient is site-major)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        if grad.shape[0] == 1 and not grad.transpose(1, 2).is_contiguous():
            # a 2D transpose takes torch's blocked (cache-friendly) copy path
            return grad[0].t().contiguous()[None]
        return grad.transpose(1, 2).contiguous()


# ---------------------------------------------------------------------------- torch module
class BondDescriptor(torch.nn.Module):
    """Base class: the object values ``v`` (bonds, chiralities) of every site.

    Parameters
    ----------
    lattice : Lattice
    config : DescriptorConfig

    Notes
    -----
    Object ``k`` is a shape (vertex offsets ``d`` relative to an anchor vertex) placed at
    the anchor offset ``a_k``; its value at site ``i`` is the shape field at ``i + a_k``:
    ``B_d(j) = S_j . S_{j+d}`` (bond) or ``chi(j) = S_j . (S_{j+d_1} x S_{j+d_2})``
    (counter-clockwise triangle). The fields are computed on a padded ``(Ly, Lx)`` grid
    (module notes). ``bond_idx``, ``tri_idx`` (partners of every site per shape, ``N`` =
    missing) and ``object_idx`` (anchor site x shapes + shape) describe the same
    geometry as index tensors; they are non-persistent buffers (they belong to the
    lattice, not to a checkpoint), so a model trained on one lattice size runs on any
    other of that kind.
    """

    def __init__(self, lattice: Lattice, config: DescriptorConfig) -> None:
        super().__init__()
        self.lattice = lattice
        self.config = config
        self.objects = _enumerate_objects(lattice, config)
        keys = self.objects.keys
        # Per-displacement bond fields and per-shape chirality fields, anchored at a vertex.
        shapes: dict[tuple, int] = {}
        shape_id = np.zeros(len(keys), dtype=np.int64)
        anchors = np.zeros((len(keys), 2), dtype=np.int64)
        for k, key in enumerate(keys):
            a = np.asarray(key[0])
            rel = tuple(tuple(int(c) for c in np.asarray(q) - a) for q in key[1:])
            if len(rel) == 1:
                neg = (-rel[0][0], -rel[0][1])
                if neg > rel[0]:  # canonical direction of the bond displacement
                    a = np.asarray(key[1])
                    rel = (neg,)
            shape_id[k] = shapes.setdefault(rel, len(shapes))
            anchors[k] = a
        self.shapes = list(shapes)
        n = lattice.N
        xs, ys = lattice.x, lattice.y
        partner = []  # per shape: (N, n_vertices - 1) partner sites, N = padding
        for rel in self.shapes:
            cols = [lattice.index(xs + d[0], ys + d[1]) for d in rel]
            cols = np.stack(cols, 1)
            partner.append(np.where(cols < 0, n, cols))
        is_bond = np.array([len(r) == 1 for r in self.shapes])
        self._n_bond_shapes = int(is_bond.sum())
        # Re-number shapes so bonds come first.
        order = np.argsort(~is_bond, kind="stable")
        renum = np.empty_like(order)
        renum[order] = np.arange(len(order))
        self.shapes = [self.shapes[o] for o in order]
        partner = [partner[o] for o in order]
        shape_id = renum[shape_id]
        bond_partner = [p[:, 0] for p in partner[: self._n_bond_shapes]]
        tri_partner = [p for p in partner[self._n_bond_shapes :]]
        self.register_buffer(
            "bond_idx",
            torch.as_tensor(np.stack(bond_partner, 1) if bond_partner else np.zeros((n, 0), int)),
            persistent=False,
        )
        self.register_buffer(
            "tri_idx",
            torch.as_tensor(np.stack(tri_partner, 1) if tri_partner else np.zeros((n, 0, 2), int)),
            persistent=False,
        )
        site = lattice.index(xs[:, None] + anchors[None, :, 0], ys[:, None] + anchors[None, :, 1])
        site = np.where(site < 0, n, site)  # (N, K) anchor sites, N = padding (value 0)
        flat = site * len(self.shapes) + shape_id[None, :]
        self.register_buffer("object_idx", torch.as_tensor(flat), persistent=False)
        self.shape_id = shape_id
        self.anchors = anchors
        self.kernels = False  # compiled CPU kernels for the values (inference, module notes)
        self._grid_plan()

    def _grid_plan(self) -> None:
        """Padding runs of the spin grid, shape-field windows and object crops.

        The fields live on the rectangle ``R`` of sites ``i + a`` (``a`` any anchor
        offset); the padded spin grid covers ``R + d`` for every vertex offset ``d``.
        """
        lat = self.lattice
        a_lo = self.anchors.min(0) if len(self.anchors) else np.zeros(2, int)
        a_hi = self.anchors.max(0) if len(self.anchors) else np.zeros(2, int)
        rel = np.array([(0, 0)] + [d for s in self.shapes for d in s]).reshape(-1, 2)
        lo = -(a_lo + np.minimum(rel.min(0), 0))  # padding below 0, (x, y)
        hi = a_hi + np.maximum(rel.max(0), 0)  # padding above L - 1
        runs = []
        for axis, size in ((1, lat.Ly), (0, lat.Lx)):  # grid dims (y, x)
            t = np.arange(-lo[axis], size + hi[axis])
            periodic = lat.periodic[axis]
            idx = np.mod(t, size) if periodic else np.where((t >= 0) & (t < size), t, -1)
            runs.append(_runs(idx))
        self._pad_runs = runs
        self._field_size = (lat.Ly + a_hi[1] - a_lo[1], lat.Lx + a_hi[0] - a_lo[0])
        origin = (lo[1] + a_lo[1], lo[0] + a_lo[0])  # field (0, 0) in padded-grid coordinates
        self._windows = [
            [(origin[0] + d[1], origin[1] + d[0]) for d in ((0, 0), *s)] for s in self.shapes
        ]
        crops = [
            (int(s), int(a[1] - a_lo[1]), int(a[0] - a_lo[0]))
            for s, a in zip(self.shape_id, self.anchors, strict=True)
        ]
        self._crop_plan = (tuple(crops), (lat.Ly, lat.Lx))
        # The same geometry as flat offsets in the padded grid, for mllg.kernels: vertex
        # v of object k at site (y, x) sits at (y + c_y + w_y) wp + (x + c_x + w_x).
        wp = sum(n for _, n in runs[1])
        offsets = np.zeros((len(crops), 3), dtype=np.int64)
        for k, (s, cy, cx) in enumerate(crops):
            flat = [(cy + wy) * wp + cx + wx for wy, wx in self._windows[s]]
            offsets[k] = flat + flat[-1:] * (3 - len(flat))
        tri = np.array([len(self._windows[s]) == 3 for s, _, _ in crops], dtype=bool)
        rows, cols = (
            np.concatenate([np.arange(a, a + n) if a >= 0 else np.full(n, -1) for a, n in r])
            for r in runs
        )
        source = np.where(
            (rows[:, None] >= 0) & (cols[None, :] >= 0), rows[:, None] * lat.Lx + cols[None, :], -1
        )
        self._kernel_plan = ObjectPlan(
            offsets, tri, source.ravel().astype(np.int64), int(lat.Ly), int(lat.Lx), int(wp)
        )

    @property
    def n_objects(self) -> int:
        return len(self.objects.keys)

    def _spin_grid(self, spins: torch.Tensor) -> torch.Tensor:
        """Padded channel-major spin grid (F, 3, Ly + pad, Lx + pad)."""
        f = spins.shape[0]
        g = spins.transpose(1, 2).reshape(f, 3, self.lattice.Ly, self.lattice.Lx)
        return _pad(_pad(g, 2, self._pad_runs[0]), 3, self._pad_runs[1])

    def shape_fields(self, spins: torch.Tensor) -> torch.Tensor:
        """Shape fields on the anchor rectangle, (F, n_shapes, Hy, Hx).

        ``B_d(j) = S_j . S_{j+d}`` for bond shapes and
        ``chi(j) = S_j . (S_{j+d_1} x S_{j+d_2})`` for triangle shapes; the cross product
        uses the cyclic channel views ``(y, z, x)`` and ``(z, x, y)`` of a grid with the
        channels ``(x, y, z, x, y)``. The backward is analytic (:class:`_ShapeFields`):
        ``dB_d(j)/dS_j = S_{j+d}``, ``dchi/dS_j = S_{j+d_1} x S_{j+d_2}`` (and cyclic).
        """
        return _ShapeFields.apply(self._spin_grid(spins), (self._windows, self._field_size))

    def _values(self, spins: torch.Tensor) -> torch.Tensor:
        """Channel-major object values (F, K, N)."""
        if self.kernels and spins.device.type == "cpu":
            return _KernelValues.apply(spins, self._kernel_plan)
        v = _Crop.apply(self.shape_fields(spins), self._crop_plan)
        return v.flatten(2)

    def object_values(self, spins: torch.Tensor) -> torch.Tensor:
        """Bond variables and chiralities of every site, shape (F, N, K).

        ``v[f, i, k]`` is ``S_j . S_k`` (bond) or ``S_j . (S_k x S_l)`` (counter-clockwise
        triangle) for object ``k`` translated to site ``i``; dimensionless. Returned as a
        transposed view of the channel-major (F, K, N) tensor.
        """
        return self._values(spins).transpose(1, 2)

    @staticmethod
    def _batch(spins: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if spins.ndim == 2:
            return spins[None], True
        if spins.ndim != 3 or spins.shape[-1] != 3:
            raise ValueError(
                f"spins must have shape (N, 3) or (F, N, 3); got {tuple(spins.shape)}."
            )
        return spins, False

    def forward(self, spins: torch.Tensor) -> torch.Tensor:
        """Descriptor ``G`` of every site: (F, N, n_features) for spins (F, N, 3).

        The result is a transposed view of a channel-major (F, n_features, N) tensor; a
        linear layer consumes it without a copy, and the gradient flowing back is made
        channel-major once.
        """
        batch, single = self._batch(spins)
        if batch.shape[1] != self.lattice.N:
            raise ValueError(
                f"spins have {batch.shape[1]} sites but the lattice has {self.lattice.N}."
            )
        g = _SiteMajor.apply(self._features(self._values(batch)))
        return g[0] if single else g

    def features(self, values: torch.Tensor) -> torch.Tensor:
        """Features (F, N, n_features) from object values (F, N, K)."""
        return _SiteMajor.apply(self._features(values.transpose(1, 2).contiguous()))

    def _features(self, values: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        """Channel-major features (F, n_features, N) from values (F, K, N)."""
        raise NotImplementedError

    @property
    def n_features(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class PlainDescriptor(BondDescriptor):
    """Raw object values in the lattice frame (no point-group symmetrization)."""

    def _features(self, values: torch.Tensor) -> torch.Tensor:
        return values

    @property
    def n_features(self) -> int:
        return self.n_objects


class BispectrumDescriptor(BondDescriptor):
    """Irrep power spectrum and reference-phase bispectrum of the object values.

    See the module docstring for the invariants and their completeness.

    Notes
    -----
    Evaluation (module notes): one GEMM ``[c; r] = W_c^T v`` gives the irrep blocks
    ``f^Gamma_a`` (partner-major, copies contiguous) and the references
    ``r^Gamma_a = n_Gamma^{-1/2} sum_c f^Gamma_{a,c}``; with ``R = (1, r)`` one GEMM
    ``M = W_m^T (R o R)`` over the products ``R_b R_e`` (``b <= e``) gives, for every copy
    term ``(Gamma, Gamma_1, Gamma_2, T)``,
    ``M_{a,k} = sum_{b,e} T^k_{abe} R^{Gamma_1}_b R^{Gamma_2}_e`` and for every reference
    triple ``M'_{a,k} = sum_{b,e} T^k_{abe} R^{Gamma_2}_b R^{Gamma_3}_e``; then
    ``B_{c,k} = sum_a f_{a,c} M_{a,k}`` and ``sum_a R^{Gamma_1}_a M'_{a,k}``. The
    ``cols_<irrep>`` buffers and the ``T_``/``R_`` tensors describe the same invariants in
    the original basis order.
    """

    def __init__(self, lattice: Lattice, config: DescriptorConfig) -> None:
        super().__init__(lattice, config)
        self.irreps = irreps(lattice)
        k = self.n_objects
        basis = np.zeros((k, k))
        columns: dict[str, list] = {name: [] for name in self.irreps}
        row = 0
        col = 0
        for size, perm in zip(self.objects.orbit_sizes, self.objects.perms, strict=True):
            for name, e in _decompose(perm, self.irreps).items():
                for copy in e:
                    d = copy.shape[0]
                    basis[row : row + size, col : col + d] = copy.T
                    columns[name].append(list(range(col, col + d)))
                    col += d
            row += size
        self.register_buffer("basis", torch.as_tensor(basis), persistent=False)
        self.names = [n for n in self.irreps if columns[n]]
        self.multiplicity = {n: len(columns[n]) for n in self.names}
        for n in self.names:
            self.register_buffer(f"cols_{n}", torch.as_tensor(columns[n]), persistent=False)
        nontrivial = [n for n in self.names if n != "A1"]
        refs = ["1"] + nontrivial
        rep_of = {**self.irreps, "1": self.irreps["A1"]}
        self._copy_terms: list[tuple[str, str, str, str]] = []
        n_feat = self.multiplicity.get("A1", 0)
        for n in nontrivial:
            n_feat += self.multiplicity[n]
            for r1, r2 in itertools.combinations_with_replacement(refs, 2):
                if r1 == "1" and r2 == "1":
                    continue
                if not config.triples and not (r1 == "1" and r2 == n):
                    continue
                t = invariant_tensors([rep_of[n], rep_of[r1], rep_of[r2]])
                if len(t):
                    name = f"T_{n}_{r1}_{r2}"
                    self.register_buffer(name, torch.as_tensor(t), persistent=False)
                    self._copy_terms.append((n, r1, r2, name))
                    n_feat += self.multiplicity[n] * len(t)
        self._ref_terms: list[tuple[str, str, str, str]] = []
        for r1, r2, r3 in itertools.combinations_with_replacement(
            nontrivial if config.triples else [], 3
        ):
            t = invariant_tensors([rep_of[r1], rep_of[r2], rep_of[r3]])
            if len(t):
                name = f"R_{r1}_{r2}_{r3}"
                self.register_buffer(name, torch.as_tensor(t), persistent=False)
                self._ref_terms.append((r1, r2, r3, name))
                n_feat += len(t)
        self._n_features = n_feat
        self._build_matrices(basis, columns)

    def _build_matrices(self, basis: NDArray, columns: dict[str, list]) -> None:
        """Layout of ``[c; r]``, of the products ``R_b R_e`` and of the term groups."""
        self._cols = {n: np.asarray(columns[n]) for n in self.names}  # (copies, d)
        nontrivial = [n for n in self.names if n != "A1"]
        # Rows of [c; r]: every irrep partner-major (f_a of all copies contiguous).
        self._blocks = {}
        pos = 0
        for n in self.names:
            copies, d = self._cols[n].shape
            self._blocks[n] = (pos, copies, d)
            pos += copies * d
        self._ref_start = pos
        self._ref_off = {"1": 0}
        d_ref = 1
        for n in nontrivial:
            self._ref_off[n] = d_ref
            d_ref += self._cols[n].shape[1]
        self._pairs = list(itertools.combinations_with_replacement(range(d_ref), 2))
        # Consecutive terms with the same key (kind, irrep or reference offset, kt, d) form
        # one group, evaluated by one broadcast product.
        self._group_terms: list[tuple[tuple, list[tuple[str, str, str]]]] = []
        keyed = [
            (("copy", n, *getattr(self, nm).shape[:2]), (nm, r1, r2))
            for n, r1, r2, nm in self._copy_terms
        ]
        keyed += [
            (("ref", self._ref_off[r1], *getattr(self, nm).shape[:2]), (nm, r2, r3))
            for r1, r2, r3, nm in self._ref_terms
        ]
        for key, term in keyed:
            if self._group_terms and self._group_terms[-1][0] == key:
                self._group_terms[-1][1].append(term)
            else:
                self._group_terms.append((key, [term]))
        self._groups = [(kind, who, d, kt, len(ts)) for (kind, who, kt, d), ts in self._group_terms]
        self._m_sizes = [w * kt for *_, d, kt, w in self._groups for _ in range(d)]
        w_c, w_m = self._maps(basis, lambda name: getattr(self, name).numpy())
        self._used = np.flatnonzero(np.abs(w_m).sum(0) > 0)  # products some term uses
        pairs = [self._pairs[j] for j in self._used]
        self.register_buffer(
            "pair_b", torch.as_tensor([p[0] for p in pairs], dtype=torch.int64), persistent=False
        )
        self.register_buffer(
            "pair_e", torch.as_tensor([p[1] for p in pairs], dtype=torch.int64), persistent=False
        )
        self._cast: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}

    def _maps(self, basis: NDArray, tensor) -> tuple[NDArray, NDArray]:
        """``W_c`` (rows of ``[c; r]`` x objects) and ``W_m`` (group columns x all pairs).

        Built from the basis and invariant tensors (``tensor(name)``) as they are stored in
        the module, so a module cast to float32 and back uses the same rounded values as
        any other code reading those buffers.
        """
        w_rows = []
        for n in self.names:
            for a in range(self._cols[n].shape[1]):
                w_rows.append(basis[:, self._cols[n][:, a]].T)
        for n in self.names:
            if n != "A1":
                copies = self._cols[n].shape[0]
                for a in range(self._cols[n].shape[1]):
                    w_rows.append(basis[:, self._cols[n][:, a]].sum(1)[None] / np.sqrt(copies))
        w_c = np.concatenate(w_rows) if w_rows else np.zeros((0, self.n_objects))
        pair_of = {p: j for j, p in enumerate(self._pairs)}
        m_cols = []
        for _, terms in self._group_terms:
            ws = [self._term_matrix(tensor(nm), r1, r2, pair_of) for nm, r1, r2 in terms]
            stack = np.stack(ws, 1)  # (pairs, terms, d, kt) -> columns (a, term, k)
            m_cols.append(stack.transpose(0, 2, 1, 3).reshape(len(self._pairs), -1))
        w_m = np.concatenate(m_cols, 1).T if m_cols else np.zeros((0, len(self._pairs)))
        return w_c, w_m

    def _term_matrix(self, t: NDArray, r1: str, r2: str, pair_of: dict) -> NDArray:
        """``w[p, a, k]`` with ``sum_{b,e} T^k_{abe} R^{r1}_b R^{r2}_e = sum_p w[p, a, k] RR_p``."""
        kt, d = t.shape[:2]
        w = np.zeros((len(pair_of), d, kt))
        for kk, a, b, e in itertools.product(
            range(kt), range(d), range(t.shape[2]), range(t.shape[3])
        ):
            gb, ge = self._ref_off[r1] + b, self._ref_off[r2] + e
            w[pair_of[(min(gb, ge), max(gb, ge))], a, kk] += t[kk, a, b, e]
        return w

    def _matrices(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W_c, W_m)`` in the dtype and device of ``like`` (cached per buffer storage)."""
        key = (like.dtype, like.device, self.basis.data_ptr(), self.basis.dtype)
        if key not in self._cast:
            w_c, w_m = self._maps(
                self.basis.detach().double().cpu().numpy(),
                lambda name: getattr(self, name).detach().double().cpu().numpy(),
            )
            self._cast = {
                key: tuple(
                    torch.as_tensor(x).to(device=like.device, dtype=like.dtype)
                    for x in (w_c, w_m[:, self._used])
                )
            }
        return self._cast[key]

    @property
    def n_features(self) -> int:
        return self._n_features

    def coefficients(self, values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Irrep coefficient vectors ``{irrep: f (F, N, copies, d)}``, ``f -> D(g) f``."""
        c = _left_mm(self._matrices(values)[0], values.transpose(1, 2))  # (F, rows, N)
        out = {}
        for n, (start, copies, d) in self._blocks.items():
            out[n] = c[:, start : start + copies * d].unflatten(1, (d, copies)).permute(0, 3, 2, 1)
        return out

    def _features(self, values: torch.Tensor) -> torch.Tensor:
        w_c, w_m = self._matrices(values)
        c = _left_mm(w_c, values)  # (F, K + D - 1, N)
        # One split (one backward node) into the partner blocks f^Gamma_a and r.
        sizes = [copies for _, copies, d in self._blocks.values() for _ in range(d)]
        parts = c.split([*sizes, c.shape[1] - sum(sizes)], dim=1)
        f: dict[str, list[torch.Tensor]] = {}
        j = 0
        for n, (_, _, d) in self._blocks.items():
            f[n] = list(parts[j : j + d])
            j += d
        out = []
        if "A1" in f:
            out.append(f["A1"][0])
        for n, fa in f.items():
            if n != "A1":
                p = fa[0] * fa[0]
                for a in range(1, len(fa)):
                    p = p + fa[a] * fa[a]
                out.append(p)
        if self._m_sizes:
            ones = c.new_ones(c.shape[0], 1, c.shape[2])
            r = torch.cat([ones, parts[-1]], dim=1)  # (F, D, N), R_0 = 1
            rr = r.index_select(1, self.pair_b) * r.index_select(1, self.pair_e)
            m = _left_mm(w_m, rr).split(self._m_sizes, dim=1)
            rs = r.split(1, dim=1)
            j = 0
            for kind, who, d, kt, w in self._groups:
                if kind == "copy":  # B[term, c, k] = sum_a M_a[term, k] f_a[c]
                    fa = [x[:, None, :, None] for x in f[who]]  # (F, 1, C, 1, N)
                    ma = [x.unflatten(1, (w, 1, kt)) for x in m[j : j + d]]
                else:  # sum_a R_{off + a} M'_a[term, k]
                    fa = list(rs[who : who + d])
                    ma = list(m[j : j + d])
                t = ma[0] * fa[0]
                for a in range(1, d):
                    t = t + ma[a] * fa[a]
                out.append(t.flatten(1, -2))
                j += d
        return torch.cat(out, dim=1)


def _left_mm(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``w @ x`` for a matrix ``w`` (R, K) and channel-major ``x`` (F, K, N); one GEMM."""
    if x.shape[0] == 1:
        return (w @ x[0])[None]
    return torch.matmul(w, x)


def make_descriptor(
    lattice: Lattice, config: DescriptorConfig | dict | None = None
) -> BondDescriptor:
    """Build the descriptor named by ``config.kind`` for a lattice."""
    if config is None:
        config = DescriptorConfig()
    elif isinstance(config, dict):
        config = DescriptorConfig.from_dict(config)
    cls = BispectrumDescriptor if config.kind == "bispectrum" else PlainDescriptor
    return cls(lattice, config)
