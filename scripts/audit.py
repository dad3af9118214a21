"""Rule audit: exact labels of production frames (logic in mllg.workflow.audit)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup, store_path  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import audit, resolve_label_mu  # noqa: E402

system = resolve_label_mu(snakemake.params.system, snakemake.input.label_mu)  # noqa: F821

metrics = audit(
    system,
    snakemake.wildcards.tag,  # noqa: F821
    [store_path(p) for p in snakemake.input.trajectories],  # noqa: F821
    list(snakemake.input.models),  # noqa: F821
    Path(snakemake.output.metrics).parent,  # noqa: F821
    base_model_dirs=list(snakemake.input.base_models) or None,  # noqa: F821
    validation=snakemake.input.validation,  # noqa: F821
)
log.info("audit: %s", {k: v for k, v in metrics.items() if k != "frames"})
