import numpy as np
import pytest

from mllg import textures as tx
from mllg.hamiltonian import SdHamiltonian
from mllg.lattice import Lattice, make_lattice


def test_hermitian_and_update_matches_fresh_build(rng):
    lat = make_lattice("triangular", 6)
    ham = SdHamiltonian(lat, t1=1.0, t2=-0.3, t3=0.1, J=2.5)
    s1, s2 = tx.random_spins(lat.N, rng), tx.random_spins(lat.N, rng)
    H = ham.matrix(s1)
    assert abs(H - H.getH()).max() < 1e-14
    ham.update(H, s2)
    np.testing.assert_allclose(H.toarray(), ham.matrix(s2).toarray(), atol=1e-14)
    np.testing.assert_allclose(ham.dense(s2), ham.matrix(s2).toarray(), atol=1e-14)


def test_onsite_block_is_minus_J_S_dot_sigma():
    lat = make_lattice("square", 2)
    ham = SdHamiltonian(lat, t1=0.0, J=3.0)
    s = np.tile([0.0, 0.0, 1.0], (lat.N, 1))
    s[1] = [1.0, 0.0, 0.0]
    H = ham.dense(s)
    np.testing.assert_allclose(H[0:2, 0:2], -3.0 * np.diag([1.0, -1.0]))
    np.testing.assert_allclose(H[2:4, 2:4], -3.0 * np.array([[0, 1], [1, 0]]))


@pytest.mark.parametrize("kind", ["square", "triangular"])
def test_fm_spectrum_is_band_structure_shifted_by_J(kind):
    lat = make_lattice(kind, 6)
    ham = SdHamiltonian(lat, t1=1.0, t2=0.2, J=1.5)
    eps = np.linalg.eigvalsh(ham.dense(tx.ferromagnet(lat)))
    k = lat.kgrid()
    ek = np.zeros(lat.N)
    for shell, t in ((1, 1.0), (2, 0.2)):
        off = lat._shells_at_least(shell)[shell - 1].offsets @ lat.primitive
        ek -= t * np.cos(k @ off.T).sum(1)
    expect = np.sort(np.concatenate([ek - 1.5, ek + 1.5]))
    np.testing.assert_allclose(eps, expect, atol=1e-12)


def test_wrong_spin_shape_is_rejected():
    ham = SdHamiltonian(Lattice("square", 3, 3), J=1.0)
    with pytest.raises(ValueError, match="shape"):
        ham.matrix(np.zeros((8, 3)))
