import numpy as np
import pytest

from mllg.lattice import Lattice, make_lattice


@pytest.mark.parametrize(
    "kind, counts, dists",
    [
        ("square", [4, 4, 4, 8], [1.0, np.sqrt(2), 2.0, np.sqrt(5)]),
        ("triangular", [6, 6, 6, 12], [1.0, np.sqrt(3), 2.0, np.sqrt(7)]),
    ],
)
def test_shell_sizes_and_distances(kind, counts, dists):
    lat = make_lattice(kind, 10)
    shells = lat.shells(dists[-1])
    assert [s.neighbours.shape[1] for s in shells] == counts
    np.testing.assert_allclose([s.distance for s in shells], dists, atol=1e-9)
    for s in shells:  # every neighbour really sits at that distance (minimal image)
        cart = s.offsets @ lat.primitive
        np.testing.assert_allclose(np.linalg.norm(cart, axis=1), s.distance)
        assert np.all(s.neighbours >= 0)
        # neighbour relation is symmetric: i in nb(j) for j in nb(i)
        back = s.neighbours[s.neighbours]
        assert np.all((back == np.arange(lat.N)[:, None, None]).any(axis=2))


def test_strip_open_along_x_periodic_or_open_along_y():
    lat = Lattice("strip", 6, 3, periodic_y=True)
    nb = lat.shells(1.0)[0].neighbours
    assert lat.periodic == (False, True)
    # sites at x = 0 have no left neighbour, sites at x = Lx-1 no right neighbour
    left = np.flatnonzero((lat.shells(1.0)[0].offsets == [-1, 0]).all(1))[0]
    right = np.flatnonzero((lat.shells(1.0)[0].offsets == [1, 0]).all(1))[0]
    assert np.all(nb[lat.x == 0, left] == -1) and np.all(nb[lat.x == 5, right] == -1)
    assert np.all(nb[lat.x > 0, left] >= 0)
    open_y = Lattice("strip", 6, 3, periodic_y=False)
    up = np.flatnonzero((open_y.shells(1.0)[0].offsets == [0, 1]).all(1))[0]
    assert np.all(open_y.shells(1.0)[0].neighbours[open_y.y == 2, up] == -1)
    i, j = open_y.bonds(1)
    assert i.size == 2 * (5 * 3 + 6 * 2)  # directed bonds of an open 6x3 grid


@pytest.mark.parametrize("kind, order", [("square", 8), ("triangular", 12), ("strip", 2)])
def test_point_group_is_a_group_of_isometries(kind, order):
    lat = make_lattice(kind, 6)
    group = lat.point_group
    assert len(group) == order
    assert np.array_equal(group[0], np.eye(2))
    metric = lat.primitive @ lat.primitive.T
    for g in group:
        np.testing.assert_allclose(g.T @ metric @ g, metric, atol=1e-12)  # preserves length
        assert any(np.array_equal(g @ h, group[0]) for h in group)  # has an inverse


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_site_permutations_map_bonds_to_bonds(kind):
    lat = make_lattice(kind, 6)
    i, j = lat.bonds(1)
    bonds = set(zip(i.tolist(), j.tolist()))
    for g in lat.point_group:
        perm = lat.site_permutation(g, centre=7)
        assert sorted(perm) == list(range(lat.N))
        assert perm[7] == 7
        assert {(perm[a], perm[b]) for a, b in bonds} == bonds


def test_bad_lattice_input():
    with pytest.raises(ValueError, match="kind"):
        Lattice("hexagon", 4, 4)
    with pytest.raises(ValueError, match="Lx=0"):
        Lattice("square", 0, 4)
    with pytest.raises(ValueError, match="strip width W=0"):
        Lattice("strip", 8, 0, periodic_y=False)
    with pytest.raises(ValueError, match="periodic_y"):
        Lattice("square", 4, 4, periodic_y=False)
