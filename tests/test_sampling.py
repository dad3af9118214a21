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
    """LLG from one random state, fields from ED and from KPM at default settings (square
    12x12, J=6, f=0.485, electronic kT=0.2; auto colouring, <1% field error), with the
    same Langevin noise sequence (bath kT=0.05, same seed): the trajectories stay close
    over 20 steps (t = 1).

    The spins move by O(0.3); a field error of ~1% must give a trajectory deviation of
    a few percent of that motion at most (a sign, transpose or probing error of order
    h_perp gives a deviation of the order of the motion)."""
    lat = make_lattice("square", 12)
    ham = SdHamiltonian(lat, J=6.0)
    ens = Ensemble.canonical(0.485, 0.2)
    s0 = random_spins(lat.N, 4)
    n_steps, dt = 20, 0.05
    kpm = KernelPolynomial(ham, ens)
    assert kpm.colouring.n_colours < lat.N  # probing, not exact columns
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", KPMAccuracyWarning)
        for name, prov in (("ed", ExactDiagonalization(ham, ens)), ("kpm", kpm)):
            llg = LLG(prov, alpha=0.5, dt=dt, kT=0.05, seed=11)
            frames = list(llg.run(s0, n_steps, every=5, energy=False))
            out[name] = np.stack([f.spins for f in frames])
    moved = np.max(np.linalg.norm(out["ed"][-1] - s0, axis=1))
    diff = np.linalg.norm(out["kpm"] - out["ed"], axis=-1)  # (frame, site)
    assert moved > 0.2  # the spins really moved
    assert np.max(diff) < 0.05 * moved
    assert np.sqrt(np.mean(diff[-1] ** 2)) < 0.01 * moved


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
    assert "fields_perp_error_est" not in ds  # exact labels: no error estimate
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


def test_sample_llg_grand_canonical_labels_of_a_canonical_run(tmp_path):
    """``labels``: the dynamics is that of the canonical provider (same spins as without
    labels), the stored fields and energies are the grand-canonical solver's at the
    stored spins, and the model attrs say ``mu`` while ``llg_filling`` keeps the
    dynamics' ensemble."""
    lat = make_lattice("square", 6)
    ham = SdHamiltonian(lat, J=3.0)
    can = ExactDiagonalization(ham, Ensemble.canonical(0.4, 0.1))
    gc = ExactDiagonalization(ham, Ensemble.grand_canonical(-2.0, 0.1))
    s0 = random_spins(lat.N, 2)
    kw = dict(alpha=0.3, dt=0.05, kT=0.02, every=2, seed=5, n_steps=6)
    plain = open_store(sample_llg(can, lat, s0, tmp_path / "c.zarr", **kw))
    lab = open_store(sample_llg(can, lat, s0, tmp_path / "gc.zarr", labels=gc, **kw))
    assert np.allclose(lab["spins"].values, plain["spins"].values, atol=1e-13)
    spins = lab["spins"].values
    ref = gc.solve(spins[2])
    assert np.allclose(lab["fields"].values[2], ref.fields)
    assert lab["energy"].values[2] == pytest.approx(ref.energy[0])
    # the two ensembles really differ on these spins (else the test proves nothing)
    assert not np.allclose(lab["fields"].values[2], plain["fields"].values[2], atol=1e-3)
    assert lab.attrs["mu"] == -2.0 and "filling" not in lab.attrs
    assert lab.attrs["llg_filling"] == 0.4


@pytest.mark.slow
def test_kpm_sampling_48x48(tmp_path):
    """KPM Langevin-LLG sampling on a 48x48 double-exchange lattice writes valid data
    (default settings: auto colouring, converged, no warning)."""
    lat = make_lattice("square", 48)
    ham = SdHamiltonian(lat, J=6.0)
    prov = KernelPolynomial(ham, Ensemble.canonical(0.485, 0.2))
    assert prov.colouring.n_colours < lat.N / 16  # linear-scaling probing
    s0 = random_spins(lat.N, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", KPMAccuracyWarning)
        path = sample_llg(
            prov,
            lat,
            s0,
            tmp_path / "kpm48.zarr",
            alpha=0.5,
            dt=0.02,
            kT=0.05,
            n_steps=2,
            every=1,
            seed=3,
        )
    ds = open_store(path)
    assert ds.sizes["frame"] == 3 and ds.sizes["site"] == 2304
    assert ds.attrs["solver"] == "kpm" and ds.attrs["kpm_n_colours"] == prov.colouring.n_colours
    assert ds.attrs["kpm_distance_rule"] == "auto" and ds.attrs["filling"] == 0.485
    # per-frame label accuracy from the KPM check sites, converged at the defaults
    est = ds["fields_perp_error_est"].values
    assert est.shape == (3,) and np.all((est > 0) & (est < prov.probe_tol))
    h, s = ds["fields"].values, ds["spins"].values
    assert np.all(np.isfinite(h)) and np.all(np.isfinite(ds["energy"].values))
    # double exchange at J=6: h nearly parallel to S, h.S ~ 5.6
    assert 5.0 < np.mean(np.sum(h * s, axis=-1)) < 6.0
    assert not np.allclose(s[0], s[-1])


def test_kpm_sample_llg_resumes_with_label_error(tmp_path):
    """KPM labels carry their estimated error per frame; a resumed KPM run reproduces the
    uninterrupted one (fixed probe phases and check sites)."""
    lat = make_lattice("square", 8)
    ham = SdHamiltonian(lat, J=3.0)
    prov = KernelPolynomial(ham, Ensemble.canonical(0.4, 0.2), distance=4, random_phases=True)
    s0 = random_spins(lat.N, 3)
    kw = dict(alpha=0.3, dt=0.05, kT=0.05, every=2, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", KPMAccuracyWarning)
        full = open_store(sample_llg(prov, lat, s0, tmp_path / "f.zarr", n_steps=6, **kw))
        sample_llg(prov, lat, s0, tmp_path / "p.zarr", n_steps=2, **kw)
        part = open_store(sample_llg(prov, lat, s0, tmp_path / "p.zarr", n_steps=6, **kw))
        prov.solve(full["spins"].values[2])
    est = full["fields_perp_error_est"].values
    assert est.shape == (4,) and np.all(est > 0)
    assert est[2] == pytest.approx(prov.info["probing_error_rel"], rel=1e-12)
    assert np.allclose(part["spins"].values, full["spins"].values, atol=1e-13)
    assert np.allclose(part["fields_perp_error_est"].values, est, rtol=1e-10)
