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
from mllg.studies import relax


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


def test_relax_study_writes_contract_outputs(tmp_path):
    cfg = dict(
        lattice="triangular",
        L=4,
        J=2.0,
        filling=0.25,
        alpha=1.0,
        dt=0.2,
        n_steps=40,
        save_every=10,
        seed=3,
    )
    out = relax(cfg, tmp_path / "t.zarr", tmp_path / "f.png", tmp_path / "s.json")
    ds = open_store(tmp_path / "t.zarr")
    for key in ("lattice", "Lx", "Ly", "t1", "t2", "t3", "J", "kT", "filling", "solver"):
        assert key in ds.attrs
    assert ds.attrs["solver"] == "ed" and ds.sizes["frame"] == 5
    assert json.loads((tmp_path / "s.json").read_text()) == out
    assert (tmp_path / "f.png").stat().st_size > 10_000
    assert np.all(np.diff(ds["energy"].values) < 0)  # damped, T = 0: energy decreases


RELAX_SCRIPT = """
import sys
from mllg.studies import relax
cfg = dict(lattice="square", L=6, J=3.0, filling=0.4, alpha=0.3, dt=0.05, kT_bath=0.3,
           n_steps=1200, save_every=4, seed=5)
relax(cfg, sys.argv[1] + "/t.zarr", sys.argv[1] + "/f.png", sys.argv[1] + "/s.json")
"""


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_gives_identical_frames(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    def start(out):
        out.mkdir(exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.Popen([sys.executable, "-c", RELAX_SCRIPT, str(out)], env=env)

    full = start(tmp_path / "full")
    assert full.wait(timeout=600) == 0
    rng = np.random.default_rng(0)
    cut = tmp_path / "cut"
    kills = 0
    for _ in range(4):
        proc = start(cut)
        time.sleep(rng.uniform(2.5, 6.0))  # start-up takes ~2 s, the run ~10-20 s
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            kills += 1
    assert kills >= 2
    assert start(cut).wait(timeout=600) == 0
    a, b = open_store(tmp_path / "full" / "t.zarr"), open_store(cut / "t.zarr")
    assert a.sizes["frame"] == b.sizes["frame"] == 301
    np.testing.assert_array_equal(a["step"].values, b["step"].values)
    np.testing.assert_array_equal(a["spins"].values, b["spins"].values)
    np.testing.assert_array_equal(a["fields"].values, b["fields"].values)
