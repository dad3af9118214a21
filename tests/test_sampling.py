"""Langevin-LLG sampling to zarr with ED and KPM field providers."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from mllg.dynamics import LLG
from mllg.electrons.base import Ensemble
from mllg.electrons.ed import ExactDiagonalization
from mllg.electrons.kpm import KernelPolynomial, KPMAccuracyWarning
from mllg.hamiltonian import SdHamiltonian
from mllg.io import open_store
from mllg.lattice import make_lattice
from mllg.sampling import sample_llg
from mllg.textures import random_spins


def test_kpm_llg_follows_ed_llg_12x12():
    """Deterministic LLG (bath kT = 0) from one random state, fields from ED and KPM
    (square 12x12, J=6, f=0.485, electronic kT=0.2, d=6): trajectories stay close.

    The probing error at d=6 on this random state is a few percent of h_perp; the spins
    move by ~0.1 in 10 steps and the KPM trajectory stays within ~15% of that motion
    (a sign or transpose error in the fields gives a deviation of order the motion)."""
    lat = make_lattice("square", 12)
    ham = SdHamiltonian(lat, J=6.0)
    ens = Ensemble.canonical(0.485, 0.2)
    s0 = random_spins(lat.N, 4)
    n_steps, dt = 10, 0.05
    out = {}
    for name, prov in (
        ("ed", ExactDiagonalization(ham, ens)),
        ("kpm", KernelPolynomial(ham, ens, distance=6)),
    ):
        llg = LLG(prov, alpha=0.5, dt=dt, kT=0.0)
        frames = list(llg.run(s0, n_steps, every=n_steps, energy=False))
        out[name] = frames[-1].spins
    moved = np.max(np.linalg.norm(out["ed"] - s0, axis=1))
    diff = np.max(np.linalg.norm(out["kpm"] - out["ed"], axis=1))
    assert moved > 0.05  # the spins really moved
    assert diff < 0.25 * moved
    assert np.sqrt(np.mean((out['kpm'] - out['ed']) ** 2)) < 0.05 * moved


def test_sample_llg_writes_contract_and_resumes(tmp_path):
    lat = make_lattice("square", 6)
    ham = SdHamiltonian(lat, J=3.0)
    prov = ExactDiagonalization(ham, Ensemble.canonical(0.4, 0.05))
    s0 = random_spins(lat.N, 1)
    kw = dict(alpha=0.3, dt=0.05, kT=0.02, every=2, seed=9)
    full = sample_llg(prov, lat, s0, tmp_path / "full.zarr", n_steps=8, **kw)
    ds = open_store(full)
    assert ds.sizes["frame"] == 5 and ds["spins"].dims == ("frame", "site", "vec")
    assert np.allclose(ds["time"].values, 0.05 * np.arange(0, 9, 2))
    assert ds.attrs["solver"] == "ed" and ds.attrs["J"] == 3.0 and ds.attrs["filling"] == 0.4
    assert ds.attrs["lattice"] == "square" and ds.attrs["llg_kT"] == 0.02
    spins = ds["spins"].values
    assert np.allclose(np.linalg.norm(spins, axis=-1), 1.0)
    assert np.allclose(spins[0], s0)
    # stored fields and energies are the labels of the stored spins
    ref = prov.solve(spins[3])
    assert np.allclose(ds["fields"].values[3], ref.fields)
    assert ds["energy"].values[3] == pytest.approx(ref.energy[0])
    # a run stopped after 4 steps and resumed to 8 gives the same store
    part = tmp_path / "part.zarr"
    sample_llg(prov, lat, s0, part, n_steps=4, **kw)
    sample_llg(prov, lat, s0, part, n_steps=8, **kw)
    dp = open_store(part)
    assert np.array_equal(dp["step"].values, ds["step"].values)
    assert np.allclose(dp["spins"].values, spins, atol=1e-13)


@pytest.mark.slow
def test_kpm_sampling_48x48(tmp_path):
    """KPM Langevin-LLG sampling on a 48x48 double-exchange lattice writes valid data."""
    lat = make_lattice("square", 48)
    ham = SdHamiltonian(lat, J=6.0)
    prov = KernelPolynomial(ham, Ensemble.canonical(0.485, 0.1), distance=8)
    s0 = random_spins(lat.N, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KPMAccuracyWarning)
        path = sample_llg(
            prov, lat, s0, tmp_path / "kpm48.zarr", alpha=0.5, dt=0.02, kT=0.05, n_steps=2,
            every=1, seed=3,
        )
    ds = open_store(path)
    assert ds.sizes["frame"] == 3 and ds.sizes["site"] == 2304
    assert ds.attrs["solver"] == "kpm" and ds.attrs["kpm_n_colours"] == prov.colouring.n_colours
    h, s = ds["fields"].values, ds["spins"].values
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(ds["energy"].values))
    # double exchange at J=6: h nearly parallel to S, h.S ~ 5.6
    assert 5.0 < np.mean(np.sum(h * s, axis=-1)) < 6.0
    assert not np.allclose(s[0], s[-1])
