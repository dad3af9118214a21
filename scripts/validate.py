"""Rule validate: ML vs exact fields, speed, short LLG (logic in mllg.workflow.validate)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import resolve_label_mu, validate  # noqa: E402

system = resolve_label_mu(snakemake.params.system, snakemake.input.label_mu)  # noqa: F821

metrics = validate(
    system,
    snakemake.wildcards.tag,  # noqa: F821
    list(snakemake.input.models),  # noqa: F821
    Path(snakemake.output.metrics).parent,  # noqa: F821
    base_model_dirs=list(snakemake.input.base_models) or None,  # noqa: F821
)
log.info("metrics: %s", metrics)
