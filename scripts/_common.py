"""Shared set-up of the rule scripts: one BLAS thread per rule thread, logging to the log.

Importing this module also makes ``mllg`` importable when the job's environment does not
have it installed (``--sdm conda`` with ``envs/mllg.yaml``, which holds only the
dependencies): the repository's ``src/`` (next to ``scripts/``) is put on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path

if importlib.util.find_spec("mllg") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


#: Rules that run torch (the others skip its import, ~1 s per job).
TORCH_RULES = (
    "featurize",
    "train",
    "validate",
    "simulate",
    "explore",
    "select",
    "retrain",
    "audit",
)


def _one_line_errors(rule: str) -> None:
    """Expected errors (bad input, a GPU request without CUDA, an unreadable store, a
    blow-up) end the job with one line in its log instead of a traceback; set
    ``MLLG_DEBUG=1`` to get the traceback."""
    if os.environ.get("MLLG_DEBUG"):
        return
    default = sys.excepthook

    def hook(kind, err, tb):
        from mllg.devices import DeviceError
        from mllg.runs import BlowUpError

        if issubclass(kind, ValueError | FileNotFoundError | DeviceError | BlowUpError):
            print(f"rule {rule}: error: {err} (MLLG_DEBUG=1 shows the traceback)", flush=True)
            return
        default(kind, err, tb)

    sys.excepthook = hook


def setup(snakemake) -> logging.Logger:
    """Point stdout/stderr and logging at the rule's log file; cap BLAS/torch threads.

    Parameters
    ----------
    snakemake : snakemake.script.Snakemake
        The object Snakemake passes to a rule script.

    Returns
    -------
    logging.Logger
        Logger writing to the rule's log.
    """
    os.environ["OMP_NUM_THREADS"] = str(snakemake.threads)
    log = open(snakemake.log[0], "a", buffering=1)  # noqa: SIM115 - lives for the job
    sys.stdout = sys.stderr = log
    logging.basicConfig(stream=log, level=logging.INFO, force=True)
    _one_line_errors(snakemake.rule)
    if snakemake.rule in TORCH_RULES:
        import torch

        torch.set_num_threads(int(snakemake.threads))
    return logging.getLogger(f"mllg.{snakemake.rule}")


def store_path(path: str) -> str:
    """The zarr store a rule input/output names: rules name a store by its root
    ``zarr.json`` (common.smk ``zarr_store``), so Snakemake writes nothing into it."""
    p = Path(path)
    return str(p.parent if p.name == "zarr.json" else p)


def job_identity(snakemake) -> str:
    """The job's key for resuming its work (mllg.io.job_key)."""
    from mllg.io import job_key

    return job_key(
        dict(snakemake.params.items()), dict(snakemake.wildcards.items()), list(snakemake.input)
    )


@contextlib.contextmanager
def staged(snakemake, name: str) -> Iterator[str]:
    """Work path of output ``name``; published when the body ends (mllg.io.staged_output).

    A job killed at its walltime leaves ``<output>.incomplete``; its retry (same params
    and inputs) continues it, any other job starts it over.
    """
    from mllg.io import staged_output

    with staged_output(store_path(snakemake.output[name]), job_identity(snakemake)) as work:
        yield str(work)


def requested_gpus(snakemake) -> int:
    """GPUs the job asked for, as ``gpu`` or ``gres`` resource (mllg.devices)."""
    from mllg.devices import requested_gpus as count

    res = snakemake.resources
    return count(getattr(res, "gpu", 0), getattr(res, "gres", None))
