"""Stage ``explore`` of the learning loop: one committee-driven ML-LLG run (rule
``explore``), through the production engine :func:`mllg.production.run`."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mllg.workflow.system import System

__all__ = ["STOPPED", "explore", "exploration_plan", "loop_stopped"]

log = logging.getLogger(__name__)

STOPPED = "STOPPED.json"
"""Marker written instead of a trajectory once the loop has stopped."""


def exploration_plan(system: Mapping[str, Any]) -> list[Any]:
    """The exploration runs of every iteration (:func:`mllg.active.exploration_runs`
    from ``active.quenches``, ``kT_bath``, ``perturbed``, ``perturb_sigma`` and the bath
    of ``simulate``)."""
    from mllg.active import exploration_runs

    sys_ = System.of(system)
    act = sys_.section["active"]
    return exploration_runs(
        act["quenches"],
        sys_.simulate["kT_bath"],
        act["kT_bath"],
        act["perturbed"],
        act["perturb_sigma"],
    )


def loop_stopped(selection_dir: str | Path | None) -> bool:
    """Whether the selection of the previous iteration stopped the loop."""
    if selection_dir is None:
        return False
    return bool(json.loads((Path(selection_dir) / "selection.json").read_text())["stopped"])


def explore(
    system: Mapping[str, Any],
    iteration: int,
    model_dirs: Sequence[str | Path],
    out_dir: str | Path,
    previous_selection: str | Path | None = None,
) -> list[dict[str, Any]]:
    """The ML-LLG exploration runs of iteration ``iteration``, ``out_dir/run<k>.zarr``.

    The field is the committee mean of the models of the previous iteration
    (``model_dirs``) in ``simulate.dtype`` on the loop lattice (:attr:`System.loop_size`:
    ``active.L``, else ``sample.L``); each
    run follows its protocol (:func:`exploration_plan`: quench, Langevin or perturbed
    ordered state, seed :meth:`mllg.active.ExplorationRun.seed`) with the damping, time
    step and precession of ``simulate``, ``active.n_steps`` steps and a frame every
    ``active.save_every``. Every run is resumable (:func:`mllg.production.run`), so a
    killed job continues where it stopped. A run whose spins blow up (the committee far
    outside its training domain) keeps its good frames and the next run starts; the
    selection counts such frames as failed through ``active.trust_upper``. When
    ``previous_selection`` stopped the loop, only the :data:`STOPPED` marker is written.

    Returns
    -------
    list of dict
        The engine's result per run, or ``[{"stopped": True}]``.
    """
    from mllg.production import RunConfig
    from mllg.production import run as run_llg
    from mllg.providers import ml_provider
    from mllg.runs import BlowUpError

    sys_ = System.of(system)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if loop_stopped(previous_selection):
        (out_dir / STOPPED).write_text(json.dumps({"iteration": int(iteration)}) + "\n")
        return [{"stopped": True}]
    act, sim = sys_.section["active"], sys_.simulate
    lat = sys_.lattice(sys_.loop_size)
    dtype = sim.get("dtype", "float32")
    provider = ml_provider(list(model_dirs), lat, dtype=dtype)
    results = []
    for spec in exploration_plan(system):
        ordered = sys_.order.texture(lat) if spec.protocol == "perturbed" else None
        cfg = RunConfig(
            kT=spec.kT,
            alpha=sim["alpha"],
            dt=sim["dt"],
            n_steps=int(act["n_steps"]),
            save_every=int(act["save_every"]),
            seed=spec.seed(iteration),
            precession=int(sim["precession"]),
            dtype=dtype,
        )
        try:
            result = run_llg(
                provider,
                lat,
                out_dir / f"run{spec.index}.zarr",
                cfg,
                initial=spec.initial(lat, ordered, iteration),
                initial_id={"protocol": spec.protocol, "sigma": spec.sigma, "seed": cfg.seed},
                identity={"stage": "explore", "iteration": int(iteration), "physics": sys_.model},
                classical=sys_.classical(),
                attrs={
                    **sys_.physics_attrs(),
                    "solver": "ml",
                    "iteration": int(iteration),
                    "run_index": spec.index,
                    "protocol": spec.protocol,
                },
            )
        except BlowUpError as err:  # the model left its domain: keep the good frames
            log.warning("exploration run %d blew up: %s", spec.index, err)
            result = {"path": str(out_dir / f"run{spec.index}.zarr"), "blow_up": str(err)}
        results.append(result)
    return results
