"""Langevin-LLG sampling of training data with any exchange-field provider.

:func:`sample_llg` integrates the stochastic LLG equation of :mod:`mllg.dynamics`
(``dS_i/dt = -S_i x (h_i + eta_i) - alpha S_i x (S_i x (h_i + eta_i))``, noise variance
``2 alpha kT / (1 + alpha^2)``, hbar = gamma = 1, time in 1/t) with fields from a
provider (ED, KPM or any callable ``spins (N, 3) -> fields (N, 3)``; a provider with
``solve`` also gives the energy) and appends every ``every``-th frame to a zarr v3 store
through :class:`mllg.io.TrajectoryWriter`: ``spins`` and ``fields`` (frame, site, vec),
``energy``, ``time`` and ``step`` (frame). ``fields`` are the noiseless electronic fields
``h_i = -dE/dS_i`` at the stored spins, i.e. the training labels. A provider that
estimates the error of its labels in ``provider.info["probing_error_rel"]`` (the KPM
solver: relative RMSE of the perpendicular field components from exactly computed check
sites) also gets a per-frame variable ``fields_perp_error_est`` (frame), so a training
set carries the accuracy of its own labels.

The run is resumable: the state of the noise generator is stored with every committed
frame, so a killed run continues from its last frame and reproduces the uninterrupted
trajectory bit for bit (same provider, same seed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg.dynamics import LLG, ClassicalTerms, FieldProvider
from mllg.io import TrajectoryWriter, provenance
from mllg.lattice import Lattice

__all__ = [
    "provider_attrs",
    "sample_llg",
]


def provider_attrs(provider: FieldProvider) -> dict[str, Any]:
    """Data-contract attributes a provider can tell about itself.

    Hamiltonian couplings (``t1``, ``t2``, ``t3``, ``J``), the ensemble (``kT`` and
    ``filling`` or ``mu``), ``solver`` (its ``name``) and its ``settings()`` if present.
    """
    out: dict[str, Any] = {"solver": str(getattr(provider, "name", type(provider).__name__))}
    ham = getattr(provider, "hamiltonian", None)
    if ham is not None:
        out.update(t1=ham.t[0], t2=ham.t[1], t3=ham.t[2], J=ham.J)
    ens = getattr(provider, "ensemble", None)
    if ens is not None:
        out.update(ens.attrs())
    settings = getattr(provider, "settings", None)
    if callable(settings):
        out.update(settings())
    return out


def sample_llg(
    provider: FieldProvider,
    lattice: Lattice,
    spins: NDArray,
    path: str | Path,
    *,
    alpha: float,
    dt: float,
    kT: float,
    n_steps: int,
    every: int = 1,
    seed: int | None = 0,
    method: str = "midpoint",
    classical: ClassicalTerms | None = None,
    attrs: Mapping[str, Any] | None = None,
    config: Mapping[str, Any] | None = None,
    precession: int = -1,
    labels: FieldProvider | None = None,
) -> Path:
    """Run Langevin LLG and write frames (spins, fields, energy, time, step) to zarr.

    Parameters
    ----------
    provider : field provider (``ExactDiagonalization``, ``KernelPolynomial``, ...).
    lattice : Lattice of the spins.
    spins : (N, 3) initial unit spins (ignored when resuming an existing store).
    path : zarr store; if it holds committed frames of the same configuration, the run
        resumes after its last frame and stops at ``n_steps`` total steps.
    alpha, dt, kT : Gilbert damping, time step (1/t) and bath temperature (t) of the
        Langevin noise. ``kT`` is the spin bath; the electronic temperature is that of
        the provider's ensemble.
    n_steps : total number of LLG steps of the trajectory.
    every : store every ``every``-th step (the initial state is frame 0).
    seed : seed of the noise generator.
    method : LLG integrator (see :class:`mllg.dynamics.LLG`).
    classical : optional classical energy terms.
    attrs : extra attributes; ``config`` goes into the provenance hash.
    precession : sign ``p`` of the precession term ``p S x h`` (see :class:`mllg.dynamics.LLG`;
        ``+1`` for the driven domain wall).
    labels : optional solver of the stored ``fields`` and ``energy`` (e.g. the grand
        canonical ED at fixed ``mu`` while ``provider``, canonical, drives the dynamics);
        the store's model attrs are then those of ``labels`` and the dynamics' own
        ensemble is kept as ``llg_``-prefixed attrs. One extra solve per stored frame.

    Returns
    -------
    Path of the store.
    """
    path = Path(path)
    spins = np.asarray(spins, dtype=float)
    if spins.shape != (lattice.N, 3):
        raise ValueError(f"spins must have shape ({lattice.N}, 3), got {spins.shape}.")
    if n_steps < 0 or every < 1:
        raise ValueError(f"need n_steps >= 0 and every >= 1, got {n_steps} and {every}.")
    llg = LLG(
        provider,
        alpha=alpha,
        dt=dt,
        kT=kT,
        method=method,
        classical=classical,
        seed=seed,
        precession=precession,
    )
    dynamics = provider_attrs(provider)
    meta = {
        **(dynamics if labels is None else provider_attrs(labels)),
        **({} if labels is None else {f"llg_{k}": v for k, v in dynamics.items()}),
        "llg_alpha": float(alpha),
        "llg_dt": float(dt),
        "llg_kT": float(kT),
        "llg_method": method,
        "llg_seed": -1 if seed is None else int(seed),
        "llg_every": int(every),
        "llg_precession": int(precession),
        **dict(attrs or {}),
        "provenance": provenance(
            {
                **dict(config or {}),
                "_sampling": {
                    "alpha": alpha,
                    "dt": dt,
                    "kT": kT,
                    "seed": seed,
                    "every": every,
                    "precession": precession,
                    **({} if labels is None else {"labels": provider_attrs(labels)}),
                },
            }
        ),
    }
    writer = TrajectoryWriter(path, lattice, meta)
    start = 0
    track: bool | None = None  # decided at the first frame (or by the stored variables)
    if writer.n_frames:
        last = writer.last_frame()
        track = "fields_perp_error_est" in last.data_vars
        start = int(last["step"].values)
        spins = np.asarray(last["spins"].values, dtype=float)
        state = writer.stored_attrs.get("llg_rng_state")
        if state is not None:
            llg.rng.bit_generator.state = json.loads(state)
    remaining = n_steps - start
    if remaining <= 0:
        return path
    frames = llg.run(spins, remaining, every=every, start_step=start)
    first = True
    for frame in frames:
        if first and writer.n_frames:
            first = False
            continue  # the resumed initial frame is already stored
        first = False
        # the provider's last solve was at this frame's spins (LLG.run re-solves there)
        fields, energy = frame.fields, frame.energy
        if labels is not None:
            res = labels.solve(frame.spins)
            fields, energy = res.fields, float(np.ravel(res.energy)[0])
        # the error estimate belongs to the solver of the stored fields
        info = getattr(provider if labels is None else labels, "info", None)
        if track is None:
            track = isinstance(info, dict) and "probing_error_rel" in info
        extra = {}
        if track:
            est = info.get("probing_error_rel", np.nan) if isinstance(info, dict) else np.nan
            extra["fields_perp_error_est"] = np.array([float(est)])
        writer.append(
            attrs={"llg_rng_state": json.dumps(llg.rng.bit_generator.state)},
            spins=frame.spins[None],
            fields=fields[None],
            energy=np.array([energy]),
            time=np.array([frame.time]),
            step=np.array([frame.step], dtype=np.int64),
            **extra,
        )
    return path
