# mllg workflow: one config = one physical system. See README.md and config/README.md.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/relax.smk"


rule all:
    input:
        "results/relax/summary.json",
        "results/relax/final_texture.png",
