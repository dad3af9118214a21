"""Tests of the Snakemake workflow: lint, dry-runs, reruns, config validation, report.

Every run uses the venv's snakemake (``python -m snakemake`` next to ``sys.executable``)
with ``--directory`` in a temporary folder and a small config (4x4 lattice, 40 steps), so
nothing is written under the repository's ``results/``. Running from a temporary folder
also means the workflow's default ``config/config.yaml`` is not merged in: the test
configs are complete on their own.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mllg.config import ConfigError, validate_config

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SHIPPED_CONFIGS = sorted((REPO / "config").glob("*.yaml"))
SMALL = {"L": 4, "n_steps": 40, "save_every": 10}

# (key, new value, rules that must run again). Stages added later extend this table so
# that a change reruns exactly what depends on it.
CONFIG_CHANGES = [
    ("relax.seed", 1, {"relax", "all"}),
]


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


def small_config(**overrides) -> dict:
    """The shipped default config reduced to a 4x4 lattice and 40 steps."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["relax"].update(SMALL)
    cfg["relax"].update(overrides)
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


def set_key(cfg: dict, dotted: str, value) -> dict:
    section, key = dotted.split(".")
    cfg[section][key] = value
    return cfg


def output_mtimes(workdir: Path) -> dict[str, int]:
    return {
        str(p.relative_to(workdir)): p.stat().st_mtime_ns
        for p in (workdir / "results").rglob("*")
        if p.is_file()
    }


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, Path]:
    """A workdir where the small config has run to the end once: (workdir, configfile)."""
    root = tmp_path_factory.mktemp("workflow")
    cfg = write_yaml(root / "small.yaml", small_config())
    workdir = root / "run"
    res = snakemake(workdir, configfile=cfg)
    assert res.returncode == 0, res.output
    assert jobs_to_run(res.output) == {"relax": 1, "all": 1}
    return workdir, cfg


def test_lint_is_clean(tmp_path):
    res = snakemake(tmp_path, "--lint", configfile=REPO / "config" / "config.yaml")
    assert res.returncode == 0, res.output
    assert "Lints for" not in res.output, res.output


@pytest.mark.parametrize("config", SHIPPED_CONFIGS, ids=lambda p: p.name)
def test_dry_run_of_full_dag_for_every_shipped_config(config, tmp_path):
    # as from the repository root: config/config.yaml first, the chosen file merged over it
    default = REPO / "config" / "config.yaml"
    res = snakemake(tmp_path, "--dry-run", "--configfile", str(default), str(config))
    assert res.returncode == 0, res.output
    jobs = jobs_to_run(res.output)
    assert jobs.get("all") == 1 and len(jobs) > 1, jobs
    assert not (tmp_path / "results").exists()
    # every job that writes something has a log, a benchmark, a runtime and a memory
    blocks = [(rule, f) for rule, f in job_blocks(res.output) if "output" in f]
    assert {rule for rule, _ in blocks} == set(jobs) - {"all"}, res.output
    for rule, fields in blocks:
        assert fields.get("log", "").startswith("results/"), (rule, fields)
        assert fields.get("benchmark", "").startswith("results/"), (rule, fields)
        resources = fields.get("resources", "")
        assert "runtime=" in resources and "mem_mb=" in resources, (rule, fields)


def test_slurm_profile_loads_and_plans_the_jobs(tmp_path):
    # runs everywhere (no cluster needed); the real submission is in test_workflow_slurm.py
    profile = REPO / "workflow" / "profiles" / "slurm"
    cfg = write_yaml(tmp_path / "small.yaml", small_config())
    res = snakemake(
        tmp_path / "run", "--dry-run", "--workflow-profile", str(profile), configfile=cfg
    )
    assert res.returncode == 0, res.output
    assert f"workflow specific profile {profile}" in res.output, res.output
    assert jobs_to_run(res.output) == {"relax": 1, "all": 1}
    for _, fields in job_blocks(res.output):
        if "output" in fields:
            assert "runtime=" in fields["resources"] and "mem_mb=" in fields["resources"]


def test_run_produces_the_outputs(finished_run):
    workdir, _ = finished_run
    out = workdir / "results" / "relax"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["L"] == SMALL["L"] and summary["n_frames"] == 5
    assert (out / "final_texture.png").stat().st_size > 1000
    assert (out / "trajectory.zarr" / "zarr.json").exists()
    assert (out / "logs" / "relax.log").exists()
    assert (out / "benchmarks" / "relax.tsv").exists()


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
    cfg = small_config()
    props = schema["properties"]["relax"]["properties"]
    dropped = [k for k in list(cfg["relax"]) if props[k].get("default") == cfg["relax"][k]]
    assert dropped, "the default config states no schema default explicitly"
    for k in dropped:
        del cfg["relax"][k]
    cfg["relax"] = dict(reversed(cfg["relax"].items()))
    res = snakemake(workdir, "--dry-run", configfile=write_yaml(tmp_path / "c.yaml", cfg))
    assert res.returncode == 0, res.output
    assert jobs_to_run(res.output) == {}, res.output


@pytest.mark.parametrize(("key", "value", "expected"), CONFIG_CHANGES)
def test_changing_a_config_value_reruns_only_what_depends_on_it(
    finished_run, tmp_path, key, value, expected
):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run[0], workdir)  # keeps mtimes and .snakemake metadata
    old = json.loads((workdir / "results" / "relax" / "summary.json").read_text())
    cfg = write_yaml(tmp_path / "changed.yaml", set_key(small_config(), key, value))
    dry = snakemake(workdir, "--dry-run", configfile=cfg)
    assert dry.returncode == 0, dry.output
    assert set(jobs_to_run(dry.output)) == expected, dry.output
    assert "params" in dry.output.lower(), dry.output  # the rerun reason
    res = snakemake(workdir, configfile=cfg)
    assert res.returncode == 0, res.output
    assert set(jobs_to_run(res.output)) == expected, res.output
    new = json.loads((workdir / "results" / "relax" / "summary.json").read_text())
    assert new["final_energy_per_site"] != old["final_energy_per_site"]
    again = snakemake(workdir, "--dry-run", configfile=cfg)
    assert jobs_to_run(again.output) == {}, again.output


def _without(key: str):
    def edit(cfg: dict) -> dict:
        del cfg["relax"][key]
        return cfg

    return edit


def _set(key: str, value):
    return lambda cfg: set_key(cfg, key, value)


# (id, edit of the small config, words the message must contain)
BAD_CONFIGS = [
    ("L-wrong-type", _set("relax.L", "four"), ["relax.L", "'four'", "integer"]),
    ("L-negative", _set("relax.L", -4), ["relax.L", "-4", ">= 2"]),
    ("L-not-integer", _set("relax.L", 4.5), ["relax.L", "4.5", "integer"]),
    ("unknown-lattice", _set("relax.lattice", "kagome"), ["relax.lattice", "square, triangular"]),
    ("filling-above-1", _set("relax.filling", 1.5), ["relax.filling", "1.5", "< 1"]),
    ("filling-zero", _set("relax.filling", 0), ["relax.filling", "> 0"]),
    ("dt-zero", _set("relax.dt", 0.0), ["relax.dt", "> 0"]),
    ("dt-negative", _set("relax.dt", -0.1), ["relax.dt", "-0.1", "> 0"]),
    ("dt-yaml-string", _set("relax.dt", "1e-3"), ["relax.dt", "number", "1.0e-3"]),
    ("alpha-negative", _set("relax.alpha", -1.0), ["relax.alpha", "> 0"]),
    ("kT-negative", _set("relax.kT", -0.5), ["relax.kT", ">= 0"]),
    ("seed-boolean", _set("relax.seed", True), ["relax.seed", "integer"]),
    ("unknown-method", _set("relax.method", "rk4"), ["relax.method", "midpoint, heun"]),
    ("unknown-key-typo", _set("relax.n_step", 40), ["n_step", "relax", "did you mean 'n_steps'"]),
    ("unknown-section", lambda c: {**c, "relx": {"L": 4}}, ["relx", "top level"]),
    ("missing-required-key", _without("J"), ["missing required key relax.J"]),
    ("section-not-a-mapping", lambda c: {"relax": [4, 4]}, ["relax", "mapping"]),
    (
        "steps-not-multiple",
        _set("relax.n_steps", 45),
        ["relax.n_steps", "45", "multiple of relax.save_every"],
    ),
    (
        "no-electrons",
        lambda c: set_key(set_key(c, "relax.L", 2), "relax.filling", 0.01),
        ["relax.filling", "0 electrons"],
    ),
]


# one of each kind goes through snakemake (about 2 s each); all go through validate_config
THROUGH_SNAKEMAKE = {
    "L-wrong-type",
    "L-negative",
    "unknown-lattice",
    "filling-above-1",
    "dt-zero",
    "dt-yaml-string",
    "unknown-key-typo",
    "unknown-section",
    "missing-required-key",
    "section-not-a-mapping",
    "steps-not-multiple",
}


@pytest.mark.parametrize(
    ("edit", "words"), [b[1:] for b in BAD_CONFIGS], ids=[b[0] for b in BAD_CONFIGS]
)
def test_validate_config_names_the_key(edit, words):
    cfg = edit(small_config())
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    msg = str(err.value)
    assert msg.startswith("Invalid config")
    for word in words:
        assert word in msg, f"{word!r} not in the message: {msg}"
    assert len(err.value.problems) == 1, msg  # one problem, one sentence


@pytest.mark.parametrize(
    ("edit", "words"),
    [b[1:] for b in BAD_CONFIGS if b[0] in THROUGH_SNAKEMAKE],
    ids=[b[0] for b in BAD_CONFIGS if b[0] in THROUGH_SNAKEMAKE],
)
def test_bad_config_stops_the_workflow_before_any_job(tmp_path, edit, words):
    cfg = write_yaml(tmp_path / "bad.yaml", edit(small_config()))
    workdir = tmp_path / "run"
    res = snakemake(workdir, configfile=cfg, timeout=120)
    assert res.returncode != 0, res.output
    assert "Invalid config" in res.output, res.output
    for word in words:
        assert word in res.output, f"{word!r} not in the message:\n{res.output}"
    assert "rule relax" not in res.output and "Job stats" not in res.output, res.output
    assert not (workdir / "results").exists()


def test_validate_config_fills_defaults_and_orders_keys():
    cfg = {"relax": {"filling": 0.5, "J": 1.0, "L": 4, "lattice": "square"}}
    validate_config(cfg, SCHEMA)
    schema = yaml.safe_load(SCHEMA.read_text())
    props = schema["properties"]["relax"]["properties"]
    assert list(cfg["relax"]) == list(props)  # every key present, in schema order
    assert cfg["relax"]["n_steps"] == props["n_steps"]["default"]


def test_validate_config_lists_every_problem():
    cfg = small_config(L=-1, dt=0, lattice="hex")
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    assert len(err.value.problems) == 3, str(err.value)
    assert all(f"relax.{k}" in str(err.value) for k in ("L", "dt", "lattice"))


def test_config_readme_documents_every_schema_key():
    readme = (REPO / "config" / "README.md").read_text()
    schema = yaml.safe_load(SCHEMA.read_text())
    for section, sub in schema["properties"].items():
        for key in sub.get("properties", {}):
            assert f"`{section}.{key}`" in readme, f"{section}.{key} is not in config/README.md"


def test_report_builds_and_contains_the_figure(finished_run, tmp_path):
    workdir, cfg = finished_run
    report = tmp_path / "report.html"
    res = snakemake(workdir, "--report", str(report), configfile=cfg)
    assert res.returncode == 0, res.output
    html = report.read_text(errors="replace")
    assert "final_texture.png" in html
    png = (workdir / "results" / "relax" / "final_texture.png").read_bytes()
    assert base64.b64encode(png).decode() in html  # the figure itself is embedded
    assert "Final spin texture" in html  # the caption, rendered
    assert "Relaxation" in html  # the category
