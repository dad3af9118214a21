rule validate:
    """ML vs the exact solver on unseen states; speed ratio; short LLG comparison."""
    input:
        models=lambda wc: model_dirs(wc.system, wc.tag),
        base_models=lambda wc: base_model_dirs(wc.system, wc.tag),
        label_mu=lambda wc: label_mu_input(wc.system),
        reference=lambda wc: system_cfg(wc.system)["validate"]["reference"] or [],
    output:
        metrics="results/{system}/validate/{tag}/metrics.json",
        parity=report(
            "results/{system}/validate/{tag}/parity.png",
            caption="../report/parity.rst",
            category="{system}",
            subcategory="Validation",
            labels={"system": "{system}", "figure": "parity {tag}"},
        ),
    params:
        system=validate_params,
    log:
        "results/{system}/logs/validate/{tag}.log",
    benchmark:
        "results/{system}/benchmarks/validate/{tag}.tsv"
    conda:
        "../../envs/mllg.yaml"
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("validate", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("validate", wc, attempt)["mem_mb"],
    script:
        "../../scripts/validate.py"
