# The concurrent-learning loop (active.iterations > 0, equilibrium systems). Iteration it
# (1, 2, ...): the committee of iteration it - 1 drives exploration runs (explore), the
# frames of largest committee disagreement are picked (select) and labelled exactly
# (label), and every member is retrained on all labels (retrain). Iteration 0 is the
# train rule on the sampled data. Each step has its own outputs under
# results/<system>/active/iter<it>/, so adding iterations reruns only the new ones.


rule explore:
    """The committee-driven ML-LLG exploration runs of an iteration (one store per run)."""
    input:
        models=lambda wc: iteration_model_dirs(wc.system, "eq", int(wc.it) - 1),
        previous=lambda wc: previous_selection(wc.system, wc.it),
    output:
        runs=directory("results/{system}/active/iter{it}/explore"),
    params:
        system=params_of("model", "sample", "simulate", "active", "analyze", sample=("L",)),
    log:
        "results/{system}/logs/active/iter{it}/explore.log",
    benchmark:
        "results/{system}/benchmarks/active/iter{it}/explore.tsv"
    conda:
        "../../envs/mllg.yaml"
    retries: job_retries("explore")
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("explore", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("explore", wc, attempt)["mem_mb"],
    script:
        "../../scripts/explore.py"


rule select:
    """Rank an iteration's explored frames by committee disagreement; pick those to label."""
    input:
        exploration="results/{system}/active/iter{it}/explore",
        models=lambda wc: iteration_model_dirs(wc.system, "eq", int(wc.it) - 1),
        previous=lambda wc: previous_selection(wc.system, wc.it),
    output:
        selection=directory("results/{system}/active/iter{it}/selection"),
    params:
        system=params_of("model", "sample", "active", sample=("L",)),
    log:
        "results/{system}/logs/active/iter{it}/select.log",
    benchmark:
        "results/{system}/benchmarks/active/iter{it}/select.tsv"
    conda:
        "../../envs/mllg.yaml"
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("select", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("select", wc, attempt)["mem_mb"],
    script:
        "../../scripts/selection.py"


rule label:
    """Exact labels (ED or KPM) of an iteration's selected frames."""
    input:
        selection="results/{system}/active/iter{it}/selection",
        label_mu=lambda wc: label_mu_input(wc.system),
    output:
        labels=directory("results/{system}/active/iter{it}/labels"),
    params:
        system=params_of(
            "model", "sample", "active", sample=("L", "moments", "label_mu", "solver")
        ),
    log:
        "results/{system}/logs/active/iter{it}/label.log",
    benchmark:
        "results/{system}/benchmarks/active/iter{it}/label.tsv"
    conda:
        "../../envs/mllg.yaml"
    retries: job_retries("label")
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("label", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("label", wc, attempt)["mem_mb"],
    script:
        "../../scripts/label.py"


rule retrain:
    """One committee member of an iteration, trained on the sampled data and all labels."""
    input:
        data=lambda wc: data_stores(wc.system, "eq"),
        labels=lambda wc: label_dirs(wc.system, wc.it),
        previous=lambda wc: iteration_member(wc.system, "eq", int(wc.it) - 1, wc.seed, "model"),
        previous_metrics=lambda wc: iteration_member(
            wc.system, "eq", int(wc.it) - 1, wc.seed, "metrics.json"
        ),
    output:
        model=directory("results/{system}/active/iter{it}/train/seed{seed}/model"),
        metrics="results/{system}/active/iter{it}/train/seed{seed}/metrics.json",
    params:
        system=params_of(
            "model", "sample", "train", "active",
            sample=("L",), active=("warm_start", "max_epochs", "L"),
        ),
    log:
        "results/{system}/logs/active/iter{it}/train/seed{seed}.log",
    benchmark:
        "results/{system}/benchmarks/active/iter{it}/train/seed{seed}.tsv"
    conda:
        "../../envs/mllg.yaml"
    retries: job_retries("retrain")
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("retrain", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("retrain", wc, attempt)["mem_mb"],
        gpu=lambda wc: system_cfg(wc.system)["train"]["gpu"],
    script:
        "../../scripts/retrain.py"


rule learning_curve:
    """The loop's learning curve: error and untrusted fraction of every committee."""
    input:
        labels=lambda wc: label_dirs(wc.system, loop_iterations(wc.system)),
        audits=lambda wc: (
            [f"results/{wc.system}/audit/eq/metrics.json"]
            if system_cfg(wc.system)["audit"]["frames"]
            else []
        ),
    output:
        curve="results/{system}/active/learning.json",
        figure=report(
            "results/{system}/figures/learning.png",
            caption="../report/learning.rst",
            category="{system}",
            subcategory="Validation",
            labels={"system": "{system}", "figure": "learning curve"},
        ),
    log:
        "results/{system}/logs/learning_curve.log",
    benchmark:
        "results/{system}/benchmarks/learning_curve.tsv"
    conda:
        "../../envs/mllg.yaml"
    localrule: "learning_curve" in LOCAL_RULES  # seconds: never a cluster job
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("learning_curve", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("learning_curve", wc, attempt)["mem_mb"],
    script:
        "../../scripts/learning_curve.py"
