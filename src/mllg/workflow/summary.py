"""Stage ``summary``: the headline numbers of one system (rule ``summary``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mllg.workflow.system import System, write_json

__all__ = ["summary"]


def summary(
    system: Mapping[str, Any],
    name: str,
    train_metrics: Mapping[str, Sequence[str | Path]],
    validations: Mapping[str, str | Path],
    analysis: str | Path,
    out: str | Path,
    audits: Mapping[str, str | Path] | None = None,
    learning: str | Path | None = None,
) -> dict[str, Any]:
    """Headline numbers of one system in ``results/<system>/summary.json``.

    Accuracy (relative RMSE and R^2 of the perpendicular field on unseen exact states,
    per data set, and on the published frames of ``validate.reference``), the audit of
    the production runs (``audits``: the error on their own states, per data set, the
    headline accuracy of a run), the learning curve of the
    loop (``learning``), speed ratio exact/ML per field evaluation, training cost, and
    the physics of the kind (:meth:`System.headline`): growth exponent and final order,
    or the v(V) table and the mobility dv/dV.

    Returns
    -------
    dict
        The summary.
    """
    sys_ = System.of(system)
    res = json.loads(Path(analysis).read_text())
    acc, speed = {}, {}
    for tag, path in validations.items():
        m = json.loads(Path(path).read_text())
        acc[tag] = {
            k: m.get(k)
            for k in ("perp_rel_rmse", "perp_r2", "energy_mae_per_site", "committee_sigma_mean")
            if m.get(k) is not None
        }
        if "reference" in m:  # published frames: pooled and per frame
            ref = m["reference"]
            acc[tag]["reference"] = {
                k: ref[k] for k in ("path", "vs_file", "vs_exact", "file_vs_exact", "frames")
            }
        for k in ("llg_energy_difference_per_site", "negf_llg_velocity"):
            if k in m:
                acc[tag][k] = m[k]
        speed[tag] = {
            "lattice_sites": m["speed_lattice_sites"],
            "exact_s": m["time_per_field_exact_s"],
            "ml_s": m["time_per_field_ml_s"],
            "ratio_exact_over_ml": m["speed_ratio"],
        }
    training = {}
    for tag, paths in train_metrics.items():
        ms = [json.loads(Path(p).read_text()) for p in paths]
        training[tag] = {
            "n_models": len(ms),
            "test_perp_rel_rmse": [m["perp_rel_rmse"] for m in ms],
            "epochs": [m["epochs"] for m in ms],
            "train_time_s": [m["train_time_s"] for m in ms],
            "n_frames_train": ms[0]["n_frames_train"],
            "n_features": ms[0]["n_features"],
        }
    audit = {}
    for tag, path in (audits or {}).items():
        m = json.loads(Path(path).read_text())
        audit[tag] = {
            "perp_rel_rmse": m.get("perp_rel_rmse"),
            "perp_r2": m.get("perp_r2"),
            "frame_error_max": m.get("frame_error_max"),
            "n_frames": len(m["frames"]),
            "solver": (m.get("solver") or {}).get("solver"),
            "spread_error_rank_correlation": m.get("spread_error_rank_correlation"),
            "per_frame": [
                {k: r[k] for k in ("seed", "time", "perp_rel_rmse", "sigma_max")}
                for r in m["frames"]
            ],
        }
    out_d: dict[str, Any] = {
        "system": name,
        "kind": sys_.kind,
        "lattice": sys_.model["lattice"],
        "J": sys_.model["J"],
        "filling": sys_.model["filling"],
        "mu": sys_.model["mu"],
        "training_lattice": sys_.sample["L"],
        "simulation_lattice": sys_.simulate["L"],
        "exact_solver": sys_.sample["solver"],
        "accuracy": acc,
        "audit": audit,
        "learning_curve": (
            json.loads(Path(learning).read_text())["points"] if learning is not None else None
        ),
        "speed": speed,
        "training": training,
        **sys_.headline(res),
    }
    write_json(out, out_d)
    return out_d
