rule featurize:
    """Descriptor cache of one data chunk (optional: featurize.enabled)."""
    input:
        store=zarr_store("results/{system}/data/{tag}/chunk{chunk}.zarr"),
    output:
        store=zarr_store("results/{system}/features/{tag}/chunk{chunk}.zarr"),
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
        runtime=lambda wc, attempt: job_request("featurize", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("featurize", wc, attempt)["mem_mb"],
    script:
        "../../scripts/featurize.py"
