# mllg workflow: one config = one physical system. See README.md and config/README.md.
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

try:
    from mllg.config import ConfigError, validate_config
except ImportError as err:
    raise WorkflowError(
        f"cannot import mllg ({err}): run snakemake from the environment where mllg is "
        "installed (`make setup`, then .venv/bin/snakemake)."
    ) from None


configfile: "config/config.yaml"


# Stop before any job runs, with one sentence per bad key; fills in the schema defaults.
try:
    validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None


include: "workflow/rules/relax.smk"


rule all:
    input:
        "results/relax/summary.json",
        "results/relax/final_texture.png",
