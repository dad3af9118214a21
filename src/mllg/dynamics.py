"""Stochastic Landau–Lifshitz–Gilbert (LLG) dynamics of classical unit spins.

Equation of motion (hbar = gamma = 1, time in units of 1/t):

.. math::

    dS_i/dt = p S_i \\times (h_i + \\eta_i) - \\alpha S_i \\times (S_i \\times (h_i + \\eta_i))

with the exchange field ``h_i = -dE/dS_i`` from a *field provider* plus optional classical
terms, damping ``alpha`` and Gaussian white noise of variance

.. math::

    \\langle \\eta_i^a(t) \\eta_j^b(t') \\rangle
        = \\frac{2 \\alpha k_B T}{1 + \\alpha^2} \\delta_{ij} \\delta_{ab} \\delta(t - t'),

interpreted in the Stratonovich sense. The precession sign ``p`` defaults to ``-1``, the
convention of the design notes. ``p = +1`` is the equation of motion of a spin angular
momentum with energy ``-h . S`` (Heisenberg: ``dS/dt = i[H, S] = S x h``); with it the
spin transferred by the electrons (``h = J <sigma>``) and the local moments is conserved,
which fixes the direction a current pushes a domain wall. In equilibrium (time-reversal
invariant ``E(S) = E(-S)``) the two signs are related by the global flip ``S -> -S`` and
give the same statistics, relaxation and coarsening. This is the Landau–Lifshitz form of
the Gilbert equation with time rescaled by ``1 + alpha^2``; with this variance a spin in a
field B samples the Boltzmann distribution ``exp(B . S / kT)``, i.e.
``<S_z> = coth(B/kT) - kT/B`` (checked in the tests).

Writing the right-hand side as ``dS/dt = omega(S) x S`` with
``omega = (h + eta) + alpha S x (h + eta)``, the integrators are

* ``midpoint`` (default): semi-implicit midpoint scheme of Mentink et al., J. Phys.:
  Condens. Matter 22, 176001 (2010). Predictor ``S' = cay(S_n, omega(S_n))``, corrector
  ``S_{n+1} = cay(S_n, omega((S_n + S')/2))`` with the fields re-evaluated at the
  midpoint and one noise draw per step. ``cay`` solves
  ``S_{n+1} - S_n = dt omega x (S_n + S_{n+1}) / 2`` exactly (a rotation), so
  ``|S_i| = 1`` holds to rounding. More corrector iterations converge to the implicit
  midpoint rule.
* ``heun``: Heun predictor-corrector with renormalisation of the spins after each step.

A *field provider* is any callable mapping spins (N, 3) to exchange fields (N, 3); ED,
KPM, NEGF and ML models all implement it. A provider may also offer
``solve(spins) -> ElectronicResult`` to give the energy at no extra cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "LLG",
    "METHODS",
    "ClassicalTerms",
    "FieldProvider",
    "Frame",
    "cayley_rotate",
    "cross",
]

FieldProvider = Callable[[NDArray[np.float64]], NDArray[np.float64]]
METHODS = ("midpoint", "heun")


@dataclass(frozen=True)
class ClassicalTerms:
    """Classical energy terms added to the electronic field.

    .. math::

        E_{cl} = -B \\cdot \\sum_i S_i - K \\sum_i (S_i \\cdot n)^2 + K_h \\sum_i (S_i \\cdot m)^2

    giving ``h_i = B + 2 K (S_i . n) n - 2 K_h (S_i . m) m`` (units of t).

    Parameters
    ----------
    B : (3,) Zeeman field.
    K : easy-axis anisotropy (``K > 0`` favours ``+-n``).
    axis : easy axis n (normalised here).
    K_hard : hard-axis anisotropy (``K_hard > 0`` penalises components along m).
    hard_axis : hard axis m (normalised here).
    """

    B: tuple[float, float, float] = (0.0, 0.0, 0.0)
    K: float = 0.0
    axis: tuple[float, float, float] = (0.0, 0.0, 1.0)
    K_hard: float = 0.0
    hard_axis: tuple[float, float, float] = (0.0, 1.0, 0.0)

    @property
    def active(self) -> bool:
        return bool(np.any(np.asarray(self.B) != 0) or self.K != 0 or self.K_hard != 0)

    def _axes(self) -> tuple[NDArray, NDArray]:
        n = np.asarray(self.axis, float)
        m = np.asarray(self.hard_axis, float)
        return n / np.linalg.norm(n), m / np.linalg.norm(m)

    def fields(self, spins: NDArray) -> NDArray[np.float64]:
        """Classical field ``-dE_cl/dS_i``, shape like ``spins``."""
        n, m = self._axes()
        h = np.broadcast_to(np.asarray(self.B, float), spins.shape).copy()
        if self.K:
            h += 2 * self.K * (spins @ n)[..., None] * n
        if self.K_hard:
            h -= 2 * self.K_hard * (spins @ m)[..., None] * m
        return h

    def energy(self, spins: NDArray) -> float:
        """Classical energy ``E_cl`` of one configuration (N, 3)."""
        n, m = self._axes()
        return float(
            -np.sum(spins @ np.asarray(self.B, float))
            - self.K * np.sum((spins @ n) ** 2)
            + self.K_hard * np.sum((spins @ m) ** 2)
        )


@dataclass
class Frame:
    """State of a trajectory at a saved step: spins, fields (no noise) and energy."""

    step: int
    time: float
    spins: NDArray[np.float64]
    fields: NDArray[np.float64]
    energy: float = float("nan")


def cross(a: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Cross product along the last axis, ``a x b``; bitwise equal to :func:`numpy.cross`.

    Component-wise arithmetic into one output array, without the axis moves and
    per-call temporaries of ``numpy.cross`` (faster, most of all on small arrays).
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    out = np.empty(np.broadcast_shapes(a.shape, b.shape))
    a0, a1, a2 = a[..., 0], a[..., 1], a[..., 2]
    b0, b1, b2 = b[..., 0], b[..., 1], b[..., 2]
    np.multiply(a1, b2, out=out[..., 0])
    out[..., 0] -= a2 * b1
    np.multiply(a2, b0, out=out[..., 1])
    out[..., 1] -= a0 * b2
    np.multiply(a0, b1, out=out[..., 2])
    out[..., 2] -= a1 * b0
    return out


def cayley_rotate(spins: NDArray, b: NDArray) -> NDArray[np.float64]:
    """Solve ``x - a = b x (a + x)`` for x: the Cayley rotation of a about b.

    ``x = a + 2 / (1 + |b|^2) [b x a + b x (b x a)]``; ``|x| = |a|`` exactly.
    """
    ba = cross(b, spins)
    bba = cross(b, ba)
    bba += ba
    bba *= 2.0 / (1.0 + np.sum(b * b, axis=-1, keepdims=True))
    bba += spins
    return bba


@dataclass
class LLG:
    """Stochastic LLG integrator.

    Parameters
    ----------
    provider : FieldProvider
        Exchange field ``h(S)``, (N, 3) -> (N, 3).
    alpha : float
        Gilbert damping, ``>= 0``.
    dt : float
        Time step (units of 1/t), ``> 0``.
    kT : float
        Bath temperature (units of t), ``>= 0``.
    method : {"midpoint", "heun"}
    classical : ClassicalTerms, optional
    seed : int or numpy Generator, optional
        Seed of the PCG64 generator for the noise; equal seeds give equal trajectories.
    corrector_iterations : int
        Midpoint corrector sweeps (1 = Mentink's semi-implicit scheme).
    precession : {-1, +1}
        Sign ``p`` of the precession term ``p S x h`` (see the module notes).
    """

    provider: FieldProvider
    alpha: float
    dt: float
    kT: float = 0.0
    method: str = "midpoint"
    classical: ClassicalTerms | None = None
    seed: int | np.random.Generator | None = None
    corrector_iterations: int = 1
    precession: int = -1
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method={self.method!r} is not allowed; use one of {METHODS}.")
        if not (np.isfinite(self.dt) and self.dt > 0):
            raise ValueError(f"dt={self.dt!r} must be a finite number > 0.")
        if not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise ValueError(f"alpha={self.alpha!r} must be a finite number >= 0.")
        if not (np.isfinite(self.kT) and self.kT >= 0):
            raise ValueError(f"kT={self.kT!r} must be a finite number >= 0.")
        if self.precession not in (-1, 1):
            raise ValueError(f"precession={self.precession!r} is not allowed; use -1 or +1.")
        if self.corrector_iterations < 1:
            raise ValueError(f"corrector_iterations={self.corrector_iterations} must be >= 1.")
        if self.kT > 0 and self.alpha == 0:
            raise ValueError(
                "kT > 0 needs alpha > 0: the noise strength is 2 alpha kT / (1 + alpha^2)."
            )
        self.rng = np.random.default_rng(self.seed)

    # ------------------------------------------------------------------ fields
    @property
    def noise_std(self) -> float:
        """Std of one noise component per step, ``sqrt(2 alpha kT / ((1 + alpha^2) dt))``."""
        return float(np.sqrt(2 * self.alpha * self.kT / ((1 + self.alpha**2) * self.dt)))

    def fields(self, spins: NDArray) -> NDArray[np.float64]:
        """Total deterministic field: provider plus classical terms."""
        h = np.asarray(self.provider(spins), dtype=float)
        if self.classical is not None and self.classical.active:
            h = h + self.classical.fields(spins)
        return h

    def fields_and_energy(self, spins: NDArray) -> tuple[NDArray[np.float64], float]:
        """Fields and total energy (NaN if the provider gives no energy)."""
        solve = getattr(self.provider, "solve", None)
        if solve is None:
            h, e = np.asarray(self.provider(spins), float), float("nan")
        else:
            res = solve(spins)
            h = np.asarray(res.fields, float)
            e = float(np.ravel(res.energy)[0]) if res.energy is not None else float("nan")
        if self.classical is not None and self.classical.active:
            h = h + self.classical.fields(spins)
            e = e + self.classical.energy(spins)
        return h, e

    def _omega(self, spins: NDArray, h: NDArray) -> NDArray[np.float64]:
        out = cross(spins, h)
        out *= self.alpha
        out -= self.precession * h
        return out

    def _noise(self, shape: tuple[int, ...]) -> NDArray[np.float64] | float:
        if self.kT == 0:
            return 0.0
        return self.noise_std * self.rng.standard_normal(shape)

    # ------------------------------------------------------------------ stepping
    def step(self, spins: NDArray, h: NDArray | None = None) -> NDArray[np.float64]:
        """Advance one time step; ``h`` may pass the already known field at ``spins``."""
        spins = np.asarray(spins, dtype=float)
        if h is None:
            h = self.fields(spins)
        eta = self._noise(spins.shape)
        half = 0.5 * self.dt
        if self.method == "midpoint":
            new = cayley_rotate(spins, half * self._omega(spins, h + eta))
            for _ in range(self.corrector_iterations):
                mid = 0.5 * (spins + new)
                new = cayley_rotate(spins, half * self._omega(mid, self.fields(mid) + eta))
            return new
        rhs0 = cross(self._omega(spins, h + eta), spins)
        pred = spins + self.dt * rhs0
        rhs1 = cross(self._omega(pred, self.fields(pred) + eta), pred)
        new = spins + half * (rhs0 + rhs1)
        return new / np.linalg.norm(new, axis=-1, keepdims=True)

    def run(
        self,
        spins: NDArray,
        n_steps: int,
        every: int = 1,
        energy: bool = True,
        start_step: int = 0,
    ) -> Iterator[Frame]:
        """Integrate ``n_steps`` steps, yielding a :class:`Frame` every ``every`` steps.

        The initial state is yielded first (step ``start_step``). Energies are recorded at
        saved frames when ``energy`` is true and the provider offers ``solve``.
        """
        if n_steps < 0 or every < 1:
            raise ValueError(f"need n_steps >= 0 and every >= 1, got {n_steps} and {every}.")
        s = np.asarray(spins, dtype=float).copy()
        h, e = self.fields_and_energy(s) if energy else (self.fields(s), float("nan"))
        yield Frame(start_step, start_step * self.dt, s.copy(), h.copy(), e)
        for k in range(1, n_steps + 1):
            s = self.step(s, h)
            save = k % every == 0
            if save and energy:
                h, e = self.fields_and_energy(s)
            else:
                h = self.fields(s)
            if save:
                if not np.all(np.isfinite(s)):
                    raise FloatingPointError(
                        f"LLG blew up at step {start_step + k}: non-finite spins; "
                        "reduce dt or check the field provider."
                    )
                step = start_step + k
                yield Frame(step, step * self.dt, s.copy(), h.copy(), e)
