"""Behler–Parrinello models of exchange fields: models, export, training, evaluation.

See :mod:`mllg.nn.model` (conservative, generalized-potential and vector models, export),
:mod:`mllg.nn.provider` (field provider for LLG, committee) and
:mod:`mllg.nn.training` (Lightning training, metrics, :func:`sample_training_frames`)
and :mod:`mllg.nn.recipes` (:func:`recommended_config`).
"""

from mllg.nn.model import (
    BPModel,
    ModelConfig,
    lead_encoding,
    load_model,
    save_model,
)
from mllg.nn.provider import Committee, MLFieldProvider
from mllg.nn.recipes import recommended_config
from mllg.nn.training import (
    FieldData,
    FieldDataModule,
    FieldRegression,
    TrainConfig,
    evaluate,
    field_metrics,
    fit_normalization,
    load_field_data,
    model_from_checkpoint,
    parity_plot,
    sample_training_frames,
    train,
)

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
    "recommended_config",
    "sample_training_frames",
    "save_model",
    "train",
]
