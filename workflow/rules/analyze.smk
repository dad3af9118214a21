rule analyze:
    """L(t) and growth exponent (equilibrium) or wall positions and v(V) (driven)."""
    input:
        trajectories=lambda wc: [
            p for tag in system_tags(system_cfg(wc.system)) for p in trajectories(wc.system, tag)
        ],
        validations=lambda wc: [
            f"results/{wc.system}/validate/{tag}/metrics.json"
            for tag in system_tags(system_cfg(wc.system))
        ],
    output:
        analysis="results/{system}/analyze/analysis.json",
        series=zarr_store("results/{system}/analyze/series.zarr"),
    params:
        system=params_of("analyze"),
        tags=lambda wc: system_tags(system_cfg(wc.system)),
        seeds=lambda wc: system_cfg(wc.system)["simulate"]["seeds"],
    log:
        "results/{system}/logs/analyze.log",
    benchmark:
        "results/{system}/benchmarks/analyze.tsv"
    conda:
        "../../envs/mllg.yaml"
    localrule: "analyze" in LOCAL_RULES  # seconds: never a cluster job
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("analyze", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("analyze", wc, attempt)["mem_mb"],
    script:
        "../../scripts/analyze.py"


rule summary:
    """Headline numbers of a system: results/<system>/summary.json."""
    input:
        train=lambda wc: (
            [
                f"results/{wc.system}/train/{tag}/seed{k}/metrics.json"
                for tag in system_tags(system_cfg(wc.system))
                for k in system_cfg(wc.system)["train"]["seeds"]
            ]
            if system_cfg(wc.system)["train"]["enabled"]
            else []
        ),
        validations=lambda wc: [
            f"results/{wc.system}/validate/{tag}/metrics.json"
            for tag in system_tags(system_cfg(wc.system))
        ],
        analysis="results/{system}/analyze/analysis.json",
        audits=lambda wc: (
            [
                f"results/{wc.system}/audit/{tag}/metrics.json"
                for tag in system_tags(system_cfg(wc.system))
            ]
            if system_cfg(wc.system)["audit"]["frames"]
            else []
        ),
        learning=lambda wc: (
            [f"results/{wc.system}/active/learning.json"] if loop_iterations(wc.system) else []
        ),
    output:
        summary="results/{system}/summary.json",
    params:
        system=params_of(
            "model",
            "sample",
            "simulate",
            "analyze",
            sample=("solver", "L"),
            simulate=("L",),
            analyze=("order",),
        ),
        tags=lambda wc: system_tags(system_cfg(wc.system)),
    log:
        "results/{system}/logs/summary.log",
    benchmark:
        "results/{system}/benchmarks/summary.tsv"
    conda:
        "../../envs/mllg.yaml"
    localrule: "summary" in LOCAL_RULES  # seconds: never a cluster job
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("summary", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("summary", wc, attempt)["mem_mb"],
    script:
        "../../scripts/summary.py"
