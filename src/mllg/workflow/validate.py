"""Stage ``validate``: the models against the exact solver on unseen states (rule
``validate``): field accuracy, committee spread, speed ratio and a short LLG check."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg.config import tag_voltage
from mllg.workflow.system import System, write_json

__all__ = ["reference_test_set", "time_per_call", "validate"]


def time_per_call(fun: Callable[[NDArray], Any], spins: NDArray, repeats: int) -> float:
    """Median wall time (s) of ``fun(spins)`` over ``repeats`` calls after one warm-up."""
    fun(spins)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fun(spins)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def reference_test_set(
    system: Mapping[str, Any], model_dirs: Sequence[str | Path], path: str | Path
) -> dict[str, Any]:
    """The committee on published labelled frames (``validate.reference``), a test set.

    The file (``.npz``) holds ``spins`` and ``fields`` (F, N, 3) on an L x L lattice of the
    system's kind (``L``; site ``i = x + L y``), optionally ``kind`` per frame. Three
    relative RMSEs of the perpendicular field are reported per frame and pooled over the
    frames: the committee mean against the file's labels (``vs_file``), against the
    exact solver in the ensemble of the training labels on the same spins (``vs_exact``:
    the faster of ED and KPM, grand canonical at ``sample.label_mu`` when set), and the file's
    labels against that exact solver (``file_vs_exact``: the difference of the physical
    settings, e.g. electron temperature and ensemble, that no model can remove). The
    frames are never trained or selected on.

    Returns
    -------
    dict
        ``path``, ``L``, ``label_solver``, pooled ``vs_file``, ``vs_exact``,
        ``file_vs_exact`` and ``frames`` (per frame the same and ``sigma_mean``, the
        committee spread in units of t).
    """
    from mllg.nn import Committee
    from mllg.nn.training import field_metrics
    from mllg.providers import load_models
    from mllg.workflow.label import per_frame_errors

    sys_ = System.of(system)
    with np.load(path) as data:
        spins, file_fields, size = data["spins"], data["fields"], int(data["L"])
        kinds = [str(k) for k in data["kind"]] if "kind" in data.files else None
    solver, info = sys_.fresh_label_solver(size, spins[0], "auto")
    lat = solver.hamiltonian.lattice
    exact = np.stack([solver(frame) for frame in spins])
    committee = Committee(load_models(model_dirs, lat)).predict(spins)
    pred = committee["fields"]
    vs_file, _ = per_frame_errors(spins, pred, file_fields)
    vs_exact, _ = per_frame_errors(spins, pred, exact)
    file_exact, _ = per_frame_errors(spins, file_fields, exact)
    frames = [
        {
            "frame": k,
            "kind": kinds[k] if kinds else None,
            "vs_file": float(vs_file[k]),
            "vs_exact": float(vs_exact[k]),
            "file_vs_exact": float(file_exact[k]),
            "sigma_mean": float(np.mean(committee["sigma"][k])),
        }
        for k in range(len(spins))
    ]
    return {
        "path": str(path),
        "L": size,
        "label_solver": info,
        "vs_file": field_metrics(spins, pred, file_fields)["perp_rel_rmse"],
        "vs_exact": field_metrics(spins, pred, exact)["perp_rel_rmse"],
        "file_vs_exact": field_metrics(spins, file_fields, exact)["perp_rel_rmse"],
        "frames": frames,
    }


def validate(
    system: Mapping[str, Any],
    tag: str,
    model_dirs: Sequence[str | Path],
    out_dir: str | Path,
    base_model_dirs: Sequence[str | Path] | None = None,
) -> dict[str, Any]:
    """ML against the exact solver on unseen states, speed ratio, short LLG comparison.

    * Fields: ``validate.frames`` exact reference frames the models never saw
      (:meth:`System.reference_frames`: a fresh Langevin-LLG run, or fresh perturbed
      walls at the bias of ``tag``); metrics of the perpendicular field
      (:func:`mllg.nn.evaluate`: relative RMSE, R^2) and the committee spread.
    * Speed: median time per field evaluation, exact solver vs the ML model (first
      seed), on a lattice of size ``validate.speed_L``; ``speed_ratio = exact / ML``.
    * LLG (``validate.llg_steps > 0``): :meth:`System.llg_check`.
    * Published frames (``validate.reference``): :func:`reference_test_set`, under
      ``reference``.

    With ``base_model_dirs`` (driven, ``train.target = nonequilibrium``) the ML field is
    the V = 0 model plus the model of the nonequilibrium part; the metrics are those of
    the sum, and ``noneq_*`` those of the nonequilibrium part alone.

    Writes ``metrics.json`` and ``parity.png`` in ``out_dir``.

    Returns
    -------
    dict
        The metrics.
    """
    from mllg.nn import Committee, evaluate
    from mllg.nn.training import field_metrics, parity_plot
    from mllg.providers import load_models, ml_provider

    sys_ = System.of(system)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v, s = sys_.validate, sys_.sample
    bias = tag_voltage(tag) or 0.0
    base_dirs = list(base_model_dirs or [])
    exact = sys_.exact_solver(s["L"], bias=bias)
    lat = exact.hamiltonian.lattice
    models = load_models(model_dirs, lat)
    base = load_models(base_dirs, lat)
    ref, fields_eq = sys_.reference_frames(exact, tag, bool(base), out_dir)
    spins = ref["spins"].transpose("frame", "site", "vec").values
    fields = ref["fields"].transpose("frame", "site", "vec").values
    energy = ref["energy"].values if "energy" in ref.data_vars else None
    metrics: dict[str, Any] = {"data_tag": tag, "n_models": len(models)}
    if base:
        delta = models[0].predict(spins)["fields"]
        pred = base[0].predict(spins)["fields"] + delta
        metrics.update(field_metrics(spins, pred, fields))
        metrics["n_frames_eval"] = int(spins.shape[0])
        noneq = field_metrics(spins, delta, fields - fields_eq)
        metrics.update({f"noneq_{k}": noneq[k] for k in ("perp_rel_rmse", "perp_r2")})
        parity_plot(
            spins,
            pred,
            fields,
            out_dir / "parity.png",
            f"rel. RMSE {metrics['perp_rel_rmse']:.3%}, nonequilibrium part "
            f"{metrics['noneq_perp_rel_rmse']:.1%}",
        )
    else:
        metrics.update(evaluate(models[0], spins, fields, energy, out_dir=out_dir))
    if len(models) > 1:
        metrics["committee_sigma_mean"] = float(np.mean(Committee(models).predict(spins)["sigma"]))
    big_exact = sys_.exact_solver(v["speed_L"], bias=bias)
    big = big_exact.hamiltonian.lattice
    probe = sys_.speed_probe(big)
    ml_big = ml_provider(list(model_dirs)[:1], big, base_dirs[:1])
    t_exact = time_per_call(big_exact, probe, int(v["repeats"]))
    t_ml = time_per_call(ml_big, probe, int(v["repeats"]))
    metrics.update(
        {
            "speed_lattice_sites": int(big.N),
            "time_per_field_exact_s": t_exact,
            "time_per_field_ml_s": t_ml,
            "speed_ratio": t_exact / t_ml,
        }
    )
    if int(v["llg_steps"]):
        ml = ml_provider(models, lat, base)
        metrics.update(sys_.llg_check(exact, ml, lat, tag))
    if v.get("reference"):
        metrics["reference"] = reference_test_set(system, model_dirs, v["reference"])
    write_json(out_dir / "metrics.json", metrics)
    return metrics
