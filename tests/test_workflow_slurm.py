"""The workflow through a real one-node SLURM cluster matches a local run.

Starts munged, slurmctld and slurmd on this machine (:mod:`slurm_cluster`), runs the
reduced workflow of ``test_workflow.TINY`` (every stage of one system: sample, featurize,
train, validate, simulate, analyze, figures, summary) with ``--workflow-profile
workflow/profiles/slurm``, checks that every job went through SLURM with the rule's
resources (runtime, mem_mb, threads), and that every output equals a local run of the
same config (zarr stores: arrays, coordinates, attributes; JSON files: all values except
wall-clock timings). The cluster has a CPU partition (default) and a GPU partition with a
GRES ``gpu``; the runs use the profile's partition file (``slurm-partition-config``). In
the same cluster: a ``simulate`` job killed by SLURM at its walltime is retried and
continues its store, ending equal to an uninterrupted local run; and a ``train`` job
that asks for a GPU lands in the GPU partition with the GPU allocated (the job then stops
with one sentence, as the test node's GPU is a dummy device). The daemons are stopped by
PID.

Needs root and the Debian packages slurm-wlm and munge (``make setup``). Where they are
missing the test is skipped with the reason, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import xarray as xr
import yaml
from slurm_cluster import SlurmCluster, require_slurm
from test_workflow import TINY, TINY_JOBS, without_timings

from mllg.io import open_store
from mllg.workflow.resources import LOCAL_RULES

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
PROFILE = REPO / "workflow" / "profiles" / "slurm"
# threads per job in both runs (--cores 2 caps local jobs; nothing caps SLURM jobs but this)
MAX_THREADS = min(2, os.cpu_count() or 1)


def _command(workdir: Path, configfile: Path, *args: str) -> list[str]:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += ["--directory", str(workdir), "--configfile", str(configfile), "--cores", "2", *args]
    workdir.mkdir(parents=True, exist_ok=True)
    return cmd


def _snakemake(workdir: Path, configfile: Path, *args: str, env=None, timeout: float = 300):
    cmd = _command(workdir, configfile, *args)
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    res.output = res.stdout + res.stderr
    return res


def _start(workdir: Path, configfile: Path, *args: str, env=None) -> subprocess.Popen:
    """A snakemake run in the background (output in ``workdir/snakemake.out``)."""
    cmd = _command(workdir, configfile, *args)
    env = {**(env or os.environ), "OMP_NUM_THREADS": "1"}
    out = (workdir / "snakemake.out").open("w")
    return subprocess.Popen(cmd, cwd=workdir, stdout=out, stderr=subprocess.STDOUT, env=env)


def _finish(proc: subprocess.Popen, workdir: Path, timeout: float) -> str:
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return (workdir / "snakemake.out").read_text()


def _submitted(output: str) -> list[tuple[str, str]]:
    """(jobid, rule) of every job the SLURM plugin submitted."""
    return re.findall(r"submitted with SLURM jobid (\d+) \(log: .*/rule_(\w+)/", output)


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


def _committed_frames(store: Path) -> int:
    try:
        return int(json.loads((store / "zarr.json").read_text())["attributes"]["n_frames"])
    except (OSError, KeyError, ValueError):
        return 0


def test_workflow_through_slurm_matches_local_run(tmp_path):
    require_slurm("SLURM workflow test")
    configfile = tmp_path / "tiny.yaml"
    configfile.write_text(yaml.safe_dump(TINY))

    # the local reference runs while the SLURM run below mostly waits for the scheduler
    local = _start(tmp_path / "local", configfile, "--max-threads", str(MAX_THREADS))

    cluster = SlurmCluster(tmp_path / "cluster")
    pids: dict[str, int] = {}
    try:
        cluster.start()
        pids = cluster.pids
        profile = (
            "--workflow-profile",
            str(PROFILE),
            "--slurm-partition-config",
            str(cluster.write_partitions_file(tmp_path / "partitions.yaml")),
            "--slurm-init-seconds-before-status-checks",
            "2",
            "--max-threads",
            str(MAX_THREADS),
        )
        res = _snakemake(tmp_path / "slurm", configfile, *profile, env=cluster.env, timeout=420)
        assert res.returncode == 0, res.output + "\n" + cluster.log_tail()
        local_out = _finish(local, tmp_path / "local", timeout=300)
        assert local.returncode == 0, local_out
        submitted = _submitted(res.output)
        blocks = _job_blocks(res.output)
        # the seconds-long rules (and `all`) run inside Snakemake, everything else is a job
        local = set(re.findall(r"^localrule (\w+):", res.output, re.M))
        assert local == (set(TINY_JOBS) & set(LOCAL_RULES)) | {"all"}, res.output
        remote = set(TINY_JOBS) - local
        assert {rule for _, rule in submitted} == remote, res.output
        assert len(submitted) == sum(TINY_JOBS[r] for r in remote), res.output
        for jobid, rule in submitted:
            job = _scontrol_job(jobid, cluster.env)
            assert job.get("JobState") == "COMPLETED" and job.get("ExitCode") == "0:0", job
            assert job["Partition"] == cluster.cpu_partition, (rule, job)  # no GPU asked
            # the profile maps the rule's threads and resources to sbatch options
            want = _resources(blocks[rule])
            hours, minutes = divmod(int(want["runtime"]), 60)
            assert job["TimeLimit"] == f"{hours:02d}:{minutes:02d}:00", (rule, job, want)
            assert job["MinMemoryNode"] == f"{want['mem_mb']}M", (rule, job, want)
            threads = blocks[rule].get("threads", "1")
            assert job["CPUs/Task"] == threads and job["NumCPUs"] == threads, (rule, job)
        _compare_runs(tmp_path / "local" / "results", tmp_path / "slurm" / "results")
        # the GPU check runs while the killed job's retry computes
        gpu_check = partial(_gpu_job_lands_in_the_gpu_partition, tmp_path, cluster, profile)
        _walltime_kill_resumes(tmp_path, cluster, profile, while_retrying=gpu_check)
    finally:
        cluster.stop()
    for name, pid in pids.items():
        assert not _pid_alive(pid), f"{name} (PID {pid}) still runs after stop()"
    assert not Path("/etc/slurm/slurm.conf").is_symlink()


def _compare_runs(a: Path, b: Path) -> None:
    """Every result of the SLURM run equals the local run's: stores (arrays, coords,
    attrs) and JSON files; the same files exist."""
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


def _walltime_kill_resumes(
    tmp_path: Path, cluster: SlurmCluster, profile: tuple, while_retrying=lambda: None
) -> None:
    """A longer simulate job (40,000 steps: 42-76 s, more than the up to 32 s SLURM takes
    to act on an expired limit, so it is still stepping when killed) is killed by SLURM's
    time limit once it has committed frames; the retry continues its store, and the result equals an
    uninterrupted local run of the same config (run at the same time, on the other core)."""
    system = TINY["system"]
    cfg = json.loads(json.dumps(TINY))
    n_steps, every = 40000, 400
    cfg["systems"][system]["simulate"].update({"n_steps": n_steps, "save_every": every})
    configfile = tmp_path / "long.yaml"
    configfile.write_text(yaml.safe_dump(cfg))
    until = ("--forcerun", "simulate", "--until", "simulate")
    for name in ("local", "slurm"):
        shutil.copytree(tmp_path / name, tmp_path / f"{name}_long", ignore=_snakemake_state)
    local = _start(tmp_path / "local_long", configfile, *until)
    remote = _start(tmp_path / "slurm_long", configfile, *profile, *until, env=cluster.env)
    work = (
        tmp_path / "slurm_long" / "results" / system / "simulate" / "eq" / "seed0.zarr.incomplete"
    )
    deadline = time.monotonic() + 120
    while _committed_frames(work) < 2 and time.monotonic() < deadline and remote.poll() is None:
        time.sleep(0.5)
    running = subprocess.run(
        ["squeue", "-h", "-t", "R", "-o", "%i"], env=cluster.env, capture_output=True, text=True
    ).stdout.split()
    assert len(running) == 1 and _committed_frames(work) >= 2, (running, _committed_frames(work))
    killed = running[0]
    frames_at_kill = _committed_frames(work)
    cluster.expire(killed)
    while_retrying()
    out = _finish(remote, tmp_path / "slurm_long", timeout=300)
    assert remote.returncode == 0, out + "\n" + cluster.log_tail()
    local_out = _finish(local, tmp_path / "local_long", timeout=120)
    assert local.returncode == 0, local_out
    job = cluster.job(killed)
    assert job["JobState"] == "TIMEOUT" and job["Reason"] == "TimeLimit", job
    jobs = [jobid for jobid, rule in _submitted(out) if rule == "simulate"]
    assert jobs[0] == killed and len(jobs) == 2, out  # the retry
    retry = cluster.job(jobs[1])
    assert retry["JobState"] == "COMPLETED", retry
    # the retry asked for more time (attempt 2) and continued from the committed frames
    assert _minutes(retry["TimeLimit"]) > _minutes(job["TimeLimit"]), (job, retry)
    log = tmp_path / "slurm_long" / "results" / system / "logs" / "simulate" / "eq" / "seed0.log"
    steps = re.search(rf"steps (\d+) -> {n_steps}", log.read_text())
    assert steps and int(steps.group(1)) >= (frames_at_kill - 1) * every, log.read_text()
    a = tmp_path / "local_long" / "results" / system / "simulate" / "eq" / "seed0.zarr"
    b = tmp_path / "slurm_long" / "results" / system / "simulate" / "eq" / "seed0.zarr"
    xr.testing.assert_identical(_stable(a), _stable(b))
    assert _stable(b).sizes["frame"] == n_steps // every + 1


def _gpu_job_lands_in_the_gpu_partition(
    tmp_path: Path, cluster: SlurmCluster, profile: tuple
) -> None:
    """train with train.gpu = 1: the plugin sends the job to the GPU partition and SLURM
    allocates it the GRES gpu; the job stops with one sentence (the node's GPU is a
    dummy device). Snakemake is killed once the job has ended (it would otherwise keep
    polling for up to a minute before reporting the failure)."""
    system = TINY["system"]
    cfg = json.loads(json.dumps(TINY))
    cfg["systems"][system]["train"]["gpu"] = 1
    configfile = tmp_path / "gpu.yaml"
    configfile.write_text(yaml.safe_dump(cfg))
    workdir = tmp_path / "slurm"
    args = ("--forcerun", "train", "--until", "train", "--retries", "0")
    proc = _start(workdir, configfile, *profile, *args, env=cluster.env)
    try:
        deadline = time.monotonic() + 60
        while not _submitted((workdir / "snakemake.out").read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, _finish(proc, workdir, 1)
            time.sleep(0.5)
        (jobid, rule), *_ = _submitted((workdir / "snakemake.out").read_text())
        assert rule == "train"
        running = cluster.wait_job(jobid, ("RUNNING", "COMPLETED", "FAILED"), timeout=30)
        allocated = cluster.job(jobid, detail=True)
        job = cluster.wait_job(jobid, ("COMPLETED", "FAILED"), timeout=60)
    finally:  # the job has ended; Snakemake's lock in this workdir does not matter now
        proc.kill()
        _finish(proc, workdir, 30)
    assert job["Partition"] == cluster.gpu_partition and "gpu:1" in job["TresPerJob"], job
    if running.get("JobState") == "RUNNING":  # allocation details exist while it runs
        assert allocated.get("JOB_GRES", "").startswith("gpu"), allocated
    assert job["JobState"] == "FAILED", job
    log = workdir / "results" / system / "logs" / "train" / "eq" / "seed0.log"
    last = log.read_text().strip().splitlines()[-1]
    assert last.startswith("rule train: error:") and "train.gpu" in last, last


def _minutes(limit: str) -> int:
    hours, minutes, _ = (int(x) for x in limit.split("-")[-1].split(":"))
    return 60 * hours + minutes


def _snakemake_state(folder: str, names: list[str]) -> list[str]:
    """copytree ignore: Snakemake's own state (locks, metadata) stays with its workdir."""
    return [n for n in names if n in (".snakemake", "snakemake.out")]
