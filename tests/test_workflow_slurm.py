"""The workflow through a real one-node SLURM cluster matches a local run.

Starts munged, slurmctld and slurmd on this machine (:mod:`slurm_cluster`), runs a reduced
relax (4x4 triangular, 40 steps) with ``--workflow-profile workflow/profiles/slurm``, checks
that the jobs went through SLURM with the rule's resources (runtime, mem_mb, threads), and
that every output equals a local run of the same config. The daemons are stopped by PID.

Needs root and the Debian packages slurm-wlm and munge (``make setup``). Where they are
missing the test is skipped with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml
from slurm_cluster import SlurmCluster, unavailable_reason

from mllg.io import open_store

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
SMALL = {"L": 4, "n_steps": 40, "save_every": 10}


def _snakemake(workdir: Path, configfile: Path, *args: str, env=None, timeout: float = 300):
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += ["--directory", str(workdir), "--configfile", str(configfile), "--cores", "2", *args]
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    res.output = res.stdout + res.stderr
    return res


def _require_slurm() -> None:
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true but the SLURM workflow test cannot run: {reason}")
    pytest.skip(f"SLURM workflow test not run: {reason}")


def _job_resources(output: str, rule: str) -> dict[str, str]:
    """The ``resources:`` line that snakemake printed for ``rule``, as a dict."""
    m = re.search(rf"rule {rule}:\n(?:\s+\w+: .*\n)*?\s+resources: (.*)\n", output)
    assert m, f"no resources line for rule {rule}:\n{output}"
    return dict(kv.split("=", 1) for kv in m.group(1).split(", "))


def _scontrol_job(jobid: str, env: dict) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", jobid], capture_output=True, text=True, env=env, timeout=10
    ).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


# snakemake's directory() marker file inside the zarr store
@pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp")
def test_relax_through_slurm_matches_local_run(tmp_path):
    _require_slurm()
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["relax"].update(SMALL)
    configfile = tmp_path / "small.yaml"
    configfile.write_text(yaml.safe_dump(cfg))

    local = _snakemake(tmp_path / "local", configfile)
    assert local.returncode == 0, local.output

    cluster = SlurmCluster(tmp_path / "cluster")
    pids: dict[str, int] = {}
    try:
        cluster.start()
        pids = cluster.pids
        res = _snakemake(
            tmp_path / "slurm",
            configfile,
            "--workflow-profile",
            str(PROFILE),
            "--slurm-init-seconds-before-status-checks",
            "2",
            env=cluster.env,
            timeout=240,
        )
        assert res.returncode == 0, res.output + "\n" + cluster.log_tail()
        jobids = re.findall(r"submitted with SLURM jobid (\d+)", res.output)
        assert len(jobids) == 1, res.output  # `relax`; `all` is a local rule
        job = _scontrol_job(jobids[0], cluster.env)
        assert job.get("JobState") == "COMPLETED", job
        assert job.get("ExitCode") == "0:0", job
        # the profile maps the rule's resources to sbatch options
        want = _job_resources(res.output, "relax")
        assert job["TimeLimit"] == f"00:{int(want['runtime']):02d}:00", (job, want)
        assert job["MinMemoryNode"] == f"{want['mem_mb']}M", (job, want)
        assert job["NumCPUs"] == "1" and job["CPUs/Task"] == "1", job  # threads: 1
    finally:
        cluster.stop()
    for name, pid in pids.items():
        assert not _pid_alive(pid), f"{name} (PID {pid}) still runs after stop()"
    assert not Path("/etc/slurm/slurm.conf").is_symlink()

    a = tmp_path / "local" / "results" / "relax"
    b = tmp_path / "slurm" / "results" / "relax"
    assert json.loads((a / "summary.json").read_text()) == json.loads(
        (b / "summary.json").read_text()
    )
    ta, tb = open_store(a / "trajectory.zarr").load(), open_store(b / "trajectory.zarr").load()
    xr.testing.assert_identical(ta, tb)  # every array, coordinate and attribute
    assert ta.sizes["frame"] == SMALL["n_steps"] // SMALL["save_every"] + 1
    assert (b / "final_texture.png").stat().st_size > 1000
    assert (b / "logs" / "relax.log").exists()


@pytest.mark.parametrize(("ci", "outcome"), [("true", "fail"), ("", "skip")])
def test_missing_slurm_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setattr(sys.modules[__name__], "unavailable_reason", lambda: "no slurmctld")
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="no slurmctld"):
        _require_slurm()
