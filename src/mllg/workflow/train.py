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

__all__ = ["retrain_model", "train_model", "training_data", "training_settings"]

log = logging.getLogger(__name__)


def training_settings(
    system: Mapping[str, Any],
    seed: int,
    potential: str | None = None,
    device: str = "cpu",
    max_epochs: int | None = None,
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
    values = config_values(TrainConfig, t)
    if max_epochs is not None:
        values["max_epochs"] = int(max_epochs)
    return TrainConfig(
        **values,
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
    init: str | Path | None = None,
    max_epochs: int | None = None,
    resume_key: str | None = None,
) -> dict[str, Any]:
    """Train one BP model (:func:`mllg.nn.train`) on the chunks of one data set.

    Output in ``out_dir``: ``model/`` (exported model), ``metrics.json`` (test metrics,
    epochs, train time), ``parity.png``, ``checkpoints/``, ``logs/`` (CSV). When
    ``checkpoints/`` holds a run with the same ``resume_key`` (the identity of the job's
    settings and inputs; a job killed at its walltime), training continues from its last
    epoch; otherwise stale checkpoints and logs of an earlier run are removed first.
    With ``gpu >= 1`` (the rule's GPU request, from ``train.gpu``) the model trains on CUDA
    (:func:`mllg.devices.select_device`: one sentence, before anything is written, where
    no CUDA device is visible); on the CPU otherwise.

    The model's potential is ``train.potential``, except for the V = 0 model of
    ``train.target = nonequilibrium`` (data without ``fields_eq``), which uses
    ``train.eq_potential`` when set (h(0) is the gradient of the grand potential).

    ``init`` (an exported model folder) is a warm start; ``max_epochs`` replaces
    ``train.max_epochs`` (both for the retraining of the learning loop).

    Returns
    -------
    dict
        The metrics.
    """
    from mllg.devices import describe_device, select_device
    from mllg.io import open_store
    from mllg.nn import load_model, train

    t = System.of(system).train
    device = select_device(int(gpu), "train.gpu")
    potential = None
    if t.get("eq_potential") and t.get("target") == "nonequilibrium":
        if not all("fields_eq" in open_store(p).data_vars for p in data):
            potential = t["eq_potential"]  # the V = 0 model of h(0)
    cfg = training_settings(system, seed, potential, device, max_epochs)
    fd = training_data(system, data)
    start = load_model(init, fd.lattice) if init is not None else None
    out_dir = Path(out_dir)
    key_file = out_dir / "checkpoints" / "resume_key"
    resume = resume_key is not None and key_file.exists() and key_file.read_text() == resume_key
    if not resume:
        for stale in ("checkpoints", "logs"):
            shutil.rmtree(out_dir / stale, ignore_errors=True)
    if resume_key is not None:
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(resume_key)
    log.info(
        "training on %s, %d frames%s",
        describe_device(device),
        fd.n_frames,
        " (continuing checkpoints/last.ckpt)" if resume else "",
    )
    _, metrics = train(fd, cfg, out_dir, init=start, resume=resume)
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


def retrain_model(
    system: Mapping[str, Any],
    data: Sequence[str | Path],
    label_dirs: Sequence[str | Path],
    seed: int,
    previous: str | Path,
    out_dir: str | Path,
    gpu: int = 0,
    resume_key: str | None = None,
) -> dict[str, Any]:
    """Retrain one committee member in an iteration of the learning loop.

    The training set is the sampled chunks ``data`` plus the exact labels of every
    iteration so far (``label_dirs``, each holding ``labels.json`` and, when it labelled
    frames, ``labels.zarr``). When the loop lattice (``active.L``) differs from the
    training lattice (``sample.L``), a model trains on one lattice at a time: the
    training set is the loop labels only, and the configuration checks make
    ``active.warm_start`` true, so the knowledge of the sampled data enters through the
    starting weights and normalization. With ``active.warm_start`` the weights start from the
    previous iteration's model of the same seed (``previous``, its output folder);
    ``active.max_epochs`` replaces ``train.max_epochs`` when set. When the latest
    iteration labelled no new frames, or its selection stopped the loop, the previous
    model and metrics are copied instead (``metrics.json`` gets ``"reused": true``).

    Returns
    -------
    dict
        The metrics.
    """
    import json

    from mllg.io import open_store

    sys_ = System.of(system)
    act = sys_.section["active"]
    out_dir, previous = Path(out_dir), Path(previous)
    latest = json.loads((Path(label_dirs[-1]) / "labels.json").read_text())
    if latest["selection"]["stopped"] or not latest["n_labels"]:
        shutil.rmtree(out_dir / "model", ignore_errors=True)
        shutil.copytree(previous / "model", out_dir / "model")
        metrics = {**json.loads((previous / "metrics.json").read_text()), "reused": True}
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        return metrics
    labels = [Path(d) / "labels.zarr" for d in label_dirs if (Path(d) / "labels.zarr").exists()]
    sampled = list(data) if sys_.loop_size == int(sys_.sample["L"]) else []
    metrics = train_model(
        system,
        [*sampled, *labels],
        seed,
        out_dir,
        gpu,
        init=previous / "model" if act["warm_start"] else None,
        max_epochs=act["max_epochs"],
        resume_key=resume_key,
    )
    metrics["reused"] = False
    metrics["n_label_frames"] = sum(int(open_store(p).sizes["frame"]) for p in labels)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
