"""Exact diagonalization (ED) of the s-d Hamiltonian.

Dense Hermitian diagonalization ``H = U diag(eps) U^dagger`` of the (2N x 2N) matrix, cost
``O(N^3)`` per configuration. Occupations follow the chosen :class:`Ensemble`; the
on-site blocks are ``rho_ii[s, s'] = sum_n f_n U_{2i+s, n} U*_{2i+s', n}`` and the
exchange field is ``h_i = J Tr[sigma rho_ii] = -dE/dS_i`` (Hellmann–Feynman), units of t.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import brentq

from mllg.electrons.base import ElectronicResult, Ensemble, fermi, fields_from_rho, occupations
from mllg.hamiltonian import SdHamiltonian

__all__ = [
    "MAX_BATCH_BYTES",
    "ExactDiagonalization",
    "mu_for_mean_filling",
]

MAX_BATCH_BYTES = 2**28


def _frames_per_stack(n_sites: int, max_bytes: int = MAX_BATCH_BYTES) -> int:
    """Frames diagonalized together: their complex (2N x 2N) matrices, with eigenvectors
    and workspace (3 copies), fit in ``max_bytes``."""
    return max(1, max_bytes // (16 * (2 * n_sites) ** 2 * 3))


class ExactDiagonalization:
    """ED solver and LLG field provider.

    Parameters
    ----------
    hamiltonian : SdHamiltonian
    ensemble : Ensemble
    max_batch_bytes : int
        Frames are diagonalized in stacks whose dense matrices fit in this many bytes.
    """

    name = "ed"

    def __init__(
        self,
        hamiltonian: SdHamiltonian,
        ensemble: Ensemble,
        max_batch_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        self.hamiltonian = hamiltonian
        self.ensemble = ensemble
        if ensemble.kind == "canonical":
            ensemble.n_electrons(hamiltonian.lattice.N)  # validates the filling now
        self.max_batch_bytes = max_batch_bytes

    def solve(self, spins: NDArray) -> ElectronicResult:
        """Energy, fields, on-site density blocks and mu for (N, 3) or (F, N, 3) spins."""
        spins = np.asarray(spins, dtype=float)
        single = spins.ndim == 2
        batch = spins.reshape(-1, self.hamiltonian.lattice.N, 3)
        n = batch.shape[1]
        chunk = _frames_per_stack(n, self.max_batch_bytes)
        energy, rho, mu = [], [], []
        for start in range(0, batch.shape[0], chunk):
            h = self.hamiltonian.dense(batch[start : start + chunk])
            eps, vec = np.linalg.eigh(h)
            occ = [occupations(e, self.ensemble) for e in eps]
            f = np.array([o[0] for o in occ])
            mu.extend(o[1] for o in occ)
            energy.extend(o[2] for o in occ)
            u = vec.reshape(vec.shape[0], n, 2, 2 * n)
            # rho_ii = (U_i f) U_i^dagger with U_i the two rows of site i: batched 2x2 blocks.
            rho.append((u * f[:, None, None, :]) @ np.swapaxes(u.conj(), -1, -2))
        rho_all = np.concatenate(rho)
        result = ElectronicResult(
            energy=np.array(energy),
            fields=fields_from_rho(rho_all, self.hamiltonian.J),
            rho=rho_all,
            mu=np.array(mu),
        )
        if single:
            result = ElectronicResult(result.energy, result.fields[0], result.rho[0], result.mu)
        return result

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        """Field-provider interface: exchange fields h (N, 3) for spins (N, 3)."""
        return self.solve(spins).fields

    def energy(self, spins: NDArray) -> float | NDArray[np.float64]:
        """Electronic potential E (see :mod:`mllg.electrons.base`)."""
        e = self.solve(spins).energy
        return float(e[0]) if np.asarray(spins).ndim == 2 else e


def mu_for_mean_filling(
    hamiltonian: SdHamiltonian, spins: NDArray, filling: float, kT: float
) -> float:
    """Chemical potential whose grand-canonical filling, averaged over frames, is ``filling``.

    Solves ``(1 / F) sum_f sum_n fermi(eps_n^(f) - mu, kT) / (2 N) = filling`` for ``mu``
    (units of t) with the exact levels ``eps^(f)`` of every frame. This is the ``mu`` for
    grand-canonical training labels (``sample.label_mu``) of frames sampled canonically
    at that filling: the labels keep the stated mean density, while each frame's density
    follows its own spins, as a local (Behler–Parrinello) energy requires.

    Parameters
    ----------
    hamiltonian : SdHamiltonian
    spins : (N, 3) or (F, N, 3) unit spins.
    filling : float
        Target mean filling ``N_e / (2 N)``, in (0, 1).
    kT : float
        Electronic temperature (units of t), > 0 (at kT = 0 the mean filling is a step
        function of ``mu`` and has no unique solution).
    """
    if not 0.0 < filling < 1.0:
        raise ValueError(f"filling={filling!r} must lie strictly between 0 and 1.")
    if not kT > 0.0:
        raise ValueError(f"kT={kT!r} must be > 0 to fix mu by the mean filling.")
    batch = np.asarray(spins, dtype=float).reshape(-1, hamiltonian.lattice.N, 3)
    chunk = _frames_per_stack(batch.shape[1])
    eps = np.concatenate(
        [
            np.linalg.eigvalsh(hamiltonian.dense(batch[k : k + chunk])).ravel()
            for k in range(0, len(batch), chunk)
        ]
    )
    n_levels = eps.size

    def excess(mu: float) -> float:
        return float(fermi(eps, mu, kT).sum()) / n_levels - filling

    lo, hi = float(eps.min()) - 50 * kT - 1.0, float(eps.max()) + 50 * kT + 1.0
    return float(brentq(excess, lo, hi, xtol=1e-13, rtol=1e-15))
