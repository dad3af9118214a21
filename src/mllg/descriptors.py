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

Implementation: the object values of all sites are gathered from per-displacement bond
fields ``B_d(j) = S_j . S_{j+d}`` and per-shape chirality fields through index tensors
built once per lattice; everything is batched over frames and sites (no Python loops
over sites) and differentiable in the spins. Missing sites at open boundaries count as
zero spins (their bond variables vanish).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from mllg.lattice import Lattice

DESCRIPTOR_KINDS = ("bispectrum", "plain")
_EPS = 1e-9


@dataclass(frozen=True)
class DescriptorConfig:
    """Settings of a descriptor.

    Parameters
    ----------
    kind : {"bispectrum", "plain"}
        Symmetrized bispectrum (default) or the raw object values.
    r_cut : float
        Cutoff radius ``r_c`` in units of the nearest-neighbour distance.
    bond_cut : float
        Longest neighbour–neighbour bond kept (centre–neighbour bonds: all within ``r_c``).
        ``0`` keeps only the centre–neighbour bonds.
    chirality : bool
        Include the scalar chiralities of triangles.
    triangle_cut : float or None
        Longest triangle edge; ``None`` means 1 (elementary triangles) on the triangular
        lattice and ``sqrt(2)`` (half plaquettes) on square lattices and strips.
    inner_r_cut : float or None
        Neighbour–neighbour bonds and triangles use only sites within this radius of the
        centre (``None``: ``r_cut``). A long ``r_cut`` with a short ``inner_r_cut`` keeps
        long-range pair correlations with the centre at a modest feature count.
    triples : bool
        Bispectrum only: include the degree-3 invariants (copy x reference x reference and
        reference triples). ``False`` keeps the A1 coefficients, the power spectrum and the
        projections ``f^{Gamma,a} . r^Gamma`` on the own reference (degree <= 2).
    """

    kind: str = "bispectrum"
    r_cut: float = 2.0
    bond_cut: float = 1.0
    chirality: bool = True
    triangle_cut: float | None = None
    inner_r_cut: float | None = None
    triples: bool = True

    def __post_init__(self) -> None:
        if self.kind not in DESCRIPTOR_KINDS:
            raise ValueError(
                f"descriptor kind={self.kind!r} is not allowed; use one of {DESCRIPTOR_KINDS}."
            )
        if not np.isfinite(self.r_cut) or self.r_cut < 1.0:
            raise ValueError(f"descriptor r_cut={self.r_cut!r} must be a number >= 1.")
        if self.inner_r_cut is not None and not (0 < self.inner_r_cut <= self.r_cut):
            raise ValueError(
                f"descriptor inner_r_cut={self.inner_r_cut!r} must lie in (0, r_cut={self.r_cut}]."
            )
        if not np.isfinite(self.bond_cut) or self.bond_cut < 0:
            raise ValueError(f"descriptor bond_cut={self.bond_cut!r} must be a number >= 0.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DescriptorConfig:
        allowed = set(cls.__dataclass_fields__)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(
                f"unknown descriptor keys {sorted(unknown)}; allowed keys are {sorted(allowed)}."
            )
        return cls(**data)


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


# ---------------------------------------------------------------------------- torch module
class BondDescriptor(torch.nn.Module):
    """Base class: gathers the object values ``v`` (bonds, chiralities) of every site.

    Parameters
    ----------
    lattice : Lattice
    config : DescriptorConfig

    Notes
    -----
    Index tensors are non-persistent buffers: they belong to the lattice, not to a model
    checkpoint, so a model trained on one lattice size runs on any other of that kind.
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

    @property
    def n_objects(self) -> int:
        return len(self.objects.keys)

    def object_values(self, spins: torch.Tensor) -> torch.Tensor:
        """Bond variables and chiralities of every site, shape (F, N, K).

        ``v[f, i, k]`` is ``S_j . S_k`` (bond) or ``S_j . (S_k x S_l)`` (counter-clockwise
        triangle) for object ``k`` translated to site ``i``; dimensionless.
        """
        f = spins.shape[0]
        n = self.lattice.N
        pad = torch.cat([spins, spins.new_zeros(f, 1, 3)], dim=1)  # (F, N+1, 3)
        parts = []
        if self.bond_idx.shape[1]:
            parts.append((spins[:, :, None, :] * pad[:, self.bond_idx, :]).sum(-1))
        if self.tri_idx.shape[1]:
            sk = pad[:, self.tri_idx[..., 0], :]
            sl = pad[:, self.tri_idx[..., 1], :]
            parts.append((spins[:, :, None, :] * torch.linalg.cross(sk, sl, dim=-1)).sum(-1))
        fields = torch.cat(parts, dim=-1)  # (F, N, n_shapes)
        fields = torch.cat([fields, fields.new_zeros(f, 1, fields.shape[-1])], dim=1)
        return fields.reshape(f, (n + 1) * fields.shape[-1])[:, self.object_idx]

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
        """Descriptor ``G`` of every site: (F, N, n_features) for spins (F, N, 3)."""
        batch, single = self._batch(spins)
        if batch.shape[1] != self.lattice.N:
            raise ValueError(
                f"spins have {batch.shape[1]} sites but the lattice has {self.lattice.N}."
            )
        g = self.features(self.object_values(batch))
        return g[0] if single else g

    def features(self, values: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def n_features(self) -> int:  # pragma: no cover - abstract
        raise NotImplementedError


class PlainDescriptor(BondDescriptor):
    """Raw object values in the lattice frame (no point-group symmetrization)."""

    def features(self, values: torch.Tensor) -> torch.Tensor:
        return values

    @property
    def n_features(self) -> int:
        return self.n_objects


class BispectrumDescriptor(BondDescriptor):
    """Irrep power spectrum and reference-phase bispectrum of the object values.

    See the module docstring for the invariants and their completeness.
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

    @property
    def n_features(self) -> int:
        return self._n_features

    def coefficients(self, values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Irrep coefficient vectors ``{irrep: f (F, N, copies, d)}``, ``f -> D(g) f``."""
        c = values @ self.basis.to(values.dtype)
        return {n: c[..., getattr(self, f"cols_{n}")] for n in self.names}

    def features(self, values: torch.Tensor) -> torch.Tensor:
        coef = self.coefficients(values)
        dtype = values.dtype
        out = []
        if "A1" in coef:
            out.append(coef["A1"][..., 0])
        refs = {"1": values.new_ones(values.shape[:2] + (1,))}
        for n, f in coef.items():
            if n != "A1":
                out.append((f * f).sum(-1))
                refs[n] = f.sum(-2) / np.sqrt(f.shape[-2])
        for n, r1, r2, name in self._copy_terms:
            t = getattr(self, name).to(dtype)
            b = torch.einsum("fnca,fnb,fne,kabe->fnck", coef[n], refs[r1], refs[r2], t)
            out.append(b.flatten(-2))
        for r1, r2, r3, name in self._ref_terms:
            t = getattr(self, name).to(dtype)
            out.append(torch.einsum("fna,fnb,fne,kabe->fnk", refs[r1], refs[r2], refs[r3], t))
        return torch.cat(out, dim=-1)


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
