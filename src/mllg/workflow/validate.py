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

__all__ = ["time_per_call", "validate"]


def time_per_call(fun: Callable[[NDArray], Any], spins: NDArray, repeats: int) -> float:
    """Median wall time (s) of ``fun(spins)`` over ``repeats`` calls after one warm-up."""
    fun(spins)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fun(spins)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


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
    write_json(out_dir / "metrics.json", metrics)
    return metrics
