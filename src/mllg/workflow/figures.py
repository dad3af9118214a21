"""Stage ``figures``: the figures of one system from its analysis (rule ``figures``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mllg.workflow.system import System

__all__ = ["figures"]


def figures(
    system: Mapping[str, Any],
    name: str,
    analysis: str | Path,
    store: str | Path,
    trajectory: str | Path,
    outputs: Mapping[str, str | Path],
) -> None:
    """Figures of one system from its analysis (no recomputation of physics).

    ``texture``: the final spins of ``trajectory``, coloured as the ordered state says
    (:attr:`mllg.orders.OrderedState.colour`: site chirality, local order or S_z); the
    others are the kind's (:meth:`System.physics_figures`): ``structure_factor``,
    ``growth``, ``order`` (equilibrium) or ``position``, ``velocity`` (driven).
    """
    from mllg.io import lattice_from_attrs, open_store
    from mllg.plotting import plot_texture

    sys_ = System.of(system)
    res = json.loads(Path(analysis).read_text())
    series = open_store(store).load()
    traj = open_store(trajectory)
    lat = lattice_from_attrs(traj.attrs)
    final = traj["spins"].isel(frame=-1).transpose("site", "vec").values
    t_end = float(traj["time"][-1])
    dpi = int(sys_.section.get("figures", {}).get("dpi", 120))
    plot_texture(
        lat,
        final,
        outputs["texture"],
        title=f"{name}: ML-LLG, t = {t_end:g}",
        colour=sys_.order.colour,
    )
    sys_.physics_figures(name, res, series, lat, final, outputs, dpi)
