"""ML-LLG production runs: the thermal-quench protocol on large lattices, resumable.

Protocol (one seed = one independent job):

1. initial state: random unit spins drawn from ``default_rng([seed, 1])`` (an infinite-
   temperature state: the quench), a named texture, or a given (N, 3) array;
2. Langevin LLG (:class:`mllg.dynamics.LLG`, semi-implicit midpoint by default) with the
   fields of a BP model (:class:`mllg.nn.provider.MLFieldProvider`, float32 by default)
   at bath temperature ``kT``, damping ``alpha`` and step ``dt`` (time in 1/t), noise
   seeded by ``seed``:

   .. math::

       dS_i/dt = p S_i \\times (h_i + \\eta_i) - \\alpha S_i \\times (S_i \\times (h_i + \\eta_i)),
       \\quad \\langle \\eta \\eta \\rangle = 2 \\alpha kT / (1 + \\alpha^2)

3. a frame (spins, fields, energy, time, step) appended to a zarr trajectory every
   ``save_every`` steps, with the noise-generator state, through :func:`mllg.runs.run_llg`.

Rerunning the same command after ``kill -9`` continues from the last complete frame and
gives the frames of an uninterrupted run bit for bit (same seed, same thread count).
A larger ``n_steps`` extends a finished run (``n_steps`` is not part of the run identity).

Bad input stops with one sentence before anything is written: dt <= 0, kT < 0, alpha < 0,
a model for another lattice kind or potential, a model whose recorded physical system
differs from the run's, or a store at the output path written for another configuration.

Command line::

    python -m mllg.production --model results/x/model --lattice triangular --L 96 \\
        --kT 0.005 --alpha 0.5 --dt 0.05 --n-steps 20000 --save-every 200 --seed 0 \\
        --out results/x/quench_seed0.zarr --progress
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from mllg import textures
from mllg.dynamics import LLG, METHODS, ClassicalTerms
from mllg.io import open_store, provenance
from mllg.lattice import Lattice, make_lattice
from mllg.nn.model import BPModel, load_model
from mllg.nn.provider import PROVIDER_DTYPES, MLFieldProvider
from mllg.runs import BlowUpError, check_store_path, run_llg

INITIAL_STATES = ("random", "ferromagnet", "tetrahedral", "120", "neel")

__all__ = [
    "BlowUpError",
    "QuenchConfig",
    "initial_state",
    "model_for_lattice",
    "model_hash",
    "run_quench",
]


@dataclass(frozen=True)
class QuenchConfig:
    """Settings of a thermal quench.

    Parameters
    ----------
    kT : float
        Bath temperature (units of t), ``>= 0``.
    alpha : float
        Gilbert damping, ``>= 0`` (``> 0`` when ``kT > 0``).
    dt : float
        Time step (units of 1/t), ``> 0``.
    n_steps : int
        Total number of steps (a multiple of ``save_every``).
    save_every : int
        Steps between saved frames.
    seed : int
        Seed of the initial state (``random``) and of the noise.
    initial : {"random", "ferromagnet", "tetrahedral", "120", "neel"}
        Initial state when no array is given to :func:`run_quench`.
    method : {"midpoint", "heun"}
    precession : {-1, +1}
        Sign of the precession term (see :mod:`mllg.dynamics`).
    potential : {"conservative", "generalized"}
        Kind of model the run asks for.
    dtype : {"float32", "float64"}
        Precision of the ML evaluation.
    device : str
        Torch device of the ML evaluation (``cpu``, ``cuda``).
    compile : bool
        ``torch.compile`` the model (first step compiles).
    threads : int, optional
        Torch threads (recorded; resume with the same count for bitwise equal frames).
    norm_tol : float
        Blow-up guard on ``| |S_i| - 1 |`` of saved frames.
    """

    kT: float
    alpha: float
    dt: float
    n_steps: int
    save_every: int
    seed: int = 0
    initial: str = "random"
    method: str = "midpoint"
    precession: int = -1
    potential: str = "conservative"
    dtype: str = "float32"
    device: str = "cpu"
    compile: bool = False
    threads: int | None = None
    norm_tol: float = 1e-6

    def __post_init__(self) -> None:
        def bad(key: str, value: Any, allowed: str) -> ValueError:
            return ValueError(f"quench {key}={value!r} is not allowed; {allowed}.")

        if not (np.isfinite(self.dt) and self.dt > 0):
            raise bad("dt", self.dt, "it must be a finite number > 0")
        if not (np.isfinite(self.kT) and self.kT >= 0):
            raise bad("kT", self.kT, "it must be a finite number >= 0")
        if not (np.isfinite(self.alpha) and self.alpha >= 0):
            raise bad("alpha", self.alpha, "it must be a finite number >= 0")
        if self.kT > 0 and self.alpha == 0:
            raise bad("alpha", self.alpha, "a bath with kT > 0 needs alpha > 0")
        if int(self.save_every) < 1:
            raise bad("save_every", self.save_every, "it must be an integer >= 1")
        if int(self.n_steps) < 0 or int(self.n_steps) % int(self.save_every):
            raise bad("n_steps", self.n_steps, "it must be a multiple of save_every >= 0")
        if self.initial not in INITIAL_STATES:
            raise bad("initial", self.initial, f"use one of {INITIAL_STATES}")
        if self.method not in METHODS:
            raise bad("method", self.method, f"use one of {METHODS}")
        if self.precession not in (-1, 1):
            raise bad("precession", self.precession, "use -1 or +1")
        if self.potential not in ("conservative", "generalized"):
            raise bad("potential", self.potential, "use 'conservative' or 'generalized'")
        if self.dtype not in PROVIDER_DTYPES:
            raise bad("dtype", self.dtype, f"use one of {tuple(PROVIDER_DTYPES)}")
        if self.threads is not None and int(self.threads) < 1:
            raise bad("threads", self.threads, "it must be an integer >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """Settings that define the trajectory (everything but n_steps and performance)."""
        d = self.to_dict()
        for key in ("n_steps", "device", "compile", "threads"):
            d.pop(key)
        return d


# ----------------------------------------------------------------------------- helpers
def model_hash(model: BPModel) -> str:
    """SHA-256 (16 hex digits) of a model's architecture and weights."""
    h = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    for key, value in sorted(model.state_dict().items()):
        h.update(key.encode())
        h.update(value.detach().cpu().double().numpy().tobytes())
    return h.hexdigest()[:16]


def model_for_lattice(model: BPModel, lattice: Lattice, potential: str | None = None) -> BPModel:
    """The same model rebuilt for ``lattice`` (descriptors are local: any size works).

    Raises ValueError (one sentence) if the model was made for another lattice kind or,
    when ``potential`` is given, for another kind of potential.
    """
    own = model.lattice
    if own.kind != lattice.kind:
        raise ValueError(
            f"the model was trained on a {own.kind!r} lattice; the run asks for a "
            f"{lattice.kind!r} lattice."
        )
    if potential is not None and model.config.potential != potential:
        raise ValueError(
            f"the model is a {model.config.potential!r} potential; the run asks for a "
            f"{potential!r} one."
        )
    same = (own.Lx, own.Ly, own.periodic_y) == (lattice.Lx, lattice.Ly, lattice.periodic_y)
    if same:
        return model
    new = BPModel(lattice, model.config)
    new.load_state_dict(model.state_dict())
    return new.eval()


def initial_state(lattice: Lattice, name: str, seed: int) -> NDArray[np.float64]:
    """Initial spins (N, 3): ``random`` (seeded by ``[seed, 1]``) or a named texture."""
    if name == "random":
        return textures.random_spins(lattice.N, np.random.default_rng([int(seed), 1]))
    if name == "ferromagnet":
        return textures.ferromagnet(lattice)
    if name == "tetrahedral":
        return textures.tetrahedral(lattice)
    if name == "120":
        return textures.three_sublattice_120(lattice)
    if name == "neel":
        return textures.neel(lattice)
    raise ValueError(f"initial={name!r} is not allowed; use one of {INITIAL_STATES}.")


def _check_system(model_dir: Path | None, system: Mapping[str, Any] | None) -> None:
    """Compare the physical system recorded with an exported model with the run's."""
    if model_dir is None or not system:
        return
    meta = json.loads((model_dir / "config.json").read_text())
    extra = meta.get("extra", {}) or {}
    recorded = extra.get("system") or {}
    if isinstance(recorded, Mapping) and isinstance(recorded.get("model"), Mapping):
        recorded = recorded["model"]
    for key in ("t1", "t2", "t3", "J", "filling", "mu"):
        if key in recorded and key in system and recorded[key] is not None:
            a, b = recorded[key], system[key]
            if b is None or not np.isclose(float(a), float(b)):
                raise ValueError(
                    f"the model in {model_dir} was trained for {key}={a!r}; the run asks for "
                    f"{key}={b!r}."
                )


# ----------------------------------------------------------------------------- protocol
def run_quench(
    model: BPModel | str | Path,
    lattice: Lattice,
    out: str | Path,
    config: QuenchConfig,
    initial: NDArray | None = None,
    system: Mapping[str, Any] | None = None,
    classical: ClassicalTerms | None = None,
    attrs: Mapping[str, Any] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Run (or resume) one thermal quench with ML fields into a zarr trajectory.

    Parameters
    ----------
    model : BPModel or path of an exported model (:func:`mllg.nn.save_model`)
        Trained on any lattice of the same kind (rebuilt for ``lattice``).
    lattice : Lattice
        Lattice of the run (e.g. 256 x 256).
    out : path
        Zarr trajectory store; an existing store of the same run is resumed.
    config : QuenchConfig
    initial : (N, 3) array, optional
        Given initial state (else ``config.initial``); part of the run identity.
    system : mapping, optional
        Physical parameters written to the store attrs (``t1``, ``t2``, ``t3``, ``J``,
        ``filling`` or ``mu``, ...); compared with those recorded with an exported model.
    classical : ClassicalTerms, optional
        Zeeman field and anisotropies added to the ML field.
    attrs : mapping, optional
        Extra store attributes (not part of the identity unless in ``system``).
    progress : bool
        tqdm progress bar on stderr.

    Returns
    -------
    dict
        ``n_frames``, ``final_time``, ``steps_run`` (this call), ``wall_s`` and
        ``spin_steps_per_s`` (this call), ``path``.

    Raises
    ------
    ValueError
        Bad input (one sentence); nothing is written.
    BlowUpError
        Non-finite or non-unit spins; the store keeps the last good frame.
    """
    model_dir = None
    if isinstance(model, (str, Path)):
        model_dir = Path(model)
        model = load_model(model_dir, lattice)  # raises on another lattice kind
    model = model_for_lattice(model, lattice, config.potential)
    _check_system(model_dir, system)
    if initial is not None:
        initial = np.asarray(initial, dtype=float)
        if initial.shape != (lattice.N, 3):
            raise ValueError(
                f"the initial state has shape {initial.shape}; the lattice needs ({lattice.N}, 3)."
            )
        if not np.allclose(np.linalg.norm(initial, axis=-1), 1.0, atol=1e-10):
            raise ValueError("the initial state must consist of unit vectors.")
        init_id = hashlib.sha256(initial.tobytes()).hexdigest()[:16]
    else:
        initial = initial_state(lattice, config.initial, config.seed)
        init_id = config.initial
    check_store_path(out)
    mhash = model_hash(model)
    identity = {
        "protocol": "quench",
        "quench": config.identity(),
        "model": mhash,
        "initial": init_id,
        "system": dict(system or {}),
        "classical": asdict(classical) if classical is not None else None,
    }
    provider = MLFieldProvider(
        model,
        dtype=config.dtype,
        device=config.device,
        compile=config.compile,
        threads=config.threads,
    )
    llg = LLG(
        provider,
        alpha=config.alpha,
        dt=config.dt,
        kT=config.kT,
        method=config.method,
        classical=classical,
        seed=int(config.seed),
        precession=config.precession,
    )
    store_attrs = {
        **dict(system or {}),
        **dict(attrs or {}),
        "kT": float(config.kT),
        "kT_bath": float(config.kT),
        "solver": "ml",
        "protocol": "quench",
        "seed": int(config.seed),
        "quench": config.to_dict() | {"n_steps": None},
        "provider": provider.settings(),
        "model_hash": mhash,
        "threads": int(torch.get_num_threads()),
        "provenance": provenance(identity),
    }
    before = _n_steps_done(out)
    if before:
        stored = open_store(out).attrs
        if stored.get("threads") not in (None, store_attrs["threads"]) or stored.get(
            "provider"
        ) not in (None, store_attrs["provider"]):
            warnings.warn(
                f"resuming {out} with threads/provider {store_attrs['threads']}/"
                f"{store_attrs['provider']} instead of {stored.get('threads')}/"
                f"{stored.get('provider')}: the continuation is statistically equivalent but "
                "not bitwise equal to an uninterrupted run.",
                stacklevel=2,
            )
    t0 = time.perf_counter()
    run_llg(
        llg,
        lattice,
        initial,
        out,
        int(config.n_steps),
        int(config.save_every),
        store_attrs,
        progress=progress,
        norm_tol=config.norm_tol,
    )
    wall = time.perf_counter() - t0
    ds = open_store(out)
    steps = int(config.n_steps) - before
    return {
        "path": str(out),
        "n_frames": int(ds.sizes["frame"]),
        "final_time": float(ds["time"].values[-1]),
        "steps_run": steps,
        "wall_s": wall,
        "spin_steps_per_s": steps * lattice.N / wall if steps > 0 and wall > 0 else None,
    }


def _n_steps_done(path: str | Path) -> int:
    try:
        ds = open_store(path)
        return int(ds["step"].values[-1]) if ds.sizes.get("frame", 0) else 0
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return 0


# ----------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m mllg.production --help``."""
    p = argparse.ArgumentParser(description="ML-LLG thermal quench (resumable).")
    p.add_argument("--model", required=True, help="exported model directory")
    p.add_argument("--lattice", required=True, choices=("square", "triangular"))
    p.add_argument("--L", type=int, required=True, help="linear size (L x L)")
    p.add_argument("--kT", type=float, required=True)
    p.add_argument("--alpha", type=float, required=True)
    p.add_argument("--dt", type=float, required=True)
    p.add_argument("--n-steps", type=int, required=True)
    p.add_argument("--save-every", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--initial", default="random", choices=INITIAL_STATES)
    p.add_argument("--precession", type=int, default=-1, choices=(-1, 1))
    p.add_argument("--dtype", default="float32", choices=tuple(PROVIDER_DTYPES))
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--system", default=None, help="JSON of the physical parameters")
    p.add_argument("--out", required=True)
    p.add_argument("--progress", action="store_true")
    a = p.parse_args(argv)
    cfg = QuenchConfig(
        kT=a.kT,
        alpha=a.alpha,
        dt=a.dt,
        n_steps=a.n_steps,
        save_every=a.save_every,
        seed=a.seed,
        initial=a.initial,
        precession=a.precession,
        dtype=a.dtype,
        device=a.device,
        compile=a.compile,
        threads=a.threads,
    )
    system = json.loads(a.system) if a.system else None
    out = run_quench(
        a.model, make_lattice(a.lattice, a.L), a.out, cfg, system=system, progress=a.progress
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":  # pragma: no cover - CLI
    raise SystemExit(main())
