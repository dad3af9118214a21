"""Stage ``learning_curve``: the record and figure of the concurrent-learning loop (rule
``learning_curve``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mllg.workflow.system import write_json

__all__ = ["learning_curve"]


def learning_curve(
    label_dirs: Sequence[str | Path],
    audits: Sequence[str | Path],
    out_json: str | Path,
    out_png: str | Path,
    title: str = "",
) -> list[dict[str, Any]]:
    """Error and untrusted fraction of every committee of the loop.

    Committee ``c`` (``c = 0``: the first training; ``c = k``: after iteration k) drives
    the exploration of iteration ``c + 1``, whose labels (``label_dirs[c]``,
    :func:`mllg.workflow.label.label`) measure it: relative RMSE of the perpendicular
    field on the spread frames (unbiased) and on the selected ones, the untrusted
    fraction of its explored frames, the rank correlation between disagreement and true
    error, and the label count. The last committee (the production models) is measured
    by the production ``audits`` (pooled over their frames).

    Writes the points to ``out_json`` and the figure
    (:func:`mllg.plotting.plot_learning_curve`) to ``out_png``.
    """
    from mllg.plotting import plot_learning_curve

    points: list[dict[str, Any]] = []
    for c, d in enumerate(label_dirs):
        lab = json.loads((Path(d) / "labels.json").read_text())
        sel = lab["selection"]
        points.append(
            {
                "iteration": c,
                "spread": lab.get("committee_error_spread"),
                "selected": lab.get("committee_error_selected"),
                "uncertain_fraction": sel.get("uncertain_fraction"),
                "rank_correlation": lab.get("disagreement_error_rank_correlation"),
                "n_labels": lab["n_labels"],
                "stopped": sel["stopped"],
                "label_solver": (lab.get("label_solver") or {}).get("solver"),
            }
        )
    errors = [json.loads(Path(p).read_text()).get("perp_rel_rmse") for p in audits]
    errors = [e for e in errors if e is not None]
    points.append(
        {
            "iteration": len(label_dirs),
            "audit": max(errors) if errors else None,
            "uncertain_fraction": None,
        }
    )
    write_json(out_json, {"points": points})
    plot_learning_curve(points, out_png, title)
    return points
