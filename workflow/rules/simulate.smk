rule simulate:
    """ML-LLG production run, one job per seed (and per voltage for driven systems)."""
    input:
        models=lambda wc: model_dirs(wc.system, wc.tag),
        base_models=lambda wc: base_model_dirs(wc.system, wc.tag),
        relax_models=lambda wc: relax_model_dirs(wc.system),
    output:
        trajectory=zarr_store("results/{system}/simulate/{tag}/seed{seed}.zarr"),
    params:
        system=params_of("model", "simulate"),
    log:
        "results/{system}/logs/simulate/{tag}/seed{seed}.log",
    benchmark:
        "results/{system}/benchmarks/simulate/{tag}/seed{seed}.tsv"
    conda:
        "../../envs/mllg.yaml"
    retries: job_retries("simulate")
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("simulate", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("simulate", wc, attempt)["mem_mb"],
        gpu=lambda wc: system_cfg(wc.system)["simulate"]["gpu"],
    script:
        "../../scripts/simulate.py"
