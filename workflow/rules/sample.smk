rule sample:
    """Exact training data, one job per chunk (and per voltage for driven systems)."""
    input:
        label_mu=lambda wc: label_mu_input(wc.system),
    output:
        store=zarr_store("results/{system}/data/{tag}/chunk{chunk}.zarr"),
    params:
        system=params_of("model", "sample"),
    log:
        "results/{system}/logs/sample/{tag}/chunk{chunk}.log",
    benchmark:
        "results/{system}/benchmarks/sample/{tag}/chunk{chunk}.tsv"
    conda:
        "../../envs/mllg.yaml"
    retries: job_retries("sample")
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("sample", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("sample", wc, attempt)["mem_mb"],
    script:
        "../../scripts/sample.py"


rule chemical_potential:
    """sample.label_mu = auto: the mu whose mean filling over probe frames is model.filling."""
    output:
        mu="results/{system}/data/label_mu.json",
    params:
        system=params_of("model", "sample", sample=MU_PROBE_KEYS),
    log:
        "results/{system}/logs/chemical_potential.log",
    benchmark:
        "results/{system}/benchmarks/chemical_potential.tsv"
    conda:
        "../../envs/mllg.yaml"
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("chemical_potential", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("chemical_potential", wc, attempt)["mem_mb"],
    script:
        "../../scripts/chemical_potential.py"
