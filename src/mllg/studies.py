"""Study protocols behind the workflow rules: config section in, files out.

Each function takes one validated config section (a plain dict) and output paths;
the Snakemake scripts only unpack the ``snakemake`` object and call these.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg import textures
from mllg.analysis.structure import weight_fraction
from mllg.config import EQ_TAG, system_tags, tag_voltage, voltage_tag  # noqa: F401 (re-exported)
from mllg.dynamics import LLG
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.io import open_store, provenance
from mllg.lattice import Lattice, make_lattice
from mllg.plotting import plot_texture
from mllg.runs import run_llg

ORDERED = {"triangular": ("tetrahedral", "M"), "square": ("neel", "M")}


def build_model(cfg: Mapping[str, Any]) -> tuple[Lattice, SdHamiltonian, Ensemble]:
    """Lattice, Hamiltonian and ensemble from the keys lattice, L, t1..t3, J, filling|mu, kT."""
    lat = make_lattice(cfg["lattice"], int(cfg["L"]))
    ham = SdHamiltonian(lat, cfg.get("t1", 1.0), cfg.get("t2", 0.0), cfg.get("t3", 0.0), cfg["J"])
    if cfg.get("mu") is not None:
        ens = Ensemble.grand_canonical(cfg["mu"], cfg.get("kT", 0.0))
    else:
        ens = Ensemble.canonical(cfg["filling"], cfg.get("kT", 0.0))
    return lat, ham, ens


def model_attrs(ham: SdHamiltonian, ens: Ensemble, solver: str) -> dict[str, Any]:
    """Data-contract attrs of the physical model and solver."""
    t1, t2, t3 = ham.t
    return {"t1": t1, "t2": t2, "t3": t3, "J": ham.J, **ens.attrs(), "solver": solver}


def relax(
    cfg: Mapping[str, Any], trajectory: str | Path, figure: str | Path, summary: str | Path
) -> dict[str, Any]:
    """Damped (optionally Langevin) ED-LLG relaxation from random spins.

    Writes the trajectory store, a PNG of the final texture and a summary JSON with the
    final energy per site, the energy of the reference ordered state and the fraction of
    structure-factor weight at its ordering wavevectors. Resumes an interrupted run.
    """
    lat, ham, ens = build_model(cfg)
    ed = ExactDiagonalization(ham, ens)
    llg = LLG(
        ed,
        alpha=cfg["alpha"],
        dt=cfg["dt"],
        kT=cfg.get("kT_bath", 0.0),
        method=cfg.get("method", "midpoint"),
        seed=cfg["seed"],
    )
    initial = textures.random_spins(lat.N, np.random.default_rng(cfg["seed"]))
    attrs = {
        **model_attrs(ham, ens, "ed"),
        "protocol": "relax",
        "provenance": provenance(dict(cfg)),
    }
    run_llg(llg, lat, initial, trajectory, int(cfg["n_steps"]), int(cfg["save_every"]), attrs)
    ds = open_store(trajectory)
    final = ds["spins"].isel(frame=-1).values
    e_final = float(ds["energy"].isel(frame=-1)) / lat.N
    out: dict[str, Any] = {
        "lattice": lat.kind,
        "L": lat.Lx,
        "J": ham.J,
        **ens.attrs(),
        "n_frames": int(ds.sizes["frame"]),
        "final_time": float(ds["time"].isel(frame=-1)),
        "final_energy_per_site": e_final,
    }
    if lat.kind in ORDERED and lat.Lx % 2 == 0:
        name, point = ORDERED[lat.kind]
        ref = getattr(textures, name)(lat)
        e_ref = ed.energy(ref) / lat.N
        out.update(
            {
                "reference_state": name,
                "reference_energy_per_site": e_ref,
                "relative_energy_difference": abs(e_final - e_ref) / abs(e_ref),
                f"structure_factor_weight_at_{point}": float(weight_fraction(lat, final, point)),
            }
        )
    plot_texture(
        lat,
        final,
        figure,
        title=f"ED-LLG {lat.kind} {lat.Lx}x{lat.Ly}, J={ham.J}, t={out['final_time']:g}",
    )
    Path(summary).write_text(json.dumps(out, indent=2) + "\n")
    return out


# ======================================================================================
# Workflow stages: one function per rule. Each takes the validated section of one system
# (``config["systems"][name]``, a plain dict with the keys of
# workflow/schemas/config.schema.yaml) and file paths; the scripts in scripts/ only
# unpack the ``snakemake`` object. Units: t1 = 1 sets the energy, hbar = gamma = 1.
# ======================================================================================

#: Ordering wavevectors (high-symmetry point) and reference texture of each order.
ORDER_POINTS = {"tetrahedral": "M", "120": "K", "neel": "M", "ferro_af": "M"}
#: ``analyze.order`` -> the ``order`` argument of ``mllg.analysis.order.quench_series``
QUENCH_ORDER = {
    "tetrahedral": "tetrahedral",
    "120": "120",
    "neel": "neel",
    "ferro_af": "double_exchange",
}
ORDER_TEXTURES = {
    "tetrahedral": "tetrahedral",
    "120": "three_sublattice_120",
    "neel": "neel",
    "ferro_af": "neel",
}

#: Keys of timing results (differ between otherwise identical runs).
TIMING_KEYS = ("train_time_s", "time_per_field_exact_s", "time_per_field_ml_s", "speed_ratio")


def _json(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write JSON with non-finite numbers as null (valid JSON for every reader)."""

    def clean(x: Any) -> Any:
        if isinstance(x, Mapping):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, list | tuple):
            return [clean(v) for v in x]
        if isinstance(x, np.generic):
            x = x.item()
        if isinstance(x, float) and not np.isfinite(x):
            return None
        return x

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(clean(data), indent=2) + "\n")


def _classical(model: Mapping[str, Any]):
    """Easy-axis anisotropy ``-K sum_i (S_i^z)^2`` or None."""
    from mllg.dynamics import ClassicalTerms

    return ClassicalTerms(K=float(model["K"])) if model.get("K") else None


def _physics(model: Mapping[str, Any]) -> dict[str, Any]:
    """The ``model`` keys that :func:`build_model` reads."""
    return {k: model.get(k) for k in ("lattice", "t1", "t2", "t3", "J", "filling", "mu", "kT")}


def exact_solver(system: Mapping[str, Any], size: int, bias: float = 0.0) -> Any:
    """Exact field provider of a system on a lattice of linear size ``size``.

    ED or KPM (``sample.solver``) on an L x L periodic lattice, or the NEGF solver of an
    Lx = ``size`` strip between two leads at bias ``bias``.

    Parameters
    ----------
    system : mapping
        Validated system section.
    size : int
        L (periodic) or Lx (strip).
    bias : float
        Bias V of the NEGF solver.

    Returns
    -------
    field provider
        Callable ``spins (N, 3) -> fields (N, 3)`` with a ``hamiltonian`` attribute.
    """
    model, sample = system["model"], system["sample"]
    if sample["solver"] == "negf":
        from mllg.electrons.negf import strip_negf

        return strip_negf(
            int(size),
            int(model["W"]),
            t1=model["t1"],
            J=model["J"],
            mu=model["mu"],
            kT=model["kT"],
            periodic_y=model["periodic_y"],
            bias=float(bias),
            t_lead=model["t_lead"],
            t_coupling=model["t_coupling"],
            tol=sample["tol"],
        )
    _, ham, ens = build_model({**_physics(model), "L": size})
    if sample["solver"] == "kpm":
        from mllg.electrons.kpm import KernelPolynomial

        return KernelPolynomial(ham, ens, moments=int(sample["moments"]))
    return ExactDiagonalization(ham, ens)


def label_solver(system: Mapping[str, Any], size: int) -> Any | None:
    """Solver of the stored training labels, or ``None`` when the dynamics' own fields are.

    With ``sample.label_mu`` set (equilibrium, canonical model), the labels are grand
    canonical at that ``mu`` (units of t) and the model's ``kT``: fields
    ``h_i = -dOmega/dS_i = J <c_i^dag sigma c_i>`` and the grand potential
    ``Omega = sum_n omega(eps_n - mu)`` as energy. A Behler–Parrinello energy is a sum
    of local terms, i.e. grand canonical, while at fixed N_e the chemical potential of a
    small training lattice depends on the whole configuration (a non-local label).
    """
    mu = system["sample"].get("label_mu")
    if mu is None:
        return None
    model = {**system["model"], "filling": None, "mu": float(mu)}
    return exact_solver({**system, "model": model}, size)


def system_lattice(system: Mapping[str, Any], size: int) -> Lattice:
    """Lattice of linear size ``size`` (L x L periodic, or an Lx x W strip)."""
    model = system["model"]
    if model["lattice"] == "strip":
        return make_lattice("strip", size, model["W"], periodic_y=model["periodic_y"])
    return make_lattice(model["lattice"], size)


def _provenance(system: Mapping[str, Any], stage: str, **extra: Any) -> dict[str, Any]:
    return provenance({"stage": stage, "system": dict(system), **extra})


# ------------------------------------------------------------------------------ sample
def sample(system: Mapping[str, Any], tag: str, chunk: int, out: str | Path) -> Path:
    """Exact training data of one chunk: Langevin-LLG frames (ED/KPM) or NEGF walls.

    Equilibrium: a Langevin-LLG trajectory from random spins (seed ``sample.seed +
    chunk``) at bath temperature ``kT_bath[chunk % len(kT_bath)]`` on the L x L training
    lattice, every ``every``-th frame stored (``mllg.sampling.sample_llg``; resumable).
    The sampling dynamics and the stored fields are purely electronic (``model.K`` enters
    only the simulate and validate dynamics, added to the model's field).
    Driven: ``configs`` perturbed domain walls with their NEGF fields at the bias of
    ``tag`` (``mllg.negf_sampling.sample_negf``).

    Parameters
    ----------
    system : mapping
        Validated system section.
    tag : str
        ``"eq"`` or a voltage tag (:func:`voltage_tag`).
    chunk : int
        Chunk index (0-based).
    out : str or pathlib.Path
        Zarr store to write.

    Returns
    -------
    pathlib.Path
        The store.
    """
    from mllg.sampling import sample_llg

    s = system["sample"]
    seed = int(s["seed"]) + int(chunk)
    attrs = {"chunk": int(chunk), "data_tag": tag}
    if system["kind"] == "driven":
        from mllg.io import make_dataset, write_dataset
        from mllg.negf_sampling import sample_negf

        v = tag_voltage(tag)
        solver = exact_solver(system, s["L"], bias=v)
        prov = {"model": system["model"], "sample": s, "chunk": chunk, "tag": tag}
        # every configuration at V and, for V != 0, also at V = 0 (``fields_eq``), so that
        # a model of the nonequilibrium part h(V) - h(0) can be trained (train.target)
        volts = [v] if v == 0.0 else [0.0, v]
        ds = sample_negf(
            solver, volts, int(s["configs"]), seed=seed, config=prov, noise=s["wall_noise"]
        )
        k = len(volts)
        attrs = {**ds.attrs, **attrs, "bias": v}
        for key in ("voltages", "n_configs"):
            attrs.pop(key, None)
        arrays = {
            "spins": ds["spins"].values[k - 1 :: k],
            "fields": ds["fields"].values[k - 1 :: k],
            "quad_error": ds["quad_error"].values[k - 1 :: k],
        }
        if k == 2:
            arrays["fields_eq"] = ds["fields"].values[0::k]
        write_dataset(out, make_dataset(solver.hamiltonian.lattice, attrs, **arrays))
        return Path(out)
    solver = exact_solver(system, s["L"])
    lat = solver.hamiltonian.lattice
    kts = s["kT_bath"]
    return sample_llg(
        solver,
        lat,
        textures.random_spins(lat.N, np.random.default_rng(seed)),
        out,
        alpha=s["alpha"],
        dt=s["dt"],
        kT=float(kts[chunk % len(kts)]),
        n_steps=int(s["n_steps"]),
        every=int(s["every"]),
        seed=seed,
        attrs=attrs,
        config={"model": system["model"], "sample": s, "chunk": chunk},
        labels=label_solver(system, s["L"]),
    )


# ---------------------------------------------------------------------------- featurize
def featurize(system: Mapping[str, Any], data: str | Path, out: str | Path) -> dict[str, Any]:
    """Descriptors G_i of every frame of a data store (optional cache for inspection).

    Writes ``features`` (frame, site, feature) with the store's lattice coordinates and
    the descriptor settings as attrs. Training recomputes descriptors (it needs their
    derivatives with respect to the spins), so this stage is a cache for analysis and a
    check that the descriptor builds for the lattice.

    Returns
    -------
    dict
        ``n_frames``, ``n_sites``, ``n_features``.
    """
    import torch
    import xarray as xr

    from mllg.descriptors import make_descriptor
    from mllg.io import lattice_from_attrs, write_dataset

    ds = open_store(data)
    lat = lattice_from_attrs(ds.attrs)
    desc = make_descriptor(lat, dict(system["train"]["descriptor"]))
    spins = ds["spins"].transpose("frame", "site", "vec").values
    with torch.no_grad():
        feats = np.concatenate(
            [
                desc(torch.as_tensor(spins[i : i + 16], dtype=torch.float64)).numpy()
                for i in range(0, len(spins), 16)
            ]
        )
    out_ds = xr.Dataset(
        {"features": (("frame", "site", "feature"), feats)},
        coords={
            "x": ("site", lat.x.astype(np.int64)),
            "y": ("site", lat.y.astype(np.int64)),
            "feature": ("feature", np.arange(feats.shape[-1], dtype=np.int64)),
        },
        attrs={
            **{k: v for k, v in ds.attrs.items() if k in ("lattice", "Lx", "Ly", "W", "solver")},
            "descriptor": json.dumps(dict(system["train"]["descriptor"])),
            "provenance": json.dumps(_provenance(system, "featurize", data=str(data))),
        },
    )
    write_dataset(out, out_ds)
    return {"n_frames": feats.shape[0], "n_sites": feats.shape[1], "n_features": feats.shape[2]}


# -------------------------------------------------------------------------------- train
def train_model(
    system: Mapping[str, Any], data: list[str | Path], seed: int, out_dir: str | Path
) -> dict[str, Any]:
    """Train one BP model (``mllg.nn.train``) on the chunks of one data set.

    Output in ``out_dir``: ``model/`` (exported model), ``metrics.json`` (test metrics,
    epochs, train time), ``parity.png``, ``checkpoints/``, ``logs/`` (CSV). Stale
    checkpoints and logs of an earlier run are removed first.

    The model's potential is ``train.potential``, except for the V = 0 model of
    ``train.target = nonequilibrium`` (data without ``fields_eq``), which uses
    ``train.eq_potential`` when set (h(0) is the gradient of the grand potential).

    Returns
    -------
    dict
        The metrics.
    """
    import shutil

    from mllg.nn import ModelConfig, TrainConfig, train

    t = system["train"]
    out_dir = Path(out_dir)
    for stale in ("checkpoints", "logs"):
        shutil.rmtree(out_dir / stale, ignore_errors=True)
    potential = t["potential"]
    if t.get("eq_potential") and t.get("target") == "nonequilibrium":
        if not all("fields_eq" in open_store(p).data_vars for p in data):
            potential = t["eq_potential"]  # the V = 0 model of h(0)
    mcfg = ModelConfig(
        descriptor=dict(t["descriptor"]),
        hidden=tuple(t["hidden"]),
        activation=t["activation"],
        potential=potential,
        lead_columns=int(t["lead_columns"]),
        dtype=t["dtype"],
        vector_r_cut=float(t.get("vector_r_cut", 2.0)),
        message_r_cut=float(t.get("message_r_cut", 0.0)),
        message_width=int(t.get("message_width", 16)),
        pair_r_cut=float(t.get("pair_r_cut", 0.0)),
    )
    cfg = TrainConfig(
        model=mcfg.to_dict(),
        lr=t["lr"],
        energy_weight=t["energy_weight"],
        batch_size=int(t["batch_size"]),
        max_epochs=int(t["max_epochs"]),
        patience=int(t["patience"]),
        grad_clip=float(t.get("grad_clip", 0.0)),
        val_fraction=t["val_fraction"],
        test_fraction=t["test_fraction"],
        seed=int(seed),
        threads=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
    )
    _, metrics = train(training_data(system, data), cfg, out_dir)
    return metrics


def training_data(system: Mapping[str, Any], data: list[str | Path]) -> Any:
    """The training set of a data set: the stores, or for ``train.target =
    nonequilibrium`` (driven systems, V != 0) the nonequilibrium part of the field,
    ``h(V) - h(0)`` of the same spins (``fields - fields_eq``).

    Returns
    -------
    mllg.nn.FieldData
        Spins and target fields (no energies for driven data).
    """
    from mllg.nn import FieldData, load_field_data

    fd = load_field_data([str(p) for p in data])
    if system["train"].get("target") != "nonequilibrium":
        return fd
    if not all("fields_eq" in open_store(p).data_vars for p in data):
        return fd  # V = 0: the equilibrium field itself
    eq = [open_store(p)["fields_eq"].transpose("frame", "site", "vec").values for p in data]
    return FieldData(fd.lattice, fd.spins, fd.fields - np.concatenate(eq), None, fd.attrs)


class SumProvider:
    """Field provider summing several providers: ``h = sum_k h_k(S)`` (units of t).

    Used for driven systems with ``train.target = nonequilibrium``: the V = 0 model
    (equilibrium field) plus the model of the nonequilibrium part at V.
    """

    def __init__(self, providers: list[Any]) -> None:
        self.providers = list(providers)

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        return np.sum([np.asarray(p(spins), dtype=float) for p in self.providers], axis=0)


def _load_models(model_dirs: list[str | Path], lattice: Lattice) -> list:
    from mllg.nn import load_model

    return [load_model(p, lattice) for p in model_dirs]


def _ml_provider(models: list) -> Any:
    from mllg.nn import Committee, MLFieldProvider

    return MLFieldProvider(models[0]) if len(models) == 1 else Committee(models)


def _provider(
    model_dirs: list[str | Path], base_model_dirs: list[str | Path] | None, lattice: Lattice
) -> Any:
    """ML field provider of the models (committee mean), plus the base models if any."""
    own = _ml_provider(_load_models(model_dirs, lattice))
    if not base_model_dirs:
        return own
    return SumProvider([_ml_provider(_load_models(base_model_dirs, lattice)), own])


def _time_per_call(fun, spins: NDArray, repeats: int) -> float:
    """Median wall time of ``fun(spins)`` over ``repeats`` calls (after one warm-up)."""
    import time

    fun(spins)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fun(spins)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# ----------------------------------------------------------------------------- validate
def _start(
    system: Mapping[str, Any],
    provider: Any,
    relax_provider: Callable[[], Any],
    lattice: Lattice,
    seed: int,
) -> tuple[NDArray, LLG]:
    """Initial spins and the production integrator of ``simulate``.

    Driven: a 180 deg wall (width 2) relaxed for ``simulate.relax_steps`` steps at
    alpha = 0.5 and kT = 0 with ``relax_provider()`` (the V = 0 model; built only when
    needed). Equilibrium: random spins from ``seed``. The integrator is
    :func:`production_llg`.
    """
    from mllg.analysis.domain_wall import domain_wall

    sim = system["simulate"]
    cl = _classical(system["model"])
    if system["kind"] == "driven":
        spins = domain_wall(lattice, width=2.0)
        n_relax = int(sim["relax_steps"])
        if n_relax:
            relax_llg = LLG(
                relax_provider(),
                alpha=0.5,
                dt=sim["dt"],
                precession=sim["precession"],
                classical=cl,
                seed=seed,
            )
            for frame in relax_llg.run(spins, n_relax, every=n_relax, energy=False):
                spins = frame.spins
    else:
        spins = textures.random_spins(lattice.N, np.random.default_rng(seed))
    return spins, production_llg(system, provider, seed)


def production_llg(system: Mapping[str, Any], provider: Any, seed: int) -> LLG:
    """The LLG integrator of ``simulate``: ``simulate.alpha``, ``dt``, ``kT_bath`` and
    ``precession``, the classical terms of the model and the noise seed ``seed``.

    dS/dt = p S x h - alpha S x (S x h) + Langevin noise, h = provider field (units of t)
    plus the classical terms (``mllg.dynamics.LLG``).
    """
    sim = system["simulate"]
    return LLG(
        provider,
        alpha=sim["alpha"],
        dt=sim["dt"],
        kT=sim["kT_bath"],
        precession=sim["precession"],
        classical=_classical(system["model"]),
        seed=seed,
    )


def _wall_llg(
    system: Mapping[str, Any],
    provider: Any,
    relax_provider: Any,
    lattice: Lattice,
    n_steps: int,
    seed: int,
    every: int,
) -> tuple[NDArray, NDArray, NDArray]:
    """Relax a wall (``simulate.relax_steps`` at V = 0, alpha 0.5) then drive it.

    Returns times, wall positions and the final spins of the driven part.
    """
    from mllg.analysis.domain_wall import wall_positions

    spins, llg = _start(system, provider, lambda: relax_provider, lattice, seed)
    frames = list(llg.run(spins, n_steps, every=every, energy=False))
    times = np.array([f.time for f in frames])
    stack = np.stack([f.spins for f in frames])
    return times, wall_positions(stack, lattice), stack[-1]


def validate(
    system: Mapping[str, Any],
    tag: str,
    model_dirs: list[str | Path],
    out_dir: str | Path,
    base_model_dirs: list[str | Path] | None = None,
) -> dict[str, Any]:
    """ML against the exact solver on unseen states, speed ratio, short LLG comparison.

    * Fields: exact reference frames the models never saw (equilibrium: a fresh
      Langevin-LLG run at ``validate.kT_bath`` from random spins with seed
      ``validate.seed``; driven: fresh perturbed walls at the bias of ``tag``); metrics
      of the perpendicular fields (``mllg.nn.evaluate``) and the committee spread.
    * Speed: median time per field evaluation, exact solver vs the ML model, on a
      lattice of size ``validate.speed_L``; ``speed_ratio = exact / ML``.
    * LLG (``validate.llg_steps > 0``): equilibrium, damped ED/KPM-LLG and ML-LLG from
      the same random state, final energies per site (both evaluated with the exact
      solver); driven, a direct NEGF-LLG run of the simulate protocol (relaxed wall,
      then the bias) giving the reference wall velocity.

    With ``base_model_dirs`` (driven, ``train.target = nonequilibrium``) the ML field is
    the V = 0 model plus the model of the nonequilibrium part; the metrics are those of
    the sum, and ``noneq_*`` those of the nonequilibrium part alone.

    Writes ``metrics.json`` and ``parity.png`` in ``out_dir``.

    Returns
    -------
    dict
        The metrics.
    """
    from mllg.analysis.domain_wall import wall_velocity
    from mllg.negf_sampling import sample_negf
    from mllg.nn import evaluate
    from mllg.nn.training import field_metrics, parity_plot
    from mllg.sampling import sample_llg

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    v = system["validate"]
    s = system["sample"]
    bias = tag_voltage(tag) or 0.0
    exact = exact_solver(system, s["L"], bias=bias)
    lat = exact.hamiltonian.lattice
    models = _load_models(model_dirs, lat)
    base = _load_models(base_model_dirs, lat) if base_model_dirs else []
    fields_eq = None
    if system["kind"] == "driven":
        volts = [bias] if not base else [0.0, bias]
        both = sample_negf(exact, volts, int(v["frames"]), seed=int(v["seed"]))
        k = len(volts)
        ref = both.isel(frame=slice(k - 1, None, k))
        if base:
            fields_eq = both["fields"].values[0::k]
    else:
        tmp = out_dir / "reference.zarr"
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        every = int(s["every"])
        sample_llg(
            exact,
            lat,
            textures.random_spins(lat.N, np.random.default_rng(v["seed"])),
            tmp,
            alpha=s["alpha"],
            dt=s["dt"],
            kT=v["kT_bath"],
            n_steps=every * (int(v["frames"]) - 1) + every * 4,
            every=every,
            seed=int(v["seed"]),
            labels=label_solver(system, s["L"]),
        )
        ref = open_store(tmp).load().isel(frame=slice(-int(v["frames"]), None))
        shutil.rmtree(tmp, ignore_errors=True)
    spins = ref["spins"].transpose("frame", "site", "vec").values
    fields = ref["fields"].transpose("frame", "site", "vec").values
    energy = ref["energy"].values if "energy" in ref.data_vars else None
    cl = _classical(system["model"])
    metrics: dict[str, Any] = {"data_tag": tag, "n_models": len(models)}
    if base:
        delta = models[0].predict(spins)["fields"]
        pred = base[0].predict(spins)["fields"] + delta
        metrics.update(field_metrics(spins, pred, fields))
        metrics["n_frames_eval"] = int(spins.shape[0])
        noneq = field_metrics(spins, delta, fields - fields_eq)
        metrics.update({f"noneq_{k}": noneq[k] for k in ("perp_rel_rmse", "perp_r2")})
        parity_plot(
            spins,
            pred,
            fields,
            out_dir / "parity.png",
            f"rel. RMSE {metrics['perp_rel_rmse']:.3%}, nonequilibrium part "
            f"{metrics['noneq_perp_rel_rmse']:.1%}",
        )
    else:
        metrics.update(evaluate(models[0], spins, fields, energy, out_dir=out_dir))
    if len(models) > 1:
        from mllg.nn import Committee

        com = Committee(models).predict(spins)
        metrics["committee_sigma_mean"] = float(np.mean(com["sigma"]))
    # speed
    big_exact = exact_solver(system, v["speed_L"], bias=bias)
    big = big_exact.hamiltonian.lattice
    probe = (
        textures.random_spins(big.N, np.random.default_rng(0))
        if system["kind"] != "driven"
        else _wall_probe(big)
    )
    ml_big = _provider(model_dirs[:1], (base_model_dirs or [])[:1], big)
    t_exact = _time_per_call(big_exact, probe, int(v["repeats"]))
    t_ml = _time_per_call(ml_big, probe, int(v["repeats"]))
    metrics.update(
        {
            "speed_lattice_sites": int(big.N),
            "time_per_field_exact_s": t_exact,
            "time_per_field_ml_s": t_ml,
            "speed_ratio": t_exact / t_ml,
        }
    )
    n = int(v["llg_steps"])
    if n and system["kind"] == "driven":
        relax_exact = exact_solver(system, s["L"], bias=0.0)
        every = max(1, n // 20)
        times, pos, _ = _wall_llg(system, exact, relax_exact, lat, n, 0, every)
        vel, err = wall_velocity(times, pos, t_min=float(system["analyze"]["t_min"]))
        metrics.update(
            {
                "negf_llg_time": times.tolist(),
                "negf_llg_position": pos.tolist(),
                "negf_llg_velocity": vel,
                "negf_llg_velocity_stderr": err,
            }
        )
    elif n:
        init = textures.random_spins(lat.N, np.random.default_rng(int(v["seed"]) + 1))
        finals = {}
        for name, prov in (("exact", exact), ("ml", _ml_provider(models))):
            llg = LLG(prov, alpha=s["alpha"], dt=s["dt"], classical=cl, seed=0)
            for frame in llg.run(init, n, every=n, energy=False):
                finals[name] = frame.spins
        e = {k: float(np.ravel(exact.energy(x))[0]) / lat.N for k, x in finals.items()}
        metrics.update(
            {
                "llg_steps": n,
                "llg_final_energy_per_site_exact": e["exact"],
                "llg_final_energy_per_site_ml": e["ml"],
                "llg_energy_difference_per_site": e["ml"] - e["exact"],
            }
        )
    _json(out_dir / "metrics.json", metrics)
    return metrics


def _wall_probe(lattice: Lattice) -> NDArray:
    from mllg.analysis.domain_wall import domain_wall

    return domain_wall(lattice, width=2.0, phi=0.3)


# ----------------------------------------------------------------------------- simulate
def simulate(
    system: Mapping[str, Any],
    tag: str,
    seed: int,
    model_dirs: list[str | Path],
    out: str | Path,
    relax_model_dirs: list[str | Path] | None = None,
    base_model_dirs: list[str | Path] | None = None,
) -> dict[str, Any]:
    """ML-LLG production run on the large lattice (resumable trajectory store).

    Equilibrium: quench from random spins (seed) on L x L with the model's fields, bath
    ``simulate.kT_bath``. Driven: a 180 deg wall (width 2) in the Lx strip, relaxed for
    ``relax_steps`` with the V = 0 model (``relax_model_dirs``; alpha 0.5), then driven
    with the model of the bias of ``tag``. The sign of the precession term is
    ``simulate.precession`` (+1 conserves spin for driven systems). Frames every
    ``save_every`` steps: spins, fields (ML), time, step (``mllg.runs.run_llg``). With
    ``base_model_dirs`` the field is the base (V = 0) model plus the run's model of the
    nonequilibrium part (``train.target = nonequilibrium``).

    Returns
    -------
    dict
        ``n_frames`` and ``final_time``.
    """

    sim = system["simulate"]
    lat = system_lattice(system, sim["L"])
    provider = _provider(model_dirs, base_model_dirs, lat)
    spins, llg = _start(
        system,
        provider,
        lambda: _ml_provider(_load_models(relax_model_dirs or model_dirs, lat)),
        lat,
        int(seed),
    )
    model = system["model"]
    attrs = {
        "t1": model["t1"],
        "t2": model["t2"],
        "t3": model["t3"],
        "J": model["J"],
        "kT": model["kT"],
        **({"mu": model["mu"]} if model["mu"] is not None else {"filling": model["filling"]}),
        "solver": "ml",
        "data_tag": tag,
        "seed": int(seed),
        "precession": int(sim["precession"]),
        "kT_bath": float(sim["kT_bath"]),
        "provenance": _provenance(system, "simulate", tag=tag, seed=int(seed)),
    }
    if system["kind"] == "driven":
        attrs["bias"] = tag_voltage(tag)
    run_llg(llg, lat, spins, out, int(sim["n_steps"]), int(sim["save_every"]), attrs)
    ds = open_store(out)
    return {"n_frames": int(ds.sizes["frame"]), "final_time": float(ds["time"][-1])}


# ------------------------------------------------------------------------------ analyze
def order_series(system: Mapping[str, Any], lattice: Lattice, spins: NDArray) -> dict:
    """Per-frame observables of a quench, spins (F, N, 3), from ``quench_series``.

    ``length`` is the domain size L(t) that the growth law is fitted to: the chiral
    (Z2) domain size for the tetrahedral order (the spin-order length is kept as
    ``spin_length``), the spin-order length around the ordering wavevectors otherwise;
    capped at the lattice size. The other keys are those of ``quench_series``:
    ``weight``, ``nn_correlation`` and ``chirality`` (triangular) or the ``ferro`` and
    ``antiferro`` local-order fractions (square).
    """
    from mllg.analysis.order import quench_series

    kind = system["analyze"]["order"]
    out = quench_series(lattice, spins, QUENCH_ORDER[kind])
    if kind == "tetrahedral":
        out["spin_length"] = out["length"]
        out["length"] = out.pop("chiral_length")
    else:
        out.pop("chiral_length", None)
    out["length"] = np.minimum(out["length"], float(lattice.Lx))
    return out


def analyze(
    system: Mapping[str, Any],
    trajectories: Mapping[str, list[str | Path]],
    validations: Mapping[str, str | Path],
    out_json: str | Path,
    out_store: str | Path,
) -> dict[str, Any]:
    """Observables of the production runs.

    Equilibrium: L(t) and the order observables of :func:`order_series` per seed, the
    growth exponent ``L ~ t^n`` (``fit_growth_exponent`` on ``analyze.t_min <= t <=
    t_max`` where L is below half the lattice size) and the final values. Driven: the
    wall position X(t) of every run (tanh fit), its velocity ``v = dX/dt`` for ``t >=
    t_min`` per voltage, averaged over seeds, next to the direct NEGF-LLG velocity from
    validate: the v(V) table.

    Parameters
    ----------
    trajectories : mapping
        tag -> trajectory stores (one per seed).
    validations : mapping
        tag -> validate metrics JSON.
    out_json : path
        Analysis results.
    out_store : path
        Zarr store of the time series (dims ``seed``/``bias`` and ``frame``).

    Returns
    -------
    dict
        The analysis results.
    """
    import xarray as xr

    from mllg.analysis.domain_wall import wall_positions, wall_velocity
    from mllg.analysis.order import fit_growth_exponent
    from mllg.io import lattice_from_attrs, write_dataset

    a = system["analyze"]
    result: dict[str, Any] = {"order": a["order"]}
    if system["kind"] == "driven":
        rows, pos_all, times = [], [], None
        for tag, paths in trajectories.items():
            vs, ps = [], []
            for p in paths:
                ds = open_store(p).load()
                lat = lattice_from_attrs(ds.attrs)
                times = ds["time"].values
                pos = wall_positions(ds["spins"].transpose("frame", "site", "vec").values, lat)
                vs.append(wall_velocity(times, pos, t_min=a["t_min"]))
                ps.append(pos)
            ref = json.loads(Path(validations[tag]).read_text())
            vel = float(np.mean([x[0] for x in vs]))
            err = float(np.sqrt(np.mean([x[1] ** 2 for x in vs])))
            rows.append(
                {
                    "bias": tag_voltage(tag),
                    "velocity_ml": vel,
                    "velocity_ml_stderr": err,
                    "velocity_negf": ref.get("negf_llg_velocity"),
                    "velocity_negf_stderr": ref.get("negf_llg_velocity_stderr"),
                    "final_position": float(np.mean([p[-1] for p in ps])),
                }
            )
            pos_all.append(np.mean(ps, axis=0))
        rows.sort(key=lambda r: r["bias"])
        order = np.argsort([tag_voltage(t) for t in trajectories])
        result["velocity_table"] = rows
        volts = np.array([r["bias"] for r in rows])
        v_ml = np.array([r["velocity_ml"] for r in rows])
        if len(volts) >= 2:
            result["mobility_ml"] = float(np.polyfit(volts, v_ml, 1)[0])
            v_ref = [r["velocity_negf"] for r in rows]
            if all(x is not None for x in v_ref):
                result["mobility_negf"] = float(np.polyfit(volts, np.array(v_ref), 1)[0])
        ds_out = xr.Dataset(
            {"position": (("bias", "frame"), np.array(pos_all)[order])},
            coords={"bias": volts, "time": ("frame", times)},
        )
    else:
        series, times, lat = [], None, None
        for p in trajectories[EQ_TAG]:
            ds = open_store(p).load()
            lat = lattice_from_attrs(ds.attrs)
            times = ds["time"].values
            spins = ds["spins"].transpose("frame", "site", "vec").values
            series.append(order_series(system, lat, spins))
        keys = list(series[0])
        stacked = {k: np.stack([np.asarray(s[k]) for s in series]) for k in keys}
        length = stacked["length"]
        t_max = a["t_max"] if a["t_max"] is not None else float(times[-1])
        ok = (times >= a["t_min"]) & (times <= t_max) & (times > 0)
        ok &= np.all(length < 0.5 * lat.Lx, axis=0)
        fit: dict[str, Any] = {"exponent": None, "stderr": None}
        if ok.sum() >= 3:
            fit = fit_growth_exponent(times[ok], length[:, ok], -np.inf, np.inf)
            fit["t_min"], fit["t_max"] = float(times[ok][0]), float(times[ok][-1])
        result["growth"] = fit
        result["final"] = {k: float(stacked[k][:, -1].mean()) for k in keys}
        result["initial"] = {k: float(stacked[k][:, 0].mean()) for k in keys}
        result["n_seeds"] = len(series)
        ds_out = xr.Dataset(
            {k: (("seed", "frame"), v) for k, v in stacked.items()},
            coords={"seed": np.arange(len(series)), "time": ("frame", times)},
        )
    ds_out.attrs["provenance"] = json.dumps(_provenance(system, "analyze"))
    write_dataset(out_store, ds_out)
    _json(out_json, result)
    return result


# ------------------------------------------------------------------------------ figures
def figures(
    system: Mapping[str, Any],
    name: str,
    analysis: str | Path,
    store: str | Path,
    trajectory: str | Path,
    outputs: Mapping[str, str | Path],
) -> None:
    """Figures of one system from its analysis (no recomputation of physics).

    Equilibrium (``outputs`` keys): ``texture`` (final spins of the first seed; colour
    = site chirality for tetrahedral, S_z otherwise), ``structure_factor`` (its S(q)),
    ``growth`` (L(t) with the fitted exponent), ``order`` (order observables vs time).
    Driven: ``texture`` (final strip of the largest bias), ``position`` (X(t) per V),
    ``velocity`` (v(V), ML and direct NEGF).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mllg.analysis.structure import structure_factor
    from mllg.io import lattice_from_attrs
    from mllg.plotting import plot_growth, plot_series, plot_structure_factor

    res = json.loads(Path(analysis).read_text())
    series = open_store(store).load()
    traj = open_store(trajectory)
    lat = lattice_from_attrs(traj.attrs)
    final = traj["spins"].isel(frame=-1).transpose("site", "vec").values
    t_end = float(traj["time"][-1])
    dpi = int(system.get("figures", {}).get("dpi", 120))
    colour = {"tetrahedral": "chirality", "ferro_af": "order"}.get(system["analyze"]["order"], "Sz")
    plot_texture(
        lat, final, outputs["texture"], title=f"{name}: ML-LLG, t = {t_end:g}", colour=colour
    )
    if system["kind"] == "driven":
        time = series["time"].values
        curves = {
            f"V = {v:+.2f}": (time, series["position"].sel(bias=v).values)
            for v in series["bias"].values
        }
        plot_series(curves, outputs["position"], "time (1/t)", "wall position X (sites)", name)
        rows = res["velocity_table"]
        vv = {"ML-LLG": ([r["bias"] for r in rows], [r["velocity_ml"] for r in rows])}
        if all(r["velocity_negf"] is not None for r in rows):
            vv["NEGF-LLG (direct)"] = (
                [r["bias"] for r in rows],
                [r["velocity_negf"] for r in rows],
            )
        plot_series(
            vv, outputs["velocity"], "bias V (t/e)", "wall velocity v (sites per 1/t)", name, "o-"
        )
    else:
        plot_structure_factor(
            lat, structure_factor(lat, final), outputs["structure_factor"], f"{name}: final S(q)"
        )
        fit = res["growth"] if res["growth"]["exponent"] is not None else None
        plot_growth(series["time"].values, series["length"].values, outputs["growth"], name, fit)
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        for key in series.data_vars:
            if not key.endswith("length"):  # lengths: growth figure
                ax.plot(series["time"].values, series[key].values.mean(0), label=key)
        ax.set_xlabel("time (1/t)")
        ax.set_ylabel("seed mean")
        ax.set_title(f"{name}: order after the quench")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(outputs["order"], dpi=dpi)
        plt.close(fig)


# ------------------------------------------------------------------------------ summary
def summary(
    system: Mapping[str, Any],
    name: str,
    train_metrics: Mapping[str, list[str | Path]],
    validations: Mapping[str, str | Path],
    analysis: str | Path,
    out: str | Path,
) -> dict[str, Any]:
    """Headline numbers of one system in ``results/<system>/summary.json``.

    Accuracy (relative RMSE and R^2 of the perpendicular field on unseen exact states,
    per data set), speed ratio exact/ML per field evaluation, training cost, and the
    physics: growth exponent and final order (equilibrium) or the v(V) table and the
    mobility dv/dV (driven).

    Returns
    -------
    dict
        The summary.
    """
    res = json.loads(Path(analysis).read_text())
    acc, speed = {}, {}
    for tag, path in validations.items():
        m = json.loads(Path(path).read_text())
        acc[tag] = {
            k: m.get(k)
            for k in ("perp_rel_rmse", "perp_r2", "energy_mae_per_site", "committee_sigma_mean")
            if m.get(k) is not None
        }
        for k in ("llg_energy_difference_per_site", "negf_llg_velocity"):
            if k in m:
                acc[tag][k] = m[k]
        speed[tag] = {
            "lattice_sites": m["speed_lattice_sites"],
            "exact_s": m["time_per_field_exact_s"],
            "ml_s": m["time_per_field_ml_s"],
            "ratio_exact_over_ml": m["speed_ratio"],
        }
    training = {}
    for tag, paths in train_metrics.items():
        ms = [json.loads(Path(p).read_text()) for p in paths]
        training[tag] = {
            "n_models": len(ms),
            "test_perp_rel_rmse": [m["perp_rel_rmse"] for m in ms],
            "epochs": [m["epochs"] for m in ms],
            "train_time_s": [m["train_time_s"] for m in ms],
            "n_frames_train": ms[0]["n_frames_train"],
            "n_features": ms[0]["n_features"],
        }
    out_d: dict[str, Any] = {
        "system": name,
        "kind": system["kind"],
        "lattice": system["model"]["lattice"],
        "J": system["model"]["J"],
        "filling": system["model"]["filling"],
        "mu": system["model"]["mu"],
        "training_lattice": system["sample"]["L"],
        "simulation_lattice": system["simulate"]["L"],
        "exact_solver": system["sample"]["solver"],
        "accuracy": acc,
        "speed": speed,
        "training": training,
    }
    if system["kind"] == "driven":
        out_d["velocity_table"] = res["velocity_table"]
        for k in ("mobility_ml", "mobility_negf"):
            if k in res:
                out_d[k] = res[k]
    else:
        out_d["ordered_state"] = system["analyze"]["order"]
        out_d["growth_exponent"] = res["growth"]["exponent"]
        out_d["growth_exponent_stderr"] = res["growth"]["stderr"]
        out_d["growth_fit_window"] = [res["growth"].get("t_min"), res["growth"].get("t_max")]
        out_d["final_order"] = res["final"]
        out_d["initial_order"] = res["initial"]
    _json(out, out_d)
    return out_d
