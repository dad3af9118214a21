"""The s-d (Kondo-lattice) Hamiltonian of conduction electrons coupled to classical spins.

.. math::

    H = -\\sum_{ij,s} t_{ij} c^\\dagger_{is} c_{js}
        - J \\sum_i S_i \\cdot (c^\\dagger_i \\sigma c_i)

with ``t_ij = t1, t2, t3`` on the first three neighbour shells (units: t1 = 1 sets the
energy scale), Pauli matrices sigma (not sigma/2), and classical unit spins S_i.
Electron orbitals are indexed ``2 * i + s`` with ``s = 0`` (up) and ``1`` (down) along z.

The on-site block of site i is ``-J S_i . sigma =
-J [[Sz, Sx - i Sy], [Sx + i Sy, -Sz]]``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray

from mllg.lattice import Lattice

__all__ = [
    "PAULI",
    "SdHamiltonian",
    "onsite_blocks",
]

PAULI = np.array([[[0, 1], [1, 0]], [[0, -1j], [1j, 0]], [[1, 0], [0, -1]]], dtype=np.complex128)
"""Pauli matrices ``sigma^a_{ss'}`` stacked as (3, 2, 2)."""


def onsite_blocks(spins: NDArray, J: float) -> NDArray[np.complex128]:
    """On-site exchange blocks ``-J S_i . sigma``, shape (..., N, 2, 2)."""
    return -J * np.einsum("...ia,abc->...ibc", spins, PAULI)


class SdHamiltonian:
    """Sparse s-d Hamiltonian of a lattice, with in-place updates for new spins.

    The hopping pattern and the 2x2 on-site blocks share one CSR sparsity pattern built
    once; :meth:`matrix` only rewrites the on-site entries (``O(N)``) when spins change.

    Parameters
    ----------
    lattice : Lattice
    t1, t2, t3 : float
        Hopping amplitudes on the first, second and third neighbour shells.
    J : float
        s-d exchange coupling (energy units of t1).
    """

    def __init__(
        self, lattice: Lattice, t1: float = 1.0, t2: float = 0.0, t3: float = 0.0, J: float = 1.0
    ) -> None:
        self.lattice = lattice
        self.t = (float(t1), float(t2), float(t3))
        self.J = float(J)
        n = lattice.N
        rows, cols, vals = [], [], []
        for shell, t in enumerate(self.t, start=1):
            if t == 0.0:
                continue
            i, j = lattice.bonds(shell)
            for s in (0, 1):
                rows.append(2 * i + s)
                cols.append(2 * j + s)
                vals.append(np.full(i.size, -t, dtype=np.complex128))
        hop = sp.coo_matrix(
            (
                np.concatenate(vals) if vals else np.zeros(0, complex),
                (
                    np.concatenate(rows) if rows else np.zeros(0, int),
                    np.concatenate(cols) if cols else np.zeros(0, int),
                ),
            ),
            shape=(2 * n, 2 * n),
        ).tocsr()
        hop.sum_duplicates()
        self.hopping = hop
        # On-site pattern: every (2i+s, 2i+s') entry, explicitly stored.
        site = np.repeat(np.arange(n), 4)
        s, sp_ = np.tile([0, 0, 1, 1], n), np.tile([0, 1, 0, 1], n)
        marker = sp.csr_matrix(
            (np.full(4 * n, 1.0 + 0j), (2 * site + s, 2 * site + sp_)), shape=(2 * n, 2 * n)
        )
        pattern = (abs(hop) + abs(marker)).tocsr()
        pattern.sort_indices()
        self._indptr, self._indices = pattern.indptr, pattern.indices
        rows_of = np.repeat(np.arange(2 * n), np.diff(self._indptr))
        self._keys = rows_of.astype(np.int64) * (2 * n) + self._indices
        self._hop_data = self._on_pattern(hop)
        self._onsite_pos = self._positions(2 * site + s, 2 * site + sp_).reshape(n, 2, 2)

    # ------------------------------------------------------------------ internals
    def _positions(self, r: NDArray, c: NDArray) -> NDArray[np.int64]:
        """Index into the CSR data array of entries (r, c) of the fixed pattern.

        The pattern is row-major sorted, so the keys ``row * 2N + col`` are increasing
        and one ``searchsorted`` locates every entry.
        """
        return np.searchsorted(self._keys, np.asarray(r, np.int64) * self.dim + c)

    def _on_pattern(self, m: sp.csr_matrix) -> NDArray[np.complex128]:
        m = sp.csr_matrix(m)
        m.sort_indices()
        coo = m.tocoo()
        data = np.zeros(self._indices.size, dtype=np.complex128)
        if coo.nnz:
            data[self._positions(coo.row, coo.col)] = coo.data
        return data

    # ------------------------------------------------------------------ public API
    @property
    def dim(self) -> int:
        """Hilbert-space dimension ``2 N``."""
        return 2 * self.lattice.N

    def data(self, spins: NDArray) -> NDArray[np.complex128]:
        """CSR data array of H for the given spins (pattern :attr:`indices`, :attr:`indptr`)."""
        spins = np.asarray(spins, dtype=float)
        self._check(spins)
        data = self._hop_data.copy()
        data[self._onsite_pos] += onsite_blocks(spins, self.J)
        return data

    @property
    def indices(self) -> NDArray:
        return self._indices

    @property
    def indptr(self) -> NDArray:
        return self._indptr

    def matrix(self, spins: NDArray) -> sp.csr_matrix:
        """Sparse CSR Hamiltonian ``H(S)`` of shape (2N, 2N), complex."""
        return sp.csr_matrix(
            (self.data(spins), self._indices, self._indptr), shape=(self.dim, self.dim)
        )

    def update(self, H: sp.csr_matrix, spins: NDArray) -> sp.csr_matrix:
        """Overwrite the on-site blocks of a matrix from :meth:`matrix` in place (O(N))."""
        spins = np.asarray(spins, dtype=float)
        self._check(spins)
        H.data[self._onsite_pos] = self._hop_data[self._onsite_pos] + onsite_blocks(spins, self.J)
        return H

    def dense(self, spins: NDArray) -> NDArray[np.complex128]:
        """Dense Hamiltonians for one (N, 3) or a batch (F, N, 3) of spin configurations."""
        spins = np.asarray(spins, dtype=float)
        self._check(spins)
        h0 = self.hopping.toarray()
        batch = spins.reshape(-1, self.lattice.N, 3)
        out = np.broadcast_to(h0, (batch.shape[0],) + h0.shape).copy()
        blocks = onsite_blocks(batch, self.J)
        n = self.lattice.N
        idx = np.arange(n)
        for s in (0, 1):
            for sp_ in (0, 1):
                out[:, 2 * idx + s, 2 * idx + sp_] += blocks[:, :, s, sp_]
        return out.reshape(spins.shape[:-2] + h0.shape)

    def _check(self, spins: NDArray) -> None:
        if spins.shape[-2:] != (self.lattice.N, 3):
            raise ValueError(
                f"spins must have shape (..., {self.lattice.N}, 3) for this lattice, "
                f"got {spins.shape}."
            )
