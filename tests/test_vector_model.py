"""Vector model ``h_i = sum_k [w_ik(G_i) S_{i+d_k} + u_ik(G_i) S_i x S_{i+d_k}]``:
equivariance, open-end masking, export, provider, training on a spin-transfer field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mllg.lattice import make_lattice
from mllg.nn import (
    BPModel,
    Committee,
    FieldData,
    FieldRegression,
    MLFieldProvider,
    ModelConfig,
    TrainConfig,
    evaluate,
    load_model,
    save_model,
    train,
)
from mllg.nn.model import vector_slots

SMALL = {"r_cut": 2.0}


def _unit(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    s = rng.normal(size=shape)
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def _vector(lattice, **kw) -> BPModel:
    torch.manual_seed(0)
    cfg = {"descriptor": SMALL, "hidden": (8,), "potential": "vector", **kw}
    model = BPModel(lattice, ModelConfig(**cfg))
    with torch.no_grad():  # non-trivial normalization buffers
        model.energy_scale.fill_(0.7)
        model.energy_shift.copy_(0.1 * torch.randn(model.n_out, dtype=model.dtype))
    return model


def _chain_walls(rng: np.random.Generator, n: int, lx: int) -> np.ndarray:
    """Wall-like textures on a chain: a rotating wall plus small tilts."""
    x = np.arange(lx)[None, :]
    c = rng.uniform(0.3, 0.7, (n, 1)) * (lx - 1)
    w = rng.uniform(1.5, 4.0, (n, 1))
    phi = rng.uniform(0, 2 * np.pi, (n, 1))
    theta = 2 * np.arctan(np.exp((x - c) / w))
    s = np.stack([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)], -1)
    s = s + 0.15 * rng.normal(size=s.shape)
    return s / np.linalg.norm(s, axis=-1, keepdims=True)


def _stt(spins: np.ndarray, b: float) -> np.ndarray:
    """``h_i = b S_i x (S_{i+1} - S_{i-1}) / 2`` on an open chain (missing ends = 0)."""
    pad = np.pad(spins, ((0, 0), (1, 1), (0, 0)))
    return b * np.cross(spins, 0.5 * (pad[:, 2:] - pad[:, :-2]))


def test_slots_and_masking_at_open_ends():
    """Slots are the displacements 0 < |d| <= vector_r_cut; neighbours outside an open
    strip are the zero padding spin, so with w = 1, u = 0 the field is the sum of the
    spins inside the strip."""
    lat = make_lattice("strip", 6, 1, periodic_y=False)
    offsets, idx = vector_slots(lat, 2.0)
    assert sorted(map(tuple, offsets.tolist())) == [(-2, 0), (-1, 0), (1, 0), (2, 0)]
    model = _vector(lat)
    assert model.n_out == 8 and model.n_energies == 0
    with torch.no_grad():  # w_k = 1, u_k = 0 for every slot
        model.net[-1].weight.zero_()
        model.net[-1].bias.zero_()
        model.energy_shift.copy_(torch.tensor([1.0] * 4 + [0.0] * 4, dtype=model.dtype))
    s = _unit(np.random.default_rng(0), (lat.N, 3))
    h = model.predict(s)["fields"]
    want = np.array([s[max(i - 2, 0) : i + 3].sum(0) - s[i] for i in range(lat.N)])
    np.testing.assert_allclose(h, want, atol=1e-12)
    assert (idx[0] == lat.N).sum() == 2 and (idx[1] == lat.N).sum() == 1  # masked slots
    # open edges of a strip: the y neighbours of the bottom row are masked, periodic wraps
    open_ = vector_slots(make_lattice("strip", 5, 3, periodic_y=False), 1.0)[1]
    wrap = vector_slots(make_lattice("strip", 5, 3, periodic_y=True), 1.0)[1]
    assert (open_[:5] == 15).sum() == 5 + 2 and (wrap[:5] == 15).sum() == 2
    assert len(vector_slots(make_lattice("strip", 5, 1, periodic_y=False), 2.0)[0]) == 4


@pytest.mark.parametrize("periodic_y", [True, False])
def test_exact_equivariance_under_spin_rotations(periodic_y):
    """h[R S] = R h[S] to 1e-10 in float64 for random SO(3) rotations (model and
    provider), with lead features on a strip."""
    lat = make_lattice("strip", 7, 3, periodic_y=periodic_y)
    model = _vector(lat, lead_columns=2, vector_r_cut=2.3)
    rng = np.random.default_rng(1)
    s = _unit(rng, (3, lat.N, 3))
    h = model.predict(s)["fields"]
    assert np.abs(h).max() > 1e-2
    prov = MLFieldProvider(model, dtype="float64")
    for seed in range(3):
        r = Rotation.random(random_state=seed).as_matrix()
        np.testing.assert_allclose(model.predict(s @ r.T)["fields"], h @ r.T, atol=1e-10)
        np.testing.assert_allclose(prov(s[0] @ r.T), h[0] @ r.T, atol=1e-10)


def test_translation_covariance_along_a_periodic_direction():
    """Shifting a configuration by one row of a y-periodic strip shifts the field."""
    lat = make_lattice("strip", 5, 4, periodic_y=True)
    model = _vector(lat)
    s = _unit(np.random.default_rng(2), (lat.N, 3))
    grid = s.reshape(4, 5, 3)
    shifted = np.roll(grid, 1, axis=0).reshape(-1, 3)
    h = model.predict(s)["fields"].reshape(4, 5, 3)
    np.testing.assert_allclose(
        model.predict(shifted)["fields"], np.roll(h, 1, axis=0).reshape(-1, 3), atol=1e-12
    )


def test_save_load_provider_committee(tmp_path, rng):
    """Export round trip on the same and a longer strip, the float32 provider (fields equal
    to the model's), energies (none) and the committee."""
    lat = make_lattice("strip", 8, 1, periodic_y=False)
    model = _vector(lat, lead_columns=2, vector_r_cut=3.0)
    s = _unit(rng, (2, lat.N, 3))
    out = model(torch.as_tensor(s))
    assert out["energy"].shape == (2, 0) and out["fields"].shape == (2, lat.N, 3)
    path = save_model(model, tmp_path / "m")
    loaded = load_model(path)
    assert loaded.config == model.config and loaded.config.vector_r_cut == 3.0
    np.testing.assert_allclose(loaded.predict(s)["fields"], model.predict(s)["fields"])
    big = make_lattice("strip", 20, 1, periodic_y=False)
    assert load_model(path, big).vector_index.shape == (20, 6)
    prov = MLFieldProvider(loaded)
    res = prov.solve(s[0])
    assert np.isnan(res.energy).all() and res.energies.shape == (0,)
    assert prov.energy(s[0]).shape == (0,)
    np.testing.assert_allclose(res.fields, model.predict(s[0])["fields"], atol=1e-5)
    com = Committee([model, loaded]).predict(s)
    np.testing.assert_allclose(com["sigma"], 0.0, atol=1e-12)


def test_time_reversal_augmentation_is_refused():
    """The bias breaks time reversal: no S -> -S augmentation for the vector model."""
    model = _vector(make_lattice("strip", 6, 1, periodic_y=False))
    with pytest.raises(ValueError, match="augment_time_reversal"):
        FieldRegression(model, augment_time_reversal=True)
    with pytest.raises(ValueError, match="vector_r_cut"):
        ModelConfig(potential="vector", vector_r_cut=0.5)


def test_fits_adiabatic_spin_transfer_field(tmp_path):
    """Synthetic current-induced field h_i = b S_i x (S_{i+1} - S_{i-1}) / 2 on chain walls:
    first order in the spin gradient and x-odd, so the vector model fits it (held-out
    perpendicular / torque relative RMSE < 5 %), while the generalized potential, a sum
    of rotation-invariant site scalars, cannot (> 50 %)."""
    rng = np.random.default_rng(3)
    lat = make_lattice("strip", 16, 1, periodic_y=False)
    s = _chain_walls(rng, 64, lat.Lx)
    data = FieldData(lat, s, _stt(s, 0.05))
    errs = {}
    for pot, epochs in (("vector", 60), ("generalized", 8)):
        cfg = TrainConfig(
            model=ModelConfig(descriptor=SMALL, hidden=(16,), potential=pot).to_dict(),
            lr=1e-2,
            batch_size=8,
            max_epochs=epochs,
            patience=epochs,
            lr_schedule="cosine",
        )
        model, metrics = train(data, cfg, tmp_path / pot)
        errs[pot] = metrics["torque_rel_rmse"]
    fresh = _chain_walls(np.random.default_rng(4), 16, lat.Lx)
    held_out = evaluate(load_model(tmp_path / "vector" / "model"), fresh, _stt(fresh, 0.05))
    assert errs["vector"] < 0.05 and held_out["torque_rel_rmse"] < 0.05, (errs, held_out)
    assert errs["generalized"] > 0.5, errs
