# Helpers shared by the rules: wildcard constraints, per-stage params, input functions,
# resource requests.
from mllg.workflow.resources import LOCAL_RULES, attempts, request

# Paths: results/<system>/<stage>/<tag>/..., tag = "eq" (equilibrium) or "V+0.200" (bias).


wildcard_constraints:
    system="[A-Za-z0-9_]+",
    tag="eq|V[-+][0-9]+\\.[0-9]+",
    chunk="[0-9]+",
    seed="[0-9]+",
    it="[0-9]+",


# Keys that do not change a stage's result (resources, scatter lists): left out of the
# params, so that changing them does not rerun finished jobs.
NOT_PHYSICS = {
    "sample": ("chunks",),
    "train": ("gpu", "seeds", "enabled"),
    "simulate": ("gpu", "seeds", "model"),
    "active": ("iterations",),
}


#: The sample keys the chemical_potential probe depends on.
MU_PROBE_KEYS = (
    "solver", "L", "seed", "kT_bath", "alpha", "dt", "every", "moments", "mu_probe_steps"
)


def label_mu_input(system):
    """The chemical_potential output when sample.label_mu = auto, else []."""
    if system_cfg(system)["sample"].get("label_mu") != "auto":
        return []
    return [f"results/{system}/data/label_mu.json"]


def system_cfg(name):
    """The validated section of one system."""
    return config["systems"][name]


def params_of(*stages, **only):
    """Params function: the named stages of the system (``only``: stage -> kept keys)."""

    def get(wildcards):
        cfg = system_cfg(wildcards.system)
        out = {"kind": cfg["kind"]}
        for stage in stages:
            sec = cfg[stage]
            if isinstance(sec, dict):
                keep = only.get(stage)
                sec = {
                    k: v
                    for k, v in sec.items()
                    if k not in NOT_PHYSICS.get(stage, ()) and (keep is None or k in keep)
                }
            out[stage] = sec
        return out

    return get


def job_request(rule, wildcards, attempt):
    """runtime (min) and mem_mb of one job from its config and measured unit costs
    (mllg.workflow.resources.request; attempt-scaled, capped at cluster.max_runtime)."""
    return request(rule, system_cfg(wildcards.system), config["cluster"], attempt)


def job_retries(rule):
    """Retries of a resumable rule whose longest job needs k > 1 attempts of
    cluster.max_runtime minutes (each continues the store or checkpoint of the one
    before): k (one spare); None otherwise, so that --retries (profile) applies."""
    k = max([attempts(rule, system_cfg(n), config["cluster"]) for n in SYSTEMS] or [1])
    return k if k > 1 else None


def zarr_store(path):
    """A zarr store as Snakemake sees it: its root metadata file ``zarr.json``.

    The store is not a ``directory()`` output, so Snakemake writes nothing into it and
    does not delete a killed job's work store (``<store>.incomplete``) before the retry,
    which continues it (scripts/_common.py ``staged``)."""
    return f"{path}/zarr.json"


def data_stores(system, tag):
    n = system_cfg(system)["sample"]["chunks"]
    return [zarr_store(f"results/{system}/data/{tag}/chunk{c}.zarr") for c in range(n)]


def model_dirs(system, tag):
    """Exported models of a data set: trained ones (those of the last iteration of the
    learning loop when active.iterations > 0), or simulate.model."""
    cfg = system_cfg(system)
    if not cfg["train"]["enabled"]:
        return [cfg["simulate"]["model"]]
    return iteration_model_dirs(system, tag, loop_iterations(system))


def loop_iterations(system):
    """Iterations of the learning loop (0: none; none without training)."""
    cfg = system_cfg(system)
    return cfg["active"]["iterations"] if cfg["train"]["enabled"] else 0


def iteration_model_dirs(system, tag, it):
    """Committee of iteration it (0: the first training on the sampled data)."""
    seeds = system_cfg(system)["train"]["seeds"]
    return [iteration_member(system, tag, it, k, "model") for k in seeds]


def iteration_member(system, tag, it, seed, name):
    """Output ``name`` (model or metrics.json) of one committee member of iteration it."""
    if int(it) == 0:
        return f"results/{system}/train/{tag}/seed{seed}/{name}"
    return f"results/{system}/active/iter{it}/train/seed{seed}/{name}"


def previous_selection(system, it):
    """The selection of the iteration before it ([] for the first iteration)."""
    return [f"results/{system}/active/iter{int(it) - 1}/selection"] if int(it) > 1 else []


def label_dirs(system, it):
    """The label folders of iterations 1 .. it."""
    return [f"results/{system}/active/iter{k}/labels" for k in range(1, int(it) + 1)]


def relax_model_dirs(system):
    """Models of V = 0 (driven systems relax the initial wall with them), else []."""
    cfg = system_cfg(system)
    if cfg["kind"] != "driven" or not cfg["simulate"]["relax_steps"]:
        return []
    if 0.0 not in [float(v) for v in cfg["sample"]["voltages"]]:
        return []
    return model_dirs(system, "V+0.000")


def base_model_dirs(system, tag):
    """Models of V = 0 that the models of a bias add to (train.target = nonequilibrium)."""
    cfg = system_cfg(system)
    if cfg["train"]["target"] != "nonequilibrium" or tag == "V+0.000":
        return []
    return model_dirs(system, "V+0.000")


def trajectories(system, tag):
    return [
        zarr_store(f"results/{system}/simulate/{tag}/seed{k}.zarr")
        for k in system_cfg(system)["simulate"]["seeds"]
    ]


FIGURES = {
    "equilibrium": ("texture", "structure_factor", "growth", "order"),
    "driven": ("texture", "position", "velocity"),
}


def figure_paths(system):
    return {
        name: f"results/{system}/figures/{name}.png"
        for name in FIGURES[system_cfg(system)["kind"]]
    }


def final_outputs(system):
    """Everything `all` asks for: summary, figures, parity plots, optional features."""
    cfg = system_cfg(system)
    tags = system_tags(cfg)
    out = [f"results/{system}/summary.json", *figure_paths(system).values()]
    out += [f"results/{system}/validate/{tag}/parity.png" for tag in tags]
    if cfg["audit"]["frames"]:
        out += [f"results/{system}/audit/{tag}/audit.png" for tag in tags]
    if loop_iterations(system):
        out.append(f"results/{system}/figures/learning.png")
    if cfg["featurize"]["enabled"]:
        n = cfg["sample"]["chunks"]
        out += [
            zarr_store(f"results/{system}/features/{tag}/chunk{c}.zarr")
            for tag in tags
            for c in range(n)
        ]
    return out


def systems_of_kind(kind):
    """Wildcard regex matching the configured systems of one kind (or nothing)."""
    names = [n for n, c in config["systems"].items() if c["kind"] == kind]
    return "|".join(names) if names else "(?!x)x"


def validate_params(wildcards):
    """Params of validate: the exact solver and reference settings; for driven systems
    also the wall protocol of simulate and the velocity-fit start (the NEGF-LLG run)."""
    sample_keys = ("solver", "L", "alpha", "dt", "every", "moments", "tol", "label_mu", "seed")
    out = params_of("model", "sample", "validate", sample=sample_keys)(wildcards)
    if out["kind"] == "driven":
        wall = ("alpha", "dt", "kT_bath", "relax_steps", "precession")
        out.update(
            params_of("simulate", "analyze", simulate=wall, analyze=("t_min",))(wildcards)
        )
    return out
