import numpy as np
import pytest

from mllg import textures as tx
from mllg.analysis.order import (
    chiral_domain_length,
    fit_growth_exponent,
    nn_correlation,
    order_fractions,
    site_chirality,
    spin_domain_length,
    triangle_chirality,
)
from mllg.analysis.structure import kgrid_index, structure_factor, weight_fraction
from mllg.lattice import make_lattice


def test_structure_factor_sum_rule_and_translation_invariance(rng):
    lat = make_lattice("triangular", 9)
    s = tx.random_spins(lat.N, rng)
    sq = structure_factor(lat, s)
    assert sq.sum() == pytest.approx(lat.N)
    shifted = s[lat.index(lat.x + 2, lat.y - 1)]
    np.testing.assert_allclose(structure_factor(lat, shifted), sq, atol=1e-10)
    # direct sum over sites agrees with the FFT on the triangular reciprocal lattice
    q = lat.kgrid()[17]
    direct = np.sum(np.abs(np.exp(-1j * lat.positions @ q) @ s) ** 2) / lat.N
    assert sq[17] == pytest.approx(direct)


def test_ordered_states_peak_where_they_should():
    tri = make_lattice("triangular", 12)
    assert weight_fraction(tri, tx.tetrahedral(tri), "M") == pytest.approx(1.0)
    assert weight_fraction(tri, tx.three_sublattice_120(tri), "K") == pytest.approx(1.0)
    assert weight_fraction(tri, tx.three_sublattice_120(tri), "M") == pytest.approx(0.0)
    sq = make_lattice("square", 8)
    assert weight_fraction(sq, tx.neel(sq), "M") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="grid"):
        kgrid_index(make_lattice("triangular", 4), tri.high_symmetry_points()["K"])


def test_tetrahedral_chirality_is_uniform_and_flips_with_the_state():
    lat = make_lattice("triangular", 8)
    chi = triangle_chirality(lat, tx.tetrahedral(lat))
    np.testing.assert_allclose(chi, 4 / (3 * np.sqrt(3)), atol=1e-12)
    np.testing.assert_allclose(site_chirality(lat, tx.tetrahedral(lat, -1)), -4 / (3 * np.sqrt(3)))
    assert np.abs(triangle_chirality(lat, tx.ferromagnet(lat))).max() < 1e-12


def test_domain_lengths_of_ordered_and_split_states(rng):
    lat = make_lattice("triangular", 16)
    t = tx.tetrahedral(lat)
    assert np.isinf(chiral_domain_length(lat, t)) and np.isinf(spin_domain_length(lat, t, "M"))
    split = t.copy()
    split[lat.x >= 8] *= -1  # two chiral domains across the torus
    two = chiral_domain_length(lat, split)
    four = split.copy()
    four[(lat.y >= 8)] *= -1
    assert 4 < chiral_domain_length(lat, four) < two < 2 * lat.Lx
    # uncorrelated spins: flat S(q), <|q - Q|> = (2/3) q_cut over the disc q < q_cut = |b|/4
    flat = 2 * np.pi / (2 / 3 * np.linalg.norm(lat.reciprocal[0]) / 4)
    assert spin_domain_length(lat, tx.random_spins(lat.N, rng), "M") == pytest.approx(
        flat, rel=0.15
    )


def test_order_fractions_of_mixed_double_exchange_texture():
    lat = make_lattice("square", 10)
    s = tx.neel(lat)
    s[lat.x < 4] = [0.0, 0.0, 1.0]  # FM stripe of 4 columns, AF elsewhere
    assert nn_correlation(lat, s)[lat.x == 1] == pytest.approx(1.0)
    # columns 0..3 have >= 3 parallel neighbours (c_i >= 1/2); column 4 has 3 antiparallel
    assert order_fractions(lat, s, threshold=0.0)["ferro"] == pytest.approx(0.4)
    # next to the walls every other site has c_i = +-1/2: neither FM nor AF at threshold
    # 1/2 (columns 0, 3: half FM; 4, 9: half AF; 1, 2 FM; 5..8 AF)
    frac = order_fractions(lat, s)
    assert (frac["ferro"], frac["antiferro"], frac["other"]) == pytest.approx((0.3, 0.5, 0.2))


def test_growth_exponent_recovers_power_law(rng):
    t = np.geomspace(1, 1000, 40)
    seeds = np.exp(np.log(2.0 * t**0.5) + 0.05 * rng.normal(size=(6, t.size)))
    fit = fit_growth_exponent(t, seeds, 10, 1000)
    assert fit["n_seeds"] == 6
    assert abs(fit["exponent"] - 0.5) < 4 * fit["stderr"] + 1e-3
    assert 0 < fit["stderr"] < 0.05
    one = fit_growth_exponent(t, 3 * t, 1, 1000)
    assert one["exponent"] == pytest.approx(1.0) and one["stderr"] < 1e-10
    with pytest.raises(ValueError, match="window"):
        fit_growth_exponent(t, seeds, 2000, 3000)


def test_figures_are_written(tmp_path):
    from mllg.plotting import plot_growth, plot_series, plot_structure_factor, plot_texture

    lat = make_lattice("triangular", 12)
    s = tx.tetrahedral(lat)
    plot_texture(lat, s, tmp_path / "chi.png", colour="chirality")
    plot_structure_factor(lat, structure_factor(lat, s), tmp_path / "sq.png")
    t = np.geomspace(1, 100, 10)
    plot_growth(t, np.array([t**0.5, 1.1 * t**0.5]), tmp_path / "g.png")
    plot_series({"V=0.1": (t, 0.1 * t)}, tmp_path / "x.png", "t", "X")
    from mllg.plotting import plot_velocity, plot_wall_position

    plot_wall_position({"V=0.1": (t, 0.1 * t)}, tmp_path / "w.png", fits={"V=0.1": (0.1, 0.0)})
    plot_velocity(
        [0.1, 0.2],
        [0.01, 0.02],
        tmp_path / "v.png",
        stderr=[0.001, 0.001],
        reference=([0.1, 0.2], [0.012, 0.021], None),
    )
    big = make_lattice("square", 64)
    plot_texture(big, tx.neel(big), tmp_path / "big.png")  # sub-sampled arrows
    plot_texture(big, tx.neel(big), tmp_path / "order.png", colour="order")
    for name in ("chi", "sq", "g", "x", "w", "v", "big", "order"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000
    with pytest.raises(ValueError, match="colour"):
        plot_texture(lat, s, tmp_path / "bad.png", colour="hue")


def test_quench_series_of_ordered_and_random_frames(rng):
    from mllg.analysis.order import quench_series, seed_mean

    tri = make_lattice("triangular", 12)
    frames = np.stack([tx.random_spins(tri.N, rng), tx.tetrahedral(tri), tx.tetrahedral(tri, -1)])
    out = quench_series(tri, frames, "tetrahedral", chunk=2)  # chunks of frames agree
    assert set(out) >= {"length", "weight", "nn_correlation", "chiral_length", "chirality"}
    assert out["weight"][1:] == pytest.approx(1.0) and out["weight"][0] < 0.2
    assert out["chirality"][1:] == pytest.approx(1.0) and out["chirality"][0] < 0.7
    assert out["nn_correlation"][1:] == pytest.approx(-1 / 3)
    assert np.isinf(out["chiral_length"][1:]).all() and np.isfinite(out["length"][0])
    sq = make_lattice("square", 8)
    de = quench_series(sq, tx.neel(sq)[None], "ferro_af")
    assert de["antiferro"] == pytest.approx(1.0) and de["ferro"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="'120' state has no ordering wavevectors"):
        quench_series(sq, tx.neel(sq)[None], "120")
    mean, err = seed_mean(np.array([[1.0, 2.0], [3.0, 2.0]]))
    np.testing.assert_allclose(mean, [2.0, 2.0])
    np.testing.assert_allclose(err, [1.0, 0.0])


def test_local_order_labels_fm_af_and_wall_sites():
    from mllg.analysis.order import local_order, order_fractions

    lat = make_lattice("square", 10)
    s = tx.neel(lat)
    s[lat.x < 4] = [0.0, 0.0, 1.0]
    lab = local_order(lat, s)
    assert np.all(lab[(lat.x >= 1) & (lat.x <= 2)] == 1)
    assert np.all(lab[(lat.x >= 5) & (lat.x <= 8)] == -1)
    frac = order_fractions(lat, s)
    assert frac["ferro"] + frac["antiferro"] + frac["other"] == pytest.approx(1.0)
    # columns 0 and 3 (4 and 9) are FM (AF) on every other site: c_i = 1 or 1/2 (-1 or -1/2)
    assert frac["ferro"] == pytest.approx(0.3) and frac["antiferro"] == pytest.approx(0.5)
