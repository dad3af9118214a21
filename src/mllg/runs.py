"""Run protocols that tie a field provider, the LLG integrator and a trajectory store.

:func:`run_llg` integrates LLG from an initial state and appends a frame to a zarr
trajectory every ``save_every`` steps, together with the state of the noise generator.
Rerunning it on an existing store of the same configuration continues after the last
complete frame with the same random stream, so an interrupted run and an uninterrupted
one give identical frames.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg.dynamics import LLG
from mllg.io import TrajectoryWriter
from mllg.lattice import Lattice


def run_llg(
    llg: LLG,
    lattice: Lattice,
    initial: NDArray,
    path: str | Path,
    n_steps: int,
    save_every: int,
    attrs: Mapping[str, Any],
    progress: bool = False,
) -> TrajectoryWriter:
    """Integrate ``n_steps`` LLG steps, saving frames (spins, fields, energy, time, step).

    Parameters
    ----------
    llg : configured integrator (its generator is reset from the store on resume).
    lattice : the lattice of the spins.
    initial : (N, 3) initial spins, used only when the store is new.
    path : zarr store of the trajectory.
    n_steps, save_every : total number of steps and the saving interval.
    attrs : physical parameters, solver settings and provenance for the store.
    progress : show a tqdm progress bar.
    """
    if n_steps % save_every:
        raise ValueError(f"n_steps={n_steps} must be a multiple of save_every={save_every}.")
    writer = TrajectoryWriter(
        path, lattice, {**attrs, "dt": llg.dt, "alpha": llg.alpha, "save_every": save_every}
    )
    if writer.n_frames:
        last = writer.last_frame()
        spins = last["spins"].values
        start = int(last["step"])
        state = json.loads(writer.stored_attrs["rng_state"])
        llg.rng.bit_generator.state = state
    else:
        spins = np.asarray(initial, dtype=float)
        start = 0
    remaining = n_steps - start
    if remaining < 0:
        raise ValueError(f"the store at {path} already holds more than n_steps={n_steps} steps.")
    frames = llg.run(spins, remaining, every=save_every, start_step=start)
    if writer.n_frames:
        next(frames)  # the resumed state is already stored
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_steps, initial=start, unit="step")
    for frame in frames:
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
    if bar is not None:
        bar.close()
    return writer
