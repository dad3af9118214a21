"""Bad input never gives a traceback or a silent wrong run.

* 60+ malformed configs (table): each stops validation with sentences that name the key
  (validation runs in the Snakefile before any job; ``test_workflow`` shows that through
  snakemake);
* 20+ bad inputs of ``python -m mllg.production``: exit code 2, one line on stderr that
  names the option or file, nothing created or changed;
* kill -9 of a production run at seeded random moments, store creation included: the
  resumed store equals the uninterrupted one bit for bit.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from mllg.config import ConfigError, deep_merge, load_system_files, validate_config
from mllg.io import open_store
from mllg.lattice import make_lattice
from mllg.nn import BPModel, ModelConfig, save_model

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
NAN, INF = float("nan"), float("inf")
TET = "systems.triangular_tetrahedral"
T120 = "systems.triangular_120"
SQ = "systems.square_double_exchange"
DW = "systems.driven_domain_wall"


def shipped() -> dict:
    user = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return deep_merge(load_system_files(REPO / "config"), user)


def tweak(dotted: str, value) -> dict:
    cfg = copy.deepcopy(shipped())
    *path, last = dotted.split(".")
    node = cfg
    for part in path:
        node = node.setdefault(part, {})
    node[last] = value
    return cfg


# (key set, value, words besides the key that the message must contain)
CONFIGS = [
    # non-finite numbers, everywhere
    (f"{T120}.model.J", NAN, ["not a finite number"]),
    (f"{T120}.model.J", INF, ["not a finite number"]),
    (f"{T120}.model.J", -INF, ["not a finite number"]),
    (f"{T120}.model.kT", NAN, ["not a finite number"]),
    (f"{T120}.model.filling", NAN, ["not a finite number"]),
    (f"{T120}.model.t2", INF, ["not a finite number"]),
    (f"{SQ}.model.mu", NAN, ["not a finite number"]),
    (f"{T120}.model.K", INF, ["not a finite number"]),
    (f"{T120}.sample.alpha", NAN, ["not a finite number"]),
    (f"{T120}.sample.dt", INF, ["not a finite number"]),
    (f"{T120}.sample.kT_bath", [0.02, NAN], ["not a finite number"]),
    (f"{SQ}.sample.label_mu", NAN, ["not a finite number"]),
    (f"{DW}.sample.voltages", [0.0, NAN], ["not a finite number"]),
    (f"{DW}.sample.wall_noise", INF, ["not a finite number"]),
    (f"{DW}.sample.tol", NAN, ["not a finite number"]),
    (f"{T120}.train.lr", NAN, ["not a finite number"]),
    (f"{T120}.train.energy_weight", INF, ["not a finite number"]),
    (f"{T120}.train.grad_clip", NAN, ["not a finite number"]),
    (f"{T120}.train.descriptor.r_cut", INF, ["not a finite number"]),
    (f"{T120}.validate.kT_bath", NAN, ["not a finite number"]),
    (f"{T120}.simulate.dt", NAN, ["not a finite number"]),
    (f"{T120}.simulate.dt", INF, ["not a finite number"]),
    (f"{T120}.simulate.alpha", NAN, ["not a finite number"]),
    (f"{T120}.simulate.kT_bath", INF, ["not a finite number"]),
    (f"{T120}.analyze.t_min", NAN, ["not a finite number"]),
    (f"{T120}.analyze.t_max", INF, ["not a finite number"]),
    (f"{TET}.repro.simulate.dt", NAN, ["not a finite number"]),
    (f"{TET}.paper.train.lr", -1.0, ["with scale = paper", "> 0"]),
    # ranges
    (f"{T120}.simulate.dt", -0.1, ["> 0"]),
    (f"{T120}.simulate.alpha", 0.0, ["> 0"]),
    (f"{T120}.model.kT", -0.1, [">= 0"]),
    (f"{T120}.model.filling", 1.0, ["< 1"]),
    (f"{T120}.sample.L", 1, [">= 2"]),
    (f"{T120}.sample.L", 500, ["<= 200"]),
    (f"{T120}.sample.chunks", 0, [">= 1"]),
    (f"{T120}.sample.every", 0, [">= 1"]),
    (f"{T120}.sample.kT_bath", [], ["should be non-empty"]),
    (f"{T120}.train.lr", 0.0, ["> 0"]),
    (f"{T120}.train.batch_size", 0, [">= 1"]),
    (f"{T120}.train.hidden", [32, 0], [">= 1"]),
    (f"{T120}.train.val_fraction", 1.0, ["< 1"]),
    (f"{T120}.train.message_r_cut", 0.5, ["or >= 1"]),
    (f"{T120}.train.pair_r_cut", -1.0, [">= 0"]),
    (f"{T120}.train.descriptor.r_cut", 0.5, [">= 1"]),
    (f"{T120}.train.descriptor.inner_r_cut", 5.0, ["must not exceed"]),
    (f"{T120}.validate.frames", 0, [">= 1"]),
    (f"{T120}.simulate.L", 1, [">= 2"]),
    (f"{T120}.simulate.n_steps", 0, [">= 1"]),
    (f"{T120}.simulate.n_steps", 510, ["multiple of"]),
    (f"{T120}.figures.dpi", 10, [">= 50"]),
    # types
    (f"{T120}.model.J", "six", ["number"]),
    (f"{T120}.sample.chunks", 2.5, ["integer"]),
    (f"{T120}.simulate.seeds", [1.5], ["integer"]),
    (f"{T120}.simulate.seeds", 3, ["list"]),
    (f"{T120}.train.hidden", "64,64", ["list"]),
    (f"{T120}.train.augment_point_group", "yes", ["true or false"]),
    (f"{T120}.model.lattice", "kagome", ["square, triangular, strip"]),
    (f"{T120}.train.lr_schedule", "linear", ["plateau, cosine"]),
    (f"{T120}.train.activation", "gelu", ["silu, tanh, relu"]),
    (f"{T120}.simulate.dtype", "float16", ["float32, float64"]),
    (f"{T120}.simulate.precession", 0, ["-1, 1"]),
    (f"{T120}.analyze.order", "skyrmion", ["tetrahedral"]),
    # unknown keys and combinations
    (f"{T120}.simulate.nsteps", 10, ["unknown key", "did you mean 'n_steps'"]),
    (f"{T120}.train.hiden", [8], ["unknown key", "did you mean 'hidden'"]),
    (f"{T120}.simulate.L", 100, ["multiple of 3"]),
    (f"{TET}.analyze.order", "neel", ["needs a square lattice"]),
    (f"{T120}.train.lead_columns", 2, ["needs a strip lattice"]),
    (f"{DW}.train.potential", "conservative", ["not a gradient"]),
    (f"{DW}.sample.voltages", [0.0, 0.2, 0.2004], ["share an output tag", "V+0.200"]),
    (f"{DW}.sample.voltages", [0.0, 0.1, 0.1], ["share an output tag"]),
    (f"{T120}.simulate.seeds", [1, 1], ["holds a seed twice"]),
    (f"{T120}.train.seeds", [0, 2, 0], ["holds a seed twice"]),
    (f"{T120}.sample.solver", "negf", ["does not fit"]),
    (f"{T120}.train.message_r_cut", 2.0, ["at least two hidden widths"]),
]


def _id(case) -> str:
    key, value, _ = case
    return f"{key.split('.', 2)[-1]}={value!r}"


def test_at_least_sixty_malformed_configs():
    assert len(CONFIGS) >= 60


@pytest.mark.parametrize("case", CONFIGS, ids=[_id(c) for c in CONFIGS])
def test_malformed_config_is_refused_naming_the_key(case):
    key, value, words = case
    cfg = tweak(key, value)
    if key.endswith(".message_r_cut") and value == 2.0:
        cfg = tweak(f"{T120}.train.hidden", [32])
        cfg["systems"]["triangular_120"]["train"]["message_r_cut"] = 2.0
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    msg = str(err.value)
    shown = key.replace(".paper", "")
    assert shown.rsplit(".", 1)[0] in msg, msg
    assert shown.rsplit(".", 1)[1] in msg, msg
    for word in words:
        assert word in msg, f"{word!r} not in: {msg}"
    assert "Traceback" not in msg


def test_integral_floats_are_integers():
    cfg = tweak(f"{T120}.sample.chunks", 2.0)
    cfg["systems"]["triangular_120"]["simulate"]["seeds"] = [1.0, 2.0]
    cfg["system"] = "triangular_120"
    out = validate_config(cfg, SCHEMA)["systems"]["triangular_120"]
    assert out["sample"]["chunks"] == 2 and type(out["sample"]["chunks"]) is int
    assert out["simulate"]["seeds"] == [1, 2] and all(
        type(s) is int for s in out["simulate"]["seeds"]
    )


# ------------------------------------------------------------------ production command
def _cli(args, cwd, env=None):
    return subprocess.run(
        [sys.executable, "-m", "mllg.production", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        timeout=300,
    )


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    """A model, a finished store, and broken copies of both."""
    d = tmp_path_factory.mktemp("cli")
    lat = make_lattice("triangular", 6)
    torch.manual_seed(0)
    save_model(BPModel(lat, ModelConfig(hidden=(8, 8))), d / "model", extra={"system": {"J": 2.0}})
    torch.manual_seed(0)
    save_model(BPModel(make_lattice("square", 4), ModelConfig(hidden=(8,))), d / "square")
    base = ["--model", d / "model", "--lattice", "triangular", "--L", 6, "--kT", 0.05]
    base += ["--alpha", 0.5, "--dt", 0.05, "--n-steps", 20, "--save-every", 5, "--seed", 1]
    res = _cli([*base, "--out", d / "good.zarr"], d)
    assert res.returncode == 0, res.stderr
    # broken models
    for name, breakage in (
        ("malicious", lambda p: p.joinpath("weights.pt").write_bytes(_pickle_bomb())),
        ("wrongweights", lambda p: torch.save({"x": torch.zeros(3)}, p / "weights.pt")),
        ("truncated", lambda p: p.joinpath("config.json").write_text('{"lattice": "tri')),
        ("noweights", lambda p: p.joinpath("weights.pt").unlink()),
        ("listconfig", lambda p: p.joinpath("config.json").write_text("[1, 2]")),
    ):
        shutil.copytree(d / "model", d / name)
        breakage(d / name)
    # broken stores
    for name in ("badjson", "nospins", "badchunk", "emptychunk", "nanframe"):
        shutil.copytree(d / "good.zarr", d / f"{name}.zarr")
    (d / "badjson.zarr" / "zarr.json").write_text('{"zarr_format": 3, "node_t')
    shutil.rmtree(d / "nospins.zarr" / "spins")
    last = _last_chunk(d / "badchunk.zarr" / "spins")
    last.write_bytes(b"\x00garbage" * 10)
    _last_chunk(d / "emptychunk.zarr" / "spins").write_bytes(b"")
    import zarr

    g = zarr.open_group(d / "nanframe.zarr", mode="r+", zarr_format=3)
    spins = g["spins"][...]
    spins[-1, 0, :] = np.nan
    g["spins"][...] = spins
    (d / "afile.zarr").write_text("not a store")
    return d, base


def _last_chunk(array_dir: Path) -> Path:
    chunks = sorted((p for p in (array_dir / "c").rglob("*") if p.is_file()), key=str)
    return max(chunks, key=lambda p: [int(x) for x in p.relative_to(array_dir / "c").parts])


def _pickle_bomb() -> bytes:
    import pickle

    class Bomb:
        def __reduce__(self):
            return (os.system, ("touch PWNED",))

    return pickle.dumps(Bomb())


def _replace(args, option, value):
    out = list(args)
    if option in out:
        out[out.index(option) + 1] = value
    else:
        out += [option, value]
    return out


#: (id, change to the good command, name the one-line message must contain)
CLI = [
    ("missing-model", lambda b, d: _replace(b, "--model", d / "nope"), "nope"),
    ("model-of-other-lattice", lambda b, d: _replace(b, "--model", d / "square"), "square"),
    ("malicious-weights", lambda b, d: _replace(b, "--model", d / "malicious"), "weights.pt"),
    ("wrong-weights", lambda b, d: _replace(b, "--model", d / "wrongweights"), "wrongweights"),
    ("truncated-config", lambda b, d: _replace(b, "--model", d / "truncated"), "config.json"),
    ("no-weights", lambda b, d: _replace(b, "--model", d / "noweights"), "noweights"),
    ("config-not-a-mapping", lambda b, d: _replace(b, "--model", d / "listconfig"), "config.json"),
    ("other-physics", lambda b, d: _replace(b, "--system", '{"J": 3.0}'), "J=3.0"),
    ("store-of-other-seed", lambda b, d: _replace(b, "--seed", 9), "good.zarr"),
    ("store-of-other-lattice", lambda b, d: _replace(b, "--L", 12), "good.zarr"),
    ("truncated-zarr-json", lambda b, d: b, "badjson.zarr"),
    ("missing-spins-array", lambda b, d: b, "nospins.zarr"),
    ("corrupt-last-chunk", lambda b, d: b, "badchunk.zarr"),
    ("empty-last-chunk", lambda b, d: b, "emptychunk.zarr"),
    ("nan-last-frame", lambda b, d: b, "nanframe.zarr"),
    ("out-is-a-file", lambda b, d: b, "afile.zarr"),
    ("bad-system-json", lambda b, d: _replace(b, "--system", "{J: 2"), "--system"),
    ("system-not-object", lambda b, d: _replace(b, "--system", "[2]"), "--system"),
    ("system-nan", lambda b, d: _replace(b, "--system", '{"J": NaN}'), "--system"),
    ("bad-lattice", lambda b, d: _replace(b, "--lattice", "kagome"), "--lattice"),
    ("dt-zero", lambda b, d: _replace(b, "--dt", 0), "--dt"),
    ("dt-text", lambda b, d: _replace(b, "--dt", "fast"), "--dt"),
    ("dt-nan", lambda b, d: _replace(b, "--dt", "nan"), "--dt"),
    ("kT-negative", lambda b, d: _replace(b, "--kT", -1), "--kT"),
    ("kT-inf", lambda b, d: _replace(b, "--kT", "inf"), "--kT"),
    ("alpha-zero-with-bath", lambda b, d: _replace(b, "--alpha", 0), "--alpha"),
    ("n-steps-not-multiple", lambda b, d: _replace(b, "--n-steps", 7), "--n-steps"),
    ("n-steps-negative", lambda b, d: _replace(b, "--n-steps", -5), "--n-steps"),
    ("n-steps-float", lambda b, d: _replace(b, "--n-steps", 2.5), "--n-steps"),
    ("save-every-zero", lambda b, d: _replace(b, "--save-every", 0), "--save-every"),
    ("L-one", lambda b, d: _replace(b, "--L", 1), "--L"),
    ("seed-negative", lambda b, d: _replace(b, "--seed", -1), "--seed"),
    ("system-list-value", lambda b, d: _replace(b, "--system", '{"J": [1]}'), "--system"),
    ("initial-off-lattice", lambda b, d: _replace(b, "--initial", "neel"), "--initial"),
    ("device-unknown", lambda b, d: _replace(b, "--device", "gpu"), "--device"),
    ("threads-zero", lambda b, d: _replace(b, "--threads", 0), "--threads"),
    ("cuda-absent", lambda b, d: _replace(b, "--device", "cuda"), "CUDA"),
    ("missing-out", lambda b, d: b, "--out"),
]


STORES = {
    "truncated-zarr-json": "badjson.zarr",
    "missing-spins-array": "nospins.zarr",
    "corrupt-last-chunk": "badchunk.zarr",
    "empty-last-chunk": "emptychunk.zarr",
    "nan-last-frame": "nanframe.zarr",
    "out-is-a-file": "afile.zarr",
}


def _args(case, d, base):
    name, change, _ = case
    args = change(base, d)
    if name != "missing-out":
        args = [*args, "--out", d / STORES.get(name, "good.zarr")]
    return [str(a) for a in args]


def _files(d):
    return {p: p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("case", CLI, ids=[c[0] for c in CLI])
def test_production_command_refuses_bad_input_in_one_line(cli_dir, case, capsys, monkeypatch):
    """``main`` in this process (the command's entry point); two cases below also run
    as a separate process."""
    from mllg.production import main

    d, base = cli_dir
    name, _, needle = case
    if name == "cuda-absent" and torch.cuda.is_available():
        pytest.skip("CUDA is present")
    monkeypatch.chdir(d)
    before = _files(d)
    capsys.readouterr()
    code = main(_args(case, d, base))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert needle in lines[0], lines[0]
    assert _files(d) == before, "a file was created or changed"
    assert not (d / "PWNED").exists()


@pytest.mark.parametrize("name", ["malicious-weights", "corrupt-last-chunk"])
def test_production_command_in_its_own_process(cli_dir, name):
    d, base = cli_dir
    case = next(c for c in CLI if c[0] == name)
    before = _files(d)
    res = _cli(_args(case, d, base), d)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert case[2] in res.stderr and _files(d) == before
    assert not (d / "PWNED").exists()


def test_at_least_twenty_bad_command_lines():
    assert len(CLI) >= 20


def test_debug_flag_shows_the_traceback(cli_dir):
    d, base = cli_dir
    res = _cli([*_replace(base, "--model", d / "nope"), "--out", d / "x.zarr", "--debug"], d)
    assert res.returncode != 0 and "Traceback" in res.stderr


# ------------------------------------------------------------------ kill -9 and resume
KILL_SCRIPT = """
import sys
from pathlib import Path
import torch
from mllg.lattice import make_lattice
from mllg.nn import BPModel, ModelConfig, save_model
from mllg.production import RunConfig, run_quench
d = Path(sys.argv[1])
lat = make_lattice("triangular", 12)
if not (d / "model").exists():
    torch.manual_seed(0)
    save_model(BPModel(make_lattice("triangular", 6), ModelConfig(hidden=(8, 8))), d / "model")
cfg = RunConfig(kT=0.05, alpha=0.3, dt=0.05, n_steps=400, save_every=2, seed=5, threads=1)
run_quench(d / "model", lat, d / "t.zarr", cfg)
"""


@pytest.mark.slow
def test_kill_9_at_random_moments_including_store_creation(tmp_path):
    """Six or more kill -9 at seeded random moments (the first ones inside the start-up
    and the creation of the store); the resumed store equals the uninterrupted one."""

    def start(out):
        out.mkdir(exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        return subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(out)], env=env)

    full = start(tmp_path / "full")
    t0 = time.perf_counter()
    while not (tmp_path / "full" / "t.zarr").exists() and full.poll() is None:
        time.sleep(0.01)
    t_create = time.perf_counter() - t0  # start-up until the store appears
    assert full.wait(timeout=600) == 0
    work = time.perf_counter() - t0 - t_create
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copytree(tmp_path / "full" / "model", cut / "model")
    rng = np.random.default_rng(0)
    # three kills around the creation of the store, four during the run (each resumes)
    moments = np.concatenate(
        [rng.uniform(0.7, 1.05, 3) * t_create, t_create + rng.uniform(0.05, 0.15, 4) * work]
    )
    kills = 0
    for wait in moments:
        proc = start(cut)
        time.sleep(wait)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 6
    assert start(cut).wait(timeout=600) == 0
    a, b = open_store(tmp_path / "full" / "t.zarr"), open_store(cut / "t.zarr")
    assert a.sizes["frame"] == b.sizes["frame"] == 201
    for var in ("step", "spins", "fields", "energy"):
        np.testing.assert_array_equal(a[var].values, b[var].values)
    assert json.loads(a.attrs["rng_state"]) == json.loads(b.attrs["rng_state"])
    assert not (cut / "t.zarr.partial").exists()


def test_rule_scripts_end_expected_errors_with_one_line(tmp_path):
    """scripts/_common.py: a job failing on an expected error writes one line (and exits
    non-zero); any other exception keeps its traceback."""
    code = (
        "import sys; sys.path.insert(0, {scripts!r})\n"
        "from _common import _one_line_errors\n"
        "_one_line_errors('train')\n"
        "from mllg.devices import DeviceError\n"
        "raise {err}\n"
    )
    scripts = str(REPO / "scripts")
    env = {k: v for k, v in os.environ.items() if k != "MLLG_DEBUG"}
    run = [sys.executable, "-c"]
    res = subprocess.run(
        [*run, code.format(scripts=scripts, err="DeviceError('train.gpu = 1 asks for a GPU')")],
        capture_output=True,
        text=True,
        env=env,
    )
    out = (res.stdout + res.stderr).strip().splitlines()
    assert res.returncode == 1 and out == [
        "rule train: error: train.gpu = 1 asks for a GPU (MLLG_DEBUG=1 shows the traceback)"
    ]
    res = subprocess.run(
        [*run, code.format(scripts=scripts, err="KeyError('a bug')")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert res.returncode == 1 and "Traceback" in res.stderr


def test_training_data_that_cannot_be_read_is_named(tmp_path):
    """A data store with a corrupt chunk or unreadable metadata stops training with the
    store's path in one sentence."""
    from mllg import textures as tx
    from mllg.io import StoreError, make_dataset, write_dataset
    from mllg.nn import load_field_data

    lat = make_lattice("square", 4)
    spins = np.stack([tx.random_spins(lat.N, k) for k in range(3)])
    ds = make_dataset(lat, {"solver": "ed"}, spins=spins, fields=spins, energy=np.zeros(3))
    write_dataset(tmp_path / "d.zarr", ds, frames_per_chunk=1)
    assert load_field_data(tmp_path / "d.zarr").spins.shape == (3, 16, 3)
    _last_chunk(tmp_path / "d.zarr" / "fields").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ValueError, match=r"data store .*d\.zarr cannot be read"):
        load_field_data(tmp_path / "d.zarr")
    (tmp_path / "d.zarr" / "zarr.json").write_text("{")
    with pytest.raises(StoreError, match=r"the store at .*d\.zarr cannot be opened"):
        load_field_data(tmp_path / "d.zarr")


def test_settings_accept_numpy_scalars_and_refuse_booleans():
    from mllg.settings import DescriptorConfig, SettingError, TrainConfig

    cfg = TrainConfig(batch_size=np.int64(4), lr=np.float32(0.5), augment_point_group=np.bool_(1))
    assert type(cfg.batch_size) is int and type(cfg.lr) is float
    assert cfg.augment_point_group is True
    assert DescriptorConfig(r_cut=np.float32(2.0)).r_cut == 2.0
    with pytest.raises(SettingError, match="batch_size=True is not allowed"):
        TrainConfig(batch_size=True)
