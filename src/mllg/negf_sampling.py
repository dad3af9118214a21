"""Training data for the driven strip: NEGF fields of perturbed domain walls at several V.

Each frame is a 180 deg wall along x (:func:`mllg.analysis.domain_wall.domain_wall`) with
a random centre, width, azimuth and sign, plus an independent random tilt of every spin
(Gaussian components of standard deviation ``sigma``, renormalised; ``sigma`` is drawn
per frame from ``[0, noise]`` so that nearly ideal and strongly disordered walls are
both present). Every configuration is evaluated at every bias of ``voltages`` (both
signs are recommended), so that the store pairs each texture with its fields at several
V. The store follows the data contract (:mod:`mllg.io`): ``spins`` and ``fields``
(frame, site, vec), ``bias`` (frame), ``quad_error`` (frame, the NEGF quadrature error
estimate of the fields), and the solver attributes (``solver = "negf"``, lead
parameters, ``mu``, ``kT``); the per-frame bias replaces the scalar ``bias`` attribute.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from numpy.typing import NDArray

from mllg.analysis.domain_wall import domain_wall
from mllg.electrons.negf import NEGF, DenseNEGF
from mllg.io import make_dataset, provenance, write_dataset
from mllg.lattice import Lattice


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


def sample_negf(
    solver: NEGF | DenseNEGF,
    voltages: Sequence[float],
    n_configs: int,
    seed: int = 0,
    path: str | Path | None = None,
    config: Mapping[str, Any] | None = None,
    **wall_kwargs: Any,
) -> xr.Dataset:
    """NEGF fields of ``n_configs`` perturbed walls at every bias in ``voltages``.

    Frames are ordered configuration-major (frame ``k * len(voltages) + j`` holds
    configuration k at ``voltages[j]``); ``config`` enters the provenance hash. A fresh
    solver with the same settings, seed and arguments gives an identical store (the
    solver's warm-started quadrature panels depend on its history, within ``tol``).
    Writes the zarr store at ``path`` if given and returns the dataset.
    """
    voltages = [float(v) for v in voltages]
    if not voltages:
        raise ValueError("voltages must hold at least one bias value.")
    lattice = solver.hamiltonian.lattice
    configs = wall_configurations(lattice, n_configs, seed, **wall_kwargs)
    spins, fields, bias, err = [], [], [], []
    old_bias = solver.bias
    try:
        for s in configs:
            for v in voltages:
                solver.bias = v
                fields.append(solver(s))
                spins.append(s)
                bias.append(v)
                err.append(sum(solver.last_error.values()))
    finally:
        solver.bias = old_bias
    attrs = solver.attrs()
    attrs.pop("bias")
    attrs |= {
        "sampling": "negf_domain_walls",
        "seed": int(seed),
        "voltages": voltages,
        "n_configs": int(n_configs),
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
    )
    if path is not None:
        write_dataset(path, ds)
    return ds
