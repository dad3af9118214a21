"""Rules figures_*: figures of one system (logic in mllg.workflow.figures)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup, store_path  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import figures  # noqa: E402

figures(
    snakemake.params.system,  # noqa: F821
    snakemake.wildcards.system,  # noqa: F821
    snakemake.input.analysis,  # noqa: F821
    store_path(snakemake.input.series),  # noqa: F821
    store_path(snakemake.input.trajectory),  # noqa: F821
    dict(snakemake.output.items()),  # noqa: F821
)
log.info("figures: %s", list(snakemake.output))  # noqa: F821
