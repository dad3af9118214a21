# mllg workflow: sample -> featurize -> train -> [learning loop: explore -> select -> label
# -> retrain] -> validate -> simulate -> audit -> analyze -> figures -> summary, for every
# selected system. See README.md, config/README.md and
# ../shared/DESIGN.md. The systems are defined in config/<system>.yaml; config/config.yaml
# (or --configfile / --config) selects them and overrides values.
import importlib.util
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# mllg from the repository if the Snakemake environment does not have it installed
if importlib.util.find_spec("mllg") is None:
    sys.path.insert(0, str(Path(workflow.basedir) / "src"))

try:
    from mllg.config import (
        ConfigError,
        deep_merge,
        load_system_files,
        selected_systems,
        system_tags,
        validate_config,
    )
except ImportError as err:
    raise WorkflowError(
        f"cannot import mllg ({err}): run snakemake from the environment where mllg and "
        "its dependencies are installed (`make setup`, then .venv/bin/snakemake)."
    ) from None


configfile: "config/config.yaml"


# The system definitions shipped in config/*.yaml are the base; the user's config
# (config/config.yaml, --configfile, --config) is merged over them key by key.
_merged = deep_merge(load_system_files(Path(workflow.basedir) / "config"), config)
config.clear()
config.update(_merged)

# Stop before any job runs, with one sentence per bad key; fills in the schema defaults
# and applies the scale (demo | paper).
try:
    validate_config(
        config,
        Path(workflow.basedir) / "workflow/schemas/config.schema.yaml",
        base_dir=workflow.basedir,
    )
except ConfigError as err:
    raise WorkflowError(str(err)) from None

SYSTEMS = selected_systems(config)

# With --sdm apptainer every rule runs in this image (envs/README.md); null: the host.
container: config["container"]


include: "workflow/rules/common.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/featurize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/active.smk"
include: "workflow/rules/simulate.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/analyze.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        [final_outputs(name) for name in SYSTEMS],
    default_target: True
