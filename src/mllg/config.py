"""Validation of the workflow configuration with one clear sentence per problem.

The Snakefile calls :func:`validate_config` right after loading the config, so that a bad
value stops the workflow before any job runs. The JSON schema
(``workflow/schemas/config.schema.yaml``) describes types, ranges, allowed values and
defaults; :func:`validate_config` fills the defaults in, turns every schema violation into
a sentence that names the key (``systems.triangular_120.sample.L``), the offending value
and what is allowed, merges the ``repro`` or ``paper`` overrides of the selected scale,
and then runs the cross-key checks that a schema cannot express (lattice vs system kind
vs solver, filling or mu, ``n_steps`` a multiple of ``save_every``, a model for simulate,
ordering wavevectors on the lattice grid, at least one electron and one hole, ...).

A new stage adds its section to the schema (with a ``description`` for every key: it
appears in the messages) and, if needed, a check to :func:`_check_system`.

This module depends on jsonschema and PyYAML (no Snakemake, no torch); it reads the
declared settings of :mod:`mllg.settings` and the ordered states of :mod:`mllg.orders`.
It is one module (over 600 lines) because its four parts read the same schema: loading
(with the declared settings inserted), one sentence per schema error, the cross-key
checks, and the README key table (:func:`key_rows`).
"""

from __future__ import annotations

import copy
import difflib
import math
from collections.abc import Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "EQ_TAG",
    "ConfigError",
    "deep_merge",
    "key_rows",
    "load_schema",
    "load_system_files",
    "selected_systems",
    "system_tags",
    "tag_voltage",
    "validate_config",
    "voltage_tag",
]


class ConfigError(ValueError):
    """Invalid workflow configuration; the message lists every problem, one per line.

    Attributes
    ----------
    problems : list of str
        One sentence per problem, each naming the key.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = "Invalid config: " if n == 1 else f"Invalid config ({n} problems):\n  - "
        super().__init__(head + "\n  - ".join(self.problems))


def load_schema(schema: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """Load a JSON schema given as a YAML/JSON file path or as a mapping.

    Every object schema with ``x-settings: [ClassName, ...]`` gets the declared settings
    of those :mod:`mllg.settings` dataclasses (:func:`mllg.settings.json_schema`: type,
    default, range, allowed values, description) appended to its ``properties``, so that
    a model or training setting is declared once, in its dataclass.

    Parameters
    ----------
    schema : str, pathlib.Path or mapping
        Path of the schema file, or the schema itself.

    Returns
    -------
    dict
        The schema with the settings inserted.
    """
    if isinstance(schema, Mapping):
        out = copy.deepcopy(dict(schema))
    else:
        with open(schema, encoding="utf-8") as fh:
            out = yaml.safe_load(fh)
    _insert_settings(out)
    return out


def _insert_settings(node: Any) -> None:
    """Expand ``x-settings`` in place, recursively (see :func:`load_schema`)."""
    from mllg import settings

    if isinstance(node, list):
        for item in node:
            _insert_settings(item)
        return
    if not isinstance(node, MutableMapping):
        return
    for name in node.pop("x-settings", []) or []:
        props = node.setdefault("properties", {})
        for key, prop in settings.json_schema(getattr(settings, name)).items():
            props.setdefault(key, prop)
    for value in node.values():
        _insert_settings(value)


def _cell_type(prop: Mapping[str, Any]) -> str:
    names = {
        "integer": "integer",
        "number": "number",
        "string": "string",
        "boolean": "boolean",
        "object": "object",
        "null": "null",
    }
    types = prop.get("type", "any")
    types = types if isinstance(types, list) else [types]
    out = []
    for t in types:
        if t == "array":
            item = prop.get("items", {}).get("type", "any")
            out.append(f"list of {names.get(item, item)}")
        else:
            out.append(names.get(t, t))
    return " or ".join(out)


def _cell_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "true" if value is True else "false" if value is False else "null"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_cell_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_cell_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _cell_allowed(prop: Mapping[str, Any]) -> str:
    if "enum" in prop:
        return ", ".join(f"`{_cell_value(v)}`" for v in prop["enum"])
    if prop.get("type") == "array" and _range(prop.get("items", {})):
        return "items " + _range(prop["items"])
    if "pattern" in prop:
        return f"{_range(prop) or 'any number'} or `{str(prop['pattern']).strip('^$')}`"
    return _range(prop) or "any"


def key_rows(schema: Mapping[str, Any], section: str, prefix: str = "") -> list[str]:
    """The rows of the key table of ``config/README.md`` for one ``$defs`` section.

    One Markdown row per key (nested objects such as ``train.descriptor`` recursively):
    key, type, allowed values or range, default and description, all from the schema
    as :func:`load_schema` returns it (with the declared settings inserted), so the
    README documents exactly what validation checks. ``test_config`` compares them.
    """
    node = schema["$defs"][section] if not prefix else section
    required = set(node.get("required", []))
    base = prefix or section
    rows = []
    for key, prop in node.get("properties", {}).items():
        prop = _resolve(prop, schema)
        default = (
            f"`{_cell_value(prop['default'])}`"
            if "default" in prop
            else "*required*"
            if key in required
            else "none (optional)"
        )
        desc = str(prop.get("description", "")).replace("|", "\\|")
        rows.append(
            f"| `{base}.{key}` | {_cell_type(prop)} | {_cell_allowed(prop)} | {default} | {desc} |"
        )
        if prop.get("type") == "object" and prop.get("properties"):
            rows += key_rows(schema, prop, f"{base}.{key}")
    return rows


def _key(path: Any) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in path]
    return ".".join(parts).replace(".[", "[") or "<top level>"


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


_TYPE_NAMES = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "null": "null",
}


def _type_name(t: Any) -> str:
    if isinstance(t, list):
        return " or ".join(_TYPE_NAMES.get(x, x) for x in t)
    return _TYPE_NAMES.get(t, str(t))


def _yaml_hint(value: Any, expected: Any) -> str:
    """Hint for numbers that arrive as text.

    PyYAML (YAML 1.1) reads ``1e-3`` as a string, and Snakemake's ``--config
    relax='{L: 8}'`` passes nested values as strings.
    """
    wanted = expected if isinstance(expected, list) else [expected]
    if isinstance(value, str) and ("number" in wanted or "integer" in wanted):
        try:
            float(value)
        except ValueError:
            return ""
        return (
            " (the value is text: in YAML write 1e-3 as 1.0e-3, and set nested keys with"
            " --configfile, not --config section='{key: value}', which passes text)"
        )
    return ""


def _range(schema: Mapping[str, Any]) -> str:
    lo = hi = ""
    if "minimum" in schema:
        lo = f">= {schema['minimum']}"
    if "exclusiveMinimum" in schema:
        lo = f"> {schema['exclusiveMinimum']}"
    if "maximum" in schema:
        hi = f"<= {schema['maximum']}"
    if "exclusiveMaximum" in schema:
        hi = f"< {schema['exclusiveMaximum']}"
    return " and ".join(x for x in (lo, hi) if x)


def _sentence(error: Any) -> str:
    """One sentence for a jsonschema ``ValidationError``."""
    path = list(error.absolute_path)
    key = _key(path)
    sch = error.schema if isinstance(error.schema, Mapping) else {}
    desc = sch.get("description")
    about = f" ({key}: {desc})" if desc else ""
    v, value = error.validator, error.instance
    if v == "type":
        msg = (
            f"{key} = {_show(value)} has the wrong type: it must be "
            f"{_type_name(error.validator_value)}{_yaml_hint(value, error.validator_value)}"
        )
    elif v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        msg = f"{key} = {value!r} is out of range: it must be {_range(sch)}"
    elif v == "enum":
        allowed = ", ".join(str(x) for x in error.validator_value)
        msg = f"{key} = {_show(value)} is not allowed: choose one of {allowed}"
    elif v == "pattern":
        msg = (
            f"{key} = {_show(value)} is not allowed: the only text value is {_pattern_text(error)}"
        )
    elif v == "const":
        msg = f"{key} = {_show(value)} is not allowed: it must be {error.validator_value!r}"
    elif v == "additionalProperties":
        known = sorted(sch.get("properties", {}))
        extra = sorted(set(value) - set(known)) if isinstance(value, Mapping) else []
        where = f"in {key}" if path else "at the top level"
        keys = ", ".join(repr(x) for x in extra)
        close = [m for x in extra for m in difflib.get_close_matches(str(x), known, n=1)]
        hint = f" (did you mean {', '.join(repr(m) for m in close)}?)" if close else ""
        msg = (
            f"unknown key{'s' if len(extra) > 1 else ''} {keys} {where}{hint}: "
            f"allowed keys are {', '.join(known)}"
        )
        about = ""
    elif v == "required":
        missing = [k for k in error.validator_value if k not in value]
        full = ", ".join(_key([*path, k]) for k in missing)
        props = sch.get("properties", {})
        descs = "; ".join(
            f"{_key([*path, k])}: {props[k]['description']}"
            for k in missing
            if "description" in props.get(k, {})
        )
        msg = f"missing required key{'s' if len(missing) > 1 else ''} {full}"
        about = f" ({descs})" if descs else ""
    else:
        msg = f"{key}: {error.message}"
    return msg + about + "."


def _pattern_text(error: Any) -> str:
    """The text a ``pattern`` of the form ``^word$`` allows, quoted."""
    return repr(str(error.validator_value).strip("^$"))


def _with_defaults(validator_class: type) -> type:
    """Extend a jsonschema validator class to fill in ``default`` values (jsonschema FAQ)."""
    from jsonschema import validators

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, MutableMapping):
            for name, sub in properties.items():
                if isinstance(sub, Mapping) and "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


#: Tag of the single data set of an equilibrium system (driven systems: one per voltage).
EQ_TAG = "eq"
#: Study scales: ``demo`` is a system's own settings; each other scale is an optional
#: block of overrides of the same name in the system (``repro``: about an hour per
#: system on a 2-core machine; ``paper``: cluster sizes).
SCALES = ("demo", "repro", "paper")


def voltage_tag(voltage: float) -> str:
    """Path tag of a bias voltage, e.g. ``V+0.200``.

    Parameters
    ----------
    voltage : float
        Bias V in units of t/e.

    Returns
    -------
    str
        The tag (sign and three decimals).
    """
    return f"V{float(voltage):+.3f}"


def tag_voltage(tag: str) -> float | None:
    """Inverse of :func:`voltage_tag`; ``None`` for :data:`EQ_TAG`."""
    return None if tag == EQ_TAG else float(tag[1:])


def system_tags(system: Mapping[str, Any]) -> list[str]:
    """Data-set tags of a system: one per voltage (driven) or ``["eq"]`` (equilibrium)."""
    if system["kind"] == "driven":
        return [voltage_tag(v) for v in system["sample"]["voltages"]]
    return [EQ_TAG]


# -- cross-key checks -------------------------------------------------------------------


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge of two mappings: values of ``over`` win, sub-mappings are merged.

    Parameters
    ----------
    base, over : mapping
        The mappings; neither is modified.

    Returns
    -------
    dict
        A new mapping (deep copies of the values).
    """
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _check_system(name: str, cfg: Mapping[str, Any]) -> Iterator[str]:
    """Checks of one ``systems.<name>`` section that the schema cannot express."""
    key = f"systems.{name}"
    kind, model, sample = cfg["kind"], cfg["model"], cfg["sample"]
    train, simulate, analyze = cfg["train"], cfg["simulate"], cfg["analyze"]
    lattice = model["lattice"]
    driven = kind == "driven"
    if driven != (lattice == "strip"):
        yield (
            f"{key}.model.lattice = {lattice!r} does not fit {key}.kind = {kind!r}: a driven "
            "system is a strip between leads, an equilibrium system a periodic square or "
            "triangular lattice."
        )
    if driven != (sample["solver"] == "negf"):
        yield (
            f"{key}.sample.solver = {sample['solver']!r} does not fit {key}.kind = {kind!r}: "
            "driven systems sample with negf, equilibrium systems with ed or kpm."
        )
    has_f, has_mu = model.get("filling") is not None, model.get("mu") is not None
    if has_f == has_mu:
        yield (
            f"{key}.model needs exactly one of filling (canonical) and mu (grand canonical); "
            f"got {'both' if has_f else 'neither'}."
        )
    elif driven and has_f:
        yield f"{key}.model.filling is not allowed for a driven strip: NEGF needs mu."
    if sample.get("label_mu") is not None and (driven or not has_f):
        yield (
            f"{key}.sample.label_mu = {sample['label_mu']!r} needs an equilibrium model with "
            "filling (canonical dynamics, grand-canonical labels); set it to null."
        )
    elif sample.get("label_mu") == "auto" and not model["kT"] > 0:
        yield (
            f"{key}.sample.label_mu = 'auto' needs {key}.model.kT > 0 (at kT = 0 the mean "
            "filling is a step function of mu); give mu as a number or raise model.kT."
        )
    if lattice == "strip":
        if model["periodic_y"] and model["W"] < 3:
            yield f"{key}.model.W = {model['W']} must be >= 3 with periodic_y = true."
        if model["t2"] or model["t3"]:
            yield f"{key}.model.t2 and t3 must be 0 for a strip (NEGF: nearest neighbours only)."
    elif train["lead_columns"]:
        yield f"{key}.train.lead_columns = {train['lead_columns']} needs a strip lattice."
    yield from _settings_problems(key, train)
    if driven and train["potential"] == "conservative":
        yield (
            f"{key}.train.potential = {train['potential']!r}: a driven system needs "
            "'vector' or 'generalized' (the NEGF field is not a gradient)."
        )
    if train["target"] == "nonequilibrium":
        if not driven:
            yield f"{key}.train.target = 'nonequilibrium' needs a driven system."
        elif 0.0 not in [float(v) for v in sample["voltages"]]:
            yield (
                f"{key}.train.target = 'nonequilibrium' needs V = 0 in {key}.sample.voltages "
                f"= {sample['voltages']} (its model gives the equilibrium field)."
            )
    from mllg.orders import ordered_state

    order = analyze["order"]
    need, period = ordered_state(order).lattice, ordered_state(order).period
    if need != lattice:
        yield (
            f"{key}.analyze.order = {order!r} needs a {need} lattice, but "
            f"{key}.model.lattice = {lattice!r}."
        )
    elif lattice != "strip":
        for stage in ("sample", "simulate"):
            size = cfg[stage]["L"]
            if size % period:
                yield (
                    f"{key}.{stage}.L = {size} must be a multiple of {period} for the "
                    f"{order} state (its ordering wavevectors must lie on the lattice grid)."
                )
    if has_f and not has_mu and lattice != "strip":
        sizes = (("sample.L", sample["L"]), ("validate.speed_L", cfg["validate"]["speed_L"]))
        for where, size in sizes:
            n_sites = int(size) ** 2
            n_e = int(round(2 * n_sites * model["filling"]))
            if not 0 < n_e < 2 * n_sites:
                yield (
                    f"{key}.model.filling = {model['filling']} gives N_e = round(2 N filling) = "
                    f"{n_e} electrons on N = {n_sites} sites ({key}.{where} = {size}): "
                    f"need 0 < N_e < {2 * n_sites}."
                )
                break
    if simulate["n_steps"] % simulate["save_every"]:
        yield (
            f"{key}.simulate.n_steps = {simulate['n_steps']} must be a multiple of "
            f"{key}.simulate.save_every = {simulate['save_every']} "
            "(frames are saved every save_every steps)."
        )
    if simulate["n_steps"] // simulate["save_every"] < 3:
        yield (
            f"{key}.simulate.n_steps / save_every = "
            f"{simulate['n_steps'] // simulate['save_every']} saved frames: need at least 3 "
            "to fit a growth law or a velocity."
        )
    if not train["enabled"] and simulate["model"] is None:
        yield (
            f"{key}.simulate.model is missing: with {key}.train.enabled = false, simulate "
            "needs an exported model folder (simulate.model: path/to/model)."
        )
    if simulate["model"] is not None and not (Path(simulate["model"]) / "config.json").exists():
        yield (
            f"{key}.simulate.model = {simulate['model']!r} is not an exported model folder "
            "(no config.json there; use the model/ folder written by the train stage)."
        )
    if driven:
        tags = [voltage_tag(v) for v in sample["voltages"]]
        if len(set(tags)) != len(tags):
            yield (
                f"{key}.sample.voltages = {sample['voltages']} holds voltages that share an "
                f"output tag ({', '.join(tags)}): voltages must differ in the first three "
                "decimals."
            )
    for stage in ("train", "simulate"):
        seeds = [int(x) for x in cfg[stage]["seeds"]]
        if len(set(seeds)) != len(seeds):
            yield f"{key}.{stage}.seeds = {cfg[stage]['seeds']} holds a seed twice."
    yield from _active_problems(key, cfg)
    yield from _reference_problems(key, cfg)


def _reference_problems(key: str, cfg: Mapping[str, Any]) -> Iterator[str]:
    """Checks of ``validate.reference``: an equilibrium system and a readable file of
    labelled frames on an L x L lattice."""
    path = cfg["validate"].get("reference")
    if path is None:
        return
    where = f"{key}.validate.reference = {path!r}"
    if cfg["kind"] != "equilibrium":
        yield f"{where} needs an equilibrium system (set it to null)."
        return
    try:
        import numpy as np

        with np.load(path) as data:
            spins, fields, size = data["spins"], data["fields"], int(data["L"])
    except (OSError, KeyError, ValueError) as err:
        yield (
            f"{where} cannot be read as an .npz with arrays spins, fields and L "
            f"({type(err).__name__}: {err})."
        )
        return
    if spins.ndim != 3 or spins.shape != fields.shape or spins.shape[1:] != (size * size, 3):
        yield (
            f"{where} holds spins {spins.shape} and fields {fields.shape}; an L = {size} "
            f"lattice needs both (frames, {size * size}, 3)."
        )


def _order_period(cfg: Mapping[str, Any]) -> int | None:
    """Period of the ordered state of ``analyze.order`` when it fits the lattice, else None."""
    from mllg.orders import ordered_state

    state = ordered_state(cfg["analyze"]["order"])
    return state.period if state.lattice == cfg["model"]["lattice"] else None


def _active_problems(key: str, cfg: Mapping[str, Any]) -> Iterator[str]:
    """Checks of the learning loop (``active``) against the rest of the system."""
    act = cfg["active"]
    if not act["iterations"] or not cfg["train"]["enabled"]:
        return  # no loop without training: simulate uses simulate.model as it is
    where = f"{key}.active.iterations = {act['iterations']}"
    if cfg["kind"] != "equilibrium":
        yield f"{where} needs an equilibrium system (driven systems have no learning loop)."
    if len(cfg["train"]["seeds"]) < 2:
        yield (
            f"{where} needs a committee: {key}.train.seeds = {cfg['train']['seeds']} must "
            "hold at least two seeds (their disagreement selects the frames)."
        )
    if act["trust_lower"] >= act["trust_upper"]:
        yield (
            f"{key}.active.trust_lower = {act['trust_lower']} must be below "
            f"{key}.active.trust_upper = {act['trust_upper']}."
        )
    if act["n_steps"] % act["save_every"]:
        yield (
            f"{key}.active.n_steps = {act['n_steps']} must be a multiple of "
            f"{key}.active.save_every = {act['save_every']}."
        )
    size = act.get("L")
    if size is not None and size != cfg["sample"]["L"]:
        if not act["warm_start"]:
            yield (
                f"{key}.active.L = {size} differs from {key}.sample.L = "
                f"{cfg['sample']['L']}, which needs {key}.active.warm_start = true (a "
                "retraining on the loop lattice starts from the previous model)."
            )
        period = _order_period(cfg)
        if period and size % period:
            yield (
                f"{key}.active.L = {size} must be a multiple of {period} for the "
                f"{cfg['analyze']['order']} state (its perturbed exploration runs start "
                "from it)."
            )
        filling = cfg["model"].get("filling")
        if filling is not None and not 0 < round(2 * size**2 * filling) < 2 * size**2:
            yield (
                f"{key}.model.filling = {filling} gives no electron or a full band on the "
                f"{size} x {size} loop lattice ({key}.active.L = {size})."
            )
    if not act["quenches"] + len(act["kT_bath"]) + act["perturbed"]:
        yield (
            f"{where} needs exploration runs: active.quenches, active.kT_bath and "
            "active.perturbed are all empty."
        )


def _settings_problems(key: str, train: Mapping[str, Any]) -> Iterator[str]:
    """Problems of the ``train`` settings found by building the settings dataclasses.

    The ranges of single keys are in the schema (generated from the same declarations);
    this adds the combinations a dataclass refuses (e.g. ``message_r_cut`` with a vector
    potential, ``inner_r_cut`` above ``r_cut``), named by their key.
    """
    from mllg.settings import (
        DescriptorConfig,
        ModelConfig,
        SettingError,
        TrainConfig,
        config_values,
    )

    model = {**config_values(ModelConfig, train), "descriptor": dict(train["descriptor"])}
    steps = (
        ("train.descriptor", lambda: DescriptorConfig.from_dict(dict(train["descriptor"]))),
        ("train", lambda: ModelConfig.from_dict(model)),
        ("train", lambda: TrainConfig.from_dict({**config_values(TrainConfig, train)})),
    )
    for where, build in steps:
        try:
            build()
        except SettingError as err:
            yield f"{key}.{where}.{err.name} = {err.value!r} is not allowed: {err.allowed}."
            return


def selected_systems(config: Mapping[str, Any]) -> list[str]:
    """Names of the systems the workflow runs (``system``: a name or ``all``).

    Parameters
    ----------
    config : mapping
        A validated configuration.

    Returns
    -------
    list of str
        Sorted names of the selected systems.
    """
    if config["system"] == "all":
        return sorted(config["systems"])
    return [config["system"]]


def load_system_files(folder: str | Path) -> dict[str, Any]:
    """The ``systems`` sections of every ``*.yaml`` in ``folder`` except ``config.yaml``.

    The Snakefile merges the user's config over these, so that a small override file
    (``--configfile my.yaml`` with only the changed keys) is enough.

    Parameters
    ----------
    folder : str or pathlib.Path
        The repository's ``config/`` folder.

    Returns
    -------
    dict
        ``{"systems": {name: section, ...}}``.
    """
    systems: dict[str, Any] = {}
    for path in sorted(Path(folder).glob("*.yaml")):
        if path.name == "config.yaml":
            continue
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh) or {}
        if isinstance(data, Mapping) and isinstance(data.get("systems"), Mapping):
            systems = deep_merge(systems, data["systems"])
    return {"systems": systems}


def _nonfinite(instance: Any, path: list) -> Iterator[str]:
    """One sentence per NaN or infinite number anywhere in the config."""
    if isinstance(instance, Mapping):
        for key, value in instance.items():
            yield from _nonfinite(value, [*path, key])
    elif isinstance(instance, list):
        for k, value in enumerate(instance):
            yield from _nonfinite(value, [*path, k])
    elif isinstance(instance, float) and not math.isfinite(instance):
        yield (
            f"{_key(path)} = {instance!r} is not a finite number: every number of the config "
            "must be finite (.nan and .inf are not allowed)."
        )


def _integers(instance: Any, schema: Any, root: Mapping[str, Any]) -> None:
    """Integral floats (``2.0``) at integer keys become ints, in place (recursively)."""
    schema = _resolve(schema, root)
    if not isinstance(schema, Mapping):
        return
    if isinstance(instance, MutableMapping):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            sub = props.get(key, extra if isinstance(extra, Mapping) else None)
            if sub is None:
                continue
            sub_r = _resolve(sub, root)
            types = sub_r.get("type") if isinstance(sub_r, Mapping) else None
            types = types if isinstance(types, list) else [types]
            if "integer" in types and "number" not in types and _integral(value):
                instance[key] = int(value)
            else:
                _integers(value, sub, root)
    elif isinstance(instance, list):
        items = _resolve(schema.get("items"), root)
        if isinstance(items, Mapping) and items.get("type") == "integer":
            instance[:] = [int(v) if _integral(v) else v for v in instance]


def _integral(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value == int(value)


def _schema_problems(validator: Any, instance: Any, prefix: str = "") -> list[str]:
    bad = list(_nonfinite(instance, []))
    if bad:
        return [prefix + b for b in bad]
    _integers(instance, validator.schema, validator.schema)
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.path])
    # dict.fromkeys: jsonschema reports each missing required key separately
    return list(dict.fromkeys(prefix + _sentence(e) for e in errors))


def validate_config(
    config: MutableMapping[str, Any],
    schema: str | Path | Mapping[str, Any],
    base_dir: str | Path | None = None,
) -> MutableMapping[str, Any]:
    """Validate the workflow config in place, fill in the schema defaults, apply the scale.

    Steps: the config is checked against the schema (defaults filled in); for every
    scale of :data:`SCALES` the system's override block of that name (``repro``,
    ``paper``) is merged over it and checked the same way (problems there are reported
    with the prefix "with scale = paper:"), so a typo in any scale stops every run; the
    cross-key checks of :func:`_check_system` run on all scales; finally
    ``systems.<name>`` is replaced by the effective section of the selected scale
    (without its override blocks) and keys are put in schema order.

    Parameters
    ----------
    config : mutable mapping
        The configuration (Snakemake's ``config``); modified in place.
    schema : str, pathlib.Path or mapping
        JSON schema (draft 2020-12) as a YAML/JSON file path or a mapping.
    base_dir : str or pathlib.Path, optional
        Directory of the workflow: a relative data path (``validate.reference``) that
        does not exist from the working directory is taken relative to it (the files
        the repository ships, also when Snakemake runs in another directory).

    Returns
    -------
    mutable mapping
        ``config`` itself.

    Raises
    ------
    ConfigError
        Listing every problem, one sentence each, naming the key (e.g.
        ``systems.triangular_120.sample.L``), the bad value and what is allowed.
    """
    from jsonschema import Draft202012Validator

    schema = load_schema(schema)
    Draft202012Validator.check_schema(schema)
    validator = _with_defaults(Draft202012Validator)(schema)
    problems = _schema_problems(validator, config)
    if problems:
        raise ConfigError(problems)
    effective = {}
    for scale in SCALES:
        merged = copy.deepcopy(dict(config))
        for name, section in merged["systems"].items():
            overrides = {k: section.pop(k, None) or {} for k in SCALES[1:]}
            if scale != "demo":
                merged["systems"][name] = deep_merge(section, overrides[scale])
        prefix = f"with scale = {scale}: " if scale != "demo" else ""
        problems += _schema_problems(validator, merged, prefix)
        if not problems and base_dir is not None:
            for section in merged["systems"].values():
                ref = section["validate"].get("reference")
                if ref and not Path(ref).exists() and (Path(base_dir) / ref).exists():
                    section["validate"]["reference"] = str(Path(base_dir) / ref)
        if not problems:
            for name, section in merged["systems"].items():
                problems.extend(prefix + p for p in _check_system(name, section))
        effective[scale] = merged
    if not problems and config["system"] != "all" and config["system"] not in config["systems"]:
        names = ", ".join(["all", *sorted(config["systems"])])
        problems.append(
            f"system = {config['system']!r} is not a known system: choose one of {names}."
        )
    if problems:
        raise ConfigError(list(dict.fromkeys(problems)))
    chosen = effective[config["scale"]]
    config.clear()
    config.update(chosen)
    _order_like_schema(config, schema)
    return config


def _resolve(schema: Any, root: Mapping[str, Any]) -> Any:
    """Follow a local ``$ref`` (``#/$defs/name``) of ``schema`` inside ``root``."""
    while isinstance(schema, Mapping) and "$ref" in schema:
        node: Any = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema = node
    return schema


def _order_like_schema(
    instance: Any, schema: Mapping[str, Any], root: Mapping[str, Any] | None = None
) -> None:
    """Reorder mapping keys in place to the schema's property order (recursively).

    Snakemake compares rule ``params`` by their representation, so two configs that differ
    only in key order (or in stating a default explicitly) would rerun jobs otherwise.
    Mappings under ``additionalProperties`` (the systems) are sorted by name.
    """
    root = schema if root is None else root
    schema = _resolve(schema, root)
    if not isinstance(instance, MutableMapping) or not isinstance(schema, Mapping):
        return
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    order = {k: i for i, k in enumerate(props)}
    items = sorted(instance.items(), key=lambda kv: (order.get(kv[0], len(order)), str(kv[0])))
    instance.clear()
    instance.update(items)
    for key, value in instance.items():
        sub = props.get(key, extra if isinstance(extra, Mapping) else None)
        if sub is not None:
            _order_like_schema(value, sub, root)
