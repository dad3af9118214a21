"""Closed forms that share no code with the solvers (Hamiltonian builder, ``fields_from_rho``).

Used by the ED, KPM and NEGF tests as their independent route: everything below is
written from the textbook formulas with numpy and scipy only.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import quad
from scipy.optimize import brentq
from scipy.special import expit


def _fermi(e: NDArray, mu: float, kT: float) -> NDArray:
    if kT == 0.0:
        return (np.asarray(e) < mu).astype(float)
    return expit(-(np.asarray(e) - mu) / kT)


def _omega(e: NDArray, mu: float, kT: float) -> NDArray:
    if kT == 0.0:
        return np.minimum(np.asarray(e) - mu, 0.0)
    return -kT * np.logaddexp(0.0, -(np.asarray(e) - mu) / kT)


def uniform_fm_square(
    L: int,
    J: float,
    direction: NDArray,
    kT: float,
    mu: float | None = None,
    filling: float | None = None,
) -> tuple[float, NDArray, float]:
    """Ferromagnet along ``direction`` on the periodic L x L square lattice (t1 = 1).

    With every spin along d the spin along d is conserved: the majority (minority) band
    is ``e_k -+ J`` with ``e_k = -2 (cos kx + cos ky)``, ``k = 2 pi (m, n) / L``. The
    field on every site is ``h = J (n_maj - n_min) d`` with the occupations per site of
    the two bands (Pauli matrices: ``<sigma . d> = +-1``), and the potential is
    ``Omega = sum omega(e)`` (grand canonical, ``mu``) or ``F = Omega(mu*) + mu* N_e``
    (canonical, ``filling = N_e / 2N``; at kT = 0 the sum of the lowest N_e levels).

    Returns
    -------
    energy, field (3,), mu
    """
    k = 2 * np.pi * np.arange(L) / L
    e_k = (-2 * (np.cos(k)[:, None] + np.cos(k)[None, :])).ravel()
    maj, mnr = e_k - J, e_k + J
    levels = np.concatenate([maj, mnr])
    n_sites = L * L
    d = np.asarray(direction, float) / np.linalg.norm(direction)
    if filling is not None:
        n_e = round(2 * n_sites * filling)
        if kT == 0.0:
            srt = np.sort(levels)
            assert srt[n_e] - srt[n_e - 1] > 1e-9, "open shell: choose another filling"
            mu = 0.5 * (srt[n_e - 1] + srt[n_e])
        else:
            mu = brentq(lambda m: _fermi(levels, m, kT).sum() - n_e, -20, 20, xtol=1e-14)
        energy = _omega(levels, mu, kT).sum() + mu * n_e
    else:
        energy = _omega(levels, mu, kT).sum()
    m = (_fermi(maj, mu, kT).sum() - _fermi(mnr, mu, kT).sum()) / n_sites
    return float(energy), J * m * d, float(mu)


def single_site_between_leads(
    J: float,
    direction: NDArray,
    mu: float,
    bias: float,
    t_lead: float,
    t_coupling: float,
) -> tuple[NDArray, float]:
    """One magnetic site between two semi-infinite chains, at kT = 0: field and density.

    The spin along ``d`` is conserved; a level ``eps = -+ J`` (majority, minority) couples
    to the surface of each chain (hopping ``t_lead``) by ``t_coupling``:
    ``G(E) = 1 / (E - eps - 2 t_c^2 g(E))`` with the surface Green's function
    ``g(E) = (E - i sqrt(4 t^2 - E^2)) / (2 t^2)`` in the band and
    ``(E - sign(E) sqrt(E^2 - 4 t^2)) / (2 t^2)`` outside. Both leads couple equally
    (``Gamma_L = Gamma_R``), so the band states are filled with ``(f_L + f_R) / 2``
    (``mu_L = mu + V/2``, ``mu_R = mu - V/2``) and a bound state ``E_b`` outside the band
    (weight ``1 / |1 - 2 t_c^2 g'(E_b)|``) is filled when it lies below both.

    Returns
    -------
    field (3,) ``J (n_maj - n_min) d``, density ``n_maj + n_min``
    """
    t, tc2 = t_lead, t_coupling**2
    d = np.asarray(direction, float) / np.linalg.norm(direction)

    def g_out(e: float) -> float:
        return (e - np.sign(e) * np.sqrt(e * e - 4 * t * t)) / (2 * t * t)

    def occupation(eps: float) -> float:
        def ldos(e: float) -> float:
            g = (e - 1j * np.sqrt(4 * t * t - e * e)) / (2 * t * t)
            return -(1 / (e - eps - 2 * tc2 * g)).imag / np.pi

        n = 0.0
        for m in (mu + bias / 2, mu - bias / 2):
            top = min(m, 2 * t)
            if top > -2 * t:
                n += 0.5 * quad(ldos, -2 * t, top, limit=200, epsabs=1e-13)[0]
        for lo, hi in ((-50.0, -2 * t - 1e-13), (2 * t + 1e-13, 50.0)):
            pole = lambda e: e - eps - 2 * tc2 * g_out(e)  # noqa: E731
            if pole(lo) * pole(hi) < 0:
                e_b = brentq(pole, lo, hi, xtol=1e-15)
                dg = (1 - np.sign(e_b) * e_b / np.sqrt(e_b * e_b - 4 * t * t)) / (2 * t * t)
                if e_b < mu - abs(bias) / 2:
                    n += 1 / abs(1 - 2 * tc2 * dg)
        return n

    n_maj, n_min = occupation(-J), occupation(J)
    return J * (n_maj - n_min) * d, n_maj + n_min
