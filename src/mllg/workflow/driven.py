"""Driven systems: an s-d strip between two leads at bias V, NEGF labels, moving walls.

Protocol steps of :class:`DrivenSystem` (see :mod:`mllg.workflow.system`):

* sampling: ``sample.configs`` perturbed 180 deg walls per chunk with their NEGF fields
  at the bias of the data set and, for V != 0, at V = 0 too (``fields_eq``), so that a
  model of the nonequilibrium part ``h(V) - h(0)`` can be trained
  (``train.target = nonequilibrium``);
* validate: fresh perturbed walls; the LLG check is a direct NEGF-LLG run of the
  simulate protocol, giving the reference wall velocity;
* simulate: a 180 deg wall (width 2) relaxed for ``simulate.relax_steps`` steps at
  alpha = 0.5, kT = 0 with the V = 0 model, then driven with the model of the bias;
* analyze: the wall position X(t) of every run (tanh fit), its velocity ``v = dX/dt``
  for ``t >= analyze.t_min`` per voltage, averaged over seeds, next to the direct
  NEGF-LLG velocity: the v(V) table and the mobility ``dv/dV``.

Bias convention: mu_L = mu + V/2, mu_R = mu - V/2 (V in units of t/e).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from mllg.config import tag_voltage, voltage_tag
from mllg.lattice import Lattice, make_lattice
from mllg.workflow.system import System

__all__ = ["DrivenSystem"]

#: Width (sites) of the initial 180 deg wall of a driven run.
WALL_WIDTH = 2.0
#: Damping of the zero-temperature relaxation of the initial wall.
RELAX_ALPHA = 0.5


class DrivenSystem(System):
    """An Lx x W strip between two semi-infinite leads, driven by a bias (NEGF)."""

    kind = "driven"

    def tags(self) -> list[str]:
        return [voltage_tag(v) for v in self.sample["voltages"]]

    def lattice(self, size: int) -> Lattice:
        """The ``size`` x W strip (``model.W``, ``model.periodic_y``)."""
        return make_lattice(
            "strip", int(size), self.model["W"], periodic_y=self.model["periodic_y"]
        )

    def exact_solver(self, size: int, bias: float = 0.0) -> Any:
        """NEGF solver (:func:`mllg.electrons.negf.strip_negf`) of the Lx = ``size`` strip
        at bias ``bias``."""
        from mllg.electrons.negf import strip_negf

        m = self.model
        return strip_negf(
            int(size),
            int(m["W"]),
            t1=m["t1"],
            J=m["J"],
            mu=m["mu"],
            kT=m["kT"],
            periodic_y=m["periodic_y"],
            bias=float(bias),
            t_lead=m["t_lead"],
            t_coupling=m["t_coupling"],
            tol=self.sample["tol"],
        )

    # ---------------------------------------------------------------- sample
    def sample_chunk(self, tag: str, chunk: int, out: str | Path) -> Path:
        """``sample.configs`` perturbed walls (:func:`mllg.negf_sampling.sample_negf`,
        seed ``sample.seed + chunk``, tilt noise ``sample.wall_noise``) with their NEGF
        fields at the bias of ``tag`` and, for V != 0, at V = 0 (``fields_eq``)."""
        from mllg.io import make_dataset, write_dataset
        from mllg.negf_sampling import sample_negf

        s = self.sample
        seed = int(s["seed"]) + int(chunk)
        v = tag_voltage(tag)
        solver = self.exact_solver(s["L"], bias=v)
        prov = {"model": self.model, "sample": s, "chunk": chunk, "tag": tag}
        volts = [v] if v == 0.0 else [0.0, v]
        ds = sample_negf(
            solver, volts, int(s["configs"]), seed=seed, config=prov, noise=s["wall_noise"]
        )
        k = len(volts)
        attrs = {**ds.attrs, "chunk": int(chunk), "data_tag": tag, "bias": v}
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

    # -------------------------------------------------------------- validate
    def reference_frames(self, exact: Any, tag: str, with_base: bool, scratch: Path) -> tuple:
        """``validate.frames`` fresh perturbed walls at the bias of ``tag`` (and at V = 0
        when the model is a nonequilibrium part on a base model)."""
        from mllg.negf_sampling import sample_negf

        v = self.validate
        bias = tag_voltage(tag) or 0.0
        volts = [bias] if not with_base else [0.0, bias]
        both = sample_negf(exact, volts, int(v["frames"]), seed=int(v["seed"]))
        k = len(volts)
        fields_eq = both["fields"].values[0::k] if with_base else None
        return both.isel(frame=slice(k - 1, None, k)), fields_eq

    def speed_probe(self, lattice: Lattice) -> NDArray[np.float64]:
        """A 180 deg wall (width 2, tilt 0.3) across the strip."""
        from mllg.analysis.domain_wall import domain_wall

        return domain_wall(lattice, width=2.0, phi=0.3)

    def wall_run(
        self,
        provider: Any,
        relax: Callable[[], Any],
        lattice: Lattice,
        n_steps: int,
        seed: int,
        every: int,
    ) -> tuple[NDArray, NDArray, NDArray]:
        """The simulate protocol without a store: relax the wall, drive it ``n_steps``.

        Returns
        -------
        times, positions, final spins
        """
        from mllg.analysis.domain_wall import wall_positions

        spins = self.initial_spins(lattice, seed, relax)
        frames = list(self.llg(provider, seed).run(spins, n_steps, every=every, energy=False))
        times = np.array([f.time for f in frames])
        stack = np.stack([f.spins for f in frames])
        return times, wall_positions(stack, lattice), stack[-1]

    def llg_check(self, exact: Any, ml: Any, lattice: Lattice, tag: str) -> dict[str, Any]:
        """A direct NEGF-LLG run of the simulate protocol (``validate.llg_steps`` steps,
        relaxed with the V = 0 NEGF solver): the reference wall velocity."""
        from mllg.analysis.domain_wall import wall_velocity

        n = int(self.validate["llg_steps"])
        relax_exact = self.exact_solver(self.sample["L"], bias=0.0)
        times, pos, _ = self.wall_run(exact, lambda: relax_exact, lattice, n, 0, max(1, n // 20))
        vel, err = wall_velocity(times, pos, t_min=float(self.analyze["t_min"]))
        return {
            "negf_llg_time": times.tolist(),
            "negf_llg_position": pos.tolist(),
            "negf_llg_velocity": vel,
            "negf_llg_velocity_stderr": err,
        }

    # -------------------------------------------------------------- simulate
    def initial_spins(self, lattice: Lattice, seed: int, relax: Callable[[], Any]) -> NDArray:
        """A 180 deg wall (width 2) relaxed ``simulate.relax_steps`` steps at alpha = 0.5
        and kT = 0 with the provider ``relax()`` (the V = 0 model, built only if needed)."""
        from mllg.analysis.domain_wall import domain_wall
        from mllg.dynamics import LLG

        sim = self.simulate
        spins = domain_wall(lattice, width=WALL_WIDTH)
        n_relax = int(sim["relax_steps"])
        if n_relax:
            llg = LLG(
                relax(),
                alpha=RELAX_ALPHA,
                dt=sim["dt"],
                precession=sim["precession"],
                classical=self.classical(),
                seed=int(seed),
            )
            for frame in llg.run(spins, n_relax, every=n_relax, energy=False):
                spins = frame.spins
        return spins

    def initial_protocol(self) -> dict[str, Any]:
        return {
            "initial": "wall",
            "width": WALL_WIDTH,
            "relax_steps": int(self.simulate["relax_steps"]),
            "relax_alpha": RELAX_ALPHA,
        }

    def run_attrs(self, tag: str) -> dict[str, Any]:
        return {"bias": tag_voltage(tag)}

    # --------------------------------------------------------------- analyze
    def observables(
        self,
        trajectories: Mapping[str, Sequence[str | Path]],
        validations: Mapping[str, str | Path],
    ) -> tuple[dict[str, Any], Any]:
        """Wall position X(t) per run, velocity per bias (seed mean, its error the rms of
        the seeds' fit errors), the direct NEGF-LLG velocity, and the mobility ``dv/dV``
        (least-squares slope) of ML and NEGF."""
        import xarray as xr

        from mllg.analysis.domain_wall import wall_positions, wall_velocity
        from mllg.io import lattice_from_attrs, open_store

        t_min = self.analyze["t_min"]
        rows, pos_all, times = [], [], None
        for tag, paths in trajectories.items():
            vs, ps = [], []
            for p in paths:
                ds = open_store(p).load()
                lat = lattice_from_attrs(ds.attrs)
                times = ds["time"].values
                pos = wall_positions(ds["spins"].transpose("frame", "site", "vec").values, lat)
                vs.append(wall_velocity(times, pos, t_min=t_min))
                ps.append(pos)
            ref = json.loads(Path(validations[tag]).read_text())
            rows.append(
                {
                    "bias": tag_voltage(tag),
                    "velocity_ml": float(np.mean([x[0] for x in vs])),
                    "velocity_ml_stderr": float(np.sqrt(np.mean([x[1] ** 2 for x in vs]))),
                    "velocity_negf": ref.get("negf_llg_velocity"),
                    "velocity_negf_stderr": ref.get("negf_llg_velocity_stderr"),
                    "final_position": float(np.mean([p[-1] for p in ps])),
                }
            )
            pos_all.append(np.mean(ps, axis=0))
        rows.sort(key=lambda r: r["bias"])
        order = np.argsort([tag_voltage(t) for t in trajectories])
        result: dict[str, Any] = {"velocity_table": rows}
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
        """``position`` (X(t) per V) and ``velocity`` (v(V), ML and direct NEGF)."""
        from mllg.plotting import plot_series

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

    # --------------------------------------------------------------- summary
    def headline(self, res: Mapping[str, Any]) -> dict[str, Any]:
        out = {"velocity_table": res["velocity_table"]}
        out.update({k: res[k] for k in ("mobility_ml", "mobility_negf") if k in res})
        return out
