"""Rule chemical_potential: the filling-matched mu of the labels (logic in
mllg.workflow.sample)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import chemical_potential  # noqa: E402

record = chemical_potential(snakemake.params.system, snakemake.output.mu)  # noqa: F821
log.info("chemical potential: %s", record)
