"""Rule featurize: descriptor cache of one chunk (logic in mllg.workflow.featurize)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup, staged, store_path  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import featurize  # noqa: E402

with staged(snakemake, "store") as out:  # noqa: F821
    info = featurize(snakemake.params.system, store_path(snakemake.input.store), out)  # noqa: F821
log.info("features: %s", info)
