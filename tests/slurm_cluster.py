"""A throw-away one-node SLURM cluster on this machine, for the workflow's SLURM tests.

Starts ``munged`` (unless one already answers), ``slurmctld`` and ``slurmd`` in the
foreground as child processes, with a ``slurm.conf`` written under a temporary directory
and symlinked to ``/etc/slurm/slurm.conf`` (jobs need it there: the executor plugin's job
step strips ``SLURM_*`` variables, so ``SLURM_CONF`` alone fails inside jobs). The node is
``NodeName=localhost NodeAddr=127.0.0.1`` with the CPUs and memory that ``slurmd -C``
reports; no accounting database (``--slurm-status-command squeue`` works because finished
jobs stay visible for ``MinJobAge=300`` s). Everything is stopped by PID on exit, and the
symlink is removed.

It models what a real GPU site enforces:

- two partitions on the node: ``cpu`` (the default, where jobs without ``-p`` go) and
  ``gpu``; the node has one GRES ``gpu`` (``GresTypes=gpu``, ``Gres=gpu:1``, and a
  ``gres.conf`` with ``AutoDetect=off`` and ``Name=gpu File=<root>/dev/nvidia0``, a
  character device with the numbers of ``/dev/null``: slurmd 22.05 rejects a plain file).
  A job with ``-p gpu --gpus=1`` runs with ``CUDA_VISIBLE_DEVICES=0``. Without
  accounting (slurmdbd) GPUs cannot be a TRES (``AccountingStorageTRES=gres/gpu`` stops
  slurmctld), so ``scontrol show job`` shows them as ``TresPerJob=gres:gpu:1`` and, with
  ``-d``, ``JOB_GRES=gpu:1``; nothing keeps a GPU job out of ``cpu`` (that would need a
  partition QOS, i.e. slurmdbd).
- walltime: ``OverTimeLimit=0`` and ``KillWait=2``. slurmctld checks time limits every
  30 s (fixed in 22.05, no option), so ``sbatch -t 1`` ends in ``TIMEOUT`` 60-90 s after
  it starts (measured: 89 s after submission); :meth:`SlurmCluster.expire` sets a running
  job's limit to 0 and it ends in ``TIMEOUT`` at the next check (measured: 26-28 s).
- :meth:`SlurmCluster.write_partitions_file` writes the two partitions for the Snakemake
  SLURM plugin's ``--slurm-partition-config``.

Needs root and the Debian packages ``slurm-wlm`` and ``munge`` (``make setup`` installs
them). Use :func:`unavailable_reason` to decide whether the cluster can run here.

Example
-------
>>> with SlurmCluster(tmp_path) as cluster:  # doctest: +SKIP
...     subprocess.run(["sbatch", "--wrap", "hostname"], env=cluster.env, check=True)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

ETC_CONF = Path("/etc/slurm/slurm.conf")
MUNGE_DIR = Path("/run/munge")
LOCK_FILE = Path("/tmp/mllg-slurm-cluster.lock")
BINARIES = ("munged", "munge", "unmunge", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue")


def unavailable_reason() -> str | None:
    """Why a one-node cluster cannot be started here, or None when it can.

    Returns
    -------
    str or None
        A sentence naming what is missing (root, a binary, a foreign slurm.conf).
    """
    if os.name != "posix" or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "the one-node SLURM cluster needs root (it starts munged, slurmctld, slurmd)"
    missing = [b for b in BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if missing:
        return (
            f"SLURM/munge binaries not found: {', '.join(missing)} "
            "(install the Debian packages slurm-wlm and munge, e.g. via `make setup`)"
        )
    if ETC_CONF.exists() and not ETC_CONF.is_symlink():
        return f"{ETC_CONF} is a real file (a configured cluster?); refusing to replace it"
    if not Path("/etc/munge/munge.key").exists():
        return "/etc/munge/munge.key is missing (reinstall the munge package)"
    return None


def require_slurm(what: str) -> None:
    """Skip the calling test when no cluster can start here, naming why; under
    ``CI=true`` fail instead (CI must run the SLURM tests).

    Parameters
    ----------
    what : str
        The tests, for the message (e.g. ``"SLURM workflow test"``).
    """
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"CI=true but the {what} cannot run: {reason}")
    pytest.skip(f"{what} not run: {reason}")


def _which(name: str) -> str:
    path = shutil.which(name) or str(Path("/usr/sbin", name))
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> dict[str, int]:
    """CPU layout and memory of this machine as ``slurmd -C`` reports them."""
    out = subprocess.run(
        [_which("slurmd"), "-C"], capture_output=True, text=True, check=True, timeout=30
    ).stdout
    fields = dict(tok.split("=", 1) for tok in out.split() if "=" in tok)
    keys = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    hw = {k: int(fields[k]) for k in keys}
    # leave a margin: a node that reports less memory than configured is drained
    hw["RealMemory"] = max(1, int(hw["RealMemory"] * 0.9))
    return hw


def _munge_works(env: dict[str, str] | None = None) -> bool:
    try:
        cred = subprocess.run(
            ["munge", "-n"], capture_output=True, check=True, timeout=10, env=env
        ).stdout
        subprocess.run(["unmunge"], input=cred, capture_output=True, check=True, timeout=10)
    except (subprocess.SubprocessError, OSError):
        return False
    return True


class SlurmCluster:
    """One-node SLURM cluster (munged, slurmctld, slurmd) living under ``root``.

    Parameters
    ----------
    root : pathlib.Path
        Empty directory for slurm.conf, state, spool, logs and PID files.
    start_timeout : float
        Seconds to wait for each daemon and for the node to become idle.

    Attributes
    ----------
    conf : pathlib.Path
        The generated slurm.conf (``/etc/slurm/slurm.conf`` links to it while running).
    env : dict
        Environment for client commands (``SLURM_CONF`` set).
    cpus : int
        CPUs of the node (known once the config is written).
    mem_mb : int
        Memory of the node in MB as configured (``RealMemory``; known once the config is
        written).
    gpus : int
        GPUs (GRES ``gpu``) of the node.
    cpu_partition : str
        Name of the default partition (``"cpu"``); jobs without ``-p`` run there.
    gpu_partition : str
        Name of the partition for GPU jobs (``"gpu"``).
    """

    def __init__(self, root: Path, start_timeout: float = 60.0) -> None:
        self.root = Path(root)
        self.start_timeout = start_timeout
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []
        self._lock = None
        self._linked = False
        self.cpus = 0
        self.mem_mb = 0
        self.gpus = 1
        self.cpu_partition = "cpu"
        self.gpu_partition = "gpu"

    # -- configuration -------------------------------------------------------------------
    def write_conf(self) -> Path:
        """Write slurm.conf, gres.conf (and an empty cgroup.conf) under ``root``.

        Returns
        -------
        pathlib.Path
            Path of the written slurm.conf.
        """
        for sub in ("state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        hw = _node_hardware()
        self.cpus = hw["CPUs"]
        self.mem_mb = hw["RealMemory"]
        r = self.root
        lines = [
            "ClusterName=mllgtest",
            "SlurmctldHost=localhost(127.0.0.1)",
            f"SlurmctldPort={_free_port()}",
            f"SlurmdPort={_free_port()}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/builtin",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MinJobAge=300",
            "ReturnToService=2",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=60",
            "InactiveLimit=0",
            "KillWait=2",
            "OverTimeLimit=0",
            "Waittime=0",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={r / 'log' / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "GresTypes=gpu",
            "NodeName=localhost NodeAddr=127.0.0.1 "
            + " ".join(f"{k}={v}" for k, v in hw.items())
            + f" Gres=gpu:{self.gpus} State=UNKNOWN",
            f"PartitionName={self.cpu_partition} Nodes=localhost Default=YES MaxTime=INFINITE"
            " State=UP",
            f"PartitionName={self.gpu_partition} Nodes=localhost MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        (self.root / "cgroup.conf").write_text("")
        devices = [self.root / "dev" / f"nvidia{i}" for i in range(self.gpus)]
        devices[0].parent.mkdir(exist_ok=True)
        for dev in devices:
            if not dev.exists():  # slurmd wants a character device: a twin of /dev/null
                os.mknod(dev, 0o666 | stat.S_IFCHR, os.stat("/dev/null").st_rdev)
        gres = [f"NodeName=localhost Name=gpu File={dev}" for dev in devices]
        (self.root / "gres.conf").write_text("\n".join(["AutoDetect=off", *gres]) + "\n")
        return self.conf

    def write_partitions_file(self, path: Path) -> Path:
        """Write the two partitions as a partition file of the Snakemake SLURM plugin.

        The format of ``--slurm-partition-config`` (snakemake-executor-plugin-slurm 2.8.0):
        ``partitions: {name: {max_threads, max_mem_mb, max_gpu}}``, with the node's CPUs
        and memory for both and ``max_gpu`` 0 for ``cpu``, :attr:`gpus` for ``gpu``. No
        ``max_runtime``: both partitions have ``MaxTime=INFINITE``. With it the plugin
        sends jobs with ``resources: gpu=1`` to ``gpu`` (``cpu`` cannot take them) and
        other jobs to ``cpu`` (it scores GPU partitions down for CPU-only jobs).

        Parameters
        ----------
        path : pathlib.Path
            Where to write the YAML file.

        Returns
        -------
        pathlib.Path
            ``path``.
        """
        if not self.cpus:  # config not written yet
            hw = _node_hardware()
            self.cpus, self.mem_mb = hw["CPUs"], hw["RealMemory"]
        node = {"max_threads": self.cpus, "max_mem_mb": self.mem_mb}
        partitions = {
            self.cpu_partition: {**node, "max_gpu": 0},
            self.gpu_partition: {**node, "max_gpu": self.gpus},
        }
        path = Path(path)
        path.write_text(yaml.safe_dump({"partitions": partitions}, sort_keys=False))
        return path

    # -- jobs ----------------------------------------------------------------------------
    def job(self, jobid: str, detail: bool = False) -> dict[str, str]:
        """The fields ``scontrol show job`` prints for a job.

        Parameters
        ----------
        jobid : str
            SLURM job id.
        detail : bool
            Use ``scontrol -d`` (adds e.g. ``JOB_GRES``, the GRES allocated to the job).

        Returns
        -------
        dict
            ``{field: value}`` (``JobState``, ``Partition``, ``TimeLimit``,
            ``TresPerJob``, ...); empty if SLURM does not know the job.
        """
        cmd = ["scontrol", *(["-d"] if detail else []), "show", "job", str(jobid)]
        res = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=10)
        if res.returncode != 0:
            return {}
        return dict(tok.split("=", 1) for tok in res.stdout.split() if "=" in tok)

    def wait_job(
        self, jobid: str, states: tuple[str, ...] | str, timeout: float = 60.0
    ) -> dict[str, str]:
        """Wait until a job is in one of ``states``.

        Parameters
        ----------
        jobid : str
            SLURM job id.
        states : str or tuple of str
            Job states to wait for (``"RUNNING"``, ``"COMPLETED"``, ``"TIMEOUT"``, ...).
        timeout : float
            Seconds to wait at most.

        Returns
        -------
        dict
            The job's fields (:meth:`job`) once its ``JobState`` is one of ``states``, or
            the last ones seen when ``timeout`` passed first (the caller checks the state).
        """
        states = (states,) if isinstance(states, str) else tuple(states)
        deadline = time.monotonic() + timeout
        while True:
            fields = self.job(jobid)
            if fields.get("JobState") in states or time.monotonic() > deadline:
                return fields
            time.sleep(0.25)

    def expire(self, jobid: str) -> None:
        """Make SLURM kill a running job for its walltime, as if its time limit had passed.

        Sets the job's time limit to 0 minutes (``scontrol update JobId=<id> TimeLimit=0``,
        as root; ``TimeLimit=00:00:01`` would be rounded up to a minute). slurmctld kills
        the job at its next time-limit check (every 30 s) with SIGTERM, SIGKILL after
        ``KillWait=2`` s; the job ends in state ``TIMEOUT`` with ``Reason=TimeLimit``
        (measured: 26-28 s after the call). Wait for it with
        ``wait_job(jobid, "TIMEOUT", timeout=45)``.

        Parameters
        ----------
        jobid : str
            SLURM job id of a running job.

        Raises
        ------
        RuntimeError
            If ``scontrol update`` refuses (unknown or finished job).
        """
        res = subprocess.run(
            ["scontrol", "update", f"JobId={jobid}", "TimeLimit=0"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if res.returncode != 0:
            raise RuntimeError(f"scontrol update JobId={jobid} TimeLimit=0: {res.stderr}")

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> SlurmCluster:
        """Start the daemons and wait until the node is idle.

        Returns
        -------
        SlurmCluster
            ``self``, for chaining.

        Raises
        ------
        RuntimeError
            If the cluster cannot run here or a daemon does not come up; the message
            includes the tail of the daemon's log. Anything started is stopped first.
        """
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(reason)
        # serialize with other test processes on this machine: /etc/slurm/slurm.conf is global
        self._lock = open(LOCK_FILE, "w")  # noqa: SIM115
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        try:
            self.write_conf()
            self._link_conf()
            self._start_munged()
            self._spawn("slurmctld", [_which("slurmctld"), "-D", "-i", "-f", str(self.conf)])
            self._wait(self._ctld_answers, "slurmctld does not answer `scontrol ping`")
            self._spawn("slurmd", [_which("slurmd"), "-D", "-N", "localhost", "-f", str(self.conf)])
            self._wait(self._node_idle, "the node localhost did not become idle")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Cancel remaining jobs, stop the daemons started here (by PID), remove the link."""
        if "slurmctld" in self._procs and self._procs["slurmctld"].poll() is None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                subprocess.run(
                    ["scancel", "--full", "--user=root"],
                    env=self.env,
                    timeout=10,
                    capture_output=True,
                )
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and self._squeue():
                    time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for fh in self._logs:
            fh.close()
        self._logs.clear()
        if self._linked and ETC_CONF.is_symlink() and os.readlink(ETC_CONF) == str(self.conf):
            ETC_CONF.unlink()
        self._linked = False
        if self._lock is not None:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def pids(self) -> dict[str, int]:
        """PIDs of the daemons started here (a reused munged is not listed)."""
        return {name: p.pid for name, p in self._procs.items()}

    def log_tail(self, n: int = 30) -> str:
        """Last ``n`` lines of every daemon log, for error messages.

        Parameters
        ----------
        n : int
            Number of lines per log.

        Returns
        -------
        str
            The log tails, each headed by its file name.
        """
        parts = []
        for log in sorted((self.root / "log").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()[-n:]
            parts.append(f"--- {log.name}\n" + "\n".join(lines))
        return "\n".join(parts)

    # -- helpers -------------------------------------------------------------------------
    def _link_conf(self) -> None:
        ETC_CONF.parent.mkdir(parents=True, exist_ok=True)
        if ETC_CONF.is_symlink():  # stale link from a killed run (we hold the lock)
            ETC_CONF.unlink()
        ETC_CONF.symlink_to(self.conf)
        self._linked = True

    def _start_munged(self) -> None:
        if _munge_works():
            return  # a munged already serves the default socket: reuse it, never stop it
        MUNGE_DIR.mkdir(mode=0o755, parents=True, exist_ok=True)
        shutil.chown(MUNGE_DIR, "munge", "munge")
        self._spawn("munged", [_which("munged"), "-F"], user="munge", group="munge")
        self._wait(_munge_works, "munged does not answer `munge -n | unmunge`")

    def _spawn(self, name: str, cmd: list[str], **kwargs) -> None:
        log = open(self.root / "log" / f"{name}.out", "w")  # noqa: SIM115
        self._logs.append(log)
        self._procs[name] = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            **kwargs,
        )

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for name, proc in self._procs.items():
                if proc.poll() is not None:
                    out = (self.root / "log" / f"{name}.out").read_text(errors="replace")
                    raise RuntimeError(
                        f"{name} exited with code {proc.returncode}: {out[-2000:]}\n"
                        + self.log_tail()
                    )
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{what} within {self.start_timeout:g} s\n{self.log_tail()}")

    def _ctld_answers(self) -> bool:
        res = subprocess.run(
            ["scontrol", "ping"], env=self.env, capture_output=True, text=True, timeout=10
        )
        return res.returncode == 0 and "UP" in res.stdout

    def _node_idle(self) -> bool:
        res = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        states = res.stdout.split()  # one line per partition the node is in
        return res.returncode == 0 and bool(states) and set(states) == {"idle"}

    def _squeue(self) -> list[str]:
        res = subprocess.run(
            ["squeue", "-h", "-t", "PD,R,CG", "-o", "%i"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return res.stdout.split()
