import json

import numpy as np
import pytest

from mllg import textures as tx
from mllg.dynamics import LLG
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.io import open_store, provenance
from mllg.lattice import make_lattice
from mllg.runs import run_llg


class Crashing:
    """Field provider that dies after a number of calls, like a killed job."""

    def __init__(self, inner, calls):
        self.inner, self.left = inner, calls

    def __call__(self, spins):
        self.left -= 1
        if self.left < 0:
            raise KeyboardInterrupt("killed")
        return self.inner(spins)

    def solve(self, spins):
        self(spins)
        return self.inner.solve(spins)


def test_interrupted_langevin_run_resumes_identically(tmp_path):
    lat = make_lattice("square", 4)
    ed = ExactDiagonalization(SdHamiltonian(lat, J=3.0), Ensemble.canonical(0.4))
    s0 = tx.random_spins(lat.N, 2)
    attrs = {"solver": "ed", "provenance": provenance({"test": 1})}

    def llg(provider):
        return LLG(provider, alpha=0.3, dt=0.05, kT=0.2, seed=99)

    run_llg(llg(ed), lat, s0, tmp_path / "full.zarr", 60, 5, attrs)
    for calls in (17, 40, 75):  # die at several points, resume each time
        with pytest.raises(KeyboardInterrupt):
            run_llg(llg(Crashing(ed, calls)), lat, s0, tmp_path / "cut.zarr", 60, 5, attrs)
    run_llg(llg(ed), lat, s0, tmp_path / "cut.zarr", 60, 5, attrs)
    full, cut = open_store(tmp_path / "full.zarr"), open_store(tmp_path / "cut.zarr")
    assert full.sizes["frame"] == cut.sizes["frame"] == 13
    np.testing.assert_array_equal(full["step"].values, np.arange(0, 61, 5))
    np.testing.assert_array_equal(full["spins"].values, cut["spins"].values)
    np.testing.assert_array_equal(full["energy"].values, cut["energy"].values)
    assert json.loads(full.attrs["rng_state"]) == json.loads(cut.attrs["rng_state"])


def test_engine_runs_an_exact_solver_with_contract_attrs(tmp_path):
    """The production engine with an ED provider: contract attrs, energy recorded, and
    a damped T = 0 run lowers the energy at every saved frame."""
    from mllg.production import RunConfig, run

    lat = make_lattice("triangular", 4)
    ed = ExactDiagonalization(SdHamiltonian(lat, J=2.0), Ensemble.canonical(0.25))
    cfg = RunConfig(kT=0.0, alpha=1.0, dt=0.2, n_steps=40, save_every=10, seed=3)
    attrs = {"t1": 1.0, "t2": 0.0, "t3": 0.0, "J": 2.0, "kT": 0.0, "filling": 0.25}
    out = run(ed, lat, tmp_path / "t.zarr", cfg, attrs={**attrs, "solver": "ed"})
    ds = open_store(tmp_path / "t.zarr")
    for key in ("lattice", "Lx", "Ly", "t1", "t2", "t3", "J", "kT", "filling", "solver"):
        assert key in ds.attrs
    assert ds.attrs["solver"] == "ed" and ds.sizes["frame"] == out["n_frames"] == 5
    assert ds.attrs["provider_identity"]["kind"] == "ExactDiagonalization"
    assert np.all(np.diff(ds["energy"].values) < 0)  # damped, T = 0: energy decreases


RELAX_SCRIPT = """
import sys
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import make_lattice
from mllg.production import RunConfig, run
lat = make_lattice("square", 6)
ed = ExactDiagonalization(SdHamiltonian(lat, J=3.0), Ensemble.canonical(0.4))
cfg = RunConfig(kT=0.3, alpha=0.3, dt=0.05, n_steps=1200, save_every=4, seed=5)
run(ed, lat, sys.argv[1] + "/t.zarr", cfg, attrs={"solver": "ed"})
"""


QUENCH_SCRIPT = """
import sys
import torch
from mllg.lattice import make_lattice
from mllg.nn import BPModel, ModelConfig, save_model
from mllg.production import main
from pathlib import Path
model = Path(sys.argv[1]) / "model"
if not model.exists():
    torch.manual_seed(0)
    save_model(BPModel(make_lattice("triangular", 6), ModelConfig()), model)
main(["--model", str(model), "--lattice", "triangular", "--L", "16", "--kT", "0.05",
      "--alpha", "0.3", "--dt", "0.05", "--n-steps", "400", "--save-every", "4",
      "--seed", "5", "--threads", "1", "--out", sys.argv[1] + "/t.zarr"])
"""


def _committed_frames(store):
    """Frames a trajectory store marks complete (its ``n_frames`` attribute), 0 if none."""
    try:
        meta = json.loads((store / "zarr.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return int(meta.get("attributes", {}).get("n_frames", 0))


def _kill_9_and_resume(tmp_path, script, n_frames, variables):
    """Run ``script`` once uninterrupted, then kill -9 it at random moments and resume.

    The first kill waits for the first committed frame, so that at least one kill
    lands mid-run (a store with 1 to ``n_frames - 1`` frames, checked) and the resume
    path is exercised; the others fall at random moments (start-up included).
    """
    import os
    import shutil
    import signal
    import subprocess
    import sys
    import time

    def start(out):
        out.mkdir(exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.Popen([sys.executable, "-c", script, str(out)], env=env)

    full = start(tmp_path / "full")
    t0 = time.perf_counter()
    assert full.wait(timeout=600) == 0
    run_time = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    cut = tmp_path / "cut"
    if (tmp_path / "full" / "model").exists():
        shutil.copytree(tmp_path / "full" / "model", cut / "model")
    store = cut / "t.zarr"
    landed = []  # committed frames right after each kill
    for attempt in range(4):
        proc = start(cut)
        if attempt == 0:
            while _committed_frames(store) < 1 and proc.poll() is None:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.1) * run_time)
        else:
            time.sleep(rng.uniform(0.25, 0.55) * run_time)  # start-up ~2 s, then the run
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            landed.append(_committed_frames(store))
    assert len(landed) >= 2, landed
    assert any(0 < n < n_frames for n in landed), landed  # a kill mid-run, then resumed
    assert start(cut).wait(timeout=600) == 0
    a, b = open_store(tmp_path / "full" / "t.zarr"), open_store(cut / "t.zarr")
    assert a.sizes["frame"] == b.sizes["frame"] == n_frames
    for var in variables:
        np.testing.assert_array_equal(a[var].values, b[var].values)


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_gives_identical_frames(tmp_path):
    _kill_9_and_resume(tmp_path, RELAX_SCRIPT, 301, ("step", "spins", "fields"))


@pytest.mark.slow
def test_kill_9_ml_quench_cli_then_resume_gives_identical_frames(tmp_path):
    """The production CLI (float32 ML fields, Langevin noise) after repeated kill -9."""
    _kill_9_and_resume(tmp_path, QUENCH_SCRIPT, 101, ("step", "spins", "fields", "energy"))
