"""Stage ``featurize``: the descriptor cache of one data chunk (rule ``featurize``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mllg.workflow.system import System

__all__ = ["featurize"]

#: Frames per descriptor evaluation (bounded memory).
BATCH = 16


def featurize(system: Mapping[str, Any], data: str | Path, out: str | Path) -> dict[str, Any]:
    """Descriptors G_i of every frame of a data store (optional cache for inspection).

    Writes ``features`` (frame, site, feature) with the store's lattice coordinates and
    the descriptor settings as attrs. Training recomputes descriptors (it needs their
    derivatives with respect to the spins), so this stage is a cache for analysis and a
    check that the descriptor builds for the lattice.

    Returns
    -------
    dict
        ``n_frames``, ``n_sites``, ``n_features``.
    """
    import torch
    import xarray as xr

    from mllg.descriptors import make_descriptor
    from mllg.io import lattice_from_attrs, open_store, write_dataset

    sys_ = System.of(system)
    ds = open_store(data)
    lat = lattice_from_attrs(ds.attrs)
    desc = make_descriptor(lat, dict(sys_.train["descriptor"]))
    spins = ds["spins"].transpose("frame", "site", "vec").values
    with torch.no_grad():
        feats = np.concatenate(
            [
                desc(torch.as_tensor(spins[i : i + BATCH], dtype=torch.float64)).numpy()
                for i in range(0, len(spins), BATCH)
            ]
        )
    out_ds = xr.Dataset(
        {"features": (("frame", "site", "feature"), feats)},
        coords={
            "x": ("site", lat.x.astype(np.int64)),
            "y": ("site", lat.y.astype(np.int64)),
            "feature": ("feature", np.arange(feats.shape[-1], dtype=np.int64)),
        },
        attrs={
            **{k: v for k, v in ds.attrs.items() if k in ("lattice", "Lx", "Ly", "W", "solver")},
            "descriptor": json.dumps(dict(sys_.train["descriptor"])),
            "provenance": json.dumps(sys_.provenance("featurize", data=str(data))),
        },
    )
    write_dataset(out, out_ds)
    return {"n_frames": feats.shape[0], "n_sites": feats.shape[1], "n_features": feats.shape[2]}
