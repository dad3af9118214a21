"""Field providers built on BP models, for the LLG engine and for uncertainty estimates.

:class:`MLFieldProvider` maps spins (N, 3) to exchange fields (N, 3) (units of t) with a
trained :class:`mllg.nn.model.BPModel`; :class:`Committee` averages independently trained
models and gives the per-site spread of their perpendicular fields.

Fast path
---------
The provider evaluates a *copy* of the model (float32 by default, float64 on request,
on ``cpu`` or ``cuda``) through a fused, algebraically identical rewrite of the
descriptor and the first network layer:

* the neighbour index tensors of the descriptor (built once per lattice) gather the object
  values ``v`` (bond variables ``S_j . S_k`` and scalar chiralities) of all sites at once,
  and one GEMM gives the irrep coefficients ``c = v B`` (``B`` the symmetry-adapted basis);
* every bispectrum invariant is linear, quadratic or cubic in ``c``. With ``R = (1, r)``
  the concatenated references (``r^Gamma = n_Gamma^{-1/2} sum_a f^{Gamma,a}``) the copy
  terms are ``B_k = sum_a f_a M_{ak}`` with ``M = (R x R) W`` (one GEMM per irrep; ``W``
  holds the invariant tensors ``T^k_{abe}``), the power spectrum is ``(c o c) P``, and
  the reference triples are ``sum_a R_a ((R x R) W_R)_{ak}``;
* the feature standardization ``x = (G - mean) / std``, the order of the descriptor's
  features and the constant lead encoding of a strip are folded into the weights and bias
  of the first linear layer, ``z_1 = [c, c o c, B, R3] (P W_1^T / std) + b_1'``;
* fields ``h_i = -dE/dS_i`` (and ``+ S_i x (-dE_B/dS_i)`` for the generalized potential)
  come from one reverse-mode pass per output with respect to the spins only: the
  parameters do not require gradients and no higher-order graph is built;
* the vector model needs no derivative: its ``2 K`` site outputs (scaled and shifted)
  are the slot coefficients of ``h_i = sum_k [w_ik S_{i+d_k} + u_ik S_i x S_{i+d_k}]``
  (:func:`mllg.nn.model.vector_fields`), evaluated without autograd.

At construction the fused path is checked against the model's own forward pass in float64
on a random configuration; if they differ (e.g. the descriptor definition changed) the
provider falls back to the generic path with a warning. Energies are summed in float64.
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray

from mllg.descriptors import BispectrumDescriptor, BondDescriptor, PlainDescriptor
from mllg.nn.model import BPModel, vector_fields

PROVIDER_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class MLResult:
    """Result of one ML evaluation, shaped like :class:`mllg.electrons.ElectronicResult`.

    Attributes
    ----------
    energy : (1,) total model energy ``E`` (conservative) or ``E_A`` (generalized), units
        of t, summed in float64; NaN for the vector model (no energy).
    fields : (N, 3) exchange fields, float64, units of t.
    energies : (n_energies,) ``E``, ``(E_A, E_B)`` or empty (vector model).
    """

    energy: NDArray[np.float64]
    fields: NDArray[np.float64]
    energies: NDArray[np.float64] = field(default_factory=lambda: np.zeros(1))


class _FusedFeatures(torch.nn.Module):
    """Descriptor + standardization + first linear layer, fused (see the module notes).

    ``forward(spins (F, N, 3)) -> z_1 (F, N, h_1)``, the pre-activation of the first hidden
    layer, identical (to rounding) to ``net[0]((descriptor(spins) - mean) / std)``.
    """

    def __init__(self, model: BPModel) -> None:
        super().__init__()
        desc: BondDescriptor = model.descriptor
        self.n_sites = model.lattice.N
        self.n_shapes = len(desc.shapes)
        self.register_buffer("bond_idx", desc.bond_idx.clone())
        self.register_buffer("tri_idx", desc.tri_idx.clone())
        self.register_buffer("object_idx", desc.object_idx.clone())
        self.shifts = (
            _translation_plan(model.lattice, desc) if model.lattice.kind != "strip" else None
        )
        first = model.net[0]
        w1 = first.weight.detach().double()  # (h1, n_in)
        b1 = first.bias.detach().double()
        mean = model.feature_mean.detach().double()
        std = model.feature_std.detach().double()
        w_std = w1 / std  # columns scaled by 1/std
        bias = b1 - w_std @ mean
        n_feat = desc.n_features
        lead = model.lead.detach().double()
        if lead.shape[1]:
            site_bias = lead @ w_std[:, n_feat:].T + bias  # (N, h1)
        else:
            site_bias = bias.expand(self.n_sites, -1)
        self.register_buffer("site_bias", site_bias.contiguous())
        w_desc = w_std[:, :n_feat].T  # (n_feat, h1)
        self.bispectrum = isinstance(desc, BispectrumDescriptor)
        if not self.bispectrum:
            if not isinstance(desc, PlainDescriptor):
                raise TypeError(f"no fused path for descriptor {type(desc).__name__}.")
            self.register_buffer("w1", self._expand(w_desc).contiguous())
            return
        self._build_bispectrum(desc, w_desc)

    # ------------------------------------------------------------------ construction
    def _build_bispectrum(self, desc: BispectrumDescriptor, w_desc: torch.Tensor) -> None:
        k = desc.n_objects
        cols_old = {n: getattr(desc, f"cols_{n}").numpy() for n in desc.names}
        # Reorder the basis columns so that every irrep block (copy, partner) is contiguous:
        # f^Gamma is then a view of c (no gather).
        order = np.concatenate([cols_old[n].ravel() for n in desc.names])
        cols, pos = {}, 0
        for n in desc.names:
            size = cols_old[n].size
            cols[n] = np.arange(pos, pos + size).reshape(cols_old[n].shape)
            pos += size
        basis = desc.basis.numpy()[:, order]
        nontrivial = [n for n in desc.names if n != "A1"]
        # References R = (1, r^Gamma ...) as a linear map of c: R = c @ ref_map, R_0 = 1.
        ref_off: dict[str, int] = {"1": 0}
        d_ref = 1
        for n in nontrivial:
            ref_off[n] = d_ref
            d_ref += cols[n].shape[1]
        ref_map = np.zeros((k, d_ref))
        for n in nontrivial:
            c_n, d_n = cols[n].shape
            for a in range(d_n):
                ref_map[cols[n][:, a], ref_off[n] + a] = 1.0 / np.sqrt(c_n)
        self.d_ref = d_ref
        dim = {"1": 1, **{n: cols[n].shape[1] for n in nontrivial}}
        # Copy terms grouped by irrep: M_n = (R x R) @ W_n, W_n[(b, e), (a, kk)].
        groups: dict[str, list] = {n: [] for n in nontrivial}
        for n, r1, r2, name in desc._copy_terms:
            groups[n].append((r1, r2, getattr(desc, name).numpy()))
        # Features of the fused block, in the order [c, c o c, B_n..., R3].
        blocks: list[tuple[str, int]] = [("c", k), ("c2", k)]
        self._irrep_terms: list[tuple[str, int, int, int, int]] = []  # (irrep, d, w, at, C)
        term_offset: dict[tuple[str, int], int] = {}
        for n in nontrivial:
            width = sum(t.shape[0] for _, _, t in groups[n])
            if width == 0:
                continue
            d_n = dim[n]
            w = np.zeros((d_ref * d_ref, d_n * width))
            off = 0
            for idx, (r1, r2, t) in enumerate(groups[n]):
                for kk in range(t.shape[0]):
                    for a in range(d_n):
                        for b in range(dim[r1]):
                            for e in range(dim[r2]):
                                row = (ref_off[r1] + b) * d_ref + ref_off[r2] + e
                                w[row, a * width + off + kk] += t[kk, a, b, e]
                term_offset[(n, idx)] = off
                off += t.shape[0]
            self.register_buffer(f"W_{n}", torch.as_tensor(w))
            start_n = int(cols[n][0, 0])
            self._irrep_terms.append((n, d_n, width, start_n, cols[n].shape[0]))
            blocks.append((f"B_{n}", cols[n].shape[0] * width))
        ref_width = sum(getattr(desc, name).shape[0] for *_, name in desc._ref_terms)
        self.ref_width = ref_width
        if ref_width:
            w = np.zeros((d_ref * d_ref, d_ref * ref_width))
            off = 0
            for r1, r2, r3, name in desc._ref_terms:
                t = getattr(desc, name).numpy()
                for kk in range(t.shape[0]):
                    for a in range(dim[r1]):
                        for b in range(dim[r2]):
                            for e in range(dim[r3]):
                                row = (ref_off[r2] + b) * d_ref + ref_off[r3] + e
                                w[row, (ref_off[r1] + a) * ref_width + off + kk] += t[kk, a, b, e]
                off += t.shape[0]
            self.register_buffer("W_ref", torch.as_tensor(w))
            blocks.append(("R3", ref_width))
        start = {}
        pos = 0
        for name, width in blocks:
            start[name] = pos
            pos += width
        # Selection matrix P (fused features -> descriptor features, descriptor order).
        p = np.zeros((pos, desc.n_features))
        j = 0
        if "A1" in cols:
            for c in range(cols["A1"].shape[0]):
                p[start["c"] + cols["A1"][c, 0], j] = 1.0
                j += 1
        for n in nontrivial:
            for c in range(cols[n].shape[0]):
                p[start["c2"] + cols[n][c], j] = 1.0
                j += 1
        widths = {n: w for n, _, w, _, _ in self._irrep_terms}
        counters = {n: 0 for n in nontrivial}
        for n, _, _, name in desc._copy_terms:
            idx = counters[n]
            counters[n] += 1
            kt = getattr(desc, name).shape[0]
            for c in range(cols[n].shape[0]):
                for kk in range(kt):
                    col = start[f"B_{n}"] + c * widths[n] + term_offset[(n, idx)] + kk
                    p[col, j] = 1.0
                    j += 1
        for kk in range(ref_width):
            p[start["R3"] + kk, j] = 1.0
            j += 1
        if j != desc.n_features:
            raise RuntimeError(f"fused bispectrum covers {j} of {desc.n_features} features.")
        self.register_buffer("basis", self._expand(torch.as_tensor(basis)))
        self.register_buffer("ref_map", torch.as_tensor(ref_map))
        self.register_buffer("w1", (torch.as_tensor(p) @ w_desc).contiguous())

    # ------------------------------------------------------------------ evaluation
    def object_values(self, spins: torch.Tensor) -> torch.Tensor:
        """Bond variables and chiralities of every site, (F, N, K) (as the descriptor)."""
        if self.shifts is not None:
            return self._object_values_periodic(spins)
        f, n = spins.shape[0], self.n_sites
        pad = torch.cat([spins, spins.new_zeros(f, 1, 3)], dim=1)
        parts = []
        if self.bond_idx.shape[1]:
            parts.append(torch.einsum("fna,fnka->fnk", spins, pad[:, self.bond_idx, :]))
        if self.tri_idx.shape[1]:
            cr = torch.linalg.cross(
                pad[:, self.tri_idx[..., 0], :], pad[:, self.tri_idx[..., 1], :], dim=-1
            )
            parts.append(torch.einsum("fna,fnka->fnk", spins, cr))
        vals = torch.cat(parts, dim=-1)
        vals = torch.cat([vals, vals.new_zeros(f, 1, vals.shape[-1])], dim=1)
        return vals.reshape(f, (n + 1) * self.n_shapes)[:, self.object_idx]

    def _expand(self, rows: torch.Tensor) -> torch.Tensor:
        """Map a matrix acting on object values (K rows) to the periodic layout.

        On periodic lattices :meth:`object_values` returns the per-shape fields at every
        anchor offset, ``u[(a, s)] = B_s(i + a)`` (A x S columns); object k is
        ``u[(a_k, s_k)]``, so ``v @ X = u @ (E @ X)`` with the 0/1 matrix E.
        """
        plan = self.shifts
        if plan is None:
            return rows
        anchors = plan.anchors
        e = torch.zeros(len(anchors) * len(plan.shapes), len(plan.objects), dtype=rows.dtype)
        for k, (shape, a) in enumerate(plan.objects):
            e[anchors.index(a) * len(plan.shapes) + shape, k] = 1.0
        return e @ rows

    def _object_values_periodic(self, spins: torch.Tensor) -> torch.Tensor:
        """Periodic lattices: translations are rolls of the (Ly, Lx) grid (no gathers).

        Returns the shape fields at every anchor offset, (F, N, A * S) (see ``_expand``).
        """
        plan = self.shifts
        f = spins.shape[0]
        grid = spins.reshape(f, plan.Ly, plan.Lx, 3)

        def shifted(g: torch.Tensor, d: tuple[int, int]) -> torch.Tensor:
            # shifted(g, d)[y, x] = g[y + dy, x + dx]
            return torch.roll(g, shifts=(-d[1], -d[0]), dims=(1, 2)) if d != (0, 0) else g

        fields = []
        for shape in plan.shapes:
            if len(shape) == 1:
                fields.append((grid * shifted(grid, shape[0])).sum(-1))
            else:
                cr = torch.linalg.cross(shifted(grid, shape[0]), shifted(grid, shape[1]), dim=-1)
                fields.append((grid * cr).sum(-1))
        stack = torch.stack(fields, dim=-1)  # (F, Ly, Lx, S)
        vals = torch.cat([shifted(stack, a) for a in plan.anchors], dim=-1)
        return vals.reshape(f, self.n_sites, vals.shape[-1])

    def forward(self, spins: torch.Tensor) -> torch.Tensor:
        v = self.object_values(spins)
        if not self.bispectrum:
            return v @ self.w1 + self.site_bias
        c = v @ self.basis
        r = c @ self.ref_map
        r = torch.cat([torch.ones_like(r[..., :1]), r[..., 1:]], dim=-1)  # R_0 = 1
        rr = (r[..., :, None] * r[..., None, :]).flatten(-2)  # (F, N, D^2)
        feats = [c, c * c]
        for n, d_n, width, at, copies in self._irrep_terms:
            m = (rr @ getattr(self, f"W_{n}")).unflatten(-1, (d_n, width))  # (F,N,d,w)
            f_n = c[..., at : at + copies * d_n].unflatten(-1, (copies, d_n))  # view
            b = f_n[..., 0, None] * m[..., None, 0, :]
            for a in range(1, d_n):
                b = b + f_n[..., a, None] * m[..., None, a, :]
            feats.append(b.flatten(-2))
        if self.ref_width:
            m = (rr @ self.W_ref).unflatten(-1, (self.d_ref, self.ref_width))
            feats.append((r[..., :, None] * m).sum(-2))
        return torch.cat(feats, dim=-1) @ self.w1 + self.site_bias


@dataclass(frozen=True)
class _Plan:
    """Translation plan of a periodic descriptor: shape offsets and object anchors."""

    Lx: int
    Ly: int
    shapes: list  # per shape: tuple of partner offsets (dx, dy) relative to the anchor
    objects: list  # per object: (shape index, anchor offset (dx, dy) from the centre)

    @property
    def anchors(self) -> list:
        """Distinct anchor offsets, in order of first appearance."""
        return list(dict.fromkeys(a for _, a in self.objects))


def _translation_plan(lattice, desc: BondDescriptor) -> _Plan:
    """Recover shape offsets and object anchors from the descriptor's index tensors.

    Checked for every site: the partner and anchor indices of site i are those of site 0
    translated by the coordinates of i (periodic lattices are translation invariant).
    """
    xy = lattice.coords
    bond = desc.bond_idx.numpy()
    tri = desc.tri_idx.numpy()
    obj = desc.object_idx.numpy()
    n_shapes = len(desc.shapes)

    def offset(j: int) -> tuple[int, int]:
        return int(xy[j, 0]), int(xy[j, 1])

    def moved(d: tuple[int, int]) -> NDArray:
        return lattice.index(xy[:, 0] + d[0], xy[:, 1] + d[1])

    shapes: list = []
    for s in range(bond.shape[1]):
        d = offset(bond[0, s])
        if not np.array_equal(bond[:, s], moved(d)):
            raise RuntimeError("bond index tensor is not translation invariant.")
        shapes.append((d,))
    for s in range(tri.shape[1]):
        ds = (offset(tri[0, s, 0]), offset(tri[0, s, 1]))
        if not all(np.array_equal(tri[:, s, v], moved(ds[v])) for v in range(2)):
            raise RuntimeError("triangle index tensor is not translation invariant.")
        shapes.append(ds)
    if len(shapes) != n_shapes:
        raise RuntimeError("descriptor shapes do not match its index tensors.")
    objects = []
    for k in range(obj.shape[1]):
        site, shape = divmod(int(obj[0, k]), n_shapes)
        a = offset(site)
        if not np.array_equal(obj[:, k], moved(a) * n_shapes + shape):
            raise RuntimeError("object index tensor is not translation invariant.")
        objects.append((shape, a))
    return _Plan(lattice.Lx, lattice.Ly, shapes, objects)


class _FastEnergy(torch.nn.Module):
    """Site outputs ``net(x_i)`` (F, N, n_out) from spins via the fused first layer."""

    def __init__(self, model: BPModel) -> None:
        super().__init__()
        self.first = _FusedFeatures(model)
        self.rest = copy.deepcopy(model.net[1:])

    def forward(self, spins: torch.Tensor) -> torch.Tensor:
        return self.rest(self.first(spins))


class _GenericEnergy(torch.nn.Module):
    """Site outputs through the model's own descriptor and network (fallback path)."""

    def __init__(self, model: BPModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, spins: torch.Tensor) -> torch.Tensor:
        return self.model.net(self.model.inputs(spins))


class MLFieldProvider:
    """Fast field provider for the LLG engine: spins (N, 3) -> fields (N, 3), NumPy in/out.

    .. math::

        E = \\sum_i \\varepsilon(G_i), \\qquad h_i = -\\partial E / \\partial S_i

    (generalized potential: ``h_i = -dE_A/dS_i + S_i x (-dE_B/dS_i)``; vector model:
    ``h_i = sum_k [w_ik S_{i+d_k} + u_ik S_i x S_{i+d_k}]``), units of t.

    Parameters
    ----------
    model : BPModel
        Trained model for the lattice of the run (it is not modified: the provider works
        on a copy cast to ``dtype`` and moved to ``device``).
    dtype : {"float32", "float64"}
        Precision of the evaluation (default float32; energies are summed in float64).
    device : str or torch.device
        ``"cpu"`` or ``"cuda"`` (any torch device string).
    compile : bool
        Wrap the energy function in :func:`torch.compile` (first call compiles).
    threads : int, optional
        Set ``torch.set_num_threads`` (process-wide) to this value.
    fused : bool
        Use the fused descriptor/first-layer path (checked against the model at
        construction; falls back to the generic path with a warning on mismatch).

    Notes
    -----
    ``solve(spins)`` returns an :class:`MLResult` with energy and fields from one pass, so
    :class:`mllg.dynamics.LLG` records energies at no extra cost. ``timings`` accumulates
    seconds spent in ``to_torch``, ``forward``, ``backward`` and ``to_numpy``.
    """

    def __init__(
        self,
        model: BPModel,
        dtype: str = "float32",
        device: str | torch.device = "cpu",
        compile: bool = False,
        threads: int | None = None,
        fused: bool = True,
    ) -> None:
        if dtype not in PROVIDER_DTYPES:
            allowed = tuple(PROVIDER_DTYPES)
            raise ValueError(f"dtype={dtype!r} is not allowed; use one of {allowed}.")
        if threads is not None:
            if int(threads) < 1:
                raise ValueError(f"threads={threads!r} must be an integer >= 1.")
            torch.set_num_threads(int(threads))
        self.lattice = model.lattice
        self.config = model.config
        self.n_out = model.n_out
        self.n_energies = model.n_energies
        self.vector = model.potential == "vector"
        self.device = torch.device(device)
        self.dtype = PROVIDER_DTYPES[dtype]
        self.vector_index = model.vector_index.detach().to(self.device)
        base = copy.deepcopy(model).eval()
        for p in base.parameters():
            p.requires_grad_(False)
        self.energy_scale = float(base.energy_scale)
        self.energy_shift = base.energy_shift.detach().double().cpu().numpy()
        self._shift = base.energy_shift.detach().to(device=self.device, dtype=self.dtype)
        self.fused = False
        net: torch.nn.Module = _GenericEnergy(base)
        if fused:
            try:
                fast = _FastEnergy(base.double())
                _check_fused(fast, base.double())
                net, self.fused = fast, True
            except (TypeError, RuntimeError, AssertionError) as err:
                warnings.warn(
                    f"fused ML path unavailable ({err}); using the generic descriptor.",
                    stacklevel=2,
                )
        self.net = net.to(device=self.device, dtype=self.dtype).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self._energy_fn = torch.compile(self.net, dynamic=False) if compile else self.net
        self.timings = {"to_torch": 0.0, "forward": 0.0, "backward": 0.0, "to_numpy": 0.0}
        self.calls = 0

    @property
    def model(self) -> torch.nn.Module:
        """The evaluated module (copy of the model, fused or generic)."""
        return self.net

    def _check(self, spins: NDArray) -> NDArray[np.float64]:
        spins = np.asarray(spins, dtype=float)
        if spins.shape != (self.lattice.N, 3):
            raise ValueError(
                f"spins have shape {spins.shape}; this model's lattice needs ({self.lattice.N}, 3)."
            )
        return spins

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def evaluate(self, spins: NDArray, energy: bool = True) -> MLResult:
        """Energies ``(E,)``, ``(E_A, E_B)`` or none (vector) and fields (N, 3)."""
        spins = self._check(spins)
        if self.vector:
            return self._evaluate_vector(spins)
        t0 = time.perf_counter()
        s = torch.as_tensor(spins, dtype=self.dtype, device=self.device)[None]
        s.requires_grad_(True)
        self._sync()
        t1 = time.perf_counter()
        with torch.enable_grad():
            out = self._energy_fn(s)  # (1, N, n_out)
            totals = out.sum(dim=(0, 1))
            self._sync()
            t2 = time.perf_counter()
            grads = [
                torch.autograd.grad(totals[k], s, retain_graph=k + 1 < self.n_out)[0][0]
                for k in range(self.n_out)
            ]
        h = -self.energy_scale * grads[0]
        if self.n_out == 2:
            h = h + torch.linalg.cross(s[0].detach(), -self.energy_scale * grads[1], dim=-1)
        self._sync()
        t3 = time.perf_counter()
        fields = h.detach().to("cpu", torch.float64).numpy()
        if energy:
            site_sum = out.detach().to("cpu", torch.float64).sum(dim=(0, 1)).numpy()
            e = self.energy_scale * site_sum + self.lattice.N * self.energy_shift
        else:
            e = np.full(self.n_out, np.nan)
        t4 = time.perf_counter()
        for key, dt in zip(self.timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            self.timings[key] += dt
        self.calls += 1
        return MLResult(energy=e[:1].copy(), fields=fields, energies=e)

    def _evaluate_vector(self, spins: NDArray) -> MLResult:
        """Vector model: slot coefficients from one forward pass, fields without autograd."""
        t0 = time.perf_counter()
        s = torch.as_tensor(spins, dtype=self.dtype, device=self.device)[None]
        self._sync()
        t1 = time.perf_counter()
        with torch.no_grad():
            coeffs = self._energy_fn(s) * self.energy_scale + self._shift  # (1, N, 2K)
            self._sync()
            t2 = time.perf_counter()
            h = vector_fields(s, coeffs, self.vector_index)[0]
            self._sync()
        t3 = time.perf_counter()
        fields = h.to("cpu", torch.float64).numpy()
        t4 = time.perf_counter()
        for key, dt in zip(self.timings, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            self.timings[key] += dt
        self.calls += 1
        return MLResult(energy=np.full(1, np.nan), fields=fields, energies=np.zeros(0))

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        return self.evaluate(spins, energy=False).fields

    def solve(self, spins: NDArray) -> MLResult:
        """Fields and energy from one pass (used by :meth:`mllg.dynamics.LLG.run`)."""
        return self.evaluate(spins, energy=True)

    def energy(self, spins: NDArray) -> NDArray[np.float64]:
        """Model energy ``E`` or ``(E_A, E_B)`` (units of t; empty for the vector model)."""
        e = self.evaluate(spins, energy=True).energies
        return e[: self.n_energies]

    def settings(self) -> dict:
        """Provider settings recorded in trajectory attrs."""
        return {
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "fused": self.fused,
        }


def _check_fused(fast: _FastEnergy, model: BPModel, seed: int = 0) -> None:
    """Assert the fused path reproduces the model's site outputs in float64."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(1, model.lattice.N, 3))
    s /= np.linalg.norm(s, axis=-1, keepdims=True)
    st = torch.as_tensor(s, dtype=torch.float64)
    with torch.no_grad():
        ref = model.net(model.inputs(st))
        got = fast(st)
    err = float((got - ref).abs().max())
    scale = float(ref.abs().max()) + 1e-12
    if not err <= 1e-9 * scale:
        raise AssertionError(f"fused outputs differ from the model by {err:.2e}")


class Committee:
    """Committee of independently trained models: mean field and per-site spread.

    The uncertainty of site i is the committee standard deviation of the perpendicular
    field, ``sigma_i = sqrt(mean_m |h_perp,i^(m) - <h_perp,i>|^2)`` (units of t).
    """

    def __init__(self, models: list[BPModel]) -> None:
        if len(models) < 2:
            raise ValueError(f"a committee needs at least 2 models, got {len(models)}.")
        self.models = [m.eval() for m in models]

    def predict(self, spins: NDArray) -> dict[str, NDArray]:
        """``fields`` mean (F, N, 3) and ``sigma`` (F, N) for spins (F, N, 3) or (N, 3)."""
        spins = np.asarray(spins, dtype=float)
        h = np.stack([m.predict(spins)["fields"] for m in self.models])
        h_perp = h - np.sum(h * spins, axis=-1, keepdims=True) * spins
        mean = h.mean(0)
        sigma = np.sqrt(((h_perp - h_perp.mean(0)) ** 2).sum(-1).mean(0))
        return {"fields": mean, "sigma": sigma}

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        return self.predict(spins)["fields"]
