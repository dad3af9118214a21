"""Stage ``sample``: exact training data of one chunk (rule ``sample``)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mllg.workflow.system import System, write_json

__all__ = ["chemical_potential", "sample"]


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


def chemical_potential(system: Mapping[str, Any], out: str | Path) -> dict[str, Any]:
    """``sample.label_mu = auto``: the filling-matched chemical potential of the labels
    (:meth:`mllg.workflow.equilibrium.EquilibriumSystem.filling_matched_mu`), written
    as JSON to ``out`` (``mu`` in units of t, the probe's frame count, filling and kT)."""
    record = System.of(system).filling_matched_mu()
    write_json(out, record)
    return record
