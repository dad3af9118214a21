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

__all__ = [
    "WallFit",
    "column_profile",
    "domain_wall",
    "fit_domain_wall",
    "wall_fits",
    "wall_positions",
    "wall_velocity",
]


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
    s = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], axis=1)
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
    amplitude : fitted domain magnetisation ``m`` (1 for an ideal wall, < 1 when thermal
        fluctuations reduce the column-averaged ``|S_z|`` inside the domains).
    position_err : standard error of X from the fit (with a noise model that is
        largest at the wall centre, :func:`_position_stderr`), lattice units.
    """

    position: float
    width: float
    sign: int
    phi: float
    rms: float
    amplitude: float = 1.0
    position_err: float = 0.0


def column_profile(spins: NDArray, lattice: Lattice) -> NDArray[np.float64]:
    """Column averages ``<S>(x)`` over y, shape (Lx, 3)."""
    spins = np.asarray(spins, dtype=float)
    if spins.shape != (lattice.N, 3):
        raise ValueError(f"spins must have shape ({lattice.N}, 3), got {spins.shape}.")
    return spins.reshape(lattice.Ly, lattice.Lx, 3).mean(axis=0)


def _wall_sign(sz: NDArray) -> int:
    """+1 if the wall has +z on the left, -1 if -z is on the left.

    Compares the mean S_z of the first and last ``q`` sites for ``q = Lx/4, Lx/8, 2, 1``
    (the first ``q`` with opposite signs wins): long windows average out noise, short
    ones still see a wall near an end.
    """
    lx = sz.size
    for q in dict.fromkeys((max(1, lx // 4), max(1, lx // 8), min(2, lx), 1)):
        left, right = float(np.mean(sz[:q])), float(np.mean(sz[-q:]))
        if left * right < 0:
            return 1 if left > right else -1
    raise ValueError(
        "spins hold no 180 deg domain wall along x: S_z has the same sign at both ends "
        f"of the strip (x = 0: {sz[0]:+.3f}, x = Lx - 1: {sz[-1]:+.3f})."
    )


def _position_stderr(jac: NDArray, res: NDArray, model: NDArray) -> float:
    """Standard error of the fitted wall centre (first parameter), lattice units.

    The noise of a column average of ``S_z`` is not uniform: a spin tilted by random
    fluctuations changes ``S_z`` to first order where it lies in-plane (the wall
    centre, which fixes X) and only to second order inside the domains. The variance
    is modelled as ``v(x) = a + b (1 - S_fit(x)^2 / m^2)`` (``a, b >= 0`` from a
    least-squares fit of the squared residuals), and the covariance of the unweighted
    least-squares estimate is the sandwich ``(J^T J)^-1 J^T diag(v) J (J^T J)^-1``
    times ``n / (n - p)``. The plain ``sigma^2 (J^T J)^-1`` assumes uniform noise and
    underestimates the scatter of X when the noise is concentrated at the wall.
    """
    n, p = jac.shape
    design = np.stack([np.ones(n), 1.0 - model**2], axis=1)
    coef, *_ = np.linalg.lstsq(design, res**2, rcond=None)
    coef = np.clip(coef, 0.0, None)
    if not np.any(coef):
        coef[0] = float(np.mean(res**2))
    var = design @ coef
    bread = np.linalg.pinv(jac.T @ jac)
    cov = bread @ ((jac * var[:, None]).T @ jac) @ bread * n / max(1, n - p)
    return float(np.sqrt(max(cov[0, 0], 0.0)))


def fit_domain_wall(spins: NDArray, lattice: Lattice, amplitude: bool = True) -> WallFit:
    """Fit ``S_z(x) = -sign m tanh((x - X)/lambda)`` to the column-averaged profile.

    Robustness:

    * the sign comes from the mean ``S_z`` near the two ends (:func:`_wall_sign`);
    * the start value of X uses the integral of the profile,
      ``sum_x sign S_z(x) ~ m (2X - Lx + 1)`` (exact for a wall far from the ends), which
      is insensitive to noise that creates extra zero crossings; the start value of the
      width is ``sum_x (m^2 - S_z^2) / (2 m^2)`` (``int sech^2 = 2 lambda``);
    * the fit is a bounded least-squares problem started from these values and from the
      zero crossing nearest to them; the best of the starts is kept;
    * with ``amplitude`` the domain magnetisation ``m`` is a free parameter in (0, 1]
      (thermal fluctuations; bounded by 1.5 so that the ideal ``m = 1`` is an interior
      optimum), otherwise ``m = 1``.

    Raises if the ends do not have opposite ``S_z`` (no 180 deg wall).
    """
    prof = column_profile(spins, lattice)
    sz = prof[:, 2]
    lx = lattice.Lx
    x = np.arange(lx, dtype=float)
    sign = _wall_sign(sz)
    q = max(1, lx // 8)
    m0 = float(np.clip(0.5 * sign * (np.mean(sz[:q]) - np.mean(sz[-q:])), 0.05, 1.0))
    m0 = m0 if amplitude else 1.0
    x_int = float(np.clip(0.5 * (lx - 1 + sign * np.sum(sz) / m0), 0.0, lx - 1))
    w_int = float(np.clip(np.sum(np.clip(m0**2 - sz**2, 0, None)) / (2 * m0**2), 0.3, lx))
    # zero crossings of -sign S_z from below, nearest to the integral estimate
    crossing = np.where(sign * sz[:-1] * sign * sz[1:] <= 0)[0]
    starts = [x_int]
    if crossing.size:
        k = crossing[np.argmin(np.abs(crossing - x_int))]
        dz = sz[k] - sz[k + 1]
        starts.append(float(x[k] + (sz[k] / dz if dz != 0 else 0.5)))

    def resid(p: NDArray) -> NDArray:
        amp = p[2] if amplitude else 1.0
        return -sign * amp * np.tanh((x - p[0]) / p[1]) - sz

    lo = [-1.0, 1e-3, 1e-3]
    hi = [float(lx), 10.0 * lx, 1.5]
    n_par = 3 if amplitude else 2
    best = None
    for x0 in starts:
        p0 = [x0, w_int, m0][:n_par]
        sol = least_squares(
            resid, p0, bounds=(lo[:n_par], hi[:n_par]), x_scale="jac", xtol=1e-12, ftol=1e-12
        )
        if best is None or sol.cost < best.cost:
            best = sol
    sin_t = np.hypot(prof[:, 0], prof[:, 1])
    phi = float(np.angle(np.sum(sin_t * (prof[:, 0] + 1j * prof[:, 1]) * sign)))
    rms = float(np.sqrt(np.mean(best.fun**2)))
    model = np.tanh((x - best.x[0]) / best.x[1])
    x_err = _position_stderr(best.jac, best.fun, model)
    amp = float(best.x[2]) if amplitude else 1.0
    return WallFit(float(best.x[0]), float(best.x[1]), sign, phi, rms, amp, x_err)


def wall_positions(frames: NDArray, lattice: Lattice) -> NDArray[np.float64]:
    """Fitted wall centre X of every frame of spins (F, N, 3)."""
    return wall_fits(frames, lattice)["position"]


def wall_fits(frames: NDArray, lattice: Lattice, amplitude: bool = True) -> dict[str, NDArray]:
    """:func:`fit_domain_wall` of every frame (F, N, 3), as arrays of length F.

    Keys: ``position``, ``position_err``, ``width``, ``phi`` (unwrapped along the
    frames), ``amplitude``, ``rms``, ``sign``.
    """
    fits = [fit_domain_wall(s, lattice, amplitude) for s in np.asarray(frames, float)]
    keys = ("position", "position_err", "width", "phi", "amplitude", "rms", "sign")
    out = {k: np.array([getattr(f, k) for f in fits]) for k in keys}
    out["phi"] = np.unwrap(out["phi"]) if out["phi"].size else out["phi"]
    return out


def wall_velocity(
    time: NDArray, position: NDArray, t_min: float = 0.0, sigma: NDArray | None = None
) -> tuple[float, float]:
    """Least-squares slope ``dX/dt`` over ``time >= t_min`` and its standard error.

    Units: lattice sites per unit time (1/t). Needs at least three points. Without
    ``sigma`` the error is the usual ``s^2 (A^T A)^-1`` with the residual variance
    ``s^2``; with per-frame position errors ``sigma`` (e.g. ``position_err`` of
    :func:`wall_fits`) the fit is weighted by ``1/sigma^2`` and the error is the larger
    of the propagated ``(A^T W A)^-1`` and the scatter-based estimate.
    """
    t = np.asarray(time, float)
    p = np.asarray(position, float)
    if t.shape != p.shape:
        raise ValueError(f"time {t.shape} and position {p.shape} must have the same shape.")
    keep = t >= t_min
    t, p = t[keep], p[keep]
    if t.size < 3:
        raise ValueError(f"need >= 3 frames with time >= t_min={t_min} to fit a velocity.")
    if sigma is None:
        w = np.ones_like(t)
    else:
        sig = np.asarray(sigma, float)[keep]
        if np.any(~np.isfinite(sig)) or np.any(sig <= 0):
            raise ValueError("position errors sigma must be finite and > 0.")
        w = 1.0 / sig**2
    a = np.stack([t, np.ones_like(t)], axis=1)
    aw = a * w[:, None]
    normal = np.linalg.inv(a.T @ aw)
    coef = normal @ (aw.T @ p)
    res = p - a @ coef
    dof = t.size - 2
    chi2 = float(np.sum(w * res**2) / dof)
    scale = chi2 if sigma is None else max(chi2, 1.0)
    return float(coef[0]), float(np.sqrt(normal[0, 0] * scale))
