"""Run protocols that tie a field provider, the LLG integrator and a trajectory store.

:func:`run_llg` integrates LLG from an initial state and appends a frame to a zarr
trajectory every ``save_every`` steps, together with the state of the noise generator.
Rerunning it on an existing store of the same configuration continues after the last
complete frame with the same random stream, so an interrupted run (even by ``kill -9``)
and an uninterrupted one give identical frames.

Blow-up guard: before a frame is written its spins and fields must be finite and every
``| |S_i| - 1 |`` below ``norm_tol``; otherwise :class:`BlowUpError` is raised, and the
store keeps the last good frame.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg.dynamics import LLG
from mllg.io import StoreError, TrajectoryWriter
from mllg.lattice import Lattice

__all__ = ["BlowUpError", "check_frame", "check_store_path", "run_llg"]


class BlowUpError(FloatingPointError):
    """The integration produced non-finite or non-unit spins; the store is left intact."""


def check_store_path(path: str | Path) -> None:
    """Refuse an output path that holds something other than a zarr store.

    A zarr v3 store is a directory with ``zarr.json``; an empty directory is accepted.
    Whether an existing store belongs to the same configuration is checked by
    :class:`mllg.io.TrajectoryWriter` (before anything is written).
    """
    p = Path(path)
    if not p.exists():
        return
    if not p.is_dir():
        raise ValueError(f"the output path {p} is a file, not a zarr store; choose another path.")
    if any(p.iterdir()) and not (p / "zarr.json").exists():
        raise ValueError(
            f"the output path {p} is a non-empty directory that is not a zarr store; "
            "choose another path."
        )


def check_frame(spins: NDArray, fields: NDArray, step: int, norm_tol: float) -> None:
    """Raise :class:`BlowUpError` unless spins and fields are finite and ``|S_i| = 1``."""
    if not (np.all(np.isfinite(spins)) and np.all(np.isfinite(fields))):
        raise BlowUpError(
            f"LLG blew up at step {step}: non-finite spins or fields; the store keeps the last "
            "good frame. Reduce dt or check the field provider."
        )
    dev = float(np.max(np.abs(np.linalg.norm(spins, axis=-1) - 1.0)))
    if dev > norm_tol:
        raise BlowUpError(
            f"LLG blew up at step {step}: spin norm off by {dev:.2e} (> {norm_tol:.0e}); the "
            "store keeps the last good frame. Reduce dt or check the field provider."
        )


def run_llg(
    llg: LLG,
    lattice: Lattice,
    initial: NDArray,
    path: str | Path,
    n_steps: int,
    save_every: int,
    attrs: Mapping[str, Any],
    progress: bool = False,
    norm_tol: float = 1e-6,
    energy: bool = True,
) -> TrajectoryWriter:
    """Integrate ``n_steps`` LLG steps, saving frames (spins, fields, energy, time, step).

    Parameters
    ----------
    llg : configured integrator (its generator is reset from the store on resume).
    lattice : the lattice of the spins.
    initial : (N, 3) initial spins, used only when the store is new.
    path : zarr store of the trajectory.
    n_steps, save_every : total number of steps and the saving interval.
    attrs : physical parameters, solver settings and provenance for the store. The
        ``provenance["config_hash"]`` and the lattice identify the run: a store written
        for another configuration is refused (ValueError) and left untouched.
    progress : show a tqdm progress bar (stderr).
    norm_tol : largest allowed ``| |S_i| - 1 |`` of a saved frame (blow-up guard).
    energy : record the energy at saved frames (if the provider offers ``solve``).

    Returns
    -------
    TrajectoryWriter
        The writer of the (complete) store.

    Raises
    ------
    BlowUpError
        Non-finite or non-unit spins; frames up to the last good one are kept.
    """
    if save_every < 1 or n_steps < 0 or n_steps % save_every:
        raise ValueError(
            f"n_steps={n_steps} must be a non-negative multiple of save_every={save_every} >= 1."
        )
    check_store_path(path)
    writer = TrajectoryWriter(
        path, lattice, {**attrs, "dt": llg.dt, "alpha": llg.alpha, "save_every": save_every}
    )
    if writer.n_frames:
        last = writer.last_frame()
        k = writer.n_frames - 1
        if "spins" not in last or "step" not in last or "rng_state" not in writer.stored_attrs:
            raise StoreError(
                f"frame {k} of the store at {path} lacks spins, step or the noise state; it "
                "was not written by this run: remove it or choose another output path."
            )
        spins = last["spins"].values
        norm = np.linalg.norm(spins, axis=-1)
        if not (np.all(np.isfinite(spins)) and np.allclose(norm, 1.0, atol=norm_tol)):
            raise StoreError(
                f"frame {k} of the store at {path} (the frame a resumed run starts from) holds "
                "non-finite or non-unit spins; remove the store to start the run again."
            )
        start = int(last["step"])
        state = json.loads(writer.stored_attrs["rng_state"])
        llg.rng.bit_generator.state = state
    else:
        spins = np.asarray(initial, dtype=float)
        if spins.shape != (lattice.N, 3):
            raise ValueError(
                f"initial spins have shape {spins.shape}; the lattice needs ({lattice.N}, 3)."
            )
        start = 0
    remaining = n_steps - start
    if remaining < 0:
        raise ValueError(f"the store at {path} already holds more than n_steps={n_steps} steps.")
    frames = llg.run(spins, remaining, every=save_every, start_step=start, energy=energy)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_steps, initial=start, unit="step", dynamic_ncols=True)
    try:
        first = True
        for frame in frames:
            if first and writer.n_frames:
                first = False
                continue  # the resumed state is already stored
            first = False
            check_frame(frame.spins, frame.fields, frame.step, norm_tol)
            writer.append(
                spins=frame.spins[None],
                fields=frame.fields[None],
                energy=np.array([frame.energy]),
                time=np.array([frame.time]),
                step=np.array([frame.step], dtype=np.int64),
                attrs={"rng_state": json.dumps(llg.rng.bit_generator.state)},
            )
            if bar is not None:
                bar.n = frame.step
                bar.refresh()
    except FloatingPointError as err:
        if isinstance(err, BlowUpError):
            raise
        raise BlowUpError(f"{err} The store at {path} keeps the last good frame.") from err
    finally:
        if bar is not None:
            bar.close()
    return writer
