"""Stage ``sample``: exact training data of one chunk (rule ``sample``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mllg.workflow.system import System

__all__ = ["sample"]


def sample(system: Mapping[str, Any], tag: str, chunk: int, out: str | Path) -> Path:
    """Exact training data of one chunk: Langevin-LLG frames (ED/KPM) or NEGF walls.

    Parameters
    ----------
    system : mapping
        Validated system section (``kind``, ``model``, ``sample``).
    tag : str
        ``"eq"`` or a voltage tag (:func:`mllg.config.voltage_tag`).
    chunk : int
        Chunk index (0-based); seeds ``sample.seed + chunk``.
    out : str or pathlib.Path
        Zarr store to write (data contract: ``spins``, ``fields``, ``energy``; resumable
        for equilibrium trajectories).

    Returns
    -------
    pathlib.Path
        The store. The protocol of each kind: :meth:`System.sample_chunk`.
    """
    return System.of(system).sample_chunk(tag, int(chunk), out)
