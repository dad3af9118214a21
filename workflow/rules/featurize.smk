rule featurize:
    """Descriptor cache of one data chunk (optional: featurize.enabled)."""
    input:
        store="results/{system}/data/{tag}/chunk{chunk}.zarr",
    output:
        store=directory("results/{system}/features/{tag}/chunk{chunk}.zarr"),
    params:
        system=params_of("model", "train", train=("descriptor",)),
    log:
        "results/{system}/logs/featurize/{tag}/chunk{chunk}.log",
    benchmark:
        "results/{system}/benchmarks/featurize/{tag}/chunk{chunk}.tsv"
    conda:
        "../../envs/mllg.yaml"
    threads: 1
    resources:
        runtime=lambda wc: 10 if config["scale"] == "demo" else 120,
        mem_mb=lambda wc: 2000 if config["scale"] == "demo" else 16000,
    script:
        "../../scripts/featurize.py"
