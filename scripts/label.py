"""Rule label: exact labels of the selected frames (logic in mllg.workflow.label)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup, staged  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import label, resolve_label_mu  # noqa: E402

system = resolve_label_mu(snakemake.params.system, snakemake.input.label_mu)  # noqa: F821

with staged(snakemake, "labels") as out:  # noqa: F821
    record = label(system, int(snakemake.wildcards.it), snakemake.input.selection, out)  # noqa: F821
log.info("labels: %s", {k: v for k, v in record.items() if not k.startswith("frame_")})
