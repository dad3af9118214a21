"""ML field provider: same physics as the model, precision, settings, bad input."""

import numpy as np
import pytest
import torch

from mllg.lattice import make_lattice
from mllg.nn import BPModel, ModelConfig
from mllg.nn.provider import MLFieldProvider
from mllg.textures import random_spins


def _model(lat, descriptor=None, seed=0, hidden=(16, 16), **kw):
    torch.manual_seed(seed)
    cfg = ModelConfig(descriptor=descriptor or {"r_cut": 2.0}, hidden=hidden, **kw)
    m = BPModel(lat, cfg)
    with torch.no_grad():  # non-trivial normalization, exercised by every check
        m.feature_std.uniform_(0.5, 2.0)
        m.feature_mean.normal_()
        m.energy_scale.fill_(0.3)
        m.energy_shift.normal_()
    return m


CASES = [
    ("triangular", 6, {"r_cut": 2.0}, {}),  # bispectrum with triples
    ("triangular", 6, {"r_cut": 3.0, "inner_r_cut": 1.0, "triples": False}, {}),
    ("square", 5, {"r_cut": 2.0, "kind": "plain"}, {}),
    ("square", 4, {"r_cut": 2.0}, {"activation": "tanh"}),
    # the provider back-propagates through the MLP by hand: every activation and depth
    ("triangular", 5, {"r_cut": 2.0, "kind": "plain"}, {"activation": "relu", "hidden": (8,)}),
    ("square", 4, {"r_cut": 2.0, "kind": "plain"}, {"hidden": (12, 8, 6)}),
]


@pytest.mark.parametrize("kind,L,desc,kw", CASES)
def test_provider_matches_model_in_float64_and_float32(kind, L, desc, kw, rng):
    lat = make_lattice(kind, L)
    m = _model(lat, desc, **kw)
    s = random_spins(lat.N, rng)
    ref = m.predict(s)
    p64 = MLFieldProvider(m, dtype="float64")
    r64 = p64.solve(s)
    np.testing.assert_allclose(r64.fields, ref["fields"], rtol=0, atol=1e-12)
    assert r64.energy[0] == pytest.approx(ref["energy"][0], abs=1e-10)
    p32 = MLFieldProvider(m)  # float32 default
    h32 = p32(s)
    assert h32.dtype == np.float64 and h32.shape == (lat.N, 3)
    scale = np.abs(ref["fields"]).max()
    err = np.abs(h32 - ref["fields"]).max() / scale
    assert 1e-9 < err < 1e-5  # float32 rounding, not float64 (would be ~1e-16)
    e32 = MLFieldProvider(m).energy(s)
    assert e32[0] == pytest.approx(ref["energy"][0], rel=1e-5)
    # the original model is left untouched (dtype, gradients)
    assert m.dtype == torch.float64 and all(p.requires_grad for p in m.parameters())
    assert not any(p.requires_grad for p in p32.net.parameters())


def test_strip_generalized_potential_with_lead_columns(rng):
    lat = make_lattice("strip", 8, 3)
    m = _model(lat, {"r_cut": 2.0}, potential="generalized", lead_columns=2)
    s = random_spins(lat.N, rng)
    ref = m.predict(s)
    p = MLFieldProvider(m, dtype="float64")
    np.testing.assert_allclose(p(s), ref["fields"], atol=1e-12)
    np.testing.assert_allclose(p.energy(s), ref["energy"], atol=1e-10)


def test_provider_is_local_and_rejects_wrong_shapes(rng):
    lat = make_lattice("triangular", 12)
    m = _model(lat)
    p = MLFieldProvider(m, dtype="float64")
    s = random_spins(lat.N, rng)
    h = p(s)
    c = lat.index(6, 6)
    far = s.copy()
    far[c] = -far[c]
    shifts = np.array([(m, n) for m in (-1, 0, 1) for n in (-1, 0, 1)]) @ (12 * lat.primitive)
    rel = lat.positions[:, None] - lat.positions[c] + shifts[None]
    d = np.linalg.norm(rel, axis=-1).min(1)  # periodic distance to the flipped site
    changed = np.abs(p(far) - h).max(1) > 1e-12
    assert changed[c] and np.all(d[changed] <= 4.0 + 1e-9)  # 2 r_cut: G_i sees |r - r_i| <= 2
    assert not changed[d > 4.0 + 1e-9].any()
    with pytest.raises(ValueError, match="needs \\(144, 3\\)"):
        p(s[:10])
    with pytest.raises(ValueError, match="dtype"):
        MLFieldProvider(m, dtype="float16")


def test_provider_timings_and_threads(rng):
    lat = make_lattice("square", 6)
    p = MLFieldProvider(_model(lat), threads=1)
    assert torch.get_num_threads() == 1
    p(random_spins(lat.N, rng))
    assert p.calls == 1 and p.timings["forward"] > 0 and p.timings["backward"] > 0
    assert p.settings() == {"dtype": "float32", "device": "cpu", "kernels": True}


def test_compiled_network_step_matches_eager(rng):
    lat = make_lattice("square", 4)
    m = _model(lat, {"r_cut": 2.0, "kind": "plain"}, hidden=(8, 8), potential="generalized")
    s = random_spins(lat.N, rng)
    eager = MLFieldProvider(m, dtype="float64").solve(s)
    comp = MLFieldProvider(m, dtype="float64", compile=True).solve(s)
    np.testing.assert_allclose(comp.fields, eager.fields, rtol=0, atol=1e-12)
    np.testing.assert_allclose(comp.energies, eager.energies, rtol=0, atol=1e-12)


def test_network_step_in_site_blocks_equals_all_sites(rng):
    """Blocks of sites (per-site lead bias sliced along) give the all-sites result."""
    from mllg.nn.provider import _NetworkGradient

    lat = make_lattice("strip", 9, 4)
    m = _model(lat, {"r_cut": 2.0}, potential="generalized", lead_columns=2)
    s = torch.as_tensor(random_spins(lat.N, rng))[None]
    g = m.descriptor(s)[0].detach()
    whole_out, whole_grads = _NetworkGradient(m, block=None)(g)
    out, grads = _NetworkGradient(m, block=7)(g)  # 36 sites: 5 blocks of 7 and one of 1
    torch.testing.assert_close(out, whole_out, rtol=0, atol=1e-13)
    for a, b in zip(grads, whole_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13)
    assert len(grads) == 2 and grads[0].shape == (g.shape[1], lat.N)


@pytest.mark.parametrize(
    "kind,lx,ly,desc,kw",
    [
        ("triangular", 8, 7, {"r_cut": 2.0}, {}),  # bispectrum: features under autograd
        ("square", 6, 5, {"r_cut": 3.0, "kind": "plain"}, {}),
        ("strip", 9, 4, {"r_cut": 2.0}, {"potential": "generalized", "lead_columns": 2}),
        ("strip", 7, 5, {"r_cut": 2.0, "kind": "plain"}, {"potential": "generalized"}),
    ],
)
def test_fused_cpu_path_in_row_blocks_equals_the_autograd_path(
    kind, lx, ly, desc, kw, rng, monkeypatch
):
    """The fused path (kernels, network and adjoint per block of rows; blocks of 1 row
    (plain) or 2 rows (bispectrum) here, the last one partial) gives the fields and
    energies of the descriptor's torch operations under autograd (kernels=False), float64
    to 1e-12."""
    import mllg.nn.provider as prov

    lat = make_lattice(kind, lx, ly)
    m = _model(lat, desc, **kw)
    s = random_spins(lat.N, rng)
    ref = MLFieldProvider(m, dtype="float64", kernels=False)
    assert not ref.descriptor.kernels and not ref._fused
    want = ref.solve(s)
    np.testing.assert_allclose(want.fields, m.predict(s)["fields"], rtol=0, atol=1e-12)
    fused = MLFieldProvider(m, dtype="float64")
    assert fused._fused
    monkeypatch.setattr(prov, "_CPU_BLOCK", lx)
    got = fused.solve(s)
    np.testing.assert_allclose(got.fields, want.fields, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got.energies, want.energies, rtol=0, atol=1e-10)


@pytest.mark.parametrize(
    ("gpu", "gres", "n"),
    [
        (0, None, 0),
        (1, None, 1),
        ("2", "", 2),
        (0, "gpu:1", 1),
        (0, "gpu:a100:2", 2),
        (0, "nvme:1,gpu:3", 3),
        (1, "gpu:2", 2),
        (0, "tmpfs:1", 0),
    ],
)
def test_a_gpu_request_counts_in_either_slurm_form(gpu, gres, n):
    from mllg.devices import requested_gpus

    assert requested_gpus(gpu, gres) == n
