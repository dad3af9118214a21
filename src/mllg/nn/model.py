"""Behler–Parrinello (BP) models of the exchange field, export/import and field providers.

Conservative model (equilibrium systems)::

    E = sum_i eps(G_i),        h_i = - dE / dS_i

Generalized potential (driven systems; Zhang & Chern, npj Comput. Mater. 9, 32 (2023)):
the network gives two scalars per site, ``a_i`` and ``b_i``, ``E_A = sum_i a_i``,
``E_B = sum_i b_i`` and::

    h_i = - dE_A / dS_i + S_i x ( - dE_B / dS_i )

Vector model (driven systems; equivariant vector output): for the ``K`` lattice
displacements ``d_k`` with ``0 < |d_k| <= vector_r_cut`` (the *slots*) the network gives
``2 K`` scalars per site, ``w_ik`` and ``u_ik``, and::

    h_i = sum_k [ w_ik(G_i) S_{i + d_k} + u_ik(G_i) S_i x S_{i + d_k} ]

with ``S_{i + d_k} = 0`` where ``i + d_k`` lies outside an open strip (beyond the ends or,
for ``periodic_y = False``, the edges) and wrapped along periodic directions. As ``G_i``
is invariant under global spin rotations ``R``, ``h_i[R S] = R h_i[S]`` exactly, and the
field is translation covariant along periodic directions. The slot weights are free, so
terms odd in x (a current along x: the adiabatic spin-transfer field
``b S_i x (S_{i+1} - S_{i-1}) / 2`` and the nonadiabatic ``beta (S_{i+1} - S_{i-1}) / 2``)
are representable; they are first order in the spin gradient, which no sum of local
rotation-invariant scalars can produce (``S . dS/dx = 0``). The field is no gradient:
the model has no energy (``energy`` is an empty ``(F, 0)`` tensor). On a strip of width
``W > 1`` the mirror ``y -> -y`` maps slot ``(dx, dy)`` to ``(dx, -dy)``; with the
mirror-invariant bispectrum descriptor the per-slot weights cannot follow it exactly, so
train with ``augment_point_group`` (exact labels) or use the ``plain`` descriptor. On a
chain the slots are ``(dx, 0)`` only and the question does not arise.

Units: energies and fields in units of the hopping t (spins are dimensionless unit
vectors). The gradients are taken with respect to the unconstrained 3-vectors S_i; only
the components perpendicular to S_i are physical (they are what the loss and the
metrics use).

Normalization is part of the model (buffers in the state dict): descriptor features are
standardized, ``x = (G - mean) / std``, and the network output is scaled,
``eps_i = energy_scale * net(x) + energy_shift``. For a strip with ``lead_columns = n``
every site also gets ``2 n`` inputs, the one-hot encoding of its distance (in columns)
to the left and to the right lead when that distance is below ``n`` (zero in the bulk).
The evaluation folds the standardization into the first linear layer (``W x + b =
(W / std) G + b - (W / std) mean``, recomputed from the parameters on every call), so no
pass over the ``(F, N, n_in)`` features is spent on it; the stored parameters and their
meaning are those of the formula above.

Message passing (``ModelConfig.message_r_cut > 0``, conservative or generalized): the
site energy reads the embeddings of the neighbouring sites,

    z_i = phi(G_i),    eps_i = psi(z_i, z_{i + d_1}, ..., z_{i + d_K}),  0 < |d_k| <= r_m

(``phi``: the first hidden layer and a ``message_width`` layer; ``psi``: the other hidden
layers). ``eps_i`` then depends on the spins within ``r_c + r_m`` and on products of
local invariants at different sites (chirality near i times the bonds near j), which no
function of ``G_i`` alone can represent beyond the descriptor's inner radius; the field
is still ``-dE/dS`` (conservative). The displacements enter per slot, like the plain
descriptor's objects: lattice symmetry comes from augmentation.

Pair exchange (``ModelConfig.pair_r_cut > 0``, conservative or generalized): a learned
bilinear exchange with one coupling per neighbour shell is added to ``E`` (``E_A``),

    E_pair = 1/2 sum_i sum_{0 < |d| <= r_p} J(|d|) S_i . S_{i + d},
    h_i^pair = - sum_{0 < |d| <= r_p} J(|d|) S_{i + d}

(couplings in units of t, exactly invariant under spin rotations, time reversal and the
lattice point group). It carries the RKKY-like pair part of the field to ``r_p``, beyond
the network's range: the plain descriptor holds bonds longer than its inner radius only
through the centre site, so no site energy reads ``S_i . S_k`` for ``|r_ik| > r_c``.
Training fixes the couplings by a least-squares fit of the perpendicular field
(:func:`mllg.nn.training.fit_pair_couplings`, the best pair-only model) before the first
step; the network then learns the rest. The couplings are a buffer, not trained:
Adam's steps of about ``lr`` are large against couplings of order 1e-2 t and spoil
the fit.

Export (:func:`save_model`) writes ``config.json`` and ``weights.pt`` (a plain state dict);
:func:`load_model` reads them with ``torch.load(weights_only=True)`` so no pickled code
runs, and rebuilds the descriptor for any lattice of the same kind (locality: a model
trained on 12x12 runs on 100x100).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

import mllg
from mllg.descriptors import make_descriptor
from mllg.lattice import Lattice
from mllg.settings import ModelConfig

__all__ = [
    "ACTIVATIONS",
    "DTYPES",
    "FORMAT_VERSION",
    "BPModel",
    "ModelConfig",
    "check_state_dict",
    "gather_neighbours",
    "lead_encoding",
    "load_model",
    "pair_fields",
    "pair_slots",
    "save_model",
    "vector_fields",
    "vector_slots",
]

#: Torch objects of the activation and precision names of :class:`ModelConfig`.
ACTIVATIONS = {"silu": torch.nn.SiLU, "tanh": torch.nn.Tanh, "relu": torch.nn.ReLU}
DTYPES = {"float64": torch.float64, "float32": torch.float32}
FORMAT_VERSION = 1


def lead_encoding(lattice: Lattice, lead_columns: int) -> NDArray[np.float64]:
    """One-hot distance to the leads, shape (N, 2 * lead_columns).

    Column ``k`` (``k < n``) is 1 on sites with ``x == k`` (distance k to the left lead);
    column ``n + k`` is 1 on sites with ``x == Lx - 1 - k`` (right lead).
    """
    n = int(lead_columns)
    out = np.zeros((lattice.N, 2 * n))
    if n == 0:
        return out
    if lattice.kind != "strip":
        raise ValueError(f"lead_columns={n} needs a strip lattice, not {lattice.kind!r}.")
    x = lattice.x
    for k in range(n):
        out[x == k, k] = 1.0
        out[x == lattice.Lx - 1 - k, n + k] = 1.0
    return out


def vector_slots(lattice: Lattice, r_cut: float) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Slots of the vector model: displacements and neighbour index table.

    Parameters
    ----------
    lattice : Lattice
    r_cut : float
        Largest slot length (nearest-neighbour distances).

    Returns
    -------
    offsets : ndarray of int, shape (K, 2)
        Lattice displacements ``d_k = (dx, dy)`` with ``0 < |d_k| <= r_cut``, sorted by
        length then angle (the order of the network outputs ``w_k``, ``u_k``), without
        those that leave every site of a strip with open edges (``|dy| >= W``; a chain
        keeps the slots along x only). The slots do not depend on ``Lx``, so a model
        trained on one strip length runs on any other of the same width.
    index : ndarray of int, shape (N, K)
        Site ``i + d_k`` (wrapped along periodic directions); ``N`` (a zero padding spin)
        where it lies outside an open strip.
    """
    offsets, _ = lattice.lattice_vectors(float(r_cut))
    if not lattice.periodic[1]:
        offsets = offsets[np.abs(offsets[:, 1]) < lattice.Ly]
    nb = lattice.index(
        lattice.x[:, None] + offsets[None, :, 0], lattice.y[:, None] + offsets[None, :, 1]
    )
    return offsets.astype(np.int64), np.where(nb < 0, lattice.N, nb).astype(np.int64)


def gather_neighbours(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Values of the neighbours ``x[..., index[i, k], :]``, shape (..., N, K, d), from ``x``
    (..., N, d) and an (N, K) table whose entry ``N`` (a site off an open strip) reads
    zeros (the tables of :func:`vector_slots` and :func:`pair_slots`)."""
    pad = torch.cat([x, x.new_zeros(*x.shape[:-2], 1, x.shape[-1])], dim=-2)
    return pad[..., index, :]


def pair_slots(
    lattice: Lattice, r_cut: float
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
    """Displacements of the pair term grouped into shells.

    Returns
    -------
    offsets : ndarray of int, shape (K, 2)
        The displacements ``d_k = (dx, dy)`` (lattice basis).
    index : ndarray of int, shape (N, K)
        Site ``i + d_k`` for the ``K`` displacements ``0 < |d_k| <= r_cut`` of
        :func:`vector_slots` (``N``: outside an open strip).
    shell : ndarray of int, shape (K,)
        Shell of each displacement (0 = nearest neighbours).
    radii : ndarray of float, shape (n_shells,)
        Shell radii (nearest-neighbour distances); independent of the lattice size, so
        the couplings of a model trained on one size apply to any other.
    """
    offsets, index = vector_slots(lattice, r_cut)
    cart = offsets @ lattice.primitive
    radii, shell = np.unique(np.round(np.hypot(cart[:, 0], cart[:, 1]), 6), return_inverse=True)
    return offsets, index, shell.astype(np.int64), radii


def pair_fields(spins: torch.Tensor, coupling: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Pair-exchange field ``h_i = - sum_k J_k S_{i + d_k}`` (F, N, 3), units of t.

    ``coupling`` (K,) holds ``J(|d_k|)`` per displacement; ``index`` is the (N, K) table of
    :func:`pair_slots` (``N`` = zero padding spin).
    """
    return -torch.einsum("k,fnka->fna", coupling, gather_neighbours(spins, index))


def vector_fields(spins: torch.Tensor, coeffs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Field of the vector model, ``h_i = sum_k [w_ik S_{j(i,k)} + u_ik S_i x S_{j(i,k)}]``.

    Parameters
    ----------
    spins : tensor (F, N, 3)
        Unit spins (dimensionless).
    coeffs : tensor (F, N, 2K)
        ``(w_i1..w_iK, u_i1..u_iK)`` in units of t.
    index : tensor (N, K)
        Neighbour table of :func:`vector_slots` (``N`` = zero padding spin).

    Returns
    -------
    tensor (F, N, 3)
        Fields in units of t. Uses ``S_i x sum_k u_ik S_j = sum_k u_ik S_i x S_j``: one
        gather, two weighted sums and one cross product.
    """
    k = index.shape[1]
    nb = gather_neighbours(spins, index)  # (F, N, K, 3)
    w = torch.einsum("fnk,fnka->fna", coeffs[..., :k], nb)
    u = torch.einsum("fnk,fnka->fna", coeffs[..., k:], nb)
    return w + torch.linalg.cross(spins, u, dim=-1)


class BPModel(torch.nn.Module):
    """Behler–Parrinello model: one site network applied to every descriptor ``G_i``.

    Parameters
    ----------
    lattice : Lattice
    config : ModelConfig

    Call ``model(spins)`` with spins (F, N, 3) (or (N, 3)) to get a dict with
    ``energy`` (F, n_energies) -- total ``E`` (conservative), ``(E_A, E_B)``
    (generalized) or nothing (vector, shape (F, 0)) -- and ``fields`` (F, N, 3).
    ``n_out`` is the number of network outputs per site (1, 2 or ``2 K``).
    """

    def __init__(self, lattice: Lattice, config: ModelConfig | None = None) -> None:
        super().__init__()
        config = config or ModelConfig()
        self.lattice = lattice
        self.config = config
        self.descriptor = make_descriptor(lattice, config.descriptor)
        lead = lead_encoding(lattice, config.lead_columns)
        self.register_buffer("lead", torch.as_tensor(lead), persistent=False)
        n_in = self.descriptor.n_features + lead.shape[1]
        self.potential = config.potential
        if config.potential == "vector":
            offsets, index = vector_slots(lattice, config.vector_r_cut)
            self.slot_offsets = offsets
            self.register_buffer("vector_index", torch.as_tensor(index), persistent=False)
            self.n_out = 2 * len(offsets)
        else:
            self.slot_offsets = np.zeros((0, 2), dtype=np.int64)
            self.register_buffer(
                "vector_index", torch.zeros((lattice.N, 0), dtype=torch.int64), persistent=False
            )
            self.n_out = 1 if config.potential == "conservative" else 2
        act = ACTIVATIONS[config.activation]
        if config.message_r_cut:
            # embedding phi: G_i -> z_i (first hidden width, then message_width)
            _, index = vector_slots(lattice, config.message_r_cut)
            m, h0 = config.message_width, config.hidden[0]
            self.net = torch.nn.Sequential(
                torch.nn.Linear(n_in, h0), act(), torch.nn.Linear(h0, m), act()
            )
            width, hidden = m * (index.shape[1] + 1), config.hidden[1:]
        else:
            index = np.zeros((lattice.N, 0), dtype=np.int64)
            width, hidden = n_in, config.hidden
        self.register_buffer("message_index", torch.as_tensor(index), persistent=False)
        offsets, index, shell, radii = pair_slots(lattice, config.pair_r_cut)  # empty at 0
        self.pair_offsets, self.pair_radii = offsets, radii
        self.register_buffer("pair_index", torch.as_tensor(index), persistent=False)
        self.register_buffer("pair_shell", torch.as_tensor(shell), persistent=False)
        # J per shell, units of t: a buffer set by training.fit_pair_couplings and held
        # fixed (Adam steps of size lr on couplings of order 1e-2 t spoiled the fit); none
        # without a pair term, so such models keep their state-dict keys
        self.register_buffer("pair_coupling", torch.zeros(len(radii)) if len(radii) else None)
        layers: list[torch.nn.Module] = []
        for h in hidden:
            layers += [torch.nn.Linear(width, h), act()]
            width = h
        layers.append(torch.nn.Linear(width, self.n_out))
        if config.message_r_cut:
            self.head = torch.nn.Sequential(*layers)
        else:
            self.net = torch.nn.Sequential(*layers)
            self.head = torch.nn.Identity()
        self.register_buffer("feature_mean", torch.zeros(n_in))
        self.register_buffer("feature_std", torch.ones(n_in))
        self.register_buffer("energy_scale", torch.ones(()))
        self.register_buffer("energy_shift", torch.zeros(self.n_out))
        self.to(DTYPES[config.dtype])

    @property
    def dtype(self) -> torch.dtype:
        return self.feature_mean.dtype

    @property
    def n_energies(self) -> int:
        """Number of model energies: 1 (``E``), 2 (``E_A, E_B``) or 0 (vector model)."""
        return 0 if self.potential == "vector" else self.n_out

    def inputs(self, spins: torch.Tensor) -> torch.Tensor:
        """Standardized network inputs ``x = (G - mean) / std``, (F, N, n_in).

        The reference formula: :meth:`network_outputs` gives ``net(x)`` without forming
        ``x`` (the standardization is folded into the first layer).
        """
        g = self.descriptor(spins)
        if self.lead.shape[1]:
            g = torch.cat([g, self.lead.to(g.dtype).expand(g.shape[0], -1, -1)], dim=-1)
        return (g - self.feature_mean) / self.feature_std

    def folded_first_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """First layer with the standardization folded in: ``(W / std, b - (W / std) mean)``.

        ``W x + b`` with ``x = (G - mean) / std`` equals ``(W / std) G + b - (W / std) mean``
        (``W / std`` scales column j by ``1 / std_j``). Computed from the parameters and
        buffers on every call (``n_hidden x n_in``, negligible), so training, checkpoints
        (unchanged state-dict keys and shapes) and exported models are unaffected.
        """
        first = self.net[0]
        weight = first.weight / self.feature_std
        bias = first.bias - weight @ self.feature_mean
        return weight, bias

    def network_outputs(self, spins: torch.Tensor) -> torch.Tensor:
        """Raw network outputs ``net(x_i)`` (F, N, n_out), equal to ``net(inputs(spins))``.

        Evaluates the folded first layer (:meth:`folded_first_layer`) on the descriptor
        directly: no pass over ``(F, N, n_in)`` for the standardization (forward or
        backward) and no concatenation of the lead encoding, whose constant contribution
        ``lead (W / std)_lead^T`` is added per site.
        """
        g = self.descriptor(spins)  # (F, N, n_features) or (N, n_features)
        weight, bias = self.folded_first_layer()
        n_feat = g.shape[-1]
        if self.lead.shape[1]:
            bias = self.lead.to(weight.dtype) @ weight[:, n_feat:].T + bias  # (N, h_1)
            weight = weight[:, :n_feat]
        out = self.net[1:](torch.nn.functional.linear(g, weight) + bias)
        return self.head(self.messages(out)) if self.message_index.shape[1] else out

    @property
    def message_passing(self) -> bool:
        """Whether the site network reads the neighbours' embeddings (``message_r_cut > 0``)."""
        return bool(self.message_index.shape[1])

    def messages(self, z: torch.Tensor) -> torch.Tensor:
        """Head input ``[z_i, z_{i + d_1}, ..., z_{i + d_K}]`` (..., N, (K + 1) m) from the
        embeddings ``z`` (..., N, m); a displacement off an open strip reads zeros."""
        nb = gather_neighbours(z, self.message_index)  # (..., N, K, m)
        return torch.cat([z, nb.flatten(-2)], dim=-1)

    def pair_fields(self, spins: torch.Tensor) -> torch.Tensor:
        """Field of the pair term, ``- sum_k J(|d_k|) S_{i + d_k}`` (F, N, 3), units of t
        (zeros without a pair term)."""
        if self.pair_coupling is None:
            return torch.zeros_like(spins)
        return pair_fields(spins, self.pair_coupling[self.pair_shell], self.pair_index)

    def site_energies(self, spins: torch.Tensor) -> torch.Tensor:
        """Site outputs (F, N, n_out), units of t.

        Site energies ``eps_i``, ``(a_i, b_i)`` (generalized) or the slot coefficients
        ``(w_i1..w_iK, u_i1..u_iK)`` (vector model). With a pair term, ``eps_i`` (``a_i``)
        includes ``1/2 sum_k J_k S_i . S_{i + d_k} = - S_i . h_i^pair / 2``.
        """
        out = self.network_outputs(spins) * self.energy_scale + self.energy_shift
        if self.pair_coupling is None:
            return out
        e_pair = -0.5 * (spins * self.pair_fields(spins)).sum(-1, keepdim=True)
        return torch.cat([out[..., :1] + e_pair, out[..., 1:]], dim=-1)

    def forward(self, spins: torch.Tensor, create_graph: bool = False) -> dict[str, torch.Tensor]:
        """Energies and fields; ``create_graph=True`` keeps the graph for training."""
        single = spins.ndim == 2
        s = spins[None] if single else spins
        if s.ndim != 3 or s.shape[-1] != 3:
            raise ValueError(
                f"spins must have shape (N, 3) or (F, N, 3); got {tuple(spins.shape)}."
            )
        if self.potential == "vector":  # direct output: no derivative of the descriptor
            with torch.set_grad_enabled(create_graph):
                fields = vector_fields(s, self.site_energies(s), self.vector_index)
            energy = s.new_zeros(s.shape[0], 0)
            if not create_graph:
                fields = fields.detach()
            if single:
                return {"energy": energy[0], "fields": fields[0]}
            return {"energy": energy, "fields": fields}
        with torch.enable_grad():
            if not s.requires_grad:
                s = s.detach().requires_grad_(True)
            energy = self.site_energies(s).sum(dim=1)  # (F, n_out)
            grads = [
                torch.autograd.grad(
                    energy[:, k].sum(), s, create_graph=create_graph, retain_graph=True
                )[0]
                for k in range(self.n_out)
            ]
        fields = -grads[0]
        if self.n_out == 2:
            fields = fields + torch.linalg.cross(s, -grads[1], dim=-1)
        if not create_graph:
            energy, fields = energy.detach(), fields.detach()
        if single:
            return {"energy": energy[0], "fields": fields[0]}
        return {"energy": energy, "fields": fields}

    def predict(self, spins: NDArray, batch_size: int = 16) -> dict[str, NDArray]:
        """NumPy convenience: ``energy`` (F, n_energies) and ``fields`` (F, N, 3) for (F, N, 3)."""
        spins = np.asarray(spins, dtype=float)
        single = spins.ndim == 2
        batch = spins[None] if single else spins
        energies, fields = [], []
        for start in range(0, batch.shape[0], batch_size):
            out = self(torch.as_tensor(batch[start : start + batch_size], dtype=self.dtype))
            energies.append(out["energy"].cpu().numpy())
            fields.append(out["fields"].cpu().numpy())
        e, h = np.concatenate(energies), np.concatenate(fields)
        return {"energy": e[0], "fields": h[0]} if single else {"energy": e, "fields": h}


# ---------------------------------------------------------------------------- export / import
def save_model(model: BPModel, path: str | Path, extra: dict | None = None) -> Path:
    """Write ``config.json`` and ``weights.pt`` (state dict only) into directory ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    lat = model.lattice
    meta = {
        "format_version": FORMAT_VERSION,
        "mllg_version": mllg.__version__,
        "lattice": lat.kind,
        "Lx": lat.Lx,
        "Ly": lat.Ly,
        "periodic_y": bool(lat.periodic_y),
        "n_features": model.descriptor.n_features,
        "model": model.config.to_dict(),
        "extra": extra or {},
    }
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, path / "weights.pt")
    (path / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    return path


def load_model(path: str | Path, lattice: Lattice | None = None) -> BPModel:
    """Load an exported model for ``lattice`` (default: the training lattice).

    Raises ``ValueError`` with one sentence when the lattice kind, the descriptor or the
    weights do not match; weights are read with ``torch.load(weights_only=True)``.
    """
    path = Path(path)
    cfg_file, w_file = path / "config.json", path / "weights.pt"
    if not cfg_file.exists() or not w_file.exists():
        raise FileNotFoundError(
            f"{path} is not an exported mllg model (needs config.json and weights.pt)."
        )
    try:
        meta = json.loads(cfg_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{cfg_file} is not valid JSON ({err}); re-export the model.") from err
    missing = [
        k
        for k in ("lattice", "Lx", "Ly", "periodic_y", "model", "n_features")
        if not isinstance(meta, dict) or k not in meta
    ]
    if missing:
        raise ValueError(f"{cfg_file} lacks the keys {missing} of an exported mllg model.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"model format_version={meta.get('format_version')!r} in {cfg_file} is not supported "
            f"(expected {FORMAT_VERSION})."
        )
    if lattice is None:
        lattice = Lattice(meta["lattice"], meta["Lx"], meta["Ly"], meta["periodic_y"])
    if lattice.kind != meta["lattice"]:
        raise ValueError(
            f"the model in {path} was trained on a {meta['lattice']!r} lattice and cannot be "
            f"used on a {lattice.kind!r} lattice."
        )
    model = BPModel(lattice, ModelConfig.from_dict(meta["model"]))
    if model.descriptor.n_features != meta["n_features"]:
        raise ValueError(
            f"the descriptor of the model in {path} has {meta['n_features']} features but this "
            f"code builds {model.descriptor.n_features}; the descriptor definition changed."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(w_file, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError (code or other objects), truncated files
        raise ValueError(
            f"{w_file} is not a plain tensor state dict: torch.load(weights_only=True) refused "
            f"it ({type(err).__name__}; it may hold code or other objects, which are never "
            "run); re-export the model with mllg.nn.save_model."
        ) from None
    if not isinstance(state, dict):
        raise ValueError(f"{w_file} holds a {type(state).__name__}, not a state dict.")
    check_state_dict(model, state, str(path))
    model.load_state_dict(state)
    model.eval()
    return model


def check_state_dict(model: BPModel, state: dict, source: str) -> None:
    """Raise one clear ``ValueError`` if ``state`` does not fit ``model``."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        raise ValueError(
            f"the weights in {source} do not fit this model (missing {missing[:3]}, unexpected "
            f"{unexpected[:3]}, wrong shapes {shapes[:3]}): it was made for another descriptor "
            "or network."
        )
