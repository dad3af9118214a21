"""Validation of the workflow configuration with one clear sentence per problem.

The Snakefile calls :func:`validate_config` right after loading the config, so that a bad
value stops the workflow before any job runs. The JSON schema
(``workflow/schemas/config.schema.yaml``) describes types, ranges, allowed values and
defaults; :func:`validate_config` fills the defaults in, turns every schema violation into
a sentence that names the key (``relax.L``), the offending value and what is allowed, and
then runs the cross-key checks of :data:`SECTION_CHECKS` that a schema cannot express
(``n_steps`` a multiple of ``save_every``, at least one electron and one hole, ...).

A new workflow stage adds its section to the schema (with a ``description`` for every
key: it appears in the messages) and, if needed, a check function to
:data:`SECTION_CHECKS`.

This module depends on jsonschema and PyYAML only (no Snakemake).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "SECTION_CHECKS", "load_schema", "validate_config"]


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

    Parameters
    ----------
    schema : str, pathlib.Path or mapping
        Path of the schema file, or the schema itself.

    Returns
    -------
    dict
        The schema.
    """
    if isinstance(schema, Mapping):
        return dict(schema)
    with open(schema, encoding="utf-8") as fh:
        return yaml.safe_load(fh)


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


def _with_defaults(validator_class: type) -> type:
    """Extend a jsonschema validator class to fill in ``default`` values (jsonschema FAQ)."""
    from jsonschema import validators

    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, MutableMapping):
            for name, sub in properties.items():
                if isinstance(sub, Mapping) and "default" in sub:
                    instance.setdefault(name, sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


# -- cross-key checks -------------------------------------------------------------------


def _check_relax(cfg: Mapping[str, Any]) -> Iterator[str]:
    """Checks of the ``relax`` section that the schema cannot express."""
    n_steps, save_every = cfg["n_steps"], cfg["save_every"]
    if n_steps % save_every:
        yield (
            f"relax.n_steps = {n_steps} must be a multiple of relax.save_every = {save_every} "
            "(frames are saved every save_every steps)."
        )
    n_sites = int(cfg["L"]) ** 2
    n_e = int(round(2 * n_sites * cfg["filling"]))
    if not 0 < n_e < 2 * n_sites:
        yield (
            f"relax.filling = {cfg['filling']} gives N_e = round(2 N filling) = {n_e} electrons "
            f"on N = {n_sites} sites (relax.L = {cfg['L']}): need 0 < N_e < {2 * n_sites}."
        )


#: Cross-key checks per top-level section: ``name -> f(section) -> iterator of sentences``.
#: They run only when the section passed the schema.
SECTION_CHECKS: dict[str, Callable[[Mapping[str, Any]], Iterator[str]]] = {
    "relax": _check_relax,
}


def validate_config(
    config: MutableMapping[str, Any], schema: str | Path | Mapping[str, Any]
) -> MutableMapping[str, Any]:
    """Validate the workflow config in place and fill in the schema defaults.

    Parameters
    ----------
    config : mutable mapping
        The configuration (Snakemake's ``config``); missing keys that have a ``default``
        in the schema are added to it.
    schema : str, pathlib.Path or mapping
        JSON schema (draft 2020-12) as a YAML/JSON file path or a mapping.

    Returns
    -------
    mutable mapping
        ``config`` itself, with defaults filled in and the keys of every mapping in the
        schema's order (so that key order in a YAML file does not change rule params).

    Raises
    ------
    ConfigError
        Listing every problem, one sentence each, naming the key (e.g. ``relax.L``), the
        bad value and the allowed values or range.
    """
    from jsonschema import Draft202012Validator

    schema = load_schema(schema)
    Draft202012Validator.check_schema(schema)
    validator = _with_defaults(Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.path])
    # dict.fromkeys: jsonschema reports each missing required key separately
    problems = list(dict.fromkeys(_sentence(e) for e in errors))
    bad_sections = {e.absolute_path[0] for e in errors if len(e.absolute_path)}
    for name, check in SECTION_CHECKS.items():
        section = config.get(name) if isinstance(config, Mapping) else None
        if isinstance(section, Mapping) and name not in bad_sections:
            problems.extend(check(section))
    if problems:
        raise ConfigError(problems)
    _order_like_schema(config, schema)
    return config


def _order_like_schema(instance: Any, schema: Mapping[str, Any]) -> None:
    """Reorder mapping keys in place to the schema's property order (recursively).

    Snakemake compares rule ``params`` by their representation, so two configs that differ
    only in key order (or in stating a default explicitly) would rerun jobs otherwise.
    """
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    if not isinstance(instance, MutableMapping) or not isinstance(props, Mapping):
        return
    order = {k: i for i, k in enumerate(props)}
    items = sorted(instance.items(), key=lambda kv: (order.get(kv[0], len(order)), str(kv[0])))
    instance.clear()
    instance.update(items)
    for key, value in instance.items():
        if key in props:
            _order_like_schema(value, props[key])
