rule sample:
    """Exact training data, one job per chunk (and per voltage for driven systems)."""
    output:
        store=directory("results/{system}/data/{tag}/chunk{chunk}.zarr"),
    params:
        system=params_of("model", "sample"),
    log:
        "results/{system}/logs/sample/{tag}/chunk{chunk}.log",
    benchmark:
        "results/{system}/benchmarks/sample/{tag}/chunk{chunk}.tsv"
    conda:
        "../../envs/mllg.yaml"
    threads: 1
    resources:
        runtime=lambda wc: 30 if config["scale"] == "demo" else 720,
        mem_mb=lambda wc: 2000 if config["scale"] == "demo" else 16000,
    script:
        "../../scripts/sample.py"
