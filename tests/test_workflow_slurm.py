"""The workflow through a real one-node SLURM cluster matches a local run.

Starts munged, slurmctld and slurmd on this machine (:mod:`slurm_cluster`), runs the
reduced workflow of ``test_workflow.TINY`` (every stage of one system: sample, featurize,
train, validate, simulate, analyze, figures, summary) with ``--workflow-profile
workflow/profiles/slurm``, checks that every job went through SLURM with the rule's
resources (runtime, mem_mb, threads), and that every output equals a local run of the
same config (zarr stores: arrays, coordinates, attributes; JSON files: all values except
wall-clock timings). The daemons are stopped by PID.

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
from test_workflow import TINY, TINY_JOBS, without_timings

from mllg.io import open_store

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
# threads per job in both runs (--cores 2 caps local jobs; nothing caps SLURM jobs but this)
MAX_THREADS = min(2, os.cpu_count() or 1)


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


def _job_blocks(output: str) -> dict[str, dict[str, str]]:
    """Rule -> {field: value} of the job blocks snakemake printed (last one per rule)."""
    blocks = {}
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:    \w+: .*\n?)*)", output, re.M):
        blocks[m.group(1)] = dict(line.strip().split(": ", 1) for line in m.group(2).splitlines())
    return blocks


def _resources(fields: dict[str, str]) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in fields["resources"].split(", "))


def _scontrol_job(jobid: str, env: dict) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", jobid], capture_output=True, text=True, env=env, timeout=10
    ).stdout
    return dict(tok.split("=", 1) for tok in out.split() if "=" in tok)


def _stable(path: Path) -> xr.Dataset:
    """A store, loaded, without the git commit of its provenance (others may commit
    between the two runs)."""
    ds = open_store(path).load()
    prov = ds.attrs.get("provenance")
    if isinstance(prov, str):
        prov = json.loads(prov)
    if isinstance(prov, dict):
        ds.attrs["provenance"] = {k: v for k, v in prov.items() if k != "git_commit"}
    return ds


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


# snakemake's directory() marker file inside the zarr stores
@pytest.mark.filterwarnings("ignore:Object at .snakemake_timestamp")
def test_workflow_through_slurm_matches_local_run(tmp_path):
    _require_slurm()
    configfile = tmp_path / "tiny.yaml"
    configfile.write_text(yaml.safe_dump(TINY))

    local = _snakemake(tmp_path / "local", configfile, "--max-threads", str(MAX_THREADS))
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
            "--max-threads",
            str(MAX_THREADS),
            env=cluster.env,
            timeout=420,
        )
        assert res.returncode == 0, res.output + "\n" + cluster.log_tail()
        submitted = re.findall(
            r"submitted with SLURM jobid (\d+) \(log: .*/rule_(\w+)/", res.output
        )
        blocks = _job_blocks(res.output)
        remote = {rule for rule, f in blocks.items() if "output" in f}  # `all` runs locally
        assert {rule for _, rule in submitted} == remote == set(TINY_JOBS) - {"all"}, res.output
        assert len(submitted) == sum(TINY_JOBS.values()) - 1, res.output
        for jobid, rule in submitted:
            job = _scontrol_job(jobid, cluster.env)
            assert job.get("JobState") == "COMPLETED" and job.get("ExitCode") == "0:0", job
            # the profile maps the rule's threads and resources to sbatch options
            want = _resources(blocks[rule])
            hours, minutes = divmod(int(want["runtime"]), 60)
            assert job["TimeLimit"] == f"{hours:02d}:{minutes:02d}:00", (rule, job, want)
            assert job["MinMemoryNode"] == f"{want['mem_mb']}M", (rule, job, want)
            threads = blocks[rule].get("threads", "1")
            assert job["CPUs/Task"] == threads and job["NumCPUs"] == threads, (rule, job)
    finally:
        cluster.stop()
    for name, pid in pids.items():
        assert not _pid_alive(pid), f"{name} (PID {pid}) still runs after stop()"
    assert not Path("/etc/slurm/slurm.conf").is_symlink()

    # every result equals the local run's: stores (arrays, coords, attrs) and JSON files
    a, b = tmp_path / "local" / "results", tmp_path / "slurm" / "results"
    files = sorted(
        rel
        for rel in (p.relative_to(a) for p in a.rglob("*"))
        if rel.suffix in (".zarr", ".json") and not any(q.endswith(".zarr") for q in rel.parts[:-1])
    )
    system = TINY["system"]
    for must in ("summary.json", "simulate/eq/seed0.zarr", "data/eq/chunk1.zarr"):
        assert Path(system, must) in files, must
    for rel in files:
        if rel.suffix == ".json":
            want = without_timings(json.loads((a / rel).read_text()))
            assert want == without_timings(json.loads((b / rel).read_text())), rel
        else:
            xr.testing.assert_identical(_stable(a / rel), _stable(b / rel))
    skip = ("benchmarks", "logs", "checkpoints")
    local_files = {p.relative_to(a) for p in a.rglob("*") if not set(skip) & set(p.parts)}
    slurm_files = {p.relative_to(b) for p in b.rglob("*") if not set(skip) & set(p.parts)}
    assert local_files == slurm_files
    sim = TINY["systems"][system]["simulate"]
    frames = open_store(b / system / "simulate" / "eq" / "seed0.zarr").sizes["frame"]
    assert frames == sim["n_steps"] // sim["save_every"] + 1


@pytest.mark.parametrize(("ci", "outcome"), [("true", "fail"), ("", "skip")])
def test_missing_slurm_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    monkeypatch.setattr(sys.modules[__name__], "unavailable_reason", lambda: "no slurmctld")
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="no slurmctld"):
        _require_slurm()
