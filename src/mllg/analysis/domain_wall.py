"""180-degree domain walls along x: texture generator, position fit and velocity.

Convention: a wall centred at ``X`` with width ``lambda`` (lattice units) between
``S = +sign z`` at small x and ``S = -sign z`` at large x,

.. math::

    \\theta(x) = 2 \\arctan \\exp\\big((x - X)/\\lambda\\big), \\qquad
    S = \\mathrm{sign}\\,(\\sin\\theta \\cos\\phi, \\sin\\theta \\sin\\phi, \\cos\\theta),

so ``S_z(x) = -sign tanh((x - X)/lambda)`` (the exact profile of a wall in the continuum
model with exchange stiffness A and easy-axis anisotropy K, ``lambda = sqrt(A/K)``).
``phi`` is the tilt of the in-plane moment at the centre (``phi = 0``: along x, a Neel
wall for a chain; ``phi = pi/2``: along y). Positions are fitted to the column-averaged
``S_z`` profile of a strip (site index ``i = x + Lx * y``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import least_squares

from mllg.lattice import Lattice


def domain_wall(
    lattice: Lattice,
    centre: float | None = None,
    width: float = 3.0,
    phi: float = 0.0,
    sign: int = 1,
) -> NDArray[np.float64]:
    """Spins (N, 3) of a 180 deg wall along x (module docstring), uniform along y.

    Parameters
    ----------
    lattice : Lattice
    centre : float, optional
        Wall position X in lattice units (default: the middle, ``(Lx - 1)/2``).
    width : float
        ``lambda > 0`` in lattice units.
    phi : float
        Azimuth of the central moment (radians).
    sign : {+1, -1}
        ``+1``: +z on the left; ``-1``: -z on the left.
    """
    if not (np.isfinite(width) and width > 0):
        raise ValueError(f"domain wall width={width!r} must be a finite number > 0.")
    if sign not in (1, -1):
        raise ValueError(f"domain wall sign={sign!r} must be +1 or -1.")
    x = lattice.x.astype(float)
    c = (lattice.Lx - 1) / 2 if centre is None else float(centre)
    theta = 2 * np.arctan(np.exp((x - c) / width))
    s = np.stack(
        [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1
    )
    return sign * s


@dataclass(frozen=True)
class WallFit:
    """Result of :func:`fit_domain_wall`.

    Attributes
    ----------
    position : wall centre X (lattice units).
    width : lambda (lattice units).
    sign : +1 if +z is on the left.
    phi : azimuth of the in-plane moment averaged with weight ``sin(theta)`` (radians).
    rms : root-mean-square residual of the S_z fit.
    """

    position: float
    width: float
    sign: int
    phi: float
    rms: float


def column_profile(spins: NDArray, lattice: Lattice) -> NDArray[np.float64]:
    """Column averages ``<S>(x)`` over y, shape (Lx, 3)."""
    spins = np.asarray(spins, dtype=float)
    if spins.shape != (lattice.N, 3):
        raise ValueError(f"spins must have shape ({lattice.N}, 3), got {spins.shape}.")
    return spins.reshape(lattice.Ly, lattice.Lx, 3).mean(axis=0)


def fit_domain_wall(spins: NDArray, lattice: Lattice) -> WallFit:
    """Fit ``S_z(x) = -sign tanh((x - X)/lambda)`` to the column-averaged profile.

    The start value of X is the (linearly interpolated) zero crossing of ``S_z``; the
    sign is read from the two ends. Raises if ``S_z`` has the same sign at both ends (no
    180 deg wall).
    """
    prof = column_profile(spins, lattice)
    sz = prof[:, 2]
    x = np.arange(lattice.Lx, dtype=float)
    if np.sign(sz[0]) == np.sign(sz[-1]) or sz[0] == 0:
        raise ValueError(
            "spins hold no 180 deg domain wall along x: S_z has the same sign at x = 0 "
            f"({sz[0]:+.3f}) and x = Lx - 1 ({sz[-1]:+.3f})."
        )
    sign = 1 if sz[0] > 0 else -1
    k = int(np.argmax(sign * sz < 0))  # first site past the crossing
    x0 = x[k - 1] + sz[k - 1] / (sz[k - 1] - sz[k]) if k > 0 else x[0]

    def resid(p: NDArray) -> NDArray:
        return -sign * np.tanh((x - p[0]) / p[1]) - sz

    sol = least_squares(resid, [x0, 2.0], bounds=([-1.0, 1e-3], [lattice.Lx, 10.0 * lattice.Lx]))
    sin_t = np.hypot(prof[:, 0], prof[:, 1])
    phi = float(np.angle(np.sum(sin_t * (prof[:, 0] + 1j * prof[:, 1]) * sign)))
    rms = float(np.sqrt(np.mean(sol.fun**2)))
    return WallFit(float(sol.x[0]), float(sol.x[1]), sign, phi, rms)


def wall_positions(frames: NDArray, lattice: Lattice) -> NDArray[np.float64]:
    """Fitted wall centre X of every frame of spins (F, N, 3)."""
    return np.array([fit_domain_wall(s, lattice).position for s in np.asarray(frames)])


def wall_velocity(
    time: NDArray, position: NDArray, t_min: float = 0.0
) -> tuple[float, float]:
    """Least-squares slope ``dX/dt`` over ``time >= t_min`` and its standard error.

    Units: lattice sites per unit time (1/t). Needs at least three points.
    """
    t = np.asarray(time, float)
    p = np.asarray(position, float)
    keep = t >= t_min
    t, p = t[keep], p[keep]
    if t.size < 3:
        raise ValueError(f"need >= 3 frames with time >= t_min={t_min} to fit a velocity.")
    a = np.stack([t, np.ones_like(t)], axis=1)
    coef, res, *_ = np.linalg.lstsq(a, p, rcond=None)
    dof = t.size - 2
    sigma2 = float(np.sum((p - a @ coef) ** 2) / dof) if dof > 0 else 0.0
    cov = sigma2 * np.linalg.inv(a.T @ a)
    return float(coef[0]), float(np.sqrt(cov[0, 0]))
