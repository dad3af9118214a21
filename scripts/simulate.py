"""Rule simulate: one ML-LLG production run (logic in mllg.workflow.simulate)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import requested_gpus, setup, staged  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import simulate  # noqa: E402

with staged(snakemake, "trajectory") as out:  # noqa: F821
    info = simulate(
        snakemake.params.system,  # noqa: F821
        snakemake.wildcards.tag,  # noqa: F821
        int(snakemake.wildcards.seed),  # noqa: F821
        list(snakemake.input.models),  # noqa: F821
        out,
        relax_model_dirs=list(snakemake.input.relax_models) or None,  # noqa: F821
        base_model_dirs=list(snakemake.input.base_models) or None,  # noqa: F821
        gpu=requested_gpus(snakemake),  # noqa: F821
    )
log.info("run: %s", info)
