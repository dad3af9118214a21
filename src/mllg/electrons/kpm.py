"""Kernel polynomial method (KPM) for the on-site density matrix and exchange fields.

Method
------
The spectrum of ``H`` lies in ``[E_min, E_max]`` (Weyl bound, below); with
``a = (E_max - E_min) / 2 (1 + margin)`` and ``b = (E_max + E_min) / 2`` the rescaled
``X = (H - b) / a`` has its spectrum inside ``[-1, 1]``. The Fermi function is expanded as

.. math::

    f(H) = \\sum_{n=0}^{M-1} g_n c_n(\\mu) T_n(X), \\qquad
    c_n(\\mu) = \\frac{2 - \\delta_{n0}}{\\pi} \\int_{-1}^{1}
        \\frac{f(a x + b - \\mu) T_n(x)}{\\sqrt{1 - x^2}} dx,

with Chebyshev polynomials ``T_n``, kernel factors ``g_n`` (``dirichlet``: 1,
``jackson``, ``lorentz``) and ``c_n`` computed by a discrete cosine transform on
``4 M`` Chebyshev nodes. At ``kT > 0`` the Fermi function is analytic in a strip of
half-width ``pi kT`` so ``|c_n|`` decays like ``exp(-n pi kT / a)`` and plain truncation
(``dirichlet``) converges exponentially; the Jackson kernel smears by ``~pi a / M`` and
converges only as ``M^-2`` (error tables: ``benchmarks/kpm.py --accuracy``).

On-site blocks by probing: sites get colours such that two sites of the same colour are
at least ``distance`` apart (Cartesian distance in nearest-neighbour units, minimal image).
For each colour c and spin s the probe ``v_{cs} = sum_{i in c} phi_i e_{2i+s}``
(``phi_i = 1`` or a random phase) gives

.. math::

    \\rho_{ii}[s', s] \\approx \\phi_i^* (f(H) v_{cs})_{2i+s'}
        = f(H)_{2i+s', 2i+s} + \\sum_{j \\in c, j \\ne i} \\phi_i^* \\phi_j f(H)_{2i+s', 2j+s},

exact up to the Chebyshev truncation when ``f(H)_{ij}`` vanishes beyond ``distance``.

Choice of the colour distance and error estimate
------------------------------------------------
The probing error of site i is the sum over its same-colour partners j (all at
``|r_ij| >= d``) of ``phi_i^* phi_j rho_ij``; it is an absolute error ``~ J |rho(d)|`` on the
field, while the dynamics and the accuracy metric use ``h_perp``, which can be small
(weak J against the bandwidth), so a small ``|rho(d)|`` is not enough for a small
relative error. The distance and the error are therefore computed, not assumed:

* ``distance="auto"`` (default) computes exact columns ``f(H) e_{2i+s}`` at 64 sites of a
  fixed random-spin reference state (or of given ``reference_spins``) at the solver's kT
  and ensemble, evaluates the relative RMSE of ``h_perp`` that every colouring of the
  lattice would make on them (:meth:`KernelPolynomial.probing_error_by_colouring`), and
  takes the fewest colours below ``probe_target`` (5e-3); if no colouring that fits the
  torus does, every site gets its own colour (exact on-site blocks). The decay of
  ``rho_ij`` with distance at the given kT thus sets d; it grows as kT falls.
* every solve also computes the on-site blocks of ``n_check`` check sites exactly (unit
  probes at the solved mu; half of them the sites of largest probed ``|h_perp|``, half
  fixed random sites) and reports the stratified estimate ``probing_error_rel`` of
  ``rms |dh_perp| / rms |h_perp|`` in ``info``; above ``probe_tol`` (1e-2) a
  :class:`KPMAccuracyWarning` names the estimate.
The moments ``T_n(X) V`` come from the recursion ``W_{n+1} = 2 X W_n - W_{n-1}`` with
scipy CSR x dense-block products, ``O(M N_colours N)`` work: linear in N at fixed
``distance``. The blocks are made Hermitian, and the field is
``h_i = J Tr[sigma rho_ii]`` (units of t), as in :mod:`mllg.electrons.base`.

Ensembles and energy
--------------------
Global moments ``tau_n = sum_i tr T_n(X)_ii`` (from the same probes) give
``N(mu) = sum_n g_n c_n(mu) tau_n`` and the grand potential
``Omega = sum_n g_n w_n(mu) tau_n`` with ``w_n`` the coefficients of
``omega(e) = -kT ln(1 + exp(-(e - mu)/kT))``. Canonical: ``mu*`` solves
``N(mu*) = N_e`` and ``E = F = Omega(mu*) + mu* N_e``; grand canonical: ``E = Omega``.
For the canonical ensemble the moments are contracted with the coefficients at ``K``
Chebyshev nodes in ``mu`` around a first estimate (a cheap pass with fewer colours and
random phases); ``rho(mu*)`` is then interpolated (barycentric). If ``mu*`` falls
outside that window or the interpolated electron number misses ``N_e`` by more than
``1e-6 N_e``, a second pass at ``mu*`` is made. Sign convention: ``h_i = -dE/dS_i``.

Spectral bound: ``H = K + V_J`` with hopping ``K`` (spin independent) and
``||V_J|| = |J|`` (every on-site block ``-J S.sigma`` has eigenvalues ``+-J``), so by
Weyl's inequality ``spec(H) in [lambda_min(K) - |J|, lambda_max(K) + |J|]`` for all spins;
``lambda(K)`` is computed once (dense or Lanczos).

Module layout
-------------
One module above the ~600-line guideline because it is one algorithm: the colouring
search, the Chebyshev expansions and the probing-error estimate exist only for
:class:`KernelPolynomial`, whose recursion passes, mu search and error checks share its
private state (scaled CSR Hamiltonian, probe phases, check sites, colouring).
Sections: colouring (:class:`Colouring`, :func:`make_colouring`) | Chebyshev
(:func:`kernel_factors`, coefficients, Fermi and grand-potential values) | solver
(:class:`KernelPolynomial`: setup, moment passes, probing error, public API) | helpers
(:func:`random_reference_spins`, :func:`suggested_moments`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy.fft import dct
from scipy.optimize import brentq
from scipy.sparse.linalg import eigsh

from mllg.electrons.base import ElectronicResult, Ensemble, fields_from_rho
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import Lattice

__all__ = [
    "DEFAULT_DISTANCE",
    "DEFAULT_MOMENTS",
    "KERNELS",
    "Colouring",
    "KPMAccuracyWarning",
    "KernelPolynomial",
    "chebyshev_coefficients",
    "fermi_values",
    "kernel_factors",
    "make_colouring",
    "max_colour_distance",
    "omega_values",
    "random_reference_spins",
    "step_coefficients",
    "suggested_moments",
]

KERNELS = ("dirichlet", "jackson", "lorentz")
DEFAULT_MOMENTS = 1000
DEFAULT_DISTANCE = 12.0


class KPMAccuracyWarning(UserWarning):
    """The Chebyshev truncation error estimate exceeds the requested tolerance."""


# ---------------------------------------------------------------------------- colouring
@dataclass(frozen=True)
class Colouring:
    """A colouring of the sites by cosets of a superlattice.

    The superlattice is spanned (lattice basis) by ``A1 = (n1, 0)`` and ``A2 = (m, n2)``
    (Hermite normal form); sites in the same coset share a colour. ``shortest`` is the
    shortest nonzero superlattice vector (Cartesian): the minimum distance between two
    sites of the same colour, periodic images included.
    """

    n1: int
    m: int
    n2: int
    shortest: float
    colours: NDArray[np.int64]

    @property
    def n_colours(self) -> int:
        return self.n1 * self.n2


def _shortest_vector(u: NDArray, v: NDArray) -> float:
    """Length of the shortest nonzero vector of the 2D lattice spanned by u, v (Gauss)."""
    u, v = np.asarray(u, float), np.asarray(v, float)
    if u @ u > v @ v:
        u, v = v, u
    while True:
        mu = round(float(u @ v) / float(u @ u))
        v = v - mu * u
        if v @ v >= u @ u:
            return float(np.sqrt(u @ u))
        u, v = v, u


def _divisors(n: int) -> list[int]:
    return [k for k in range(1, n + 1) if n % k == 0]


def max_colour_distance(lattice: Lattice) -> float:
    """Largest colour distance a lattice admits (its shortest periodic vector; open: size)."""
    a1, a2 = lattice.primitive
    px, py = lattice.periodic
    big = 10.0 * (lattice.Lx + lattice.Ly)
    u = lattice.Lx * a1 if px else big * a1
    v = lattice.Ly * a2 if py else big * a2
    return _shortest_vector(u, v)


def _superlattices(lattice: Lattice) -> list[tuple[int, float, int, int, int]]:
    """Pareto front of colouring superlattices: fewest colours for each shortest vector.

    Enumerates all superlattices in Hermite normal form compatible with the periodic
    directions (``n1 | Lx``, ``n2 | Ly``, ``(Ly / n2) m = 0 mod n1``) and returns
    ``(n_colours, shortest, n1, m, n2)`` sorted by ``n_colours``, keeping only entries
    whose shortest vector is strictly longer than that of every smaller colouring (ties in
    the number of colours: the longest shortest vector). Cached on the lattice.
    """
    cache = lattice._cache
    if "kpm_superlattices" in cache:
        return cache["kpm_superlattices"]
    Lx, Ly = lattice.Lx, lattice.Ly
    px, py = lattice.periodic
    a1, a2 = lattice.primitive
    d_max = max_colour_distance(lattice)
    far = 10 * (Lx + Ly)
    found: dict[int, tuple[float, int, int, int]] = {}
    for n1 in _divisors(Lx) if px else range(1, Lx + 1):
        for n2 in _divisors(Ly) if py else range(1, Ly + 1):
            for m in range(n1):
                if py and ((Ly // n2) * m) % n1:
                    continue
                u = (n1 if (px or n1 < Lx) else far) * a1
                v = m * a1 + (n2 if (py or n2 < Ly) else far) * a2
                s = min(_shortest_vector(u, v), d_max)
                k = n1 * n2
                if k not in found or s > found[k][0] + 1e-12:
                    found[k] = (s, n1, m, n2)
    front: list[tuple[int, float, int, int, int]] = []
    for k in sorted(found):
        s, n1, m, n2 = found[k]
        if not front or s > front[-1][1] + 1e-9:
            front.append((k, s, n1, m, n2))
    cache["kpm_superlattices"] = front
    return front


def _colouring_from(lattice: Lattice, n1: int, m: int, n2: int, short: float) -> Colouring:
    x, y = lattice.x, lattice.y
    j = y // n2
    colours = ((x - j * m) % n1) + n1 * (y % n2)
    return Colouring(int(n1), int(m), int(n2), float(short), colours.astype(np.int64))


def make_colouring(lattice: Lattice, distance: float | None) -> Colouring:
    """Fewest colours such that same-colour sites are at least ``distance`` apart.

    Searches all superlattices in Hermite normal form compatible with the periodic
    directions (``n1 | Lx``, ``n2 | Ly``, ``(Ly / n2) m = 0 mod n1``) and keeps the one of
    smallest index ``n1 n2`` whose shortest vector is ``>= distance`` (ties: the longest
    shortest vector). ``distance=None`` gives every site its own colour (exact probing).

    Raises
    ------
    ValueError
        If ``distance`` is not in ``[1, max_colour_distance(lattice)]``.
    """
    Lx, Ly = lattice.Lx, lattice.Ly
    d_max = max_colour_distance(lattice)
    if distance is None:
        return _colouring_from(lattice, Lx, 0, Ly, d_max)
    if (
        isinstance(distance, (bool, str))
        or not isinstance(distance, (int, float, np.integer, np.floating))
        or not (np.isfinite(distance) and 1.0 <= distance <= d_max + 1e-9)
    ):
        raise ValueError(
            f"colour distance distance={distance!r} does not fit this {Lx}x{Ly} "
            f"{lattice.kind} lattice; it must lie in [1, {d_max:.4g}] (or be None for "
            "one colour per site, or 'auto')."
        )
    for _, s, n1, m, n2 in _superlattices(lattice):
        if s + 1e-9 >= distance:
            return _colouring_from(lattice, n1, m, n2, s)
    raise AssertionError("unreachable: the full lattice is always a colouring")


# ---------------------------------------------------------------------------- Chebyshev
def kernel_factors(n_moments: int, kernel: str, lorentz_lambda: float = 4.0) -> NDArray:
    """Kernel damping factors ``g_n``, n = 0..M-1 (Weisse et al., RMP 78, 275 (2006))."""
    n = np.arange(n_moments)
    M = n_moments
    if kernel == "dirichlet":
        return np.ones(M)
    if kernel == "jackson":
        q = np.pi / (M + 1)
        return ((M - n + 1) * np.cos(q * n) + np.sin(q * n) / np.tan(q)) / (M + 1)
    if kernel == "lorentz":
        return np.sinh(lorentz_lambda * (1 - n / M)) / np.sinh(lorentz_lambda)
    raise ValueError(f"kernel={kernel!r} is not allowed; use one of {KERNELS}.")


def chebyshev_coefficients(
    func, n_coeff: int, a: float, b: float, n_nodes: int | None = None
) -> NDArray[np.float64]:
    """Chebyshev coefficients of ``func(e)`` on ``e = a x + b``, x in [-1, 1].

    ``func`` maps energies (Q,) to values (Q, K); returns (n_coeff, K). Uses the type-II
    DCT on ``Q`` first-kind Chebyshev nodes (``Q = 4 n_coeff`` by default).
    """
    q = n_nodes or max(4 * n_coeff, 256)
    x = np.cos(np.pi * (np.arange(q) + 0.5) / q)
    vals = np.asarray(func(a * x + b), dtype=float)
    c = dct(vals, type=2, axis=0)[:n_coeff] / q
    c[0] *= 0.5
    return c


def fermi_values(e: NDArray, mu: NDArray, kT: float) -> NDArray:
    """Fermi function on energies e (Q,) for chemical potentials mu (K,): shape (Q, K)."""
    x = e[:, None] - np.atleast_1d(mu)[None, :]
    if kT == 0.0:
        return np.where(x < 0, 1.0, np.where(x > 0, 0.0, 0.5))
    return 0.5 * (1.0 - np.tanh(0.5 * x / kT))


def step_coefficients(n_coeff: int, a: float, b: float, mu: NDArray) -> NDArray:
    """Exact Chebyshev coefficients of the zero-temperature Fermi step ``theta(mu - e)``.

    With ``phi = arccos((mu - b)/a)``: ``c_0 = 1 - phi/pi``, ``c_n = -2 sin(n phi)/(n pi)``;
    continuous in mu (a DCT of the step would be piecewise constant in mu).
    """
    phi = np.arccos(np.clip((np.atleast_1d(mu) - b) / a, -1.0, 1.0))
    n = np.arange(1, n_coeff)[:, None]
    c = np.empty((n_coeff, phi.size))
    c[0] = 1.0 - phi / np.pi
    c[1:] = -2.0 * np.sin(n * phi[None, :]) / (n * np.pi)
    return c


def omega_values(e: NDArray, mu: NDArray, kT: float) -> NDArray:
    """Per-level grand potential ``-kT ln(1 + exp(-(e - mu)/kT))``, shape (Q, K)."""
    x = e[:, None] - np.atleast_1d(mu)[None, :]
    if kT == 0.0:
        return np.minimum(x, 0.0)
    return -kT * np.logaddexp(0.0, -x / kT)


def _cheb_nodes(centre: float, half: float, k: int) -> tuple[NDArray, NDArray]:
    j = np.arange(k)
    theta = (2 * j + 1) * np.pi / (2 * k)
    return centre + half * np.cos(theta), (-1.0) ** j * np.sin(theta)


def _barycentric(nodes: NDArray, weights: NDArray, x: float) -> NDArray:
    """Lagrange weights L_k(x) of the barycentric interpolant on ``nodes``."""
    diff = x - nodes
    hit = np.abs(diff) < 1e-300
    if hit.any():
        out = np.zeros(nodes.size)
        out[np.argmax(hit)] = 1.0
        return out
    w = weights / diff
    return w / w.sum()


# ---------------------------------------------------------------------------- solver
class KernelPolynomial:
    """KPM solver and LLG field provider (same interface as ``ExactDiagonalization``).

    Parameters
    ----------
    hamiltonian : SdHamiltonian
    ensemble : Ensemble
        Canonical (filling, kT) or grand canonical (mu, kT). ``kT`` in units of t.
    moments : int or None
        Number of Chebyshev moments M (polynomial degree M - 1), ``>= 1``. ``None``:
        ``M = ln(1e5) a / (pi kT)`` (truncation error ~1e-5, see
        :func:`suggested_moments`), or 1000 at ``kT = 0``.
    distance : float, None or "auto"
        Colour distance d (nearest-neighbour units): same-colour sites are at least d
        apart. ``None``: one colour per site (exact on-site blocks, ``O(N^2 M)`` cost).
        ``"auto"`` (default): the fewest colours whose probing error, computed on a
        reference state (uniformly random spins, fixed seed) at this kT and ensemble, is
        below ``probe_target`` (see :meth:`probing_error_by_colouring`); one colour per
        site when no colouring that fits the lattice reaches it (the density matrix has
        not decayed within the torus). The choice depends only on the lattice, the
        Hamiltonian, the ensemble and M, never on the spins later solved.
    kernel : {"dirichlet", "jackson", "lorentz"}
        Damping of the moments. Default: ``dirichlet`` for ``kT > 0``, ``jackson`` for
        ``kT = 0`` (a step needs a kernel against Gibbs oscillations).
    random_phases : bool
        Multiply every probe entry by a random phase (unbiased probing errors).
    seed : int or None
        Seed of the random phases and of the check sites (drawn once; the same phases are
        used on every call, also in the cheap first pass that estimates mu in the
        canonical ensemble).
    tol : float
        Warn (:class:`KPMAccuracyWarning`) when the estimated bound on the field error
        from the Chebyshev truncation, ``2 |J| eps`` with
        ``eps = sum_{n<M} (1 - g_n)|c_n| + sum_{n>=M} |c_n|`` (sup-norm of
        ``f - f_M`` on the spectrum), exceeds ``tol`` (units of t).
    block_bytes : int
        Memory target of the three probe blocks held during the recursion.
    n_check : int
        Number of check sites whose on-site blocks are also computed exactly from unit
        probe vectors ``e_{2i+s}`` at the solved mu in every solve (cost ``2 n_check``
        extra columns): the ``n_check // 2`` sites of largest probed ``|h_perp|`` (where a
        large probing error shows) and the first others of a fixed random permutation
        (from ``seed``). The stratified estimate
        ``sum_i |dh_i,perp|^2 ~ sum_A |dh_perp|^2 + (N - |A|) mean_B |dh_perp|^2`` gives
        ``probing_error_rel = sqrt(mean |dh_perp|^2) / rms |h_perp|`` (in ``info``), the
        relative RMSE of the perpendicular fields (the project's accuracy metric). It is
        reliable when the error is large and a lower bound otherwise: errors concentrated
        on a few sites of small ``|h_perp|`` that are in neither stratum are missed.
        0 switches the check off; skipped with exact probing.
    probe_tol : float
        Warn (:class:`KPMAccuracyWarning`) when ``probing_error_rel`` exceeds it.
    probe_target : float
        Relative perpendicular-field probing error that ``distance="auto"`` aims for on
        the reference state; the default 5e-3 is half of a 1 % accuracy target, a margin
        for states other than the reference.
    reference_spins : (N, 3) or (F, N, 3) array or None
        Reference state(s) of ``distance="auto"`` instead of random spins, e.g. states
        near the ordered state a sampling run will visit; the colouring must meet
        ``probe_target`` on every one of them.
    """

    name = "kpm"

    def __init__(
        self,
        hamiltonian: SdHamiltonian,
        ensemble: Ensemble,
        moments: int | None = None,
        distance: float | str | None = "auto",
        kernel: str | None = None,
        random_phases: bool = False,
        seed: int | None = 0,
        tol: float = 1e-3,
        block_bytes: int = 2**24,
        n_check: int = 16,
        probe_tol: float = 1e-2,
        probe_target: float = 5e-3,
        reference_spins: NDArray | None = None,
    ) -> None:
        auto = moments is None and ensemble.kT > 0.0
        if moments is None and not auto:
            moments = DEFAULT_MOMENTS
        if not auto and (
            isinstance(moments, bool) or not isinstance(moments, (int, np.integer)) or moments < 1
        ):
            raise ValueError(
                f"number of Chebyshev moments moments={moments!r} must be a positive "
                "integer (>= 1)."
            )
        if kernel is None:
            kernel = "jackson" if ensemble.kT == 0.0 else "dirichlet"
        if kernel not in KERNELS:
            raise ValueError(f"kernel={kernel!r} is not allowed; use one of {KERNELS}.")
        if isinstance(n_check, bool) or not isinstance(n_check, (int, np.integer)) or n_check < 0:
            raise ValueError(f"n_check={n_check!r} must be an integer >= 0.")
        for key, val in (("probe_tol", probe_tol), ("probe_target", probe_target)):
            if not (np.isfinite(val) and val > 0):
                raise ValueError(f"{key}={val!r} must be a finite number > 0.")
        self.hamiltonian = hamiltonian
        self.ensemble = ensemble
        lattice = hamiltonian.lattice
        if ensemble.kind == "canonical":
            self.n_electrons = ensemble.n_electrons(lattice.N)
        self.kernel = kernel
        auto_distance = isinstance(distance, str)
        if auto_distance and distance != "auto":
            raise ValueError(
                f"colour distance distance={distance!r} is not allowed; use a number, None "
                "(one colour per site) or 'auto'."
            )
        if not auto_distance:
            make_colouring(lattice, distance)  # validate before the expensive setup
        self.random_phases = bool(random_phases)
        self.tol = float(tol)
        self.block_bytes = int(block_bytes)
        self.probe_tol = float(probe_tol)
        self.probe_target = float(probe_target)
        # One fixed set of phases (from ``seed``): results do not depend on call history,
        # so trajectories driven by this provider are reproducible and resumable.
        rng = np.random.default_rng(seed)
        self._phase = np.exp(2j * np.pi * rng.random(lattice.N))
        self._check_order = rng.permutation(lattice.N)
        self.check_sites = np.sort(self._check_order[: min(int(n_check), lattice.N)])
        self.e_min, self.e_max = self._weyl_bounds()
        half = 0.5 * (self.e_max - self.e_min)
        self.a = half * 1.01 + 1e-9
        self.b = 0.5 * (self.e_max + self.e_min)
        self.moments = suggested_moments(self.a, ensemble.kT, 1e-5) if auto else int(moments)
        self.g = kernel_factors(self.moments, kernel)
        # Diagonal positions in the CSR pattern (every row stores its diagonal entry).
        indptr, indices = hamiltonian.indptr, hamiltonian.indices
        rows = np.repeat(np.arange(hamiltonian.dim), np.diff(indptr))
        self._diag = np.nonzero(indices == rows)[0]
        if self._diag.size != hamiltonian.dim:
            raise RuntimeError("the Hamiltonian pattern must store every diagonal entry.")
        self._X2 = sp.csr_matrix(
            (hamiltonian.data(np.tile([0.0, 0.0, 1.0], (lattice.N, 1))), indices, indptr),
            shape=(hamiltonian.dim, hamiltonian.dim),
        )
        self.info: dict = {}
        self.distance_auto = auto_distance
        self.auto_table: list[tuple[int, float, float]] = []
        if reference_spins is not None:
            reference_spins = np.asarray(reference_spins, dtype=float)
            if reference_spins.shape[-2:] != (lattice.N, 3) or reference_spins.ndim > 3:
                raise ValueError(
                    f"reference_spins must have shape ({lattice.N}, 3) or (F, {lattice.N}, 3), "
                    f"got {reference_spins.shape}."
                )
        if auto_distance:
            self.colouring = self._auto_colouring(reference_spins)
            exact = self.colouring.n_colours == lattice.N
            self.distance = None if exact else float(self.colouring.shortest)
        else:
            self.distance = distance
            self.colouring = make_colouring(lattice, distance)

    # ------------------------------------------------------------------ setup helpers
    def _weyl_bounds(self) -> tuple[float, float]:
        """Spin-independent spectral bounds ``lambda(K) -+ |J|`` (Weyl's inequality)."""
        hop = self.hamiltonian.hopping
        k_up = sp.csr_matrix(hop[0::2, 0::2].real)
        n = k_up.shape[0]
        if n <= 2000:
            ev = np.linalg.eigvalsh(k_up.toarray())
            lo, hi = ev[0], ev[-1]
        else:
            lo = eigsh(k_up, k=1, which="SA", tol=1e-10, return_eigenvectors=False)[0]
            hi = eigsh(k_up, k=1, which="LA", tol=1e-10, return_eigenvectors=False)[0]
        J = abs(self.hamiltonian.J)
        pad = 1e-8 * (1.0 + abs(lo) + abs(hi))
        return float(lo - J - pad), float(hi + J + pad)

    def _scaled(self, spins: NDArray) -> sp.csr_matrix:
        """``2 X = 2 (H - b) / a`` as CSR (the pattern is shared, only data change)."""
        data = self.hamiltonian.data(spins) * (2.0 / self.a)
        data[self._diag] -= 2.0 * self.b / self.a
        self._X2.data = data
        return self._X2

    def _coeffs(self, func, mu: NDArray) -> NDArray:
        kT = self.ensemble.kT
        if kT == 0.0 and func is fermi_values:
            return step_coefficients(self.moments, self.a, self.b, mu)
        return chebyshev_coefficients(lambda e: func(e, mu, kT), self.moments, self.a, self.b)

    def truncation_error(self, mu: float) -> float:
        """Sup-norm bound ``eps`` on ``|f - sum_n g_n c_n T_n|`` over the spectrum at mu."""
        full = chebyshev_coefficients(
            lambda e: fermi_values(e, np.array([mu]), self.ensemble.kT),
            4 * self.moments,
            self.a,
            self.b,
            n_nodes=16 * self.moments,
        )[:, 0]
        M = self.moments
        return float(np.sum((1 - self.g) * np.abs(full[:M])) + np.sum(np.abs(full[M:])))

    # ------------------------------------------------------------------ moments
    def _pass(
        self,
        X2: sp.csr_matrix,
        colours: NDArray[np.int64],
        n_col: int,
        coeff: NDArray | None,
        phases: bool,
    ) -> tuple[NDArray, NDArray | None]:
        """Run the Chebyshev recursion on all probe blocks of a colouring.

        Parameters
        ----------
        colours : (N,) colour of every site, ``-1`` for sites in no probe.
        n_col : number of colours (probes per spin direction).
        coeff : (M, K) damped coefficients ``g_n c_n(mu_k)`` or None (traces only).

        Returns
        -------
        tau : (M,) global moments ``sum_i tr T_n(X)_ii`` (probed).
        acc : (K, N, 2, 2) on-site blocks ``sum_n coeff[n, k] T_n(X)_ii`` or None (zero
            on sites in no probe).
        """
        n_sites = self.hamiltonian.lattice.N
        dim = 2 * n_sites
        M = self.moments
        per_col = 2 * dim * 16 * 3
        cols_per_block = int(np.clip(self.block_bytes // per_col, 4, 64))
        cc = max(1, min(n_col, cols_per_block // 2))
        order = np.argsort(colours, kind="stable")
        starts = np.searchsorted(colours[order], np.arange(n_col + 1))
        phase = self._phase if phases else np.ones(n_sites, complex)
        tau = np.zeros(M)
        K = 0 if coeff is None else coeff.shape[1]
        acc = np.zeros((K, n_sites, 2, 2), complex) if K else None
        buf_len = 32
        for c0 in range(0, n_col, cc):
            c1 = min(n_col, c0 + cc)
            sites = order[starts[c0] : starts[c1]]
            lc = colours[sites] - c0
            ncols = 2 * (c1 - c0)
            # flat index of W[2i+s', 2 lc(i) + s] as (n_c, 2, 2)
            r = 2 * sites[:, None, None] + np.arange(2)[None, :, None]
            c = 2 * lc[:, None, None] + np.arange(2)[None, None, :]
            flat = (r * ncols + c).reshape(-1)
            ph = phase[sites]
            V = np.zeros((dim, ncols), complex)
            V[2 * sites, 2 * lc] = ph
            V[2 * sites + 1, 2 * lc + 1] = ph
            buf = np.empty((buf_len, sites.size * 4), complex)
            conj = np.repeat(ph.conj(), 4)
            w_prev, w_cur = V, 0.5 * (X2 @ V)
            nb = 0
            n0 = 0
            for n in range(M):
                if n == 0:
                    w = w_prev
                elif n == 1:
                    w = w_cur
                else:
                    w_next = X2 @ w_cur
                    w_next -= w_prev
                    w_prev, w_cur = w_cur, w_next
                    w = w_cur
                buf[nb] = np.take(w, flat) * conj
                nb += 1
                if nb == buf_len or n == M - 1:
                    blk = buf[:nb].reshape(nb, sites.size, 2, 2)
                    tau[n0 : n0 + nb] += np.einsum("nijj->n", blk).real
                    if K:
                        acc[:, sites] += (coeff[n0 : n0 + nb].T @ buf[:nb]).reshape(
                            K, sites.size, 2, 2
                        )
                    n0 += nb
                    nb = 0
        return tau, acc

    def _columns(self, X2: sp.csr_matrix, sites: NDArray, coeff: NDArray) -> NDArray:
        """Exact columns ``F[:, 2k+s] = f(H) e_{2 sites[k] + s}`` for one mu (coeff (M,)).

        ``F[2j+a, 2k+s] = rho_{j i}[a, s]`` with ``i = sites[k]`` (full vectors, used to
        measure probing errors); cost ``2 len(sites)`` probe columns.
        """
        dim = self.hamiltonian.dim
        V = np.zeros((dim, 2 * sites.size), complex)
        V[2 * sites, 2 * np.arange(sites.size)] = 1.0
        V[2 * sites + 1, 2 * np.arange(sites.size) + 1] = 1.0
        out = coeff[0] * V
        w_prev, w_cur = V, 0.5 * (X2 @ V)
        for n in range(1, self.moments):
            if n > 1:
                w_next = X2 @ w_cur
                w_next -= w_prev
                w_prev, w_cur = w_cur, w_next
            out += coeff[n] * w_cur
        return out

    def _first_mu(self, X2: sp.csr_matrix, shortest: float) -> float:
        """Cheap estimate of mu* (random-phase probes at a third of the colour distance)."""
        lat = self.hamiltonian.lattice
        col0 = make_colouring(lat, max(1.0, min(shortest, max_colour_distance(lat)) / 3))
        tau0, _ = self._pass(X2, col0.colours, col0.n_colours, None, True)
        return self._solve_mu(tau0, self.n_electrons)

    # ------------------------------------------------------------------ probing error
    def probing_error_by_colouring(
        self, spins: NDArray, n_sites: int = 64, seed: int = 20131
    ) -> list[tuple[Colouring, float, float]]:
        """Relative perpendicular-field probing error of every colouring, on given spins.

        Exact columns ``f(H) e_{2i+s}`` at ``n_sites`` random sites i (mu from a cheap
        probe pass in the canonical ensemble) give ``rho_ji`` for all j, hence the probing
        error of the on-site block of i for any colouring c:

        .. math::

            \\delta\\rho_{ii} = \\sum_{j \\in c(i), j \\ne i} \\phi_i^* \\phi_j \\rho_{ij},
            \\qquad \\delta h_i = J \\, \\mathrm{Tr}[\\sigma \\, \\delta\\rho_{ii}],

        and ``err = rms_i |dh_i,perp| / rms_i |h_i,perp|`` (both over the sampled sites).

        Returns
        -------
        list of (colouring, err, abs_err) for the Pareto front of colourings that fit the
        lattice (fewest colours for each shortest distance), excluding one colour per site.
        """
        lat = self.hamiltonian.lattice
        spins = np.asarray(spins, dtype=float)
        X2 = self._scaled(spins)
        if self.ensemble.kind == "canonical":
            mu = self._first_mu(X2, 12.0)
        else:
            mu = float(self.ensemble.mu)
        rng = np.random.default_rng(seed)
        sites = np.sort(rng.choice(lat.N, min(n_sites, lat.N), replace=False))
        coeff = self._coeffs(fermi_values, np.array([mu]))[:, 0] * self.g
        F = self._columns(X2, sites, coeff).reshape(lat.N, 2, sites.size, 2)
        # rho_ij[s', s] = conj(rho_ji[s, s']) = conj(F[j, s, k, s'])
        rho_ij = np.conj(np.transpose(F, (2, 0, 3, 1)))  # (k, j, s', s)
        k = np.arange(sites.size)
        exact = rho_ij[k, sites]
        s_i = spins[sites]
        h = fields_from_rho(exact, self.hamiltonian.J)
        h_perp = h - np.sum(h * s_i, axis=-1, keepdims=True) * s_i
        denom = np.sqrt(np.mean(np.sum(h_perp**2, axis=-1)))
        phase = self._phase if self.random_phases else np.ones(lat.N, complex)
        weight = phase[sites].conj()[:, None] * phase[None, :]  # (k, j)
        out = []
        for n_col, short, n1, m, n2 in _superlattices(lat):
            if n_col == lat.N:
                continue
            col = _colouring_from(lat, n1, m, n2, short)
            partner = col.colours[None, :] == col.colours[sites][:, None]
            partner[k, sites] = False
            d_rho = np.einsum("kj,kjab->kab", weight * partner, rho_ij)
            d_rho = 0.5 * (d_rho + np.conj(np.swapaxes(d_rho, -1, -2)))
            dh = fields_from_rho(d_rho, self.hamiltonian.J)
            dh_perp = dh - np.sum(dh * s_i, axis=-1, keepdims=True) * s_i
            num = np.sqrt(np.mean(np.sum(dh_perp**2, axis=-1)))
            out.append((col, float(num / denom) if denom > 0 else np.inf, float(num)))
        return out

    def _auto_colouring(self, reference: NDArray | None) -> Colouring:
        """Fewest colours meeting ``probe_target`` on the reference state(s).

        Default reference: uniformly random spins with a fixed seed
        (:func:`random_reference_spins`); ``self.auto_table`` keeps
        ``(n_colours, shortest, worst relative error)`` of every candidate.
        """
        lat = self.hamiltonian.lattice
        refs = random_reference_spins(lat.N)[None] if reference is None else reference
        refs = refs.reshape(-1, lat.N, 3)
        tables = [self.probing_error_by_colouring(s) for s in refs]
        worst = np.max([[err for _, err, _ in t] for t in tables], axis=0)
        self.auto_table = [
            (c.n_colours, c.shortest, float(e)) for (c, _, _), e in zip(tables[0], worst)
        ]
        for (col, _, _), err in zip(tables[0], worst):
            if err <= self.probe_target:
                return col
        return make_colouring(lat, None)

    # ------------------------------------------------------------------ public API
    def _solve_one(self, spins: NDArray) -> tuple[float, NDArray, float, dict]:
        ens = self.ensemble
        kT = ens.kT
        X2 = self._scaled(spins)
        info: dict = {"passes": 1}
        col = self.colouring
        n_sites = self.hamiltonian.lattice.N

        def run(coeff: NDArray) -> tuple[NDArray, NDArray]:
            return self._pass(X2, col.colours, col.n_colours, coeff, self.random_phases)

        if ens.kind == "grand_canonical":
            mu = float(ens.mu)
            coeff = self._coeffs(fermi_values, np.array([mu])) * self.g[:, None]
            tau, acc = run(coeff)
            rho = acc[0]
        else:
            n_e = self.n_electrons
            kT_eff = max(kT, self.a / self.moments)
            # Pass 0: cheap estimate of mu (fewer colours, random phases).
            mu0 = self._first_mu(X2, col.shortest)
            half = max(4 * kT_eff, 0.05)
            ratio = np.pi * kT_eff / half
            rho_ellipse = ratio + np.sqrt(ratio**2 + 1)
            k_nodes = int(np.clip(np.ceil(np.log(1e10) / np.log(rho_ellipse)), 4, 64))
            nodes, wts = _cheb_nodes(mu0, half, k_nodes)
            coeff = self._coeffs(fermi_values, nodes) * self.g[:, None]
            tau, acc = run(coeff)
            mu = self._solve_mu(tau, n_e)
            lag = _barycentric(nodes, wts, mu)
            rho = np.tensordot(lag, acc, axes=1)
            n_interp = float(np.einsum("ijj->", rho).real)
            info.update(mu0=mu0, k_nodes=k_nodes, window=half)
            if abs(mu - mu0) > half or abs(n_interp - n_e) > 1e-6 * n_e:
                coeff = self._coeffs(fermi_values, np.array([mu])) * self.g[:, None]
                tau, acc = run(coeff)
                rho = acc[0]
                info["passes"] = 2
        rho = 0.5 * (rho + rho.conj().transpose(0, 2, 1))
        w = self._coeffs(omega_values, np.array([mu]))[:, 0] * self.g
        energy = float(w @ tau)
        if ens.kind == "canonical":
            energy += mu * self.n_electrons
        eps = self.truncation_error(mu)
        est = 2 * abs(self.hamiltonian.J) * eps
        info.update(mu=mu, truncation_eps=eps, field_error_bound=est)
        if est > self.tol:
            res = np.pi * self.a / self.moments
            warnings.warn(
                f"KPM with moments={self.moments} is not converged for kT={kT}: estimated "
                f"field error bound {est:.2e} (units of t) exceeds tol={self.tol:g}; the "
                f"Chebyshev resolution pi*a/M = {res:.3g} should be well below kT. "
                "Increase moments.",
                KPMAccuracyWarning,
                stacklevel=3,
            )
        info.update(probing_error_abs=0.0, probing_error_rel=0.0)
        n_chk = self.check_sites.size
        if n_chk and col.n_colours < n_sites:
            J = self.hamiltonian.J
            h = fields_from_rho(rho, J)
            h_perp = h - np.sum(h * spins, axis=-1, keepdims=True) * spins
            hp2 = np.sum(h_perp**2, axis=-1)
            # Stratified check: stratum A = the n_chk // 2 sites of largest probed |h_perp|
            # (a large probing error shows up there), stratum B = fixed random sites.
            top = np.argsort(-hp2, kind="stable")[: n_chk // 2]
            rest = self._check_order[~np.isin(self._check_order, top)][: n_chk - top.size]
            check = np.concatenate([top, rest])
            chk_col = np.full(n_sites, -1, dtype=np.int64)
            chk_col[check] = np.arange(check.size)
            c_mu = self._coeffs(fermi_values, np.array([mu])) * self.g[:, None]
            rho_chk = self._pass(X2, chk_col, check.size, c_mu, False)[1][0, check]
            rho_chk = 0.5 * (rho_chk + rho_chk.conj().transpose(0, 2, 1))
            s_c = spins[check]
            dh = fields_from_rho(rho[check] - rho_chk, J)
            d2 = np.sum((dh - np.sum(dh * s_c, axis=-1, keepdims=True) * s_c) ** 2, axis=-1)
            # unbiased estimate of sum_i |dh_perp,i|^2: stratum A exactly + scaled B mean
            total = d2[: top.size].sum()
            if rest.size:
                total += (n_sites - top.size) * d2[top.size :].mean()
            num = float(np.sqrt(total / n_sites))
            den = float(np.sqrt(np.mean(hp2)))
            rel = num / den if den > 0 else (0.0 if num == 0 else np.inf)
            info.update(probing_error_abs=num, probing_error_rel=rel, check_sites=check)
            if rel > self.probe_tol:
                d_max = max_colour_distance(self.hamiltonian.lattice)
                warnings.warn(
                    f"KPM probing with colour distance {col.shortest:.3g} "
                    f"({col.n_colours} colours) is not converged for kT={kT}: estimated "
                    f"relative RMSE of the perpendicular fields {rel:.2e} (absolute "
                    f"{num:.2e} t, from {check.size} exactly computed check sites) exceeds "
                    f"probe_tol={self.probe_tol:g}. Increase distance (at most {d_max:.4g} "
                    "on this lattice), or use distance=None or 'auto'.",
                    KPMAccuracyWarning,
                    stacklevel=3,
                )
        return energy, rho, mu, info

    def _solve_mu(self, tau: NDArray, n_e: int) -> float:
        g_tau = self.g * tau

        def excess(mu: float) -> float:
            return float(self._coeffs(fermi_values, np.array([mu]))[:, 0] @ g_tau) - n_e

        lo, hi = self.b - 1.5 * self.a, self.b + 1.5 * self.a
        return float(brentq(excess, lo, hi, xtol=1e-13, rtol=1e-15))

    def solve(self, spins: NDArray) -> ElectronicResult:
        """Energy, fields, on-site density blocks and mu for (N, 3) or (F, N, 3) spins."""
        spins = np.asarray(spins, dtype=float)
        single = spins.ndim == 2
        batch = spins.reshape(-1, self.hamiltonian.lattice.N, 3)
        out = [self._solve_one(s) for s in batch]
        self.info = out[-1][3]
        rho = np.stack([o[1] for o in out])
        energy = np.array([o[0] for o in out])
        mu = np.array([o[2] for o in out])
        fields = fields_from_rho(rho, self.hamiltonian.J)
        if single:
            return ElectronicResult(energy, fields[0], rho[0], mu)
        return ElectronicResult(energy, fields, rho, mu)

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        """Field-provider interface: exchange fields h (N, 3) for spins (N, 3)."""
        return self.solve(spins).fields

    def energy(self, spins: NDArray) -> float | NDArray[np.float64]:
        """Electronic potential E (see :mod:`mllg.electrons.base`)."""
        e = self.solve(spins).energy
        return float(e[0]) if np.asarray(spins).ndim == 2 else e

    def settings(self) -> dict:
        """Solver settings for data-contract attrs (numbers and strings only)."""
        return {
            "solver": self.name,
            "kpm_moments": self.moments,
            "kpm_distance": -1.0 if self.distance is None else float(self.distance),
            "kpm_distance_rule": "auto" if self.distance_auto else "fixed",
            "kpm_probe_target": self.probe_target,
            "kpm_n_colours": self.colouring.n_colours,
            "kpm_kernel": self.kernel,
            "kpm_random_phases": int(self.random_phases),
            "kpm_spectral_bounds": [self.e_min, self.e_max],
            "kpm_n_check": int(self.check_sites.size),
        }


def random_reference_spins(n_sites: int, seed: int = 20131235) -> NDArray[np.float64]:
    """The fixed reference state of ``distance="auto"``: uniformly random unit spins."""
    v = np.random.default_rng(seed).normal(size=(n_sites, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def suggested_moments(a: float, kT: float, eps: float = 1e-6) -> int:
    """Moments for a truncation error ~eps at kT > 0: ``M = ln(1/eps) a / (pi kT)``."""
    if kT <= 0:
        raise ValueError(f"kT={kT!r} must be > 0 to suggest a finite number of moments.")
    return int(math.ceil(math.log(1 / eps) * a / (np.pi * kT)))
