"""Rule sample: exact training data of one chunk (logic in mllg.workflow.sample)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup, staged  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import resolve_label_mu, sample  # noqa: E402

system = resolve_label_mu(snakemake.params.system, snakemake.input.label_mu)  # noqa: F821

w = snakemake.wildcards  # noqa: F821
with staged(snakemake, "store") as out:  # noqa: F821
    path = sample(system, w.tag, int(w.chunk), out)
log.info("wrote %s", path)
