"""The production engine: resumable LLG runs of any field provider into a zarr trajectory.

One engine serves the pipeline's ``simulate`` stage, the command line and the
benchmarks: :func:`run` integrates LLG with any field provider (a BP model of any
potential -- conservative, generalized, vector --, a committee mean, a base model plus a
nonequilibrium part, or an exact solver) and appends frames to a trajectory store.

Protocol (one seed = one independent job):

1. initial state: the given (N, 3) array, or ``RunConfig.initial``: random unit spins
   from ``default_rng([seed, 1])`` (an infinite-temperature state: the quench) or a named
   texture;
2. Langevin LLG (:class:`mllg.dynamics.LLG`, semi-implicit midpoint by default) with the
   provider's fields plus optional classical terms, at bath temperature ``kT``, damping
   ``alpha`` and step ``dt`` (time in 1/t), noise seeded by ``seed``:

   .. math::

       dS_i/dt = p S_i \\times (h_i + \\eta_i) - \\alpha S_i \\times (S_i \\times (h_i + \\eta_i)),
       \\quad \\langle \\eta \\eta \\rangle = 2 \\alpha kT / (1 + \\alpha^2)

3. a frame (spins, fields, energy, time, step) appended every ``save_every`` steps, with
   the noise-generator state, through :func:`mllg.runs.run_llg`.

Identity and resume: the run's identity (settings that define the trajectory, the
provider's identity -- model hashes or an exact solver's settings --, the initial state
and the caller's ``identity``) is hashed into the store's provenance. Rerunning the same
call after ``kill -9`` continues from the last complete frame and gives the frames of an
uninterrupted run bit for bit (same thread count); a store of another identity is
refused and left untouched. A larger ``n_steps`` extends a finished run.

Device and precision: ML providers evaluate in ``float32`` by default, on ``cpu`` or
``cuda`` (:func:`mllg.devices.select_device` resolves a GPU request); the log says which.

Bad input stops with one sentence before anything is written: dt <= 0, kT < 0, alpha < 0,
a model for another lattice kind (or potential, when asked for), a model whose recorded
physical system differs from the run's, or a store at the output path written for
another configuration.

Command line (one exported model or several, a committee mean)::

    python -m mllg.production --model results/x/model --lattice triangular --L 96 \\
        --kT 0.005 --alpha 0.5 --dt 0.05 --n-steps 20000 --save-every 200 --seed 0 \\
        --out results/x/quench_seed0.zarr --progress
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from mllg import textures
from mllg.devices import describe_device
from mllg.dynamics import LLG, METHODS, ClassicalTerms
from mllg.io import open_store, provenance
from mllg.lattice import Lattice, make_lattice
from mllg.nn.provider import PROVIDER_DTYPES
from mllg.orders import ORDERED_STATES
from mllg.providers import ml_provider, provider_identity
from mllg.runs import BlowUpError, check_store_path, run_llg
from mllg.settings import SettingError, check_settings, setting

#: Initial states: random spins (a quench) or the texture of an ordered state of
#: :data:`mllg.orders.ORDERED_STATES`.
INITIAL_STATES = ("random", *(n for n, s in ORDERED_STATES.items() if s.texture is not None))

__all__ = [
    "INITIAL_STATES",
    "BlowUpError",
    "RunConfig",
    "initial_state",
    "main",
    "run",
    "run_quench",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """Settings of one production run (declared settings, :mod:`mllg.settings`).

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
    initial : str
        Initial state when no array is given to :func:`run`: ``random`` or an ordered
        state with a texture (:data:`INITIAL_STATES`).
    method : {"midpoint", "heun"}
    precession : {-1, +1}
        Sign of the precession term (see :mod:`mllg.dynamics`).
    dtype : {"float32", "float64"}
        Precision of an ML provider built by :func:`run_quench`.
    device : str
        Torch device of an ML provider built by :func:`run_quench` (``cpu``, ``cuda``).
    compile : bool
        ``torch.compile`` the model (first step compiles).
    threads : int, optional
        Torch threads (recorded; resume with the same count for bitwise equal frames).
    norm_tol : float
        Blow-up guard on ``| |S_i| - 1 |`` of saved frames.
    """

    kT: float = setting(doc="bath temperature (t)", minimum=0, config=False)
    alpha: float = setting(doc="Gilbert damping", minimum=0, config=False)
    dt: float = setting(doc="time step (1/t)", exclusive_minimum=0, config=False)
    n_steps: int = setting(doc="total number of steps", minimum=0, config=False)
    save_every: int = setting(doc="steps between saved frames", minimum=1, config=False)
    seed: int = setting(0, "seed of the initial state and the noise", minimum=0, config=False)
    initial: str = setting("random", "initial state", choices=INITIAL_STATES, config=False)
    method: str = setting("midpoint", "integrator", choices=METHODS, config=False)
    precession: int = setting(-1, "sign of the precession term", choices=(-1, 1), config=False)
    dtype: str = setting("float32", "ML precision", choices=tuple(PROVIDER_DTYPES), config=False)
    device: str = setting("cpu", "torch device of the ML evaluation", config=False)
    compile: bool = setting(False, "torch.compile the model", config=False)
    threads: int | None = setting(None, "torch threads", minimum=1, config=False)
    norm_tol: float = setting(1e-6, "blow-up guard", exclusive_minimum=0, config=False)

    def __post_init__(self) -> None:
        check_settings(self, "run")
        if self.precession not in (-1, 1):
            raise SettingError("precession", self.precession, "use -1 or +1", "run")
        if self.kT > 0 and self.alpha == 0:
            raise SettingError("alpha", self.alpha, "a bath with kT > 0 needs alpha > 0", "run")
        if self.n_steps % self.save_every:
            raise SettingError(
                "n_steps",
                self.n_steps,
                f"it must be a multiple of save_every = {self.save_every}",
                "run",
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """Settings that define the trajectory (everything but n_steps and performance)."""
        d = self.to_dict()
        for key in ("n_steps", "device", "compile", "threads"):
            d.pop(key)
        return d


def initial_state(lattice: Lattice, name: str, seed: int) -> NDArray[np.float64]:
    """Initial spins (N, 3): ``random`` (seeded by ``[seed, 1]``) or the texture of the
    ordered state ``name`` (:data:`mllg.orders.ORDERED_STATES`)."""
    if name == "random":
        return textures.random_spins(lattice.N, np.random.default_rng([int(seed), 1]))
    if name not in INITIAL_STATES:
        raise ValueError(f"initial={name!r} is not allowed; use one of {INITIAL_STATES}.")
    return ORDERED_STATES[name].texture(lattice)


def _check_initial(initial: NDArray, lattice: Lattice) -> NDArray[np.float64]:
    initial = np.asarray(initial, dtype=float)
    if initial.shape != (lattice.N, 3):
        raise ValueError(
            f"the initial state has shape {initial.shape}; the lattice needs ({lattice.N}, 3)."
        )
    if not np.allclose(np.linalg.norm(initial, axis=-1), 1.0, atol=1e-10):
        raise ValueError("the initial state must consist of unit vectors.")
    return initial


# ----------------------------------------------------------------------------- the engine
def run(
    provider: Any,
    lattice: Lattice,
    out: str | Path,
    config: RunConfig,
    *,
    initial: NDArray | None = None,
    identity: Mapping[str, Any] | None = None,
    classical: ClassicalTerms | None = None,
    attrs: Mapping[str, Any] | None = None,
    progress: bool = False,
    initial_id: Any = None,
) -> dict[str, Any]:
    """Run (or resume) one LLG trajectory of any field provider into a zarr store.

    Parameters
    ----------
    provider : field provider
        ``spins (N, 3) -> fields (N, 3)`` in units of t on ``lattice``: an ML provider
        (:func:`mllg.providers.ml_provider`) or an exact solver. With ``solve`` the
        frames record the energy.
    lattice : Lattice
        Lattice of the run.
    out : path
        Zarr trajectory store; an existing store of the same run is resumed.
    config : RunConfig
    initial : (N, 3) array, optional
        Initial state (else ``config.initial``); part of the run identity.
    identity : mapping, optional
        What else defines the run (the physical system, the protocol); hashed into the
        provenance and written to the store attrs.
    classical : ClassicalTerms, optional
        Zeeman field and anisotropies added to the provider's field.
    attrs : mapping, optional
        Extra store attributes (not part of the identity).
    progress : bool
        tqdm progress bar on stderr.
    initial_id : optional
        What identifies a given ``initial`` state in the run identity (default: the hash
        of its bits). A protocol that computes its initial state (a relaxed wall) names
        the protocol instead, so a resume on another device or thread count is not
        refused for the last bits of a state it never uses again.

    Returns
    -------
    dict
        ``path``, ``n_frames``, ``final_time``, ``steps_run`` (this call), ``wall_s`` and
        ``spin_steps_per_s`` (this call), ``provider`` (settings).

    Raises
    ------
    ValueError
        Bad input (one sentence); nothing is written.
    BlowUpError
        Non-finite or non-unit spins; the store keeps the last good frame.
    """
    if initial is not None:
        initial = _check_initial(initial, lattice)
        init_id = (
            initial_id
            if initial_id is not None
            else hashlib.sha256(initial.tobytes()).hexdigest()[:16]
        )
    else:
        initial = initial_state(lattice, config.initial, config.seed)
        init_id = config.initial
    check_store_path(out)
    if config.threads is not None:
        torch.set_num_threads(int(config.threads))
    who = provider_identity(provider)
    ident = {
        "run": config.identity(),
        "provider": who,
        "initial": init_id,
        "classical": asdict(classical) if classical is not None else None,
        **dict(identity or {}),
    }
    settings = provider.settings() if hasattr(provider, "settings") else {}
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
        **dict(attrs or {}),
        "kT_bath": float(config.kT),
        "seed": int(config.seed),
        "run": config.to_dict() | {"n_steps": None},
        "provider": settings,
        "provider_identity": who,
        "threads": int(torch.get_num_threads()),
        "provenance": provenance(ident),
    }
    before = _n_steps_done(out)
    if before:
        stored = open_store(out).attrs
        same_run = (stored.get("provenance") or {}).get("config_hash") == store_attrs["provenance"][
            "config_hash"
        ]
        if same_run and (
            stored.get("threads") not in (None, store_attrs["threads"])
            or stored.get("provider") not in (None, store_attrs["provider"])
        ):
            warnings.warn(
                f"resuming {out} with threads/provider {store_attrs['threads']}/"
                f"{store_attrs['provider']} instead of {stored.get('threads')}/"
                f"{stored.get('provider')}: the continuation is statistically equivalent but "
                "not bitwise equal to an uninterrupted run.",
                stacklevel=2,
            )
    device = settings.get("device") or _first_device(settings) or "cpu"
    log.info(
        "LLG run %s: %d sites, steps %d -> %d, provider %s on %s",
        out,
        lattice.N,
        before,
        int(config.n_steps),
        who.get("kind"),
        describe_device(device),
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
    result = {
        "path": str(out),
        "n_frames": int(ds.sizes["frame"]),
        "final_time": float(ds["time"].values[-1]),
        "steps_run": steps,
        "wall_s": wall,
        "spin_steps_per_s": steps * lattice.N / wall if steps > 0 and wall > 0 else None,
        "provider": settings,
    }
    log.info("LLG run %s done: %s", out, result)
    return result


def _first_device(settings: Mapping[str, Any]) -> str | None:
    """Device of the first ML part of a combined provider's settings."""
    for part in settings.get("parts", []):
        found = part.get("device") or _first_device(part)
        if found:
            return found
    return None


def _n_steps_done(path: str | Path) -> int:
    try:
        ds = open_store(path)
        return int(ds["step"].values[-1]) if ds.sizes.get("frame", 0) else 0
    except (FileNotFoundError, KeyError, ValueError, OSError):
        return 0


def _check_system(model_dirs: Sequence[Path], system: Mapping[str, Any] | None) -> None:
    """Compare the physical system recorded with exported models with the run's."""
    if not system:
        return
    for model_dir in model_dirs:
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
                        f"the model in {model_dir} was trained for {key}={a!r}; the run asks "
                        f"for {key}={b!r}."
                    )


def run_quench(
    model: Any,
    lattice: Lattice,
    out: str | Path,
    config: RunConfig,
    initial: NDArray | None = None,
    system: Mapping[str, Any] | None = None,
    classical: ClassicalTerms | None = None,
    attrs: Mapping[str, Any] | None = None,
    progress: bool = False,
    potential: str | None = None,
) -> dict[str, Any]:
    """:func:`run` with the fields of exported BP models (the command line's route).

    Parameters
    ----------
    model : BPModel, path of an exported model (:func:`mllg.nn.save_model`), or a list
        Trained on any lattice of the same kind (rebuilt for ``lattice``); several models
        run their committee mean. Any potential (conservative, generalized, vector).
    lattice, out, config, initial, classical, attrs, progress :
        As in :func:`run`; ``config.dtype``, ``device``, ``threads`` and ``compile`` set
        the ML evaluation.
    system : mapping, optional
        Physical parameters (``t1``, ``t2``, ``t3``, ``J``, ``filling`` or ``mu``, ...)
        written to the store attrs, part of the identity, and compared with those
        recorded with exported models.
    potential : str, optional
        Refuse models of another potential.

    Returns
    -------
    dict
        As :func:`run`.
    """
    from mllg.providers import load_models, model_for_lattice

    models = list(model) if isinstance(model, list | tuple) else [model]
    loaded = load_models(models, lattice)  # raises on another lattice kind
    for m in loaded:
        model_for_lattice(m, lattice, potential)
    _check_system([Path(m) for m in models if isinstance(m, str | Path)], system)
    provider = ml_provider(
        loaded,
        lattice,
        dtype=config.dtype,
        device=config.device,
        threads=config.threads,
        compile=config.compile,
    )
    return run(
        provider,
        lattice,
        out,
        config,
        initial=initial,
        identity={"protocol": "quench", "system": dict(system or {})},
        classical=classical,
        attrs={
            **dict(system or {}),
            **dict(attrs or {}),
            "kT": float(config.kT),
            "solver": "ml",
            "protocol": "quench",
        },
        progress=progress,
    )


# ----------------------------------------------------------------------------- CLI
class UsageError(Exception):
    """An expected error of the command line: one line on stderr, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m mllg.production", description="ML-LLG production run (resumable).")
    p.add_argument("--model", required=True, nargs="+", help="exported model folder(s)")
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
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--system", default=None, help="JSON object of the physical parameters")
    p.add_argument("--out", required=True, help="zarr trajectory store (resumed if it exists)")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return p


def _inputs(a: argparse.Namespace) -> tuple[RunConfig, Lattice, dict | None, list[Path]]:
    """Check every option before anything is written; UsageError names the option."""
    try:
        cfg = RunConfig(
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
    except SettingError as err:
        option = "--" + err.name.replace("_", "-")  # the option of each RunConfig field
        raise UsageError(f"{option} {err.value!r}: {err.allowed}.") from None
    if a.device != "cpu" and not (a.device == "cuda" or a.device.startswith("cuda:")):
        raise UsageError(f"--device {a.device!r}: use cpu, cuda or cuda:N.")
    if a.device != "cpu" and not torch.cuda.is_available():
        raise UsageError(f"--device {a.device}: torch sees no CUDA device here; use --device cpu.")
    if a.initial != "random":
        state = ORDERED_STATES[a.initial]
        if state.lattice != a.lattice or a.L % state.period:
            raise UsageError(
                f"--initial {a.initial}: the state needs a {state.lattice} lattice with L a "
                f"multiple of {state.period} (got --lattice {a.lattice} --L {a.L})."
            )
    if a.L < 2:
        raise UsageError(f"--L {a.L}: the linear size must be an integer >= 2.")
    system = None
    if a.system is not None:
        try:
            system = json.loads(a.system)
        except json.JSONDecodeError as err:
            msg = f"--system is not valid JSON ({err.msg} at character {err.pos})."
            raise UsageError(msg) from None
        if not isinstance(system, dict):
            raise UsageError("--system must be a JSON object such as '{\"J\": 2.0}'.")
        for key, value in system.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if value is not None and not (number and np.isfinite(value)):
                raise UsageError(f"--system: {key} = {value!r} is not a finite number or null.")
    models = [Path(m) for m in a.model]
    for m in models:
        if not m.is_dir():
            raise UsageError(f"--model {m}: no such model folder.")
    return cfg, make_lattice(a.lattice, a.L), system, models


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: ``python -m mllg.production --help``.

    Every expected error (a bad option, a model or store that cannot be used, a blow-up)
    is one line on stderr naming the option or file, with exit code 2; nothing is
    written before the inputs are checked. ``--debug`` shows the traceback instead.
    """
    import sys

    from mllg.devices import DeviceError

    debug = "--debug" in (sys.argv[1:] if argv is None else argv)
    try:
        a = _parser().parse_args(argv)
        cfg, lattice, system, models = _inputs(a)
        try:
            out = run_quench(models, lattice, a.out, cfg, system=system, progress=a.progress)
        except (ValueError, OSError, DeviceError, BlowUpError) as err:
            # the messages name the model folder, the store or the option at fault
            raise UsageError(str(err)) from err
    except UsageError as err:
        if debug:
            raise
        print(f"python -m mllg.production: error: {err}".replace("\n", " "), file=sys.stderr)
        return 2
    print(json.dumps(out))
    return 0


if __name__ == "__main__":  # pragma: no cover - CLI
    raise SystemExit(main())
