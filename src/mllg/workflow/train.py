"""Stage ``train``: one BP model per data set and seed (rule ``train``)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mllg.workflow.system import System

__all__ = ["train_model", "training_data", "training_settings"]

log = logging.getLogger(__name__)


def training_settings(
    system: Mapping[str, Any], seed: int, potential: str | None = None, device: str = "cpu"
) -> Any:
    """The :class:`mllg.settings.TrainConfig` of a system's ``train`` section.

    Every model and training key of ``train`` is a field of
    :class:`mllg.settings.ModelConfig` or :class:`mllg.settings.TrainConfig` (the schema
    is generated from them), so the section maps onto them by name; ``potential``
    overrides ``train.potential``; threads from ``OMP_NUM_THREADS``.
    """
    from mllg.settings import ModelConfig, TrainConfig, config_values

    t = System.of(system).train
    model = {**config_values(ModelConfig, t), "descriptor": dict(t["descriptor"])}
    if potential is not None:
        model["potential"] = potential
    return TrainConfig(
        **config_values(TrainConfig, t),
        model=ModelConfig.from_dict(model).to_dict(),
        seed=int(seed),
        threads=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
        device=device,
    )


def train_model(
    system: Mapping[str, Any],
    data: Sequence[str | Path],
    seed: int,
    out_dir: str | Path,
    gpu: int = 0,
) -> dict[str, Any]:
    """Train one BP model (:func:`mllg.nn.train`) on the chunks of one data set.

    Output in ``out_dir``: ``model/`` (exported model), ``metrics.json`` (test metrics,
    epochs, train time), ``parity.png``, ``checkpoints/``, ``logs/`` (CSV). Stale
    checkpoints and logs of an earlier run are removed first. With ``gpu >= 1`` (the
    rule's ``resources: gpu``, from ``train.gpu``) the model trains on CUDA
    (:func:`mllg.devices.select_device`: one sentence, before anything is written, where
    no CUDA device is visible); on the CPU otherwise.

    The model's potential is ``train.potential``, except for the V = 0 model of
    ``train.target = nonequilibrium`` (data without ``fields_eq``), which uses
    ``train.eq_potential`` when set (h(0) is the gradient of the grand potential).

    Returns
    -------
    dict
        The metrics.
    """
    from mllg.devices import describe_device, select_device
    from mllg.io import open_store
    from mllg.nn import train

    t = System.of(system).train
    device = select_device(int(gpu), "train.gpu")
    potential = None
    if t.get("eq_potential") and t.get("target") == "nonequilibrium":
        if not all("fields_eq" in open_store(p).data_vars for p in data):
            potential = t["eq_potential"]  # the V = 0 model of h(0)
    cfg = training_settings(system, seed, potential, device)
    out_dir = Path(out_dir)
    for stale in ("checkpoints", "logs"):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    log.info("training on %s", describe_device(device))
    _, metrics = train(training_data(system, data), cfg, out_dir)
    return metrics


def training_data(system: Mapping[str, Any], data: Sequence[str | Path]) -> Any:
    """The training set of a data set: the stores, or for ``train.target =
    nonequilibrium`` (driven systems, V != 0) the nonequilibrium part of the field,
    ``h(V) - h(0)`` of the same spins (``fields - fields_eq``).

    Returns
    -------
    mllg.nn.FieldData
        Spins and target fields (no energies for nonequilibrium targets).
    """
    from mllg.io import open_store
    from mllg.nn import FieldData, load_field_data

    fd = load_field_data([str(p) for p in data])
    if System.of(system).train.get("target") != "nonequilibrium":
        return fd
    if not all("fields_eq" in open_store(p).data_vars for p in data):
        return fd  # V = 0: the equilibrium field itself
    eq = [open_store(p)["fields_eq"].transpose("frame", "site", "vec").values for p in data]
    return FieldData(fd.lattice, fd.spins, fd.fields - np.concatenate(eq), None, fd.attrs)
