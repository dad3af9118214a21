"""Rule select: frames of an iteration to label (logic in mllg.workflow.select; the
script is not called select.py, which would shadow the standard library module)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup, staged  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import select  # noqa: E402

with staged(snakemake, "selection") as out:  # noqa: F821
    record = select(
        snakemake.params.system,  # noqa: F821
        int(snakemake.wildcards.it),  # noqa: F821
        snakemake.input.exploration,  # noqa: F821
        list(snakemake.input.models),  # noqa: F821
        out,
        previous_selection=(list(snakemake.input.previous) or [None])[0],  # noqa: F821
    )
log.info("selection: %s", record)
