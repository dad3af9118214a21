"""Rule summary: headline numbers of a system (logic in mllg.workflow.summary)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import summary  # noqa: E402

tags = snakemake.params.tags  # noqa: F821
train = list(snakemake.input.train)  # noqa: F821
per_tag = len(train) // len(tags)
out = summary(
    snakemake.params.system,  # noqa: F821
    snakemake.wildcards.system,  # noqa: F821
    {tag: train[i * per_tag : (i + 1) * per_tag] for i, tag in enumerate(tags)},
    dict(zip(tags, snakemake.input.validations)),  # noqa: F821
    snakemake.input.analysis,  # noqa: F821
    snakemake.output.summary,  # noqa: F821
    audits=dict(zip(tags, snakemake.input.audits)) or None,  # noqa: F821
    learning=(list(snakemake.input.learning) or [None])[0],  # noqa: F821
)
log.info("summary: %s", out)
