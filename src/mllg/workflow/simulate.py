"""Stage ``simulate``: one ML-LLG production run (rule ``simulate``), through the
production engine :func:`mllg.production.run`."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mllg.workflow.system import System

__all__ = ["run_config", "simulate"]

log = logging.getLogger(__name__)


def run_config(system: Mapping[str, Any], seed: int, device: str = "cpu") -> Any:
    """The :class:`mllg.production.RunConfig` of ``simulate``: bath ``kT_bath``,
    ``alpha``, ``dt``, ``n_steps``, ``save_every``, ``precession``, ``dtype``."""
    from mllg.production import RunConfig

    sim = System.of(system).simulate
    return RunConfig(
        kT=sim["kT_bath"],
        alpha=sim["alpha"],
        dt=sim["dt"],
        n_steps=int(sim["n_steps"]),
        save_every=int(sim["save_every"]),
        seed=int(seed),
        precession=int(sim["precession"]),
        dtype=sim.get("dtype", "float32"),
        device=device,
    )


def simulate(
    system: Mapping[str, Any],
    tag: str,
    seed: int,
    model_dirs: Sequence[str | Path],
    out: str | Path,
    relax_model_dirs: Sequence[str | Path] | None = None,
    base_model_dirs: Sequence[str | Path] | None = None,
    gpu: int = 0,
) -> dict[str, Any]:
    """ML-LLG production run on the large lattice (resumable trajectory store).

    The field is the committee mean of the models of ``model_dirs`` (plus the mean of
    ``base_model_dirs``, the V = 0 models of ``train.target = nonequilibrium``) in
    ``simulate.dtype``, on CUDA when ``gpu >= 1`` (the rule's ``resources: gpu``, from
    ``simulate.gpu``; :func:`mllg.devices.select_device`). The initial state is the
    kind's (:meth:`System.initial_spins`: a quench from random spins, or a relaxed wall
    with the ``relax_model_dirs`` models); frames every ``save_every`` steps through
    :func:`mllg.production.run`.

    Returns
    -------
    dict
        The engine's result: ``n_frames``, ``final_time``, ``spin_steps_per_s``, ...
    """
    from mllg.devices import select_device
    from mllg.production import run
    from mllg.providers import ml_provider, provider_identity

    sys_ = System.of(system)
    device = select_device(int(gpu), "simulate.gpu")
    cfg = run_config(system, seed, device)
    lat = sys_.lattice(sys_.simulate["L"])

    def provider_of(dirs: Sequence[str | Path], base: Sequence[str | Path] = ()) -> Any:
        return ml_provider(dirs, lat, base, dtype=cfg.dtype, device=device)

    provider = provider_of(model_dirs, base_model_dirs or ())
    relax: dict[str, Any] = {}

    def relax_provider() -> Any:
        relax["provider"] = provider_of(relax_model_dirs or model_dirs)
        return relax["provider"]

    spins = sys_.initial_spins(lat, seed, relax_provider)
    # the initial state is named by its protocol (and the relaxing models), not by its
    # bits, which may differ in the last place on another device or thread count
    initial_id = {
        **sys_.initial_protocol(),
        "seed": int(seed),
        "relax_models": provider_identity(relax["provider"]) if relax else None,
    }
    attrs = {
        **sys_.physics_attrs(),
        "solver": "ml",
        "data_tag": tag,
        "precession": int(cfg.precession),
        **sys_.run_attrs(tag),
    }
    # n_steps is not part of the identity: a larger simulate.n_steps extends the run
    section = {
        **sys_.section,
        "simulate": {k: v for k, v in sys_.simulate.items() if k != "n_steps"},
    }
    identity = {"stage": "simulate", "system": section, "tag": tag}
    return run(
        provider,
        lat,
        out,
        cfg,
        initial=spins,
        initial_id=initial_id,
        identity=identity,
        classical=sys_.classical(),
        attrs=attrs,
    )
