"""Rule explore: the ML-LLG runs of a loop iteration (logic in mllg.workflow.explore)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup, staged  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import explore  # noqa: E402

with staged(snakemake, "runs") as out:  # noqa: F821
    info = explore(
        snakemake.params.system,  # noqa: F821
        int(snakemake.wildcards.it),  # noqa: F821
        list(snakemake.input.models),  # noqa: F821
        out,
        previous_selection=(list(snakemake.input.previous) or [None])[0],  # noqa: F821
    )
log.info("runs: %s", info)
