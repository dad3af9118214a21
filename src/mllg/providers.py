"""Field providers of the production engine: ML models from exported folders, their
combinations, and the identity of any provider.

A *field provider* is a callable ``spins (N, 3) -> fields (N, 3)`` in units of t
(:class:`mllg.electrons.base.FieldProvider`); one that also has ``solve(spins)``
returning ``.fields`` and ``.energy`` lets the integrator record energies. The exact
solvers (:mod:`mllg.electrons`) and :class:`mllg.nn.MLFieldProvider` are providers;
this module adds

* :class:`MeanProvider`: the committee mean ``h = (1/M) sum_m h^(m)`` of M models
  (each evaluated by its own fast provider, in the run's precision and device);
* :class:`SumProvider`: ``h = sum_k h_k``, e.g. the V = 0 model of a driven strip plus
  the model of the nonequilibrium part ``h(V) - h(0)``;
* :func:`ml_provider`: the provider of exported model folders (one, a committee, plus
  optional base models), rebuilt for any lattice of the kind they were trained on;
* :func:`provider_identity`: what identifies a provider's fields in a run's provenance
  (model hashes of the weights, or an exact solver's settings).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg.lattice import Lattice

__all__ = [
    "MeanProvider",
    "SumProvider",
    "load_models",
    "ml_provider",
    "model_for_lattice",
    "model_hash",
    "provider_identity",
]


class _Combined:
    """Base of providers built from parts: energies add up when every part has one."""

    def __init__(self, parts: Sequence[Any], weight: float) -> None:
        if not parts:
            raise ValueError("a combined field provider needs at least one part.")
        self.parts = list(parts)
        self.weight = float(weight)
        if not all(hasattr(p, "solve") for p in self.parts):
            self.solve = None  # type: ignore[assignment] - the integrator checks for it

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        return self.weight * np.sum([np.asarray(p(spins), dtype=float) for p in self.parts], 0)

    def solve(self, spins: NDArray) -> SimpleNamespace:  # noqa: F811 - see __init__
        """Fields and energy (units of t) of the combination."""
        res = [p.solve(spins) for p in self.parts]
        fields = self.weight * np.sum([np.asarray(r.fields, dtype=float) for r in res], 0)
        energies = [r.energy for r in res]
        energy = (
            None
            if any(e is None for e in energies)
            else self.weight * float(np.sum([np.ravel(e)[0] for e in energies]))
        )
        return SimpleNamespace(fields=fields, energy=energy)

    def settings(self) -> dict[str, Any]:
        return {
            "combination": type(self).__name__,
            "parts": [p.settings() if hasattr(p, "settings") else {} for p in self.parts],
        }


class MeanProvider(_Combined):
    """Committee mean ``h_i = (1/M) sum_m h_i^(m)`` (units of t) of M providers."""

    def __init__(self, providers: Sequence[Any]) -> None:
        super().__init__(providers, 1.0 / max(len(providers), 1))


class SumProvider(_Combined):
    """Sum ``h_i = sum_k h_i^(k)`` (units of t) of several providers."""

    def __init__(self, providers: Sequence[Any]) -> None:
        super().__init__(providers, 1.0)


def model_hash(model: Any) -> str:
    """SHA-256 (16 hex digits) of a :class:`mllg.nn.BPModel`'s architecture and weights."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().double().numpy().tobytes())
    return h.hexdigest()[:16]


def model_for_lattice(model: Any, lattice: Lattice, potential: str | None = None) -> Any:
    """The same model rebuilt for ``lattice`` (descriptors are local: any size works).

    Raises ValueError (one sentence) if the model was made for another lattice kind or,
    when ``potential`` is given, for another kind of potential.
    """
    from mllg.nn.model import BPModel

    own = model.lattice
    if own.kind != lattice.kind:
        raise ValueError(
            f"the model was trained on a {own.kind!r} lattice; the run asks for a "
            f"{lattice.kind!r} lattice."
        )
    if potential is not None and model.config.potential != potential:
        raise ValueError(
            f"the model is a {model.config.potential!r} potential; the run asks for a "
            f"{potential!r} one."
        )
    same = (own.Lx, own.Ly, own.periodic_y) == (lattice.Lx, lattice.Ly, lattice.periodic_y)
    if same:
        return model
    new = BPModel(lattice, model.config)
    new.load_state_dict(model.state_dict())
    return new.eval()


def load_models(models: Sequence[Any], lattice: Lattice) -> list[Any]:
    """BP models for ``lattice`` from exported folders (:func:`mllg.nn.save_model`) or
    models (rebuilt for ``lattice`` when trained on another size of the same kind)."""
    from mllg.nn import load_model

    return [
        load_model(m, lattice) if isinstance(m, str | Path) else model_for_lattice(m, lattice)
        for m in models
    ]


def ml_provider(
    models: Sequence[Any],
    lattice: Lattice,
    base: Sequence[Any] = (),
    *,
    dtype: str = "float32",
    device: str = "cpu",
    threads: int | None = None,
    compile: bool = False,
) -> Any:
    """Field provider of exported models on ``lattice``: one model, or a committee mean,
    plus optionally the mean of ``base`` models.

    Parameters
    ----------
    models : sequence of paths or BP models
        One model, or the members of a committee (their mean field).
    lattice : Lattice
        Lattice of the run (any size of the models' lattice kind).
    base : sequence of paths or BP models
        Models added to the mean of ``models`` (a driven system's V = 0 model under a
        model of the nonequilibrium part, ``train.target = nonequilibrium``).
    dtype, device, threads, compile :
        Settings of every :class:`mllg.nn.MLFieldProvider`.

    Returns
    -------
    provider
        :class:`mllg.nn.MLFieldProvider` (one model, no base), else a
        :class:`MeanProvider` / :class:`SumProvider` of them. Its ``model_hashes``
        attribute lists the hashes of every model, in order (``base`` first).
    """
    from mllg.nn import MLFieldProvider

    def one(group: Sequence[Any]) -> tuple[Any, list[str]]:
        loaded = load_models(group, lattice)
        provs = [
            MLFieldProvider(m, dtype=dtype, device=device, threads=threads, compile=compile)
            for m in loaded
        ]
        return (provs[0] if len(provs) == 1 else MeanProvider(provs)), [
            model_hash(m) for m in loaded
        ]

    own, hashes = one(models)
    if base:
        base_prov, base_hashes = one(base)
        own, hashes = SumProvider([base_prov, own]), base_hashes + hashes
    own.model_hashes = hashes
    return own


def provider_identity(provider: Any) -> dict[str, Any]:
    """What identifies a provider's fields: the model hashes of an ML provider, or the
    class and settings of an exact solver (its Hamiltonian and ensemble parameters)."""
    hashes = getattr(provider, "model_hashes", None)
    if hashes is None and hasattr(provider, "model"):
        hashes = [model_hash(provider.model)]
    if hashes is not None:
        return {"kind": "ml", "models": list(hashes)}
    if isinstance(provider, _Combined):
        return {
            "kind": type(provider).__name__,
            "parts": [provider_identity(p) for p in provider.parts],
        }
    out: dict[str, Any] = {"kind": type(provider).__name__}
    if hasattr(provider, "settings"):
        out["settings"] = provider.settings()
    ham = getattr(provider, "hamiltonian", None)
    if ham is not None:
        lat = ham.lattice
        out["hamiltonian"] = {"t": list(map(float, ham.t)), "J": float(ham.J), "lattice": lat.kind}
    ens = getattr(provider, "ensemble", None)
    if ens is not None and hasattr(ens, "attrs"):
        out["ensemble"] = ens.attrs()
    return out
