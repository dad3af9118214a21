"""Driven chain: vector model vs generalized potential on the NEGF field, and v(V).

For every bias V the workflow's own functions (:mod:`mllg.workflow`) sample perturbed
domain walls with their NEGF fields at V and at 0 (``sample``), train the V = 0 model on
``h(0)`` and a model of the nonequilibrium part ``h_neq = h(V) - h(0)``
(``train_model``, ``train.target = nonequilibrium``), evaluate both on fresh walls and
run the direct NEGF-LLG reference wall (``validate``), and run the ML-LLG wall with the
sum of the two models (``simulate`` + ``analyze``). Reported (held-out frames of
``validate``): relative RMSE of the torque ``T_i = S_i x h_i`` (equal to that of
``h_perp`` for unit spins) of the total field and of the nonequilibrium part alone, and
the wall velocities (sites per unit time 1/t) of ML-LLG and NEGF-LLG.

Run (defaults: the demo system of ``config/driven_domain_wall.yaml``)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/driven_vector.py --out /tmp/driven_vector

Outputs under ``--out``: data stores, trained models, validate/analyze JSON, and
``table.json`` with every number printed.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mllg import workflow
from mllg.config import deep_merge, load_system_files, validate_config, voltage_tag

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
NAME = "driven_domain_wall"


def system_section(over: dict[str, Any], scale: str = "demo") -> dict[str, Any]:
    """Validated ``driven_domain_wall`` section with ``over`` merged into it.

    ``train.potential`` is validated as ``generalized`` and set afterwards, so that the
    comparison also runs where the config checks still accept only that potential for a
    driven system.
    """
    pot = over.get("train", {}).get("potential")
    over = deep_merge(over, {"train": {"potential": "generalized"}})
    cfg = deep_merge(
        load_system_files(REPO / "config"),
        {"system": NAME, "scale": scale, "systems": {NAME: over}},
    )
    section = copy.deepcopy(validate_config(cfg, SCHEMA)["systems"][NAME])
    if pot:
        section["train"]["potential"] = pot
    return section


def stores(system: dict[str, Any], tag: str, root: Path) -> list[Path]:
    """Sample (or reuse) the chunks of one voltage; returns the stores."""
    out = []
    for chunk in range(int(system["sample"]["chunks"])):
        p = root / "data" / tag / f"chunk{chunk}.zarr"
        if not p.exists():
            workflow.sample(system, tag, chunk, p)
        out.append(p)
    return out


def smooth_wall_metrics(
    system: dict[str, Any], bias: float, model: Path, base: Path, n: int = 16, seed: int = 7
) -> dict[str, float]:
    """Torque relative RMSE on nearly ideal walls (tilt noise 0.02, what the LLG visits).

    Returns ``smooth_total`` (V = 0 model + nonequilibrium model against ``h(V)``) and
    ``smooth_noneq`` (nonequilibrium model against ``h(V) - h(0)``).
    """
    from mllg.negf_sampling import wall_configurations
    from mllg.nn import load_model
    from mllg.nn.training import field_metrics

    exact = workflow.System.of(system).exact_solver(system["sample"]["L"], bias=0.0)
    lat = exact.hamiltonian.lattice
    walls = wall_configurations(lat, n, rng=seed, noise=0.02)
    h0 = np.stack([exact(s) for s in walls])
    exact.bias = bias
    hv = np.stack([exact(s) for s in walls])
    delta = load_model(model, lat).predict(walls)["fields"]
    total = load_model(base, lat).predict(walls)["fields"] + delta
    return {
        "smooth_total": field_metrics(walls, total, hv)["torque_rel_rmse"],
        "smooth_noneq": field_metrics(walls, delta, hv - h0)["torque_rel_rmse"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/driven_vector"))
    ap.add_argument("--L", type=int, default=None, help="chain length (sample, simulate)")
    ap.add_argument("--voltages", type=float, nargs="+", default=[0.2, -0.2])
    ap.add_argument("--configs", type=int, default=None)
    ap.add_argument("--chunks", type=int, default=None)
    ap.add_argument("--potentials", nargs="+", default=["generalized", "vector"])
    ap.add_argument("--llg-steps", type=int, default=None)
    ap.add_argument("--scale", default="demo")
    ap.add_argument("--train", type=json.loads, default={}, help="train overrides (JSON)")
    ap.add_argument("--sample", type=json.loads, default={}, help="sample overrides (JSON)")
    ap.add_argument("--no-llg", action="store_true", help="skip the wall runs")
    ap.add_argument(
        "--base-potential", default=None, help="potential of the V = 0 model (default: same)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    over: dict[str, Any] = {
        "sample": dict(args.sample),
        "simulate": {},
        "validate": {},
        "train": {},
    }
    if args.L:
        over["sample"]["L"] = over["simulate"]["L"] = args.L
    if args.configs:
        over["sample"]["configs"] = args.configs
    if args.chunks:
        over["sample"]["chunks"] = args.chunks
    if args.llg_steps is not None:
        over["validate"]["llg_steps"] = over["simulate"]["n_steps"] = args.llg_steps
    if args.no_llg:
        over["validate"]["llg_steps"] = 0
    root = args.out
    rows = []
    t0 = time.perf_counter()
    base_sys = system_section(over, args.scale)
    eq_data = stores(base_sys, voltage_tag(0.0), root)
    sample_s = time.perf_counter() - t0
    for pot in args.potentials:
        sys_p = system_section(
            deep_merge(over, {"train": {"potential": pot, **args.train}}), args.scale
        )
        tr = sys_p["train"]
        label = pot
        base_pot = args.base_potential or pot
        if base_pot != pot:
            label = f"{pot}+{base_pot}0"
        sys_eq = copy.deepcopy(sys_p)
        sys_eq["train"]["potential"] = base_pot
        base_dir = root / label / "V0"
        t1 = time.perf_counter()
        m_eq = workflow.train_model(sys_eq, eq_data, 0, base_dir)
        eq_time = time.perf_counter() - t1
        drift = None
        if int(sys_p["validate"]["llg_steps"]):  # V = 0: the relaxed ML wall should not move
            from mllg.analysis.domain_wall import wall_positions, wall_velocity
            from mllg.io import open_store

            traj = root / label / "V0" / "sim.zarr"
            workflow.simulate(sys_p, voltage_tag(0.0), 0, [base_dir / "model"], traj)
            ds = open_store(traj)
            lat = workflow.System.of(sys_p).lattice(sys_p["simulate"]["L"])
            pos = wall_positions(ds["spins"].transpose("frame", "site", "vec").values, lat)
            drift = wall_velocity(ds["time"].values, pos, t_min=sys_p["analyze"]["t_min"])[0]
            print(f"{label}: V = 0 ML wall drift {drift:.2e} sites/t", flush=True)
        for v in args.voltages:
            tag = voltage_tag(v)
            t1 = time.perf_counter()
            data = stores(sys_p, tag, root)
            sample_s += time.perf_counter() - t1
            run = root / label / tag
            t1 = time.perf_counter()
            m = workflow.train_model(sys_p, data, 0, run / "train")
            train_s = time.perf_counter() - t1
            models, base = [run / "train" / "model"], [base_dir / "model"]
            val = workflow.validate(sys_p, tag, models, run / "validate", base)
            smooth = smooth_wall_metrics(sys_p, v, models[0], base[0])
            row = {
                "potential": pot,
                "base_potential": base_pot,
                "v0_drift_ml": drift,
                "bias": v,
                "L": sys_p["sample"]["L"],
                "frames": m["n_frames_train"] + m["n_frames_val"] + m["n_frames_test"],
                "test_noneq_torque_rel_rmse": m["torque_rel_rmse"],
                "val_total_torque_rel_rmse": val["torque_rel_rmse"],
                "val_noneq_torque_rel_rmse": val["noneq_perp_rel_rmse"],
                "val_noneq_r2": val["noneq_perp_r2"],
                "smooth_total_torque_rel_rmse": smooth["smooth_total"],
                "smooth_noneq_torque_rel_rmse": smooth["smooth_noneq"],
                "eq_model_test_rel_rmse": m_eq["torque_rel_rmse"],
                "train_s": train_s,
                "train_eq_s": eq_time,
                "epochs": m["epochs"],
                "hidden": tr["hidden"],
                "vector_r_cut": tr["vector_r_cut"],
            }
            if int(sys_p["validate"]["llg_steps"]):
                traj = run / "sim.zarr"
                workflow.simulate(sys_p, tag, 0, models, traj, base, base)
                ana = workflow.analyze(
                    sys_p,
                    {tag: [traj]},
                    {tag: run / "validate" / "metrics.json"},
                    run / "analysis.json",
                    run / "analysis.zarr",
                )
                r = ana["velocity_table"][0]
                row.update(
                    {
                        "v_ml": r["velocity_ml"],
                        "v_ml_err": r["velocity_ml_stderr"],
                        "v_negf": r["velocity_negf"],
                        "v_negf_err": r["velocity_negf_stderr"],
                        "v_ratio": r["velocity_ml"] / r["velocity_negf"],
                    }
                )
            rows.append(row)
            print(json.dumps(row), flush=True)
    root.mkdir(parents=True, exist_ok=True)
    (root / "table.json").write_text(json.dumps({"rows": rows, "sample_s": sample_s}, indent=2))
    print(f"\nsampling {sample_s:.1f} s")
    print(
        "| potential | V | L | frames | torque rel. RMSE total | neq part | neq R^2 "
        "| smooth walls: total | neq part | v_ML | v_NEGF | ratio | train (s) |"
    )
    print("| --- " * 13 + "|")
    for r in rows:
        vel = (
            f"{r['v_ml']:.4f} +- {r['v_ml_err']:.4f} | {r['v_negf']:.4f} +- {r['v_negf_err']:.4f}"
            f" | {r['v_ratio']:.2f}"
            if "v_ml" in r
            else "-- | -- | --"
        )
        print(
            f"| {r['potential']} | {r['bias']:+.1f} | {r['L']} | {r['frames']} "
            f"| {r['val_total_torque_rel_rmse']:.2%} | {r['val_noneq_torque_rel_rmse']:.1%} "
            f"| {r['val_noneq_r2']:.3f} | {r['smooth_total_torque_rel_rmse']:.2%} "
            f"| {r['smooth_noneq_torque_rel_rmse']:.1%} | {vel} | {r['train_s']:.0f} |"
        )


if __name__ == "__main__":
    main()
