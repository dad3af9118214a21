"""Field providers built on BP models, for the LLG engine and for uncertainty estimates.

:class:`MLFieldProvider` maps spins (N, 3) to exchange fields (N, 3) (units of t) with a
trained :class:`mllg.nn.model.BPModel`; :class:`Committee` averages independently trained
models and gives the per-site spread of their perpendicular fields.

Evaluation
----------
The provider evaluates a *copy* of the model (float32 by default, float64 on request,
on ``cpu`` or ``cuda``) through the model's own code: the descriptor
(:mod:`mllg.descriptors`, the one implementation used for training and inference) and
:meth:`mllg.nn.model.BPModel.network_outputs` (standardization folded into the first
layer). On top of that:

* fields ``h_i = -dE/dS_i`` (and ``+ S_i x (-dE_B/dS_i)`` for the generalized potential):
  the network's input gradient ``dE/dG`` is back-propagated explicitly through the MLP
  (:class:`_NetworkGradient`: 2D GEMMs, the activations' fused backward kernels, the
  result written channel-major as the descriptor stores ``G``), and only the descriptor
  runs under autograd, one reverse pass per output with respect to the spins; the
  parameters of the copy do not require gradients and no higher-order graph is built;
* the vector model needs no derivative: its ``2 K`` site outputs (scaled and shifted)
  are the slot coefficients of ``h_i = sum_k [w_ik S_{i+d_k} + u_ik S_i x S_{i+d_k}]``
  (:func:`mllg.nn.model.vector_fields`), evaluated without autograd;
* a message-passing model (``message_r_cut > 0``) couples the sites' embeddings, so its
  network is no per-site map: its site outputs run under autograd, one reverse pass per
  output with respect to the spins;
* ``compile=True`` wraps the network step (and the site outputs of the vector and
  message-passing models) in :func:`torch.compile`.

Energies are summed in float64.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from numpy.typing import NDArray

from mllg.descriptors import PlainDescriptor
from mllg.nn.model import BPModel, vector_fields

__all__ = [
    "PROVIDER_DTYPES",
    "Committee",
    "MLFieldProvider",
    "MLResult",
]

PROVIDER_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_CPU_BLOCK = 2048  # sites per cache block on a CPU (network step, fused path)


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


class _PairConvolution:
    """Pair field on a torus as one circular convolution per spin component.

    ``h_i = - sum_k J_k S_{i + d_k}`` is ``h = - K * S`` with the kernel ``K(-d_k) += J_k``
    on the ``Ly x Lx`` site grid (site ``x + Lx y``), evaluated as
    ``- irfft2(rfft2(K) rfft2(S))``: ``O(N log N)`` against ``O(N K)`` for the gather of
    :meth:`mllg.nn.model.BPModel.pair_fields` (126 displacements at ``r_p = 6``). The
    kernel's spectrum is computed once; displacements that wrap onto one site on a small
    torus add up, as in the gather.
    """

    def __init__(self, model: BPModel, device: torch.device, dtype: torch.dtype) -> None:
        lat = model.lattice
        self.shape = (lat.Ly, lat.Lx)
        off = model.pair_offsets
        kernel = np.zeros(self.shape)
        coupling = model.pair_coupling[model.pair_shell].detach().double().cpu().numpy()
        np.add.at(kernel, (np.mod(-off[:, 1], lat.Ly), np.mod(-off[:, 0], lat.Lx)), coupling)
        self.spectrum = torch.fft.rfft2(torch.as_tensor(kernel, dtype=dtype, device=device))

    def __call__(self, spins: torch.Tensor) -> torch.Tensor:
        """Pair field (N, 3) of spins (N, 3), units of t."""
        grid = spins.T.reshape(3, *self.shape)
        h = torch.fft.irfft2(torch.fft.rfft2(grid) * self.spectrum, s=self.shape)
        return -h.reshape(3, -1).T


class _SiteOutputs(torch.nn.Module):
    """Raw site outputs ``net(x_i)`` (F, N, n_out) of a model copy (the unit compiled)."""

    def __init__(self, model: BPModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, spins: torch.Tensor) -> torch.Tensor:
        return self.model.network_outputs(spins)


_ACTIVATION_BACKWARD = {
    # (grad, pre-activation z, activation a) -> grad * act'(z), one fused kernel each
    "silu": lambda g, z, a: torch.ops.aten.silu_backward(g, z),
    "tanh": lambda g, z, a: torch.ops.aten.tanh_backward(g, a),
    "relu": lambda g, z, a: torch.ops.aten.threshold_backward(g, z, 0.0),
}


class _NetworkGradient(torch.nn.Module):
    """Site outputs of the folded MLP and their input gradients, back-propagated by hand.

    For the layers ``z_l = W_l a_{l-1} + b_l``, ``a_l = act(z_l)`` (``a_0 = G``, first layer
    with the standardization and the lead encoding folded in, as
    :meth:`mllg.nn.model.BPModel.network_outputs`) and the output ``y = W_L a_{L-1} + b_L``,
    the gradient of output ``k`` is ``dy_k/dG = W_1^T (act'(z_1) * W_2^T ( ... act'(z_{L-1})
    * W_L[k]))``. Every product is a 2D GEMM over all sites; ``act'`` enters through the
    activation's fused backward kernel; the last GEMM, ``W_1^T g^T``, writes the gradient
    channel-major, the layout of the descriptor's own features.

    ``block`` sites are processed at a time (all at once when ``None``): on a CPU the
    ``(block, width)`` activations then stay in cache (2048 sites of a 64-wide layer are
    0.5 MB in float32), so the memory-bound elementwise passes do not go to main memory.
    """

    def __init__(self, model: BPModel, block: int | None = 2048) -> None:
        super().__init__()
        self.block = block
        w1, b1 = model.folded_first_layer()
        n_feat = model.descriptor.n_features
        if model.lead.shape[1]:
            b1 = model.lead.to(w1.dtype) @ w1[:, n_feat:].T + b1  # (N, h_1) per-site bias
            w1 = w1[:, :n_feat]
        linears = [m for m in model.net if isinstance(m, torch.nn.Linear)]
        weights = [w1] + [m.weight for m in linears[1:]]
        biases = [b1] + [m.bias for m in linears[1:]]
        for k, (w, b) in enumerate(zip(weights, biases, strict=True)):
            self.register_buffer(f"w{k}", w.detach().clone().contiguous())
            self.register_buffer(f"b{k}", b.detach().clone().contiguous())
        self.n_layers = len(weights)
        self.n_out = int(weights[-1].shape[0])
        self.activation = getattr(torch.nn.functional, model.config.activation)
        self.activation_backward = _ACTIVATION_BACKWARD[model.config.activation]

    def forward(self, g: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Outputs ``y`` (N, n_out) and ``[dy_k/dG]`` (n_features, N) from ``G`` (N, n_features)."""
        n = g.shape[0]
        if self.block is None or n <= self.block:
            return self._sites(g, slice(None))
        out = g.new_empty(n, self.n_out)
        grads = [g.new_empty(g.shape[1], n) for _ in range(out.shape[1])]
        for start in range(0, n, self.block):
            rows = slice(start, min(start + self.block, n))
            out[rows], part = self._sites(g[rows], rows)
            for k, d in enumerate(part):
                grads[k][:, rows] = d
        return out, grads

    def _sites(self, g: torch.Tensor, rows: slice) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`forward` for the sites ``rows`` (``g`` holds their features)."""
        w = [getattr(self, f"w{k}") for k in range(self.n_layers)]
        b = [getattr(self, f"b{k}") for k in range(self.n_layers)]
        if b[0].ndim == 2:  # per-site first-layer bias (lead encoding)
            b[0] = b[0][rows]
        zs, acts = [], []
        a = g
        for k in range(self.n_layers - 1):
            z = torch.addmm(b[k], a, w[k].T)
            a = self.activation(z)
            zs.append(z)
            acts.append(a)
        out = torch.addmm(b[-1], a, w[-1].T)
        grads = []
        for k in range(out.shape[1]):
            d = w[-1][k].expand(a.shape[0], -1)
            for layer in range(self.n_layers - 2, -1, -1):
                d = self.activation_backward(d, zs[layer], acts[layer])
                if layer:
                    d = torch.mm(d, w[layer])
            grads.append(torch.mm(w[0].T, d.T))
        return out, grads


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
        Wrap the network step in :func:`torch.compile` (first call compiles).
    kernels : bool
        On a CPU, compute the descriptor's object values and their adjoint with the
        compiled kernels of :mod:`mllg.kernels` and evaluate descriptor and network block
        by block (default; equal to the torch operations to rounding and faster, see
        ``docs/benchmarks.md``); ``False`` keeps the torch operations. Ignored on other
        devices.
    threads : int, optional
        Set ``torch.set_num_threads`` (process-wide) to this value.

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
        kernels: bool = True,
        threads: int | None = None,
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
        self.net = _SiteOutputs(base).to(device=self.device, dtype=self.dtype).eval()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.descriptor = self.net.model.descriptor
        self.descriptor.kernels = bool(kernels) and self.device.type == "cpu"
        # CPU kernels, eager network: descriptor and network fused block by block
        self.message = base.message_passing
        self.pair = base.pair_coupling is not None
        conv = self.pair and all(self.lattice.periodic)
        self._pair_conv = _PairConvolution(base, self.device, self.dtype) if conv else None
        self._fused = self.descriptor.kernels and not (compile or self.vector or self.message)
        if self.vector or self.message:
            self._step = torch.compile(self.net, dynamic=False) if compile else self.net
        else:
            block = _CPU_BLOCK if self.device.type == "cpu" else None
            network = _NetworkGradient(self.net.model, block).to(
                device=self.device, dtype=self.dtype
            )
            self._network = network
            self._step = torch.compile(network, dynamic=False) if compile else network
        self.timings = {"to_torch": 0.0, "forward": 0.0, "backward": 0.0, "to_numpy": 0.0}
        self.calls = 0

    @property
    def model(self) -> torch.nn.Module:
        """The evaluated module (site outputs of the model copy)."""
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
        if self._fused:
            result = self._evaluate_fused(spins, energy)
        elif self.message:
            result = self._evaluate_autograd(spins, energy)
        else:
            result = self._evaluate_network(spins, energy)
        return self._add_pair(spins, result) if self.pair else result

    def _add_pair(self, spins: NDArray, result: MLResult) -> MLResult:
        """Add the pair term (:meth:`mllg.nn.model.BPModel.pair_fields`): ``h^pair`` to the
        fields and ``E_pair = - sum_i S_i . h_i^pair / 2`` to ``E`` (``E_A``); no autograd.
        Periodic lattices: FFT convolution (:class:`_PairConvolution`); open strips: the
        model's gather. Its time counts as ``backward``."""
        t0 = time.perf_counter()
        with torch.no_grad():
            s = torch.as_tensor(spins, dtype=self.dtype, device=self.device)
            if self._pair_conv is not None:
                h = self._pair_conv(s)
            else:
                h = self.net.model.pair_fields(s[None])[0]
            h = h.to("cpu", torch.float64).numpy()
        result.fields += h
        result.energies[:1] += -0.5 * float((spins * h).sum())
        result.energy[:] = result.energies[:1]
        self.timings["backward"] += time.perf_counter() - t0
        return result

    def _evaluate_network(self, spins: NDArray, energy: bool) -> MLResult:
        """Descriptor under autograd, network and its input gradient by
        :class:`_NetworkGradient`, one reverse pass through the descriptor per output."""
        t0 = time.perf_counter()
        s = self._leaf(spins)
        t1 = time.perf_counter()
        with torch.enable_grad():
            g = self.descriptor(s)  # (1, N, n_features), a view of channel-major storage
        with torch.no_grad():
            out, dg = self._step(g[0].detach())  # (N, n_out), [(n_features, N)]
            self._sync()
        t2 = time.perf_counter()
        grads = [
            torch.autograd.grad(g, s, d.T[None], retain_graph=k + 1 < self.n_out)[0][0]
            for k, d in enumerate(dg)
        ]
        fields = self._fields(s, grads)
        return self._result([t0, t1, t2, *fields[1:]], fields[0], out if energy else None)

    def _evaluate_fused(self, spins: NDArray, energy: bool) -> MLResult:
        """CPU kernels: object values, network and adjoint per block of lattice rows.

        For every block of about 2048 sites (4096 for the bispectrum; whole rows): the
        object values (:func:`mllg.kernels.values`, channel-major ``(K, n)``), the
        features (the plain descriptor's are the values; others under autograd for this
        block only), the site outputs and ``dy_k/dG`` (:class:`_NetworkGradient`),
        ``dy_k/dv`` and the adjoint accumulated into one padded grid per output
        (:func:`mllg.kernels.add_adjoint`); finally the grids are folded onto the sites.
        Every intermediate of a block stays in cache. ``timings``: ``to_torch`` is the
        padding, ``forward`` the block loop, ``backward`` the fold and the fields.
        """
        from mllg import kernels

        t0 = time.perf_counter()
        plan = self.descriptor._kernel_plan
        n = self.lattice.N
        np_dtype = torch.empty(0, dtype=self.dtype).numpy().dtype
        grid = kernels.pad(np.ascontiguousarray(spins, dtype=np_dtype)[None], plan)
        accs = [np.zeros_like(grid) for _ in range(self.n_out)]
        out = torch.empty(n, self.n_out, dtype=self.dtype)
        plain = isinstance(self.descriptor, PlainDescriptor)  # features are the values
        # bispectrum features run as ~50 torch operations per block: twice the block
        # amortizes their per-operation overhead over more sites
        step = max(1, (_CPU_BLOCK if plain else 2 * _CPU_BLOCK) // plan.lx)
        t1 = time.perf_counter()
        for y0 in range(0, plan.ly, step):
            rows = (y0, min(y0 + step, plan.ly))
            sites = slice(rows[0] * plan.lx, rows[1] * plan.lx)
            v = torch.from_numpy(kernels.values(grid, plan, rows))  # (1, K, n_block)
            if plain:
                out[sites], dv = self._network._sites(v[0].T, sites)
            else:
                v.requires_grad_(True)
                with torch.enable_grad():
                    g = self.descriptor._features(v)[0]  # (n_features, n_block)
                out[sites], dg = self._network._sites(g.detach().T, sites)
                dv = [
                    torch.autograd.grad(g, v, d, retain_graph=k + 1 < len(dg))[0][0]
                    for k, d in enumerate(dg)
                ]
            for acc, d in zip(accs, dv, strict=True):
                kernels.add_adjoint(grid, d.contiguous().numpy()[None], plan, acc, rows)
        t2 = time.perf_counter()
        grads = [kernels.unpad(acc, plan, n)[0].astype(np.float64) for acc in accs]
        h = -self.energy_scale * grads[0]
        if self.n_out == 2:
            h = h + np.cross(spins, -self.energy_scale * grads[1])
        t3 = time.perf_counter()
        return self._result([t0, t1, t2, t3], h, out if energy else None)

    def _evaluate_autograd(self, spins: NDArray, energy: bool) -> MLResult:
        """Message-passing models: site outputs under autograd, one reverse pass per output
        with respect to the spins (the descriptor's kernels give its first derivatives)."""
        t0 = time.perf_counter()
        s = self._leaf(spins)
        t1 = time.perf_counter()
        with torch.enable_grad():
            out = self._step(s)[0]  # (N, n_out)
            self._sync()
            t2 = time.perf_counter()
            grads = [
                torch.autograd.grad(out[:, k].sum(), s, retain_graph=k + 1 < self.n_out)[0][0]
                for k in range(self.n_out)
            ]
        fields = self._fields(s, grads)
        out = out.detach() if energy else None
        return self._result([t0, t1, t2, *fields[1:]], fields[0], out)

    def _leaf(self, spins: NDArray) -> torch.Tensor:
        """Spins (1, N, 3) on the device, in the provider dtype, requiring gradients."""
        s = torch.as_tensor(spins, dtype=self.dtype, device=self.device)[None]
        s.requires_grad_(True)
        self._sync()
        return s

    def _fields(self, s: torch.Tensor, grads: list[torch.Tensor]) -> tuple:
        """Fields (N, 3) in float64 on the host from ``dy_k/dS`` (``h = -scale dE/dS``, plus
        ``S x (-scale dE_B/dS)`` for the generalized potential), and the time when the
        device finished them (before the copy)."""
        h = -self.energy_scale * grads[0]
        if self.n_out == 2:
            h = h + torch.linalg.cross(s[0].detach(), -self.energy_scale * grads[1], dim=-1)
        self._sync()
        t3 = time.perf_counter()
        return h.detach().to("cpu", torch.float64).numpy(), t3

    def _evaluate_vector(self, spins: NDArray) -> MLResult:
        """Vector model: slot coefficients from one forward pass, fields without autograd."""
        t0 = time.perf_counter()
        s = torch.as_tensor(spins, dtype=self.dtype, device=self.device)[None]
        self._sync()
        t1 = time.perf_counter()
        with torch.no_grad():
            coeffs = self._step(s) * self.energy_scale + self._shift  # (1, N, 2K)
            self._sync()
            t2 = time.perf_counter()
            h = vector_fields(s, coeffs, self.vector_index)[0]
            self._sync()
        t3 = time.perf_counter()
        fields = h.to("cpu", torch.float64).numpy()
        self._tick([t0, t1, t2, t3])
        return MLResult(energy=np.full(1, np.nan), fields=fields, energies=np.zeros(0))

    def _result(self, times: list[float], fields: NDArray, out: torch.Tensor | None) -> MLResult:
        """:class:`MLResult` of ``fields`` (N, 3) with the energies of the site outputs
        ``out`` (N, n_out), ``E_k = scale sum_i y_ik + N shift_k`` (units of t, summed in
        float64; NaN when ``out`` is None); records ``times`` (:meth:`_tick`)."""
        if out is None:
            e = np.full(self.n_out, np.nan)
        else:
            site_sum = out.to("cpu", torch.float64).sum(dim=0).numpy()
            e = self.energy_scale * site_sum + self.lattice.N * self.energy_shift
        self._tick(times)
        return MLResult(energy=e[:1].copy(), fields=fields, energies=e)

    def _tick(self, times: list[float]) -> None:
        """Add the intervals between ``times`` and now to ``timings`` (to_torch, forward,
        backward, to_numpy) and count the call."""
        times = [*times, time.perf_counter()]
        for key, a, b in zip(self.timings, times[:-1], times[1:], strict=True):
            self.timings[key] += b - a
        self.calls += 1

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
            "kernels": self.descriptor.kernels,
        }


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
