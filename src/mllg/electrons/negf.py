"""Nonequilibrium Green's functions (NEGF) for a voltage-driven s-d strip between two leads.

System
------
A strip of ``Lx`` (along x, the transport direction) by ``W`` sites (``W = 1``: a chain),
site index ``i = x + Lx * y``, with the s-d Hamiltonian of :mod:`mllg.hamiltonian`
(nearest-neighbour hopping ``-t1``, on-site block ``-J S_i . sigma``, Pauli matrices, no
factor 1/2). Two semi-infinite, non-magnetic leads of the same width continue the strip
along -x (left, L) and +x (right, R): on-site energy 0, hopping ``-t_lead`` inside the
lead, and hopping ``-t_coupling`` between the last lead column and the strip edge column.
Defaults: ``t_lead = t_coupling = t1``. Along y the leads are open or periodic like the
strip.

Kwant builds this system once (``finalize`` once): the scattering region holds the strip
plus one lead column on each side (so that the lead-strip coupling is independent of the
lead hopping); the spins enter only the on-site values, through the Kwant parameter
``spins``.

Density matrix and fields
-------------------------
Units: t1 = 1 sets the energy, hbar = 1. Bias ``V``: ``mu_L = mu + V/2``,
``mu_R = mu - V/2``; Fermi functions ``f_a(E) = 1/(1 + exp((E - mu_a)/kT))`` (a step at
``kT = 0``). With ``G^r(E) = [E - H - Sigma_L(E) - Sigma_R(E)]^{-1}`` and
``Gamma_a = i (Sigma_a - Sigma_a^dagger)`` the nonequilibrium density matrix
(``rho_ab = <c^dagger_b c_a>``) is

.. math::

    \\rho = \\int \\frac{dE}{2\\pi} G^r (f_L \\Gamma_L + f_R \\Gamma_R) G^a
          + \\text{bound states}
          = \\rho_{eq}(\\mu_<) + \\int \\frac{dE}{2\\pi} G^r \\Gamma_> G^a (f_> - f_<),

where ``>`` (``<``) is the lead with the higher (lower) chemical potential. The
equilibrium part is evaluated in the complex plane, where ``G^r`` is analytic, and so
includes every state below ``mu_<`` (bound states outside the lead bands too):

.. math::

    \\rho_{eq}(\\mu) = \\frac{i}{2\\pi} (X - X^\\dagger), \\qquad
    X = \\int_{-\\infty}^{\\infty} dE\\, f(E) G^r(E + i0)
      = \\int_C dz\\, f(z) G^r(z) - 2\\pi i\\, kT \\sum_{n < N_p} G^r(\\mu + i(2n+1)\\pi kT),

with C an arc from ``E_min`` (below the whole spectrum, where G is Hermitian) to
``mu - n_kT kT + i gamma`` followed by the line ``Im z = gamma = 2 N_p pi kT`` up to
``mu + n_kT kT`` (on that line ``f(z) = f(Re z)`` is real); at ``kT = 0`` C is the
semicircle from ``E_min`` to ``mu``. The window integral runs on the real axis over
``[mu_< - n_kT kT, mu_> + n_kT kT]`` cut at the lead sub-band edges (van Hove points)
with a smoothstep substitution that removes their square-root behaviour. Both integrals
use adaptive composite Gauss–Legendre rules: on every panel the field contribution of an
``n``-node rule is compared with an ``n/2``-node rule, panels above their share of
``tol`` are halved, and the summed estimate is reported in :attr:`NEGF.last_error`
(``"contour"``, ``"window"``; a warning is raised if ``max_nodes`` stops the
refinement). Accepted panels are reused as the start of the next call.

Spin transfer and the precession sign of the driven wall: total spin is conserved (the
leads are spin-independent), so in a steady state ``sum_i J S_i x m_i``
(``m_i = Tr[sigma rho_ii]``) equals half the divergence of the sigma spin current
(tested against Kwant's current operator). The moments, as spin angular momenta,
receive it as ``dS_i/dt = +S_i x h_i``. Project convention for every driven run
(direct NEGF-LLG, NEGF sampling, benchmarks): ``mllg.dynamics.LLG(..., precession=+1)``,
i.e. ``dS/dt = +S x h - alpha S x (S x h)``; then electron plus local spin is conserved
and a current pushes a wall along the electron flow (for ``V > 0`` electrons flow from
left to right, and the wall moves to +x). The design default ``precession=-1`` gives
the same fields but the opposite wall motion; in equilibrium the two signs are related
by ``S -> -S``.

The exchange field is ``h_i = J Tr[sigma rho_ii]`` (units of t), the same convention as
every solver in :mod:`mllg.electrons`. Out of equilibrium it is not a gradient field, so
no energy is returned (``energy`` is NaN).

Engines
-------
* ``window="rgf"`` (default): recursive Green's functions on the x slices, vectorized
  over all energies, for both integrals. The lead self-energies come from the Kwant
  lead blocks (cell Hamiltonian and inter-cell hopping) by their transverse channels;
  :meth:`NEGF.lead_selfenergy` also offers Kwant's ``selfenergy`` (real E) and
  Sancho–Rubio decimation (complex z) as cross-checks (tested to agree to 1e-12).
* ``window="kwant"``: the window term from Kwant scattering states,
  ``G^r Gamma_a G^a = sum_modes psi psi^dagger`` (Kwant normalises the modes to unit
  current), with ``kwant_solver = "mumps"`` or ``"sparse"``.
* :class:`DenseNEGF`: an independent dense route (numpy inverse of
  ``z - H - Sigma_L - Sigma_R`` with the analytic semi-infinite ribbon self-energies,
  the s-d matrix of :class:`~mllg.hamiltonian.SdHamiltonian` and a different contour).

Module layout
-------------
One module above the ~600-line guideline because it is one solver: the contour and window
quadrature, the lead self-energies and the RGF sweeps implement the formulas above for
the two solver classes, which share the adaptive quadrature driver and its warm-start
panel cache (``_NEGFBase``); :class:`DenseNEGF` stays next to :class:`NEGF` as its
independent cross-check. Sections: quadrature (:func:`fermi_complex`, :class:`Segment`,
:func:`equilibrium_segments`) | leads (chain and ribbon self-energies, decimation) |
RGF (:func:`rgf`) | validation (:class:`StripSpec`, :func:`make_spec`) | base class
(adaptive integrals, public API) | Kwant solver (:class:`NEGF`) | dense check
(:class:`DenseNEGF`) | :func:`strip_negf`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from mllg.electrons.base import ElectronicResult, Ensemble, fields_from_rho
from mllg.hamiltonian import PAULI, SdHamiltonian, onsite_blocks
from mllg.lattice import Lattice

__all__ = [
    "KWANT_SOLVERS",
    "NEGF",
    "N_KT",
    "WINDOW_ENGINES",
    "DenseNEGF",
    "Segment",
    "StripSpec",
    "chain_surface_g",
    "decimation_surface_g",
    "equilibrium_segments",
    "fermi_complex",
    "lead_band_edges",
    "make_spec",
    "rgf",
    "ribbon_selfenergy",
    "strip_negf",
    "transverse_hopping",
]

N_KT = 37.0
"""Fermi tails are cut at ``|E - mu| = N_KT kT`` (``exp(-37) < 1e-16``)."""

WINDOW_ENGINES = ("rgf", "kwant")
KWANT_SOLVERS = ("mumps", "sparse")


# ---------------------------------------------------------------------------- quadrature
@lru_cache(maxsize=64)
def _gauss_legendre(n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Gauss–Legendre nodes and weights on [0, 1]."""
    x, w = np.polynomial.legendre.leggauss(n)
    return 0.5 * (x + 1.0), 0.5 * w


def fermi_complex(z: NDArray, mu: float, kT: float) -> NDArray[np.complex128]:
    """Fermi function continued to complex energy, ``1 / (1 + exp((z - mu)/kT))``.

    At ``kT = 0`` the step ``Re z < mu`` (1/2 at ``Re z = mu``).
    """
    z = np.asarray(z, dtype=complex)
    if kT == 0.0:
        x = z.real - mu
        return np.where(x < 0, 1.0, np.where(x > 0, 0.0, 0.5)).astype(complex)
    arg = (z - mu) / kT
    out = np.zeros_like(z)
    low = arg.real < 0
    out[low] = 1.0 / (1.0 + np.exp(arg[low]))
    e = np.exp(-arg[~low])
    out[~low] = e / (1.0 + e)
    return out


@dataclass(frozen=True)
class Segment:
    """A path piece ``z(s)``, ``s in [0, 1]``, with weight: ``int ds jac(s) g(z(s))``.

    ``jac(s) = w(z(s)) dz/ds`` includes the Fermi factor of the integrand.
    """

    z_of: Callable[[NDArray], NDArray]
    dz_of: Callable[[NDArray], NDArray]
    weight: Callable[[NDArray], NDArray]

    def __call__(self, s: NDArray) -> tuple[NDArray[np.complex128], NDArray[np.complex128]]:
        z = np.asarray(self.z_of(s), complex)
        return z, self.dz_of(s) * self.weight(z)

    @classmethod
    def real_panel(cls, a: float, b: float, weight: Callable) -> Segment:
        """``E = a + (b - a) u(s)`` with the smoothstep ``u = 3 s^2 - 2 s^3``.

        ``u'`` vanishes at both ends, which turns the ``sqrt(E - E_edge)`` behaviour at
        band edges (van Hove points) into a smooth integrand.
        """
        return cls(
            lambda s: a + (b - a) * (3 * s**2 - 2 * s**3),
            lambda s: (b - a) * 6 * s * (1 - s),
            weight,
        )

    @classmethod
    def line(cls, a: complex, b: complex, weight: Callable) -> Segment:
        """Straight line from a to b."""
        return cls(lambda s: a + (b - a) * s, lambda s: np.full(np.shape(s), b - a), weight)

    @classmethod
    def arc(cls, c: float, r: float, th0: float, th1: float, weight: Callable) -> Segment:
        """Circular arc ``c + r exp(i theta)``, theta from th0 to th1."""
        return cls(
            lambda s: c + r * np.exp(1j * (th0 + (th1 - th0) * s)),
            lambda s: 1j * r * np.exp(1j * (th0 + (th1 - th0) * s)) * (th1 - th0),
            weight,
        )


def _cuts(lo: float, hi: float, breaks: NDArray) -> list[tuple[float, float]]:
    """Panels of [lo, hi] cut at the ``breaks`` that fall inside."""
    breaks = np.asarray(breaks, float)
    cuts = np.unique(np.concatenate([[lo, hi], breaks[(breaks > lo) & (breaks < hi)]]))
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def equilibrium_segments(
    mu: float, kT: float, e_min: float, gamma_target: float = 0.5
) -> tuple[list[Segment], NDArray[np.complex128]]:
    """Contour for ``X = int dE f(E) G^r(E)`` (module docstring).

    Returns the path pieces (weights ``f(z) dz``) and the Matsubara poles
    ``mu + i (2n+1) pi kT`` between path and real axis; each pole has weight
    ``-2 pi i kT``. At ``kT = 0``: the semicircle from ``e_min`` to ``mu``. At ``kT > 0``:
    an arc from ``e_min`` to ``mu - N_KT kT + i gamma`` and the line
    ``Im z = gamma = 2 N_p pi kT`` (between two poles, where ``f(z)`` is real) to
    ``mu + N_KT kT``, cut into panels refined around ``mu`` on the scale kT.
    """
    if kT == 0.0:
        one = lambda z: np.ones(np.shape(z), complex)  # noqa: E731
        c, r = 0.5 * (e_min + mu), 0.5 * (mu - e_min)
        return [Segment.arc(c, r, np.pi, 0.0, one)], np.zeros(0, complex)
    n_p = max(1, int(np.ceil(gamma_target / (2 * np.pi * kT))))
    gamma = 2 * np.pi * n_p * kT
    e_a, e_b = mu - N_KT * kT, mu + N_KT * kT
    e_min = min(e_min, e_a - 1.0)
    # circular arc with centre on the real axis through e_min and e_a + i gamma
    c = (e_a**2 + gamma**2 - e_min**2) / (2 * (e_a - e_min))
    r = c - e_min
    theta_a = float(np.angle(e_a + 1j * gamma - c))

    def f(z: NDArray) -> NDArray:
        return fermi_complex(z, mu, kT)

    segs = [Segment.arc(c, r, np.pi, theta_a, f)]
    marks = np.array([0.0, 1.5, 4.0, 9.0, 18.0])
    breaks = np.concatenate([mu - marks * kT, mu + marks * kT])
    segs += [Segment.line(a + 1j * gamma, b + 1j * gamma, f) for a, b in _cuts(e_a, e_b, breaks)]
    poles = mu + 1j * np.pi * kT * (2 * np.arange(n_p) + 1)
    return segs, poles


# ---------------------------------------------------------------------------- leads
def transverse_hopping(W: int, periodic_y: bool) -> NDArray[np.float64]:
    """Adjacency matrix ``A`` of one column (``H_col = -t A``), open or periodic (W >= 3)."""
    a = np.zeros((W, W))
    y = np.arange(W - 1)
    a[y, y + 1] = a[y + 1, y] = 1.0
    if periodic_y and W >= 3:
        a[0, W - 1] = a[W - 1, 0] = 1.0
    return a


def chain_surface_g(zeta: NDArray, t: float) -> NDArray[np.complex128]:
    """Surface Green's function of a semi-infinite chain (on-site 0, hopping -t).

    ``g(zeta) = (zeta - sqrt(zeta^2 - 4 t^2)) / (2 t^2)``, the root with ``|t g| < 1``
    (decaying); on the real axis inside the band ``|zeta| < 2|t|`` the retarded root with
    ``Im g < 0``.
    """
    zeta = np.asarray(zeta, dtype=complex)
    root = np.sqrt(zeta**2 - 4 * t * t + 0j)
    g1, g2 = (zeta - root) / (2 * t * t), (zeta + root) / (2 * t * t)
    a1, a2 = np.abs(g1), np.abs(g2)
    tie = np.isclose(a1, a2, rtol=1e-12, atol=0.0)
    pick_retarded = np.where(g1.imag <= 0, g1, g2)
    return np.where(tie, pick_retarded, np.where(a1 < a2, g1, g2))


def ribbon_selfenergy(
    z: NDArray, W: int, periodic_y: bool, t_lead: float, t_coupling: float
) -> NDArray[np.complex128]:
    """Analytic lead self-energy on the strip edge column, shape (nz, 2W, 2W).

    The semi-infinite ribbon separates into transverse channels ``phi_n`` with energies
    ``eps_n`` of ``-t_lead A``; each is a chain, so
    ``Sigma(z) = t_c^2 sum_n phi_n g(z - eps_n) phi_n^T (x) 1_spin`` (orbital ``2 y + s``).
    """
    eps, phi = np.linalg.eigh(-t_lead * transverse_hopping(W, periodic_y))
    g = chain_surface_g(np.asarray(z, complex)[:, None] - eps[None, :], t_lead)
    sig_y = t_coupling**2 * np.einsum("yn,kn,wn->kyw", phi, g, phi)
    out = np.zeros((sig_y.shape[0], 2 * W, 2 * W), complex)
    out[:, 0::2, 0::2] = sig_y
    out[:, 1::2, 1::2] = sig_y
    return out


def lead_band_edges(W: int, periodic_y: bool, t_lead: float) -> NDArray[np.float64]:
    """Sub-band edges ``eps_n +- 2|t_lead|`` of the lead (sorted, unique)."""
    eps = np.linalg.eigvalsh(-t_lead * transverse_hopping(W, periodic_y))
    return np.unique(np.round(np.concatenate([eps - 2 * abs(t_lead), eps + 2 * abs(t_lead)]), 12))


def decimation_surface_g(
    z: NDArray, h0: NDArray, v: NDArray, tol: float = 1e-13, max_iter: int = 200
) -> NDArray[np.complex128]:
    """Surface Green's function of a semi-infinite lead by Sancho–Rubio decimation.

    The lead has cell Hamiltonian ``h0`` and hopping ``v = H_{n, n+1}`` towards the bulk;
    returns ``g_s(z) = [z - h0 - v g v^dagger ...]^{-1}`` of the first cell for every
    ``z`` (``Im z > 0``), shape (nz, m, m). Convergence is doubling in the number of
    cells; it needs ``~log2(1/Im z)`` sweeps.
    """
    z = np.asarray(z, complex)
    m = h0.shape[0]
    eye = np.eye(m)
    zi = z[:, None, None] * eye
    eps_s = np.broadcast_to(h0, zi.shape).astype(complex)
    eps = eps_s.copy()
    alpha = np.broadcast_to(v, zi.shape).astype(complex)
    beta = np.broadcast_to(v.conj().T, zi.shape).astype(complex)
    for _ in range(max_iter):
        g = np.linalg.inv(zi - eps)
        agb = alpha @ g @ beta
        bga = beta @ g @ alpha
        eps_s = eps_s + agb
        eps = eps + agb + bga
        alpha = alpha @ g @ alpha
        beta = beta @ g @ beta
        if np.max(np.abs(alpha)) < tol and np.max(np.abs(beta)) < tol:
            break
    else:
        raise RuntimeError(
            "lead decimation did not converge: an energy lies too close to the real axis "
            f"(min Im z = {np.min(z.imag):.3g})."
        )
    return np.linalg.inv(zi - eps_s)


def tags_of(sites) -> NDArray[np.int64]:
    """Integer tags of Kwant sites, shape (n, 2)."""
    return np.array([tuple(site.tag) for site in sites], dtype=np.int64)


# ---------------------------------------------------------------------------- RGF
def _inv(a: NDArray) -> NDArray[np.complex128]:
    """Batched inverse; closed form for 2x2 blocks (a chain), LAPACK otherwise."""
    if a.shape[-1] != 2:
        return np.linalg.inv(a)
    det = a[..., 0, 0] * a[..., 1, 1] - a[..., 0, 1] * a[..., 1, 0]
    out = np.empty_like(a)
    out[..., 0, 0] = a[..., 1, 1] / det
    out[..., 1, 1] = a[..., 0, 0] / det
    out[..., 0, 1] = -a[..., 0, 1] / det
    out[..., 1, 0] = -a[..., 1, 0] / det
    return out


def _mm(a: NDArray, b: NDArray) -> NDArray[np.complex128]:
    """Batched matrix product; closed form for 2x2 blocks."""
    if a.shape[-1] != 2:
        return a @ b
    a, b = np.broadcast_arrays(a, b)
    out = np.empty(a.shape, complex)
    for i in (0, 1):
        for j in (0, 1):
            out[..., i, j] = a[..., i, 0] * b[..., 0, j] + a[..., i, 1] * b[..., 1, j]
    return out


def rgf(
    z: NDArray,
    diag: NDArray,
    coup: NDArray,
    sigma_l: NDArray,
    sigma_r: NDArray,
    columns: tuple[bool, bool] = (False, False),
) -> tuple[NDArray, NDArray | None, NDArray | None]:
    """Recursive Green's function of a block-tridiagonal chain of M slices.

    Left-connected ``g^L_s = [z - H_ss - H_{s,s-1} g^L_{s-1} H_{s-1,s}]^{-1}`` (with
    ``Sigma_L`` on slice 0), right-connected ``g^R_s`` likewise from the right, then
    ``G_ss = [z - H_ss - Sigma^<_s - Sigma^>_s]^{-1}``, ``G_{s+1,0} = g^R_{s+1} H_{s+1,s}
    G_{s,0}`` and ``G_{s-1,M-1} = g^L_{s-1} H_{s-1,s} G_{s,M-1}``. Cost ``O(M m^3)`` per
    energy, vectorized over energies. Couplings proportional to the identity (nearest-
    neighbour hopping along x) take a scalar fast path.

    Parameters
    ----------
    z : (nE,) complex energies.
    diag : (M, m, m) slice Hamiltonians ``H_ss``.
    coup : (M-1, m, m) couplings ``H_{s,s+1}``.
    sigma_l, sigma_r : (nE, m, m) lead self-energies on slice 0 and slice M-1.
    columns : whether to return ``G_{s,0}`` and ``G_{s,M-1}`` for all s.

    Returns
    -------
    gdiag : (nE, M, m, m) diagonal blocks ``G_ss``; and the two columns (nE, M, m, m) or None.
    """
    z = np.asarray(z, complex)
    n_e, (n_s, m, _) = z.size, diag.shape
    eye = np.eye(m)
    zi = z[:, None, None] * eye
    c = coup[:, 0, 0]
    scalar = np.allclose(coup, c[:, None, None] * eye, rtol=0, atol=0)
    cd = np.conj(np.swapaxes(coup, -1, -2))  # H_{s+1,s}

    def left_self(s: int, g: NDArray) -> NDArray:  # H_{s,s-1} g H_{s-1,s}
        return abs(c[s - 1]) ** 2 * g if scalar else cd[s - 1] @ g @ coup[s - 1]

    def right_self(s: int, g: NDArray) -> NDArray:  # H_{s,s+1} g H_{s+1,s}
        return abs(c[s]) ** 2 * g if scalar else coup[s] @ g @ cd[s]

    gl = np.empty((n_s, n_e, m, m), complex)
    gr = np.empty((n_s, n_e, m, m), complex)
    zd = zi[None] - diag[:, None]  # (M, nE, m, m)
    gl[0] = _inv(zd[0] - sigma_l)
    for s in range(1, n_s):
        gl[s] = _inv(zd[s] - left_self(s, gl[s - 1]))
    gr[-1] = _inv(zd[-1] - sigma_r)
    for s in range(n_s - 2, -1, -1):
        gr[s] = _inv(zd[s] - right_self(s, gr[s + 1]))
    # G_ss = [z - H_ss - Sigma^<_s - Sigma^>_s]^{-1}
    a = zd.copy()
    a[0] -= sigma_l
    a[-1] -= sigma_r
    if scalar:
        w = np.abs(c)[:, None, None, None] ** 2
        a[1:] -= w * gl[:-1]
        a[:-1] -= w * gr[1:]
    else:
        a[1:] -= cd[:, None] @ gl[:-1] @ coup[:, None]
        a[:-1] -= coup[:, None] @ gr[1:] @ cd[:, None]
    gdiag = _inv(a)
    col_l = col_r = None
    if columns[0]:
        col_l = np.empty_like(gl)
        col_l[0] = gdiag[0]
        for s in range(n_s - 1):  # G_{s+1,0} = g^R_{s+1} H_{s+1,s} G_{s,0}
            if scalar:
                col_l[s + 1] = np.conj(c[s]) * _mm(gr[s + 1], col_l[s])
            else:
                col_l[s + 1] = gr[s + 1] @ cd[s] @ col_l[s]
        col_l = np.swapaxes(col_l, 0, 1)
    if columns[1]:
        col_r = np.empty_like(gl)
        col_r[-1] = gdiag[-1]
        for s in range(n_s - 1, 0, -1):  # G_{s-1,M-1} = g^L_{s-1} H_{s-1,s} G_{s,M-1}
            if scalar:
                col_r[s - 1] = c[s - 1] * _mm(gl[s - 1], col_r[s])
            else:
                col_r[s - 1] = gl[s - 1] @ coup[s - 1] @ col_r[s]
        col_r = np.swapaxes(col_r, 0, 1)
    return np.swapaxes(gdiag, 0, 1), col_l, col_r


# ---------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class StripSpec:
    """Validated geometry and lead parameters shared by the Kwant and dense solvers."""

    Lx: int
    W: int
    periodic_y: bool
    t1: float
    J: float
    leads: bool
    t_lead: float
    t_coupling: float

    def attrs(self) -> dict:
        return {
            "lattice": "strip", "Lx": self.Lx, "W": self.W, "periodic_y": self.periodic_y,
            "t1": self.t1, "J": self.J, "leads": int(self.leads), "t_lead": self.t_lead,
            "t_coupling": self.t_coupling,
        }  # fmt: skip

    @property
    def e_min(self) -> float:
        """A bound below the whole spectrum (Gershgorin on the infinite system), minus 0.5."""
        tmax = max(abs(self.t1), abs(self.t_lead), abs(self.t_coupling))
        return -(abs(self.J) + 4 * tmax) - 0.5

    @property
    def band_edges(self) -> NDArray[np.float64]:
        return lead_band_edges(self.W, self.periodic_y, self.t_lead)

    def check_modes(self, mu: float) -> None:
        """Raise unless the leads carry a propagating mode at ``mu``."""
        if not self.leads:
            return
        eps = np.linalg.eigvalsh(-self.t_lead * transverse_hopping(self.W, self.periodic_y))
        if not np.any(np.abs(mu - eps) < 2 * abs(self.t_lead) - 1e-9):
            raise ValueError(
                f"t_lead={self.t_lead} leaves no propagating lead mode at mu={mu}: mu must lie "
                f"inside a lead sub-band, eps_n - 2|t_lead| < mu < eps_n + 2|t_lead| with "
                f"eps_n in {np.round(eps, 6).tolist()}."
            )


def make_spec(
    hamiltonian: SdHamiltonian, leads: bool, t_lead: float | None, t_coupling: float | None
) -> StripSpec:
    """Check that ``hamiltonian`` describes a strip the NEGF solvers handle."""
    lat = hamiltonian.lattice
    if lat.kind != "strip":
        raise ValueError(f"NEGF needs lattice kind 'strip', got kind={lat.kind!r}.")
    if lat.Ly < 1:
        raise ValueError(f"strip width W={lat.Ly} must be an integer >= 1.")
    if lat.periodic_y and lat.Ly < 3:
        raise ValueError(
            f"periodic_y=True needs a strip width W >= 3 (W={lat.Ly} would wrap bonds onto "
            "the same sites); use periodic_y=False."
        )
    t1, t2, t3 = hamiltonian.t
    if t2 != 0.0 or t3 != 0.0:
        raise ValueError(
            f"NEGF supports nearest-neighbour hopping only: t2={t2} and t3={t3} must be 0."
        )
    t_lead = t1 if t_lead is None else float(t_lead)
    t_coupling = t1 if t_coupling is None else float(t_coupling)
    if leads and (not np.isfinite(t_lead) or t_lead == 0.0):
        raise ValueError(f"t_lead={t_lead} must be a finite nonzero hopping.")
    if leads and not np.isfinite(t_coupling):
        raise ValueError(f"t_coupling={t_coupling} must be a finite number.")
    return StripSpec(
        lat.Lx, lat.Ly, bool(lat.periodic_y), float(t1), hamiltonian.J, bool(leads),
        t_lead, t_coupling,
    )  # fmt: skip


def _check_bias(bias: float, leads: bool) -> float:
    bias = float(bias)
    if not np.isfinite(bias):
        raise ValueError(f"bias={bias} must be a finite number.")
    if bias != 0.0 and not leads:
        raise ValueError(f"bias={bias} needs leads=True: a strip without leads carries no current.")
    return bias


# ---------------------------------------------------------------------------- base class
class _NEGFBase:
    """Shared quadrature driver; subclasses provide the Green's-function blocks."""

    name = "negf"

    def __init__(
        self,
        hamiltonian: SdHamiltonian,
        ensemble: Ensemble,
        *,
        bias: float = 0.0,
        leads: bool = True,
        t_lead: float | None = None,
        t_coupling: float | None = None,
        tol: float = 1e-7,
        n_nodes: int = 16,
        max_nodes: int = 20000,
    ) -> None:
        if ensemble.kind != "grand_canonical":
            raise ValueError(
                f"NEGF needs a grand canonical ensemble (mu, kT), got kind={ensemble.kind!r}."
            )
        self.hamiltonian = hamiltonian
        self.ensemble = ensemble
        self.spec = make_spec(hamiltonian, leads, t_lead, t_coupling)
        self.spec.check_modes(float(ensemble.mu))
        self._bias = _check_bias(bias, leads)
        self.tol = float(tol)
        if not (np.isfinite(tol) and tol > 0):
            raise ValueError(f"tol={tol!r} must be a finite number > 0.")
        self.n_nodes = max(4, int(n_nodes))
        self.max_nodes = int(max_nodes)
        self.last_error: dict[str, float] = {}
        self.last_nodes: dict[str, int] = {}
        self._panels: dict[tuple, list] = {}

    # -- parameters
    @property
    def bias(self) -> float:
        """Bias V (units of t/e): ``mu_L = mu + V/2``, ``mu_R = mu - V/2``."""
        return self._bias

    @bias.setter
    def bias(self, value: float) -> None:
        self._bias = _check_bias(value, self.spec.leads)

    @property
    def mu(self) -> float:
        return float(self.ensemble.mu)

    @property
    def kT(self) -> float:
        return float(self.ensemble.kT)

    @property
    def mu_leads(self) -> tuple[float, float]:
        """``(mu_L, mu_R)``."""
        return self.mu + 0.5 * self.bias, self.mu - 0.5 * self.bias

    def attrs(self) -> dict:
        """Data-contract attributes: physical parameters and solver settings."""
        out = self.spec.attrs() | self.ensemble.attrs()
        out |= {"solver": "negf", "bias": self.bias, "engine": self.engine, "tol": self.tol}
        return out

    def settings(self) -> dict:
        """Solver settings and lead parameters (for :func:`mllg.sampling.provider_attrs`)."""
        sp = self.spec
        return {
            "bias": self.bias, "leads": int(sp.leads), "t_lead": sp.t_lead,
            "t_coupling": sp.t_coupling, "W": sp.W, "periodic_y": sp.periodic_y,
            "engine": self.engine, "tol": self.tol,
        }  # fmt: skip

    engine = "base"

    # -- to be provided
    def _eq_blocks(self, spins: NDArray, z: NDArray) -> NDArray[np.complex128]:
        """On-site blocks ``G^r_ii(z)``, shape (nz, N, 2, 2)."""
        raise NotImplementedError

    def _window_blocks(self, spins: NDArray, e: NDArray, lead: int) -> NDArray[np.complex128]:
        """On-site blocks of ``G^r Gamma_lead G^a`` at real energies, shape (nE, N, 2, 2)."""
        raise NotImplementedError

    # -- integrals
    def _e_min(self) -> float:
        return self.spec.e_min

    def _eq_segments(self, mu: float) -> tuple[list[Segment], NDArray[np.complex128]]:
        return equilibrium_segments(mu, self.kT, self._e_min())

    def _rho_eq(self, spins: NDArray, mu: float) -> tuple[NDArray[np.complex128], float]:
        """``rho_eq(mu)`` on-site blocks and its estimated field error."""
        segments, poles = self._eq_segments(mu)

        def herm(x: NDArray) -> NDArray:
            return 0.5j / np.pi * (x - np.conj(np.swapaxes(x, -1, -2)))

        x, err = self._adaptive(
            segments, lambda z: self._eq_blocks(spins, z), herm, "contour", key=(mu, self.kT)
        )
        if poles.size:
            x = x + (-2j * np.pi * self.kT) * self._eq_blocks(spins, poles).sum(axis=0)
        return herm(x), err

    def _rho_window(self, spins: NDArray) -> tuple[NDArray[np.complex128], float]:
        """Window term ``int dE/2pi G Gamma_> G^a (f_> - f_<)`` and its field error."""
        mu_l, mu_r = self.mu_leads
        n_sites = self.spec.Lx * self.spec.W
        if mu_l == mu_r:
            return np.zeros((n_sites, 2, 2), complex), 0.0
        high = 0 if mu_l > mu_r else 1
        m_hi, m_lo = max(mu_l, mu_r), min(mu_l, mu_r)
        edges = self.spec.band_edges
        lo = max(m_lo - N_KT * self.kT, edges[0])
        hi = min(m_hi + N_KT * self.kT, edges[-1])
        if hi <= lo:
            return np.zeros((n_sites, 2, 2), complex), 0.0
        breaks = np.concatenate([edges, [m_lo, m_hi]])
        if self.kT > 0:
            marks = np.array([1.5, 4.0, 9.0, 18.0])
            breaks = np.concatenate([breaks, m_lo - marks * self.kT, m_hi + marks * self.kT])
        kT = self.kT

        def df(e: NDArray) -> NDArray:
            return (fermi_complex(e, m_hi, kT) - fermi_complex(e, m_lo, kT)) / (2 * np.pi)

        segments = [Segment.real_panel(a, b, df) for a, b in _cuts(lo, hi, breaks)]
        return self._adaptive(
            segments,
            lambda z: self._window_blocks(spins, z.real, high),
            None,
            "window",
            key=(m_lo, m_hi, self.kT),
        )

    def _adaptive(
        self, segments, evaluate, post, label: str, key: tuple = ()
    ) -> tuple[NDArray, float]:
        """Adaptive composite Gauss–Legendre over the parameter intervals of ``segments``.

        Every panel is integrated with ``n`` and ``n // 2`` nodes; the difference of the
        resulting fields (``2 |J| max |post(I_n - I_n/2)|``) is its error estimate. Panels
        whose error exceeds ``tol`` times their share of the parameter length are
        halved; all panels of one sweep are evaluated in one vectorized call. Returns the
        integral (before ``post``) and the summed error estimate of the accepted panels.

        Warm start: the accepted panels of the previous call with the same ``label`` and
        ``key`` (same chemical potentials and kT) are the starting panels, so along an LLG
        trajectory most calls need a single vectorized sweep.
        """
        n = self.n_nodes
        s_f, w_f = _gauss_legendre(n)
        s_c, w_c = _gauss_legendre(max(2, n // 2))
        total_len = float(len(segments))
        cache_key = (label, key, n, len(segments))
        active = list(self._panels.get(cache_key, [(k, 0.0, 1.0) for k in range(len(segments))]))
        accepted = []
        acc = 0.0
        err_sum = 0.0
        used = 0
        post = post or (lambda x: x)
        while active:
            zs, ws = [], []
            for k, a, b in active:
                for s, w in ((s_f, w_f), (s_c, w_c)):
                    z, jac = segments[k](a + (b - a) * s)
                    zs.append(z)
                    ws.append(jac * w * (b - a))
            z_all = np.concatenate(zs)
            used += z_all.size
            g = evaluate(z_all)
            new_active = []
            pos = 0
            for i, (k, a, b) in enumerate(active):
                nf, nc = zs[2 * i].size, zs[2 * i + 1].size
                fine = np.einsum("k,kiab->iab", ws[2 * i], g[pos : pos + nf])
                coarse = np.einsum("k,kiab->iab", ws[2 * i + 1], g[pos + nf : pos + nf + nc])
                pos += nf + nc
                err = 2 * abs(self.spec.J) * float(np.max(np.abs(post(fine - coarse))))
                budget = self.tol * (b - a) / total_len
                if err <= budget or used > self.max_nodes or (b - a) < 1e-12:
                    acc = acc + fine
                    err_sum += err
                    accepted.append((k, a, b))
                else:
                    mid = 0.5 * (a + b)
                    new_active += [(k, a, mid), (k, mid, b)]
            active = new_active
        self.last_nodes[label] = used
        self._panels[cache_key] = sorted(accepted)
        if err_sum > self.tol:
            warnings.warn(
                f"NEGF {label} integral not converged: estimated field error {err_sum:.2e} > "
                f"tol={self.tol:.1e} after {used} energies (raise max_nodes).",
                RuntimeWarning,
                stacklevel=4,
            )
        return acc, err_sum

    # -- public API
    def rho_parts(self, spins: NDArray) -> tuple[NDArray, NDArray]:
        """On-site blocks of ``rho_eq(mu_<)`` and of the window term, each (N, 2, 2)."""
        spins = np.asarray(spins, dtype=float)
        self.hamiltonian._check(spins)
        eq, err_eq = self._rho_eq(spins, min(self.mu_leads))
        win, err_win = self._rho_window(spins)
        self.last_error = {"contour": err_eq, "window": err_win}
        return eq, win

    def solve(self, spins: NDArray) -> ElectronicResult:
        """Fields ``h_i = J Tr[sigma rho_ii]`` and on-site blocks for (N, 3) or (F, N, 3) spins.

        ``energy`` is NaN (the nonequilibrium field is not a gradient); ``mu`` is the
        equilibrium chemical potential ``mu``.
        """
        spins = np.asarray(spins, dtype=float)
        single = spins.ndim == 2
        batch = spins.reshape(-1, spins.shape[-2], 3)
        rho = []
        for s in batch:
            eq, win = self.rho_parts(s)
            rho.append(eq + win)
        rho_all = np.stack(rho)
        fields = fields_from_rho(rho_all, self.spec.J)
        f = batch.shape[0]
        if single:
            return ElectronicResult(np.full(1, np.nan), fields[0], rho_all[0], np.full(1, self.mu))
        return ElectronicResult(np.full(f, np.nan), fields, rho_all, np.full(f, self.mu))

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        """Field-provider interface: exchange fields h (N, 3) for spins (N, 3)."""
        return self.solve(spins).fields

    def field_parts(self, spins: NDArray) -> tuple[NDArray, NDArray]:
        """Fields of the two parts: ``J Tr[sigma rho_eq(mu_<)]`` and of the window term."""
        eq, win = self.rho_parts(spins)
        return fields_from_rho(eq, self.spec.J), fields_from_rho(win, self.spec.J)


# ---------------------------------------------------------------------------- Kwant solver
class NEGF(_NEGFBase):
    """Kwant-built NEGF solver and LLG field provider for a strip between two leads.

    Parameters
    ----------
    hamiltonian : SdHamiltonian
        Of a ``strip`` lattice (t2 = t3 = 0); gives ``t1``, ``J``, ``Lx``, ``W``.
    ensemble : Ensemble
        Grand canonical: equilibrium chemical potential ``mu`` and electron temperature
        ``kT >= 0`` (both leads).
    bias : float
        Voltage V (``mu_L = mu + V/2``, ``mu_R = mu - V/2``); 0 needs no leads.
    leads : bool
        Attach the two leads (False: the isolated strip, equilibrium only).
    t_lead, t_coupling : float, optional
        Lead hopping and lead-strip hopping (default t1).
    window : {"rgf", "kwant"}
        Engine of the real-axis window term (module docstring).
    kwant_solver : {"mumps", "sparse"}
        Kwant solver used by ``window="kwant"``.
    tol : float
        Target quadrature error of the fields (sum over panels of the max abs field
        error estimate, units of t), per integral.
    n_nodes : int
        Gauss–Legendre nodes per panel (the error estimate uses ``n_nodes // 2`` more).
    max_nodes : int
        Energy budget per integral; beyond it panels are accepted and a warning is given.

    Notes
    -----
    After every call :attr:`last_error` holds the estimated field error of the two
    energy integrals (``"contour"``, ``"window"``, units of t) and :attr:`last_nodes`
    the number of energies used. As an LLG field provider of a driven wall use
    ``LLG(negf, ..., precession=+1)`` (module docstring).
    """

    def __init__(
        self,
        hamiltonian: SdHamiltonian,
        ensemble: Ensemble,
        *,
        window: str = "rgf",
        kwant_solver: str = "mumps",
        **kwargs,
    ) -> None:
        super().__init__(hamiltonian, ensemble, **kwargs)
        if window not in WINDOW_ENGINES:
            raise ValueError(f"window={window!r} is not allowed; use one of {WINDOW_ENGINES}.")
        if kwant_solver not in KWANT_SOLVERS:
            raise ValueError(
                f"kwant_solver={kwant_solver!r} is not allowed; use one of {KWANT_SOLVERS}."
            )
        self.window = window
        self.kwant_solver = kwant_solver
        self.engine = f"kwant-{window}" + (f"-{kwant_solver}" if window == "kwant" else "")
        self._build()

    # -- construction
    def _build(self) -> None:
        import kwant

        sp = self.spec
        lat = kwant.lattice.square(a=1, norbs=2)
        self.kwant_lattice = lat
        adj = transverse_hopping(sp.W, sp.periodic_y)
        ybonds = [(y, yy) for y in range(sp.W) for yy in range(y + 1, sp.W) if adj[y, yy]]
        eye2 = np.eye(2, dtype=complex)
        zero2 = np.zeros((2, 2), complex)
        Lx, J = sp.Lx, sp.J

        def onsite(site, spins):
            x, y = site.tag
            s = spins[x + Lx * y]
            return -J * (s[0] * PAULI[0] + s[1] * PAULI[1] + s[2] * PAULI[2])

        syst = kwant.Builder()
        x_pad = (-1, Lx) if sp.leads else ()
        for x in range(Lx):
            for y in range(sp.W):
                syst[lat(x, y)] = onsite
        for x in x_pad:
            for y in range(sp.W):
                syst[lat(x, y)] = zero2
        for x in range(Lx):
            for y, yy in ybonds:
                syst[lat(x, y), lat(x, yy)] = -sp.t1 * eye2
        for x in x_pad:
            for y, yy in ybonds:
                syst[lat(x, y), lat(x, yy)] = -sp.t_lead * eye2
        for y in range(sp.W):
            for x in range(Lx - 1):
                syst[lat(x + 1, y), lat(x, y)] = -sp.t1 * eye2
            if sp.leads:
                syst[lat(0, y), lat(-1, y)] = -sp.t_coupling * eye2
                syst[lat(Lx, y), lat(Lx - 1, y)] = -sp.t_coupling * eye2
        if sp.leads:
            lead = kwant.Builder(kwant.TranslationalSymmetry((-1, 0)))
            for y in range(sp.W):
                lead[lat(0, y)] = zero2
                lead[lat(1, y), lat(0, y)] = -sp.t_lead * eye2
            for y, yy in ybonds:
                lead[lat(0, y), lat(0, yy)] = -sp.t_lead * eye2
            syst.attach_lead(lead)
            syst.attach_lead(lead.reversed())
        self.fsyst = syst.finalized()
        self._slice_blocks()

    def _slice_blocks(self) -> None:
        """Spin-independent slice blocks of the Kwant Hamiltonian in slice order."""
        sp = self.spec
        pad = 1 if sp.leads else 0
        n_slices = sp.Lx + 2 * pad
        m = 2 * sp.W
        tags = np.array([s.tag for s in self.fsyst.sites])
        slot = (tags[:, 0] + pad) * sp.W + tags[:, 1]  # slice-major site slot
        perm = np.empty(2 * len(tags), int)  # my orbital -> kwant orbital
        perm[2 * slot] = 2 * np.arange(len(tags))
        perm[2 * slot + 1] = 2 * np.arange(len(tags)) + 1
        zero = np.zeros((sp.Lx * sp.W, 3))
        h = self.fsyst.hamiltonian_submatrix(params={"spins": zero}, sparse=True).tocsr()
        h = h[perm][:, perm].toarray()
        blocks = h.reshape(n_slices, m, n_slices, m).transpose(0, 2, 1, 3)
        self._diag = np.ascontiguousarray(blocks[np.arange(n_slices), np.arange(n_slices)])
        self._coup = np.ascontiguousarray(blocks[np.arange(n_slices - 1), np.arange(1, n_slices)])
        far = np.abs(np.triu(np.ones((n_slices, n_slices)), 2)[:, :, None, None] * blocks)
        if far.max() > 0:
            raise RuntimeError("Kwant Hamiltonian couples non-neighbouring slices.")
        # where the strip's on-site blocks sit: slice x + pad, orbitals 2y, 2y+1
        i = np.arange(sp.Lx * sp.W)
        self._site_slice = i % sp.Lx + pad
        self._site_orb = 2 * (i // sp.Lx)
        # Kwant orbital of every strip site (for wave functions): kwant site k <- tag
        kw = {tuple(t): k for k, t in enumerate(tags)}
        xy = zip(i % sp.Lx, i // sp.Lx, strict=True)
        self._kwant_site = np.array([kw[(int(x), int(y))] for x, y in xy])
        self._interface_perm = []
        self._lead_blocks = []
        self._lead_channels = []
        if sp.leads:
            for k in range(2):
                lead = self.fsyst.leads[k]
                h_cell = lead.cell_hamiltonian(params={})
                v = lead.inter_cell_hopping(params={})
                order = np.argsort(tags_of(lead.sites[: lead.cell_size])[:, 1])
                orb = np.stack([2 * order, 2 * order + 1], axis=1).ravel()
                h_cell, v = h_cell[np.ix_(orb, orb)], v[np.ix_(orb, orb)]
                if not np.allclose(v, v[0, 0] * np.eye(v.shape[0])):
                    raise RuntimeError("lead inter-cell hopping is not proportional to 1.")
                self._lead_blocks.append((h_cell, v))
                self._lead_channels.append(np.linalg.eigh(h_cell))
            for k in range(2):
                itags = tags[self.fsyst.lead_interfaces[k]]
                order = np.argsort(itags[:, 1])  # my order: by y
                orb = np.stack([2 * order, 2 * order + 1], axis=1).ravel()
                self._interface_perm.append(orb)

    # -- Hamiltonian pieces
    def _diag_with_spins(self, spins: NDArray) -> NDArray[np.complex128]:
        d = self._diag.copy()
        b = onsite_blocks(spins, self.spec.J)
        o = self._site_orb
        for a in (0, 1):
            for c in (0, 1):
                d[self._site_slice, o + a, o + c] += b[:, a, c]
        return d

    def lead_selfenergy(
        self, z: NDArray, lead: int, method: str = "channels"
    ) -> NDArray[np.complex128]:
        """Self-energy of lead 0 (left) or 1 (right) on its padding column, (nz, 2W, 2W).

        Methods (all from the Kwant lead blocks ``H_cell``, ``V = H_{n,n+1}``):

        * ``"channels"`` (default, any z): diagonalize ``H_cell = sum_n eps_n P_n``; each
          channel is a chain, ``Sigma = |v|^2 sum_n P_n g(z - eps_n)`` with
          :func:`chain_surface_g` (valid because ``V = v 1``, checked at build time);
        * ``"kwant"`` (real z): Kwant's ``selfenergy``;
        * ``"decimation"`` (``Im z > 0``): Sancho–Rubio decimation.
        """
        z = np.asarray(z, complex)
        m = 2 * self.spec.W
        if not self.spec.leads:
            return np.zeros((z.size, m, m), complex)
        if method == "kwant":
            if np.any(z.imag != 0):
                raise ValueError("method='kwant' takes real energies only.")
            lead_sys = self.fsyst.leads[lead]
            p = self._interface_perm[lead]
            return np.stack([lead_sys.selfenergy(float(e.real))[np.ix_(p, p)] for e in z])
        h_cell, v = self._lead_blocks[lead]
        if method == "decimation":
            return v @ decimation_surface_g(z, h_cell, v) @ v.conj().T
        if method != "channels":
            raise ValueError(f"method={method!r} is not one of 'channels', 'kwant', 'decimation'.")
        eps, phi = self._lead_channels[lead]
        t = abs(v[0, 0])
        g = chain_surface_g(z[:, None] - eps[None, :], t)
        return t * t * np.einsum("yn,kn,wn->kyw", phi, g, phi.conj())

    def _blocks_of(self, gdiag: NDArray) -> NDArray[np.complex128]:
        """On-site 2x2 blocks of the strip sites from slice blocks (nE, M, m, m)."""
        o = self._site_orb
        s = self._site_slice
        return np.stack(
            [np.stack([gdiag[:, s, o + a, o + c] for c in (0, 1)], axis=-1) for a in (0, 1)],
            axis=-2,
        )

    def _eq_blocks(self, spins: NDArray, z: NDArray) -> NDArray[np.complex128]:
        d = self._diag_with_spins(spins)
        gdiag, _, _ = rgf(z, d, self._coup, self.lead_selfenergy(z, 0), self.lead_selfenergy(z, 1))
        return self._blocks_of(gdiag)

    def _window_blocks(self, spins: NDArray, e: NDArray, lead: int) -> NDArray[np.complex128]:
        if self.window == "kwant":
            return self._window_kwant(spins, e, lead)
        d = self._diag_with_spins(spins)
        z = np.asarray(e, complex)
        sig = self.lead_selfenergy(z, lead)
        _, col_l, col_r = rgf(
            z, d, self._coup, self.lead_selfenergy(z, 0), self.lead_selfenergy(z, 1),
            columns=(lead == 0, lead == 1),
        )  # fmt: skip
        col = col_l if lead == 0 else col_r
        gamma = 1j * (sig - np.conj(np.swapaxes(sig, -1, -2)))
        a = _mm(_mm(col, gamma[:, None]), np.conj(np.swapaxes(col, -1, -2)))
        return self._blocks_of(a)

    def _window_kwant(self, spins: NDArray, e: NDArray, lead: int) -> NDArray[np.complex128]:
        """``sum_modes psi psi^dagger`` of Kwant scattering states incoming from ``lead``."""
        if self.kwant_solver == "mumps":
            from kwant.solvers.mumps import wave_function
        else:
            from kwant.solvers.sparse import wave_function
        params = {"spins": np.asarray(spins, float)}
        ks = self._kwant_site
        out = np.zeros((len(e), ks.size, 2, 2), complex)
        for k, energy in enumerate(e):
            psi = wave_function(self.fsyst, float(energy), params=params, check_hermiticity=False)(
                lead
            )
            p = psi.reshape(psi.shape[0], -1, 2)[:, ks]  # (modes, N, 2)
            out[k] = np.einsum("mia,mib->iab", p, p.conj())
        return out


# ---------------------------------------------------------------------------- dense check
class DenseNEGF(_NEGFBase):
    """Independent dense route: numpy inverse of ``z - H - Sigma_L - Sigma_R``.

    ``H`` is :meth:`SdHamiltonian.dense` of the strip, ``Sigma_{L,R}`` the analytic
    ribbon self-energies (:func:`ribbon_selfenergy`) on the columns ``x = 0`` and
    ``x = Lx - 1``. The equilibrium contour starts at a different ``E_min`` and uses
    different node counts than :class:`NEGF`, so agreement also tests convergence.
    Cost ``O((2N)^3)`` per energy.
    """

    engine = "dense"

    def _e_min(self) -> float:
        return self.spec.e_min - 1.7

    def _edge_orbitals(self) -> tuple[NDArray, NDArray]:
        sp = self.spec
        y = np.arange(sp.W)
        left, right = y * sp.Lx, y * sp.Lx + sp.Lx - 1
        orb = lambda i: np.stack([2 * i, 2 * i + 1], axis=1).ravel()  # noqa: E731
        return orb(left), orb(right)

    def _sigmas(self, z: NDArray) -> tuple[NDArray, NDArray]:
        sp = self.spec
        if not sp.leads:
            n = z.size
            return np.zeros((n, 2 * sp.W, 2 * sp.W), complex), np.zeros((n, 2 * sp.W, 2 * sp.W))
        s = ribbon_selfenergy(z, sp.W, sp.periodic_y, sp.t_lead, sp.t_coupling)
        return s, s

    def green(self, spins: NDArray, z: NDArray, chunk: int = 64) -> NDArray[np.complex128]:
        """Full ``G^r(z)`` for all z, shape (nz, 2N, 2N)."""
        z = np.asarray(z, complex)
        h = self.hamiltonian.dense(np.asarray(spins, float))
        ol, orr = self._edge_orbitals()
        sl, sr = self._sigmas(z)
        out = np.empty((z.size, h.shape[0], h.shape[0]), complex)
        eye = np.eye(h.shape[0])
        for k0 in range(0, z.size, chunk):
            sl_ = slice(k0, k0 + chunk)
            a = z[sl_, None, None] * eye - h
            a[:, ol[:, None], ol[None, :]] -= sl[sl_]
            a[:, orr[:, None], orr[None, :]] -= sr[sl_]
            out[sl_] = np.linalg.inv(a)
        return out

    @staticmethod
    def _onsite(g: NDArray) -> NDArray[np.complex128]:
        n = g.shape[-1] // 2
        i = np.arange(n)
        return np.stack(
            [np.stack([g[:, 2 * i + a, 2 * i + c] for c in (0, 1)], axis=-1) for a in (0, 1)],
            axis=-2,
        )

    def _eq_blocks(self, spins: NDArray, z: NDArray) -> NDArray[np.complex128]:
        return self._onsite(self.green(spins, z))

    def _window_blocks(self, spins: NDArray, e: NDArray, lead: int) -> NDArray[np.complex128]:
        z = np.asarray(e, complex)
        g = self.green(spins, z)
        ol, orr = self._edge_orbitals()
        o = ol if lead == 0 else orr
        sig = self._sigmas(z)[lead]
        gamma = 1j * (sig - np.conj(np.swapaxes(sig, -1, -2)))
        col = g[:, :, o]
        a = col @ gamma @ np.conj(np.swapaxes(col, -1, -2))
        return self._onsite(a)


def strip_negf(
    Lx: int,
    W: int = 1,
    *,
    t1: float = 1.0,
    J: float = 1.0,
    mu: float = 0.0,
    kT: float = 0.0,
    periodic_y: bool = False,
    dense: bool = False,
    **kwargs,
) -> NEGF | DenseNEGF:
    """Convenience constructor from plain parameters (validates ``Lx`` and ``W`` here).

    Extra keyword arguments go to :class:`NEGF` (or :class:`DenseNEGF` if ``dense``).
    """
    for name, value in (("Lx", Lx), ("W", W)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"strip {name}={value!r} must be an integer >= 1.")
    lattice = Lattice("strip", int(Lx), int(W), periodic_y=periodic_y)
    ham = SdHamiltonian(lattice, t1=t1, J=J)
    ens = Ensemble.grand_canonical(mu, kT)
    return (DenseNEGF if dense else NEGF)(ham, ens, **kwargs)
