"""Ensembles, Fermi functions and the result type shared by every electronic solver.

Energy convention
-----------------
Every solver returns the thermodynamic potential whose spin gradient is minus the
Hellmann–Feynman exchange field, ``h_i = -dE/dS_i = J Tr[sigma rho_ii]``:

* grand canonical (mu, kT): ``E = Omega = sum_n omega(eps_n)`` with
  ``omega(eps) = -kT ln(1 + exp(-(eps - mu)/kT))`` (``-> min(eps - mu, 0)`` at kT = 0);
* canonical (N_e fixed): ``E = F = Omega(mu*) + mu* N_e`` with mu* fixing
  ``<N> = N_e``; at kT = 0 this is the sum of the lowest N_e levels.

The density matrix is ``rho_ab = <c^dagger_b c_a> = sum_n f_n U_an U*_bn``; its on-site
2x2 blocks ``rho_ii[s, s'] = <c^dagger_{is'} c_{is}>`` give the local spin density
``m_i = Tr[sigma rho_ii]`` and the field ``h_i = J m_i`` (units of t).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq
from scipy.special import expit

from mllg.hamiltonian import PAULI

__all__ = [
    "ElectronicResult",
    "Ensemble",
    "fermi",
    "fields_from_rho",
    "grand_potential_levels",
    "occupations",
]


@dataclass(frozen=True)
class Ensemble:
    """Statistical ensemble of the electrons.

    Parameters
    ----------
    kind : {"canonical", "grand_canonical"}
    filling : float, optional
        Canonical filling ``f = N_e / (2N)`` in (0, 1).
    mu : float, optional
        Grand-canonical chemical potential (units of t).
    kT : float
        Temperature (units of t), ``>= 0``; 0 means step occupations.
    """

    kind: str
    filling: float | None = None
    mu: float | None = None
    kT: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("canonical", "grand_canonical"):
            raise ValueError(
                f"ensemble kind={self.kind!r} is not allowed; use 'canonical' or 'grand_canonical'."
            )
        if not np.isfinite(self.kT) or self.kT < 0:
            raise ValueError(f"kT={self.kT!r} must be a finite number >= 0.")
        if self.kind == "canonical":
            if self.filling is None or not (0.0 < self.filling < 1.0):
                raise ValueError(
                    f"filling={self.filling!r} must lie in the open interval (0, 1) "
                    "for the canonical ensemble."
                )
        elif self.mu is None or not np.isfinite(self.mu):
            raise ValueError(
                f"mu={self.mu!r} must be a finite number for the grand canonical ensemble."
            )

    @classmethod
    def canonical(cls, filling: float, kT: float = 0.0) -> Ensemble:
        return cls("canonical", filling=float(filling), kT=float(kT))

    @classmethod
    def grand_canonical(cls, mu: float, kT: float = 0.0) -> Ensemble:
        return cls("grand_canonical", mu=float(mu), kT=float(kT))

    def n_electrons(self, n_sites: int) -> int:
        """Electron number ``N_e = round(2 N f)`` of the canonical ensemble."""
        if self.kind != "canonical":
            raise ValueError("n_electrons is defined only for the canonical ensemble.")
        n_e = int(round(2 * n_sites * self.filling))
        if not 0 < n_e < 2 * n_sites:
            raise ValueError(
                f"filling={self.filling} gives N_e={n_e} electrons on {n_sites} sites; "
                f"need 0 < N_e < {2 * n_sites}."
            )
        return n_e

    def attrs(self) -> dict:
        """Data-contract attributes (``kT`` and ``filling`` or ``mu``)."""
        out = {"ensemble": self.kind, "kT": self.kT}
        if self.kind == "canonical":
            out["filling"] = self.filling
        else:
            out["mu"] = self.mu
        return out


def fermi(eps: NDArray, mu: float | NDArray, kT: float) -> NDArray[np.float64]:
    """Fermi function ``1 / (1 + exp((eps - mu)/kT))``; at kT = 0 a step (1/2 at eps = mu)."""
    x = np.asarray(eps) - mu
    if kT == 0.0:
        return np.where(x < 0, 1.0, np.where(x > 0, 0.0, 0.5))
    return expit(-x / kT)


def grand_potential_levels(eps: NDArray, mu: float | NDArray, kT: float) -> NDArray[np.float64]:
    """Per-level grand potential ``omega(eps) = -kT ln(1 + exp(-(eps - mu)/kT))``."""
    x = np.asarray(eps) - mu
    if kT == 0.0:
        return np.minimum(x, 0.0)
    return -kT * np.logaddexp(0.0, -x / kT)


def occupations(
    eps: NDArray, ensemble: Ensemble, degeneracy_tol: float = 1e-10
) -> tuple[NDArray, float, float]:
    """Occupations of sorted levels of one Hamiltonian.

    Returns
    -------
    f : ndarray
        Occupation of every level.
    mu : float
        Chemical potential (the solved one in the canonical ensemble; at kT = 0 the
        midpoint of the Fermi gap).
    energy : float
        The potential of the module docstring (Omega or F).
    """
    eps = np.asarray(eps, dtype=float)
    kT = ensemble.kT
    if ensemble.kind == "grand_canonical":
        mu = float(ensemble.mu)
        f = fermi(eps, mu, kT)
        return f, mu, float(grand_potential_levels(eps, mu, kT).sum())
    n_e = ensemble.n_electrons(eps.size // 2)
    if kT == 0.0:
        e_f = eps[n_e - 1]
        mu = 0.5 * (eps[n_e - 1] + eps[n_e])
        f = (eps < e_f - degeneracy_tol).astype(float)
        shell = np.abs(eps - e_f) <= degeneracy_tol
        f[shell] = (n_e - f.sum()) / shell.sum()  # share the last electrons evenly
        return f, float(mu), float(np.dot(f, eps))
    lo, hi = eps[0] - 50 * kT - 1.0, eps[-1] + 50 * kT + 1.0
    mu = brentq(lambda m: fermi(eps, m, kT).sum() - n_e, lo, hi, xtol=1e-14, rtol=1e-15)
    f = fermi(eps, mu, kT)
    return f, float(mu), float(grand_potential_levels(eps, mu, kT).sum() + mu * n_e)


def fields_from_rho(rho: NDArray, J: float) -> NDArray[np.float64]:
    """Exchange field ``h_i^a = J Tr[sigma^a rho_ii]`` from on-site blocks (..., N, 2, 2)."""
    return J * np.einsum("abc,...icb->...ia", PAULI, rho).real


@dataclass
class ElectronicResult:
    """What an electronic solver returns for a batch of F spin configurations.

    Attributes
    ----------
    energy : (F,) potential E with ``h = -dE/dS`` (see module docstring), units of t.
    fields : (F, N, 3) exchange fields ``h_i = J Tr[sigma rho_ii]``.
    rho : (F, N, 2, 2) on-site density-matrix blocks.
    mu : (F,) chemical potential.
    """

    energy: NDArray[np.float64]
    fields: NDArray[np.float64]
    rho: NDArray[np.complex128]
    mu: NDArray[np.float64]

    @property
    def density(self) -> NDArray[np.float64]:
        """Local electron density ``n_i = Tr rho_ii`` (0..2), shape (F, N)."""
        return np.einsum("...ii->...", self.rho).real
