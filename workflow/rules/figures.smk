rule figures_equilibrium:
    """Final texture, S(q), L(t) and order vs time of a quench."""
    wildcard_constraints:
        system=systems_of_kind("equilibrium"),
    input:
        analysis="results/{system}/analyze/analysis.json",
        series=zarr_store("results/{system}/analyze/series.zarr"),
        trajectory=lambda wc: trajectories(wc.system, "eq")[0],
    output:
        texture=report(
            "results/{system}/figures/texture.png",
            caption="../report/texture.rst",
            category="{system}",
            subcategory="Simulation",
            labels={"system": "{system}", "figure": "final texture"},
        ),
        structure_factor=report(
            "results/{system}/figures/structure_factor.png",
            caption="../report/structure_factor.rst",
            category="{system}",
            subcategory="Simulation",
            labels={"system": "{system}", "figure": "structure factor"},
        ),
        growth=report(
            "results/{system}/figures/growth.png",
            caption="../report/growth.rst",
            category="{system}",
            subcategory="Analysis",
            labels={"system": "{system}", "figure": "L(t)"},
        ),
        order=report(
            "results/{system}/figures/order.png",
            caption="../report/order.rst",
            category="{system}",
            subcategory="Analysis",
            labels={"system": "{system}", "figure": "order vs time"},
        ),
    params:
        system=params_of("analyze", "figures", analyze=("order",)),
    log:
        "results/{system}/logs/figures.log",
    benchmark:
        "results/{system}/benchmarks/figures.tsv"
    conda:
        "../../envs/mllg.yaml"
    localrule: "figures_equilibrium" in LOCAL_RULES  # seconds: never a cluster job
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("figures_equilibrium", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("figures_equilibrium", wc, attempt)["mem_mb"],
    script:
        "../../scripts/figures.py"


rule figures_driven:
    """Final strip texture, X(t) per voltage and the v(V) table as a plot."""
    wildcard_constraints:
        system=systems_of_kind("driven"),
    input:
        analysis="results/{system}/analyze/analysis.json",
        series=zarr_store("results/{system}/analyze/series.zarr"),
        trajectory=lambda wc: trajectories(wc.system, system_tags(system_cfg(wc.system))[-1])[0],
    output:
        texture=report(
            "results/{system}/figures/texture.png",
            caption="../report/texture.rst",
            category="{system}",
            subcategory="Simulation",
            labels={"system": "{system}", "figure": "final texture"},
        ),
        position=report(
            "results/{system}/figures/position.png",
            caption="../report/position.rst",
            category="{system}",
            subcategory="Analysis",
            labels={"system": "{system}", "figure": "X(t)"},
        ),
        velocity=report(
            "results/{system}/figures/velocity.png",
            caption="../report/velocity.rst",
            category="{system}",
            subcategory="Analysis",
            labels={"system": "{system}", "figure": "v(V)"},
        ),
    params:
        system=params_of("analyze", "figures", analyze=("order",)),
    log:
        "results/{system}/logs/figures.log",
    benchmark:
        "results/{system}/benchmarks/figures.tsv"
    conda:
        "../../envs/mllg.yaml"
    localrule: "figures_driven" in LOCAL_RULES  # seconds: never a cluster job
    threads: 1
    resources:
        runtime=lambda wc, attempt: job_request("figures_driven", wc, attempt)["runtime"],
        mem_mb=lambda wc, attempt: job_request("figures_driven", wc, attempt)["mem_mb"],
    script:
        "../../scripts/figures.py"

