"""The concurrent-learning loop (mllg.active, the explore / select / label / retrain
stages) and the production audit.

Checks: the trust bounds and diversity of the selection; the committee spread against a
committee whose errors are known; KPM labels against ED; two loop iterations through the
stage functions on a 6x6 ED system; a label job killed with SIGKILL resumes to the
uninterrupted result; the audit stage against a hand computation.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mllg.active import (
    exploration_runs,
    faster_solver,
    frame_disagreement,
    rank_correlation,
    select_frames,
    spread_frames,
)
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.io import open_store
from mllg.lattice import make_lattice
from mllg.textures import random_spins

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TET = "triangular_tetrahedral"


# ------------------------------------------------------------------------ selection
def test_selection_respects_the_trust_bounds_the_cap_and_the_separation():
    # two runs of 10 frames; e rises with the frame index in run 0, falls in run 1
    run = np.repeat([0, 1], 10)
    frame = np.tile(np.arange(10), 2)
    e = np.r_[np.linspace(0.0, 0.9, 10), np.linspace(0.9, 0.0, 10)]
    e[3] = np.nan  # a frame whose prediction blew up counts as failed
    e[19] = 2.0  # absurd
    sel = select_frames(e, run, frame, lower=0.15, upper=0.85, cap=4, min_separation=3)
    finite = np.isfinite(e)
    assert sel.accurate == int((finite & (e < 0.15)).sum())
    assert sel.failed == int((~finite | (e >= 0.85)).sum()) == 4  # nan, 0.9, 0.9, 2.0
    assert sel.candidate == 20 - sel.accurate - sel.failed
    assert sel.uncertain_fraction == pytest.approx((sel.candidate + sel.failed) / 20)
    picked = sel.picked
    assert len(picked) == 4
    assert np.all((e[picked] >= 0.15) & (e[picked] < 0.85))
    assert np.all(np.diff(e[picked]) <= 0)  # most uncertain first
    assert sorted(run[picked].tolist()) == [0, 0, 1, 1]  # both runs take part
    for r in (0, 1):
        f = np.sort(frame[picked][run[picked] == r])
        assert np.all(np.diff(f) >= 3)
    # the most uncertain candidate of each run is among the picks
    for r in (0, 1):
        cand = np.flatnonzero((run == r) & finite & (e >= 0.15) & (e < 0.85))
        assert cand[np.argmax(e[cand])] in picked
    # a cap above the candidates takes every candidate that the separation allows
    sel1 = select_frames(e, run, frame, lower=0.15, upper=0.85, cap=100, min_separation=1)
    assert len(sel1.picked) == sel1.candidate
    with pytest.raises(ValueError, match="lower < upper"):
        select_frames(e, run, frame, lower=0.5, upper=0.5, cap=4)


def test_spread_frames_cover_every_run_from_start_to_end():
    run = np.repeat([0, 1, 2], 11)
    frame = np.tile(np.arange(11), 3)
    picks = spread_frames(run, frame, 6)
    assert len(picks) == 6
    for r in (0, 1, 2):
        f = sorted(frame[picks][run[picks] == r])
        assert f == [0, 10]  # first and last frame of every run
    # excluded frames (already selected) are not taken again
    excl = spread_frames(run, frame, 6, exclude=picks)
    assert not set(excl.tolist()) & set(picks.tolist())


def test_committee_spread_ranks_frames_by_their_true_error():
    """A committee whose members scatter around the exact field with a known
    per-frame amplitude: the spread is that amplitude (perpendicular part), and the
    frames it ranks highest are those whose committee mean is farthest off."""
    from mllg.nn import Committee

    lat = make_lattice("triangular", 6)
    ed = ExactDiagonalization(SdHamiltonian(lat, J=2.0), Ensemble.canonical(0.25, 0.1))
    rng = np.random.default_rng(0)
    spins = np.stack([random_spins(lat.N, rng) for _ in range(12)])
    exact = np.stack([ed(s) for s in spins])
    amp = np.geomspace(1e-3, 1e-1, len(spins))[rng.permutation(len(spins))]

    class Member:
        def __init__(self, seed: int) -> None:
            self.noise = np.random.default_rng(seed).normal(size=spins.shape)

        def eval(self):
            return self

        def predict(self, s):
            return {"fields": exact + amp[:, None, None] * self.noise}

    pred = Committee([Member(k) for k in range(8)]).predict(spins)
    mean, sigma = pred["fields"], pred["sigma"]
    # sigma of M normal draws of a 2D perpendicular vector: ~ amp * sqrt(2)
    ratio = np.median(sigma, axis=1) / amp
    assert np.all((ratio > 0.9) & (ratio < 1.8)), ratio
    e, scale = frame_disagreement(spins, mean, sigma)
    perp = exact - np.sum(exact * spins, -1, keepdims=True) * spins
    assert scale == pytest.approx(np.sqrt((perp**2).sum(-1).mean()), rel=0.05)
    d = mean - exact
    d -= np.sum(d * spins, -1, keepdims=True) * spins
    true_err = np.sqrt((d**2).sum((1, 2)) / (perp**2).sum((1, 2)))
    assert rank_correlation(e, true_err) > 0.9
    with pytest.raises(ValueError, match="at least 2"):
        Committee([Member(0)])


def test_exploration_plan_and_initial_states():
    runs = exploration_runs(2, 0.0, [0.02, 0.1], 1, 0.3)
    assert [r.protocol for r in runs] == ["quench", "quench", "langevin", "langevin", "perturbed"]
    assert [r.kT for r in runs] == [0.0, 0.0, 0.02, 0.1, 0.0]
    lat = make_lattice("square", 4)
    neel = np.zeros((lat.N, 3))
    neel[:, 2] = (-1.0) ** (lat.x + lat.y)
    s = runs[4].initial(lat, neel, iteration=1)
    assert np.allclose(np.linalg.norm(s, axis=1), 1)
    assert 0.8 < np.mean(np.sum(s * neel, 1)) < 1.0  # near the ordered state
    seeds = {r.seed(it) for r in runs for it in (1, 2)}
    assert len(seeds) == 2 * len(runs)  # every run of every iteration has its own seed
    assert not np.allclose(runs[0].initial(lat, None, 1), runs[0].initial(lat, None, 2))


# ------------------------------------------------------------------------ labels
def test_kpm_labels_equal_ed_within_the_kpm_tolerance(monkeypatch):
    lat = make_lattice("square", 8)
    ham = SdHamiltonian(lat, J=6.0)
    ens = Ensemble.canonical(0.485, 0.1)
    s = random_spins(lat.N, np.random.default_rng(3))
    kpm, info = faster_solver(ham, ens, s, "kpm")
    assert info["solver"] == "kpm" and kpm.name == "kpm"
    h_ed = ExactDiagonalization(ham, ens)(s)
    h_kpm = kpm(s)
    perp = [h - np.sum(h * s, 1, keepdims=True) * s for h in (h_ed, h_kpm)]
    err = np.sqrt(((perp[1] - perp[0]) ** 2).sum() / (perp[0] ** 2).sum())
    assert err < 1e-2
    # auto times both on this frame, records the KPM error, and takes the faster
    solver, auto = faster_solver(ham, ens, s, "auto")
    assert auto["kpm_error_vs_ed"] == pytest.approx(err, rel=0.2, abs=1e-4)
    faster = "ed" if auto["time_ed_s"] <= auto["time_kpm_s"] else "kpm"
    assert auto["solver"] == faster == solver.name
    assert auto["time_ed_predicted_s"] < 2 * auto["time_kpm_s"]  # why ED was timed
    # where the calibrated ED prediction is far above KPM, ED is not timed at all
    import mllg.active

    monkeypatch.setattr(mllg.active, "_dense_time", lambda dim: 1e3)
    _, slow = faster_solver(ham, ens, s, "auto")
    assert slow["solver"] == "kpm" and slow["time_ed_s"] is None
    assert slow["time_ed_predicted_s"] == pytest.approx(1e3 * (2 * lat.N / 512) ** 3)
    # above the ED limit KPM is taken without timing ED
    _, big = faster_solver(ham, ens, s, "auto", ed_max_dim=2 * lat.N - 2)
    assert big["solver"] == "kpm" and big["time_ed_s"] is None


LABEL_SCRIPT = """
import sys, numpy as np
from mllg.active import label_frames
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import make_lattice
lat = make_lattice("triangular", 12)
ed = ExactDiagonalization(SdHamiltonian(lat, J=2.0), Ensemble.canonical(0.25, 0.0))
spins = np.load(sys.argv[1])
label_frames(ed, lat, spins, sys.argv[2], {"provenance": {"config_hash": "test"}})
"""


def test_label_job_killed_with_sigkill_resumes_to_the_uninterrupted_labels(tmp_path):
    from mllg.active import label_frames

    lat = make_lattice("triangular", 12)
    ed = ExactDiagonalization(SdHamiltonian(lat, J=2.0), Ensemble.canonical(0.25, 0.0))
    rng = np.random.default_rng(7)
    spins = np.stack([random_spins(lat.N, rng) for _ in range(60)])
    np.save(tmp_path / "spins.npy", spins)
    store = tmp_path / "labels.zarr"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", LABEL_SCRIPT, str(tmp_path / "spins.npy"), str(store)], env=env
    )
    t0 = time.time()
    n = 0
    while time.time() - t0 < 120 and proc.poll() is None:
        if store.exists():
            try:
                n = int(open_store(store).attrs.get("n_frames", 0))
            except Exception:  # the store is being written
                n = 0
            if n >= 2:
                break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = int(open_store(store).attrs["n_frames"])
    assert 1 <= done < len(spins), f"the kill did not land mid-run ({done} frames)"
    label_frames(ed, lat, spins, store, {"provenance": {"config_hash": "test"}})
    ds = open_store(store).load()
    assert ds.sizes["frame"] == len(spins)
    np.testing.assert_array_equal(ds["spins"].values, spins)
    for f in (0, done - 1, done, len(spins) - 1):
        res = ed.solve(spins[f])
        np.testing.assert_allclose(ds["fields"].values[f], res.fields, atol=1e-12)
        assert ds["energy"].values[f] == pytest.approx(float(np.ravel(res.energy)[0]))


# ------------------------------------------------------------------------ stages
def _system(**active):
    """The validated tetrahedral section of the tests (6x6 ED, two-member committee)."""
    return _validated({"active": active})[TET]


def _validated(extra: dict) -> dict:
    from mllg.config import deep_merge, load_system_files, validate_config

    over = {
        "system": "triangular_tetrahedral",
        "systems": {
            "triangular_tetrahedral": {
                "model": {"kT": 0.1},
                "sample": {
                    "L": 6,
                    "chunks": 1,
                    "n_steps": 48,
                    "every": 4,
                    "kT_bath": [0.05],
                    "label_mu": None,
                },
                "train": {
                    "seeds": [0, 1],
                    "hidden": [8],
                    "max_epochs": 3,
                    "lr": 1.0e-2,
                    "message_r_cut": 0.0,
                    "pair_r_cut": 0.0,
                },
                "validate": {"frames": 2, "speed_L": 6, "repeats": 1},
                "simulate": {"L": 8, "seeds": [0], "n_steps": 30, "save_every": 10},
                "analyze": {"t_min": 1.0},
                "audit": {"frames": 2, "solver": "ed"},
                "active": {
                    "iterations": 2,
                    "quenches": 1,
                    "kT_bath": [0.05],
                    "perturbed": 1,
                    "n_steps": 40,
                    "save_every": 4,
                    "trust_lower": 0.0,
                    "max_frames": 4,
                    "spread_frames": 3,
                    "max_epochs": 2,
                },
            }
        },
    }
    over["systems"][TET] = deep_merge(over["systems"][TET], extra)
    shipped = load_system_files(REPO / "config")
    shipped["systems"] = {TET: shipped["systems"][TET]}  # validate one system: faster
    cfg = validate_config(deep_merge(shipped, over), SCHEMA)
    return copy.deepcopy(cfg["systems"])


@pytest.fixture(scope="module")
def committee(tmp_path_factory):
    """Sampled 6x6 ED data and a committee of two trained on it: (data, member dirs)."""
    from mllg import workflow

    root = tmp_path_factory.mktemp("committee")
    system = _system()
    data = root / "data.zarr"
    workflow.sample(system, "eq", 0, data)
    members = []
    for seed in (0, 1):
        workflow.train_model(system, [data], seed, root / f"seed{seed}")
        members.append(root / f"seed{seed}")
    return data, members


def test_two_loop_iterations_through_the_stage_functions(tmp_path, committee):
    """Iteration 0 trains a committee of two on sampled ED data; iterations 1 and 2
    explore with the previous committee, select, label with ED and retrain (warm start):
    the selection keeps its bounds and cap, the labels are exact, every retraining
    sees all labels so far, and the learning curve records every committee."""
    from mllg import workflow

    system = _system()
    data, first = committee
    members = {0: list(first)}
    label_dirs = []
    for it in (1, 2):
        base = tmp_path / f"iter{it}"
        prev_sel = tmp_path / f"iter{it - 1}" / "selection" if it > 1 else None
        models = [m / "model" for m in members[it - 1]]
        runs = workflow.explore(system, it, models, base / "explore", prev_sel)
        assert len(runs) == 3 and all(r["n_frames"] == 11 for r in runs)
        sel = workflow.select(system, it, base / "explore", models, base / "selection", prev_sel)
        assert sel["n_explored"] == 33 and sel["n_selected"] == 4 and sel["n_spread"] == 3
        assert sel["accurate"] + sel["candidate"] + sel["failed"] == 33
        lab = workflow.label(system, it, base / "selection", base / "labels")
        assert lab["n_labels"] == 7 and lab["label_solver"]["solver"] == "ed"
        assert lab["label_solver"]["ensemble"] == "canonical"
        ds = open_store(base / "labels" / "labels.zarr").load()
        ed = workflow.System.of(system).exact_solver(6)
        s = ds["spins"].values
        np.testing.assert_allclose(ds["fields"].values[0], ed(s[0]), atol=1e-12)
        assert ds["selected"].values.tolist() == [1] * 4 + [0] * 3
        label_dirs.append(base / "labels")
        members[it] = []
        for seed in (0, 1):
            out = base / "train" / f"seed{seed}"
            met = workflow.retrain_model(
                system, [data], label_dirs, seed, members[it - 1][seed], out
            )
            assert met["reused"] is False and met["n_label_frames"] == 7 * it
            members[it].append(out)
    w1 = (tmp_path / "iter1" / "train" / "seed0" / "model" / "weights.pt").read_bytes()
    w2 = (tmp_path / "iter2" / "train" / "seed0" / "model" / "weights.pt").read_bytes()
    assert w1 != w2
    points = workflow.learning_curve(
        label_dirs, [], tmp_path / "learning.json", tmp_path / "learning.png"
    )
    assert [p["iteration"] for p in points] == [0, 1, 2]
    assert all(np.isfinite(p["spread"]) and p["n_labels"] == 7 for p in points[:2])
    assert (tmp_path / "learning.png").stat().st_size > 5000


def test_a_loop_lattice_larger_than_the_training_lattice(tmp_path, committee):
    """With active.L = 8 on sample.L = 6 the committee explores and ED labels on 8 x 8,
    and the retraining (warm start from the 6 x 6 members) trains on those labels only."""
    from mllg import workflow

    system = _system(L=8)
    data, first = committee
    models = [m / "model" for m in first]
    runs = workflow.explore(system, 1, models, tmp_path / "explore")
    assert all(open_store(r["path"]).sizes["site"] == 64 for r in runs)
    workflow.select(system, 1, tmp_path / "explore", models, tmp_path / "selection")
    lab = workflow.label(system, 1, tmp_path / "selection", tmp_path / "labels")
    ds = open_store(tmp_path / "labels" / "labels.zarr").load()
    assert lab["n_labels"] == ds.sizes["frame"] == 7 and ds.sizes["site"] == 64
    ed8 = workflow.System.of(system).exact_solver(8)
    np.testing.assert_allclose(ds["fields"].values[-1], ed8(ds["spins"].values[-1]), atol=1e-12)
    met = workflow.retrain_model(
        system, [data], [tmp_path / "labels"], 0, first[0], tmp_path / "train"
    )
    assert met["n_sites"] == 64 and met["n_label_frames"] == 7
    assert met["n_frames_train"] + met["n_frames_val"] + met["n_frames_test"] == 7


def test_published_frames_are_scored_against_their_labels_and_the_exact_solver(tmp_path, committee):
    """validate.reference: the committee mean against the file's labels and against ED
    on the same spins; the file-vs-ED column measures a deliberate 10 % label error."""
    from mllg import workflow
    from mllg.nn import Committee
    from mllg.providers import load_models
    from mllg.workflow.label import per_frame_errors

    system = _system()
    sys_ = workflow.System.of(system)
    rng = np.random.default_rng(7)
    spins = rng.normal(size=(3, 36, 3))
    spins /= np.linalg.norm(spins, axis=-1, keepdims=True)
    ed = np.stack([sys_.exact_solver(6)(x) for x in spins])
    labels = ed.copy()
    labels[2] *= 1.1
    path = tmp_path / "published.npz"
    np.savez(path, spins=spins, fields=labels, L=6, kind=np.array(["a", "b", "c"]))
    models = [m / "model" for m in committee[1]]
    got = workflow.reference_test_set(system, models, path)
    mean = Committee(load_models(models, sys_.lattice(6))).predict(spins)["fields"]
    want, _ = per_frame_errors(spins, mean, ed)
    np.testing.assert_allclose([f["vs_exact"] for f in got["frames"]], want, rtol=1e-10)
    np.testing.assert_allclose([f["vs_file"] for f in got["frames"]][:2], want[:2], rtol=1e-10)
    np.testing.assert_allclose([f["file_vs_exact"] for f in got["frames"]], [0, 0, 0.1], atol=1e-12)
    assert [f["kind"] for f in got["frames"]] == ["a", "b", "c"]
    assert got["label_solver"]["solver"] == "ed" and 0 < got["vs_exact"] < 1


def test_a_shipped_reference_path_resolves_from_another_working_directory(tmp_path, monkeypatch):
    """Snakemake may run in another directory: the relative path of the shipped frames
    is then taken relative to the workflow directory (base_dir), and stays as given
    where the working directory holds it."""
    from mllg.config import deep_merge, load_system_files, validate_config

    rel = "data/reference/double_exchange_square_30x30/de_square_30x30_snapshots.npz"
    cfg = deep_merge(
        load_system_files(REPO / "config"),
        {"system": "square_double_exchange", "scale": "repro"},
    )
    monkeypatch.chdir(tmp_path)
    got = validate_config(copy.deepcopy(cfg), SCHEMA, base_dir=REPO)
    assert got["systems"]["square_double_exchange"]["validate"]["reference"] == str(REPO / rel)
    monkeypatch.chdir(REPO)
    got = validate_config(copy.deepcopy(cfg), SCHEMA, base_dir=REPO)
    assert got["systems"]["square_double_exchange"]["validate"]["reference"] == rel


def test_bad_reference_files_stop_with_one_sentence(tmp_path):
    from mllg.config import ConfigError

    np.savez(tmp_path / "wrong.npz", spins=np.zeros((2, 30, 3)), fields=np.zeros((2, 30, 3)), L=6)
    for path, words in [
        (tmp_path / "absent.npz", "cannot be read as an .npz with arrays spins, fields and L"),
        (tmp_path / "wrong.npz", "needs both (frames, 36, 3)"),
    ]:
        with pytest.raises(ConfigError) as err:
            _validated({"validate": {"reference": str(path)}})
        assert words in str(err.value) and "validate.reference" in str(err.value)


def test_the_loop_stops_below_the_stop_fraction_and_later_iterations_copy(tmp_path, committee):
    """With every frame trusted (trust_lower above any disagreement) the first
    selection stops the loop: only the spread frames are labelled, the retraining copies
    the models, the next exploration writes the STOPPED marker and its selection is
    empty."""
    from mllg import workflow
    from mllg.workflow.explore import STOPPED

    system = _system(trust_lower=50.0, trust_upper=100.0, stop_fraction=0.5)
    data, prev = committee
    models = [p / "model" for p in prev]
    workflow.explore(system, 1, models, tmp_path / "e1")
    sel = workflow.select(system, 1, tmp_path / "e1", models, tmp_path / "s1")
    assert sel["stopped"] and sel["n_selected"] == 0 and sel["uncertain_fraction"] == 0.0
    lab = workflow.label(system, 1, tmp_path / "s1", tmp_path / "l1")
    assert lab["n_labels"] == sel["n_spread"] == 3
    met = workflow.retrain_model(system, [data], [tmp_path / "l1"], 0, prev[0], tmp_path / "r1")
    assert met["reused"] is True
    assert (tmp_path / "r1" / "model" / "weights.pt").read_bytes() == (
        prev[0] / "model" / "weights.pt"
    ).read_bytes()
    assert workflow.explore(system, 2, models, tmp_path / "e2", tmp_path / "s1") == [
        {"stopped": True}
    ]
    assert (tmp_path / "e2" / STOPPED).exists() and not list((tmp_path / "e2").glob("*.zarr"))
    sel2 = workflow.select(system, 2, tmp_path / "e2", models, tmp_path / "s2", tmp_path / "s1")
    assert sel2["stopped"] and sel2["n_explored"] == 0
    assert workflow.label(system, 2, tmp_path / "s2", tmp_path / "l2")["n_labels"] == 0


def test_audit_labels_spread_frames_of_every_trajectory(tmp_path, committee):
    """The audit's per-frame error is the relative RMSE of the perpendicular production
    field (the trajectory's provider) against ED at those frames, recomputed here."""
    from mllg import workflow
    from mllg.providers import ml_provider
    from mllg.workflow.label import per_frame_errors

    system = _system()
    models = [m / "model" for m in committee[1]]
    trajs = []
    for seed in (0, 1):
        trajs.append(tmp_path / f"sim{seed}.zarr")
        workflow.simulate(system, "eq", seed, models, trajs[-1])
    val = tmp_path / "val.json"
    val.write_text(json.dumps({"perp_rel_rmse": 0.123}))
    met = workflow.audit(system, "eq", trajs, models, tmp_path / "audit", validation=val)
    assert len(met["frames"]) == 4 and met["validate_perp_rel_rmse"] == 0.123
    assert [r["time"] for r in met["frames"]] == [0.0, 6.0, 0.0, 6.0]  # first and last
    sys_ = workflow.System.of(system)
    lat = sys_.lattice(8)
    ml = ml_provider(models, lat, dtype="float32")
    ed = sys_.exact_solver(8)
    ds = open_store(trajs[1])
    s = ds["spins"].values[[0, -1]]
    want, _ = per_frame_errors(s, np.stack([ml(x) for x in s]), np.stack([ed(x) for x in s]))
    got = [r["perp_rel_rmse"] for r in met["frames"] if r["trajectory"] == 1]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    errors = [r["perp_rel_rmse"] for r in met["frames"]]
    assert min(errors) <= met["perp_rel_rmse"] <= max(errors)
    assert all(r["sigma_max"] > 0 for r in met["frames"])
    assert (tmp_path / "audit" / "audit.png").stat().st_size > 5000


BAD_ACTIVE = [
    ({"train": {"seeds": [0]}}, "active.iterations = 2 needs a committee"),
    ({"active": {"trust_lower": 0.5, "trust_upper": 0.2}}, "trust_lower = 0.5 must be below"),
    ({"active": {"n_steps": 45}}, "active.n_steps = 45 must be a multiple of"),
    ({"active": {"quenches": 0, "kT_bath": [], "perturbed": 0}}, "needs exploration runs"),
    ({"active": {"iterations": -1}}, "active.iterations = -1 is out of range"),
    ({"active": {"label_solver": "magic"}}, "choose one of auto, ed, kpm"),
    ({"active": {"max_frames": 0}}, "active.max_frames = 0 is out of range"),
    ({"active": {"stop_fraction": 1.5}}, "active.stop_fraction = 1.5 is out of range"),
    ({"active": {"kT_bath": [-0.1]}}, "active.kT_bath[0] = -0.1 is out of range"),
    ({"active": {"trust_upper": 0.0}}, "active.trust_upper = 0.0 is out of range"),
    ({"active": {"explore_L": 12}}, "unknown key 'explore_L'"),
    ({"active": {"L": 8, "warm_start": False}}, "needs systems.triangular_tetrahedral.active.warm"),
    ({"active": {"L": 7}}, "active.L = 7 must be a multiple of 2"),
    ({"sample": {"label_mu": "automatic"}}, "the only text value is 'auto'"),
    ({"model": {"kT": 0.0}, "sample": {"label_mu": "auto"}}, "'auto' needs systems."),
    ({"audit": {"frames": -1}}, "audit.frames = -1 is out of range"),
    ({"audit": {"solver": "negf"}}, "choose one of auto, ed, kpm"),
]


@pytest.mark.parametrize(("over", "words"), BAD_ACTIVE, ids=[w for _, w in BAD_ACTIVE])
def test_bad_active_values_stop_with_one_sentence_naming_the_key(over, words):
    from mllg.config import ConfigError

    good = _system()  # valid as it stands
    assert good["active"]["iterations"] == 2
    with pytest.raises(ConfigError) as err:
        _validated(over)
    msg = str(err.value)
    assert words in msg and "Traceback" not in msg, msg


def test_a_driven_system_has_no_learning_loop():
    from mllg.config import ConfigError, deep_merge, load_system_files, validate_config

    over = {
        "system": "driven_domain_wall",
        "systems": {"driven_domain_wall": {"active": {"iterations": 1}}},
    }
    with pytest.raises(ConfigError, match="needs an equilibrium system"):
        validate_config(deep_merge(load_system_files(REPO / "config"), over), SCHEMA)


def test_label_mu_auto_gives_the_stated_mean_filling_on_the_probe_frames(tmp_path):
    """chemical_potential: at the returned mu the grand-canonical filling averaged over
    the probe frames (canonical Langevin runs, rebuilt here from the documented
    protocol) is model.filling; the sample stage then labels at that mu."""
    from mllg import workflow
    from mllg.dynamics import LLG
    from mllg.electrons.base import fermi

    over = {"sample": {"L": 4, "label_mu": "auto", "mu_probe_steps": 20, "kT_bath": [0.02, 0.1]}}
    system = _validated(over)[TET]
    rec = workflow.chemical_potential(system, tmp_path / "label_mu.json")
    assert json.loads((tmp_path / "label_mu.json").read_text())["mu"] == rec["mu"]
    sys_ = workflow.System.of(system)
    ed = sys_.exact_solver(4)
    frames = []
    for k, kT in enumerate(system["sample"]["kT_bath"]):
        seed = system["sample"]["seed"] + 10_000 + k
        llg = LLG(ed, alpha=0.5, dt=0.2, kT=kT, seed=seed)
        start = random_spins(16, np.random.default_rng(seed))
        frames += [f.spins for f in llg.run(start, 20, every=4, energy=False)]
    assert rec["n_frames"] == len(frames) == 12
    kT_el = system["model"]["kT"]
    ham = ed.hamiltonian
    levels = [np.linalg.eigvalsh(ham.dense(s)) for s in frames]
    filling = np.mean([fermi(e, rec["mu"], kT_el).sum() / 32 for e in levels])
    assert filling == pytest.approx(0.25, abs=1e-6)
    resolved = workflow.resolve_label_mu(system, [tmp_path / "label_mu.json"])
    assert resolved["sample"]["label_mu"] == rec["mu"]
    workflow.sample(resolved, "eq", 0, tmp_path / "chunk0.zarr")
    assert open_store(tmp_path / "chunk0.zarr").attrs["mu"] == pytest.approx(rec["mu"])
    with pytest.raises(ValueError, match="chemical_potential"):
        workflow.resolve_label_mu(system, [])
    with pytest.raises(ValueError, match="not resolved"):
        sys_.label_solver(4)
