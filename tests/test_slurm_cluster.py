"""The one-node test cluster enforces what a real GPU site does.

Starts the cluster of :mod:`slurm_cluster` once for the module and checks that a job in
the ``gpu`` partition gets the GPU (GRES allocation, ``CUDA_VISIBLE_DEVICES``) while jobs
without a partition run in the default ``cpu`` partition; and that the partition file
the cluster writes makes the Snakemake SLURM plugin send GPU jobs to ``gpu`` and CPU jobs
to ``cpu``. (A job killed at its walltime, via :meth:`SlurmCluster.expire`, is exercised
with the workflow in ``test_workflow_slurm.py``.)

Needs root and the Debian packages slurm-wlm and munge (``make setup``). Where they are
missing the tests are skipped with the reason, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import logging
import re
import subprocess
from types import SimpleNamespace

import pytest
import slurm_cluster
from slurm_cluster import SlurmCluster, require_slurm
from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    require_slurm("SLURM cluster tests")
    cluster = SlurmCluster(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


def _sbatch(cluster: SlurmCluster, *args: str) -> str:
    res = subprocess.run(
        ["sbatch", "--parsable", "--mem=100", *args],
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr + cluster.log_tail()
    return res.stdout.strip().split(";")[0]


def test_gpu_partition_allocates_the_gpu_and_cpu_is_the_default(cluster, tmp_path):
    echo = "echo CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"
    gpu_out, cpu_out = tmp_path / "gpu.out", tmp_path / "cpu.out"
    gpu = _sbatch(
        cluster, "-p", cluster.gpu_partition, "--gpus=1", "-o", str(gpu_out), "--wrap", echo
    )
    cpu = _sbatch(cluster, "-o", str(cpu_out), "--wrap", echo)
    for jobid in (gpu, cpu):
        job = cluster.wait_job(jobid, ("COMPLETED", "FAILED", "CANCELLED"), timeout=30)
        assert job.get("JobState") == "COMPLETED", (job, cluster.log_tail())

    job = cluster.job(gpu, detail=True)
    assert job["Partition"] == cluster.gpu_partition == "gpu", job
    assert job.get("TresPerJob") == "gres:gpu:1", job  # requested
    assert job.get("JOB_GRES") == "gpu:1", job  # allocated
    assert re.fullmatch(r"CUDA_VISIBLE_DEVICES=0\n", gpu_out.read_text()), gpu_out.read_text()

    job = cluster.job(cpu, detail=True)
    assert job["Partition"] == cluster.cpu_partition == "cpu", job
    assert job.get("JOB_GRES") == "(null)" and "TresPerJob" not in job, job
    assert cpu_out.read_text() == "CUDA_VISIBLE_DEVICES=unset\n"


def _job(name: str, threads: int = 1, **resources):
    """The attributes of a Snakemake job that the plugin's partition choice reads."""
    return SimpleNamespace(name=name, threads=threads, resources=resources)


def test_partition_file_sends_gpu_jobs_to_gpu_and_cpu_jobs_to_cpu(cluster, tmp_path):
    path = cluster.write_partitions_file(tmp_path / "partitions.yaml")
    partitions = read_partition_file(path)
    assert {p.name for p in partitions} == {"cpu", "gpu"}
    log = logging.getLogger(__name__)
    train = {"runtime": 30, "mem_mb": 3000}
    assert get_best_partition(partitions, _job("train", gpu=1, **train), log) == "gpu"
    assert get_best_partition(partitions, _job("train", gpu=0, **train), log) == "cpu"
    assert get_best_partition(partitions, _job("sample", **train), log) == "cpu"
    # the file states the node's limits: more than it has fits nowhere
    assert get_best_partition(partitions, _job("train", gpu=cluster.gpus + 1), log) is None
    too_big = {"mem_mb": cluster.mem_mb + 1}
    assert get_best_partition(partitions, _job("sample", **too_big), log) is None
    assert get_best_partition(partitions, _job("s", threads=cluster.cpus + 1), log) is None
    assert get_best_partition(partitions, _job("s", threads=cluster.cpus), log) == "cpu"


@pytest.mark.parametrize(("ci", "outcome"), [("true", "fail"), ("", "skip")])
def test_missing_slurm_fails_in_ci_and_skips_elsewhere(monkeypatch, ci, outcome):
    # the skip/fail rule that both SLURM test files use (slurm_cluster.require_slurm)
    monkeypatch.setattr(slurm_cluster, "unavailable_reason", lambda: "no slurmctld")
    monkeypatch.setenv("CI", ci)
    expected = pytest.fail.Exception if outcome == "fail" else pytest.skip.Exception
    with pytest.raises(expected, match="no slurmctld"):
        require_slurm("SLURM cluster tests")
