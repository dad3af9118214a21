"""Resource requests of the workflow's jobs (mllg.workflow.resources): scaling with the
work a job does, attempt scaling, the walltime cap and the attempts it implies."""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import pytest

from mllg.config import deep_merge, load_system_files, validate_config
from mllg.workflow.resources import (
    LOCAL_RULES,
    UNIT_COSTS,
    attempts,
    estimate,
    request,
    resource_table,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


@functools.cache
def _systems(scale: str) -> dict:
    cfg = deep_merge(load_system_files(REPO / "config"), {"scale": scale})
    return validate_config(cfg, SCHEMA)["systems"]


def systems(scale: str = "demo") -> dict:
    return copy.deepcopy(_systems(scale))


def with_(sec: dict, **changes) -> dict:
    out = copy.deepcopy(sec)
    for dotted, value in changes.items():
        stage, key = dotted.split(".")
        out[stage][key] = value
    return out


def test_exact_sampling_cost_follows_the_solver_scaling():
    de = with_(systems()["square_double_exchange"], **{"sample.solver": "ed"})
    startup = estimate("featurize", with_(de, **{"sample.n_steps": 0})).seconds
    ed = {L: estimate("sample", with_(de, **{"sample.L": L})).seconds - startup for L in (10, 20)}
    assert ed[20] / ed[10] == pytest.approx(4**3, rel=0.05)  # dense ED: (2N)^3
    steps = {n: estimate("sample", with_(de, **{"sample.n_steps": n})).seconds for n in (300, 600)}
    assert (steps[600] - startup) / (steps[300] - startup) == pytest.approx(2, rel=0.01)
    kpm = with_(de, **{"sample.solver": "kpm", "sample.L": 40})
    warm, cold = (estimate("sample", with_(kpm, **{"model.kT": kT})).seconds for kT in (0.05, 0.01))
    assert cold > 10 * warm  # low electron temperature: many more moments / exact probing
    big = with_(kpm, **{"sample.L": 80})
    assert estimate("sample", big).seconds < 5 * estimate("sample", kpm).seconds  # KPM ~ N
    assert (
        estimate("sample", big).mem_mb
        < estimate("sample", with_(big, **{"sample.solver": "ed"})).mem_mb
    )


def test_ml_costs_scale_with_sites_steps_model_and_gpu():
    tri = systems()["triangular_120"]
    base = estimate("simulate", tri).seconds
    assert estimate(
        "simulate", with_(tri, **{"simulate.L": 2 * tri["simulate"]["L"]})
    ).seconds > 3 * (base - UNIT_COSTS["startup"])
    start = UNIT_COSTS["startup"]
    mp = with_(tri, **{"train.message_r_cut": 2.0, "train.message_width": 32})
    # evaluation: one message-passing step of width 32 costs ~9x the plain model ...
    assert estimate("simulate", mp).seconds - start > 5 * (base - start)
    # ... while training time per frame-epoch was measured nearly model-independent
    assert estimate("train", mp).seconds == estimate("train", tri).seconds
    longer = with_(tri, **{"train.max_epochs": 2 * tri["train"]["max_epochs"]})
    assert estimate("train", longer).seconds - start == pytest.approx(
        2 * (estimate("train", tri).seconds - start)
    )
    gpu = with_(tri, **{"train.gpu": 1, "simulate.gpu": 1})
    fast = estimate("train", gpu, gpu_speedup=10).seconds - start
    assert fast == pytest.approx((estimate("train", gpu).seconds - start) / 10)
    # a speed-up applies only to jobs that run on a GPU
    assert estimate("train", tri, gpu_speedup=10).seconds == estimate("train", tri).seconds


def test_request_is_attempt_scaled_and_capped_at_the_walltime_limit():
    tet = systems("paper")["triangular_tetrahedral"]
    cluster = {"max_runtime": 600, "safety_factor": 2.0, "gpu_speedup": 1.0}
    minutes = estimate("sample", tet).seconds / 60
    first, second = (request("sample", tet, cluster, a) for a in (1, 2))
    assert first["runtime"] == min(600, max(10, math.ceil(2 * minutes)))
    assert second["runtime"] == min(600, max(10, math.ceil(4 * minutes)))
    assert second["mem_mb"] > first["mem_mb"] >= 1000
    assert attempts("sample", tet, cluster) == max(1, math.ceil(2 * minutes / 600))
    # a job within the limit needs one attempt; a longer one several of max_runtime each
    assert attempts("figures_equilibrium", tet, cluster) == 1
    long = with_(tet, **{"sample.n_steps": 100 * tet["sample"]["n_steps"]})
    assert request("sample", long, cluster)["runtime"] == 600
    assert attempts("sample", long, cluster) > 10


def test_demo_requests_stay_small_and_local_rules_are_named():
    for name, sec in systems().items():
        for rule in ("sample", "train", "validate", "simulate", "audit", "analyze"):
            req = request(rule, sec, None)
            assert req["runtime"] <= 60 and req["mem_mb"] <= 4000, (name, rule, req)
    assert {"summary", "analyze"} <= set(LOCAL_RULES)


def test_resource_table_totals_requested_hours_of_all_attempts():
    sec = systems("paper")["triangular_tetrahedral"]
    cluster = {"max_runtime": 1440, "safety_factor": 2.0, "gpu_speedup": 1.0}
    rows = resource_table({"t": sec}, {"t": {"simulate": 4, "sample": 2}}, cluster)
    by_rule = {r["rule"]: r for r in rows}
    sim = by_rule["simulate"]
    runs = [request("simulate", sec, cluster, a)["runtime"] for a in range(1, sim["attempts"] + 1)]
    assert sim["cpu_hours"] == pytest.approx(4 * sum(runs) / 60, abs=0.05)
    assert sim["gpu_hours"] == (sim["cpu_hours"] if sec["simulate"]["gpu"] else 0)
    assert by_rule["sample"]["gpu_hours"] == 0 and by_rule["sample"]["jobs"] == 2


@pytest.mark.parametrize(
    ("cluster", "words"),
    [
        ({"max_runtime": 5}, "cluster.max_runtime"),
        ({"safety_factor": 0.5}, "cluster.safety_factor"),
        ({"gpu_speedup": "fast"}, "cluster.gpu_speedup"),
        ({"walltime": 60}, "walltime"),
    ],
)
def test_bad_cluster_settings_stop_with_one_sentence(cluster, words):
    from mllg.config import ConfigError

    cfg = deep_merge(load_system_files(REPO / "config"), {"cluster": cluster})
    with pytest.raises(ConfigError, match=words) as err:
        validate_config(cfg, SCHEMA)
    assert len(str(err.value).strip().splitlines()) == 1, str(err.value)
