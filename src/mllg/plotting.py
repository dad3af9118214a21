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
    lattice: Lattice,
    spins: NDArray,
    path: str | Path,
    title: str = "",
    arrows: bool = True,
    colour: str = "Sz",
) -> None:
    """Save a texture map: colour = S_z (or the site scalar chirality), arrows = (S_x, S_y).

    Arrows are drawn only where readable (up to 48x48 sites).
    """
    if colour == "chirality":
        from mllg.analysis.order import site_chirality

        c, label, lim = site_chirality(lattice, spins), r"$\chi_i$", 4 / (3 * np.sqrt(3))
    elif colour == "Sz":
        c, label, lim = spins[:, 2], "$S_z$", 1.0
    else:
        raise ValueError(f"colour={colour!r} is not allowed; use 'Sz' or 'chirality'.")
    pos = lattice.positions
    aspect = np.ptp(pos[:, 1]) / max(np.ptp(pos[:, 0]), 1.0)
    fig, ax = plt.subplots(figsize=(7.5, 1.2 + 6.0 * max(0.25, aspect)))
    sc = ax.scatter(
        pos[:, 0],
        pos[:, 1],
        c=c,
        cmap="coolwarm",
        vmin=-lim,
        vmax=lim,
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
    fig.colorbar(sc, ax=ax, label=label, shrink=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_structure_factor(lattice: Lattice, sq: NDArray, path: str | Path, title: str = "") -> None:
    """Map of S(q) over the first Brillouin-zone neighbourhood (q in units of 1/a).

    The finite-lattice grid is repeated over neighbouring reciprocal cells so that the
    hexagonal (triangular) or square zone around Gamma is fully covered.
    """
    k = lattice.kgrid()
    b = lattice.reciprocal
    shifts = np.array([(m, n) for m in (-1, 0, 1) for n in (-1, 0, 1)]) @ b
    pts = (k[None] + shifts[:, None]).reshape(-1, 2)
    vals = np.tile(np.asarray(sq), 9)
    r = 1.05 * np.max(np.linalg.norm(b, axis=1))
    keep = np.linalg.norm(pts, axis=1) < r
    fig, ax = plt.subplots(figsize=(5.5, 5))
    sc = ax.scatter(
        pts[keep, 0],
        pts[keep, 1],
        c=vals[keep],
        cmap="magma",
        s=max(2.0, 6000.0 / lattice.N),
        marker="s",
    )
    for name, marker in (("M", "o"), ("K", "^")):
        hs = lattice.high_symmetry_points().get(name)
        if hs is not None:
            ax.scatter(
                hs[:, 0],
                hs[:, 1],
                facecolors="none",
                edgecolors="c",
                marker=marker,
                s=80,
                label=name,
            )
    fig.colorbar(sc, ax=ax, label="S(q)", shrink=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("$q_x$")
    ax.set_ylabel("$q_y$")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_growth(
    time: NDArray, lengths: NDArray, path: str | Path, title: str = "", fit: dict | None = None
) -> None:
    """L(t) on log-log axes: seed mean +- standard error, with reference slopes 1/2 and 1."""
    t = np.asarray(time, float)
    L = np.atleast_2d(np.asarray(lengths, float))
    ok = t > 0
    mean = L.mean(0)
    err = L.std(0, ddof=1) / np.sqrt(L.shape[0]) if L.shape[0] > 1 else np.zeros_like(mean)
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.errorbar(t[ok], mean[ok], yerr=err[ok], fmt="o", ms=3, label=f"mean of {L.shape[0]} seeds")
    t0, l0 = t[ok][len(t[ok]) // 2], mean[ok][len(t[ok]) // 2]
    tt = t[ok]
    ax.plot(tt, l0 * (tt / t0) ** 1.0, "k--", lw=1, label="$t^{1}$")
    ax.plot(tt, l0 * (tt / t0) ** 0.5, "k:", lw=1, label="$t^{1/2}$ (Allen-Cahn)")
    if fit is not None:
        ax.set_title(f"{title}  n = {fit['exponent']:.2f} +- {fit['stderr']:.2f}")
    else:
        ax.set_title(title)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("time t (1/t)")
    ax.set_ylabel("L(t) (lattice constants)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_series(
    curves: dict[str, tuple[NDArray, NDArray]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    marker: str = "-",
) -> None:
    """Several labelled curves y(x) on linear axes (DW position vs time, v(V), ...)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for label, (x, y) in curves.items():
        ax.plot(np.asarray(x), np.asarray(y), marker, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if len(curves) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
