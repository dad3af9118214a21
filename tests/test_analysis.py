from pathlib import Path

import matplotlib
import matplotlib.image
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


@pytest.fixture
def captured(monkeypatch):
    """Figures the plotting functions save, by file stem (``_save`` writes and closes)."""
    from mllg import plotting

    figures = {}
    save = plotting._save

    def keep(fig, path):
        figures[Path(path).stem] = fig
        save(fig, path)

    monkeypatch.setattr(plotting, "_save", keep)
    return figures


def _axes_pixels(fig, png):
    """RGB pixels of the saved PNG inside the (first) axes, without the colour bar."""
    img = matplotlib.image.imread(png)[..., :3]
    scale = img.shape[0] / (fig.get_figheight() * fig.dpi)  # savefig dpi / figure dpi
    box = fig.axes[0].get_window_extent()
    rows = slice(int(img.shape[0] - box.y1 * scale) + 2, int(img.shape[0] - box.y0 * scale) - 2)
    cols = slice(int(box.x0 * scale) + 2, int(box.x1 * scale) - 2)
    return img[rows, cols]


def _fraction_of_colour(pixels, rgb, tol=0.02):
    return float(np.mean(np.abs(pixels - np.asarray(rgb)[:3]).max(-1) < tol))


def test_texture_figures_show_the_texture(tmp_path, captured):
    """The saved texture maps carry the physics: every site of the tetrahedral state at
    the maximal chirality +4/(3 sqrt 3) (top colour of the map, nothing at the bottom),
    arrows = in-plane spin components; the Neel state at c_i = -1; sub-sampled arrows on
    a large lattice."""
    from mllg.plotting import plot_texture

    coolwarm = matplotlib.colormaps["coolwarm"]
    lat = make_lattice("triangular", 12)
    s = tx.tetrahedral(lat)
    plot_texture(lat, s, tmp_path / "chi.png", colour="chirality")
    ax = captured["chi"].axes[0]
    dots, arrows = ax.collections
    np.testing.assert_allclose(dots.get_offsets(), lat.positions)
    np.testing.assert_allclose(dots.get_array(), 4 / (3 * np.sqrt(3)), rtol=1e-12)
    assert dots.get_clim() == pytest.approx((-4 / (3 * np.sqrt(3)), 4 / (3 * np.sqrt(3))))
    np.testing.assert_allclose(np.c_[arrows.U, arrows.V], s[:, :2])
    pixels = _axes_pixels(captured["chi"], tmp_path / "chi.png")
    assert _fraction_of_colour(pixels, coolwarm(1.0)) > 0.02  # ~6 %: markers, arrows, white
    assert _fraction_of_colour(pixels, coolwarm(0.0)) == 0.0
    big = make_lattice("square", 64)
    plot_texture(big, tx.neel(big), tmp_path / "order.png", colour="order")
    ax = captured["order"].axes[0]
    dots, arrows = ax.collections
    np.testing.assert_array_equal(dots.get_array(), -1.0)
    # arrows on every second site along each axis (stride ceil(64 / 32) = 2)
    assert arrows.N == 32 * 32
    np.testing.assert_array_equal(arrows.get_offsets() % 2, 0)
    pixels = _axes_pixels(captured["order"], tmp_path / "order.png")
    assert _fraction_of_colour(pixels, coolwarm(0.0)) > 0.02
    assert _fraction_of_colour(pixels, coolwarm(1.0)) == 0.0
    with pytest.raises(ValueError, match="colour"):
        plot_texture(lat, s, tmp_path / "bad.png", colour="hue")


def test_structure_factor_figure_peaks_at_the_m_points(tmp_path, captured):
    """The plotted S(q) of the tetrahedral state is N/3 = 48 at the three M points (and
    their images in the plotted zone) and zero elsewhere."""
    from mllg.plotting import plot_structure_factor

    lat = make_lattice("triangular", 12)
    plot_structure_factor(lat, structure_factor(lat, tx.tetrahedral(lat)), tmp_path / "sq.png")
    q = captured["sq"].axes[0].collections[0]
    value, points = np.asarray(q.get_array()), np.asarray(q.get_offsets())
    peak = value > 1e-6
    assert value[peak] == pytest.approx(lat.N / 3)
    # q . a_j / pi integers, not both even: M points (time-reversal invariant, not Gamma)
    phase = points[peak] @ lat.primitive.T / np.pi
    np.testing.assert_allclose(phase, np.round(phase), atol=1e-9)
    assert not np.any(np.all(np.round(phase).astype(int) % 2 == 0, axis=1))
    assert peak.sum() >= 6  # the three M points and images inside the plotted zone


def test_curve_figures_plot_their_data(tmp_path, captured):
    """Growth, series, wall position and velocity figures plot the given numbers: seed
    mean and standard error, the reference slopes through the middle point, the fitted
    wall line ``x0 + v t``, both velocity curves and the zero line."""
    from mllg.plotting import plot_growth, plot_series, plot_velocity, plot_wall_position

    t = np.geomspace(1, 100, 10)
    seeds = np.array([t**0.5, 1.1 * t**0.5])
    plot_growth(t, seeds, tmp_path / "g.png")
    ax = captured["g"].axes[0]
    (bars,) = ax.containers
    np.testing.assert_allclose(bars.lines[0].get_xydata(), np.c_[t, seeds.mean(0)])
    err = seeds.std(0, ddof=1) / np.sqrt(2)
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose([seg[1, 1] - seg[0, 1] for seg in segments], 2 * err)
    slopes = {}
    for line in ax.lines[1:]:
        x, y = line.get_xydata().T
        slopes[line.get_label()] = np.polyfit(np.log(x), np.log(y), 1)[0]
        assert np.interp(t[5], x, y) == pytest.approx(seeds.mean(0)[5])
    assert slopes == pytest.approx({"$t^{1}$": 1.0, "$t^{1/2}$ (Allen-Cahn)": 0.5})
    assert ax.get_xscale() == ax.get_yscale() == "log"
    plot_series({"V=0.1": (t, 0.1 * t)}, tmp_path / "x.png", "t", "X")
    line = captured["x"].axes[0].lines[0]
    np.testing.assert_allclose(line.get_xydata(), np.c_[t, 0.1 * t])
    plot_wall_position(
        {"V=0.1": (t, 0.1 * t + 0.3)}, tmp_path / "w.png", fits={"V=0.1": (0.1, 0.2)}
    )
    data, fit = captured["w"].axes[0].lines
    np.testing.assert_allclose(data.get_xydata(), np.c_[t, 0.1 * t + 0.3])
    np.testing.assert_allclose(fit.get_xydata(), np.c_[t, 0.2 + 0.1 * t])
    assert fit.get_color() == data.get_color()
    plot_velocity(
        [0.1, 0.2],
        [0.01, 0.02],
        tmp_path / "v.png",
        stderr=[0.001, 0.001],
        reference=([0.1, 0.2], [0.012, 0.021], None),
    )
    ax = captured["v"].axes[0]
    ml, ref = ax.containers
    np.testing.assert_allclose(ml.lines[0].get_xydata(), [[0.1, 0.01], [0.2, 0.02]])
    np.testing.assert_allclose(ref.lines[0].get_xydata(), [[0.1, 0.012], [0.2, 0.021]])
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["ML-LLG", "NEGF-LLG"]
    assert any(np.allclose(line.get_ydata(), 0.0) for line in ax.lines)  # v = 0 line
    for name in ("g", "x", "w", "v"):  # written as PNG at 120 dpi
        fig = captured[name]
        img = matplotlib.image.imread(tmp_path / f"{name}.png")
        assert img.shape[:2] == (round(fig.get_figheight() * 120), round(fig.get_figwidth() * 120))


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
