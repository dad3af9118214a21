"""Rule retrain: one committee member of a loop iteration (logic in mllg.workflow.train)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import retrain_model  # noqa: E402

metrics = retrain_model(
    snakemake.params.system,  # noqa: F821
    list(snakemake.input.data),  # noqa: F821
    list(snakemake.input.labels),  # noqa: F821
    int(snakemake.wildcards.seed),  # noqa: F821
    Path(snakemake.input.previous).parent,  # noqa: F821
    Path(snakemake.output.metrics).parent,  # noqa: F821
    gpu=int(getattr(snakemake.resources, "gpu", 0) or 0),  # noqa: F821
)
log.info("metrics: %s", metrics)
