"""Figures of spin textures (matplotlib, non-interactive backend)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from numpy.typing import NDArray  # noqa: E402

from mllg.lattice import Lattice  # noqa: E402

__all__ = [
    "plot_audit",
    "plot_growth",
    "plot_learning_curve",
    "plot_series",
    "plot_structure_factor",
    "plot_texture",
    "plot_velocity",
    "plot_wall_position",
]


def _save(fig, path: str | Path) -> None:
    """Lay out, write (120 dpi) and close a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_texture(
    lattice: Lattice,
    spins: NDArray,
    path: str | Path,
    title: str = "",
    arrows: bool = True,
    colour: str = "Sz",
) -> None:
    """Save a texture map: colour = S_z, the site scalar chirality (``"chirality"``) or the
    local order ``c_i`` = mean nearest-neighbour ``S_i . S_j`` (``"order"``: -1 Neel, +1
    ferromagnetic); arrows = (S_x, S_y).

    Arrows are drawn where readable: on every site up to 48 x 48 sites, on a sub-grid of
    every ``ceil(L / 32)``-th site along each axis on larger lattices (``arrows=False``
    turns them off).
    """
    if colour == "chirality":
        from mllg.analysis.order import site_chirality

        c, label, lim = site_chirality(lattice, spins), r"$\chi_i$", 4 / (3 * np.sqrt(3))
    elif colour == "order":
        from mllg.analysis.order import nn_correlation

        c, label, lim = nn_correlation(lattice, spins), r"$c_i$ (nn $S_i \cdot S_j$)", 1.0
    elif colour == "Sz":
        c, label, lim = spins[:, 2], "$S_z$", 1.0
    else:
        raise ValueError(f"colour={colour!r} is not allowed; use 'Sz', 'chirality' or 'order'.")
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
    if arrows:
        stride = 1 if lattice.N <= 48 * 48 else int(np.ceil(max(lattice.Lx, lattice.Ly) / 32))
        sel = (lattice.x % stride == 0) & (lattice.y % stride == 0)
        ax.quiver(
            pos[sel, 0],
            pos[sel, 1],
            spins[sel, 0],
            spins[sel, 1],
            angles="xy",
            scale_units="xy",
            scale=1.4 / stride,
            width=0.003,
            color="k",
        )
    fig.colorbar(sc, ax=ax, label=label, shrink=0.8)
    ax.set_aspect("equal")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)
    _save(fig, path)


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
    _save(fig, path)


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
    _save(fig, path)


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
    _save(fig, path)


def plot_wall_position(
    curves: dict[str, tuple[NDArray, NDArray]],
    path: str | Path,
    title: str = "",
    fits: dict[str, tuple[float, float]] | None = None,
) -> None:
    """Domain-wall position X(t) (lattice units) vs time (1/t), one curve per bias.

    ``fits`` maps a label to ``(velocity, intercept)`` of a linear fit, drawn dashed.
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for label, (t, x) in curves.items():
        (line,) = ax.plot(np.asarray(t), np.asarray(x), "-", label=label)
        if fits and label in fits:
            v, x0 = fits[label]
            tt = np.asarray(t, float)
            ax.plot(tt, x0 + v * tt, "--", color=line.get_color(), lw=1)
    ax.set_xlabel("time t (1/t)")
    ax.set_ylabel("wall position X (lattice units)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_velocity(
    bias: NDArray,
    velocity: NDArray,
    path: str | Path,
    stderr: NDArray | None = None,
    reference: tuple[NDArray, NDArray, NDArray | None] | None = None,
    title: str = "",
    labels: tuple[str, str] = ("ML-LLG", "NEGF-LLG"),
) -> None:
    """Wall velocity v(V) (lattice units per 1/t) vs bias V (units of t), with error bars.

    ``reference`` = ``(bias, velocity, stderr or None)`` of an exact route (e.g. NEGF-LLG).
    """
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    ax.errorbar(np.asarray(bias), np.asarray(velocity), yerr=stderr, fmt="o-", label=labels[0])
    if reference is not None:
        rb, rv, re = reference
        ax.errorbar(np.asarray(rb), np.asarray(rv), yerr=re, fmt="s--", label=labels[1])
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.set_xlabel("bias V (t)")
    ax.set_ylabel("wall velocity v (a t)")
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_audit(rows: list[dict], held_out: float | None, path: str | Path, title: str = "") -> None:
    """Per-frame relative RMSE of the perpendicular field along the production runs
    (one marker series per trajectory, ``rows`` of :func:`mllg.workflow.audit`) against
    time, with the held-out validation error as a horizontal line and the largest
    committee spread per site (right axis) where there is a committee."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    for k in sorted({r["trajectory"] for r in rows}):
        mine = [r for r in rows if r["trajectory"] == k]
        ax.plot(
            [r["time"] for r in mine],
            [100 * r["perp_rel_rmse"] for r in mine],
            "o-",
            label=f"seed {mine[0]['seed']}",
        )
    if held_out is not None:
        ax.axhline(100 * held_out, color="k", ls="--", lw=1, label="held-out (validate)")
    spread = [r for r in rows if r.get("sigma_max") is not None]
    if spread:
        ax2 = ax.twinx()
        ax2.plot([r["time"] for r in spread], [r["sigma_max"] for r in spread], "x", color="0.5")
        ax2.set_ylabel("largest committee spread (t), x")
    ax.set_xlabel("time (1/t)")
    ax.set_ylabel("ML vs exact, rel. RMSE of $h_\\perp$ (%)")
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)


def plot_learning_curve(points: list[dict], path: str | Path, title: str = "") -> None:
    """Learning curve of the concurrent-learning loop (``points`` of
    :func:`mllg.workflow.learning.learning_curve`): per committee, its error on the
    exact labels of the spread (unbiased) and the selected frames of the exploration it
    drove, the audited production error of the final committee (``audit``), and the
    untrusted fraction of its explored frames (right axis)."""
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    it = [p["iteration"] for p in points]
    for key, label in (("spread", "spread frames"), ("selected", "selected frames")):
        y = [p.get(key) for p in points]
        xs = [i for i, v in zip(it, y, strict=True) if v is not None]
        ax.plot(xs, [100 * v for v in y if v is not None], "o-", label=f"{label} (rel. RMSE)")
    audit = [p for p in points if p.get("audit") is not None]
    if audit:
        ax.plot(
            [p["iteration"] for p in audit],
            [100 * p["audit"] for p in audit],
            "s",
            color="k",
            label="production audit",
        )
    ax.set_xlabel("committee (0: first training, k: after iteration k)")
    ax.set_ylabel("committee error on exact labels (%)")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    frac = [p for p in points if p.get("uncertain_fraction") is not None]
    x_frac = [p["iteration"] for p in frac]
    ax2.plot(x_frac, [p["uncertain_fraction"] for p in frac], "x--", color="0.5")
    ax2.set_ylabel("untrusted fraction of explored frames, x")
    ax2.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(fontsize=8)
    _save(fig, path)
