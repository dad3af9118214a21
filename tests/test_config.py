"""Config validation (mllg.config.validate_config): schema, defaults, scales, cross-key checks.

Pure Python, no Snakemake: the shipped system files are merged as the Snakefile does
(``load_system_files`` + the user's config over them) and single values are broken. The
same messages reach users through the workflow (``tests/test_workflow.py`` runs a few
of these cases through snakemake).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from mllg.config import (
    ConfigError,
    deep_merge,
    load_system_files,
    selected_systems,
    validate_config,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SYSTEMS = (
    "triangular_tetrahedral",
    "triangular_120",
    "square_double_exchange",
    "driven_domain_wall",
)


def shipped(**top) -> dict:
    """The default config as the Snakefile builds it (system files + config/config.yaml)."""
    user = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return deep_merge(load_system_files(REPO / "config"), {**user, **top})


def tweak(dotted: str, value, cfg: dict | None = None) -> dict:
    """Set ``a.b.c`` in a copy of the default config (``value=KeyError``: delete it)."""
    cfg = copy.deepcopy(cfg if cfg is not None else shipped())
    *path, last = dotted.split(".")
    node = cfg
    for part in path:
        node = node[part]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return cfg


TET = "systems.triangular_tetrahedral"
DW = "systems.driven_domain_wall"
SQ = "systems.square_double_exchange"

# (id, broken config, words the single message must contain)
BAD = [
    ("L-wrong-type", tweak(f"{TET}.sample.L", "eight"), [f"{TET}.sample.L", "'eight'", "integer"]),
    ("L-negative", tweak(f"{TET}.simulate.L", -24), [f"{TET}.simulate.L", "-24", ">= 2"]),
    ("L-float", tweak(f"{TET}.sample.L", 8.5), [f"{TET}.sample.L", "8.5", "integer"]),
    (
        "unknown-lattice",
        tweak(f"{TET}.model.lattice", "kagome"),
        [f"{TET}.model.lattice", "'kagome'", "square, triangular, strip"],
    ),
    (
        "unknown-system",
        shipped(system="kagome_spin_ice"),
        ["system = 'kagome_spin_ice'", "not a known system", "triangular_120"],
    ),
    (
        "filling-above-1",
        tweak(f"{TET}.model.filling", 1.5),
        [f"{TET}.model.filling", "1.5", "< 1"],
    ),
    ("filling-zero", tweak(f"{TET}.model.filling", 0), [f"{TET}.model.filling", "> 0"]),
    (
        "filling-and-mu",
        tweak(f"{TET}.model.mu", 0.5),
        [f"{TET}.model", "exactly one of filling", "both"],
    ),
    (
        "label-mu-for-driven",
        tweak(f"{DW}.sample.label_mu", 0.0),
        [f"{DW}.sample.label_mu", "0.0", "equilibrium model with filling"],
    ),
    (
        "missing-model-for-simulate",
        tweak(f"{TET}.train.enabled", False),
        [f"{TET}.simulate.model is missing", "train.enabled = false"],
    ),
    (
        "model-folder-not-found",
        tweak(f"{TET}.simulate.model", "/nonexistent/model"),
        [f"{TET}.simulate.model", "/nonexistent/model", "not an exported model folder"],
    ),
    ("dt-zero", tweak(f"{TET}.simulate.dt", 0.0), [f"{TET}.simulate.dt", "> 0"]),
    (
        "dt-yaml-string",
        tweak(f"{TET}.simulate.dt", "1e-3"),
        [f"{TET}.simulate.dt", "number", "1.0e-3"],
    ),
    ("alpha-negative", tweak(f"{DW}.simulate.alpha", -0.1), [f"{DW}.simulate.alpha", "> 0"]),
    ("seeds-not-a-list", tweak(f"{TET}.simulate.seeds", 3), [f"{TET}.simulate.seeds", "a list"]),
    ("seed-negative", tweak(f"{TET}.simulate.seeds", [0, -1]), ["simulate.seeds[1]", ">= 0"]),
    (
        "unknown-key-typo",
        tweak(f"{TET}.simulate.n_step", 100),
        ["'n_step'", f"in {TET}.simulate", "did you mean 'n_steps'"],
    ),
    ("unknown-top-level", tweak("sytem", "all"), ["'sytem'", "top level", "did you mean 'system'"]),
    ("unknown-scale", tweak("scale", "huge"), ["scale = 'huge'", "demo, repro, paper"]),
    (
        "missing-required",
        tweak(f"{TET}.model.J", KeyError),
        [f"missing required key {TET}.model.J"],
    ),
    (
        "steps-not-multiple",
        tweak(f"{TET}.simulate.n_steps", 510),
        [f"{TET}.simulate.n_steps = 510", "multiple of", "save_every = 25"],
    ),
    (
        "order-needs-other-lattice",
        tweak(f"{SQ}.analyze.order", "tetrahedral"),
        [f"{SQ}.analyze.order = 'tetrahedral'", "triangular lattice"],
    ),
    (
        "L-off-the-ordering-grid",
        tweak(f"{TET}.simulate.L", 25),
        [f"{TET}.simulate.L = 25", "multiple of 2"],
    ),
    (
        "driven-needs-generalized",
        tweak(f"{DW}.train.potential", "conservative"),
        [f"{DW}.train.potential", "'generalized'"],
    ),
    (
        "solver-does-not-fit-kind",
        tweak(f"{DW}.sample.solver", "ed"),
        [f"{DW}.sample.solver = 'ed'", "negf"],
    ),
    (
        "no-electrons",
        tweak(f"{TET}.model.filling", 0.001),
        [f"{TET}.model.filling = 0.001", "0 electrons"],
    ),
    (
        "bad-paper-override",
        tweak(f"{TET}.paper.simulate.L", -3),
        ["with scale = paper", f"{TET}.simulate.L", ">= 2"],
    ),
    (
        "nonequilibrium-without-V0",
        tweak(f"{DW}.sample.voltages", [0.2, 0.4]),
        [f"{DW}.train.target = 'nonequilibrium'", "V = 0"],
    ),
    (
        "inner-cutoff-beyond-cutoff",
        tweak(f"{TET}.train.descriptor", {"kind": "plain", "r_cut": 2.0, "inner_r_cut": 3.0}),
        [f"{TET}.train.descriptor.inner_r_cut = 3.0", "must not exceed"],
    ),
    (
        "message-passing-below-one-bond",
        tweak(f"{TET}.train.message_r_cut", 0.5),
        [f"{TET}.train.message_r_cut = 0.5", "or >= 1 (the nearest-neighbour distance)"],
    ),
    (
        "pair-term-below-one-bond",
        tweak(f"{TET}.train.pair_r_cut", 0.5),
        [f"{TET}.train.pair_r_cut = 0.5", "or >= 1 (the nearest-neighbour distance)"],
    ),
    (
        "section-not-a-mapping",
        tweak(f"{TET}.train", [1, 2]),
        [f"{TET}.train", "a mapping"],
    ),
]


@pytest.mark.parametrize(("cfg", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_gives_one_sentence_naming_the_key(cfg, words):
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    msg = str(err.value)
    assert msg.startswith("Invalid config"), msg
    for word in words:
        assert word in msg, f"{word!r} not in the message: {msg}"
    assert len(err.value.problems) == 1, msg


def test_at_least_ten_kinds_of_bad_config():
    assert len({b[0] for b in BAD}) >= 10


@pytest.mark.parametrize("scale", ["demo", "repro", "paper"])
def test_shipped_configs_are_valid_at_every_scale(scale):
    for path in sorted((REPO / "config").glob("*.yaml")):
        cfg = deep_merge(shipped(), yaml.safe_load(path.read_text()))
        cfg["scale"] = scale
        validate_config(cfg, SCHEMA)
        assert cfg["scale"] == scale


def test_default_config_selects_all_four_systems_at_demo_scale():
    cfg = validate_config(shipped(), SCHEMA)
    assert cfg["scale"] == "demo"
    assert selected_systems(cfg) == sorted(SYSTEMS)
    for name in SYSTEMS:
        for block in ("repro", "paper"):  # the scale is applied and the blocks dropped
            assert block not in cfg["systems"][name]
    one = validate_config(shipped(system="driven_domain_wall"), SCHEMA)
    assert selected_systems(one) == ["driven_domain_wall"]


def test_paper_scale_merges_overrides_and_keeps_the_rest():
    demo = validate_config(shipped(), SCHEMA)["systems"]["triangular_tetrahedral"]
    paper = validate_config(shipped(scale="paper"), SCHEMA)["systems"]["triangular_tetrahedral"]
    raw = yaml.safe_load((REPO / "config" / "triangular_tetrahedral.yaml").read_text())
    over = raw["systems"]["triangular_tetrahedral"]["paper"]
    assert paper["simulate"]["L"] == over["simulate"]["L"] != demo["simulate"]["L"]
    assert paper["sample"]["solver"] == "kpm" and demo["sample"]["solver"] == "ed"
    assert paper["model"] == demo["model"]  # not overridden: the same physics
    assert paper["simulate"]["alpha"] == demo["simulate"]["alpha"]


def test_repro_scale_takes_its_own_block_not_the_paper_one():
    name = "triangular_tetrahedral"
    raw = yaml.safe_load((REPO / "config" / f"{name}.yaml").read_text())["systems"][name]
    repro = validate_config(shipped(scale="repro"), SCHEMA)["systems"][name]
    assert repro["simulate"]["L"] == raw["repro"]["simulate"]["L"] != raw["paper"]["simulate"]["L"]
    demo_model = validate_config(shipped(), SCHEMA)["systems"][name]["model"]
    assert repro["model"] == {**demo_model, **raw["repro"].get("model", {})}
    bad = shipped()
    bad["systems"][name]["repro"]["simulate"]["L"] = -3
    with pytest.raises(ConfigError, match="with scale = repro.*simulate.L"):
        validate_config(bad, SCHEMA)


def test_defaults_are_filled_in_and_keys_put_in_schema_order():
    cfg = shipped()
    sec = cfg["systems"]["triangular_tetrahedral"]
    sec["model"] = dict(reversed(sec["model"].items()))
    sec.pop("featurize", None)
    validate_config(cfg, SCHEMA)
    schema = yaml.safe_load(SCHEMA.read_text())
    model = cfg["systems"]["triangular_tetrahedral"]["model"]
    assert list(model) == list(schema["$defs"]["model"]["properties"])
    assert model["t2"] == 0.0 and model["mu"] is None
    assert cfg["systems"]["triangular_tetrahedral"]["featurize"] == {"enabled": False}
    # defaults are copies: filling one section does not alias another
    a = cfg["systems"]["triangular_tetrahedral"]["train"]["descriptor"]
    b = cfg["systems"]["triangular_120"]["train"]["descriptor"]
    assert a is not b and a["bond_cut"] == b["bond_cut"] == 1.0  # schema default in both
    a["bond_cut"] = 0.0
    assert b["bond_cut"] == 1.0


def test_every_problem_is_listed():
    cfg = tweak(f"{TET}.sample.L", -1)
    cfg = tweak(f"{TET}.simulate.dt", 0, cfg)
    cfg = tweak(f"{DW}.model.lattice", "hex", cfg)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg, SCHEMA)
    assert len(err.value.problems) == 3, str(err.value)
    for key in (f"{TET}.sample.L", f"{TET}.simulate.dt", f"{DW}.model.lattice"):
        assert key in str(err.value)


def test_existing_model_folder_is_accepted(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    cfg = tweak(f"{TET}.train.enabled", False)
    cfg = tweak(f"{TET}.simulate.model", str(tmp_path / "model"), cfg)
    validate_config(cfg, SCHEMA)


def test_config_readme_documents_every_schema_key():
    """Every key of the schema (with the declared settings inserted) has its README row,
    and the row says exactly what validation checks: type, range, default, meaning."""
    from mllg.config import key_rows, load_schema

    readme = (REPO / "config" / "README.md").read_text()
    lines = set(readme.splitlines())
    schema = load_schema(SCHEMA)
    for key in schema["properties"]:
        assert f"`{key}`" in readme, f"{key} is not in config/README.md"
    sections = ("model", "sample", "featurize", "train", "validate", "simulate", "analyze")
    sections += ("active", "audit")
    for section in (*sections, "figures"):
        for row in key_rows(schema, section):
            assert row in lines, f"config/README.md lacks or differs from the row\n{row}"
    for row in key_rows(schema, schema["properties"]["cluster"], "cluster"):
        assert row in lines, f"config/README.md lacks or differs from the row\n{row}"


def test_settings_are_declared_once_and_agree_with_the_schema():
    """The model, descriptor and training keys are declared in mllg.settings only: the
    schema file does not repeat them, the loaded schema carries the dataclass defaults
    and ranges, validation fills in those defaults, and the train stage builds the
    dataclasses from the section by name."""
    import dataclasses

    from mllg.config import load_schema
    from mllg.settings import DescriptorConfig, ModelConfig, TrainConfig, json_schema
    from mllg.workflow import training_settings

    raw = yaml.safe_load(SCHEMA.read_text())["$defs"]["train"]
    loaded = load_schema(SCHEMA)
    train = loaded["$defs"]["train"]["properties"]
    desc = train["descriptor"]["properties"]
    declared = {**json_schema(ModelConfig), **json_schema(TrainConfig)}
    assert not set(raw["properties"]) & set(declared), "a setting is declared twice"
    assert not raw["properties"]["descriptor"]["properties"]
    for name, prop in declared.items():
        assert train[name] == prop, name
    assert desc == json_schema(DescriptorConfig)
    assert train["hidden"]["default"] == list(ModelConfig().hidden)
    assert train["lr"] == {**train["lr"], "default": TrainConfig().lr, "exclusiveMinimum": 0}
    # validation fills in the dataclass defaults for keys a system does not set
    bare = tweak(f"{TET}.train", {"seeds": [0]})
    bare["systems"]["triangular_tetrahedral"]["active"] = {"iterations": 0}  # one seed: no loop
    cfg = validate_config(bare, SCHEMA)
    section = cfg["systems"]["triangular_tetrahedral"]
    for f in dataclasses.fields(ModelConfig):
        if f.metadata.get("config"):
            default = getattr(ModelConfig(), f.name)
            want = list(default) if isinstance(default, tuple) else default
            assert section["train"][f.name] == want, f.name
    built = training_settings(section, seed=3)
    assert built.seed == 3 and built.model == ModelConfig.from_dict(built.model).to_dict()
    assert built.lr == TrainConfig().lr and built.model["hidden"] == [64, 64]
    # the shipped tetrahedral system: every value of its section reaches the dataclasses
    cfg = validate_config(shipped(), SCHEMA)
    section = cfg["systems"]["triangular_tetrahedral"]
    built = training_settings(section, seed=0)
    for name in json_schema(TrainConfig):
        assert getattr(built, name) == section["train"][name], name
    for name in json_schema(ModelConfig):
        assert built.model[name] == section["train"][name], name
    assert built.model["descriptor"] == {
        **DescriptorConfig().to_dict(),
        **section["train"]["descriptor"],
    }


def test_ml_core_does_not_import_the_workflow_config():
    import subprocess
    import sys

    code = (
        "import sys, mllg.nn, mllg.descriptors, mllg.production\n"
        "bad = [m for m in ('mllg.config', 'mllg.workflow') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ordered_states_of_the_schema_are_the_registry():
    from mllg.config import load_schema
    from mllg.orders import ORDERED_STATES

    schema = load_schema(SCHEMA)
    assert schema["$defs"]["analyze"]["properties"]["order"]["enum"] == list(ORDERED_STATES)
    with pytest.raises(ConfigError, match="needs a square lattice"):
        validate_config(tweak(f"{TET}.analyze.order", "neel"), SCHEMA)
