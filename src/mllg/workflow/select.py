"""Stage ``select`` of the learning loop: the frames of one iteration's exploration that
the exact solver labels (rule ``select``)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mllg.workflow.explore import STOPPED, loop_stopped
from mllg.workflow.system import System, write_json

__all__ = ["select"]


def select(
    system: Mapping[str, Any],
    iteration: int,
    exploration: str | Path,
    model_dirs: Sequence[str | Path],
    out_dir: str | Path,
    previous_selection: str | Path | None = None,
) -> dict[str, Any]:
    """Rank the explored frames by committee disagreement and pick those to label.

    Every stored frame of the exploration runs (``exploration/run<k>.zarr``) is
    evaluated by each committee member (``model_dirs``, float64); its disagreement
    ``e_f`` (largest per-site spread of the perpendicular field over the RMS
    committee-mean perpendicular field,
    :func:`mllg.active.frame_disagreement`) is compared with ``active.trust_lower`` and
    ``trust_upper``; up to ``active.max_frames`` uncertain frames are picked, diverse in
    run and time (:func:`mllg.active.select_frames`), plus ``active.spread_frames``
    frames spread evenly over the runs regardless of ``e_f``
    (:func:`mllg.active.spread_frames`: the unbiased error of the learning curve).

    The loop stops when the untrusted fraction falls below ``active.stop_fraction``
    (then only the spread frames are kept, for the learning curve) or when the previous
    iteration stopped it (nothing is kept).

    Writes ``out_dir/selection.json`` (counts, fractions, ``h_scale``, ``stopped``) and,
    when frames are kept, ``out_dir/frames.zarr`` with ``spins``, the committee mean
    ``fields_ml``, the per-site spread ``sigma`` (units of t), and per frame
    ``disagreement``, ``run``, ``source_frame``, ``time`` and ``selected`` (1: picked
    for its disagreement, 0: a spread frame).

    Returns
    -------
    dict
        The content of ``selection.json``.
    """
    from mllg.active import frame_disagreement, select_frames, spread_frames
    from mllg.io import make_dataset, open_store, write_dataset
    from mllg.nn import Committee
    from mllg.providers import load_models

    sys_ = System.of(system)
    act = sys_.section["active"]
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    record: dict[str, Any] = {
        "iteration": int(iteration),
        "trust_lower": act["trust_lower"],
        "trust_upper": act["trust_upper"],
        "stop_fraction": act["stop_fraction"],
    }
    if loop_stopped(previous_selection):
        record.update(stopped=True, stopped_before=True, n_explored=0, n_selected=0, n_spread=0)
        write_json(out_dir / "selection.json", record)
        return record
    stores = sorted(
        Path(exploration).glob("run*.zarr"), key=lambda p: int(p.stem.removeprefix("run"))
    )
    if (Path(exploration) / STOPPED).exists():
        raise ValueError(f"{exploration} holds no runs: the loop stopped before it.")
    spins, run, frame, times = [], [], [], []
    for k, p in enumerate(stores):
        ds = open_store(p)
        s = ds["spins"].transpose("frame", "site", "vec").values
        spins.append(s)
        run += [k] * len(s)
        frame += list(range(len(s)))
        times.append(ds["time"].values)
    lat = sys_.lattice(sys_.loop_size)
    spins_a = np.concatenate(spins)
    run_a, frame_a = np.array(run), np.array(frame)
    committee = Committee(load_models(model_dirs, lat)).predict(spins_a)
    mean, sigma = committee["fields"], committee["sigma"]
    e, scale = frame_disagreement(spins_a, mean, sigma)
    sel = select_frames(
        e,
        run_a,
        frame_a,
        act["trust_lower"],
        act["trust_upper"],
        int(act["max_frames"]),
        int(act["min_separation"]),
    )
    stopped = sel.uncertain_fraction < act["stop_fraction"]
    picked = np.array([], dtype=np.int64) if stopped else sel.picked
    spread = spread_frames(run_a, frame_a, int(act["spread_frames"]), exclude=picked)
    keep = np.concatenate([picked, spread]).astype(np.int64)
    record.update(
        stopped=bool(stopped),
        stopped_before=False,
        n_explored=int(len(e)),
        n_runs=len(stores),
        accurate=sel.accurate,
        candidate=sel.candidate,
        failed=sel.failed,
        uncertain_fraction=sel.uncertain_fraction,
        h_scale=scale,
        disagreement_median=float(np.median(e)),
        disagreement_max=float(np.max(e)),
        n_selected=int(len(picked)),
        n_spread=int(len(spread)),
    )
    if len(keep):
        ds = make_dataset(
            lat,
            {**sys_.physics_attrs(), "iteration": int(iteration), "h_scale": scale},
            spins=spins_a[keep],
            fields_ml=mean[keep],
            sigma=sigma[keep],
            disagreement=e[keep],
            run=run_a[keep],
            source_frame=frame_a[keep],
            time=np.concatenate(times)[keep],
            selected=np.r_[np.ones(len(picked)), np.zeros(len(spread))].astype(np.int64),
        )
        write_dataset(out_dir / "frames.zarr", ds)
    write_json(out_dir / "selection.json", record)
    return json.loads((out_dir / "selection.json").read_text())
