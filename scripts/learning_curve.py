"""Rule learning_curve: the loop's record and figure (logic in mllg.workflow.learning)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import learning_curve  # noqa: E402

points = learning_curve(
    list(snakemake.input.labels),  # noqa: F821
    list(snakemake.input.audits),  # noqa: F821
    snakemake.output.curve,  # noqa: F821
    snakemake.output.figure,  # noqa: F821
    f"{snakemake.wildcards.system}: learning loop",  # noqa: F821
)
log.info("learning curve: %s", points)
