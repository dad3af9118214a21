"""Study protocols behind the workflow rules: config section in, files out.

Each function takes one validated config section (a plain dict) and output paths;
the Snakemake scripts only unpack the ``snakemake`` object and call these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mllg import textures
from mllg.analysis.structure import weight_fraction
from mllg.dynamics import LLG
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.io import open_store, provenance
from mllg.lattice import Lattice, make_lattice
from mllg.plotting import plot_texture
from mllg.runs import run_llg

ORDERED = {"triangular": ("tetrahedral", "M"), "square": ("neel", "M")}


def build_model(cfg: Mapping[str, Any]) -> tuple[Lattice, SdHamiltonian, Ensemble]:
    """Lattice, Hamiltonian and ensemble from the keys lattice, L, t1..t3, J, filling|mu, kT."""
    lat = make_lattice(cfg["lattice"], int(cfg["L"]))
    ham = SdHamiltonian(lat, cfg.get("t1", 1.0), cfg.get("t2", 0.0), cfg.get("t3", 0.0), cfg["J"])
    if cfg.get("mu") is not None:
        ens = Ensemble.grand_canonical(cfg["mu"], cfg.get("kT", 0.0))
    else:
        ens = Ensemble.canonical(cfg["filling"], cfg.get("kT", 0.0))
    return lat, ham, ens


def model_attrs(ham: SdHamiltonian, ens: Ensemble, solver: str) -> dict[str, Any]:
    """Data-contract attrs of the physical model and solver."""
    t1, t2, t3 = ham.t
    return {"t1": t1, "t2": t2, "t3": t3, "J": ham.J, **ens.attrs(), "solver": solver}


def relax(
    cfg: Mapping[str, Any], trajectory: str | Path, figure: str | Path, summary: str | Path
) -> dict[str, Any]:
    """Damped (optionally Langevin) ED-LLG relaxation from random spins.

    Writes the trajectory store, a PNG of the final texture and a summary JSON with the
    final energy per site, the energy of the reference ordered state and the fraction of
    structure-factor weight at its ordering wavevectors. Resumes an interrupted run.
    """
    lat, ham, ens = build_model(cfg)
    ed = ExactDiagonalization(ham, ens)
    llg = LLG(
        ed,
        alpha=cfg["alpha"],
        dt=cfg["dt"],
        kT=cfg.get("kT_bath", 0.0),
        method=cfg.get("method", "midpoint"),
        seed=cfg["seed"],
    )
    initial = textures.random_spins(lat.N, np.random.default_rng(cfg["seed"]))
    attrs = {
        **model_attrs(ham, ens, "ed"),
        "protocol": "relax",
        "provenance": provenance(dict(cfg)),
    }
    run_llg(llg, lat, initial, trajectory, int(cfg["n_steps"]), int(cfg["save_every"]), attrs)
    ds = open_store(trajectory)
    final = ds["spins"].isel(frame=-1).values
    e_final = float(ds["energy"].isel(frame=-1)) / lat.N
    out: dict[str, Any] = {
        "lattice": lat.kind,
        "L": lat.Lx,
        "J": ham.J,
        **ens.attrs(),
        "n_frames": int(ds.sizes["frame"]),
        "final_time": float(ds["time"].isel(frame=-1)),
        "final_energy_per_site": e_final,
    }
    if lat.kind in ORDERED and lat.Lx % 2 == 0:
        name, point = ORDERED[lat.kind]
        ref = getattr(textures, name)(lat)
        e_ref = ed.energy(ref) / lat.N
        out.update(
            {
                "reference_state": name,
                "reference_energy_per_site": e_ref,
                "relative_energy_difference": abs(e_final - e_ref) / abs(e_ref),
                f"structure_factor_weight_at_{point}": float(weight_fraction(lat, final, point)),
            }
        )
    plot_texture(
        lat,
        final,
        figure,
        title=f"ED-LLG {lat.kind} {lat.Lx}x{lat.Ly}, J={ham.J}, t={out['final_time']:g}",
    )
    Path(summary).write_text(json.dumps(out, indent=2) + "\n")
    return out
