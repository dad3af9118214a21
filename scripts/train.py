"""Rule train: one BP model (logic in mllg.workflow.train)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import job_identity, requested_gpus, setup, store_path  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import train_model  # noqa: E402

out_dir = Path(snakemake.output.metrics).parent  # noqa: F821
metrics = train_model(
    snakemake.params.system,  # noqa: F821
    [store_path(p) for p in snakemake.input.data],  # noqa: F821
    int(snakemake.wildcards.seed),  # noqa: F821
    out_dir,
    gpu=requested_gpus(snakemake),  # noqa: F821
    resume_key=job_identity(snakemake),  # noqa: F821
)
log.info("metrics: %s", metrics)
