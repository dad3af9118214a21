"""Training BP models with PyTorch Lightning, and their evaluation.

Data: zarr stores of the data contract (``spins``, ``fields`` (frame, site, vec),
optional ``energy`` (frame); lattice attrs), see :mod:`mllg.io`. Frames are split at
random (seeded) into train / validation / test sets; sites of one frame stay together.

Loss (dimensionless)::

    L = < |h_perp^pred - h_perp^ref|^2 >_sites / s^2
        + w_E < ((E^pred - E^ref) / N)^2 >_frames / s^2

with ``h_perp = h - (h . S) S`` the part of the field that drives the dynamics, ``s`` the
rms perpendicular field of the training set (stored as the model's ``energy_scale``), and
the energy term only for frames that have an energy (conservative models).

Metrics (:func:`field_metrics`) on the perpendicular field: relative RMSE
``sqrt(sum |dh_perp|^2 / sum |h_perp^ref|^2)`` and, per Cartesian component a,
``R^2_a = 1 - sum (dh_perp^a)^2 / sum (h_perp^a - <h_perp^a>)^2``. For unit spins the
torque ``T = S x h`` has ``|dT| = |dh_perp|``, so the torque relative RMSE equals the
perpendicular-field one; it is reported under its own key for driven systems.

Layout (one module, over 600 lines, because the data split, the loss, the metrics and
the export share the ``FieldData`` frames and the model's normalization): data
(``FieldData``, loading, split), the Lightning module and data module, normalization
and the pair-coupling fit, :func:`train`, metrics and parity plots.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from numpy.typing import NDArray
from torch.utils.data import DataLoader, TensorDataset

from mllg.lattice import Lattice
from mllg.nn.model import (
    DTYPES,
    BPModel,
    ModelConfig,
    check_state_dict,
    gather_neighbours,
    save_model,
)
from mllg.settings import TrainConfig

__all__ = [
    "REQUIRED",
    "FieldData",
    "FieldDataModule",
    "FieldRegression",
    "TrainConfig",
    "evaluate",
    "field_metrics",
    "fit_normalization",
    "fit_pair_couplings",
    "load_field_data",
    "model_from_checkpoint",
    "parity_plot",
    "perpendicular",
    "split_frames",
    "symmetry_permutations",
    "train",
]

REQUIRED = ("spins", "fields")


# ---------------------------------------------------------------------------- data
@dataclass
class FieldData:
    """Frames of spins and exchange fields on one lattice.

    Attributes
    ----------
    lattice : Lattice
    spins, fields : ndarray (F, N, 3)
        Unit spins and exchange fields ``h = J Tr[sigma rho_ii]`` (units of t).
    energy : ndarray (F,) or None
        Potential with ``h = -dE/dS`` (conservative data only).
    attrs : dict
        Store attributes (physical parameters, provenance).
    """

    lattice: Lattice
    spins: NDArray[np.float64]
    fields: NDArray[np.float64]
    energy: NDArray[np.float64] | None = None
    attrs: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.lattice.N
        for name in ("spins", "fields"):
            arr = np.asarray(getattr(self, name), dtype=float)
            if arr.ndim != 3 or arr.shape[1:] != (n, 3):
                raise ValueError(
                    f"data variable {name!r} has shape {arr.shape}; this "
                    f"{self.lattice.kind} {self.lattice.Lx}x{self.lattice.Ly} lattice needs "
                    f"(frame, {n}, 3)."
                )
            if not np.isfinite(arr).all():
                raise ValueError(f"data variable {name!r} contains NaN or infinite values.")
            setattr(self, name, arr)
        if self.spins.shape[0] != self.fields.shape[0]:
            raise ValueError(
                f"spins have {self.spins.shape[0]} frames but fields have {self.fields.shape[0]}."
            )
        if self.energy is not None:
            e = np.asarray(self.energy, dtype=float).reshape(-1)
            if e.shape[0] != self.spins.shape[0]:
                raise ValueError(f"energy has {e.shape[0]} frames, spins {self.spins.shape[0]}.")
            if not np.isfinite(e).all():
                raise ValueError("data variable 'energy' contains NaN or infinite values.")
            self.energy = e
        norms = np.linalg.norm(self.spins, axis=-1)
        if np.abs(norms - 1).max() > 1e-6:
            raise ValueError("data variable 'spins' must hold unit vectors (|S_i| = 1).")

    @property
    def n_frames(self) -> int:
        return self.spins.shape[0]


def load_field_data(paths: str | Path | list, lattice: Lattice | None = None) -> FieldData:
    """Read one or more zarr data stores (same lattice) into a :class:`FieldData`.

    ``lattice``, if given, must equal the stores' lattice. Energies are kept only if every
    store has them.
    """
    from mllg.io import lattice_from_attrs, open_store

    paths = [paths] if isinstance(paths, str | Path) else list(paths)
    if not paths:
        raise ValueError("no data stores were given.")
    spins, fields, energy, attrs = [], [], [], {}
    for p in paths:
        ds = open_store(p)
        missing = [v for v in REQUIRED if v not in ds.data_vars]
        if missing:
            raise ValueError(
                f"data store {p} lacks the variable(s) {missing}; a training store needs "
                f"{list(REQUIRED)} (and optionally 'energy')."
            )
        lat = lattice_from_attrs(ds.attrs)
        if lattice is None:
            lattice = lat
        elif lat != lattice:
            raise ValueError(
                f"data store {p} is on a {lat.kind} {lat.Lx}x{lat.Ly} lattice, not the "
                f"expected {lattice.kind} {lattice.Lx}x{lattice.Ly}."
            )
        try:
            spins.append(ds["spins"].transpose("frame", "site", "vec").values)
            fields.append(ds["fields"].transpose("frame", "site", "vec").values)
            energy.append(ds["energy"].values if "energy" in ds.data_vars else None)
        except Exception as err:  # corrupt chunks
            raise ValueError(
                f"data store {p} cannot be read ({type(err).__name__}: {err}); sample it again."
            ) from err
        attrs = dict(ds.attrs)
    e = None if any(x is None for x in energy) else np.concatenate(energy)
    try:
        return FieldData(lattice, np.concatenate(spins), np.concatenate(fields), e, attrs)
    except ValueError as err:
        raise ValueError(f"data store(s) {[str(p) for p in paths]}: {err}") from None


def split_frames(
    n_frames: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[NDArray, NDArray, NDArray]:
    """Seeded random split of frame indices into (train, val, test)."""
    n_val = max(1, int(round(val_fraction * n_frames)))
    n_test = int(round(test_fraction * n_frames))
    if n_frames - n_val - n_test < 1:
        raise ValueError(f"{n_frames} frames are too few for the requested split.")
    perm = np.random.default_rng(seed).permutation(n_frames)
    return (
        np.sort(perm[n_val + n_test :]),
        np.sort(perm[:n_val]),
        np.sort(perm[n_val : n_val + n_test]),
    )


def epoch_seed(seed: int, epoch: int) -> int:
    """Seed of the random draws of one training epoch (batch order, augmentation)."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63 - 1)


class EpochShuffle(torch.utils.data.Sampler):
    """Random order of ``n`` frames, a function of ``(seed, epoch)`` only.

    Lightning calls :meth:`set_epoch` before every epoch, so a run resumed from a
    checkpoint draws the same batches in its later epochs as an uninterrupted run.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = int(n), int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        gen = torch.Generator().manual_seed(epoch_seed(self.seed, self.epoch))
        return iter(torch.randperm(self.n, generator=gen).tolist())


class FieldDataModule(pl.LightningDataModule):
    """Lightning DataModule over a :class:`FieldData` (or zarr store paths).

    ``seed`` seeds the train / validation / test split of the frames and the batch
    order; ``split_seed``, when given, seeds the split instead.
    """

    def __init__(
        self,
        data: FieldData | str | Path | list,
        batch_size: int = 8,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        seed: int = 0,
        dtype: str = "float64",
        split_seed: int | None = None,
    ) -> None:
        super().__init__()
        self.data = data if isinstance(data, FieldData) else load_field_data(data)
        self.batch_size = batch_size
        self.train_idx, self.val_idx, self.test_idx = split_frames(
            self.data.n_frames,
            val_fraction,
            test_fraction,
            seed if split_seed is None else split_seed,
        )
        self.seed = seed
        self.dtype = DTYPES[dtype]

    def subset(self, idx: NDArray) -> TensorDataset:
        d = self.data
        e = d.energy if d.energy is not None else np.full(d.n_frames, np.nan)
        return TensorDataset(
            torch.as_tensor(d.spins[idx], dtype=self.dtype),
            torch.as_tensor(d.fields[idx], dtype=self.dtype),
            torch.as_tensor(e[idx], dtype=self.dtype),
        )

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.subset(self.train_idx),
            batch_size=self.batch_size,
            sampler=EpochShuffle(len(self.train_idx), self.seed),
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.subset(self.val_idx), batch_size=self.batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.subset(self.test_idx), batch_size=self.batch_size)


def perpendicular(fields: torch.Tensor | NDArray, spins: torch.Tensor | NDArray):
    """``h - (h . S) S`` (works for torch tensors and NumPy arrays)."""
    return fields - (fields * spins).sum(-1, keepdims=True) * spins


@torch.no_grad()
def fit_normalization(model: BPModel, data: FieldData, frames: NDArray, chunk: int = 16) -> None:
    """Set feature mean/std, the field scale, the pair couplings (:func:`fit_pair_couplings`)
    and the energy shift (mean energy per site, net of the pair energy) from training frames."""
    feats = []
    for start in range(0, len(frames), chunk):
        s = torch.as_tensor(data.spins[frames[start : start + chunk]], dtype=model.dtype)
        g = model.descriptor(s)
        if model.lead.shape[1]:
            g = torch.cat([g, model.lead.to(g.dtype).expand(g.shape[0], -1, -1)], dim=-1)
        feats.append(g.reshape(-1, g.shape[-1]))
    g = torch.cat(feats)
    mean, std = g.mean(0), g.std(0)
    std = torch.where(std > 1e-6 * (std.max() + 1e-300), std, torch.ones_like(std))
    model.feature_mean.copy_(mean)
    model.feature_std.copy_(std)
    hp = perpendicular(data.fields[frames], data.spins[frames])
    scale = float(np.sqrt((hp**2).sum(-1).mean()))
    model.energy_scale.fill_(scale if scale > 0 else 1.0)
    shift = torch.zeros_like(model.energy_shift)
    if model.pair_coupling is not None:
        model.pair_coupling.copy_(torch.as_tensor(fit_pair_couplings(model, data, frames)))
    if data.energy is not None and model.potential == "conservative":
        e_pair = 0.0  # the pair energy is not part of the shift
        if model.pair_coupling is not None:
            for start in range(0, len(frames), chunk):
                s = torch.as_tensor(data.spins[frames[start : start + chunk]], dtype=model.dtype)
                e_pair += float(-0.5 * (s * model.pair_fields(s)).sum())
        shift[0] = float((data.energy[frames].sum() - e_pair) / (len(frames) * data.lattice.N))
    model.energy_shift.copy_(shift)


@torch.no_grad()
def fit_pair_couplings(
    model: BPModel, data: FieldData, frames: NDArray, chunk: int = 64
) -> NDArray[np.float64]:
    """Least-squares shell couplings of the model's pair term from training frames.

    Minimizes ``sum_{frames, i} |P_i (h_i - h_i^pair[J])|^2`` over ``J`` (one per shell,
    units of t), where ``h_i^pair = - sum_s J_s A_is``, ``A_is = sum_{d in shell s}
    S_{i + d}`` and ``P_i`` projects out ``S_i`` (the loss's perpendicular components):
    the normal equations ``M J = -b`` with ``M_st = sum P A_s . P A_t`` and ``b_s = sum
    P A_s . h`` are accumulated in float64 over chunks of frames and solved by
    pseudo-inverse (shells that coincide on a small torus share their weight).

    Returns
    -------
    ndarray, shape (n_shells,)
    """
    n_shell = len(model.pair_radii)
    index = model.pair_index.cpu()
    shell = model.pair_shell.cpu()
    m = torch.zeros(n_shell, n_shell, dtype=torch.float64)
    b = torch.zeros(n_shell, dtype=torch.float64)
    for start in range(0, len(frames), chunk):
        rows = frames[start : start + chunk]
        s = torch.as_tensor(data.spins[rows], dtype=torch.float64)
        h = perpendicular(torch.as_tensor(data.fields[rows], dtype=torch.float64), s)
        nb = gather_neighbours(s, index)  # (F, N, K, 3)
        a = s.new_zeros(*s.shape[:2], n_shell, 3).index_add_(2, shell, nb)
        a = perpendicular(a, s[:, :, None, :]).reshape(-1, n_shell, 3)
        m += torch.einsum("psa,pta->st", a, a)
        b += torch.einsum("psa,pa->s", a, h.reshape(-1, 3))
    return -(torch.linalg.pinv(m, rtol=1e-10) @ b).numpy()


def symmetry_permutations(lattice: Lattice) -> NDArray[np.int64]:
    """Site permutations of the point-group operations that map the lattice onto itself.

    Shape (n_ops, N), ``S'[perm[i]] = S[i]``; operations that are no bijection of the
    finite lattice (open boundaries, incompatible torus) are left out. The centre is site
    0, or the middle row of a strip with open ends (its mirror ``y -> W - 1 - y`` maps
    the strip onto itself for odd ``W``).
    """
    centre = 0 if lattice.periodic[1] else int(lattice.index(0, (lattice.Ly - 1) // 2))
    out = []
    for op in lattice.point_group:
        perm = lattice.site_permutation(op, centre)
        if (perm >= 0).all() and len(np.unique(perm)) == lattice.N:
            out.append(perm)
    return np.array(out, dtype=np.int64)


# ---------------------------------------------------------------------------- Lightning
LR_SCHEDULES = ("plateau", "cosine")


class FieldRegression(pl.LightningModule):
    """LightningModule: loss on perpendicular fields (+ energies), see module docstring."""

    def __init__(
        self,
        model: BPModel | None = None,
        lattice: dict | None = None,
        model_config: dict | None = None,
        lr: float = 2e-3,
        energy_weight: float = 0.1,
        lr_decay: float = 0.5,
        lr_patience: int = 8,
        augment_point_group: bool = False,
        augment_time_reversal: bool = False,
        lr_schedule: str = "plateau",
        max_epochs: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if model is None:
            model = BPModel(Lattice(**lattice), ModelConfig.from_dict(model_config))
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule={lr_schedule!r} is not allowed; use one of {LR_SCHEDULES}."
            )
        if augment_time_reversal and model.potential != "conservative":
            raise ValueError(
                "augment_time_reversal=True needs a conservative (equilibrium) model: the bias "
                "of a driven system breaks time reversal (h(-S, V) is no function of h(S, V))."
            )
        lat = model.lattice
        self.save_hyperparameters(
            {
                "lattice": {
                    "kind": lat.kind,
                    "Lx": lat.Lx,
                    "Ly": lat.Ly,
                    "periodic_y": bool(lat.periodic_y),
                },
                "model_config": model.config.to_dict(),
                "lr": lr,
                "energy_weight": energy_weight,
                "lr_decay": lr_decay,
                "lr_patience": lr_patience,
                "augment_point_group": augment_point_group,
                "augment_time_reversal": augment_time_reversal,
                "lr_schedule": lr_schedule,
                "max_epochs": max_epochs,
                "seed": seed,
            }
        )
        self.model = model
        perms = symmetry_permutations(lat) if augment_point_group else np.zeros((0, lat.N), int)
        self.register_buffer("sym_perms", torch.as_tensor(perms), persistent=False)

    def augment(self, batch):
        """Apply a random symmetry of the Hamiltonian to every frame of a training batch.

        Point group (``augment_point_group``): ``S'[perm[i]] = S[i]``, ``h'[perm[i]] = h[i]``
        for a random lattice operation (energies unchanged). Without spin-orbit coupling
        the operations act on positions only, so the labels stay exact for every
        potential, also in the driven strip, whose group ``{E, M_y}`` keeps the current
        direction x (a chain: the identity only). Time reversal
        (``augment_time_reversal``, conservative models only): ``S -> -S``, ``h -> -h``
        with probability 1/2 (real hoppings: ``E[-S] = E[S]``, see
        :mod:`mllg.descriptors`). It is refused for the generalized and vector
        potentials: under the bias, time reversal also reverses the current and the open
        (dissipative) boundary conditions, so ``h(-S, V)`` is not ``-h(S, V)`` (nor
        ``-h(S, -V)`` for the nonadiabatic part); no label of the same data set gives it.
        """
        spins, fields, energy = batch
        gen = self._augment_generator(spins.device)
        if len(self.sym_perms):
            pick = torch.randint(
                len(self.sym_perms), (spins.shape[0],), device=spins.device, generator=gen
            )
            inv = torch.argsort(self.sym_perms[pick], dim=1)  # S' = S[inverse]
            idx = inv[..., None].expand(-1, -1, 3)
            spins, fields = spins.gather(1, idx), fields.gather(1, idx)
        if self.hparams.get("augment_time_reversal", False):
            draw = torch.rand(spins.shape[0], device=spins.device, generator=gen)
            sign = torch.where(draw < 0.5, -1.0, 1.0)
            sign = sign.to(spins.dtype)[:, None, None]
            spins, fields = spins * sign, fields * sign
        return spins, fields, energy

    def on_train_epoch_start(self) -> None:
        self._augment_gen = None  # reseeded from (seed, epoch): resumable runs repeat it

    def _augment_generator(self, device: torch.device) -> torch.Generator:
        gen = getattr(self, "_augment_gen", None)
        if gen is None or gen.device != torch.device(device):
            gen = torch.Generator(device=device)
            gen.manual_seed(epoch_seed(self.hparams.get("seed", 0), self.current_epoch))
            self._augment_gen = gen
        return gen

    def losses(self, batch, create_graph: bool) -> dict[str, torch.Tensor]:
        spins, fields, energy = batch
        out = self.model(spins, create_graph=create_graph)
        scale2 = self.model.energy_scale**2
        dh = perpendicular(out["fields"] - fields, spins)
        href = perpendicular(fields, spins)
        loss_h = (dh**2).sum(-1).mean() / scale2
        result = {
            "loss_fields": loss_h,
            "rel_rmse": torch.sqrt((dh**2).sum() / (href**2).sum()).detach(),
        }
        loss = loss_h
        has_e = torch.isfinite(energy)
        if (
            self.model.potential == "conservative"
            and bool(has_e.any())
            and self.hparams.energy_weight > 0
        ):
            n = spins.shape[1]
            de = (out["energy"][:, 0] - energy)[has_e] / n
            loss_e = (de**2).mean() / scale2
            loss = loss + self.hparams.energy_weight * loss_e
            result["loss_energy"] = loss_e
        result["loss"] = loss
        return result

    def training_step(self, batch, batch_idx):
        res = self.losses(self.augment(batch), create_graph=True)
        self.log("train_loss", res["loss"], on_step=False, on_epoch=True, batch_size=len(batch[0]))
        return res["loss"]

    def validation_step(self, batch, batch_idx):
        res = self.losses(batch, create_graph=False)
        n = len(batch[0])
        self.log("val_loss", res["loss"].detach(), on_epoch=True, batch_size=n)
        self.log("val_rel_rmse", res["rel_rmse"], on_epoch=True, batch_size=n)

    def test_step(self, batch, batch_idx):
        res = self.losses(batch, create_graph=False)
        self.log("test_rel_rmse", res["rel_rmse"], on_epoch=True, batch_size=len(batch[0]))

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr)
        if self.hparams.get("lr_schedule", "plateau") == "cosine":
            cos = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=max(1, int(self.hparams.max_epochs)), eta_min=1e-2 * self.hparams.lr
            )
            return {"optimizer": opt, "lr_scheduler": {"scheduler": cos, "interval": "epoch"}}
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, factor=self.hparams.lr_decay, patience=self.hparams.lr_patience
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_loss"}}


def model_from_checkpoint(path: str | Path, lattice: Lattice | None = None) -> BPModel:
    """Rebuild a :class:`BPModel` from a Lightning checkpoint without running pickled code.

    The file is read with ``torch.load(weights_only=True)``; ``lattice`` (default: the
    training lattice) must be of the same kind.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    hp = ckpt.get("hyper_parameters")
    if not hp or "model_config" not in hp:
        raise ValueError(f"{path} is not an mllg training checkpoint (no model_config).")
    lat_hp = hp["lattice"]
    if lattice is None:
        lattice = Lattice(**lat_hp)
    elif lattice.kind != lat_hp["kind"]:
        raise ValueError(
            f"the checkpoint {path} was trained on a {lat_hp['kind']!r} lattice and cannot be "
            f"used on a {lattice.kind!r} lattice."
        )
    model = BPModel(lattice, ModelConfig.from_dict(hp["model_config"]))
    state = {k[len("model.") :]: v for k, v in ckpt["state_dict"].items() if k.startswith("model.")}
    check_state_dict(model, state, str(path))
    model.load_state_dict(state)
    return model.eval()


def train(
    data: FieldData | str | Path | list,
    config: TrainConfig,
    out_dir: str | Path,
    init: BPModel | None = None,
    resume: bool = False,
) -> tuple[BPModel, dict]:
    """Train one model; write checkpoints, CSV logs, the exported model and test metrics.

    Output layout in ``out_dir``: ``checkpoints/best.ckpt`` (lowest validation loss),
    ``checkpoints/last.ckpt`` (end of the latest epoch), ``logs/`` (CSV),
    ``model/`` (:func:`mllg.nn.save_model`), ``metrics.json``, ``parity.png``.
    Returns the best model (lowest validation loss) and the metrics dict.

    ``resume``: continue from ``checkpoints/last.ckpt`` when it exists (a job killed at
    its walltime): weights, optimizer, schedule, epoch counter, early-stopping and
    best-checkpoint state are restored, so the result equals an uninterrupted run's up to
    floating-point reduction order. The caller makes sure the checkpoint belongs to the
    same data and settings.

    ``init`` (a warm start, e.g. the previous iteration of a learning loop): a model of
    the same :class:`ModelConfig` whose weights, feature normalization, field scale and
    pair couplings are the starting point, instead of fitting them to ``data``.
    """
    out_dir = Path(out_dir)
    torch.set_num_threads(config.threads)
    pl.seed_everything(config.seed, workers=True, verbose=False)
    mcfg = ModelConfig.from_dict(config.model)
    dm = FieldDataModule(
        data,
        config.batch_size,
        config.val_fraction,
        config.test_fraction,
        config.seed,
        mcfg.dtype,
        split_seed=config.split_seed,
    )
    model = BPModel(dm.data.lattice, mcfg)
    if init is None:
        fit_normalization(model, dm.data, dm.train_idx)
    else:
        if init.config.to_dict() != mcfg.to_dict():
            raise ValueError(
                "the warm-start model has another model configuration than the training "
                f"settings ({init.config.to_dict()} vs {mcfg.to_dict()})."
            )
        model.load_state_dict(init.state_dict())
    module = FieldRegression(
        model,
        lr=config.lr,
        energy_weight=config.energy_weight,
        augment_point_group=config.augment_point_group,
        augment_time_reversal=config.augment_time_reversal,
        lr_schedule=config.lr_schedule,
        max_epochs=config.max_epochs,
        seed=config.seed,
    )
    ckpt = ModelCheckpoint(
        dirpath=out_dir / "checkpoints",
        filename="best",
        monitor="val_loss",
        save_top_k=1,
        save_last=True,
    )
    last = out_dir / "checkpoints" / "last.ckpt"
    version = 0
    if resume and last.exists():  # one CSV log per attempt: logs/version_<k>
        version = len(list((out_dir / "logs").glob("version_*")))
    trainer = pl.Trainer(
        max_epochs=config.max_epochs,
        accelerator="gpu" if config.device == "cuda" else "cpu",
        devices=1,
        callbacks=[EarlyStopping("val_loss", patience=config.patience), ckpt],
        logger=CSVLogger(out_dir, name="logs", version=version),
        inference_mode=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        gradient_clip_val=config.grad_clip or None,
        gradient_clip_algorithm="norm",
    )
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=last if resume and last.exists() else None)
    train_time = time.perf_counter() - t0
    best = model_from_checkpoint(ckpt.best_model_path, dm.data.lattice)
    save_model(best, out_dir / "model", extra={"train": config.to_dict()})
    test = dm.test_idx if len(dm.test_idx) else dm.val_idx
    d = dm.data
    metrics = evaluate(
        best,
        d.spins[test],
        d.fields[test],
        None if d.energy is None else d.energy[test],
        out_dir=out_dir,
    )
    metrics.update(
        {
            "n_frames_train": int(len(dm.train_idx)),
            "n_frames_val": int(len(dm.val_idx)),
            "n_frames_test": int(len(dm.test_idx)),
            "test_frames": [int(i) for i in test],
            "n_sites": int(d.lattice.N),
            "epochs": int(trainer.current_epoch),
            "train_time_s": train_time,
            "n_features": int(best.descriptor.n_features),
            "n_parameters": int(sum(p.numel() for p in best.parameters())),
        }
    )
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return best, metrics


# ---------------------------------------------------------------------------- evaluation
def field_metrics(
    spins: NDArray, pred: NDArray, ref: NDArray, energy_pred=None, energy_ref=None
) -> dict:
    """Relative RMSE and R^2 (per component) of the perpendicular fields (module docstring)."""
    hp, hr = perpendicular(pred, spins), perpendicular(ref, spins)
    d = hp - hr
    out = {
        "perp_rel_rmse": float(np.sqrt((d**2).sum() / (hr**2).sum())),
        "perp_rmse": float(np.sqrt((d**2).sum(-1).mean())),
        "perp_r2": float(1 - (d**2).sum() / ((hr - hr.reshape(-1, 3).mean(0)) ** 2).sum()),
    }
    out["torque_rel_rmse"] = out["perp_rel_rmse"]
    for a, name in enumerate("xyz"):
        ra = hr[..., a]
        out[f"perp_r2_{name}"] = float(1 - (d[..., a] ** 2).sum() / ((ra - ra.mean()) ** 2).sum())
        out[f"perp_rmse_{name}"] = float(np.sqrt((d[..., a] ** 2).mean()))
    if energy_pred is not None and energy_ref is not None:
        n = spins.shape[-2]
        de = (np.asarray(energy_pred) - np.asarray(energy_ref)) / n
        out["energy_mae_per_site"] = float(np.abs(de - de.mean()).mean())
    return out


def parity_plot(spins: NDArray, pred: NDArray, ref: NDArray, path: str | Path, title: str = ""):
    """Parity plot of the perpendicular field components (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hp = perpendicular(pred, spins).reshape(-1, 3)
    hr = perpendicular(ref, spins).reshape(-1, 3)
    fig, axes = plt.subplots(1, 3, figsize=(10.5, 3.6), constrained_layout=True)
    lim = float(np.abs(hr).max()) * 1.05
    for a, ax in enumerate(axes):
        ax.plot(hr[:, a], hp[:, a], ".", ms=1.5, alpha=0.4)
        ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.7)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_xlabel(f"reference $h_{{\\perp,{'xyz'[a]}}}$ (t)")
        ax.set_ylabel(f"ML $h_{{\\perp,{'xyz'[a]}}}$ (t)")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def evaluate(
    model: BPModel,
    spins: NDArray,
    fields: NDArray,
    energy: NDArray | None = None,
    out_dir: str | Path | None = None,
) -> dict:
    """Metrics of ``model`` on frames (F, N, 3); writes ``metrics_test.json`` and ``parity.png``."""
    out = model.predict(spins)
    conservative = model.potential == "conservative"
    e_pred = out["energy"][:, 0] if energy is not None and conservative else None
    metrics = field_metrics(spins, out["fields"], fields, e_pred, energy)
    metrics["n_frames_eval"] = int(np.asarray(spins).shape[0])
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics_test.json").write_text(json.dumps(metrics, indent=2))
        parity_plot(
            spins,
            out["fields"],
            fields,
            out_dir / "parity.png",
            f"rel. RMSE {metrics['perp_rel_rmse']:.3%}, $R^2$ = {metrics['perp_r2']:.4f}",
        )
    return metrics
