"""Stage ``audit``: exact labels of frames of the production trajectories (rule
``audit``): the accuracy of the model on the states its own runs visit."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mllg.config import tag_voltage
from mllg.workflow.system import System, write_json

__all__ = ["audit"]


def audit(
    system: Mapping[str, Any],
    tag: str,
    trajectories: Sequence[str | Path],
    model_dirs: Sequence[str | Path],
    out_dir: str | Path,
    base_model_dirs: Sequence[str | Path] | None = None,
    validation: str | Path | None = None,
) -> dict[str, Any]:
    """Exact fields of ``audit.frames`` frames of every trajectory against the ML field.

    For each trajectory, frames evenly spread over its saved times
    (:func:`mllg.active.evenly_spaced`) are labelled by the exact solver on the production lattice
    (:meth:`System.fresh_label_solver`: ED or KPM per ``audit.solver`` in the ensemble
    of the training labels; NEGF at the run's bias for driven strips). The ML field is
    the production one (committee mean plus base models, ``simulate.dtype``,
    :func:`mllg.providers.ml_provider`); the committee spread (float64, per site, units
    of t) is evaluated on the same frames when there are several models.

    Writes ``out_dir/metrics.json``: per frame (seed, time, relative RMSE of the
    perpendicular field, largest site error ``max_i |dh_perp,i|`` in units of t, mean
    and largest committee spread), the pooled relative RMSE and R^2 over all audited
    frames (the headline accuracy of the run), the Spearman correlation between the
    largest spread and the largest site error, the solver record and cost, and
    the held-out validation error for comparison; and ``out_dir/audit.png``, the
    per-frame error against time with the held-out error.

    Returns
    -------
    dict
        The metrics.
    """
    import json

    from mllg.active import evenly_spaced, rank_correlation
    from mllg.io import open_store
    from mllg.nn import Committee
    from mllg.nn.training import field_metrics
    from mllg.plotting import plot_audit
    from mllg.providers import load_models, ml_provider
    from mllg.workflow.label import per_frame_errors

    sys_ = System.of(system)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    count = int(sys_.section.get("audit", {}).get("frames", 4))
    choice = sys_.section.get("audit", {}).get("solver", "auto")
    bias = tag_voltage(tag) or 0.0
    size = sys_.simulate["L"]
    lat = sys_.lattice(size)
    dtype = sys_.simulate.get("dtype", "float32")
    ml = ml_provider(list(model_dirs), lat, list(base_model_dirs or []), dtype=dtype)
    committee = Committee(load_models(model_dirs, lat)) if len(model_dirs) > 1 else None
    solver, info, rows = None, {}, []
    all_s, all_ml, all_ex = [], [], []
    t_exact = 0.0
    for seed_index, path in enumerate(trajectories):
        ds = open_store(path)
        picks = evenly_spaced(int(ds.sizes["frame"]), count)
        spins = ds["spins"].transpose("frame", "site", "vec").values[picks].astype(float)
        times = ds["time"].values[picks]
        if solver is None and len(spins):
            solver, info = sys_.fresh_label_solver(size, spins[0], choice, bias=bias)
        t0 = time.perf_counter()
        exact = np.stack([np.asarray(solver(s), dtype=float) for s in spins])
        t_exact += time.perf_counter() - t0
        pred = np.stack([np.asarray(ml(s), dtype=float) for s in spins])
        err, site_err = per_frame_errors(spins, pred, exact)
        spread = committee.predict(spins)["sigma"] if committee else None
        for k in range(len(spins)):
            rows.append(
                {
                    "trajectory": seed_index,
                    "seed": int(ds.attrs.get("seed", seed_index)),
                    "frame": int(picks[k]),
                    "time": float(times[k]),
                    "perp_rel_rmse": float(err[k]),
                    "max_site_error": float(site_err[k]),
                    "sigma_mean": None if spread is None else float(spread[k].mean()),
                    "sigma_max": None if spread is None else float(spread[k].max()),
                }
            )
        all_s.append(spins)
        all_ml.append(pred)
        all_ex.append(exact)
    metrics: dict[str, Any] = {"data_tag": tag, "lattice_sites": int(lat.N), "frames": rows}
    if rows:
        s, p, e = (np.concatenate(x) for x in (all_s, all_ml, all_ex))
        pooled = field_metrics(s, p, e)
        metrics.update(
            perp_rel_rmse=pooled["perp_rel_rmse"],
            perp_r2=pooled["perp_r2"],
            frame_error_max=max(r["perp_rel_rmse"] for r in rows),
            solver=info,
            exact_time_per_frame_s=t_exact / len(rows),
            spread_error_rank_correlation=(
                rank_correlation(*([r[k] for r in rows] for k in ("sigma_max", "max_site_error")))
                if committee
                else None
            ),
        )
    held_out = None
    if validation is not None:
        held_out = json.loads(Path(validation).read_text()).get("perp_rel_rmse")
    metrics["validate_perp_rel_rmse"] = held_out
    write_json(out_dir / "metrics.json", metrics)
    plot_audit(rows, held_out, out_dir / "audit.png", f"{tag}: ML vs exact along the runs")
    return metrics
