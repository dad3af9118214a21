"""Behler–Parrinello models of exchange fields: models, export, training, evaluation.

See :mod:`mllg.nn.model` (conservative, generalized-potential and vector models, export),
:mod:`mllg.nn.provider` (field provider for LLG, committee),
:mod:`mllg.nn.training` (Lightning training, metrics). The training recipe of each
system is configuration: ``config/<system>.yaml``.

The training names are imported on first use: Lightning takes several seconds to
import, and evaluating a model (a production run, the command line) does not need it.
"""

from importlib import import_module
from typing import Any

from mllg.nn.model import (
    BPModel,
    ModelConfig,
    lead_encoding,
    load_model,
    save_model,
)
from mllg.nn.provider import Committee, MLFieldProvider

__all__ = [
    "BPModel",
    "Committee",
    "FieldData",
    "FieldDataModule",
    "FieldRegression",
    "MLFieldProvider",
    "ModelConfig",
    "TrainConfig",
    "evaluate",
    "field_metrics",
    "fit_normalization",
    "lead_encoding",
    "load_field_data",
    "load_model",
    "model_from_checkpoint",
    "parity_plot",
    "save_model",
    "train",
]


#: Names of ``__all__`` served lazily, and the module that defines each.
_LAZY = {name: "mllg.nn.training" for name in __all__ if name not in globals()}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mllg.nn' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
