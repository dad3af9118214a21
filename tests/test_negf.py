"""Checks of the Kwant NEGF solver against independent routes (dense GF, ED, symmetry)."""

from __future__ import annotations

import numpy as np
import pytest
from closed_forms import single_site_between_leads

pytest.importorskip("kwant")

from mllg.electrons.base import Ensemble  # noqa: E402
from mllg.electrons.ed import ExactDiagonalization  # noqa: E402
from mllg.electrons.negf import (  # noqa: E402
    NEGF,
    chain_surface_g,
    ribbon_selfenergy,
    strip_negf,
)
from mllg.hamiltonian import SdHamiltonian  # noqa: E402
from mllg.lattice import Lattice  # noqa: E402
from mllg.textures import random_spins  # noqa: E402


def wall(Lx: int, W: int = 1, centre: float | None = None, width: float = 3.0) -> np.ndarray:
    """Bloch-type 180 deg wall along x: S_z = -tanh((x - X)/width), S_x = sech."""
    x = np.tile(np.arange(Lx), W).astype(float)
    c = (Lx - 1) / 2 if centre is None else centre
    th = 2 * np.arctan(np.exp((x - c) / width))
    return np.stack([np.sin(th), np.zeros_like(th), np.cos(th)], axis=1)


def perp(h: np.ndarray, s: np.ndarray) -> np.ndarray:
    return h - np.sum(h * s, axis=1, keepdims=True) * s


# ------------------------------------------------------------------ independent routes
@pytest.mark.parametrize(
    ("W", "periodic", "kT", "leads"),
    [
        (1, False, 0.0, {}),
        (1, False, 0.05, {}),
        (2, False, 0.0, {}),
        (3, True, 0.02, {}),
        (2, False, 0.0, {"t_lead": 2.0, "t_coupling": 0.7}),
    ],
)
def test_equilibrium_field_matches_dense_contour(W, periodic, kT, leads):
    """V = 0: Kwant/RGF field equals the dense-inverse field on another contour, to 1e-6.

    The dense route uses the analytic ribbon self-energies, the Kwant route the lead
    blocks of the finalized Kwant system; the last case has configurable lead hopping
    and lead-strip coupling different from t1.
    """
    spins = random_spins(7 * W, 3)
    kw = dict(J=1.5, mu=-0.4, kT=kT, periodic_y=periodic, **leads)
    h_kwant = strip_negf(7, W, **kw)(spins)
    h_dense = strip_negf(7, W, dense=True, **kw)(spins)
    assert np.abs(h_kwant).max() > 0.05  # nontrivial fields
    np.testing.assert_allclose(h_kwant, h_dense, atol=1e-6, rtol=0)


@pytest.mark.parametrize("bias", [0.0, 0.6])
def test_single_site_between_leads_matches_the_closed_form(bias):
    """Independent route (no Hamiltonian builder, no ``fields_from_rho``, no contour): one
    magnetic site along a generic direction between two chains, lead hopping 1.5,
    coupling 0.7; with ``t_c != t_lead`` the two spin levels ``-+J`` have different band
    densities of states, so the bias changes the field, and the majority level has a
    bound state below the band. Field ``J (n_maj - n_min) d`` and density from
    ``G = 1 / (E - eps - 2 t_c^2 g(E))``, integrated with scipy's ``quad``."""
    d, J, mu = np.array([0.3, -0.5, 0.8]), 1.3, -0.4
    kw = dict(J=J, mu=mu, t_lead=1.5, t_coupling=0.7)
    res = strip_negf(1, 1, bias=bias, **kw).solve((d / np.linalg.norm(d))[None])
    field, density = single_site_between_leads(J, d, mu, bias, 1.5, 0.7)
    assert np.abs(field).min() > 0.1
    np.testing.assert_allclose(res.fields[0], field, atol=1e-8, rtol=0)
    assert res.density[0] == pytest.approx(density, abs=1e-8)
    if bias:
        h0, _ = single_site_between_leads(J, d, mu, 0.0, 1.5, 0.7)
        assert np.abs(field - h0).max() > 1e-3  # the window term matters


def test_window_engines_agree():
    """Window term: Kwant scattering states (MUMPS and sparse) = RGF = dense G Gamma G^a."""
    spins = random_spins(12, 5)
    kw = dict(J=1.0, mu=-0.3, kT=0.02, bias=0.4)
    for bias in (-0.3, 0.3):  # right lead higher / left lead higher, at kT = 0
        kw0 = dict(J=1.0, mu=-0.3, bias=bias)
        np.testing.assert_allclose(
            strip_negf(6, 2, **kw0).field_parts(spins)[1],
            strip_negf(6, 2, dense=True, **kw0).field_parts(spins)[1],
            atol=1e-8,
        )
    _, w_rgf = strip_negf(6, 2, **kw).field_parts(spins)
    _, w_dense = strip_negf(6, 2, dense=True, **kw).field_parts(spins)
    assert np.abs(w_dense).max() > 1e-3
    np.testing.assert_allclose(w_rgf, w_dense, atol=1e-8, rtol=0)
    kw0 = dict(J=1.0, mu=-0.3, bias=0.4, n_nodes=8, tol=1e-5)  # kT = 0: few energies
    _, w_ref = strip_negf(6, 2, **kw0).field_parts(spins)
    for solver in ("mumps", "sparse"):
        # Kwant modes are normalised to unit current: sum_modes psi psi^+ = G Gamma G^a
        neg = strip_negf(6, 2, window="kwant", kwant_solver=solver, **kw0)
        _, w_kwant = neg.field_parts(spins)
        assert neg.last_nodes["window"] < 100
        np.testing.assert_allclose(w_kwant, w_ref, atol=1e-5, rtol=0)


def test_lead_selfenergies_agree():
    """Channel formula = Kwant selfenergy (real E) = decimation (complex z) = analytic ribbon."""
    neg = strip_negf(4, 3, periodic_y=True, t_lead=0.8, t_coupling=0.8)
    e = np.array([-2.5, -0.7, 0.3, 1.9])
    for lead in (0, 1):
        np.testing.assert_allclose(
            neg.lead_selfenergy(e, lead), neg.lead_selfenergy(e, lead, "kwant"), atol=1e-12
        )
        z = e + 0.2j
        np.testing.assert_allclose(
            neg.lead_selfenergy(z, lead), neg.lead_selfenergy(z, lead, "decimation"), atol=1e-12
        )
    # with t_coupling = t_lead the strip edge sees the same self-energy as the padding column
    np.testing.assert_allclose(
        neg.lead_selfenergy(z, 0), ribbon_selfenergy(z, 3, True, 0.8, 0.8), atol=1e-13
    )


def test_chain_surface_green_function():
    """Retarded root inside the band (Im g < 0, |t g| = 1); decaying root outside."""
    e = np.array([-1.5, 0.0, 1.2])
    g = chain_surface_g(e, 1.0)
    assert np.all(g.imag < 0)
    np.testing.assert_allclose(np.abs(g), 1.0)
    # surface DOS of a semi-infinite chain: -Im g / pi = sqrt(4 - E^2) / (2 pi)
    np.testing.assert_allclose(-g.imag / np.pi, np.sqrt(4 - e**2) / (2 * np.pi))
    assert abs(chain_surface_g(np.array([-3.0]), 1.0)[0] - (-3 + np.sqrt(5)) / 2) < 1e-14


def test_isolated_strip_equals_ed():
    """leads=False: the contour integral reproduces ED of the same strip (mu in a gap)."""
    lat = Lattice("strip", 6, 2, periodic_y=False)
    ham = SdHamiltonian(lat, J=1.2)
    spins = random_spins(lat.N, 11)
    eps = np.linalg.eigvalsh(ham.dense(spins))
    k = np.argmax(np.diff(eps[8:16])) + 8
    mu = 0.5 * (eps[k] + eps[k + 1])
    ens = Ensemble.grand_canonical(mu)
    h_negf = NEGF(ham, ens, leads=False)(spins)
    h_ed = ExactDiagonalization(ham, ens)(spins)
    np.testing.assert_allclose(h_negf, h_ed, atol=1e-8)


def test_weak_coupling_approaches_ed():
    """t_coupling -> 0: the open-system equilibrium field tends to ED of the isolated strip.

    mu sits mid-gap of the isolated strip, so the level broadening ~ t_c^2 does not move
    any level across mu; the deviation falls as t_c^2.
    """
    lat = Lattice("strip", 6, 1, periodic_y=False)
    ham = SdHamiltonian(lat, J=1.0)
    spins = random_spins(lat.N, 2)
    eps = np.linalg.eigvalsh(ham.dense(spins))
    inside = np.where((eps[:-1] > -1.8) & (eps[1:] < 1.8))[0]  # gaps inside the lead band
    k = inside[np.argmax(np.diff(eps)[inside])]
    mu = 0.5 * (eps[k] + eps[k + 1])
    ens = Ensemble.grand_canonical(mu)
    h_ed = ExactDiagonalization(ham, ens)(spins)
    dev = []
    tcs = np.array([0.1, 0.03, 0.01])
    for tc in tcs:
        h = NEGF(ham, ens, t_coupling=tc)(spins)
        dev.append(np.abs(h - h_ed).max())
    dev = np.array(dev)
    assert dev[-1] < 1e-4  # measured 2.2e-5
    # shrinks as t_c^2 (measured 2.2e-3, 1.9e-4, 2.2e-5)
    np.testing.assert_allclose(dev[:-1] / dev[1:], (tcs[:-1] / tcs[1:]) ** 2, rtol=0.3)


def test_bound_states_below_lead_band_are_filled():
    """Strong J: the majority band [-J-2, -J+2] lies below the lead band [-2, 2].

    Those states are bound states (no lead continuum); the complex contour must count
    them: the density deep in a ferromagnetic chain is ~1 electron per site.
    """
    spins = np.tile([0.0, 0.0, 1.0], (20, 1))
    neg = strip_negf(20, 1, J=4.5, mu=0.0)
    res = neg.solve(spins)
    n_mid = res.density[8:12]
    np.testing.assert_allclose(n_mid, 1.0, atol=0.05)
    # and the field is J * (n_up - n_down) along +z
    assert np.all(res.fields[8:12, 2] > 0.9 * 4.5)


# ------------------------------------------------------------------ symmetry and response
@pytest.mark.parametrize("bias", [0.0, 0.3, -0.5])
def test_uniform_ferromagnet_has_no_perpendicular_field(bias):
    d = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
    spins = np.tile(d, (2 * 8, 1))
    neg = strip_negf(8, 2, J=1.0, mu=-0.5, kT=0.01, bias=bias)
    h = neg(spins)
    assert np.abs(np.sum(h * spins, axis=1)).min() > 0.1  # a sizeable parallel field
    assert np.abs(perp(h, spins)).max() < 1e-9


@pytest.mark.parametrize(
    ("Lx", "width", "kw"),
    [
        (24, 3.0, dict(J=2.0, mu=-1.0, kT=0.1)),
        (64, 2.0, dict(J=3.0, mu=-3.0, kT=0.05, t_lead=2.0, t_coupling=2.0)),
    ],
)
def test_nonequilibrium_field_is_linear_in_bias_and_odd(Lx, width, kw):
    """Nonequilibrium part dh(V) = h(V) - h(0) of the perpendicular field on a wall.

    h(V) = J Tr[sigma (rho_eq(mu_<) + window)] and h(0) is the equilibrium field; the
    ratio <dh(0.2), dh(0.1)> / |dh(0.1)|^2 is within 5% of 2 and dh(-0.1) ~ -dh(0.1).
    The second case is the system of the NEGF-LLG runs (64-site chain, leads t = 2).
    kT smooths the Fabry-Perot resonances of the finite chain (spacing ~0.1-0.25); at
    kT = 0 the same ratios are 1.56 (24 sites) and 1.97 with <dh(-0.1), dh(0.1)> =
    +0.07 |dh(0.1)|^2 (64 sites): a part even in V, ~V^2, as large as the odd part at
    V = 0.1 (benchmarks/RESULTS.md).
    """
    spins = wall(Lx, width=width)
    neg = strip_negf(Lx, 1, tol=1e-9, **kw)
    h0 = perp(neg(spins), spins)
    dh = {}
    for v in (0.1, 0.2, -0.1):
        neg.bias = v
        dh[v] = perp(neg(spins), spins) - h0
    ref = np.sum(dh[0.1] ** 2)
    assert np.sqrt(ref) > 1e-3  # a torque is there
    ratio = np.sum(dh[0.2] * dh[0.1]) / ref
    flip = np.sum(dh[-0.1] * dh[0.1]) / ref
    assert abs(ratio - 2.0) < 0.1
    assert flip < -0.95


def test_quadrature_error_is_reported_and_controlled():
    spins = wall(16)
    loose = strip_negf(16, 1, J=2.0, mu=-1.0, bias=0.3, tol=1e-3, n_nodes=6)
    tight = strip_negf(16, 1, J=2.0, mu=-1.0, bias=0.3, tol=1e-10)
    h_loose, h_tight = loose(spins), tight(spins)
    err = loose.last_error["contour"] + loose.last_error["window"]
    assert 0 < err < 2e-3
    assert np.abs(h_loose - h_tight).max() <= err  # the estimate bounds the true error
    assert tight.last_nodes["contour"] > loose.last_nodes["contour"]


def test_batch_and_result_shapes():
    neg = strip_negf(5, 1, J=1.0, mu=-0.2, bias=0.2)
    batch = np.stack([random_spins(5, k) for k in range(3)])
    res = neg.solve(batch)
    assert res.fields.shape == (3, 5, 3) and res.rho.shape == (3, 5, 2, 2)
    assert np.all(np.isnan(res.energy))
    np.testing.assert_allclose(res.fields[1], neg(batch[1]), atol=1e-12)
    assert neg.name == "negf" and neg.attrs()["bias"] == 0.2
    from mllg.sampling import provider_attrs

    attrs = provider_attrs(neg)
    assert attrs["solver"] == "negf" and attrs["bias"] == 0.2 and attrs["t_lead"] == 1.0


# ------------------------------------------------------------------ bad input
def test_bad_input_messages():
    with pytest.raises(ValueError, match=r"W=0 must be an integer >= 1"):
        strip_negf(8, 0)
    with pytest.raises(ValueError, match=r"bias=0.2 needs leads=True"):
        strip_negf(8, 1, bias=0.2, leads=False)
    neg = strip_negf(8, 1, leads=False)
    with pytest.raises(ValueError, match=r"bias=0.1 needs leads=True"):
        neg.bias = 0.1
    with pytest.raises(ValueError, match=r"t_lead=0.3 leaves no propagating lead mode at mu=-1"):
        strip_negf(8, 1, mu=-1.0, t_lead=0.3)
    with pytest.raises(ValueError, match=r"grand canonical"):
        NEGF(SdHamiltonian(Lattice("strip", 4, 1, False)), Ensemble.canonical(0.5))
    with pytest.raises(ValueError, match=r"periodic_y=True needs a strip width W >= 3"):
        strip_negf(8, 2, periodic_y=True)
    with pytest.raises(ValueError, match=r"window='x'"):
        strip_negf(8, 1, window="x")


def test_spin_transfer_conserves_angular_momentum():
    """Steady state: the spin the local moments receive equals the spin-current divergence.

    For Kwant scattering states injected from the left lead at one energy (spin-
    independent leads, so total spin is conserved), ``sum_i J (S_i x m_i)`` equals half
    the difference of the sigma spin currents entering on the left and leaving on the
    right (Kwant's current operator). The orientation of Kwant's bond current is fixed
    by the charge current, which flows away from the injecting lead. The rate of change
    of the local spins is thus ``+S x h``: electrons that cross the wall from the +z into
    the -z domain hand +z angular momentum to the moments.
    """
    import kwant

    from mllg.hamiltonian import PAULI

    Lx, J = 16, 3.0
    spins = wall(Lx, width=2.0)
    neg = strip_negf(Lx, 1, J=J, mu=-3.0, t_lead=2.0, t_coupling=2.0)
    psi = kwant.wave_function(neg.fsyst, -3.0, params={"spins": spins})(0)
    p = psi.reshape(psi.shape[0], -1, 2)[:, neg._kwant_site]
    m = np.einsum("abc,micb->ia", PAULI, np.einsum("mia,mib->miab", p, p.conj())).real
    torque = np.sum(J * np.cross(spins, m), axis=0)
    tags = [tuple(s.tag) for s in neg.fsyst.sites]
    bonds = {(tags[i], tags[j]): k for k, (i, j) in enumerate(neg.fsyst.graph)}
    left, right = bonds[((0, 0), (-1, 0))], bonds[((Lx, 0), (Lx - 1, 0))]

    def current(onsite=np.eye(2)):  # noqa: B008
        op = kwant.operator.Current(neg.fsyst, onsite=onsite)
        return sum(op(mode) for mode in psi)

    charge = current()
    orient = np.sign(charge[left])  # so that orient * current is the left-to-right flow
    assert abs(charge[left]) > 0.05 and np.isclose(charge[left], charge[right])
    for a in range(3):
        j = current(PAULI[a])
        np.testing.assert_allclose(torque[a], 0.5 * orient * (j[left] - j[right]), atol=1e-8)
    assert torque[2] > 0.05


def test_sampling_writes_contract_store(tmp_path):
    """Random and Langevin NEGF-LLG walls at V = +-0.2, 0 in a contract zarr store.

    Labels are the solver's fields at the stored spins and bias; a second run from a
    fresh solver gives an identical store; the solver's bias is restored.
    """
    from mllg.analysis.domain_wall import fit_domain_wall
    from mllg.io import open_store
    from mllg.negf_sampling import sample_negf

    def solver():
        return strip_negf(12, 1, J=3.0, mu=-3.0, t_lead=2.0, t_coupling=2.0, tol=1e-6)

    volts = [0.2, -0.2, 0.0]
    kw = dict(noise=0.2, n_thermal=2, thermal=dict(n_steps=4, kT_spin=0.05, K=0.02))
    neg = solver()
    sample_negf(neg, volts, 2, seed=4, path=tmp_path / "a.zarr", **kw)
    again = sample_negf(solver(), volts, 2, seed=4, path=tmp_path / "b.zarr", **kw)
    st = open_store(tmp_path / "a.zarr")
    assert st.sizes == {"frame": 12, "site": 12, "vec": 3}
    assert st.attrs["solver"] == "negf" and st.attrs["t_lead"] == 2.0 and "bias" not in st.attrs
    assert st.attrs["t_coupling"] == 2.0 and st.attrs["leads"] == 1 and st.attrs["W"] == 1
    assert st.attrs["thermal_precession"] == 1 and st.attrs["thermal_K"] == 0.02
    np.testing.assert_array_equal(st["bias"].values, volts * 4)
    np.testing.assert_array_equal(st["origin"].values, [0] * 6 + [1] * 6)
    np.testing.assert_array_equal(st["thermal_bias"].values[6:], [0.2] * 3 + [-0.2] * 3)
    assert np.all(np.isnan(st["thermal_bias"].values[:6]))
    np.testing.assert_array_equal(st["fields"].values, again["fields"].values)
    np.testing.assert_array_equal(st["spins"].values[0], st["spins"].values[2])
    spins = st["spins"].values
    np.testing.assert_allclose(np.linalg.norm(spins, axis=-1), 1.0, atol=1e-12)
    for k in (4, 7, 11):  # random and thermal frames: labels = NEGF field at the frame's V
        neg.bias = float(st["bias"].values[k])
        np.testing.assert_allclose(st["fields"].values[k], neg(spins[k]), atol=1e-5)
    fit = fit_domain_wall(spins[9], neg.hamiltonian.lattice)  # a thermal wall is a wall
    assert 0.5 < fit.width < 6.0
    assert np.abs(st["fields"].values[0] - st["fields"].values[1]).max() > 1e-4  # V matters
    assert np.all(st["quad_error"].values < 1e-5) and np.all(st["quad_error"].values > 0)
    fresh = solver()
    fresh.bias = 0.1
    sample_negf(fresh, volts, 1, seed=1)
    assert fresh.bias == 0.1
    with pytest.raises(ValueError, match=r"thermal keys \['T'\] are not allowed"):
        sample_negf(fresh, volts, 1, n_thermal=1, thermal=dict(T=0.1))
    with pytest.raises(ValueError, match=r"n_configs \+ n_thermal must be >= 1"):
        sample_negf(fresh, volts, 0)


@pytest.mark.slow
def test_negf_llg_wall_moves_under_bias_only():
    """Direct NEGF-LLG on a 64-site chain: the relaxed wall stays at V = 0, moves at V != 0.

    Driven-wall convention (project decision): ``LLG(..., precession=+1)``, the spin
    angular-momentum equation ``dS/dt = +S x h - alpha S x (S x h)``. For V > 0 electrons
    flow from left (+z domain) to right and hand +z angular momentum to the moments, so
    the +z domain grows: the wall moves along +x, the electron flow. The displacement
    is odd in V, and linear (same v/V at V = 0.2 and 0.4, within 3%).
    """
    from mllg.analysis.domain_wall import domain_wall, fit_domain_wall
    from mllg.dynamics import LLG, ClassicalTerms

    lat = Lattice("strip", 64, 1, periodic_y=False)
    neg = strip_negf(64, 1, J=3.0, mu=-3.0, t_lead=2.0, t_coupling=2.0, tol=1e-5)
    cl = ClassicalTerms(K=0.01)
    s = domain_wall(lat, centre=30.0, width=2.0)
    relax = LLG(neg, alpha=0.5, dt=0.2, classical=cl, precession=1)
    for fr in relax.run(s, 300, every=300, energy=False):
        s = fr.spins
    x0 = fit_domain_wall(s, lat).position
    shift = {}
    for v in (0.0, 0.2, 0.4, -0.4):
        neg.bias = v
        llg = LLG(neg, alpha=0.1, dt=0.2, classical=cl, precession=1)
        last = list(llg.run(s, 200, every=200, energy=False))[-1]
        shift[v] = fit_domain_wall(last.spins, lat).position - x0
    assert abs(shift[0.0]) < 1e-3
    assert shift[0.4] > 0.3  # along the electron flow
    assert abs(shift[0.4] + shift[-0.4]) < 0.05 * shift[0.4]
    assert abs(shift[0.4] / (2 * shift[0.2]) - 1) < 0.03


def test_driven_wall_runs_direction_and_structure():
    """Library NEGF-LLG driver on a 16-site chain: no motion at V = 0, motion along the
    electron flow (+x for V > 0) with precession = +1, odd in V; the opposite direction
    with the design default precession = -1; bias restored; bad settings rejected.
    """
    from mllg.negf_sampling import driven_wall_runs

    neg = strip_negf(16, 1, J=3.0, mu=-3.0, t_lead=2.0, t_coupling=2.0, tol=1e-6, bias=0.1)
    kw = dict(n_steps=20, every=5, relax_steps=20)
    res = driven_wall_runs(neg, [0.0, 0.4, -0.4], **kw)
    v = {r["bias"]: r["velocity"] for r in res["runs"]}
    assert neg.bias == 0.1 and res["precession"] == 1
    assert abs(v[0.0]) < 1e-8 and v[0.4] > 0.01
    np.testing.assert_allclose(v[-0.4], -v[0.4], rtol=1e-3)
    run = res["runs"][1]
    assert len(run["time"]) == len(run["position"]) == 5 and run["max_quad_error"] < 1e-6
    assert run["velocity_err"] < 0.01 * abs(run["velocity"])
    back = driven_wall_runs(neg, [0.4], precession=-1, **kw)["runs"][0]["velocity"]
    np.testing.assert_allclose(back, -v[0.4], rtol=0.05)
    with pytest.raises(ValueError, match=r"every=30 must be an integer in \[1, n_steps // 2\]"):
        driven_wall_runs(neg, [0.1], n_steps=20, every=30)


def test_total_spin_torque_equals_landauer_spin_current():
    """Bias sign and normalisation of the window term against Kwant's transmission.

    For V > 0 electrons flow from the left (+z domain) to the right (-z domain); each
    transmitted electron hands +1 of S_z to the moments, so at small V
    ``sum_i (S_i x h_i)_z = T(mu) V / (2 pi)`` with T from ``kwant.smatrix``. The
    equilibrium part exerts no net torque (total spin is conserved).
    """
    import kwant

    Lx = 16
    spins = wall(Lx, width=2.0)
    neg = strip_negf(Lx, 1, J=3.0, mu=-3.0, t_lead=2.0, t_coupling=2.0, tol=1e-10)
    t_mu = kwant.smatrix(neg.fsyst, -3.0, params={"spins": spins}).transmission(1, 0)
    assert t_mu > 0.1
    torque0 = np.sum(np.cross(spins, neg(spins)), axis=0)
    assert np.abs(torque0).max() < 1e-9
    for v in (0.02, -0.02):
        neg.bias = v
        torque = np.sum(np.cross(spins, neg(spins)), axis=0)
        np.testing.assert_allclose(torque[2], t_mu * v / (2 * np.pi), rtol=0.02)


def test_langevin_sampling_with_negf_provider(tmp_path):
    """The project's Langevin-LLG sampler takes the NEGF provider; labels are NEGF fields."""
    from mllg.analysis.domain_wall import domain_wall
    from mllg.dynamics import ClassicalTerms
    from mllg.io import open_store
    from mllg.sampling import sample_llg

    lat = Lattice("strip", 12, 1, periodic_y=False)
    neg = strip_negf(12, 1, J=3.0, mu=-3.0, t_lead=2.0, t_coupling=2.0, bias=0.3, tol=1e-6)
    path = sample_llg(
        neg, lat, domain_wall(lat, width=2.0), tmp_path / "s.zarr", alpha=0.5, dt=0.2,
        kT=0.01, n_steps=4, every=2, classical=ClassicalTerms(K=0.01),
    )  # fmt: skip
    st = open_store(path)
    assert st.sizes["frame"] == 3 and st.attrs["bias"] == 0.3 and st.attrs["solver"] == "negf"
    s2 = st["spins"].values[2]
    # the stored fields are the total LLG field: NEGF plus the classical anisotropy field
    expected = neg(s2) + ClassicalTerms(K=0.01).fields(s2)
    np.testing.assert_allclose(st["fields"].values[2], expected, atol=1e-5)
