rule relax:
    """Damped ED-LLG relaxation from random spins (foundation demo)."""
    output:
        trajectory=directory("results/relax/trajectory.zarr"),
        figure=report("results/relax/final_texture.png", caption="../report/relax.rst",
                      category="Relaxation"),
        summary="results/relax/summary.json",
    params:
        cfg=config["relax"],
    log:
        "results/relax/logs/relax.log",
    benchmark:
        "results/relax/benchmarks/relax.tsv"
    conda:
        "../../envs/mllg.yaml"
    threads: 1
    resources:
        runtime=30,
        mem_mb=2000,
    script:
        "../../scripts/relax.py"
