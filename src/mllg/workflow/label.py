"""Stage ``label`` of the learning loop: exact labels of the selected frames (rule
``label``) and the learning-curve record of the iteration."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mllg.workflow.system import System, write_json

__all__ = ["label", "per_frame_errors"]


def per_frame_errors(spins: Any, pred: Any, ref: Any) -> tuple[Any, Any]:
    """Per-frame errors of the perpendicular field, arrays (F, N, 3) -> two (F,) arrays.

    Returns the relative RMSE ``sqrt(sum_i |dh_perp,i|^2 / sum_i |h_perp,i|^2)`` and the
    largest site error ``max_i |dh_perp,i|`` (units of t), ``dh = pred - ref``.
    """
    from mllg.nn.training import perpendicular

    d = perpendicular(np.asarray(pred) - np.asarray(ref), spins)
    r = perpendicular(np.asarray(ref), spins)
    site = np.sqrt((d**2).sum(-1))
    return np.sqrt((site**2).sum(-1) / (r**2).sum((-1, -2))), site.max(-1)


def label(
    system: Mapping[str, Any],
    iteration: int,
    selection_dir: str | Path,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Label the frames of a selection with the exact solver; score the committee on them.

    The solver is :meth:`System.fresh_label_solver` with ``active.label_solver`` (ED,
    KPM, or the faster of the two timed on the first frame), in the ensemble of the
    training labels; frames are written one at a time to ``out_dir/labels.zarr``
    (:func:`mllg.active.label_frames`: a killed job resumes after the last labelled
    frame) with the committee's prediction and spread of the selection.

    ``out_dir/labels.json`` records the solver choice and cost, and the learning curve
    point of the iteration: the relative RMSE of the perpendicular field of the
    committee that drove the exploration (the previous iteration's) on the spread frames
    (unbiased: the states its runs visit) and on the selected ones, per-frame errors,
    and the Spearman rank correlation between the disagreement ``e_f`` and its true
    counterpart, the largest site error ``max_i |h_perp,i^ML - h_perp,i^exact| /
    h_scale`` (``disagreement_error_rank_correlation``; also against the frame's
    relative RMSE, which weighs frames of small fields up).

    Returns
    -------
    dict
        The content of ``labels.json``.
    """
    from mllg.active import label_frames, rank_correlation
    from mllg.io import open_store
    from mllg.nn.training import field_metrics

    sys_ = System.of(system)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    selection = json.loads((Path(selection_dir) / "selection.json").read_text())
    frames = Path(selection_dir) / "frames.zarr"
    record: dict[str, Any] = {"iteration": int(iteration), "selection": selection, "n_labels": 0}
    if not frames.exists():
        write_json(out_dir / "labels.json", record)
        return record
    sel = open_store(frames).load()
    spins = sel["spins"].transpose("frame", "site", "vec").values
    solver, info = sys_.fresh_label_solver(
        sys_.loop_size, spins[0], sys_.section["active"]["label_solver"]
    )
    lat = solver.hamiltonian.lattice
    attrs = {
        **sys_.physics_attrs(),
        "solver": info["solver"],
        "label_solver": info,
        "iteration": int(iteration),
        "provenance": sys_.provenance("label", iteration=int(iteration), solver=info),
    }
    extra = {k: sel[k].values for k in ("fields_ml", "sigma", "disagreement", "selected")}
    t0 = time.perf_counter()
    before = (
        open_store(out_dir / "labels.zarr").sizes["frame"]
        if (out_dir / "labels.zarr").exists()
        else 0
    )
    label_frames(solver, lat, spins, out_dir / "labels.zarr", attrs, extra)
    elapsed = time.perf_counter() - t0
    lab = open_store(out_dir / "labels.zarr").load()
    exact = lab["fields"].transpose("frame", "site", "vec").values
    pred_all = sel["fields_ml"].transpose("frame", "site", "vec").values
    err, site_err = per_frame_errors(spins, pred_all, exact)
    picked = sel["selected"].values.astype(bool)
    # the true counterpart of the disagreement: largest site error over the same scale
    site_err = site_err / float(sel.attrs["h_scale"])

    def pooled(mask: Any) -> float | None:
        if not mask.any():
            return None
        return field_metrics(spins[mask], pred_all[mask], exact[mask])["perp_rel_rmse"]

    record.update(
        n_labels=int(len(spins)),
        label_solver=info,
        label_time_per_frame_s=elapsed / (len(spins) - before) if len(spins) > before else None,
        committee_error_spread=pooled(~picked),
        committee_error_selected=pooled(picked),
        frame_errors=err.tolist(),
        frame_max_site_errors=site_err.tolist(),
        frame_disagreement=sel["disagreement"].values.tolist(),
        frame_selected=picked.astype(int).tolist(),
        disagreement_error_rank_correlation=rank_correlation(sel["disagreement"].values, site_err),
        disagreement_relative_error_rank_correlation=rank_correlation(
            sel["disagreement"].values, err
        ),
    )
    write_json(out_dir / "labels.json", record)
    return record
