"""Rule analyze: L(t), growth exponent or v(V) (logic in mllg.workflow.analyze)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir)))  # noqa: F821
from _common import setup, staged, store_path  # noqa: E402

log = setup(snakemake)  # noqa: F821
from mllg.workflow import analyze  # noqa: E402

tags = snakemake.params.tags  # noqa: F821
n_seeds = len(snakemake.params.seeds)  # noqa: F821
trajs = [store_path(p) for p in snakemake.input.trajectories]  # noqa: F821
with staged(snakemake, "series") as series:  # noqa: F821
    result = analyze(
        snakemake.params.system,  # noqa: F821
        {tag: trajs[i * n_seeds : (i + 1) * n_seeds] for i, tag in enumerate(tags)},
        dict(zip(tags, snakemake.input.validations)),  # noqa: F821
        snakemake.output.analysis,  # noqa: F821
        series,
    )
log.info("analysis: %s", result)
