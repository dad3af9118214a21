"""ML-LLG production runs: resume, blow-up, bad input, ML vs exact-field dynamics."""

import json

import numpy as np
import pytest
import torch

from mllg import textures as tx
from mllg.dynamics import LLG
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.io import open_store
from mllg.lattice import make_lattice
from mllg.nn import BPModel, ModelConfig, save_model
from mllg.nn.provider import MLFieldProvider
from mllg.production import BlowUpError, RunConfig, run_quench

CFG = dict(kT=0.05, alpha=0.4, dt=0.05, n_steps=40, save_every=5, seed=7)


def _model(lat, seed=0, **kw):
    torch.manual_seed(seed)
    m = BPModel(lat, ModelConfig(descriptor={"r_cut": 2.0}, hidden=(16, 16), **kw))
    with torch.no_grad():
        m.energy_scale.fill_(2.0)
    return m


def _linear_bp(lat, coef, descriptor):
    """BP model with ``eps_i = sum_k coef_k G_ik`` exactly: ReLU(x) - ReLU(-x) = x."""
    k = len(coef)
    m = BPModel(lat, ModelConfig(descriptor=descriptor, hidden=(2 * k,), activation="relu"))
    assert m.descriptor.n_features == k
    eye = torch.eye(k, dtype=torch.float64)
    c = torch.as_tensor(np.asarray(coef, float))
    with torch.no_grad():
        m.net[0].weight.copy_(torch.cat([eye, -eye]))
        m.net[0].bias.zero_()
        m.net[2].weight.copy_(torch.cat([c, -c])[None])
        m.net[2].bias.zero_()
    return m


class _Crash:
    """Make MLFieldProvider.evaluate raise after ``calls`` calls (a killed job)."""

    def __init__(self, monkeypatch, calls):
        orig = MLFieldProvider.evaluate
        state = {"left": calls}

        def evaluate(self, spins, energy=True):
            state["left"] -= 1
            if state["left"] < 0:
                raise KeyboardInterrupt("killed")
            return orig(self, spins, energy)

        monkeypatch.setattr(MLFieldProvider, "evaluate", evaluate)


def test_interrupted_quench_resumes_bit_identically(tmp_path, monkeypatch):
    lat = make_lattice("triangular", 6)
    model = _model(lat)
    cfg = RunConfig(**CFG)
    full = run_quench(model, lat, tmp_path / "full.zarr", cfg)
    assert full["n_frames"] == 9 and full["final_time"] == pytest.approx(2.0)
    for calls in (5, 23, 40, 20, 12):  # die at several points, each run resumes
        with monkeypatch.context() as mp:
            _Crash(mp, calls)
            with pytest.raises(KeyboardInterrupt):
                run_quench(model, lat, tmp_path / "cut.zarr", cfg)
    run_quench(model, lat, tmp_path / "cut.zarr", cfg)
    a, b = open_store(tmp_path / "full.zarr"), open_store(tmp_path / "cut.zarr")
    np.testing.assert_array_equal(a["step"].values, np.arange(0, 41, 5))
    for var in ("step", "spins", "fields", "energy", "time"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
    assert a.attrs["solver"] == "ml" and a.attrs["kT"] == 0.05
    assert np.all(np.isfinite(a["energy"].values))
    # extending the run continues it: n_steps is not part of the run identity
    longer = RunConfig(**{**CFG, "n_steps": 50})
    out = run_quench(model, lat, tmp_path / "cut.zarr", longer)
    assert out["n_frames"] == 11 and out["steps_run"] == 10
    np.testing.assert_array_equal(open_store(tmp_path / "cut.zarr")["spins"].values[:9], a["spins"])


def test_blow_up_stops_with_a_message_and_keeps_the_last_good_frame(tmp_path, monkeypatch):
    lat = make_lattice("square", 5)
    orig = MLFieldProvider.evaluate
    calls = {"n": 0}

    def evaluate(self, spins, energy=True):
        calls["n"] += 1
        res = orig(self, spins, energy)
        if calls["n"] > 25:
            res.fields[3] = np.nan
        return res

    monkeypatch.setattr(MLFieldProvider, "evaluate", evaluate)
    with pytest.raises(BlowUpError, match="blew up at step 15.*last good frame"):
        run_quench(_model(lat), lat, tmp_path / "t.zarr", RunConfig(**CFG))
    ds = open_store(tmp_path / "t.zarr")
    np.testing.assert_array_equal(ds["step"].values, [0, 5, 10])
    assert np.all(np.isfinite(ds["spins"].values))


def test_bad_input_is_refused_and_nothing_is_overwritten(tmp_path):
    lat = make_lattice("triangular", 6)
    model = _model(lat)
    for key, value in (("dt", 0.0), ("dt", -0.1), ("kT", -0.01), ("alpha", -1.0)):
        with pytest.raises(ValueError, match=f"run {key}="):
            RunConfig(**{**CFG, key: value})
    with pytest.raises(ValueError, match="needs alpha > 0"):
        RunConfig(**{**CFG, "alpha": 0.0})
    cfg = RunConfig(**CFG)
    with pytest.raises(ValueError, match="trained on a 'square' lattice"):
        run_quench(_model(make_lattice("square", 4)), lat, tmp_path / "x.zarr", cfg)
    gen = _model(lat, potential="generalized")
    with pytest.raises(ValueError, match="'generalized' potential"):
        run_quench(gen, lat, tmp_path / "x.zarr", cfg, potential="conservative")
    save_model(model, tmp_path / "m", extra={"system": {"J": 2.0, "filling": 0.25}})
    with pytest.raises(ValueError, match="trained for J=2.0"):
        run_quench(tmp_path / "m", lat, tmp_path / "x.zarr", cfg, system={"J": 3.0})
    with pytest.raises(ValueError, match="trained on a 'triangular' lattice"):
        run_quench(tmp_path / "m", make_lattice("square", 6), tmp_path / "x.zarr", cfg)
    assert not (tmp_path / "x.zarr").exists()
    # a store of another run (other seed) at the output path is left untouched
    path = tmp_path / "t.zarr"
    run_quench(tmp_path / "m", lat, path, cfg, system={"J": 2.0})
    before = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    for other in (RunConfig(**{**CFG, "seed": 8}), RunConfig(**{**CFG, "dt": 0.04})):
        with pytest.raises(ValueError, match="another configuration"):
            run_quench(tmp_path / "m", lat, path, other, system={"J": 2.0})
    with pytest.raises(ValueError, match="another configuration"):
        run_quench(tmp_path / "m", make_lattice("triangular", 9), path, cfg, system={"J": 2.0})
    after = {p: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    assert before == after
    (tmp_path / "file.zarr").write_text("not a store")
    with pytest.raises(ValueError, match="is a file"):
        run_quench(model, lat, tmp_path / "file.zarr", cfg)
    assert (tmp_path / "file.zarr").read_text() == "not a store"


def test_model_trained_small_runs_on_a_larger_lattice(tmp_path):
    small, big = make_lattice("triangular", 6), make_lattice("triangular", 12)
    model = _model(small)
    save_model(model, tmp_path / "m")
    out = run_quench(tmp_path / "m", big, tmp_path / "t.zarr", RunConfig(**CFG))
    ds = open_store(tmp_path / "t.zarr")
    assert out["n_frames"] == 9 and ds.attrs["Lx"] == 12 and ds["spins"].shape == (9, 144, 3)
    # the ML fields of the first frame are those of the model on the big lattice
    on_big = BPModel(big, model.config)
    on_big.load_state_dict(model.state_dict())
    ref = on_big.predict(ds["spins"].values[0])["fields"]
    np.testing.assert_allclose(ds["fields"].values[0], ref, atol=2e-5 * np.abs(ref).max())


def test_ml_llg_with_exact_model_tracks_exact_llg():
    """A BP model that is exactly a Heisenberg + scalar-chirality energy (by construction)
    drives the same trajectory as the independently coded exact field, in float32."""
    lat = make_lattice("triangular", 8)
    desc = {"kind": "plain", "r_cut": 1.0, "bond_cut": 0.0, "chirality": True}
    j1, kappa = 1.0, 0.7
    keys = BPModel(lat, ModelConfig(descriptor=desc)).descriptor.objects.keys
    # eps_i = -(J1/2) sum_nn S_i.S_j + (kappa/3) sum_{triangles at i} chi (ccw order)
    coef = [-j1 / 2 if len(k) == 2 else kappa / 3 for k in keys]
    model = _linear_bp(lat, coef, desc)
    x, y = lat.x, lat.y
    nb = [lat.index(x + dx, y + dy) for dx, dy in ((1, 0), (0, 1), (-1, 1))]
    nb += [lat.index(x - dx, y - dy) for dx, dy in ((1, 0), (0, 1), (-1, 1))]
    a1, a2, a12 = lat.index(x + 1, y), lat.index(x, y + 1), lat.index(x + 1, y + 1)

    def exact(s):
        h = j1 * sum(s[j] for j in nb)
        g = np.zeros_like(s)  # dE_chi/dS for E_chi = kappa sum chi(up, down triangles)
        for p, q, r in ((np.arange(lat.N), a1, a2), (a1, a12, a2)):
            np.add.at(g, p, np.cross(s[q], s[r]))
            np.add.at(g, q, np.cross(s[r], s[p]))
            np.add.at(g, r, np.cross(s[p], s[q]))
        return h - kappa * g

    s0 = tx.random_spins(lat.N, 3)
    ml64 = MLFieldProvider(model, dtype="float64")
    np.testing.assert_allclose(ml64(s0), exact(s0), atol=1e-12)
    ml = MLFieldProvider(model)  # float32, the production default
    kw = dict(alpha=0.1, dt=0.02, kT=0.02, seed=5)
    run_ml = [f.spins for f in LLG(ml, **kw).run(s0, 100, every=20, energy=False)]
    run_ex = [f.spins for f in LLG(exact, **kw).run(s0, 100, every=20, energy=False)]
    motion = np.abs(run_ex[-1] - s0).max()
    assert motion > 0.3  # the spins really move
    assert max(np.abs(a - b).max() for a, b in zip(run_ml, run_ex, strict=True)) < 1e-4


def test_ml_llg_fitted_to_ed_tracks_ed_llg():
    """ML vs ED: a linear BP model (pair couplings within r_c = 3.5, i.e. RKKY at weak J)
    fitted by least squares to ED fields of random states, then LLG from a new random
    state with the same noise: the trajectories agree to the model error."""
    lat = make_lattice("triangular", 6)
    ed = ExactDiagonalization(SdHamiltonian(lat, J=0.5), Ensemble.canonical(0.25, kT=0.2))
    desc = {"kind": "plain", "r_cut": 3.5, "bond_cut": 0.0, "chirality": False}
    probe = BPModel(lat, ModelConfig(descriptor=desc))
    k = probe.descriptor.n_features
    rng = np.random.default_rng(11)
    s = np.stack([tx.random_spins(lat.N, rng) for _ in range(16)])
    h = np.stack([ed(x) for x in s])
    st = torch.as_tensor(s).requires_grad_(True)
    g = probe.descriptor(st).sum(1)  # (F, K): sum_i G_ik; field basis -d/dS
    basis = np.stack(
        [-torch.autograd.grad(g[:, j].sum(), st, retain_graph=True)[0].numpy() for j in range(k)]
    )

    def perp(v, spins):
        return v - np.sum(v * spins, -1, keepdims=True) * spins

    a = perp(basis, s[None]).reshape(k, -1).T
    coef = np.linalg.lstsq(a, perp(h, s).ravel(), rcond=None)[0]
    ml = MLFieldProvider(_linear_bp(lat, coef, desc))
    s_test = tx.random_spins(lat.N, rng)
    err = perp(ml(s_test) - ed(s_test), s_test)
    rel = np.sqrt((err**2).mean() / (perp(ed(s_test), s_test) ** 2).mean())
    assert rel < 0.1
    kw = dict(alpha=0.2, dt=0.1, kT=0.0005, seed=2)
    run_ml = [f.spins for f in LLG(ml, **kw).run(s_test, 150, every=30, energy=False)]
    run_ed = [f.spins for f in LLG(ed, **kw).run(s_test, 150, every=30, energy=False)]
    motion = np.sqrt(((run_ed[-1] - s_test) ** 2).sum(-1).mean())
    dev = np.sqrt(((run_ml[-1] - run_ed[-1]) ** 2).sum(-1).mean())
    assert motion > 0.05 and dev < 0.15 * motion


def test_quench_cli_writes_a_store(tmp_path, capsys):
    from mllg.production import main

    lat = make_lattice("square", 6)
    save_model(_model(lat), tmp_path / "m")
    args = ["--model", str(tmp_path / "m"), "--lattice", "square", "--L", "8", "--kT", "0.1"]
    args += ["--alpha", "0.5", "--dt", "0.05", "--n-steps", "10", "--save-every", "5"]
    args += ["--out", str(tmp_path / "t.zarr"), "--system", '{"J": 6.0}']
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["n_frames"] == 3 and open_store(tmp_path / "t.zarr").attrs["J"] == 6.0


def test_one_engine_runs_a_vector_model_and_an_exact_solver(tmp_path):
    """production.run takes any provider: a vector model of a driven strip (the field is
    no gradient) and an exact solver go through the same function; the stored fields are
    the provider's at the stored spins, identities keep the two runs apart, and
    run_quench accepts the vector model too."""
    from mllg.analysis.domain_wall import domain_wall
    from mllg.production import run
    from mllg.providers import ml_provider

    strip = make_lattice("strip", 8, 1, periodic_y=False)
    torch.manual_seed(1)
    vec = BPModel(strip, ModelConfig(descriptor={"r_cut": 2.0}, hidden=(8,), potential="vector"))
    save_model(vec, tmp_path / "vec")
    wall = domain_wall(strip, width=2.0)
    cfg = RunConfig(kT=0.0, alpha=0.5, dt=0.05, n_steps=20, save_every=5, precession=1)
    ml = ml_provider([tmp_path / "vec"], strip, dtype="float64")
    out = run(ml, strip, tmp_path / "vec.zarr", cfg, initial=wall, attrs={"solver": "ml"})
    ds = open_store(tmp_path / "vec.zarr")
    assert out["n_frames"] == 5 and ds.attrs["provider_identity"]["kind"] == "ml"
    last = ds["spins"].isel(frame=-1).values
    np.testing.assert_allclose(ds["fields"].isel(frame=-1).values, ml(last), atol=1e-12)
    assert np.all(np.isnan(ds["energy"].values))  # a vector model has no energy
    assert np.abs(last - wall).max() > 1e-3  # the field moved the spins

    sq = make_lattice("square", 4)
    ed = ExactDiagonalization(SdHamiltonian(sq, J=3.0), Ensemble.canonical(0.4))
    cfg_ed = RunConfig(kT=0.0, alpha=0.5, dt=0.1, n_steps=10, save_every=5)
    out = run(ed, sq, tmp_path / "ed.zarr", cfg_ed, attrs={"solver": "ed"})
    ds = open_store(tmp_path / "ed.zarr")
    assert out["n_frames"] == 3 and ds.attrs["provider_identity"]["kind"] == "ExactDiagonalization"
    np.testing.assert_allclose(ds["fields"].isel(frame=-1).values, ed(ds["spins"][-1].values))
    assert np.all(np.isfinite(ds["energy"].values))
    # the same settings with another provider do not resume into the ED store
    ed2 = ExactDiagonalization(SdHamiltonian(sq, J=2.0), Ensemble.canonical(0.4))
    with pytest.raises(ValueError, match="another configuration"):
        run(ed2, sq, tmp_path / "ed.zarr", cfg_ed)
    cfg_q = RunConfig(kT=0.0, alpha=0.5, dt=0.05, n_steps=10, save_every=5, dtype="float64")
    res = run_quench(tmp_path / "vec", strip, tmp_path / "q.zarr", cfg_q, initial=wall)
    assert res["n_frames"] == 3


def test_committee_mean_runs_every_member_in_the_run_precision(tmp_path):
    """Several models run their committee mean, each member by its fast provider."""
    from mllg.production import run
    from mllg.providers import MeanProvider, ml_provider

    lat = make_lattice("triangular", 6)
    members = [_model(lat, seed=k) for k in range(2)]
    prov = ml_provider(members, lat, dtype="float64")
    assert isinstance(prov, MeanProvider) and len(prov.model_hashes) == 2
    s = tx.random_spins(lat.N, 3)
    want = np.mean([MLFieldProvider(m, dtype="float64")(s) for m in members], axis=0)
    np.testing.assert_allclose(prov(s), want, atol=1e-12)
    e = prov.solve(s).energy
    assert e == pytest.approx(np.mean([np.ravel(m.predict(s)["energy"])[0] for m in members]))
    out = run(prov, lat, tmp_path / "c.zarr", RunConfig(**CFG))
    assert out["n_frames"] == 9 and out["provider"]["combination"] == "MeanProvider"


def test_gpu_request_without_cuda_stops_with_one_sentence(tmp_path, monkeypatch):
    """train.gpu / simulate.gpu >= 1 where torch sees no CUDA device: one sentence naming
    the key, before the stage writes anything; gpu = 0 computes on the CPU."""
    from mllg import workflow
    from mllg.devices import DeviceError, select_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device(0, "train.gpu") == "cpu"
    with pytest.raises(DeviceError, match=r"^train.gpu = 1 asks for a GPU, but torch sees no"):
        select_device(1, "train.gpu")
    system = {"kind": "equilibrium", "model": {}, "train": {"descriptor": {}}}
    out = tmp_path / "train"
    with pytest.raises(DeviceError, match="set train.gpu: 0 to run on the CPU"):
        workflow.train_model(system, [tmp_path / "missing.zarr"], 0, out, gpu=1)
    sim = {"kind": "equilibrium", "simulate": {"L": 6}}
    with pytest.raises(DeviceError, match="simulate.gpu = 2 asks for a GPU"):
        workflow.simulate(sim, "eq", 0, [tmp_path / "m"], tmp_path / "s.zarr", gpu=2)
    assert not out.exists() and not (tmp_path / "s.zarr").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_request_with_cuda_trains_and_runs_on_cuda(tmp_path):
    from mllg.devices import select_device
    from mllg.production import run
    from mllg.providers import ml_provider

    assert select_device(1, "simulate.gpu") == "cuda"
    lat = make_lattice("triangular", 6)
    prov = ml_provider([_model(lat)], lat, device="cuda")
    out = run(prov, lat, tmp_path / "g.zarr", RunConfig(**CFG))
    assert out["provider"]["device"].startswith("cuda")
