"""Rule sample: exact training data of one chunk (logic in mllg.workflow.sample)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import sample  # noqa: E402

w = snakemake.wildcards  # noqa: F821
path = sample(snakemake.params.system, w.tag, int(w.chunk), snakemake.output.store)  # noqa: F821
log.info("wrote %s", path)
