"""Rule featurize: descriptor cache of one chunk (logic in mllg.workflow.featurize)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import featurize  # noqa: E402

info = featurize(snakemake.params.system, snakemake.input.store, snakemake.output.store)  # noqa: F821
log.info("features: %s", info)
