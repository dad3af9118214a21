"""Concurrent learning of exchange fields: exploration, selection and exact labels.

The learning loop (the DP-GEN idea applied to exchange fields) alternates four steps:
a committee of M models, trained on the data so far, drives ML-LLG runs (*explore*);
the frames on which the members disagree most are picked (*select*); an exact solver
labels them (*label*); the committee is retrained on all labels. This module holds the
pieces that do not depend on the workflow: the exploration protocols, the frame
disagreement (from the per-site spread of :class:`mllg.nn.Committee`), the selection
with trust bounds, the choice between ED and KPM and the resumable label store. The
workflow stages (:mod:`mllg.workflow.explore`, :mod:`mllg.workflow.select`,
:mod:`mllg.workflow.label`) call them.

Disagreement
------------
For a frame f with spins ``S_i`` and member fields ``h_i^(m)`` (units of t), the
per-site spread is the committee standard deviation of the perpendicular field,
``sigma_fi = sqrt(mean_m |h_perp,fi^(m) - <h_perp,fi>|^2)``, and the frame's
disagreement is its largest site value relative to a field scale,
``e_f = max_i sigma_fi / h_scale``, with ``h_scale`` the RMS of the committee-mean
perpendicular field over all frames considered together (so ``e_f`` is dimensionless
and the trust bounds carry over between systems and couplings).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg.lattice import Lattice

__all__ = [
    "ExplorationRun",
    "Selection",
    "evenly_spaced",
    "exploration_runs",
    "faster_solver",
    "frame_disagreement",
    "label_frames",
    "rank_correlation",
    "select_frames",
    "spread_frames",
]

ED_MAX_DIM = 6000
"""Largest single-particle dimension 2N at which ED is still timed against KPM."""


@dataclass(frozen=True)
class ExplorationRun:
    """One ML-LLG exploration run of an iteration.

    Attributes
    ----------
    index : int
        Run index within the iteration.
    protocol : {"quench", "langevin", "perturbed"}
        ``quench``: random spins, the production bath and damping; ``langevin``: random
        spins at bath ``kT``; ``perturbed``: the ordered state plus Gaussian noise of
        width ``sigma`` (then normalized), at bath ``kT``.
    kT : float
        Bath temperature (units of t).
    sigma : float
        Noise width of ``perturbed`` starts (0 otherwise).
    """

    index: int
    protocol: str
    kT: float
    sigma: float = 0.0

    def seed(self, iteration: int) -> int:
        """Seed of the initial state and the noise: distinct per iteration and run."""
        return 100_000 + 1000 * int(iteration) + int(self.index)

    def initial(self, lattice: Lattice, ordered: NDArray | None, iteration: int) -> NDArray:
        """Initial unit spins (N, 3) of the run in iteration ``iteration``."""
        from mllg.textures import normalize, random_spins

        rng = np.random.default_rng(self.seed(iteration))
        if self.protocol == "perturbed":
            if ordered is None:
                raise ValueError("a perturbed exploration run needs the ordered state.")
            return normalize(ordered + self.sigma * rng.normal(size=ordered.shape))
        return random_spins(lattice.N, rng)


def exploration_runs(
    quenches: int,
    quench_kT: float,
    langevin_kT: Sequence[float],
    perturbed: int,
    perturb_sigma: float,
) -> list[ExplorationRun]:
    """The runs of one iteration: ``quenches`` quenches at the production bath
    ``quench_kT``, one Langevin run per bath temperature in ``langevin_kT`` and
    ``perturbed`` runs from the perturbed ordered state at ``quench_kT``."""
    runs = [("quench", float(quench_kT), 0.0)] * int(quenches)
    runs += [("langevin", float(kT), 0.0) for kT in langevin_kT]
    runs += [("perturbed", float(quench_kT), float(perturb_sigma))] * int(perturbed)
    return [ExplorationRun(k, p, kT, s) for k, (p, kT, s) in enumerate(runs)]


def frame_disagreement(
    spins: NDArray, mean_fields: NDArray, sigma: NDArray, scale: float | None = None
) -> tuple[NDArray, float]:
    """Per-frame disagreement ``e_f = max_i sigma_fi / h_scale`` and ``h_scale``.

    ``h_scale`` (units of t) is ``scale`` or, when None, the RMS over all frames and
    sites of the committee-mean perpendicular field.
    """
    spins = np.asarray(spins, dtype=float)
    h = np.asarray(mean_fields, dtype=float)
    if scale is None:
        h_perp = h - np.sum(h * spins, axis=-1, keepdims=True) * spins
        scale = float(np.sqrt((h_perp**2).sum(-1).mean()))
    if not scale > 0:
        raise ValueError("the committee-mean perpendicular field vanishes on every frame.")
    return np.asarray(sigma, dtype=float).max(axis=-1) / scale, float(scale)


@dataclass
class Selection:
    """Frames picked for exact labels and the counts of the trust classes.

    Attributes
    ----------
    picked : ndarray of int
        Indices (into the candidate arrays) of the frames to label, most uncertain first.
    accurate, candidate, failed : int
        Frames with ``e < lower`` (trusted, skipped), ``lower <= e < upper`` (uncertain)
        and ``e >= upper`` or non-finite (absurd, skipped and counted).
    """

    picked: NDArray[np.int64]
    accurate: int
    candidate: int
    failed: int

    @property
    def total(self) -> int:
        return self.accurate + self.candidate + self.failed

    @property
    def uncertain_fraction(self) -> float:
        """Fraction of frames that are not trusted: ``(candidate + failed) / total``."""
        return (self.candidate + self.failed) / self.total if self.total else 0.0


def select_frames(
    disagreement: NDArray,
    run: NDArray,
    frame: NDArray,
    lower: float,
    upper: float,
    cap: int,
    min_separation: int = 1,
) -> Selection:
    """Pick up to ``cap`` frames with ``lower <= e < upper``, diverse in run and time.

    Candidates are taken in order of decreasing disagreement ``e``, skipping any frame
    closer than ``min_separation`` stored frames to one already picked from the same
    run, and at most ``ceil(cap / n_runs)`` per run in a first pass (the remaining
    places go to the next most uncertain frames of any run).

    Parameters
    ----------
    disagreement : (F,) array
        ``e_f`` of every explored frame (:func:`frame_disagreement`).
    run, frame : (F,) int arrays
        Exploration run and stored-frame index of every frame.
    lower, upper : float
        Trust bounds, ``0 <= lower < upper``.
    cap : int
        Largest number of frames picked.
    min_separation : int
        Smallest distance in stored frames between two picks of one run (>= 1).
    """
    e = np.asarray(disagreement, dtype=float)
    run = np.asarray(run, dtype=np.int64)
    frame = np.asarray(frame, dtype=np.int64)
    if not 0 <= lower < upper:
        raise ValueError(f"the trust bounds must satisfy 0 <= lower < upper, got {lower}, {upper}.")
    finite = np.isfinite(e)
    failed = ~finite | (e >= upper)
    accurate = finite & (e < lower)
    cand = np.flatnonzero(~failed & ~accurate)
    order = cand[np.argsort(-e[cand], kind="stable")]
    n_runs = max(1, len(np.unique(run[cand]))) if len(cand) else 1
    per_run = -(-int(cap) // n_runs)
    picked: list[int] = []
    taken: dict[int, list[int]] = {}

    def free(k: int) -> bool:
        return all(abs(frame[k] - f) >= min_separation for f in taken.get(int(run[k]), []))

    for limit in (per_run, int(cap)):
        for k in order:
            if len(picked) >= cap:
                break
            r = int(run[k])
            if k in picked or len(taken.get(r, [])) >= limit or not free(k):
                continue
            picked.append(int(k))
            taken.setdefault(r, []).append(int(frame[k]))
    picked.sort(key=lambda k: -e[k])
    return Selection(
        np.array(picked, dtype=np.int64), int(accurate.sum()), len(cand), int(failed.sum())
    )


def evenly_spaced(n_frames: int, count: int) -> list[int]:
    """``count`` indices evenly spread over ``0 .. n_frames - 1`` (first and last
    included, no repeats; fewer when ``n_frames < count``)."""
    if count <= 0 or n_frames <= 0:
        return []
    return sorted({int(round(x)) for x in np.linspace(0, n_frames - 1, min(count, n_frames))})


def spread_frames(run: NDArray, frame: NDArray, count: int, exclude: Sequence[int] = ()) -> NDArray:
    """``count`` frames spread evenly over the runs and over time within each run,
    not among ``exclude`` (indices into ``run``/``frame``): an unbiased sample of the
    states the runs visit, whatever the committee thinks of them."""
    run = np.asarray(run, dtype=np.int64)
    frame = np.asarray(frame, dtype=np.int64)
    skip = set(int(k) for k in exclude)
    runs = np.unique(run)
    out: list[int] = []
    if count <= 0 or not len(runs):
        return np.array(out, dtype=np.int64)
    shares = np.full(len(runs), count // len(runs))
    shares[: count % len(runs)] += 1
    for r, n in zip(runs, shares, strict=True):
        idx = [k for k in np.flatnonzero(run == r)[np.argsort(frame[run == r])] if k not in skip]
        out += [int(idx[p]) for p in evenly_spaced(len(idx), int(n))]
    return np.array(sorted(out), dtype=np.int64)


def rank_correlation(a: NDArray, b: NDArray) -> float | None:
    """Spearman rank correlation of two samples (None for fewer than 3 values)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 3:
        return None
    from scipy.stats import spearmanr

    rho = spearmanr(a, b).statistic
    return float(rho) if np.isfinite(rho) else None


def faster_solver(
    hamiltonian: Any,
    ensemble: Any,
    spins: NDArray,
    choice: str = "auto",
    moments: int | None = None,
    ed_max_dim: int = ED_MAX_DIM,
) -> tuple[Any, dict[str, Any]]:
    """The exact solver of the labels: ED, KPM, or (``choice = "auto"``) the faster one.

    ``auto`` times one KPM solve of ``spins`` on this lattice, electron temperature and
    ensemble, and predicts the ED time from the time of a dense Hermitian
    diagonalization of dimension ``CALIBRATION_DIM`` scaled by ``(2N /
    CALIBRATION_DIM)^3``. When the prediction is below twice the KPM time, ED is timed
    on the same frame too and the faster solver is taken, with the KPM error against ED
    on that frame (relative RMSE of the perpendicular field) recorded; otherwise KPM is
    taken without paying for a dense solve. Above ``2N > ed_max_dim`` ED is never
    considered (memory ``(2N)^2``).

    Returns
    -------
    solver, info
        The solver and ``{"solver", "time_ed_s", "time_ed_predicted_s", "time_kpm_s",
        "kpm_error_vs_ed"}`` (None where not measured).
    """
    from mllg.electrons import ExactDiagonalization
    from mllg.electrons.kpm import KernelPolynomial

    if choice not in ("auto", "ed", "kpm"):
        raise ValueError(f"label solver {choice!r} is not allowed; use auto, ed or kpm.")
    info: dict[str, Any] = {
        "time_ed_s": None,
        "time_ed_predicted_s": None,
        "time_kpm_s": None,
        "kpm_error_vs_ed": None,
    }
    ed = ExactDiagonalization(hamiltonian, ensemble)
    if choice == "ed":
        return ed, {**info, "solver": "ed"}
    kpm = KernelPolynomial(hamiltonian, ensemble, moments=moments)
    dim = 2 * hamiltonian.lattice.N
    if choice == "kpm" or dim > ed_max_dim:
        return kpm, {**info, "solver": "kpm"}
    spins = np.asarray(spins, dtype=float)
    t0 = time.perf_counter()
    h_kpm = kpm(spins)
    info["time_kpm_s"] = time.perf_counter() - t0
    info["time_ed_predicted_s"] = _dense_time(CALIBRATION_DIM) * (dim / CALIBRATION_DIM) ** 3
    if info["time_ed_predicted_s"] > 2.0 * info["time_kpm_s"]:
        return kpm, {**info, "solver": "kpm"}
    t0 = time.perf_counter()
    h_ed = ed(spins)
    info["time_ed_s"] = time.perf_counter() - t0
    perp = [h - np.sum(h * spins, -1, keepdims=True) * spins for h in (h_ed, h_kpm)]
    info["kpm_error_vs_ed"] = float(
        np.sqrt(((perp[1] - perp[0]) ** 2).sum() / (perp[0] ** 2).sum())
    )
    info["solver"] = "ed" if info["time_ed_s"] <= info["time_kpm_s"] else "kpm"
    return (ed if info["solver"] == "ed" else kpm), info


CALIBRATION_DIM = 512
"""Dimension of the dense diagonalization that calibrates the predicted ED time."""


def _dense_time(dim: int) -> float:
    """Wall time (s) of ``numpy.linalg.eigh`` of a random complex Hermitian matrix of
    dimension ``dim`` (median of three)."""
    rng = np.random.default_rng(0)
    a = rng.normal(size=(dim, dim)) + 1j * rng.normal(size=(dim, dim))
    a = a + a.conj().T
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        np.linalg.eigh(a)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def label_frames(
    solver: Any,
    lattice: Lattice,
    spins: NDArray,
    out: str | Path,
    attrs: Mapping[str, Any],
    extra: Mapping[str, NDArray] | None = None,
) -> Path:
    """Exact labels of ``spins`` (F, N, 3) into a resumable zarr store, one frame at a time.

    Every frame gets ``fields`` (``h_i = -dE/dS_i``, units of t) and ``energy`` from
    ``solver.solve``; ``extra`` holds per-frame arrays copied alongside (e.g. the
    committee prediction). A store of the same ``attrs`` (lattice and provenance
    config hash) is resumed after its last committed frame, so a job killed at any point
    repeats at most one solve.
    """
    from mllg.io import TrajectoryWriter

    spins = np.asarray(spins, dtype=float)
    writer = TrajectoryWriter(out, lattice, attrs)
    extra = {k: np.asarray(v) for k, v in (extra or {}).items()}
    for f in range(writer.n_frames, len(spins)):
        res = solver.solve(spins[f])
        writer.append(
            spins=spins[f][None],
            fields=np.asarray(res.fields, dtype=float)[None],
            energy=np.array([float(np.ravel(res.energy)[0])]),
            **{k: v[f][None] for k, v in extra.items()},
        )
    return Path(out)
