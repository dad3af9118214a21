"""Figures of spin textures (matplotlib, non-interactive backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from mllg.lattice import Lattice  # noqa: E402


def plot_texture(
    lattice: Lattice, spins: NDArray, path: str | Path, title: str = "", arrows: bool = True
) -> None:
    """Save a texture map: colour = S_z on every site, arrows = in-plane (S_x, S_y).

    Arrows are drawn only where readable (up to 48x48 sites).
    """
    pos = lattice.positions
    fig, ax = plt.subplots(figsize=(6, 6 * max(0.4, np.ptp(pos[:, 1]) / max(np.ptp(pos[:, 0]), 1))))
    sc = ax.scatter(
        pos[:, 0],
        pos[:, 1],
        c=spins[:, 2],
        cmap="coolwarm",
        vmin=-1,
        vmax=1,
        s=max(4.0, 9000.0 / lattice.N),
        marker="h" if lattice.kind == "triangular" else "s",
    )
    if arrows and lattice.N <= 48 * 48:
        ax.quiver(
            pos[:, 0],
            pos[:, 1],
            spins[:, 0],
            spins[:, 1],
            angles="xy",
            scale_units="xy",
            scale=1.4,
            width=0.003,
            color="k",
        )
    fig.colorbar(sc, ax=ax, label="$S_z$", shrink=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
