"""Training data for the driven strip: NEGF fields of perturbed domain walls at several V.

Two kinds of configurations (variable ``origin``):

* ``origin = 0``, *random*: a 180 deg wall along x
  (:func:`mllg.analysis.domain_wall.domain_wall`) with a random centre, width, azimuth
  and sign, plus an independent random tilt of every spin (Gaussian components of
  standard deviation ``sigma``, renormalised; ``sigma`` is drawn per configuration from
  ``[0, noise]`` so that nearly ideal and strongly disordered walls are both present);
* ``origin = 1``, *thermal*: such a wall evolved by Langevin NEGF-LLG
  (:class:`mllg.dynamics.LLG` with the solver as field provider, easy-axis anisotropy
  ``K``, spin bath ``kT_spin``) for ``thermal_steps`` steps at the bias
  ``voltages[j % len(voltages)]`` (stored in ``thermal_bias``; NaN for random
  configurations). These are the textures a driven, thermally agitated wall visits.
  The driven runs use the project's convention for the driven wall,
  ``dS/dt = p S x h - alpha S x (S x h)`` with ``p = +1`` (spin angular momentum, see
  :mod:`mllg.dynamics`; a current then pushes the wall along the electron flow).

Every configuration is evaluated at every bias of ``voltages`` (both signs are
recommended), so that the store pairs each texture with its fields at several V. The
store follows the data contract (:mod:`mllg.io`): ``spins`` and ``fields`` (frame, site,
vec; ``fields`` are the electronic NEGF fields ``h_i = J Tr[sigma rho_ii]`` only, without
the classical anisotropy), ``bias`` (frame), ``quad_error`` (frame, the NEGF quadrature
error estimate of the fields, contour plus window, units of t), ``origin`` and
``thermal_bias`` (frame), and the solver attributes (``solver = "negf"``, lead
parameters ``leads``, ``t_lead``, ``t_coupling``, ``mu``, ``kT``, ``W``); the per-frame
bias replaces the scalar ``bias`` attribute.

:func:`driven_wall_runs` is the direct NEGF-LLG driver of a wall (relax at V = 0, run at
every V, fitted X(t) and velocities) for the domain-wall study and the benchmarks.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from mllg.analysis.domain_wall import domain_wall
from mllg.dynamics import LLG, ClassicalTerms
from mllg.electrons.negf import NEGF, DenseNEGF
from mllg.io import make_dataset, provenance, write_dataset
from mllg.lattice import Lattice

__all__ = [
    "driven_wall_runs",
    "sample_negf",
    "thermal_wall_configurations",
    "wall_configurations",
]


def wall_configurations(
    lattice: Lattice,
    n: int,
    rng: np.random.Generator | int | None = None,
    width: tuple[float, float] = (1.5, 4.0),
    centre: tuple[float, float] = (0.3, 0.7),
    noise: float = 0.3,
) -> NDArray[np.float64]:
    """``n`` perturbed domain walls, shape (n, N, 3) (module docstring).

    Parameters
    ----------
    width : range of the wall width lambda (lattice units), uniform.
    centre : range of the centre as a fraction of ``Lx``, uniform.
    noise : largest per-spin Gaussian tilt ``sigma`` (0 gives ideal walls).
    """
    if n < 1:
        raise ValueError(f"number of configurations n={n} must be >= 1.")
    if not (0 < width[0] <= width[1]):
        raise ValueError(f"width range {width} must satisfy 0 < low <= high.")
    if not (0.0 <= centre[0] <= centre[1] <= 1.0):
        raise ValueError(f"centre range {centre} must lie inside [0, 1].")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise} must be a finite number >= 0.")
    rng = np.random.default_rng(rng)
    out = np.empty((n, lattice.N, 3))
    for k in range(n):
        s = domain_wall(
            lattice,
            centre=rng.uniform(*centre) * (lattice.Lx - 1),
            width=rng.uniform(*width),
            phi=rng.uniform(0, 2 * np.pi),
            sign=int(rng.choice([1, -1])),
        )
        s = s + rng.uniform(0, noise) * rng.normal(size=s.shape)
        out[k] = s / np.linalg.norm(s, axis=1, keepdims=True)
    return out


def thermal_wall_configurations(
    solver: NEGF | DenseNEGF,
    voltages: Sequence[float],
    n: int,
    rng: np.random.Generator | int | None = None,
    *,
    kT_spin: float = 0.01,
    n_steps: int = 50,
    alpha: float = 0.5,
    dt: float = 0.2,
    K: float = 0.01,
    precession: int = 1,
    **wall_kwargs: Any,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``n`` walls evolved by Langevin NEGF-LLG, shape (n, N, 3), and their biases (n,).

    Configuration j starts from a random wall (:func:`wall_configurations` with
    ``wall_kwargs``) and runs ``n_steps`` steps of
    ``dS/dt = p S x (h + eta) - alpha S x (S x (h + eta))`` with ``h`` the NEGF field at
    bias ``voltages[j % len(voltages)]`` plus the easy-axis field ``2 K S_z z``, and
    noise of temperature ``kT_spin`` (:class:`mllg.dynamics.LLG`, midpoint integrator,
    ``p = precession``, default +1). The solver's bias is restored afterwards.
    Cost: ``2 n n_steps`` field evaluations.

    Parameters
    ----------
    solver : NEGF field provider (its lattice is a strip).
    voltages : biases V (units of t/e) of the runs, used in turn.
    n : number of configurations, ``>= 1``.
    rng : generator or seed of the start walls and of the Langevin noise.
    kT_spin : temperature of the spin bath (units of t), ``>= 0``.
    n_steps : LLG steps per configuration, ``>= 1``.
    alpha, dt : Gilbert damping and time step (units of 1/t).
    K : easy-axis anisotropy along z (units of t).
    precession : sign p of the precession term (+1: driven-wall convention).
    **wall_kwargs : ``width``, ``centre``, ``noise`` of the start walls.

    Returns
    -------
    spins : (n, N, 3) final configurations; bias : (n,) bias of each run.
    """
    if n < 1:
        raise ValueError(f"number of thermal configurations n={n} must be >= 1.")
    if not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"thermal_steps={n_steps!r} must be an integer >= 1.")
    voltages = [float(v) for v in voltages]
    if not voltages:
        raise ValueError("voltages must hold at least one bias value.")
    rng = np.random.default_rng(rng)
    starts = wall_configurations(solver.hamiltonian.lattice, n, rng, **wall_kwargs)
    seeds = rng.integers(0, 2**63, size=n)
    classical = ClassicalTerms(K=K)
    out = np.empty_like(starts)
    bias = np.array([voltages[j % len(voltages)] for j in range(n)])
    old_bias = solver.bias
    try:
        for j in range(n):
            solver.bias = bias[j]
            llg = LLG(
                solver, alpha=alpha, dt=dt, kT=kT_spin, classical=classical,
                seed=int(seeds[j]), precession=precession,
            )  # fmt: skip
            for frame in llg.run(starts[j], n_steps, every=n_steps, energy=False):
                out[j] = frame.spins
    finally:
        solver.bias = old_bias
    return out, bias


def sample_negf(
    solver: NEGF | DenseNEGF,
    voltages: Sequence[float],
    n_configs: int,
    seed: int = 0,
    path: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    *,
    n_thermal: int = 0,
    thermal: Mapping[str, Any] | None = None,
    **wall_kwargs: Any,
) -> xr.Dataset:
    """NEGF fields of perturbed walls (random and thermal) at every bias in ``voltages``.

    Parameters
    ----------
    solver : NEGF or DenseNEGF
        Field provider; its bias is set to each V in turn and restored at the end.
    voltages : biases V (units of t/e); both signs are recommended.
    n_configs : number of random walls (``origin = 0``), ``>= 0``.
    seed : seed of all random draws (walls, tilts, Langevin noise).
    path : zarr store to write (optional).
    config : enters the provenance hash.
    n_thermal : number of Langevin NEGF-LLG walls (``origin = 1``), ``>= 0``.
    thermal : keyword arguments of :func:`thermal_wall_configurations`: ``kT_spin``,
        ``n_steps``, ``alpha``, ``dt``, ``K``, ``precession`` (defaults 0.01, 50, 0.5,
        0.2, 0.01, +1); stored as ``thermal_*`` attributes.
    **wall_kwargs : ``width``, ``centre``, ``noise`` of :func:`wall_configurations`.

    Frames are ordered configuration-major (frame ``k * len(voltages) + j`` holds
    configuration k at ``voltages[j]``; random configurations first). A fresh solver
    with the same settings, seed and arguments gives an identical store (the solver's
    warm-started quadrature panels depend on its history, within ``tol``). Returns the
    dataset.
    """
    voltages = [float(v) for v in voltages]
    if not voltages:
        raise ValueError("voltages must hold at least one bias value.")
    for name, value in (("n_configs", n_configs), ("n_thermal", n_thermal)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name}={value!r} must be an integer >= 0.")
    if n_configs + n_thermal < 1:
        raise ValueError("n_configs + n_thermal must be >= 1: nothing to sample.")
    thermal = dict(thermal or {})
    allowed = {"kT_spin", "n_steps", "alpha", "dt", "K", "precession"}
    if set(thermal) - allowed:
        raise ValueError(
            f"thermal keys {sorted(set(thermal) - allowed)} are not allowed; use {sorted(allowed)}."
        )
    lattice = solver.hamiltonian.lattice
    # the random walls use default_rng(seed), so they do not depend on n_thermal; the
    # thermal runs use an independent stream
    rng_random, rng_thermal = np.random.default_rng(seed), np.random.default_rng([seed, 1])
    parts, origin, drive = [], [], []
    if n_configs:
        parts.append(wall_configurations(lattice, n_configs, rng_random, **wall_kwargs))
        origin += [0] * n_configs
        drive += [np.nan] * n_configs
    if n_thermal:
        t_cfg, t_bias = thermal_wall_configurations(
            solver, voltages, n_thermal, rng_thermal, **thermal, **wall_kwargs
        )
        parts.append(t_cfg)
        origin += [1] * n_thermal
        drive += list(t_bias)
    configs = np.concatenate(parts)
    spins, fields, bias, err, org, drv = [], [], [], [], [], []
    old_bias = solver.bias
    try:
        for s, o, d in zip(configs, origin, drive, strict=True):
            for v in voltages:
                solver.bias = v
                fields.append(solver(s))
                spins.append(s)
                bias.append(v)
                err.append(sum(solver.last_error.values()))
                org.append(o)
                drv.append(d)
    finally:
        solver.bias = old_bias
    attrs = solver.attrs()
    attrs.pop("bias")
    thermal_attrs = {}
    if n_thermal:
        sig = inspect.signature(thermal_wall_configurations).parameters
        defaults = {k: sig[k].default for k in sorted(allowed)}
        thermal_attrs = {f"thermal_{k}": v for k, v in (defaults | thermal).items()}
    attrs |= {
        "sampling": "negf_domain_walls",
        "seed": int(seed),
        "voltages": voltages,
        "n_configs": int(n_configs),
        "n_thermal": int(n_thermal),
        **thermal_attrs,
        **{f"wall_{k}": v for k, v in wall_kwargs.items()},
        "provenance": provenance(config),
    }
    ds = make_dataset(
        lattice,
        attrs,
        spins=np.array(spins),
        fields=np.array(fields),
        bias=np.array(bias),
        quad_error=np.array(err),
        origin=np.array(org, dtype=np.int64),
        thermal_bias=np.array(drv, dtype=float),
    )
    if path is not None:
        write_dataset(path, ds)
    return ds


def driven_wall_runs(
    solver: NEGF | DenseNEGF,
    voltages: Sequence[float],
    *,
    n_steps: int = 400,
    every: int = 20,
    alpha: float = 0.1,
    dt: float = 0.2,
    K: float = 0.01,
    relax_steps: int = 400,
    relax_alpha: float = 0.5,
    width: float = 2.0,
    centre: float | None = None,
    precession: int = 1,
    fit_from: float = 0.25,
) -> dict[str, Any]:
    """Direct NEGF-LLG of a 180 deg wall: relax at V = 0, then run at every V.

    The wall (:func:`~mllg.analysis.domain_wall.domain_wall`, +z on the left, ``width``,
    ``centre``) is relaxed with ``relax_steps`` steps at V = 0 and damping
    ``relax_alpha``; from the relaxed state every bias V runs ``n_steps`` steps of

    .. math:: dS/dt = p S \\times h - \\alpha S \\times (S \\times h), \\qquad
              h = h_{NEGF}(V) + 2 K S_z \\hat z,

    (:class:`mllg.dynamics.LLG`, midpoint, no noise; ``p = precession``, +1 by the
    project's driven-wall convention: the wall then moves along the electron flow, to +x
    for V > 0). Every ``every`` steps the wall is fitted
    (:func:`~mllg.analysis.domain_wall.wall_fits`); the velocity is the least-squares
    slope of X(t) for ``t >= fit_from * t_end``.

    Returns
    -------
    dict with the settings, ``relaxed_position``, ``relaxed_width``, ``relaxed_spins``
    (N, 3) and ``runs``: one dict per V with ``bias``, ``time``, ``position``,
    ``position_err``, ``width``, ``phi`` (lists), ``velocity`` and ``velocity_err``
    (sites per unit time 1/t), ``max_quad_error`` (largest NEGF quadrature error
    estimate of the fields at the saved frames, units of t) and ``seconds``. The
    solver's bias is restored at the end.
    """
    from mllg.analysis.domain_wall import fit_domain_wall, wall_fits, wall_velocity

    if not isinstance(n_steps, (int, np.integer)) or n_steps < 3:
        raise ValueError(f"n_steps={n_steps!r} must be an integer >= 3.")
    if not isinstance(every, (int, np.integer)) or not 1 <= every <= n_steps // 2:
        raise ValueError(f"every={every!r} must be an integer in [1, n_steps // 2].")
    voltages = [float(v) for v in voltages]
    if not voltages:
        raise ValueError("voltages must hold at least one bias value.")
    lattice = solver.hamiltonian.lattice
    classical = ClassicalTerms(K=K)
    old_bias = solver.bias
    runs = []
    try:
        solver.bias = 0.0
        s = domain_wall(lattice, centre=centre, width=width)
        if relax_steps > 0:
            relax = LLG(
                solver, alpha=relax_alpha, dt=dt, classical=classical, precession=precession
            )
            s = list(relax.run(s, relax_steps, every=relax_steps, energy=False))[-1].spins
        fit0 = fit_domain_wall(s, lattice)
        for v in voltages:
            solver.bias = v
            llg = LLG(solver, alpha=alpha, dt=dt, classical=classical, precession=precession)
            t0 = time.perf_counter()
            frames, times, qerr = [], [], []
            for fr in llg.run(s, n_steps, every=every, energy=False):
                frames.append(fr.spins)
                times.append(fr.time)
                qerr.append(sum(solver.last_error.values()))
            seconds = time.perf_counter() - t0
            fits = wall_fits(np.array(frames), lattice)
            t_arr = np.array(times)
            vel, err = wall_velocity(t_arr, fits["position"], t_min=fit_from * t_arr[-1])
            runs.append(
                {
                    "bias": v,
                    "time": t_arr.tolist(),
                    **{k: fits[k].tolist() for k in ("position", "position_err", "width", "phi")},
                    "velocity": vel,
                    "velocity_err": err,
                    "max_quad_error": float(max(qerr)),
                    "seconds": seconds,
                }
            )
    finally:
        solver.bias = old_bias
    return {
        "n_steps": int(n_steps), "every": int(every), "alpha": alpha, "dt": dt, "K": K,
        "relax_steps": int(relax_steps), "relax_alpha": relax_alpha, "precession": precession,
        "relaxed_position": fit0.position, "relaxed_width": fit0.width,
        "relaxed_spins": s, "runs": runs,
    }  # fmt: skip
