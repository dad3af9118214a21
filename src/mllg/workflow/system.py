"""One system of the workflow: its validated config section and what the stages build.

A :class:`System` wraps one ``systems.<name>`` section of the validated configuration
(``workflow/schemas/config.schema.yaml``) and gives the stages their lattices, exact
solvers, ML providers, integrator settings and data-contract attributes. The difference
between equilibrium and driven systems is decided here, once: :meth:`System.of` picks
the class registered for ``kind`` (:class:`mllg.workflow.equilibrium.EquilibriumSystem`
or :class:`mllg.workflow.driven.DrivenSystem`), and each class implements the
protocol steps that differ (sampling, reference states, initial state, observables,
figures, headline numbers). The stage modules call those methods and never test the
kind themselves.

Units: hopping t1 = 1 sets the energy, hbar = gamma = 1 (time in 1/t).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from mllg.dynamics import LLG, ClassicalTerms
from mllg.electrons import Ensemble
from mllg.hamiltonian import SdHamiltonian
from mllg.io import provenance
from mllg.lattice import Lattice, make_lattice
from mllg.orders import OrderedState, ordered_state

__all__ = ["System", "build_model", "resolve_label_mu", "write_json"]


def build_model(cfg: Mapping[str, Any]) -> tuple[Lattice, SdHamiltonian, Any]:
    """Lattice, Hamiltonian and ensemble from the keys lattice, L, t1..t3, J, filling|mu, kT.

    Parameters
    ----------
    cfg : mapping
        ``lattice`` (square | triangular), ``L``, hoppings ``t1``, ``t2``, ``t3`` (units
        of t), exchange ``J``, and ``filling`` (canonical, N_e / 2N) or ``mu`` (grand
        canonical), electronic ``kT``.

    Returns
    -------
    lattice, hamiltonian, ensemble
    """
    lat = make_lattice(cfg["lattice"], int(cfg["L"]))
    ham = SdHamiltonian(lat, cfg.get("t1", 1.0), cfg.get("t2", 0.0), cfg.get("t3", 0.0), cfg["J"])
    if cfg.get("mu") is not None:
        ens = Ensemble.grand_canonical(cfg["mu"], cfg.get("kT", 0.0))
    else:
        ens = Ensemble.canonical(cfg["filling"], cfg.get("kT", 0.0))
    return lat, ham, ens


def write_json(path: str | Path, data: Mapping[str, Any]) -> None:
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


def resolve_label_mu(section: Mapping[str, Any], files: Sequence[str | Path]) -> dict[str, Any]:
    """The section with ``sample.label_mu = "auto"`` replaced by the chemical potential
    of the ``chemical_potential`` stage (``files``: its JSON output, ``{"mu": ...}``);
    any other section is returned unchanged (as a dict)."""
    section = dict(section)
    if section.get("sample", {}).get("label_mu") != "auto":
        return section
    if not files:
        raise ValueError(
            "sample.label_mu = 'auto' needs the output of the chemical_potential stage."
        )
    mu = float(json.loads(Path(files[0]).read_text())["mu"])
    section["sample"] = {**section["sample"], "label_mu": mu, "label_mu_auto": True}
    return section


class System:
    """A system of the workflow (base class; :meth:`of` returns the class of its kind).

    Parameters
    ----------
    section : mapping
        The validated ``systems.<name>`` section (or the part of it a rule passes:
        ``kind`` and the stage sections it needs).
    """

    kind: ClassVar[str] = ""
    _kinds: ClassVar[dict[str, type[System]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            System._kinds[cls.kind] = cls

    def __init__(self, section: Mapping[str, Any]) -> None:
        self.section = section
        self.model = section.get("model", {})
        self.sample = section.get("sample", {})
        self.train = section.get("train", {})
        self.validate = section.get("validate", {})
        self.simulate = section.get("simulate", {})
        self.analyze = section.get("analyze", {})

    @classmethod
    def of(cls, section: Mapping[str, Any] | System) -> System:
        """The system of a config section, as the class registered for its ``kind``."""
        if isinstance(section, System):
            return section
        import mllg.workflow.driven  # noqa: F401 - registers the kinds
        import mllg.workflow.equilibrium  # noqa: F401

        kind = section["kind"]
        if kind not in cls._kinds:
            raise ValueError(f"kind={kind!r} is not allowed; use one of {sorted(cls._kinds)}.")
        return cls._kinds[kind](section)

    # ------------------------------------------------------------------ builders
    def tags(self) -> list[str]:
        """Data-set tags: ``["eq"]`` or one per bias voltage."""
        raise NotImplementedError

    def lattice(self, size: int) -> Lattice:
        """Lattice of linear size ``size`` (L x L periodic, or an Lx x W strip)."""
        return make_lattice(self.model["lattice"], int(size))

    def exact_solver(self, size: int, bias: float = 0.0) -> Any:
        """Exact field provider on the lattice of linear size ``size`` (see subclasses)."""
        raise NotImplementedError

    def label_solver(self, size: int) -> Any | None:
        """Solver of the stored training labels, or None when the dynamics' own are."""
        return None

    def fresh_label_solver(
        self, size: int, spins: NDArray, choice: str = "auto", bias: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        """Exact solver of fresh labels (learning loop, audit) on the lattice of linear
        size ``size``, in the ensemble of the training labels, and a record of the choice.

        Base: :meth:`exact_solver` (``choice`` is ignored; NEGF for driven strips).
        """
        solver = self.exact_solver(size, bias=bias)
        return solver, {"solver": getattr(solver, "name", type(solver).__name__)}

    def classical(self) -> ClassicalTerms | None:
        """Easy-axis anisotropy ``-K sum_i (S_i^z)^2`` (``model.K``) or None."""
        k = self.model.get("K")
        return ClassicalTerms(K=float(k)) if k else None

    def physics_attrs(self) -> dict[str, Any]:
        """Data-contract attrs of the physical model (t1..t3, J, kT, filling or mu)."""
        m = self.model
        ens = {"mu": m["mu"]} if m.get("mu") is not None else {"filling": m["filling"]}
        return {"t1": m["t1"], "t2": m["t2"], "t3": m["t3"], "J": m["J"], "kT": m["kT"], **ens}

    def provenance(self, stage: str, **extra: Any) -> dict[str, Any]:
        """Provenance record of a stage output (config hash of the section and extras)."""
        return provenance({"stage": stage, "system": dict(self.section), **extra})

    @property
    def loop_size(self) -> int:
        """Linear size of the learning loop's lattice: ``active.L``, else ``sample.L``."""
        size = (self.section.get("active") or {}).get("L")
        return int(self.sample["L"] if size is None else size)

    @property
    def order(self) -> OrderedState:
        """The ordered state of ``analyze.order`` (:data:`mllg.orders.ORDERED_STATES`)."""
        return ordered_state(self.analyze["order"])

    def llg(self, provider: Any, seed: int) -> LLG:
        """The integrator of ``simulate``: ``simulate.alpha``, ``dt``, ``kT_bath`` and
        ``precession``, the classical terms of the model and the noise seed ``seed``.

        dS/dt = p S x h - alpha S x (S x h) + Langevin noise, h = provider field (units of
        t) plus the classical terms (:class:`mllg.dynamics.LLG`).
        """
        sim = self.simulate
        return LLG(
            provider,
            alpha=sim["alpha"],
            dt=sim["dt"],
            kT=sim["kT_bath"],
            precession=sim["precession"],
            classical=self.classical(),
            seed=int(seed),
        )

    # --------------------------------------------------- protocol steps (per kind)
    def sample_chunk(self, tag: str, chunk: int, out: str | Path) -> Path:
        """Write the exact training data of one chunk to ``out``."""
        raise NotImplementedError

    def reference_frames(self, exact: Any, tag: str, with_base: bool, scratch: Path) -> tuple:
        """Fresh exact frames for validate: (dataset, V = 0 fields or None)."""
        raise NotImplementedError

    def speed_probe(self, lattice: Lattice) -> NDArray[np.float64]:
        """Spins on which validate times the exact solver and the model."""
        raise NotImplementedError

    def llg_check(self, exact: Any, ml: Any, lattice: Lattice, tag: str) -> dict[str, Any]:
        """validate's exact-vs-ML LLG comparison (``validate.llg_steps`` steps)."""
        raise NotImplementedError

    def initial_spins(self, lattice: Lattice, seed: int, relax: Callable[[], Any]) -> NDArray:
        """Initial spins of a production run (``relax()`` gives the relaxing provider)."""
        raise NotImplementedError

    def initial_protocol(self) -> dict[str, Any]:
        """What defines :meth:`initial_spins` besides the seed (part of a run's identity)."""
        raise NotImplementedError

    def run_attrs(self, tag: str) -> dict[str, Any]:
        """Extra trajectory attrs of a production run of data set ``tag``."""
        return {}

    def observables(
        self,
        trajectories: Mapping[str, Sequence[str | Path]],
        validations: Mapping[str, str | Path],
    ) -> tuple[dict[str, Any], Any]:
        """analyze: (results, xarray Dataset of the time series)."""
        raise NotImplementedError

    def physics_figures(
        self,
        name: str,
        res: Mapping[str, Any],
        series: Any,
        lattice: Lattice,
        final: NDArray,
        outputs: Mapping[str, str | Path],
        dpi: int,
    ) -> None:
        """figures: the kind's figures besides the texture."""
        raise NotImplementedError

    def headline(self, res: Mapping[str, Any]) -> dict[str, Any]:
        """summary: the physics headline numbers from the analysis results."""
        raise NotImplementedError
