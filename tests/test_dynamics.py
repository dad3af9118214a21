import numpy as np
import pytest

from mllg import textures as tx
from mllg.analysis.structure import weight_fraction
from mllg.dynamics import LLG, ClassicalTerms, cayley_rotate
from mllg.electrons import Ensemble, ExactDiagonalization
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import make_lattice


def _ed(kind, L, J, filling):
    lat = make_lattice(kind, L)
    return lat, ExactDiagonalization(SdHamiltonian(lat, J=J), Ensemble.canonical(filling))


def test_cayley_rotation_solves_midpoint_equation(rng):
    a = tx.random_spins(50, rng)
    b = rng.normal(size=(50, 3))
    x = cayley_rotate(a, b)
    np.testing.assert_allclose(x - a, np.cross(b, a + x), atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-14)


@pytest.mark.parametrize("method", ["midpoint", "heun"])
def test_spin_norm_is_preserved_over_1e4_noisy_steps(method, rng):
    lat, ed = _ed("triangular", 3, 2.0, 0.25)
    llg = LLG(
        ed,
        alpha=0.3,
        dt=0.05,
        kT=0.2,
        method=method,
        seed=3,
        classical=ClassicalTerms(B=(0, 0, 0.5), K=0.2),
    )
    s = tx.random_spins(lat.N, rng)
    worst = 0.0
    for _ in range(10_000):
        s = llg.step(s)
        worst = max(worst, np.abs(np.linalg.norm(s, axis=1) - 1).max())
    assert worst < 1e-12


@pytest.mark.parametrize("method", ["midpoint", "heun"])
def test_energy_is_conserved_without_damping(method, rng):
    lat, ed = _ed("triangular", 6, 2.0, 0.25)
    llg = LLG(ed, alpha=0.0, dt=0.01, method=method)
    s0 = tx.normalize(tx.tetrahedral(lat) + 0.3 * rng.normal(size=(lat.N, 3)))
    frames = list(llg.run(s0, n_steps=1000, every=100))
    energies = np.array([f.energy for f in frames])
    drift = np.max(np.abs(energies - energies[0])) / abs(energies[0])
    assert drift < 1e-5
    # the dynamics is not trivial: the spins precess far from where they started
    assert np.abs(frames[-1].spins - s0).max() > 0.1


def test_damping_lowers_energy_and_zero_temperature_is_deterministic(rng):
    lat, ed = _ed("square", 4, 3.0, 0.4)
    s0 = tx.random_spins(lat.N, rng)
    runs = []
    for _ in range(2):
        llg = LLG(ed, alpha=0.5, dt=0.05)
        runs.append([f for f in llg.run(s0, n_steps=200, every=50)])
    e = [f.energy for f in runs[0]]
    assert all(b < a for a, b in zip(e, e[1:]))
    np.testing.assert_array_equal(runs[0][-1].spins, runs[1][-1].spins)


def test_same_seed_same_noise_different_seed_different_noise(rng):
    lat, ed = _ed("square", 2, 1.0, 0.5)
    s0 = tx.random_spins(lat.N, rng)

    def final(seed):
        llg = LLG(ed, alpha=0.2, dt=0.05, kT=0.5, seed=seed)
        return [f for f in llg.run(s0, n_steps=20, every=20)][-1].spins

    np.testing.assert_array_equal(final(7), final(7))
    assert np.abs(final(7) - final(8)).max() > 1e-3


def _zero_field(spins):
    return np.zeros_like(spins)


@pytest.mark.parametrize(
    "method, B, kT", [("midpoint", 1.0, 1.0), ("midpoint", 2.0, 0.5), ("heun", 1.0, 1.0)]
)
def test_langevin_single_spin_samples_boltzmann(method, B, kT):
    """Independent spins in a field B: <S_z> = coth(B/kT) - kT/B (Langevin function)."""
    n = 4000
    llg = LLG(
        _zero_field,
        alpha=0.5,
        dt=0.01,
        kT=kT,
        method=method,
        seed=11,
        classical=ClassicalTerms(B=(0.0, 0.0, B)),
    )
    s = tx.random_spins(n, 5)
    for _ in range(1000):  # burn-in, t = 10 >> relaxation time (1+a^2)/(2 a kT)
        s = llg.step(s)
    acc = np.zeros(n)
    n_samples = 0
    for k in range(3000):
        s = llg.step(s)
        if k % 10 == 0:
            acc += s[:, 2]
            n_samples += 1
    per_spin = acc / n_samples
    mean = per_spin.mean()
    err = per_spin.std(ddof=1) / np.sqrt(n)  # spins are independent
    x = B / kT
    expected = 1 / np.tanh(x) - 1 / x
    assert abs(mean - expected) < 4 * err + 2e-3, (mean, expected, err)
    # the field really polarises the spins (the check above is not vacuous)
    assert abs(mean) > 10 * err


def test_classical_terms_are_minus_gradient(rng):
    ct = ClassicalTerms(B=(0.1, -0.2, 0.3), K=0.7, axis=(1, 1, 0), K_hard=0.4, hard_axis=(0, 0, 1))
    s = tx.random_spins(5, rng)
    h = ct.fields(s)
    eps = 1e-6
    for i, a in [(0, 0), (2, 1), (4, 2)]:
        d = np.zeros_like(s)
        d[i, a] = eps
        fd = -(ct.energy(s + d) - ct.energy(s - d)) / (2 * eps)
        assert fd == pytest.approx(h[i, a], rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("p", [-1, 1])
def test_precession_sense_of_a_single_spin(p):
    """Undamped spin in B along z: S_x + i S_y rotates as exp(-i p B t) (dS/dt = p S x B)."""
    B, dt, n = 0.5, 0.01, 200
    llg = LLG(
        lambda s: np.zeros_like(s),
        alpha=0.0,
        dt=dt,
        precession=p,
        classical=ClassicalTerms(B=(0.0, 0.0, B)),
    )
    s0 = np.array([[np.sin(1.0), 0.0, np.cos(1.0)]])
    frames = list(llg.run(s0, n, every=n, energy=False))
    s = frames[-1].spins[0]
    phase = np.angle(s[0] + 1j * s[1])
    assert phase == pytest.approx(-p * B * dt * n, abs=1e-4)
    assert s[2] == pytest.approx(np.cos(1.0), abs=1e-12)


def test_default_precession_sign_is_the_design_convention():
    """The design notes fix the equilibrium equation ``dS/dt = -S x h - ...``: without a
    ``precession`` argument a spin in B along z rotates counter-clockwise (``+B t``)."""
    llg = LLG(_zero_field, alpha=0.0, dt=0.01, classical=ClassicalTerms(B=(0.0, 0.0, 0.5)))
    assert llg.precession == -1
    s = llg.step(np.array([[1.0, 0.0, 0.0]]))[0]
    assert np.sign(s[1]) == 1.0  # d S_y / dt = -(S x B)_y = +B S_x > 0


def _damped_spin_exact(t, B, alpha, theta0):
    """Closed form of ``dS/dt = -S x B - alpha S x (S x B)``, B along z, S(0) in the xz plane.

    The polar angle obeys ``dtheta/dt = -alpha B sin(theta)``, i.e.
    ``tan(theta/2) = tan(theta0/2) exp(-alpha B t)``; the azimuth advances at rate B.
    """
    theta = 2 * np.arctan(np.tan(theta0 / 2) * np.exp(-alpha * B * t))
    phi = B * t
    return np.array([np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.cos(theta)])


@pytest.mark.parametrize("method", ["midpoint", "heun"])
def test_damped_single_spin_converges_at_second_order_to_the_closed_form(method):
    """Both integrators are second order: halving dt divides the error at t = 2 by ~4.

    A first-order scheme (e.g. the corrector evaluating the rotation at S_n instead of
    the midpoint) halves it only. The default precession sign enters through the
    azimuth: with the opposite sign the error would be O(1).
    """
    B, alpha, theta0, t_end = 1.0, 0.5, 2.5, 2.0
    exact = _damped_spin_exact(t_end, B, alpha, theta0)
    errors = []
    for dt in (0.1, 0.05, 0.025):
        llg = LLG(
            _zero_field, alpha=alpha, dt=dt, method=method, classical=ClassicalTerms(B=(0, 0, B))
        )
        s = np.array([[np.sin(theta0), 0.0, np.cos(theta0)]])
        for _ in range(round(t_end / dt)):
            s = llg.step(s)
        errors.append(np.linalg.norm(s[0] - exact))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.8), (errors, orders)
    assert errors[-1] < 1e-2 * abs(np.cos(theta0) - exact[2])  # the spin really relaxed


def test_bad_llg_settings_are_rejected():
    with pytest.raises(ValueError, match="precession"):
        LLG(_zero_field, alpha=0.1, dt=0.1, precession=0)
    with pytest.raises(ValueError, match="dt"):
        LLG(_zero_field, alpha=0.1, dt=0.0)
    with pytest.raises(ValueError, match="kT"):
        LLG(_zero_field, alpha=0.1, dt=0.1, kT=-1)
    with pytest.raises(ValueError, match="method"):
        LLG(_zero_field, alpha=0.1, dt=0.1, method="euler")


@pytest.mark.slow
def test_damped_ed_llg_reaches_tetrahedral_state():
    lat, ed = _ed("triangular", 12, 2.0, 0.25)
    e_tetra = ed.energy(tx.tetrahedral(lat))
    llg = LLG(ed, alpha=1.0, dt=0.2, seed=0)
    frames = list(llg.run(tx.random_spins(lat.N, 1), n_steps=600, every=600))
    final = frames[-1]
    assert abs(final.energy - e_tetra) / abs(e_tetra) < 0.01
    assert weight_fraction(lat, final.spins, "M") > 0.8
