rule audit:
    """Exact labels of frames of every production trajectory of a data set: the run's own
    accuracy (audit.frames per trajectory)."""
    input:
        trajectories=lambda wc: trajectories(wc.system, wc.tag),
        models=lambda wc: model_dirs(wc.system, wc.tag),
        base_models=lambda wc: base_model_dirs(wc.system, wc.tag),
        validation="results/{system}/validate/{tag}/metrics.json",
        label_mu=lambda wc: label_mu_input(wc.system),
    output:
        metrics="results/{system}/audit/{tag}/metrics.json",
        figure=report(
            "results/{system}/audit/{tag}/audit.png",
            caption="../report/audit.rst",
            category="{system}",
            subcategory="Validation",
            labels={"system": "{system}", "figure": "audit {tag}"},
        ),
    params:
        system=params_of("model", "sample", "simulate", "audit", "analyze", analyze=("order",)),
    log:
        "results/{system}/logs/audit/{tag}.log",
    benchmark:
        "results/{system}/benchmarks/audit/{tag}.tsv"
    conda:
        "../../envs/mllg.yaml"
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("audit", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("audit", wc, attempt)["mem_mb"],
    script:
        "../../scripts/audit.py"
