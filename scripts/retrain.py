"""Rule retrain: one committee member of a loop iteration (logic in mllg.workflow.train)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import job_identity, requested_gpus, setup, store_path  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import retrain_model  # noqa: E402

metrics = retrain_model(
    snakemake.params.system,  # noqa: F821
    [store_path(p) for p in snakemake.input.data],  # noqa: F821
    list(snakemake.input.labels),  # noqa: F821
    int(snakemake.wildcards.seed),  # noqa: F821
    Path(snakemake.input.previous).parent,  # noqa: F821
    Path(snakemake.output.metrics).parent,  # noqa: F821
    gpu=requested_gpus(snakemake),  # noqa: F821
    resume_key=job_identity(snakemake),  # noqa: F821
)
log.info("metrics: %s", metrics)
