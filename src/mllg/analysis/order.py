"""Order parameters, characteristic lengths and growth laws of spin textures.

All functions accept one configuration (N, 3) or a stack (F, N, 3) and are vectorized
over frames and sites.

* Scalar chirality of the elementary triangles of the triangular lattice,
  ``chi = S_i . (S_j x S_k)`` with (i, j, k) counter-clockwise; up triangles
  ``(r, r + a1, r + a2)`` and down triangles ``(r + a1, r + a1 + a2, r + a2)``. The
  tetrahedral state has ``chi = +-4 / (3 sqrt 3)`` on every triangle (uniform sign).
* Characteristic length from the first moment of a structure factor around its
  ordering wavevectors ``Q``: ``L = 2 pi / <|q - Q|>`` with
  ``<|q - Q|> = sum_q |q - Q(q)| S(q) / sum_q S(q)``, ``Q(q)`` the ordering vector
  (modulo reciprocal-lattice vectors) nearest to q, and the sum over q != Q restricted
  to ``|q - Q| < q_cut``. Lengths are in units of the lattice constant.
* Local ferromagnetic / antiferromagnetic order of the double-exchange model from the
  nearest-neighbour correlation ``c_i = (1/z) sum_j S_i . S_j``.
* Growth exponent: least-squares slope of ``log L`` vs ``log t`` over a time window,
  per seed; the error bar is the standard error of the mean over seeds.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mllg.analysis.structure import structure_factor
from mllg.lattice import Lattice
from mllg.orders import ordered_state

__all__ = [
    "characteristic_length",
    "chiral_domain_length",
    "chirality_structure_factor",
    "distance_to_points",
    "fit_growth_exponent",
    "local_order",
    "nn_correlation",
    "order_fractions",
    "quench_series",
    "seed_mean",
    "site_chirality",
    "spin_domain_length",
    "triangle_chirality",
]


def triangle_chirality(lattice: Lattice, spins: NDArray) -> NDArray[np.float64]:
    """Scalar chirality of every up and down triangle, shape (..., 2, N).

    ``[..., 0, i]`` is the up triangle with lower-left corner at site i, ``[..., 1, i]``
    the down triangle to its right.
    """
    if lattice.kind != "triangular":
        raise ValueError(
            f"scalar chirality of triangles needs a triangular lattice, not {lattice.kind!r}."
        )
    x, y = lattice.x, lattice.y
    i = np.arange(lattice.N)
    a1 = lattice.index(x + 1, y)
    a2 = lattice.index(x, y + 1)
    a12 = lattice.index(x + 1, y + 1)
    s = np.asarray(spins, float)

    def chi(p, q, r):
        return np.einsum("...ia,...ia->...i", s[..., p, :], np.cross(s[..., q, :], s[..., r, :]))

    return np.stack([chi(i, a1, a2), chi(a1, a12, a2)], axis=-2)


def site_chirality(lattice: Lattice, spins: NDArray) -> NDArray[np.float64]:
    """Chirality per site: mean of its up and down triangle, shape (..., N)."""
    return triangle_chirality(lattice, spins).mean(axis=-2)


def nn_correlation(lattice: Lattice, spins: NDArray) -> NDArray[np.float64]:
    """Local nearest-neighbour correlation ``c_i = (1/z) sum_{j in nn(i)} S_i . S_j``, (..., N)."""
    nb = lattice.shells(1.0)[0].neighbours
    s = np.asarray(spins, float)
    valid = nb >= 0
    dots = np.einsum("...ia,...ika->...ik", s, s[..., np.where(valid, nb, 0), :])
    return np.where(valid, dots, 0.0).sum(-1) / np.maximum(valid.sum(-1), 1)


def distance_to_points(lattice: Lattice, points: NDArray) -> NDArray[np.float64]:
    """``|q - Q|`` for every ``kgrid`` q to the nearest of ``points`` (n, 2) modulo the
    reciprocal lattice.

    The points are first reduced into the reciprocal unit cell, so the 3 x 3 images
    around it contain the nearest image of every grid q (any image of Q may be given).
    """
    b = lattice.reciprocal
    frac = np.asarray(points, dtype=float) @ np.linalg.inv(b)
    reduced = (frac - np.floor(frac)) @ b
    shifts = np.array([(m, n) for m in (-1, 0, 1) for n in (-1, 0, 1)]) @ b
    images = (reduced[:, None, :] + shifts[None]).reshape(-1, 2)
    k = lattice.kgrid()
    return np.min(np.linalg.norm(k[:, None, :] - images[None], axis=-1), axis=1)


def characteristic_length(
    lattice: Lattice,
    sq: NDArray,
    points: NDArray,
    q_cut: float | None = None,
) -> NDArray[np.float64]:
    """Domain size ``L = 2 pi / <|q - Q|>`` from a structure factor on the finite grid.

    Parameters
    ----------
    lattice : periodic lattice of the structure factor.
    sq : (..., N) structure factor in ``lattice.kgrid()`` order.
    points : (n, 2) Cartesian ordering wavevectors Q.
    q_cut : only wavevectors with ``0 < |q - Q| < q_cut`` enter the moment (default:
        half the distance between distinct ordering vectors or |b1| / 4).

    Returns
    -------
    L : (...) characteristic length; ``inf`` when all weight sits exactly at Q.
    """
    dq = distance_to_points(lattice, points)
    if q_cut is None:
        q_cut = np.linalg.norm(lattice.reciprocal[0]) / 4
    mask = (dq > 1e-9) & (dq < q_cut)
    total = np.asarray(sq)[..., (dq < q_cut)].sum(-1)
    first = (np.asarray(sq)[..., mask] * dq[mask]).sum(-1)
    ordered = first <= 1e-12 * total
    return np.where(ordered, np.inf, 2 * np.pi * total / np.where(ordered, 1.0, first))


def spin_domain_length(lattice: Lattice, spins: NDArray, point: str) -> NDArray[np.float64]:
    """Characteristic length of spin order around the high-symmetry points ``point``."""
    return characteristic_length(
        lattice, structure_factor(lattice, spins), lattice.high_symmetry_points()[point]
    )


def chirality_structure_factor(lattice: Lattice, spins: NDArray) -> NDArray[np.float64]:
    """Structure factor of the site chirality, ``|FFT chi|^2 / N``, (..., N) in
    ``lattice.kgrid()`` order (:func:`site_chirality`)."""
    chi = site_chirality(lattice, spins)
    grid = chi.reshape(chi.shape[:-1] + (lattice.Ly, lattice.Lx))
    return (np.abs(np.fft.fft2(grid, axes=(-2, -1))) ** 2).reshape(chi.shape) / lattice.N


def chiral_domain_length(lattice: Lattice, spins: NDArray) -> NDArray[np.float64]:
    """Chiral (Z2) domain size from the structure factor of the site chirality at q = 0."""
    return characteristic_length(
        lattice, chirality_structure_factor(lattice, spins), np.zeros((1, 2))
    )


def fit_growth_exponent(
    time: NDArray, lengths: NDArray, t_min: float, t_max: float
) -> dict[str, float]:
    """Fit ``L(t) ~ t^n`` on ``t_min <= t <= t_max`` for each seed.

    Parameters
    ----------
    time : (T,) times, > 0 in the window.
    lengths : (n_seeds, T) or (T,) characteristic lengths.

    Returns
    -------
    dict with ``exponent`` (mean over seeds), ``stderr`` (standard error over seeds; the
    fit residual error when there is one seed), ``n_seeds`` and ``exponent_of_mean``
    (slope of the seed-averaged log L).
    """
    t = np.asarray(time, float)
    L = np.atleast_2d(np.asarray(lengths, float))
    sel = (t >= t_min) & (t <= t_max) & (t > 0)
    if sel.sum() < 3:
        raise ValueError(f"the window [{t_min}, {t_max}] holds {sel.sum()} times; need >= 3.")
    x = np.log(t[sel])
    y = np.log(L[:, sel])
    if not np.all(np.isfinite(y)):
        raise ValueError("lengths must be finite and positive inside the fit window.")
    xc = x - x.mean()
    slopes = (y - y.mean(1, keepdims=True)) @ xc / (xc @ xc)
    mean_y = y.mean(0)
    slope_mean = float((mean_y - mean_y.mean()) @ xc / (xc @ xc))
    if L.shape[0] > 1:
        err = float(slopes.std(ddof=1) / np.sqrt(L.shape[0]))
    else:
        resid = y[0] - y[0].mean() - slopes[0] * xc
        err = float(np.sqrt(resid @ resid / (x.size - 2) / (xc @ xc)))
    return {
        "exponent": float(slopes.mean()),
        "stderr": err,
        "n_seeds": int(L.shape[0]),
        "exponent_of_mean": slope_mean,
    }


def local_order(lattice: Lattice, spins: NDArray, threshold: float = 0.5) -> NDArray[np.int8]:
    """Local order label per site from ``c_i`` (:func:`nn_correlation`), shape (..., N).

    ``+1`` ferromagnetic (``c_i > threshold``), ``-1`` antiferromagnetic
    (``c_i < -threshold``), ``0`` neither (domain walls, canted or disordered regions).
    """
    c = nn_correlation(lattice, spins)
    return (np.where(c > threshold, 1, 0) - np.where(c < -threshold, 1, 0)).astype(np.int8)


def order_fractions(lattice: Lattice, spins: NDArray, threshold: float = 0.5) -> dict[str, NDArray]:
    """Fractions of FM, AF and undecided sites (:func:`local_order`), each of shape (...)."""
    lab = local_order(lattice, spins, threshold)
    return {
        "ferro": (lab == 1).mean(-1),
        "antiferro": (lab == -1).mean(-1),
        "other": (lab == 0).mean(-1),
    }


def quench_series(
    lattice: Lattice, spins: NDArray, order: str, chunk: int = 64
) -> dict[str, NDArray[np.float64]]:
    """Per-frame observables of a quench trajectory, spins (F, N, 3); F-vectorized.

    Parameters
    ----------
    lattice : periodic lattice.
    spins : (F, N, 3) frames (an xarray/zarr-backed array is read ``chunk`` frames at a
        time, so long 256 x 256 trajectories need little memory).
    order : str
        Expected order, a name of :data:`mllg.orders.ORDERED_STATES`: sets the ordering
        wavevectors.

    Returns
    -------
    dict of (F,) arrays
        ``length`` (spin domain size around the ordering vectors, lattice units),
        ``weight`` (fraction of S(q) at them), ``nn_correlation`` (mean ``S_i . S_j``),
        and ``chiral_length``, ``chirality`` (mean ``|chi|`` over its tetrahedral value)
        on the triangular lattice, or ``ferro``, ``antiferro`` fractions (double exchange,
        :func:`order_fractions`) on the square lattice.
    """
    points = ordered_state(order).wavevectors(lattice)
    out: dict[str, list] = {}
    n = len(spins)
    for start in range(0, n, chunk):  # frames in chunks: bounded memory, vectorized inside
        s = np.asarray(spins[start : start + chunk], dtype=float)
        sq = structure_factor(lattice, s)
        dq = distance_to_points(lattice, points)
        at_q = dq < 1e-9
        part = {
            "length": characteristic_length(lattice, sq, points),
            "weight": sq[..., at_q].sum(-1) / sq.sum(-1),
            "nn_correlation": nn_correlation(lattice, s).mean(-1),
        }
        if lattice.kind == "triangular":
            ideal = 4 / (3 * np.sqrt(3))
            part["chiral_length"] = chiral_domain_length(lattice, s)
            part["chirality"] = np.abs(triangle_chirality(lattice, s)).mean((-1, -2)) / ideal
        else:
            frac = order_fractions(lattice, s)
            part["ferro"], part["antiferro"] = frac["ferro"], frac["antiferro"]
        for k, v in part.items():
            out.setdefault(k, []).append(np.atleast_1d(v))
    return {k: np.concatenate(v) for k, v in out.items()}


def seed_mean(values: NDArray) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean over seeds (axis 0) and its standard error ``std(ddof=1) / sqrt(n)``."""
    v = np.asarray(values, float)
    if v.shape[0] < 2:
        return v.mean(0), np.full(v.shape[1:], np.nan)
    return v.mean(0), v.std(0, ddof=1) / np.sqrt(v.shape[0])
