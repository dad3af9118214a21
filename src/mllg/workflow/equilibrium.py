"""Equilibrium systems: periodic square or triangular lattices, ED or KPM labels, quenches.

Protocol steps of :class:`EquilibriumSystem` (see :mod:`mllg.workflow.system`):

* sampling: a Langevin-LLG trajectory per chunk from random spins with the exact solver
  (``sample.solver``: ED or KPM), optionally relabelled grand canonically at
  ``sample.label_mu``;
* validate: a fresh Langevin-LLG reference run at ``validate.kT_bath``; the LLG check
  relaxes one random state with the exact and the ML fields and compares the final
  energies (both from the exact solver);
* simulate: a quench from random spins (``default_rng(seed)``);
* analyze: per-frame order observables of the ordered state ``analyze.order``
  (:data:`mllg.orders.ORDERED_STATES`: its wavevectors and domain-size definition), the
  growth exponent ``L ~ t^n`` and the final and initial order.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg import textures
from mllg.config import EQ_TAG
from mllg.lattice import Lattice
from mllg.workflow.system import System, build_model

__all__ = ["EquilibriumSystem"]


class EquilibriumSystem(System):
    """A periodic L x L system in equilibrium with its electrons (ED or KPM)."""

    kind = "equilibrium"

    def tags(self) -> list[str]:
        return [EQ_TAG]

    def _physics(self) -> dict[str, Any]:
        keys = ("lattice", "t1", "t2", "t3", "J", "filling", "mu", "kT")
        return {k: self.model.get(k) for k in keys}

    def exact_solver(self, size: int, bias: float = 0.0) -> Any:
        """ED or KPM (``sample.solver``) on the L x L periodic lattice, ``L = size``."""
        from mllg.electrons import ExactDiagonalization

        _, ham, ens = build_model({**self._physics(), "L": size})
        if self.sample["solver"] == "kpm":
            from mllg.electrons.kpm import KernelPolynomial

            return KernelPolynomial(ham, ens, moments=int(self.sample["moments"]))
        return ExactDiagonalization(ham, ens)

    def label_solver(self, size: int) -> Any | None:
        """Grand-canonical solver of the labels at ``sample.label_mu``, or None.

        With ``sample.label_mu`` set (canonical model), the labels are grand canonical at
        that ``mu`` (units of t) and the model's ``kT``: fields
        ``h_i = -dOmega/dS_i = J <c_i^dag sigma c_i>`` and the grand potential
        ``Omega = sum_n omega(eps_n - mu)`` as energy. A Behler–Parrinello energy is a
        sum of local terms, i.e. grand canonical, while at fixed N_e the chemical
        potential of a small training lattice depends on the whole configuration.
        """
        mu = self._label_mu()
        if mu is None:
            return None
        other = EquilibriumSystem(
            {**self.section, "model": {**self.model, "filling": None, "mu": float(mu)}}
        )
        return other.exact_solver(size)

    def _label_mu(self) -> float | None:
        """``sample.label_mu`` as a number (None: the dynamics' own labels)."""
        mu = self.sample.get("label_mu")
        if mu == "auto":
            raise ValueError(
                "sample.label_mu = 'auto' is not resolved: run the chemical_potential stage "
                "and pass its output through mllg.workflow.resolve_label_mu."
            )
        return None if mu is None else float(mu)

    def filling_matched_mu(self) -> dict[str, Any]:
        """Chemical potential of the grand-canonical labels for ``sample.label_mu = auto``.

        Probe: one canonical Langevin-LLG run per bath temperature of ``sample.kT_bath``
        with the exact solver of ``sample`` on the training lattice, from random spins
        (seed ``sample.seed + 10_000 + k``), ``sample.mu_probe_steps`` steps, a frame
        every ``sample.every``; then ``mu`` solves ``mean_frames N_e(mu) / 2N =
        model.filling`` at the model's kT (:func:`mllg.electrons.ed.mu_for_mean_filling`,
        exact levels of every frame), so the labels keep the stated mean density while
        each frame's density follows its spins, as a sum of local energies requires.

        Returns
        -------
        dict
            ``mu`` (units of t), ``n_frames``, ``filling``, ``kT``.
        """
        from mllg.dynamics import LLG
        from mllg.electrons.ed import mu_for_mean_filling

        s = self.sample
        solver = self.exact_solver(s["L"])
        lat = solver.hamiltonian.lattice
        every, frames = int(s["every"]), []
        for k, kT in enumerate(s["kT_bath"]):
            seed = int(s["seed"]) + 10_000 + k
            llg = LLG(solver, alpha=s["alpha"], dt=s["dt"], kT=float(kT), seed=seed)
            start = textures.random_spins(lat.N, np.random.default_rng(seed))
            for frame in llg.run(start, int(s["mu_probe_steps"]), every=every, energy=False):
                frames.append(frame.spins.copy())
        mu = mu_for_mean_filling(
            solver.hamiltonian, np.stack(frames), self.model["filling"], self.model["kT"]
        )
        return {
            "mu": float(mu),
            "n_frames": len(frames),
            "filling": self.model["filling"],
            "kT": self.model["kT"],
        }

    def fresh_label_solver(
        self, size: int, spins: NDArray, choice: str = "auto", bias: float = 0.0
    ) -> tuple[Any, dict[str, Any]]:
        """ED or KPM in the ensemble of the training labels (grand canonical at
        ``sample.label_mu`` when set, else the model's), on the L x L lattice ``L =
        size``: ``choice`` ed, kpm, or auto (:func:`mllg.active.faster_solver`, timed on
        ``spins``). KPM uses ``sample.moments`` at kT = 0 and its automatic moments at
        kT > 0. The record names the solver, both times and the KPM error against ED.
        """
        from mllg.active import faster_solver

        phys = self._physics()
        mu = self._label_mu()
        if mu is not None:
            phys = {**phys, "filling": None, "mu": float(mu)}
        _, ham, ens = build_model({**phys, "L": size})
        moments = None if ens.kT > 0 else int(self.sample["moments"])
        solver, info = faster_solver(ham, ens, spins, choice, moments=moments)
        ensemble = "grand canonical" if ens.kind == "grand_canonical" else "canonical"
        return solver, {**info, "ensemble": ensemble, "mu": mu, "kT_el": float(ens.kT)}

    # ---------------------------------------------------------------- sample
    def sample_chunk(self, tag: str, chunk: int, out: str | Path) -> Path:
        """Langevin-LLG frames of chunk ``chunk`` (seed ``sample.seed + chunk``) at bath
        ``kT_bath[chunk % len(kT_bath)]``, every ``every``-th step stored (resumable).

        The sampling dynamics and the stored fields are purely electronic (``model.K``
        enters only the simulate and validate dynamics).
        """
        from mllg.sampling import sample_llg

        s = self.sample
        seed = int(s["seed"]) + int(chunk)
        solver = self.exact_solver(s["L"])
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
            attrs={"chunk": int(chunk), "data_tag": tag},
            config={"model": self.model, "sample": s, "chunk": chunk},
            labels=self.label_solver(s["L"]),
        )

    # -------------------------------------------------------------- validate
    def reference_frames(self, exact: Any, tag: str, with_base: bool, scratch: Path) -> tuple:
        """The last ``validate.frames`` frames of a fresh Langevin run (seed
        ``validate.seed``, bath ``validate.kT_bath``) after 4 stored frames of warm-up."""
        from mllg.io import open_store
        from mllg.sampling import sample_llg

        v, s = self.validate, self.sample
        lat = exact.hamiltonian.lattice
        tmp = Path(scratch) / "reference.zarr"
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
            labels=self.label_solver(s["L"]),
        )
        ref = open_store(tmp).load().isel(frame=slice(-int(v["frames"]), None))
        shutil.rmtree(tmp, ignore_errors=True)
        return ref, None

    def speed_probe(self, lattice: Lattice) -> NDArray[np.float64]:
        return textures.random_spins(lattice.N, np.random.default_rng(0))

    def llg_check(self, exact: Any, ml: Any, lattice: Lattice, tag: str) -> dict[str, Any]:
        """Damped LLG (``sample.alpha``, ``dt``) for ``validate.llg_steps`` steps from one
        random state (seed ``validate.seed + 1``) with exact and ML fields; final energies
        per site, both evaluated by the exact solver."""
        from mllg.dynamics import LLG

        n = int(self.validate["llg_steps"])
        init = textures.random_spins(
            lattice.N, np.random.default_rng(int(self.validate["seed"]) + 1)
        )
        finals = {}
        for name, prov in (("exact", exact), ("ml", ml)):
            llg = LLG(
                prov,
                alpha=self.sample["alpha"],
                dt=self.sample["dt"],
                classical=self.classical(),
                seed=0,
            )
            for frame in llg.run(init, n, every=n, energy=False):
                finals[name] = frame.spins
        e = {k: float(np.ravel(exact.energy(x))[0]) / lattice.N for k, x in finals.items()}
        return {
            "llg_steps": n,
            "llg_final_energy_per_site_exact": e["exact"],
            "llg_final_energy_per_site_ml": e["ml"],
            "llg_energy_difference_per_site": e["ml"] - e["exact"],
        }

    # -------------------------------------------------------------- simulate
    def initial_spins(self, lattice: Lattice, seed: int, relax: Callable[[], Any]) -> NDArray:
        """Random unit spins from ``default_rng(seed)``: the infinite-temperature quench."""
        return textures.random_spins(lattice.N, np.random.default_rng(int(seed)))

    def initial_protocol(self) -> dict[str, Any]:
        return {"initial": "random", "rng": "default_rng(seed)"}

    # --------------------------------------------------------------- analyze
    def order_series(self, lattice: Lattice, spins: NDArray) -> dict[str, NDArray]:
        """Per-frame observables of a quench, spins (F, N, 3).

        ``length`` is the domain size L(t) the growth law is fitted to, the ordered
        state's ``length`` definition (chiral or spin; the other is kept as
        ``spin_length`` for the chiral one), capped at the lattice size. The other keys
        are those of :func:`mllg.analysis.order.quench_series`, plus a real-space measure:
        for chiral order ``wall_length``, ``1 / rho`` with rho the fraction of
        nearest-neighbour bonds joining sites of opposite chirality sign
        (:func:`mllg.analysis.coarsening.wall_length`); on the square lattice the
        ferromagnetic clusters (connected sites of ``c_i > 1/2``,
        :func:`mllg.analysis.order.local_order`): ``fm_clusters`` (count),
        ``fm_cluster_mean`` and ``fm_cluster_largest`` (sites).
        """
        from mllg.analysis.coarsening import cluster_statistics, wall_length
        from mllg.analysis.order import local_order, quench_series, site_chirality

        out = quench_series(lattice, spins, self.order.name)
        if self.order.length == "chiral":
            out["spin_length"] = out["length"]
            out["length"] = out.pop("chiral_length")
            out["wall_length"] = np.minimum(
                wall_length(lattice, np.sign(site_chirality(lattice, spins))), float(lattice.Lx)
            )
        else:
            out.pop("chiral_length", None)
        if lattice.kind == "square":
            stats = cluster_statistics(lattice, local_order(lattice, spins) == 1)
            out["fm_clusters"] = stats["n_clusters"].astype(float)
            out["fm_cluster_mean"] = stats["mean_size"].astype(float)
            out["fm_cluster_largest"] = stats["largest"].astype(float)
        out["length"] = np.minimum(out["length"], float(lattice.Lx))
        return out

    def radial_series(self, lattice: Lattice, spins: NDArray) -> tuple[NDArray, NDArray]:
        """Shell-averaged structure factor of the order that defines ``length``, per
        frame: the chirality S(q) around q = 0 (chiral order) or the spin S(q) around
        the ordering wavevectors (:func:`mllg.analysis.coarsening.radial_structure_factor`,
        q = Q excluded). Returns ``q`` (n_q,) and ``S`` (F, n_q)."""
        from mllg.analysis.coarsening import radial_structure_factor
        from mllg.analysis.order import chirality_structure_factor
        from mllg.analysis.structure import structure_factor

        if self.order.length == "chiral":
            return radial_structure_factor(lattice, chirality_structure_factor(lattice, spins))
        points = self.order.wavevectors(lattice)
        return radial_structure_factor(lattice, structure_factor(lattice, spins), points)

    def observables(
        self,
        trajectories: Mapping[str, Sequence[str | Path]],
        validations: Mapping[str, str | Path],
    ) -> tuple[dict[str, Any], Any]:
        """L(t) and order observables per seed; growth exponent ``L ~ t^n``
        (:func:`mllg.analysis.order.fit_growth_exponent` on ``analyze.t_min <= t <=
        t_max`` where L is below half the lattice size) with its 95 % confidence interval
        over seeds and the verdict against n = 1 and n = 1/2
        (:func:`mllg.analysis.coarsening.exponent_interval`, :func:`growth_verdict`);
        the local exponent d ln L / d ln t against t; the dynamical-scaling collapse
        quality of the seed-mean :meth:`radial_series` on the fit window with L(t), and
        with L^1.5 as the contrast (:func:`mllg.analysis.coarsening.scaling_collapse`);
        final and initial values."""
        import xarray as xr

        from mllg.analysis.coarsening import (
            exponent_interval,
            growth_verdict,
            local_exponent,
            scaling_collapse,
        )
        from mllg.analysis.order import fit_growth_exponent
        from mllg.io import lattice_from_attrs, open_store

        a = self.analyze
        series, radial, times, lat = [], [], None, None
        for p in trajectories[EQ_TAG]:
            ds = open_store(p).load()
            lat = lattice_from_attrs(ds.attrs)
            times = ds["time"].values
            spins = ds["spins"].transpose("frame", "site", "vec").values
            series.append(self.order_series(lat, spins))
            q, s_q = self.radial_series(lat, spins)
            radial.append(s_q)
        keys = list(series[0])
        stacked = {k: np.stack([np.asarray(s[k]) for s in series]) for k in keys}
        length = stacked["length"]
        t_max = a["t_max"] if a["t_max"] is not None else float(times[-1])
        ok = (times >= a["t_min"]) & (times <= t_max) & (times > 0)
        ok &= np.all(length < 0.5 * lat.Lx, axis=0)
        fit: dict[str, Any] = {"exponent": None, "stderr": None}
        scaling: dict[str, Any] = {}
        if ok.sum() >= 3:
            fit = fit_growth_exponent(times[ok], length[:, ok], -np.inf, np.inf)
            fit["t_min"], fit["t_max"] = float(times[ok][0]), float(times[ok][-1])
            interval = exponent_interval(times[ok], length[:, ok], -np.inf, np.inf)
            fit.update(
                {k: float(interval[k]) for k in ("ci_low", "ci_high", "boot_low", "boot_high")},
                level=interval["level"],
                verdict=growth_verdict(interval)["verdict"],
            )
            s_window = np.mean(radial, axis=0)[ok]  # seed mean on the fit window
            near = q < np.linalg.norm(lat.reciprocal[0]) / 4  # the q range L is taken from
            near &= np.all(s_window > 0, axis=0)  # shells with weight
            s_mean = s_window[:, near]
            try:
                scaling = {
                    "collapse_quality": scaling_collapse(q[near], s_mean, length.mean(0)[ok])[
                        "quality"
                    ],
                    "collapse_quality_with_L^1.5": scaling_collapse(
                        q[near], s_mean, length.mean(0)[ok] ** 1.5
                    )["quality"],
                }
            except ValueError as err:  # e.g. an exactly ordered frame: S = 0 off Q
                scaling = {"collapse_quality": None, "reason": str(err)}
        local = local_exponent(times, length)
        result = {
            "growth": fit,
            "local_exponent": {
                k: np.asarray(local[k]).tolist() for k in ("time", "exponent", "stderr")
            },
            "scaling": scaling,
            "final": {k: float(stacked[k][:, -1].mean()) for k in keys},
            "initial": {k: float(stacked[k][:, 0].mean()) for k in keys},
            "n_seeds": len(series),
        }
        ds_out = xr.Dataset(
            {k: (("seed", "frame"), v) for k, v in stacked.items()},
            coords={"seed": np.arange(len(series)), "time": ("frame", times)},
        )
        return result, ds_out

    # --------------------------------------------------------------- figures
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
        """``structure_factor`` (final S(q)), ``growth`` (L(t) with the fitted exponent)
        and ``order`` (the order observables against time, seed mean)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from mllg.analysis.structure import structure_factor
        from mllg.plotting import plot_growth, plot_structure_factor

        plot_structure_factor(
            lattice,
            structure_factor(lattice, final),
            outputs["structure_factor"],
            f"{name}: final S(q)",
        )
        fit = res["growth"] if res["growth"]["exponent"] is not None else None
        plot_growth(series["time"].values, series["length"].values, outputs["growth"], name, fit)
        fig, ax = plt.subplots(figsize=(5.5, 4.2))
        for key in series.data_vars:
            if not key.endswith("length") and not key.startswith("fm_"):  # order fractions
                ax.plot(series["time"].values, series[key].values.mean(0), label=key)
        ax.set_xlabel("time (1/t)")
        ax.set_ylabel("seed mean")
        ax.set_title(f"{name}: order after the quench")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(outputs["order"], dpi=dpi)
        plt.close(fig)

    # --------------------------------------------------------------- summary
    def headline(self, res: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "ordered_state": self.analyze["order"],
            "growth_exponent": res["growth"]["exponent"],
            "growth_exponent_stderr": res["growth"]["stderr"],
            "growth_fit_window": [res["growth"].get("t_min"), res["growth"].get("t_max")],
            "growth_exponent_ci95": [res["growth"].get("ci_low"), res["growth"].get("ci_high")],
            "growth_verdict": res["growth"].get("verdict"),
            "scaling_collapse_quality": (res.get("scaling") or {}).get("collapse_quality"),
            "final_order": res["final"],
            "initial_order": res["initial"],
        }
