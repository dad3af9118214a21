rule train:
    """One BP model per data set and seed (a committee when train.seeds has several)."""
    input:
        data=lambda wc: data_stores(wc.system, wc.tag),
    output:
        model=directory("results/{system}/train/{tag}/seed{seed}/model"),
        metrics="results/{system}/train/{tag}/seed{seed}/metrics.json",
    params:
        system=params_of("model", "train"),
    log:
        "results/{system}/logs/train/{tag}/seed{seed}.log",
    benchmark:
        "results/{system}/benchmarks/train/{tag}/seed{seed}.tsv"
    conda:
        "../../envs/mllg.yaml"
    retries: job_retries("train")
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("train", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("train", wc, attempt)["mem_mb"],
        gpu=lambda wc: system_cfg(wc.system)["train"]["gpu"],
    script:
        "../../scripts/train.py"
