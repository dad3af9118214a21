"""Declared settings: one place for the name, default, range and error of every setting.

A settings dataclass (:class:`mllg.descriptors.DescriptorConfig`,
:class:`mllg.nn.ModelConfig`, :class:`mllg.nn.TrainConfig`) declares each field with
:func:`setting`::

    r_cut: float = setting(2.0, "cutoff radius (nearest-neighbour distances)", minimum=1)

and calls :func:`check_settings` in ``__post_init__``. Everything else derives from that
declaration:

* :func:`check_settings` coerces and checks every field (finite numbers, integers,
  ranges, allowed values) and raises :class:`SettingError`, one sentence naming the
  field, the value and what is allowed;
* :func:`json_schema` gives the JSON-schema properties (type, default, range, enum,
  description) that the workflow schema inserts for the keys of ``train`` (see
  ``x-settings`` in ``workflow/schemas/config.schema.yaml``), so that a workflow config is
  checked against the same ranges before any job runs;
* :func:`settings_from_dict` builds an instance from a mapping, refusing unknown keys.

Fields declared with ``config=False`` (per-job values such as a seed or a thread count)
are settings of the library only and do not appear in the workflow schema.

This module uses the standard library only; the ML core imports
it, and the workflow configuration (:mod:`mllg.config`) reads the schemas it generates.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "ACTIVATIONS",
    "DESCRIPTOR_KINDS",
    "DTYPES",
    "POTENTIALS",
    "DescriptorConfig",
    "ModelConfig",
    "SettingError",
    "TrainConfig",
    "check_settings",
    "config_values",
    "json_schema",
    "setting",
    "settings_from_dict",
]

_MISSING = dataclasses.MISSING
try:  # numpy booleans are not numbers here (numpy is optional for this module)
    from numpy import bool_ as np_bool
except ImportError:  # pragma: no cover
    np_bool = bool


class SettingError(ValueError):
    """A setting with a value outside its declared range; names the field.

    Attributes
    ----------
    name : str
        The field (e.g. ``"message_r_cut"``).
    value : Any
        The offending value.
    allowed : str
        What is allowed, as a clause (``"it must be a number >= 1"``).
    """

    def __init__(self, name: str, value: Any, allowed: str, what: str = "") -> None:
        self.name, self.value, self.allowed = name, value, allowed
        prefix = f"{what} " if what else ""
        super().__init__(f"{prefix}{name}={value!r} is not allowed: {allowed}.")


def setting(
    default: Any = _MISSING,
    doc: str = "",
    *,
    minimum: float | None = None,
    exclusive_minimum: float | None = None,
    maximum: float | None = None,
    exclusive_maximum: float | None = None,
    choices: tuple | None = None,
    config: bool = True,
    factory: Any = None,
) -> Any:
    """A dataclass field with its declared contract.

    Parameters
    ----------
    default : Any
        Default value (immutable); use ``factory`` for a mutable one.
    doc : str
        One-line description (used in the workflow schema and its error messages).
    minimum, exclusive_minimum, maximum, exclusive_maximum : float, optional
        Range of a number, or of every item of a tuple of numbers.
    choices : tuple, optional
        Allowed values.
    config : bool
        Whether the field is a key of the workflow configuration.
    factory : callable, optional
        Default factory (for a dict default).

    Returns
    -------
    dataclasses.Field
    """
    meta = {
        "doc": doc,
        "minimum": minimum,
        "exclusiveMinimum": exclusive_minimum,
        "maximum": maximum,
        "exclusiveMaximum": exclusive_maximum,
        "choices": choices,
        "config": config,
    }
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _declared(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls) if "doc" in f.metadata]


def _base_type(hint: Any) -> tuple[Any, bool]:
    """(type without ``None``, whether ``None`` is allowed) of a field annotation."""
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return hint, False


def _range_clause(meta: Mapping[str, Any]) -> str:
    parts = []
    for key, sign in (
        ("minimum", ">="),
        ("exclusiveMinimum", ">"),
        ("maximum", "<="),
        ("exclusiveMaximum", "<"),
    ):
        if meta.get(key) is not None:
            parts.append(f"{sign} {meta[key]:g}")
    return " and ".join(parts)


def _in_range(x: float, meta: Mapping[str, Any]) -> bool:
    lo, xlo = meta.get("minimum"), meta.get("exclusiveMinimum")
    hi, xhi = meta.get("maximum"), meta.get("exclusiveMaximum")
    return (
        (lo is None or x >= lo)
        and (xlo is None or x > xlo)
        and (hi is None or x <= hi)
        and (xhi is None or x < xhi)
    )


def _number(name: str, value: Any, kind: type, meta: Mapping[str, Any], what: str) -> Any:
    """``value`` as a finite ``int`` or ``float`` within the declared range."""
    noun = "an integer" if kind is int else "a finite number"
    rng = _range_clause(meta)
    allowed = f"it must be {noun}" + (f" {rng}" if rng else "")
    if isinstance(value, bool | np_bool) or not isinstance(value, numbers.Real):
        raise SettingError(name, value, allowed, what)
    if not math.isfinite(value):
        raise SettingError(name, value, allowed, what)
    if kind is int:
        if value != int(value):
            raise SettingError(name, value, allowed, what)
        value = int(value)
    else:
        value = float(value)
    if not _in_range(value, meta):
        raise SettingError(name, value, allowed, what)
    return value


def check_settings(obj: Any, what: str = "") -> None:
    """Coerce and check every declared field of a frozen settings dataclass in place.

    Integers accept integral floats (``2.0 -> 2``), floats accept integers, tuples of
    integers accept lists; numbers must be finite and in range, strings among
    ``choices``.

    Raises
    ------
    SettingError
        The first field that is not allowed, named in one sentence.
    """
    for f, hint in _declared(type(obj)):
        meta = f.metadata
        value = getattr(obj, f.name)
        kind, nullable = _base_type(hint)
        if value is None:
            if not nullable:
                raise SettingError(f.name, value, "it must not be null", what)
            continue
        origin = typing.get_origin(kind)
        if kind is bool:
            if not isinstance(value, bool | np_bool):
                raise SettingError(f.name, value, "it must be true or false", what)
            value = bool(value)
        elif kind in (int, float):
            value = _number(f.name, value, kind, meta, what)
        elif origin is tuple:
            item = typing.get_args(kind)[0]
            if isinstance(value, str | bytes) or not hasattr(value, "__len__") or not value:
                raise SettingError(f.name, value, "it must be a non-empty list", what)
            value = tuple(_number(f.name, v, item, meta, what) for v in value)
        elif kind is str:
            if meta.get("choices") and value not in meta["choices"]:
                allowed = "use one of " + ", ".join(repr(c) for c in meta["choices"])
                raise SettingError(f.name, value, allowed, what)
        object.__setattr__(obj, f.name, value)


_JSON_TYPES = {int: "integer", float: "number", str: "string", bool: "boolean", dict: "object"}


def json_schema(cls: type) -> dict[str, dict[str, Any]]:
    """JSON-schema properties of the configuration fields of a settings dataclass.

    Returns
    -------
    dict
        ``{name: {"type", "default", range keys, "enum", "description"}}`` in field
        order, for every field declared with ``config=True``.
    """
    out: dict[str, dict[str, Any]] = {}
    for f, hint in _declared(cls):
        meta = f.metadata
        if not meta["config"]:
            continue
        kind, nullable = _base_type(hint)
        prop: dict[str, Any] = {}
        rng = {k: meta[k] for k in _RANGE_KEYS if meta.get(k) is not None}
        if typing.get_origin(kind) is tuple:
            item = typing.get_args(kind)[0]
            prop.update(type="array", items={"type": _JSON_TYPES[item], **rng}, minItems=1)
        else:
            name = _JSON_TYPES[kind]
            prop["type"] = [name, "null"] if nullable else name
            prop.update(rng)
        if meta.get("choices"):
            prop["enum"] = list(meta["choices"]) + ([None] if nullable else [])
        default = f.default_factory() if f.default is _MISSING else f.default
        if default is not _MISSING:
            prop["default"] = list(default) if isinstance(default, tuple) else default
        prop["description"] = meta["doc"]
        out[f.name] = prop
    return out


_RANGE_KEYS = ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")


def config_values(cls: type, section: Mapping[str, Any]) -> dict[str, Any]:
    """The values in ``section`` of the configuration fields of a settings dataclass.

    A workflow section (``train``) holds the keys of several dataclasses next to its own;
    this picks those of ``cls`` (declared with ``config=True``) that are present.
    """
    return {
        f.name: section[f.name]
        for f in dataclasses.fields(cls)
        if f.metadata.get("config") and f.name in section
    }


def settings_from_dict(cls: type, data: Mapping[str, Any], what: str) -> Any:
    """``cls(**data)`` for a settings dataclass; unknown keys stop with one sentence.

    ``what`` names the settings in the message (``"descriptor"``, ``"model"``).
    """
    allowed = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - allowed
    if unknown:
        raise ValueError(
            f"unknown {what} keys {sorted(unknown)}; allowed keys are {sorted(allowed)}."
        )
    return cls(**data)


# ------------------------------------------------------------------ the ML core's settings
#: Descriptor kinds, network activations, potentials and precisions (names; the
#: modules that build them map the names to their objects).
DESCRIPTOR_KINDS = ("bispectrum", "plain")
ACTIVATIONS = ("silu", "tanh", "relu")
POTENTIALS = ("conservative", "generalized", "vector")
DTYPES = ("float64", "float32")


@dataclass(frozen=True)
class DescriptorConfig:
    """Settings of a descriptor.

    Parameters
    ----------
    kind : {"bispectrum", "plain"}
        Symmetrized bispectrum (default) or the raw object values.
    r_cut : float
        Cutoff radius ``r_c`` in units of the nearest-neighbour distance.
    bond_cut : float
        Longest neighbour–neighbour bond kept (centre–neighbour bonds: all within ``r_c``).
        ``0`` keeps only the centre–neighbour bonds.
    chirality : bool
        Include the scalar chiralities of triangles.
    triangle_cut : float or None
        Longest triangle edge; ``None`` means 1 (elementary triangles) on the triangular
        lattice and ``sqrt(2)`` (half plaquettes) on square lattices and strips.
    inner_r_cut : float or None
        Neighbour–neighbour bonds and triangles use only sites within this radius of the
        centre (``None``: ``r_cut``). A long ``r_cut`` with a short ``inner_r_cut`` keeps
        long-range pair correlations with the centre at a modest feature count.
    triples : bool
        Bispectrum only: include the degree-3 invariants (copy x reference x reference and
        reference triples). ``False`` keeps the A1 coefficients, the power spectrum and the
        projections ``f^{Gamma,a} . r^Gamma`` on the own reference (degree <= 2).
    """

    kind: str = setting(
        "bispectrum", "symmetrized bispectrum or raw bond values", choices=DESCRIPTOR_KINDS
    )
    r_cut: float = setting(2.0, "cutoff radius in nearest-neighbour distances", minimum=1)
    bond_cut: float = setting(1.0, "longest neighbour-neighbour bond kept", minimum=0)
    chirality: bool = setting(True, "include scalar chiralities of triangles")
    triangle_cut: float | None = setting(
        None,
        "longest triangle edge (null: 1 on the triangular lattice, sqrt(2) on square "
        "lattices and strips)",
        exclusive_minimum=0,
    )
    inner_r_cut: float | None = setting(
        None,
        "neighbour-neighbour bonds and triangles only within this radius of the centre "
        "(null: r_cut; must not exceed r_cut)",
        exclusive_minimum=0,
    )
    triples: bool = setting(True, "include the degree-3 bispectrum invariants")

    def __post_init__(self) -> None:
        check_settings(self, "descriptor")
        if self.inner_r_cut is not None and self.inner_r_cut > self.r_cut:
            raise SettingError(
                "inner_r_cut",
                self.inner_r_cut,
                f"it must not exceed r_cut = {self.r_cut}",
                "descriptor",
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DescriptorConfig:
        return settings_from_dict(cls, data, "descriptor")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of a BP model (declared settings, :mod:`mllg.settings`).

    Each field's range and description are declared once, below; the workflow keys of
    ``train`` are generated from them.

    Parameters
    ----------
    descriptor : dict
        :class:`mllg.descriptors.DescriptorConfig` fields.
    hidden : tuple of int
        Widths of the hidden layers of the site network.
    activation : {"silu", "tanh", "relu"}
        Smooth activations (SiLU, tanh) give smooth fields.
    potential : {"conservative", "generalized", "vector"}
        ``h = -dE/dS`` (one scalar per site), the generalized potential (two scalars per
        site) or the equivariant vector model (``2 K`` scalars per site, module notes).
    lead_columns : int
        Strip only: number of columns next to each lead that get a distance encoding.
    dtype : {"float64", "float32"}
    vector_r_cut : float
        Vector model only: the slots are the lattice displacements ``d`` with
        ``0 < |d| <= vector_r_cut`` (nearest-neighbour distances; 2.0 gives the four
        slots ``+-1, +-2`` along a chain and 12 on a strip).
    message_r_cut : float
        ``0``: the site network sees ``G_i`` only. ``>= 1``: one message-passing step
        (module notes) over the sites at ``0 < |d_k| <= message_r_cut``; needs a
        conservative or generalized potential and at least two hidden widths.
    message_width : int
        Width of the site embedding ``z_i`` of a message-passing model.
    pair_r_cut : float
        ``0``: no pair term. ``>= 1``: add the shell-resolved bilinear exchange
        ``E_pair`` (module notes) over ``0 < |d| <= pair_r_cut``; conservative or
        generalized only.

    Raises
    ------
    mllg.settings.SettingError
        A value outside its range, or a combination the model cannot build.
    """

    descriptor: dict = setting(
        doc="descriptor settings (mllg.descriptors.DescriptorConfig)",
        factory=lambda: DescriptorConfig().to_dict(),
        config=False,
    )
    hidden: tuple[int, ...] = setting((64, 64), "hidden layer widths", minimum=1)
    activation: str = setting("silu", "activation function", choices=ACTIVATIONS)
    potential: str = setting(
        "conservative",
        "conservative (h = -dE/dS), generalized (E_A, E_B; driven systems) or vector "
        "(equivariant h_i = sum_k [w_k S_(i+d_k) + u_k S_i x S_(i+d_k)]; driven systems, "
        "learns spin-transfer torques)",
        choices=POTENTIALS,
    )
    lead_columns: int = setting(
        0, "strip only, columns next to each lead with a distance encoding", minimum=0
    )
    dtype: str = setting("float64", "floating-point precision of the network", choices=DTYPES)
    vector_r_cut: float = setting(
        2.0,
        "vector potential only: the slots d_k are the lattice displacements with "
        "0 < |d_k| <= vector_r_cut (nearest-neighbour distances)",
        minimum=1,
    )
    message_r_cut: float = setting(
        0.0,
        "0: eps_i = eps(G_i); >= 1: one message-passing step, eps_i reads the site "
        "embeddings z_j = phi(G_j) of the sites within message_r_cut (conservative or "
        "generalized; needs two hidden widths: the first embeds); field range "
        "2 (r_cut + message_r_cut)",
        minimum=0,
    )
    message_width: int = setting(
        16, "width of the site embedding z_j of a message-passing model", minimum=1
    )
    pair_r_cut: float = setting(
        0.0,
        "0: no pair term; >= 1: add a learned Heisenberg exchange E_pair = 1/2 sum_i "
        "sum_(0 < |d| <= pair_r_cut) J(|d|) S_i . S_(i+d), one coupling per shell, fixed "
        "before training by a least-squares fit of the perpendicular field (conservative "
        "or generalized)",
        minimum=0,
    )

    def __post_init__(self) -> None:
        check_settings(self, "model")
        DescriptorConfig.from_dict(self.descriptor)
        if self.message_r_cut and self.message_r_cut < 1.0:
            raise SettingError(
                "message_r_cut",
                self.message_r_cut,
                "use 0 (no message passing) or >= 1 (the nearest-neighbour distance)",
                "model",
            )
        if self.message_r_cut and (self.potential == "vector" or len(self.hidden) < 2):
            raise SettingError(
                "message_r_cut",
                self.message_r_cut,
                "message passing needs potential 'conservative' or 'generalized' (got "
                f"{self.potential!r}) and at least two hidden widths (got {list(self.hidden)})",
                "model",
            )
        if self.pair_r_cut and (self.pair_r_cut < 1.0 or self.potential == "vector"):
            raise SettingError(
                "pair_r_cut",
                self.pair_r_cut,
                "use 0 (no pair term) or >= 1 (the nearest-neighbour distance) with potential "
                f"'conservative' or 'generalized' (got {self.potential!r})",
                "model",
            )

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        return settings_from_dict(cls, data, "model")


@dataclass
class TrainConfig:
    """Training settings (see :func:`train`; declared settings, :mod:`mllg.settings`).

    Parameters
    ----------
    model : dict
        :class:`mllg.nn.ModelConfig` fields.
    lr, energy_weight, batch_size, max_epochs, patience : optimizer settings; Adam with
        learning rate ``lr``, loss weight of the energy term, frames per batch, epoch
        limit and early-stopping patience (epochs without a better validation loss).
    val_fraction, test_fraction, seed : seeded split of the frames; ``seed`` also seeds
        the weights and the batch order.
    split_seed : int, optional
        Seed of the frame split instead of ``seed``: committee members that differ only
        in their weights and batch order share one split, so their mean can be scored on
        frames none of them trained on.
    threads : torch intra-op threads.
    device : {"cpu", "cuda"}
        Lightning accelerator (one device). ``cuda`` needs a visible CUDA device
        (:func:`mllg.devices.select_device` checks before anything is written).
    augment_point_group : bool
        Train on a random lattice point-group image of every frame (an exact symmetry of
        the s-d model; makes the unsymmetrized ``plain`` descriptor learn it; no effect on
        the exactly invariant bispectrum beyond rounding).
    augment_time_reversal : bool
        Equilibrium data only: flip ``S, h -> -S, -h`` of a random half of the frames
        (time reversal; ``E[-S] = E[S]`` for real hoppings).
    lr_schedule : {"plateau", "cosine"}
        ``plateau``: halve the learning rate after 8 epochs without improvement;
        ``cosine``: anneal from ``lr`` to ``lr / 100`` over ``max_epochs``.
    grad_clip : float
        Clip the global L2 norm of each step's gradient (of the normalized loss) to this
        value; 0: off. A guard against loss spikes in long runs at a high learning rate.
    """

    model: dict = setting(
        doc="model settings (mllg.nn.ModelConfig)",
        factory=lambda: ModelConfig().to_dict(),
        config=False,
    )
    lr: float = setting(2e-3, "Adam learning rate", exclusive_minimum=0)
    energy_weight: float = setting(
        0.1, "weight of the energy term in the loss (conservative data)", minimum=0
    )
    batch_size: int = setting(4, "frames per batch", minimum=1)
    max_epochs: int = setting(100, "largest number of epochs", minimum=1)
    patience: int = setting(20, "early-stopping patience in epochs", minimum=1)
    val_fraction: float = setting(
        0.1, "fraction of frames for validation", exclusive_minimum=0, exclusive_maximum=1
    )
    test_fraction: float = setting(
        0.1, "fraction of frames held out for the test metrics", minimum=0, exclusive_maximum=1
    )
    seed: int = setting(0, "seed of the weights, batch order and split", minimum=0, config=False)
    split_seed: int | None = setting(
        None,
        "seed of the train/validation/test split (null: the model seed); committee members "
        "with one split_seed share their test frames",
        minimum=0,
    )
    threads: int = setting(1, "torch intra-op threads", minimum=1, config=False)
    device: str = setting("cpu", "Lightning accelerator", choices=("cpu", "cuda"), config=False)
    augment_point_group: bool = setting(
        False, "train on a random lattice point-group image of every frame"
    )
    augment_time_reversal: bool = setting(
        False, "flip S, h -> -S, -h of a random half of the frames (equilibrium data)"
    )
    lr_schedule: str = setting(
        "plateau",
        "plateau (halve the learning rate after 8 epochs without improvement) or cosine "
        "(anneal to lr / 100 over max_epochs)",
        choices=("plateau", "cosine"),
    )
    grad_clip: float = setting(
        0.0,
        "clip the global gradient norm of each step to this value (0: off); guards long "
        "high-learning-rate runs against loss spikes",
        minimum=0,
    )

    def __post_init__(self) -> None:
        check_settings(self, "training")
        ModelConfig.from_dict(self.model)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        return settings_from_dict(cls, data, "training")
