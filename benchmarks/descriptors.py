"""Benchmark: BP models with bispectrum vs plain descriptors on triangular-lattice ED data.

System: triangular s-d model, t = 1, J = 2, canonical quarter filling f = 1/4, kT = 0
(tetrahedral regime), L x L periodic lattice (default 12 x 12), ED fields. With
``--texture 120 --filling 0.5 --J 6`` the same protocol samples around the 120-degree
state (its regime at half filling).

Data (cached as a zarr store of the data contract under ``--out``):
* perturbed ordered states, ``S = normalize(S_0 + sigma xi)`` with ``xi`` standard
  normal and ``sigma`` uniform in [0.05, 0.6];
* stochastic LLG (Langevin) trajectories driven by the ED fields themselves
  (``mllg.dynamics.LLG``, alpha = 0.5, dt = 0.1) at several bath temperatures, started
  from the tetrahedral state, sampled every ``--every`` steps after a short burn-in.

Then the same network (``--hidden``) is trained on the same frame split with the
bispectrum and with the plain (unsymmetrized) descriptor; a committee of bispectrum
models with other seeds gives per-site uncertainties on held-out, 120-degree and random
states. Prints a Markdown table and writes ``results.json``.

Run (2 threads; timings on a shared machine are noisy)::

    .venv/bin/python benchmarks/descriptors.py --L 12 --out results/benchmarks/descriptors
"""

from __future__ import annotations

import os

# One BLAS thread: with several processes on few cores, threaded eigh is ~100x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from mllg.descriptors import DescriptorConfig
from mllg.dynamics import LLG
from mllg.electrons.base import Ensemble
from mllg.electrons.ed import ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.io import make_dataset, write_dataset
from mllg.lattice import make_lattice
from mllg.nn import BPModel, Committee, ModelConfig, TrainConfig, load_field_data, train
from mllg.textures import normalize, random_spins, tetrahedral, three_sublattice_120


def generate(lat, args, path: Path) -> float:
    """ED data set; returns the ED wall time in seconds."""
    ed = ExactDiagonalization(SdHamiltonian(lat, J=args.J), Ensemble.canonical(args.filling))
    rng = np.random.default_rng(args.seed)
    base = tetrahedral(lat) if args.texture == "tetrahedral" else three_sublattice_120(lat)
    frames = [
        normalize(base + rng.uniform(0.05, 0.6) * rng.normal(size=base.shape))
        for _ in range(args.n_perturbed)
    ]
    t0 = time.perf_counter()
    for k, kT in enumerate(args.kTs):
        llg = LLG(ed, alpha=0.5, dt=0.1, kT=kT, seed=args.seed + k)
        for n, fr in enumerate(
            llg.run(base.copy(), args.llg_steps, every=args.every, energy=False)
        ):
            if n >= 2:  # burn-in
                frames.append(fr.spins.copy())
    spins = np.stack(frames)
    fields, energy = [], []
    for s in spins:  # frame by frame: faster than ED's batched path for 2N = 288
        r = ed.solve(s)
        fields.append(r.fields)
        energy.append(r.energy[0])
    t_ed = time.perf_counter() - t0
    ds = make_dataset(
        lat,
        {
            "J": args.J,
            "t1": 1.0,
            "t2": 0.0,
            "t3": 0.0,
            "kT": 0.0,
            "filling": args.filling,
            "solver": "ed",
            "sampling": f"{args.n_perturbed} perturbed {args.texture} + LLG kT={args.kTs}",
        },
        spins=spins,
        fields=np.stack(fields),
        energy=np.array(energy),
    )
    write_dataset(path, ds)
    return t_ed


def locality(data, args, radii=(2, 3, 4, 5), n_samples: int = 8) -> dict:
    """Locality floor: change of the ED field at a site when the spins farther than r are
    replaced by those of another frame, ``sqrt(<|dh_perp|^2>) / rms(h_perp)``.

    A model with cutoff r cannot resolve what lies outside, so this (up to a factor of
    about sqrt(2) for independent outsides) bounds the error any r-local model can reach.
    """
    lat = data.lattice
    ed = ExactDiagonalization(SdHamiltonian(lat, J=args.J), Ensemble.canonical(args.filling))
    rng = np.random.default_rng(args.seed)
    hp = data.fields - (data.fields * data.spins).sum(-1, keepdims=True) * data.spins
    scale = np.sqrt((hp**2).sum(-1).mean())
    out = {}
    for r in radii:
        errs = []
        for _ in range(n_samples):
            a, b = rng.choice(data.n_frames, 2, replace=False)
            c = rng.integers(lat.N)
            d = lat.coords - lat.coords[c]
            d = (d + np.array([lat.Lx, lat.Ly]) // 2) % np.array([lat.Lx, lat.Ly]) - np.array(
                [lat.Lx, lat.Ly]
            ) // 2
            far = np.linalg.norm(d @ lat.primitive, axis=1) > r + 1e-9
            s = data.spins[a].copy()
            s[far] = data.spins[b][far]
            dh = ed.solve(s).fields[c] - data.fields[a][c]
            errs.append(np.sum((dh - np.dot(dh, s[c]) * s[c]) ** 2))
        out[str(r)] = float(np.sqrt(np.mean(errs)) / scale)
    return out


def timing(model: BPModel, lat_size: int, repeat: int = 3) -> float:
    """Seconds per frame for energy + autograd fields on an L x L lattice (float64)."""
    from mllg.nn import load_model, save_model

    tmp = Path("/tmp/_mllg_bench_model")
    save_model(model, tmp)
    m = load_model(tmp, make_lattice("triangular", lat_size, lat_size))
    s = random_spins(lat_size**2, 0)
    m.predict(s)
    t0 = time.perf_counter()
    for _ in range(repeat):
        m.predict(s)
    return (time.perf_counter() - t0) / repeat


def report_only(data, args) -> dict:
    """Reload the exported models in ``--out``: test metrics by data origin and timings.

    Timings: seconds per frame (energy + fields, one thread) for ML models and ED on
    L x L lattices, measured one after the other in this process.
    """
    from mllg.nn import evaluate, load_model
    from mllg.nn.training import split_frames

    torch.set_num_threads(1)
    _, _, test = split_frames(data.n_frames, 0.1, 0.1, args.seed)
    origin = {
        "perturbed": test[test < args.n_perturbed],
        "llg": test[test >= args.n_perturbed],
    }
    out: dict = {"by_origin": {}, "timing_s_per_frame": {}}
    for kind in args.kinds:
        model = load_model(args.out / f"{kind}_seed{args.seed}" / "model")
        for name, idx in origin.items():
            if len(idx):
                m = evaluate(model, data.spins[idx], data.fields[idx])
                out["by_origin"][f"{kind}/{name}"] = {
                    "frames": int(len(idx)),
                    "perp_rel_rmse": m["perp_rel_rmse"],
                    "perp_r2": m["perp_r2"],
                }
        for size in (12, 24):
            out["timing_s_per_frame"][f"{kind} {size}x{size}"] = timing(model, size)
    for size in (12, 24):
        lat = make_lattice("triangular", size, size)
        ed = ExactDiagonalization(SdHamiltonian(lat, J=args.J), Ensemble.canonical(args.filling))
        s = random_spins(lat.N, 0)
        t0 = time.perf_counter()
        ed.solve(s)
        out["timing_s_per_frame"][f"ed {size}x{size}"] = time.perf_counter() - t0
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--L", type=int, default=12)
    p.add_argument("--J", type=float, default=2.0)
    p.add_argument("--filling", type=float, default=0.25)
    p.add_argument("--texture", choices=["tetrahedral", "120"], default="tetrahedral")
    p.add_argument("--n-perturbed", type=int, default=120)
    p.add_argument("--kTs", type=float, nargs="+", default=[0.02, 0.05, 0.1])
    p.add_argument("--llg-steps", type=int, default=200)
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--r-cut", type=float, default=5.0)
    p.add_argument("--inner-r-cut", type=float, default=2.0)
    p.add_argument("--no-triples", action="store_true", help="bispectrum without degree-3 terms")
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--committee", type=int, default=2, help="extra seeds for the committee")
    p.add_argument("--kinds", nargs="+", default=["bispectrum", "plain"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--locality", action="store_true", help="run the locality-floor check")
    p.add_argument("--report-only", action="store_true", help="no training: reload models, report")
    p.add_argument("--out", type=Path, default=Path("results/benchmarks/descriptors"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    lat = make_lattice("triangular", args.L, args.L)
    store = args.out / f"ed_tri{args.L}_J{args.J}_f{args.filling}_{args.texture}.zarr"
    results: dict = {"args": {k: str(v) for k, v in vars(args).items()}}
    if not store.exists():
        results["ed_time_s"] = generate(lat, args, store)
    data = load_field_data(store)
    results["n_frames"] = data.n_frames
    print(f"data: {data.n_frames} frames of {lat.N} sites ({store})")
    if args.locality:
        results["locality_floor"] = locality(data, args)
        print("locality floor (rel. change of h_perp vs radius):", results["locality_floor"])
    if args.report_only:
        rep = report_only(data, args)
        print(json.dumps(rep, indent=2))
        (args.out / "report.json").write_text(json.dumps({**results, **rep}, indent=2))
        return
    rows = []
    models = {}
    for kind in args.kinds:
        desc = DescriptorConfig(
            kind=kind, r_cut=args.r_cut, inner_r_cut=args.inner_r_cut, triples=not args.no_triples
        ).to_dict()
        mcfg = ModelConfig(descriptor=desc, hidden=tuple(args.hidden)).to_dict()
        cfg = TrainConfig(
            model=mcfg,
            max_epochs=args.epochs,
            patience=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            threads=args.threads,
        )
        model, met = train(data, cfg, args.out / f"{kind}_seed{args.seed}")
        models[kind] = model
        met["s_per_frame_12x12"] = timing(model, 12)
        met["s_per_frame_48x48"] = timing(model, 48, repeat=1)
        rows.append((kind, met))
        print(kind, json.dumps(met))
    results["runs"] = {k: m for k, m in rows}
    if args.committee and "bispectrum" in models:
        members = [models["bispectrum"]]
        for extra in range(1, args.committee + 1):
            desc = DescriptorConfig(
                kind="bispectrum",
                r_cut=args.r_cut,
                inner_r_cut=args.inner_r_cut,
                triples=not args.no_triples,
            ).to_dict()
            cfg = TrainConfig(
                model=ModelConfig(descriptor=desc, hidden=tuple(args.hidden)).to_dict(),
                max_epochs=args.epochs,
                patience=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                seed=args.seed + extra,
                threads=args.threads,
            )
            m, met = train(data, cfg, args.out / f"bispectrum_seed{args.seed + extra}")
            results["runs"][f"bispectrum_seed{args.seed + extra}"] = met
            members.append(m)
        com = Committee(members)
        from mllg.nn.training import split_frames

        _, _, test = split_frames(data.n_frames, 0.1, 0.1, args.seed)
        sets = {
            "held-out test frames": data.spins[test],
            "120 deg state + noise 0.2": np.stack(
                [
                    normalize(
                        three_sublattice_120(lat)
                        + 0.2 * np.random.default_rng(k).normal(size=(lat.N, 3))
                    )
                    for k in range(5)
                ]
            ),
            "random spins": np.stack([random_spins(lat.N, k) for k in range(5)]),
        }
        results["committee_sigma"] = {
            name: float(com.predict(s)["sigma"].mean()) for name, s in sets.items()
        }
        print("committee mean sigma (t):", results["committee_sigma"])
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    print(
        "\n| descriptor | features | params | train frames | epochs | train time (s) "
        "| perp rel-RMSE | R^2 x/y/z | ML s/frame 12x12 | 48x48 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for kind, m in rows:
        print(
            f"| {kind} | {m['n_features']} | {m['n_parameters']} | {m['n_frames_train']} | "
            f"{m['epochs']} | {m['train_time_s']:.0f} | {m['perp_rel_rmse']:.2%} | "
            f"{m['perp_r2_x']:.4f}/{m['perp_r2_y']:.4f}/{m['perp_r2_z']:.4f} | "
            f"{m['s_per_frame_12x12']:.3f} | {m['s_per_frame_48x48']:.3f} |"
        )


if __name__ == "__main__":
    main()
