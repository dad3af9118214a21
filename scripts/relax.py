"""Snakemake rule script: ED-LLG relaxation (logic in mllg.studies.relax)."""

import logging
import os

os.environ.setdefault("OMP_NUM_THREADS", str(snakemake.threads))  # noqa: F821

from mllg.studies import relax  # noqa: E402

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO)  # noqa: F821
summary = relax(
    snakemake.params.cfg,  # noqa: F821
    snakemake.output.trajectory,  # noqa: F821
    snakemake.output.figure,  # noqa: F821
    snakemake.output.summary,  # noqa: F821
)
logging.info("summary: %s", summary)
