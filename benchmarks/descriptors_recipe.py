"""Accuracy recipe study: data mix, descriptor size, network size and training settings.

For one system (``--system tetra | 120 | de``) this script

1. samples training frames with :func:`mllg.nn.training.sample_training_frames` (ED
   labels on a small periodic lattice: perturbed ordered states, Langevin LLG around
   them, LLG quenches from random spins), cached under ``--out``;
2. trains one model per ``--variant`` (name=descriptor/network settings, see
   ``VARIANTS``) with :func:`mllg.nn.train` on the same seeded frame split;
3. writes per-variant ``metrics.json`` (test frames, all and by origin), a parity plot,
   and prints a Markdown table row with data size, model size and training time.

Run (one torch thread; several jobs share few cores)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/descriptors_recipe.py --system tetra \\
        --variants plain_r4 --epochs 80
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mllg.electrons.base import Ensemble
from mllg.electrons.ed import ExactDiagonalization, mu_for_mean_filling
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import make_lattice
from mllg.nn import Committee, MLFieldProvider, ModelConfig, TrainConfig, load_model, train
from mllg.nn.training import (
    ORIGINS,
    FieldData,
    field_metrics,
    sample_training_frames,
    split_frames,
)
from mllg.textures import ferromagnet, neel, tetrahedral, three_sublattice_120

SYSTEMS = {
    # lattice, L, J, filling, ordered states
    "tetra": ("triangular", 12, 2.0, 0.25, lambda lat: [tetrahedral(lat, 1), tetrahedral(lat, -1)]),
    "120": ("triangular", 12, 6.0, 0.5, lambda lat: [three_sublattice_120(lat)]),
    "de": ("square", 10, 6.0, 0.485, lambda lat: [neel(lat), ferromagnet(lat)]),
}

_PLAIN_R3, _PLAIN_R4, _PLAIN_R6 = (
    dict(kind="plain", r_cut=r, inner_r_cut=2.0) for r in (3.0, 4.0, 6.0)
)
VARIANTS = {
    # name: (descriptor settings, hidden[, other ModelConfig settings])
    "plain_r5": (dict(kind="plain", r_cut=5.0, inner_r_cut=2.0), (64, 64)),
    "plain_r4": (dict(kind="plain", r_cut=4.0, inner_r_cut=2.0), (64, 64)),
    "plain_r3": (dict(kind="plain", r_cut=3.0, inner_r_cut=3.0), (64, 64)),
    "plain_r3_small": (dict(kind="plain", r_cut=3.0, inner_r_cut=2.0), (32, 32)),
    "plain_r4_wide": (dict(kind="plain", r_cut=4.0, inner_r_cut=2.0), (128, 128)),
    "plain_r4_deep": (dict(kind="plain", r_cut=4.0, inner_r_cut=2.0), (128, 128, 128)),
    "plain_r5i3": (dict(kind="plain", r_cut=5.0, inner_r_cut=3.0), (64, 64)),
    "plain_r4full": (dict(kind="plain", r_cut=4.0), (64, 64)),
    "plain_r4full_wide": (dict(kind="plain", r_cut=4.0), (128, 128)),
    "plain_r5full": (dict(kind="plain", r_cut=5.0), (64, 64)),
    "plain_r4_big": (dict(kind="plain", r_cut=4.0, inner_r_cut=2.0), (256, 256, 128)),
    "plain_r6": (dict(kind="plain", r_cut=6.0, inner_r_cut=2.0), (64, 64)),
    "plain_r6_wide": (dict(kind="plain", r_cut=6.0, inner_r_cut=2.0), (128, 128)),
    "plain_r6i3": (dict(kind="plain", r_cut=6.0, inner_r_cut=3.0), (64, 64)),
    "plain_r6full": (dict(kind="plain", r_cut=6.0), (64, 64)),
    "plain_r6_big": (dict(kind="plain", r_cut=6.0, inner_r_cut=2.0), (256, 256, 128)),
    # one message-passing step (ModelConfig.message_r_cut, width 16): eps_i reads the
    # embeddings of the sites within r_m; hidden[0] embeds, hidden[1:] is the head
    "plain_r4_mp2": (_PLAIN_R4, (64, 64), dict(message_r_cut=2.0)),
    "plain_r4_mp3": (_PLAIN_R4, (64, 64), dict(message_r_cut=3.0)),
    "plain_r4_mp2_wide": (_PLAIN_R4, (128, 128), dict(message_r_cut=2.0, message_width=32)),
    "plain_r6_mp2": (_PLAIN_R6, (64, 64), dict(message_r_cut=2.0)),
    # learned shell-resolved pair exchange to r_p = 6 (ModelConfig.pair_r_cut) on top
    "plain_r4_mp2_p6": (_PLAIN_R4, (64, 64), dict(message_r_cut=2.0, pair_r_cut=6.0)),
    "plain_r4_mp2_wide_p6": (
        _PLAIN_R4,
        (128, 128),
        dict(message_r_cut=2.0, message_width=32, pair_r_cut=6.0),
    ),
    "plain_r3_mp3": (_PLAIN_R3, (64, 64), dict(message_r_cut=3.0)),
    "bisp_r4": (dict(kind="bispectrum", r_cut=4.0, inner_r_cut=2.0, triples=False), (64, 64)),
    "bisp3_r4": (dict(kind="bispectrum", r_cut=4.0, inner_r_cut=2.0, triples=True), (64, 64)),
    "bisp_r3": (dict(kind="bispectrum", r_cut=3.0, inner_r_cut=3.0, triples=False), (64, 64)),
}


def _size_tag(args) -> str:
    """File-name tag of a non-default training lattice (``_L18``), coupling (``_J3.0``)
    and driving model (``_drv-RUN``)."""
    tag = (f"_L{args.L}" if args.L else "") + (f"_J{args.J}" if args.J else "")
    return tag + (f"_drv-{args.driver}" if args.driver else "")


def _system(args) -> tuple:
    """``(kind, L, J, filling, ordered)`` of ``--system`` with ``--L`` and ``--J`` applied."""
    kind, L, J, filling, ordered = SYSTEMS[args.system]
    return kind, args.L or L, args.J or J, filling, ordered


def get_data(args) -> tuple[FieldData, np.ndarray, dict]:
    kind, L, J, filling, ordered = _system(args)
    lat = make_lattice(kind, L, L)
    spins_kT = args.kT_el if args.spins_kT is None else args.spins_kT
    path = args.out / f"data_{args.system}{_size_tag(args)}_kT{spins_kT}_n{args.n_perturbed}.npz"
    if path.exists():
        z = np.load(path)
        info = json.loads(str(z["info"]))
        return FieldData(lat, z["spins"], z["fields"], z["energy"]), z["origin"], info
    ed = ExactDiagonalization(SdHamiltonian(lat, J=J), Ensemble.canonical(filling, spins_kT))
    driver = ed
    if args.driver:  # a trained model drives the LLG runs, ED labels every stored frame
        driver = MLFieldProvider(load_model(args.out / args.driver / "model"), dtype="float64")
    t0 = time.perf_counter()
    data, origin = sample_training_frames(
        driver,
        lat,
        ordered(lat),
        n_perturbed=args.n_perturbed,
        llg_steps=args.llg_steps,
        n_quench=args.n_quench,
        quench_steps=args.quench_steps,
        seed=args.seed,
        labeller=ed if args.driver else None,
    )
    info = {
        "system": args.system,
        "lattice": f"{kind} {L}x{L}",
        "J": J,
        "filling": filling,
        "kT_el": spins_kT,
        "frames": int(data.n_frames),
        "driver": args.driver or "ED",
        "by_origin": {o: int((origin == k).sum()) for k, o in enumerate(ORIGINS)},
        "ed_time_s": time.perf_counter() - t0,
    }
    np.savez(
        path,
        spins=data.spins,
        fields=data.fields,
        energy=data.energy,
        origin=origin,
        info=json.dumps(info),
    )
    return data, origin, info


def relabel_grand_canonical(data: FieldData, args, info: dict) -> tuple[FieldData, dict]:
    """Same spins, labels in the grand canonical ensemble at fixed ``mu`` (and ``kT_el``).

    ``mu`` is the median over the frames of the canonical chemical potential, or with
    ``--match-filling`` the ``mu`` at which the mean filling of the frames is the target
    (:func:`mllg.electrons.ed.mu_for_mean_filling`; the median can miss it where the
    canonical mu of gapped frames is ill-defined). A BP energy (a sum of local terms) is grand
    canonical by construction: at fixed N_e the chemical potential of a finite lattice
    depends on the whole configuration, which makes canonical fields non-local.
    """
    kind, L, J, filling, _ = _system(args)
    lat = data.lattice
    suffix = "_gcf" if args.match_filling else "_gc"
    name = f"data_{args.system}{_size_tag(args)}_kT{args.kT_el}_n{args.n_perturbed}{suffix}.npz"
    path = args.out / name
    if path.exists():
        z = np.load(path)
        return FieldData(lat, z["spins"], z["fields"], z["energy"]), json.loads(str(z["info"]))
    t0 = time.perf_counter()
    can = ExactDiagonalization(SdHamiltonian(lat, J=J), Ensemble.canonical(filling, args.kT_el))
    mus = np.array([float(np.ravel(can.solve(s).mu)[0]) for s in data.spins[::5]])
    mu = float(np.median(mus))
    if args.match_filling:
        mu = mu_for_mean_filling(SdHamiltonian(lat, J=J), data.spins, filling, args.kT_el)
    gc = ExactDiagonalization(SdHamiltonian(lat, J=J), Ensemble.grand_canonical(mu, args.kT_el))
    res = [gc.solve(s) for s in data.spins]
    fields = np.stack([r.fields for r in res])
    energy = np.array([float(np.ravel(r.energy)[0]) for r in res])
    dens = np.array([r.density.sum() / (2 * lat.N) for r in res])
    info = dict(info)
    info.update(
        ensemble="grand canonical",
        kT_el=args.kT_el,
        mu=mu,
        mu_canonical_spread=float(mus.std()),
        filling_mean=float(dens.mean()),
        filling_std=float(dens.std()),
        relabel_time_s=time.perf_counter() - t0,
    )
    np.savez(
        path,
        spins=data.spins,
        fields=fields,
        energy=energy,
        info=json.dumps(info),
    )
    return FieldData(lat, data.spins, fields, energy), info


def locality(data: FieldData, origin: np.ndarray, args, info: dict) -> dict:
    """Locality floor of the labels themselves, per data origin.

    For 8 frames of each origin, 4 random centre sites each: the spins farther than ``r``
    from the centre are taken from another frame of the same origin and the centre's
    field is recomputed by the solver that made the labels (grand canonical at the data
    set's ``mu`` with ``--grand-canonical``). ``delta(r) / sqrt(2)`` estimates the error
    of the best ``r``-local model on these frames (:func:`mllg.analysis.locality.field_change`).
    """
    from mllg.analysis.locality import field_change

    kind, L, J, filling, _ = _system(args)
    ens = (
        Ensemble.grand_canonical(info["mu"], args.kT_el)
        if args.grand_canonical
        else Ensemble.canonical(filling, args.kT_el)
    )
    ed = ExactDiagonalization(SdHamiltonian(data.lattice, J=J), ens)
    rng = np.random.default_rng(args.seed)
    out = {}
    for k, o in enumerate(ORIGINS):
        frames = np.flatnonzero(origin == k)
        picks = rng.choice(frames, min(8, len(frames)), replace=False)
        pairs = ((data.spins[f], data.spins[rng.choice(frames[frames != f])]) for f in picks)
        out[o] = field_change(data.lattice, ed, pairs, args.locality, rng, centres=4)
        row = " | ".join(f"{out[o][str(r)]:.1%}" for r in args.locality)
        print(f"| {args.system} {info['lattice']} kT_el={args.kT_el} | {o} | {row} |", flush=True)
    return out


def by_origin(pred: np.ndarray, data: FieldData, origin: np.ndarray, test: np.ndarray) -> dict:
    """Relative RMSE and R^2 per origin of predicted fields ``pred`` of the frames ``test``."""
    out = {}
    for k, o in enumerate(ORIGINS):
        sel = origin[test] == k
        idx = test[sel]
        if len(idx):
            m = field_metrics(data.spins[idx], pred[sel], data.fields[idx])
            out[o] = {
                "frames": int(len(idx)),
                "perp_rel_rmse": m["perp_rel_rmse"],
                "perp_r2": m["perp_r2"],
            }
    return out


def committee(args, data: FieldData, origin: np.ndarray, test: np.ndarray, info: dict) -> None:
    """Mean field of trained runs (one frame split, ``--seed``) scored on the test frames
    (with ``--score-on``: on those of that file, as :func:`score_on`).

    Writes ``committee<tag>.json`` under ``--out`` with each member's and the mean's
    relative RMSE and R^2 of the perpendicular field, all and per origin.
    """
    runs = [args.out / name for name in args.committee]
    members = [load_model(r / "model") for r in runs]
    for r in runs:
        frames = json.loads((r / "metrics.json").read_text()).get("test_frames")
        if frames is not None and frames != test.tolist():
            raise ValueError(f"run {r} was tested on other frames than --seed {args.seed} gives.")
    if args.score_on:  # the test frames of another frame file, labelled at this data's mu
        data, origin = _score_frames(args, info)
        test = np.arange(data.n_frames)
    com = Committee(members)
    s, h = data.spins[test], data.fields[test]
    record = {"runs": args.committee, "frames": int(len(test)), "members": {}}
    for name, m in zip(args.committee, members, strict=True):
        record["members"][name] = field_metrics(s, m.predict(s)["fields"], h)["perp_rel_rmse"]
    pred = com.predict(s)
    record["mean"] = field_metrics(s, pred["fields"], h)
    record["mean_by_origin"] = by_origin(pred["fields"], data, origin, test)
    record["sigma_mean"] = float(pred["sigma"].mean())
    (args.out / f"committee{args.tag}.json").write_text(json.dumps(record, indent=2))
    members_txt = ", ".join(f"{v:.2%}" for v in record["members"].values())
    bo = " / ".join(f"{v['perp_rel_rmse']:.1%}" for v in record["mean_by_origin"].values())
    print(
        f"| {args.system} committee{args.tag} | {len(members)} | {members_txt} | "
        f"{record['mean']['perp_rel_rmse']:.2%} | {record['mean']['perp_r2']:.4f} | {bo} |",
        flush=True,
    )


def _score_frames(args, info: dict) -> tuple[FieldData, np.ndarray]:
    """Test frames (``--seed`` split) of the frame file ``--score-on`` and their origins,
    labelled by grand-canonical ED at this data's ``mu`` and ``kT_el``."""
    kind, L, J, _, _ = _system(args)
    z = np.load(args.out / args.score_on)
    spins, origin = z["spins"], z["origin"]
    if spins.shape[1] != L * L:
        raise ValueError(f"{args.score_on} has {spins.shape[1]} sites; --L gives {L * L}.")
    _, _, test = split_frames(len(spins), 0.1, 0.1, args.seed)
    lat = make_lattice(kind, L, L)
    gc = ExactDiagonalization(
        SdHamiltonian(lat, J=J), Ensemble.grand_canonical(info["mu"], args.kT_el)
    )
    fields = np.stack([gc.solve(s).fields for s in spins[test]])
    return FieldData(lat, spins[test], fields), origin[test]


def score_on(args, info: dict) -> None:
    """Score trained runs on the test frames of another cached frame set.

    ``--score-on FILE``: a sampled frame file under ``--out`` (it stores ``origin``), e.g.
    the ED-driven frames of an earlier round. Its test frames (``--seed`` split) are
    labelled here by grand-canonical ED at this data's ``mu`` and ``kT_el``, so runs
    trained on different frame sets are compared on the same configurations. Writes
    ``score_on`` into each run's ``metrics.json``.
    """
    data, origin = _score_frames(args, info)
    for name in args.variants:
        run = args.out / f"{args.system}_{name}{args.tag}"
        pred = load_model(run / "model").predict(data.spins)["fields"]
        met = json.loads((run / "metrics.json").read_text())
        met["score_on"] = {
            "file": args.score_on,
            "frames": int(data.n_frames),
            **field_metrics(data.spins, pred, data.fields),
            "by_origin": by_origin(pred, data, origin, np.arange(data.n_frames)),
        }
        (run / "metrics.json").write_text(json.dumps(met, indent=2))
        bo = " / ".join(f"{v['perp_rel_rmse']:.1%}" for v in met["score_on"]["by_origin"].values())
        print(
            f"| {args.system} | {name}{args.tag} on {args.score_on} | {data.n_frames} | "
            f"{met['score_on']['perp_rel_rmse']:.2%} | {met['score_on']['perp_r2']:.4f} | {bo} |",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--system", choices=list(SYSTEMS), default="tetra")
    p.add_argument("--variants", nargs="+", default=["plain_r4"])
    p.add_argument("--L", type=int, default=0, help="training lattice size (0: the system's)")
    p.add_argument("--J", type=float, default=0.0, help="exchange coupling J (0: the system's)")
    p.add_argument("--kT-el", type=float, default=0.0, help="electronic temperature of labels")
    p.add_argument("--n-perturbed", type=int, default=300)
    p.add_argument("--llg-steps", type=int, default=300)
    p.add_argument("--n-quench", type=int, default=2)
    p.add_argument("--quench-steps", type=int, default=600)
    p.add_argument(
        "--driver",
        default="",
        help="trained run (name under --out) whose model drives the LLG frames; ED labels them",
    )
    p.add_argument("--epochs", type=int, default=80)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--energy-weight", type=float, default=0.1, help="loss weight of the energy")
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--grad-clip", type=float, default=0.0, help="gradient-norm clip (0: off)")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--dtype", default="float64")
    p.add_argument("--max-train", type=int, default=0, help="use at most this many train frames")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and the frame split")
    p.add_argument(
        "--model-seed",
        type=int,
        default=None,
        help="seed of the weights and batch order (default --seed): committee members",
    )
    p.add_argument(
        "--committee",
        nargs="+",
        default=None,
        help="score the mean field of these trained runs (names under --out) on the test frames",
    )
    p.add_argument("--tag", default="")
    p.add_argument(
        "--score-on",
        default="",
        help="score the trained --variants on the test frames of this sampled frame file",
    )
    p.add_argument(
        "--spins-kT",
        type=float,
        default=None,
        help="with --grand-canonical: relabel the cached frames sampled at this kT_el",
    )
    p.add_argument(
        "--grand-canonical", action="store_true", help="relabel at fixed mu (see docstring)"
    )
    p.add_argument(
        "--match-filling",
        action="store_true",
        help="with --grand-canonical: mu gives the target mean filling (not the median mu)",
    )
    p.add_argument(
        "--locality",
        type=float,
        nargs="+",
        default=None,
        help="measure the locality floor of the labels at these radii instead of training",
    )
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/descriptors_recipe"))
    args = p.parse_args()
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    data, origin, info = get_data(args)
    if args.grand_canonical:
        data, info = relabel_grand_canonical(data, args, info)
    print("data:", json.dumps(info), flush=True)
    if args.locality:
        floor = locality(data, origin, args, info)
        path = args.out / f"locality_{args.system}{_size_tag(args)}_kT{args.kT_el}{args.tag}.json"
        record = {"data": info, "radii": args.locality, "delta": floor}
        path.write_text(json.dumps(record, indent=2))
        return
    if args.max_train:
        tr, va, te = split_frames(data.n_frames, 0.1, 0.1, args.seed)
        keep = np.sort(np.concatenate([tr[: args.max_train], va, te]))
        data = FieldData(data.lattice, data.spins[keep], data.fields[keep], data.energy[keep])
        origin = origin[keep]
    _, _, test = split_frames(data.n_frames, 0.1, 0.1, args.seed)
    if args.committee:
        committee(args, data, origin, test, info)
        return
    if args.score_on:
        score_on(args, info)
        return
    for name in args.variants:
        desc, hidden, *extra = VARIANTS[name]
        extra = extra[0] if extra else {}
        mcfg = ModelConfig(descriptor=desc, hidden=hidden, dtype=args.dtype, **extra).to_dict()
        augment = not args.no_augment
        cfg = TrainConfig(
            model=mcfg,
            lr=args.lr,
            energy_weight=args.energy_weight,
            batch_size=args.batch_size,
            max_epochs=args.epochs,
            patience=args.epochs,
            seed=args.seed if args.model_seed is None else args.model_seed,
            split_seed=args.seed,
            threads=1,
            augment_point_group=augment,
            augment_time_reversal=augment,
            lr_schedule=args.schedule,
            grad_clip=args.grad_clip,
        )
        run = args.out / f"{args.system}_{name}{args.tag}"
        model, met = train(data, cfg, run)
        met["by_origin"] = by_origin(model.predict(data.spins[test])["fields"], data, origin, test)
        met["data"] = info
        met["variant"] = {"name": name, "descriptor": desc, "hidden": list(hidden), **extra}
        met["train_config"] = cfg.to_dict()
        met["uptime"] = os.getloadavg()
        (run / "metrics.json").write_text(json.dumps(met, indent=2))
        bo = " / ".join(f"{v['perp_rel_rmse']:.1%}" for v in met["by_origin"].values())
        print(
            f"| {args.system} | {name}{args.tag} | {met['n_features']} | {met['n_parameters']} | "
            f"{met['n_frames_train']} | {met['epochs']} | {met['train_time_s']:.0f} | "
            f"{met['perp_rel_rmse']:.2%} | {met['perp_r2']:.4f} | {bo} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
