"""Tests of the Snakemake workflow: lint, dry-runs of every shipped config, a tiny run,
reruns, selective reruns after a config change, config errors, the report.

Every run uses the venv's snakemake (``python -m snakemake`` next to ``sys.executable``)
with ``--directory`` in a temporary folder and a tiny override config (one system, 4x4
training lattice, two epochs), so nothing is written under the repository's
``results/``. The Snakefile always loads the system definitions from ``config/``; the
tiny config is merged over them, as a user's ``--configfile`` is.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from mllg.io import open_store

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SYSTEM_CONFIGS = sorted(p for p in (REPO / "config").glob("*.yaml") if p.name != "config.yaml")
SYSTEM = "triangular_tetrahedral"

#: The reduced workflow of the tests (also used by test_workflow_slurm.py).
TINY = {
    "system": SYSTEM,
    "scale": "demo",
    "systems": {
        SYSTEM: {
            "model": {"kT": 0.0},
            "sample": {"L": 4, "chunks": 2, "n_steps": 24, "every": 4, "label_mu": None},
            "featurize": {"enabled": True},
            "train": {
                "seeds": [0],
                "hidden": [8],
                "max_epochs": 2,
                "message_r_cut": 0.0,
                "pair_r_cut": 0.0,
            },
            "active": {"iterations": 0},
            "validate": {"frames": 3, "speed_L": 4, "repeats": 1, "llg_steps": 4},
            "simulate": {"L": 8, "seeds": [0], "n_steps": 30, "save_every": 10},
            "analyze": {"t_min": 1.0},
            "audit": {"frames": 2},
        }
    },
}
TINY_JOBS = {
    "sample": 2,
    "featurize": 2,
    "train": 1,
    "validate": 1,
    "simulate": 1,
    "audit": 1,
    "analyze": 1,
    "summary": 1,
    "figures_equilibrium": 1,
    "all": 1,
}

# (key under systems.<SYSTEM>, new value, rules that must run again)
DOWNSTREAM_OF_SIMULATE = {"simulate", "audit", "analyze", "figures_equilibrium", "summary", "all"}
CONFIG_CHANGES = [
    ("simulate.n_steps", 40, DOWNSTREAM_OF_SIMULATE),
    ("analyze.t_min", 2.0, {"analyze", "figures_equilibrium", "summary", "all"}),
    ("figures.dpi", 100, {"figures_equilibrium", "all"}),
    (
        "validate.frames",
        2,
        {"validate", "audit", "analyze", "figures_equilibrium", "summary", "all"},
    ),
    ("audit.frames", 3, {"audit", "summary", "all"}),
    ("train.lr", 1.0e-3, {"train", "validate"} | DOWNSTREAM_OF_SIMULATE),
    (
        "model.J",
        2.5,
        {"sample", "featurize", "train", "validate"} | DOWNSTREAM_OF_SIMULATE,
    ),
]
TIMING = ("time", "_s", "speed", "ratio")


def snakemake(workdir: Path, *args: str, configfile: Path | None = None, timeout: float = 300):
    """Run the venv's snakemake on the repository's Snakefile in ``workdir``.

    Parameters
    ----------
    workdir : pathlib.Path
        Working directory of the workflow (outputs go there).
    *args : str
        Extra command-line arguments.
    configfile : pathlib.Path, optional
        Config file passed with ``--configfile``.
    timeout : float
        Seconds before the run is killed.

    Returns
    -------
    subprocess.CompletedProcess
        With ``stdout`` and ``stderr`` as text and ``output`` = both joined.
    """
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += ["--directory", str(workdir), "--cores", "2", *args]
    if configfile is not None:
        cmd += ["--configfile", str(configfile)]
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    res.output = res.stdout + res.stderr
    return res


def tiny_config(**changes) -> dict:
    """The tiny test config; ``changes`` maps "stage.key" (of the system) to a value."""
    cfg = json.loads(json.dumps(TINY))
    sec = cfg["systems"][SYSTEM]
    for dotted, value in changes.items():
        stage, key = dotted.split(".")
        sec.setdefault(stage, {})[key] = value
    return cfg


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def jobs_to_run(output: str) -> dict[str, int]:
    """Rule -> job count from the ``Job stats`` table of a (dry-)run; {} if nothing to do."""
    if "Nothing to be done" in output:
        return {}
    m = re.search(r"Job stats:\njob\s+count\n[-\s]+\n(.*?)\ntotal\s+\d+", output, re.S)
    assert m, f"no job stats table in the snakemake output:\n{output}"
    return {name: int(n) for name, n in (line.split() for line in m.group(1).splitlines())}


def job_blocks(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, {field: value}) for every job that snakemake printed (run or dry-run)."""
    blocks = []
    for m in re.finditer(r"^(?:local)?rule (\w+):\n((?:    \w+: .*\n?)*)", output, re.M):
        fields = dict(line.strip().split(": ", 1) for line in m.group(2).splitlines())
        blocks.append((m.group(1), fields))
    return blocks


def output_mtimes(workdir: Path) -> dict[str, int]:
    return {
        str(p.relative_to(workdir)): p.stat().st_mtime_ns
        for p in (workdir / "results").rglob("*")
        if p.is_file()
    }


def without_timings(data):
    """JSON data without wall-clock timings (they differ between identical runs)."""
    if isinstance(data, dict):
        return {k: without_timings(v) for k, v in data.items() if not any(t in k for t in TIMING)}
    if isinstance(data, list):
        return [without_timings(v) for v in data]
    return data


def assert_stores_open_cleanly(results: Path, at_least: int) -> None:
    """Every zarr store under ``results`` is finished: ``xarray.open_zarr`` opens it with
    no warning (consolidated metadata, nothing foreign such as Snakemake's
    ``.snakemake_timestamp`` inside), ``time`` is a coordinate along ``frame``, and no
    work folder of a job (``*.incomplete``) is left behind."""
    stores = sorted(p.parent for p in results.rglob("zarr.json") if p.parent.suffix == ".zarr")
    assert len(stores) >= at_least, stores
    for store in stores:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            ds = xr.open_zarr(store)
        assert not list(store.rglob(".snakemake*")), store
        if "time" in ds.variables and "frame" in ds.dims:
            assert "time" in ds.coords and ds["time"].dims == ("frame",), store
            assert open_store(store).sel(time=float(ds["time"][-1])).sizes.get("frame", 1)
    assert not list(results.rglob("*.incomplete*"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, Path]:
    """A workdir where the tiny config has run to the end once: (workdir, configfile)."""
    root = tmp_path_factory.mktemp("workflow")
    cfg = write_yaml(root / "tiny.yaml", tiny_config())
    workdir = root / "run"
    res = snakemake(workdir, configfile=cfg)
    assert res.returncode == 0, res.output
    assert jobs_to_run(res.output) == TINY_JOBS
    return workdir, cfg


def test_lint_is_clean(tmp_path):
    res = snakemake(tmp_path, "--lint", configfile=REPO / "config" / "config.yaml")
    assert res.returncode == 0, res.output
    assert "Lints for" not in res.output, res.output


# every shipped file at demo scale; config.yaml (all four systems) also at repro and paper
DRY_RUNS = [(p, "demo") for p in [REPO / "config" / "config.yaml", *SYSTEM_CONFIGS]]
DRY_RUNS += [(REPO / "config" / "config.yaml", scale) for scale in ("repro", "paper")]


@pytest.mark.parametrize(("config", "scale"), DRY_RUNS, ids=[f"{p.stem}-{s}" for p, s in DRY_RUNS])
def test_dry_run_of_full_dag_for_every_shipped_config(config, scale, tmp_path):
    # as from the repository root: config/config.yaml first, the chosen file merged over it
    default = REPO / "config" / "config.yaml"
    res = snakemake(
        tmp_path,
        "--dry-run",
        "--config",
        f"scale={scale}",
        "--configfile",
        str(default),
        str(config),
    )
    assert res.returncode == 0, res.output
    jobs = jobs_to_run(res.output)
    stages = {"sample", "train", "validate", "simulate", "audit", "analyze", "summary"}
    assert jobs.get("all") == 1 and stages <= set(jobs), jobs
    assert {"figures_equilibrium", "figures_driven"} & set(jobs), jobs
    systems = yaml.safe_load(config.read_text()).get("system", "all")
    n_systems = 4 if systems == "all" else 1
    assert jobs["summary"] == n_systems, jobs
    assert not (tmp_path / "results").exists()
    # every job that writes something has a log, a benchmark, a runtime and a memory
    blocks = [(rule, f) for rule, f in job_blocks(res.output) if "output" in f]
    assert {rule for rule, _ in blocks} == set(jobs) - {"all"}, res.output
    for rule, fields in blocks:
        assert fields.get("log", "").startswith("results/"), (rule, fields)
        assert fields.get("benchmark", "").startswith("results/"), (rule, fields)
        resources = fields.get("resources", "")
        assert "runtime=" in resources and "mem_mb=" in resources, (rule, fields)
        if rule in ("train", "simulate"):
            gpu = 1 if scale == "paper" else 0
            assert f"gpu={gpu}" in resources, (rule, fields)


def test_every_job_requests_what_the_resource_model_computes(tmp_path):
    """Paper scale, all systems: each job's runtime and mem_mb are
    mllg.workflow.resources.request of its rule and system (first attempt). (That the
    seconds-long rules are not submitted is checked by the SLURM test.)"""
    from mllg.config import deep_merge, load_system_files, validate_config
    from mllg.workflow.resources import request

    res = snakemake(
        tmp_path,
        "-n",
        "--forceall",
        "--config",
        "scale=paper",
        configfile=REPO / "config" / "config.yaml",
    )
    assert res.returncode == 0, res.output
    cfg = deep_merge(load_system_files(REPO / "config"), {"scale": "paper"})
    cfg = validate_config(cfg, REPO / "workflow" / "schemas" / "config.schema.yaml")
    seen = set()
    for rule, fields in job_blocks(res.output):
        system = re.search(r"system=(\w+)", fields.get("wildcards", ""))
        if system is None:
            continue  # rule all
        got = dict(kv.split("=", 1) for kv in fields["resources"].split(", "))
        want = request(rule, cfg["systems"][system.group(1)], cfg["cluster"])
        assert int(got["runtime"]) == want["runtime"], (rule, got, want)
        assert int(got["mem_mb"]) == want["mem_mb"], (rule, got, want)
        seen.add(rule)
    assert {"sample", "train", "retrain", "label", "simulate", "audit", "summary"} <= seen


def test_config_flag_selects_one_system(tmp_path):
    res = snakemake(
        tmp_path,
        "--dry-run",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        "--config",
        "system=driven_domain_wall",
    )
    assert res.returncode == 0, res.output
    jobs = jobs_to_run(res.output)
    assert jobs["summary"] == 1 and "figures_driven" in jobs, jobs
    outputs = " ".join(f.get("output", "") for _, f in job_blocks(res.output))
    assert "results/driven_domain_wall/" in outputs
    assert "results/triangular_120" not in outputs
    # one sample job per voltage and chunk, one train/simulate job per voltage and seed
    cfg = yaml.safe_load((REPO / "config" / "driven_domain_wall.yaml").read_text())
    sec = cfg["systems"]["driven_domain_wall"]
    n_v = len(sec["sample"]["voltages"])
    assert jobs["sample"] == n_v * sec["sample"]["chunks"], jobs
    assert jobs["simulate"] == n_v * len(sec["simulate"]["seeds"]), jobs


def test_slurm_profile_loads_and_plans_the_jobs(tmp_path):
    # runs everywhere (no cluster needed); the real submission is in test_workflow_slurm.py
    profile = REPO / "workflow" / "profiles" / "slurm"
    cfg = write_yaml(tmp_path / "tiny.yaml", tiny_config())
    res = snakemake(
        tmp_path / "run", "--dry-run", "--workflow-profile", str(profile), configfile=cfg
    )
    assert res.returncode == 0, res.output
    assert f"workflow specific profile {profile}" in res.output, res.output
    assert jobs_to_run(res.output) == TINY_JOBS
    for _, fields in job_blocks(res.output):
        if "output" in fields:
            assert "runtime=" in fields["resources"] and "mem_mb=" in fields["resources"]


def test_run_produces_the_outputs(finished_run):
    workdir, _ = finished_run
    out = workdir / "results" / SYSTEM
    summary = json.loads((out / "summary.json").read_text())
    for key in ("accuracy", "speed", "training", "growth_exponent", "final_order"):
        assert key in summary, key
    assert summary["simulation_lattice"] == 8 and summary["training_lattice"] == 4
    assert 0 <= summary["final_order"]["weight"] <= 1
    assert summary["speed"]["eq"]["ratio_exact_over_ml"] > 0
    for name in ("texture", "structure_factor", "growth", "order"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000, name
    assert (out / "validate" / "eq" / "parity.png").stat().st_size > 5000
    # the data contract: dims, coords and physical attrs of every store
    data = open_store(out / "data" / "eq" / "chunk0.zarr")
    assert data["spins"].dims == ("frame", "site", "vec") and "fields" in data
    for key in ("lattice", "Lx", "Ly", "t1", "J", "kT", "filling", "solver", "provenance"):
        assert key in data.attrs, key
    assert data.attrs["solver"] == "ed" and data.attrs["Lx"] == 4
    assert data.sizes["frame"] == 24 // 4 + 1
    traj = open_store(out / "simulate" / "eq" / "seed0.zarr")
    assert traj.attrs["solver"] == "ml" and traj.sizes["site"] == 64
    assert traj.sizes["frame"] == 30 // 10 + 1
    assert np.allclose(np.linalg.norm(traj["spins"].values, axis=-1), 1.0)
    feats = open_store(out / "features" / "eq" / "chunk0.zarr")
    assert feats["features"].dims == ("frame", "site", "feature")
    assert feats.sizes["feature"] == summary["training"]["eq"]["n_features"]
    assert (out / "train" / "eq" / "seed0" / "model" / "config.json").exists()
    for rule in ("sample/eq/chunk0", "train/eq/seed0", "simulate/eq/seed0", "analyze"):
        assert (out / "logs" / f"{rule}.log").exists(), rule
        assert (out / "benchmarks" / f"{rule}.tsv").exists(), rule
    # data chunks (2), features (2), trajectory, analysis series
    assert_stores_open_cleanly(workdir / "results", at_least=6)


def test_rerun_is_a_no_op(finished_run):
    workdir, cfg = finished_run
    before = output_mtimes(workdir)
    res = snakemake(workdir, configfile=cfg)
    assert res.returncode == 0, res.output
    assert jobs_to_run(res.output) == {}, res.output
    assert output_mtimes(workdir) == before


def test_key_order_and_explicit_defaults_rerun_nothing(finished_run, tmp_path):
    # defaults are filled in and keys put in schema order before the rules see the config
    workdir, _ = finished_run
    schema = yaml.safe_load(SCHEMA.read_text())
    cfg = tiny_config()
    sec = cfg["systems"][SYSTEM]
    props = schema["$defs"]["simulate"]["properties"]
    sec["simulate"].update({k: p["default"] for k, p in props.items() if "default" in p})
    sec["simulate"].update(TINY["systems"][SYSTEM]["simulate"])
    sec["simulate"] = dict(reversed(sec["simulate"].items()))
    sec["figures"] = {"dpi": schema["$defs"]["figures"]["properties"]["dpi"]["default"]}
    cfg["systems"] = {SYSTEM: dict(reversed(sec.items()))}
    res = snakemake(workdir, "--dry-run", configfile=write_yaml(tmp_path / "c.yaml", cfg))
    assert res.returncode == 0, res.output
    assert jobs_to_run(res.output) == {}, res.output


@pytest.mark.parametrize(("key", "value", "expected"), CONFIG_CHANGES, ids=lambda x: str(x))
def test_changing_a_config_value_reruns_only_what_depends_on_it(
    finished_run, tmp_path, key, value, expected
):
    workdir, _ = finished_run
    cfg = write_yaml(tmp_path / "changed.yaml", tiny_config(**{key: value}))
    dry = snakemake(workdir, "--dry-run", configfile=cfg)
    assert dry.returncode == 0, dry.output
    assert set(jobs_to_run(dry.output)) == expected, dry.output
    assert "params" in dry.output.lower(), dry.output  # the rerun reason


def test_changed_value_reruns_and_then_is_done(finished_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run[0], workdir)  # keeps mtimes and .snakemake metadata
    summary = workdir / "results" / SYSTEM / "summary.json"
    old = json.loads(summary.read_text())
    cfg = write_yaml(tmp_path / "changed.yaml", tiny_config(**{"simulate.n_steps": 40}))
    res = snakemake(workdir, configfile=cfg)
    assert res.returncode == 0, res.output
    assert set(jobs_to_run(res.output)) == DOWNSTREAM_OF_SIMULATE, res.output
    traj = open_store(workdir / "results" / SYSTEM / "simulate" / "eq" / "seed0.zarr")
    assert traj.sizes["frame"] == 40 // 10 + 1
    new = json.loads(summary.read_text())
    assert new["final_order"] != old["final_order"]
    assert new["accuracy"] == old["accuracy"]  # validate did not rerun
    again = snakemake(workdir, "--dry-run", configfile=cfg)
    assert jobs_to_run(again.output) == {}, again.output


S = f"systems.{SYSTEM}"
# (id, config, words the message must contain); tests/test_config.py has many more
BAD_THROUGH_SNAKEMAKE = [
    ("L-wrong-type", tiny_config(**{"sample.L": "four"}), [f"{S}.sample.L", "integer"]),
    ("L-negative", tiny_config(**{"simulate.L": -8}), [f"{S}.simulate.L", ">= 2"]),
    ("filling-above-1", tiny_config(**{"model.filling": 1.5}), [f"{S}.model.filling", "< 1"]),
    ("unknown-lattice", tiny_config(**{"model.lattice": "kagome"}), [f"{S}.model.lattice"]),
    ("unknown-system", {**tiny_config(), "system": "kagome"}, ["system = 'kagome'"]),
    (
        "missing-model-for-simulate",
        tiny_config(**{"train.enabled": False}),
        [f"{S}.simulate.model is missing"],
    ),
]


@pytest.mark.parametrize(
    ("cfg", "words"),
    [b[1:] for b in BAD_THROUGH_SNAKEMAKE],
    ids=[b[0] for b in BAD_THROUGH_SNAKEMAKE],
)
def test_bad_config_stops_the_workflow_before_any_job(tmp_path, cfg, words):
    workdir = tmp_path / "run"
    res = snakemake(workdir, configfile=write_yaml(tmp_path / "bad.yaml", cfg), timeout=120)
    assert res.returncode != 0, res.output
    assert "Invalid config" in res.output, res.output
    for word in words:
        assert word in res.output, f"{word!r} not in the message:\n{res.output}"
    assert "Job stats" not in res.output and "rule sample" not in res.output, res.output
    assert not (workdir / "results").exists()


def test_bad_value_from_the_command_line_is_reported(tmp_path):
    res = snakemake(
        tmp_path,
        "--dry-run",
        "--configfile",
        str(REPO / "config" / "config.yaml"),
        "--config",
        "scale=huge",
    )
    assert res.returncode != 0 and "scale = 'huge'" in res.output, res.output


def test_report_builds_and_contains_every_figure(finished_run, tmp_path):
    workdir, cfg = finished_run
    report = tmp_path / "report.html"
    res = snakemake(workdir, "--report", str(report), configfile=cfg)
    assert res.returncode == 0, res.output
    assert "ERROR/" not in res.output and "WARNING/" not in res.output, res.output  # RST
    html = report.read_text(errors="replace")
    figures = sorted((workdir / "results" / SYSTEM).rglob("figures/*.png"))
    figures.append(workdir / "results" / SYSTEM / "validate" / "eq" / "parity.png")
    assert len(figures) == 5
    for png in figures:
        assert base64.b64encode(png.read_bytes()).decode() in html, png  # embedded
    for caption in ("Parity of the perpendicular", "Characteristic domain size", "Spin structure"):
        assert caption in html, caption
    assert SYSTEM in html  # the category


def test_driven_stages_without_snakemake(tmp_path):
    """The driven stage functions of mllg.workflow on a tiny chain: data at V keep the
    V = 0 fields of the same spins, the V != 0 model learns h(V) - h(0), and validate and
    simulate use the V = 0 model plus that one (train.target = nonequilibrium)."""
    import copy

    from mllg import workflow
    from mllg.config import deep_merge, load_system_files, tag_voltage, validate_config

    over = {
        "system": "driven_domain_wall",
        "systems": {
            "driven_domain_wall": {
                "sample": {"L": 8, "chunks": 1, "voltages": [0.0, 0.4], "configs": 3},
                "train": {"hidden": [4], "max_epochs": 1, "lead_columns": 1},
                "validate": {"frames": 2, "speed_L": 8, "repeats": 1, "llg_steps": 6},
                "simulate": {"L": 8, "n_steps": 6, "save_every": 2, "relax_steps": 2},
                "analyze": {"t_min": 0.0},
            }
        },
    }
    cfg = validate_config(deep_merge(load_system_files(REPO / "config"), over), SCHEMA)
    system = copy.deepcopy(cfg["systems"]["driven_domain_wall"])
    assert system["train"]["target"] == "nonequilibrium"
    models = {}
    for tag in ("V+0.000", "V+0.400"):
        store = tmp_path / tag / "data.zarr"
        workflow.sample(system, tag, 0, store)
        ds = open_store(store)
        assert ds.attrs["bias"] == tag_voltage(tag) and ds.sizes["frame"] == 3
        data = workflow.training_data(system, [store])
        if tag == "V+0.000":
            assert "fields_eq" not in ds
            np.testing.assert_array_equal(data.fields, ds["fields"].values)
        else:
            diff = ds["fields"].values - ds["fields_eq"].values
            assert np.abs(diff).max() > 1e-4  # the bias changes the field
            np.testing.assert_allclose(data.fields, diff)
        metrics = workflow.train_model(system, [store], 0, tmp_path / tag / "train")
        assert np.isfinite(metrics["perp_rel_rmse"])
        models[tag] = [tmp_path / tag / "train" / "model"]
    base = models["V+0.000"]
    val = workflow.validate(system, "V+0.400", models["V+0.400"], tmp_path / "val", base)
    assert "noneq_perp_rel_rmse" in val and val["negf_llg_velocity"] > 0  # moves with e-
    traj = tmp_path / "sim.zarr"
    workflow.simulate(system, "V+0.400", 0, models["V+0.400"], traj, base, base)
    ds = open_store(traj)
    assert ds.attrs["bias"] == 0.4 and ds.attrs["precession"] == 1
    assert ds.sizes["frame"] == 4
    # the simulated field is the sum of the two models (plus the classical anisotropy)
    from mllg.providers import ml_provider

    driven = workflow.System.of(system)
    lat = driven.lattice(8)
    s0 = ds["spins"].isel(frame=-1).values
    want = sum(ml_provider(m, lat)(s0) for m in (base, models["V+0.400"]))
    want += driven.classical().fields(s0)  # easy axis K, in the dynamics
    np.testing.assert_allclose(ds["fields"].isel(frame=-1).values, want, atol=1e-10)


def test_grand_canonical_labels_through_sample_train_validate(tmp_path):
    """``sample.label_mu``: the sample stage stores grand-canonical labels of a canonical
    trajectory (attrs ``mu``, the dynamics' ``llg_filling``), training reads them, and
    validate compares the model with labels of the same kind (a fresh reference run
    labelled at the same mu)."""
    import copy

    from mllg import workflow
    from mllg.config import deep_merge, load_system_files, validate_config

    name = "square_double_exchange"
    over = {
        "system": name,
        "systems": {
            name: {
                "model": {"kT": 0.2},
                "sample": {"L": 4, "chunks": 1, "n_steps": 16, "every": 4, "label_mu": -4.2},
                "train": {"hidden": [4], "max_epochs": 1},
                "validate": {"frames": 2, "speed_L": 4, "repeats": 1, "llg_steps": 0},
            }
        },
    }
    cfg = validate_config(deep_merge(load_system_files(REPO / "config"), over), SCHEMA)
    system = copy.deepcopy(cfg["systems"][name])
    store = workflow.sample(system, "eq", 0, tmp_path / "data.zarr")
    ds = open_store(store)
    assert ds.attrs["mu"] == -4.2 and ds.attrs["llg_filling"] == 0.485
    gc = workflow.System.of(system).label_solver(4)
    spins = ds["spins"].values
    np.testing.assert_allclose(ds["fields"].values[-1], gc.solve(spins[-1]).fields)
    canonical = workflow.System.of(system).exact_solver(4).solve(spins[-1]).fields
    assert np.abs(canonical - ds["fields"].values[-1]).max() > 1e-3  # really other labels
    workflow.train_model(system, [store], 0, tmp_path / "train")
    val = workflow.validate(system, "eq", [tmp_path / "train" / "model"], tmp_path / "val")
    assert np.isfinite(val["perp_rel_rmse"])


LOOP = {
    "iterations": 1,
    "quenches": 1,
    "kT_bath": [],
    "perturbed": 0,
    "n_steps": 20,
    "save_every": 4,
    "max_frames": 2,
    "spread_frames": 1,
    "trust_lower": 0.0,
    "trust_upper": 100.0,  # the two-epoch committee disagrees a lot: select anyway
    "max_epochs": 1,
}
LOOP_JOBS = {"explore": 1, "select": 1, "label": 1, "retrain": 2, "learning_curve": 1}
AFTER_TRAINING = {"validate": 1, "audit": 1, "analyze": 1, "figures_equilibrium": 1}
AFTER_TRAINING |= {"simulate": 1, "summary": 1, "all": 1}


def test_adding_the_learning_loop_and_an_iteration_reruns_only_what_they_need(
    finished_run, tmp_path
):
    """A finished study gets a second seed and one loop iteration: only the new member,
    the loop and what uses the final models run (no sampling, no retraining of seed 0);
    the summary gets the learning curve; a rerun is a no-op; a second iteration plans
    only its own loop jobs and the stages after training."""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run[0], workdir)
    cfg = tiny_config(**{"train.seeds": [0, 1], "audit.frames": 2})
    cfg["systems"][SYSTEM]["active"] = dict(LOOP)
    res = snakemake(workdir, configfile=write_yaml(tmp_path / "loop1.yaml", cfg))
    assert res.returncode == 0, res.output
    assert jobs_to_run(res.output) == {"train": 1, **LOOP_JOBS, **AFTER_TRAINING}, res.output
    out = workdir / "results" / SYSTEM
    summary = json.loads((out / "summary.json").read_text())
    curve = summary["learning_curve"]
    assert [p["iteration"] for p in curve] == [0, 1]
    assert (
        curve[0]["n_labels"] == 3 and curve[1]["audit"] == summary["audit"]["eq"]["perp_rel_rmse"]
    )
    from mllg.nn import load_model
    from mllg.providers import model_hash

    sim = open_store(out / "simulate" / "eq" / "seed0.zarr").attrs
    members = [out / "active" / "iter1" / "train" / f"seed{k}" / "model" for k in (0, 1)]
    # the committee of iteration 1 drives the production run
    assert sim["provider_identity"]["models"] == [model_hash(load_model(m)) for m in members]
    # and the stores of the loop: exploration runs, selected frames, labels
    assert_stores_open_cleanly(out / "active", at_least=3)
    again = snakemake(workdir, "--dry-run", configfile=tmp_path / "loop1.yaml")
    assert jobs_to_run(again.output) == {}, again.output
    cfg["systems"][SYSTEM]["active"]["iterations"] = 2
    dry = snakemake(workdir, "--dry-run", configfile=write_yaml(tmp_path / "loop2.yaml", cfg))
    assert jobs_to_run(dry.output) == {**LOOP_JOBS, **AFTER_TRAINING}, dry.output
    planned = [f.get("output", "") for _, f in job_blocks(dry.output)]
    assert any("active/iter2/" in o for o in planned)
    assert not any("active/iter1/" in o for o in planned), planned


def test_no_rule_script_shadows_a_standard_library_module():
    # the scripts folder is put first on sys.path by every rule script: a script named
    # like a standard module (select.py) would replace it for everything imported later
    names = {p.stem for p in (REPO / "scripts").glob("*.py")}
    assert not names & set(sys.stdlib_module_names), names & set(sys.stdlib_module_names)
