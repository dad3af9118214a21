"""Stage ``analyze``: observables of the production runs (rule ``analyze``)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mllg.workflow.system import System, write_json

__all__ = ["analyze"]


def analyze(
    system: Mapping[str, Any],
    trajectories: Mapping[str, Sequence[str | Path]],
    validations: Mapping[str, str | Path],
    out_json: str | Path,
    out_store: str | Path,
) -> dict[str, Any]:
    """Observables of the production runs (:meth:`System.observables` of the kind):
    L(t), order and growth exponent (equilibrium) or the v(V) table (driven).

    Parameters
    ----------
    trajectories : mapping
        tag -> trajectory stores (one per seed).
    validations : mapping
        tag -> validate metrics JSON.
    out_json : path
        Analysis results.
    out_store : path
        Zarr store of the time series (dims ``seed``/``bias`` and ``frame``).

    Returns
    -------
    dict
        The analysis results (``order`` first).
    """
    from mllg.io import write_dataset

    sys_ = System.of(system)
    found, ds_out = sys_.observables(trajectories, validations)
    result = {"order": sys_.analyze["order"], **found}
    ds_out.attrs["provenance"] = json.dumps(sys_.provenance("analyze"))
    write_dataset(out_store, ds_out)
    write_json(out_json, result)
    return result
