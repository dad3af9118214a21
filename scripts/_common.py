"""Shared set-up of the rule scripts: one BLAS thread per rule thread, logging to the log."""

from __future__ import annotations

import logging
import os
import sys


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
    import torch

    torch.set_num_threads(int(snakemake.threads))
    return logging.getLogger(f"mllg.{snakemake.rule}")
