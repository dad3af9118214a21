import numpy as np
import pytest
from closed_forms import uniform_fm_square

from mllg import textures as tx
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.electrons.ed import mu_for_mean_filling
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import make_lattice

ENSEMBLES = [
    Ensemble.canonical(0.25, kT=0.0),
    Ensemble.canonical(0.4, kT=0.1),
    Ensemble.grand_canonical(-1.3, kT=0.0),
    Ensemble.grand_canonical(0.7, kT=0.05),
]


@pytest.mark.parametrize("ensemble", ENSEMBLES, ids=lambda e: f"{e.kind}-kT{e.kT}")
def test_fields_are_minus_energy_gradient(ensemble, rng):
    lat = make_lattice("triangular", 4)
    ed = ExactDiagonalization(SdHamiltonian(lat, t1=1.0, t2=0.15, J=2.0), ensemble)
    s0 = tx.random_spins(lat.N, rng)
    h = ed(s0)
    eps = 1e-4
    sites = [0, 5, 11]
    plus, minus, pairs = [], [], []
    for i in sites:
        for a in range(3):
            d = np.zeros_like(s0)
            d[i, a] = eps
            plus.append(s0 + d)
            minus.append(s0 - d)
            pairs.append((i, a))
    e_plus = ed.energy(np.array(plus))
    e_minus = ed.energy(np.array(minus))
    fd = -(e_plus - e_minus) / (2 * eps)
    exact = np.array([h[i, a] for i, a in pairs])
    assert np.linalg.norm(fd - exact) / np.linalg.norm(exact) < 1e-6


def test_canonical_density_counts_electrons_and_matches_grand_canonical(rng):
    lat = make_lattice("square", 6)
    ham = SdHamiltonian(lat, J=4.0)
    s = tx.random_spins(lat.N, rng)
    ens = Ensemble.canonical(0.3, kT=0.05)
    n_e = ens.n_electrons(lat.N)
    assert n_e == 22  # round(0.3 * 72)
    can = ExactDiagonalization(ham, ens).solve(s)
    assert can.density.sum() == pytest.approx(n_e, abs=1e-9)
    gc = ExactDiagonalization(ham, Ensemble.grand_canonical(can.mu[0], kT=0.05)).solve(s)
    np.testing.assert_allclose(gc.fields, can.fields, atol=1e-10)
    # F = Omega + mu N_e
    assert can.energy[0] == pytest.approx(gc.energy[0] + can.mu[0] * n_e, abs=1e-9)


def test_mu_for_mean_filling(rng):
    """One frame: the canonical mu. Several frames: the grand-canonical densities at the
    returned mu average to the target filling while each frame's density differs."""
    lat = make_lattice("square", 6)
    ham = SdHamiltonian(lat, J=6.0)
    frames = np.stack([tx.random_spins(lat.N, rng) for _ in range(3)] + [tx.neel(lat)])
    can = ExactDiagonalization(ham, Ensemble.canonical(22 / 72, kT=0.1)).solve(frames[0])
    mu_one = mu_for_mean_filling(ham, frames[0], 22 / 72, 0.1)
    assert mu_one == pytest.approx(can.mu[0], abs=1e-10)
    mu = mu_for_mean_filling(ham, frames, 0.45, 0.1)
    gc = ExactDiagonalization(ham, Ensemble.grand_canonical(mu, kT=0.1)).solve(frames)
    fill = gc.density.sum(-1) / (2 * lat.N)
    assert fill.mean() == pytest.approx(0.45, abs=1e-10)
    assert fill.std() > 1e-3
    with pytest.raises(ValueError, match="kT=0.0 must be > 0"):
        mu_for_mean_filling(ham, frames, 0.45, 0.0)
    with pytest.raises(ValueError, match="filling=1.0 must lie strictly"):
        mu_for_mean_filling(ham, frames, 1.0, 0.1)


@pytest.mark.parametrize("kind, filling, J", [("triangular", 0.25, 2.0), ("square", 0.485, 6.0)])
def test_uniform_fm_energy_equals_band_sum(kind, filling, J):
    lat = make_lattice(kind, 12)
    ens = Ensemble.canonical(filling)
    ed = ExactDiagonalization(SdHamiltonian(lat, J=J), ens)
    s = tx.ferromagnet(lat, direction=[0.3, -0.5, 0.8])
    k = lat.kgrid()
    nn = lat.shells(1.0)[0].offsets @ lat.primitive
    ek = -np.cos(k @ nn.T).sum(axis=1)
    levels = np.sort(np.concatenate([ek - J, ek + J]))
    band_sum = levels[: ens.n_electrons(lat.N)].sum()
    res = ed.solve(s)
    assert res.energy[0] == pytest.approx(band_sum, abs=1e-9)
    # uniform FM: the field is parallel to S everywhere
    perp = res.fields - np.sum(res.fields * s, axis=1, keepdims=True) * s
    assert np.abs(perp).max() < 1e-10


FM_ENSEMBLES = [
    Ensemble.grand_canonical(-0.7, kT=0.0),  # mu in a gap of the half-integer levels
    Ensemble.grand_canonical(-0.7, kT=0.1),
    Ensemble.canonical(0.3, kT=0.1),
]


@pytest.mark.parametrize("ensemble", FM_ENSEMBLES, ids=lambda e: f"{e.kind}-kT{e.kT}")
def test_uniform_fm_fields_and_energy_from_the_analytic_occupation(ensemble):
    """Independent route (no Hamiltonian builder, no ``fields_from_rho``): a ferromagnet
    along a generic direction has the bands ``-2(cos kx + cos ky) -+ J`` and the field
    ``J (n_maj - n_min) d`` on every site (a transposed rho_ii would flip its y part,
    a factor on J scale it, a wrong sign of the exchange reverse it)."""
    L, J, d = 6, 1.5, np.array([0.3, -0.5, 0.8])
    lat = make_lattice("square", L)
    res = ExactDiagonalization(SdHamiltonian(lat, J=J), ensemble).solve(
        tx.ferromagnet(lat, direction=d)
    )
    kw = {"mu": ensemble.mu} if ensemble.kind == "grand_canonical" else {}
    energy, field, mu = uniform_fm_square(L, J, d, ensemble.kT, filling=ensemble.filling, **kw)
    assert np.abs(field).min() > 0.05  # every component is nontrivial
    np.testing.assert_allclose(res.fields, np.broadcast_to(field, res.fields.shape), atol=1e-10)
    assert res.energy[0] == pytest.approx(energy, abs=1e-9)
    if ensemble.kT > 0:
        assert res.mu[0] == pytest.approx(mu, abs=1e-9)


def test_ordered_state_energies_from_design():
    lat = make_lattice("triangular", 24)
    quarter = ExactDiagonalization(SdHamiltonian(lat, J=2.0), Ensemble.canonical(0.25))
    states = {
        "fm": tx.ferromagnet(lat),
        "120": tx.three_sublattice_120(lat),
        "tetra": tx.tetrahedral(lat),
    }
    e = {k: quarter.energy(v) / lat.N for k, v in states.items()}
    assert e["tetra"] == pytest.approx(-2.2516, abs=1e-3)
    assert e["120"] == pytest.approx(-2.1886, abs=1e-3)
    assert e["fm"] == pytest.approx(-2.1284, abs=1e-3)
    assert min(e, key=e.get) == "tetra"
    half = ExactDiagonalization(SdHamiltonian(lat, J=6.0), Ensemble.canonical(0.5))
    e_half = {k: half.energy(v) / lat.N for k, v in states.items()}
    assert e_half["120"] == pytest.approx(-6.3502, abs=1e-3)
    assert e_half["tetra"] == pytest.approx(-6.3185, abs=1e-3)
    assert e_half["fm"] == pytest.approx(-6.0, abs=1e-3)
    assert min(e_half, key=e_half.get) == "120"


def test_tetrahedral_state_is_stationary_and_gapped():
    lat = make_lattice("triangular", 12)
    s = tx.tetrahedral(lat)
    res = ExactDiagonalization(SdHamiltonian(lat, J=2.0), Ensemble.canonical(0.25)).solve(s)
    perp = res.fields - np.sum(res.fields * s, axis=1, keepdims=True) * s
    assert np.abs(perp).max() < 1e-10  # an extremum of E: no torque
    i, j = lat.bonds(1)
    np.testing.assert_allclose(np.sum(s[i] * s[j], axis=1), -1 / 3, atol=1e-12)


def test_bad_ensembles_are_rejected():
    with pytest.raises(ValueError, match="filling"):
        Ensemble.canonical(1.2)
    with pytest.raises(ValueError, match="kT"):
        Ensemble.grand_canonical(0.0, kT=-1.0)
    with pytest.raises(ValueError, match="kind"):
        Ensemble("microcanonical")
    lat = make_lattice("square", 2)
    with pytest.raises(ValueError, match="N_e"):
        ExactDiagonalization(SdHamiltonian(lat), Ensemble.canonical(0.01))
