"""Walltime and memory of every workflow job, from its config and measured unit costs.

The rules ask :func:`request` for ``runtime`` (minutes) and ``mem_mb``; a batch system
(the SLURM profile) turns them into ``sbatch -t`` and ``--mem``. The estimate of a job is
its count of expensive operations (exact field evaluations, spin-steps of the ML-LLG
engine, site-epochs of training) times the measured cost of one (:data:`UNIT_COSTS`,
one thread of this project's 2-core reference machine, from ``benchmarks/RESULTS.md``).

The request is the estimate times ``cluster.safety_factor``, times the attempt number
(a job that ran out of time asks for more on its retry), capped at
``cluster.max_runtime``. A job whose estimate exceeds that cap is not split by hand: every
long stage writes a resumable store (sample, explore, label, simulate) or checkpoint
(train), so a job killed at its walltime continues on its retry; :func:`attempts` gives
the number of attempts such a job needs, which the rules turn into ``retries``.

Costs are rough on purpose (within a factor of about two of the measured runs): a request
that is too small costs one retry, one that is far too large costs queue time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "LOCAL_RULES",
    "UNIT_COSTS",
    "Estimate",
    "attempts",
    "estimate",
    "request",
    "resource_table",
]

#: Measured unit costs, one CPU thread (seconds unless named otherwise). Sources:
#: benchmarks/RESULTS.md, sections named in the comments.
UNIT_COSTS: dict[str, float] = {
    # dense ED (fields + energy) per evaluation: c * (2N)^3; 24x24 square 4.6 s and
    # 36x36 triangular 52.6 s ("Default pipeline with the loop and the audit")
    "ed_per_dim3": 3.0e-9,
    # KPM per evaluation and site at kT_el = 0.05 with its default moments (30x30
    # double exchange, 5-6 s; "KPM" section); the moments needed grow as 1/kT above
    # kT = 0.05 and the automatic colouring falls back to exact probing below it
    # (80-115 s at kT = 0.01, i.e. about (0.05 / kT)^2)
    "kpm_per_site": 6.0e-3,
    # KPM moments at which kpm_per_site was measured (cost scales with sample.moments)
    "kpm_moments": 400.0,
    # RGF NEGF per evaluation: c * Lx * W^3 (64x1: 0.05 s, 32x4: 1.23 s; "NEGF (Kwant)")
    "negf_per_column_w3": 8.0e-4,
    # ML-LLG, plain descriptor, (64, 64) network: spin-steps per second ("ML-LLG
    # production engine", 1.3e5-5e5 measured; the lower end, float64 and small lattices)
    "ml_spin_steps_per_s": 1.0e5,
    # one message-passing step of width 32 costs about 9x the plain model's evaluation
    # ("Round 7": 167-177 ms against 19 ms at 128x128); 1 + 8 (width / 32)^2 in general
    "message_passing_factor": 9.0,
    # training, per frame and epoch: c_frame + c_site * N, nearly independent of the
    # network (batch 4: 0.011 s for 10x10 and 12x12 frames, plain (64, 64) or one
    # message-passing step; 0.012 s on the 33-site chain; "Issue 24" calibration below;
    # "Round 7": 0.006 s with batch 8 for the wide message-passing model on 12x12)
    "train_per_frame_epoch": 8.0e-3,
    "train_per_site_epoch": 3.0e-5,
    # fixed start-up of a job: Python, torch import, store opening (6-8 s measured)
    "startup": 10.0,
    # resident memory of a job before its data (torch + numpy + zarr), MB
    "base_mem_mb": 700.0,
    # training memory per site-frame held (spins, fields, neighbour lists, descriptor), MB
    "train_mb_per_site_frame": 2.0e-3,
    # ML-LLG memory per site (descriptor workspace, float32; 256x256 plain: about 1 GB)
    "ml_mb_per_site": 1.5e-2,
}

#: Rules that take seconds: run by Snakemake itself, never queued on a cluster.
LOCAL_RULES = ("analyze", "figures_equilibrium", "figures_driven", "learning_curve", "summary")

MIN_RUNTIME_MIN = 10
MIN_MEM_MB = 1000


@dataclass(frozen=True)
class Estimate:
    """Expected cost of one job: ``seconds`` of wall time on one thread, ``mem_mb`` peak."""

    seconds: float
    mem_mb: float


def _sites(cfg: Mapping[str, Any], L: int) -> int:
    model = cfg["model"]
    if model.get("lattice") == "strip":
        return int(L) * int(model.get("W", 1))
    return int(L) ** 2


def _exact_eval_seconds(cfg: Mapping[str, Any], L: int, solver: str | None = None) -> float:
    """One exact field evaluation on an L x L lattice (L x W strip for NEGF)."""
    model, sample = cfg["model"], cfg["sample"]
    solver = solver or sample["solver"]
    n = _sites(cfg, L)
    kT = float(model.get("kT") or 0.0)
    if solver == "negf":
        return UNIT_COSTS["negf_per_column_w3"] * L * int(model.get("W", 1)) ** 3
    ed = UNIT_COSTS["ed_per_dim3"] * (2 * n) ** 3
    if solver == "ed":
        return ed
    ratio = 0.05 / max(kT, 1e-3)
    per_site = UNIT_COSTS["kpm_per_site"] * (ratio if ratio <= 1 else ratio**2)
    moments = sample.get("moments")
    if moments:
        per_site *= float(moments) / UNIT_COSTS["kpm_moments"]
    kpm = per_site * n
    return kpm if solver == "kpm" else min(ed, kpm)  # auto: the faster one


def _exact_mem_mb(cfg: Mapping[str, Any], L: int, solver: str | None = None) -> float:
    solver = solver or cfg["sample"]["solver"]
    n = _sites(cfg, L)
    if solver == "ed" or (solver != "kpm" and 2 * n <= 6000):
        return 6 * 16 * (2 * n) ** 2 / 1e6  # Hamiltonian, eigenvectors and workspace
    if solver == "negf":
        return 50 * 16 * (4 * n) ** 1.5 / 1e6
    return 40 * 16 * 2 * n / 1e6 * 8  # Chebyshev vectors of the probing colours


def _network_cost(cfg: Mapping[str, Any]) -> float:
    """Evaluation cost of the configured model relative to the plain (64, 64) one: the
    summed hidden width over 128, times ``1 + 8 (message_width / 32)^2`` when
    ``train.message_r_cut > 0``."""
    train = cfg["train"]
    cost = max(sum(int(h) for h in train.get("hidden") or [64, 64]) / 128, 0.5)
    if float(train.get("message_r_cut") or 0) > 0:
        width = float(train.get("message_width") or 32)
        cost *= 1 + (UNIT_COSTS["message_passing_factor"] - 1) * (width / 32) ** 2
    return cost


def _ml_spin_step_seconds(cfg: Mapping[str, Any]) -> float:
    return _network_cost(cfg) / UNIT_COSTS["ml_spin_steps_per_s"]


def _frames_per_chunk(cfg: Mapping[str, Any]) -> int:
    sample = cfg["sample"]
    if sample["solver"] == "negf":
        return int(sample.get("configs") or 100)
    return int(sample["n_steps"]) // int(sample.get("every") or 1) + 1


def _training_frames(cfg: Mapping[str, Any], iteration: int = 0) -> int:
    """Frames of the training set: the sampled chunks plus the labels of ``iteration``
    loop iterations (at most ``max_frames + spread_frames`` each); labels only for a
    retraining on a loop lattice ``active.L`` other than ``sample.L``."""
    sample, active = cfg["sample"], cfg.get("active") or {}
    frames = int(sample["chunks"]) * _frames_per_chunk(cfg)
    if iteration and active.get("L") not in (None, sample["L"]):
        frames = 0  # the retraining on another lattice than sample.L uses the labels only
    per_iteration = int(active.get("max_frames") or 0) + int(active.get("spread_frames") or 0)
    return frames + iteration * per_iteration


def estimate(rule: str, cfg: Mapping[str, Any], gpu_speedup: float = 1.0) -> Estimate:
    """Expected wall time (one thread) and peak memory of one job of ``rule``.

    Parameters
    ----------
    rule : str
        A rule name of the workflow (``sample``, ``train``, ``simulate``, ...).
    cfg : mapping
        The validated section of one system (``config["systems"][name]``).
    gpu_speedup : float
        Speed of a GPU job's ML work (training, ML-LLG steps) over one CPU thread;
        applied to ``train``/``retrain`` when ``train.gpu >= 1`` and to ``simulate``
        when ``simulate.gpu >= 1`` (``cluster.gpu_speedup``).

    Returns
    -------
    Estimate
        Seconds and MB. Rules that take seconds (:data:`LOCAL_RULES`, figures) get the
        start-up cost only.
    """
    sample, sim = cfg["sample"], cfg["simulate"]
    base = UNIT_COSTS["base_mem_mb"]
    start = UNIT_COSTS["startup"]
    L = int(sample["L"])
    loop_L = int((cfg.get("active") or {}).get("L") or L)
    if rule == "sample":
        evals = int(sample.get("n_steps") or 0) * 2 + 1  # two evaluations per midpoint step
        if sample["solver"] == "negf":
            evals = int(sample.get("configs") or 100)
        return Estimate(start + evals * _exact_eval_seconds(cfg, L), base + _exact_mem_mb(cfg, L))
    if rule == "chemical_potential":
        evals = int(sample.get("mu_probe_steps") or 0) * 2
        return Estimate(start + evals * _exact_eval_seconds(cfg, L), base + _exact_mem_mb(cfg, L))
    if rule == "featurize":
        site_frames = _frames_per_chunk(cfg) * _sites(cfg, L)
        return Estimate(start + 2e-4 * site_frames, base + 1e-3 * site_frames)
    if rule in ("train", "retrain"):
        train, active = cfg["train"], cfg.get("active") or {}
        iteration = int(active.get("iterations") or 0) if rule == "retrain" else 0
        epochs = int(active.get("max_epochs") or 0) if rule == "retrain" else 0
        epochs = epochs or int(train["max_epochs"])
        frames = _training_frames(cfg, iteration)
        n = _sites(cfg, loop_L if rule == "retrain" else L)
        per = UNIT_COSTS["train_per_frame_epoch"] + UNIT_COSTS["train_per_site_epoch"] * n
        if int(train.get("gpu") or 0) >= 1:
            per /= gpu_speedup
        mem = base + UNIT_COSTS["train_mb_per_site_frame"] * frames * n
        return Estimate(start + epochs * frames * per, mem)
    if rule == "validate":
        val = cfg["validate"]
        speed_L = int(val.get("speed_L") or L)
        exact = int(val.get("frames") or 0) * _exact_eval_seconds(cfg, L)
        exact += 2 * int(val.get("llg_steps") or 0) * _exact_eval_seconds(cfg, L)
        exact += 6 * _exact_eval_seconds(cfg, speed_L)
        mem = base + max(_exact_mem_mb(cfg, L), _exact_mem_mb(cfg, speed_L))
        return Estimate(start + exact, mem)
    if rule == "simulate":
        n = _sites(cfg, int(sim["L"]))
        steps = int(sim["n_steps"]) + int(sim.get("relax_steps") or 0)
        secs = steps * n * _ml_spin_step_seconds(cfg) + steps * 2e-3  # + per-step overhead
        if int(sim.get("gpu") or 0) >= 1:
            secs /= gpu_speedup
        return Estimate(start + secs, base + UNIT_COSTS["ml_mb_per_site"] * n)
    if rule == "explore":
        active = cfg["active"]
        runs = int(active["quenches"]) * max(1, len(active.get("kT_bath") or [])) + int(
            active.get("perturbed") or 0
        )
        n = _sites(cfg, loop_L)
        secs = runs * int(active["n_steps"]) * (n * _ml_spin_step_seconds(cfg) + 2e-3)
        return Estimate(start + secs, base + UNIT_COSTS["ml_mb_per_site"] * n)
    if rule == "select":  # the committee on every stored exploration frame
        active = cfg["active"]
        runs = int(active["quenches"]) * max(1, len(active.get("kT_bath") or [])) + int(
            active.get("perturbed") or 0
        )
        frames = runs * (int(active["n_steps"]) // int(active.get("save_every") or 1) + 1)
        n = _sites(cfg, loop_L)
        secs = frames * n * len(cfg["train"]["seeds"]) * _ml_spin_step_seconds(cfg)
        return Estimate(start + secs, base + 3 * 4 * 3 * frames * n / 1e6)
    if rule == "label":
        active = cfg["active"]
        frames = int(active["max_frames"]) + int(active.get("spread_frames") or 0)
        solver = active.get("label_solver") or "auto"
        solver = sample["solver"] if solver == "auto" and sample["solver"] == "negf" else solver
        return Estimate(
            start + frames * _exact_eval_seconds(cfg, loop_L, solver),
            base + _exact_mem_mb(cfg, loop_L, solver),
        )
    if rule == "audit":
        audit = cfg["audit"]
        solver = audit.get("solver") or "auto"
        if cfg["kind"] == "driven":
            solver = "negf"
        sim_L = int(sim["L"])
        frames = int(audit.get("frames") or 0) * len(sim["seeds"])
        return Estimate(
            start + frames * _exact_eval_seconds(cfg, sim_L, solver),
            base + _exact_mem_mb(cfg, sim_L, solver),
        )
    if rule == "analyze":
        n = _sites(cfg, int(sim["L"]))
        frames = int(sim["n_steps"]) // int(sim["save_every"]) + 1
        site_frames = n * frames * len(sim["seeds"])
        return Estimate(start + 2e-6 * site_frames, base + 5e-5 * site_frames)
    return Estimate(start, base)


def _cluster(cluster: Mapping[str, Any] | None) -> tuple[int, float, float]:
    cluster = cluster or {}
    return (
        int(cluster.get("max_runtime") or 1440),
        float(cluster.get("safety_factor") or 2.0),
        float(cluster.get("gpu_speedup") or 1.0),
    )


def attempts(rule: str, cfg: Mapping[str, Any], cluster: Mapping[str, Any] | None) -> int:
    """Attempts a job of ``rule`` needs when each may run ``cluster.max_runtime`` minutes.

    A stage that resumes from its store continues where the killed attempt stopped, so
    ``ceil(safety * estimate / max_runtime)`` attempts finish it (at least 1).
    """
    max_runtime, safety, speedup = _cluster(cluster)
    minutes = safety * estimate(rule, cfg, speedup).seconds / 60
    return max(1, math.ceil(minutes / max_runtime))


def request(
    rule: str, cfg: Mapping[str, Any], cluster: Mapping[str, Any] | None, attempt: int = 1
) -> dict[str, int]:
    """``runtime`` (minutes) and ``mem_mb`` to request for attempt ``attempt`` of a job.

    ``runtime = min(max_runtime, max(10, ceil(safety * attempt * seconds / 60)))``;
    ``mem_mb = max(1000, ceil(safety * (1 + (attempt - 1) / 2) * mem_mb))``, rounded up
    to 100 MB. ``cluster`` is the workflow's ``cluster`` section (``max_runtime``,
    ``safety_factor``, ``gpu_speedup``).
    """
    max_runtime, safety, speedup = _cluster(cluster)
    est = estimate(rule, cfg, speedup)
    minutes = math.ceil(safety * int(attempt) * est.seconds / 60)
    mem = safety * (1 + (int(attempt) - 1) / 2) * est.mem_mb
    return {
        "runtime": int(min(max_runtime, max(MIN_RUNTIME_MIN, minutes))),
        "mem_mb": int(max(MIN_MEM_MB, 100 * math.ceil(mem / 100))),
    }


def resource_table(
    systems: Mapping[str, Mapping[str, Any]],
    jobs: Mapping[str, Mapping[str, int]],
    cluster: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    """Per system and rule: jobs, estimate, first request, attempts, CPU- and GPU-hours.

    Parameters
    ----------
    systems : mapping
        name -> validated system section.
    jobs : mapping
        name -> {rule: number of jobs} (e.g. from a Snakemake dry run).
    cluster : mapping or None
        The workflow's ``cluster`` section.

    Returns
    -------
    list of dict
        Rows with ``system``, ``rule``, ``jobs``, ``estimate_min``, ``estimate_mem_mb``,
        ``runtime_min``, ``mem_mb``, ``attempts``, ``gpu``, ``cpu_hours`` (requested
        walltime of all attempts of all jobs) and ``gpu_hours``.
    """
    rows = []
    for name, cfg in systems.items():
        for rule, count in sorted(jobs.get(name, {}).items()):
            est = estimate(rule, cfg, _cluster(cluster)[2])
            req = request(rule, cfg, cluster)
            n_att = attempts(rule, cfg, cluster)
            gpu = 0
            if rule in ("train", "retrain"):
                gpu = int(cfg["train"].get("gpu") or 0)
            elif rule == "simulate":
                gpu = int(cfg["simulate"].get("gpu") or 0)
            hours = count * sum(
                request(rule, cfg, cluster, a)["runtime"] for a in range(1, n_att + 1)
            )
            hours /= 60
            rows.append(
                {
                    "system": name,
                    "rule": rule,
                    "jobs": int(count),
                    "estimate_min": round(est.seconds / 60, 1),
                    "estimate_mem_mb": round(est.mem_mb),
                    "runtime_min": req["runtime"],
                    "mem_mb": req["mem_mb"],
                    "attempts": n_att,
                    "gpu": gpu,
                    "cpu_hours": round(hours, 1),
                    "gpu_hours": round(hours * gpu, 1),
                }
            )
    return rows
