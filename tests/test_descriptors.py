"""Invariance, sensitivity and group-theory checks of the descriptors."""

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from mllg.descriptors import (
    DescriptorConfig,
    cartesian_ops,
    invariant_tensors,
    irreps,
    make_descriptor,
)
from mllg.lattice import make_lattice
from mllg.textures import random_spins, tetrahedral, three_sublattice_120

LATTICES = [
    ("triangular", 6, 6, True),
    ("square", 6, 6, True),
    ("strip", 7, 6, True),
    ("strip", 7, 5, False),
]


def _desc(lat, **kw):
    return make_descriptor(lat, DescriptorConfig(**kw)).double()


def _g(desc, spins):
    return desc(torch.as_tensor(spins, dtype=torch.float64)).numpy()


def _group_table(lat):
    ops = lat.point_group
    table = np.zeros((len(ops), len(ops)), dtype=int)
    for a, ga in enumerate(ops):
        for b, gb in enumerate(ops):
            table[a, b] = next(c for c, gc in enumerate(ops) if np.array_equal(ga @ gb, gc))
    return table


@pytest.mark.parametrize("kind", ["triangular", "square", "strip"])
def test_irreps_are_orthogonal_irreducible_homomorphisms(kind):
    lat = make_lattice(kind, 6, 6)
    reps = irreps(lat)
    cart = cartesian_ops(lat)
    assert np.allclose(np.einsum("gab,gcb->gac", cart, cart), np.eye(2))
    table = _group_table(lat)
    n_g = len(lat.point_group)
    assert sum(d.shape[1] ** 2 for d in reps.values()) == n_g
    chars = np.array([np.trace(d, axis1=1, axis2=2) for d in reps.values()])
    assert np.allclose(chars @ chars.T / n_g, np.eye(len(reps)))  # Schur orthogonality
    for d in reps.values():
        prod = np.einsum("aij,bjk->abik", d, d)
        assert np.allclose(prod, d[table])
    t = invariant_tensors([reps["A2"], reps["A2"]])
    assert t.shape == (1, 1, 1)


def test_descriptor_sizes_and_dtypes():
    lat = make_lattice("triangular", 6, 6)
    d = make_descriptor(lat, DescriptorConfig(r_cut=2.0))
    # 18 centre bonds + 36 nearest-neighbour bonds + 24 elementary triangles in a 19-site hexagon.
    assert d.n_objects == 78
    s = random_spins(lat.N, 0)
    for dtype in (torch.float32, torch.float64):
        g = d(torch.as_tensor(s, dtype=dtype))
        assert g.dtype == dtype and g.shape == (lat.N, d.n_features)
    assert (
        d.multiplicity["E1"] * 2
        + d.multiplicity["E2"] * 2
        + sum(d.multiplicity[n] for n in ("A1", "A2", "B1", "B2"))
        == d.n_objects
    )


@pytest.mark.parametrize("kind,lx,ly,py", LATTICES)
@pytest.mark.parametrize("dkind", ["bispectrum", "plain"])
def test_spin_rotation_and_translation_invariance(kind, lx, ly, py, dkind, rng):
    lat = make_lattice(kind, lx, ly, periodic_y=py)
    desc = _desc(lat, kind=dkind, r_cut=2.0)
    s = random_spins(lat.N, rng)
    g0 = _g(desc, s)
    for seed in range(3):
        rot = Rotation.random(random_state=seed).as_matrix()
        assert np.allclose(_g(desc, s @ rot.T), g0, atol=1e-10, rtol=0)
    # translation by one lattice vector along every periodic direction
    if lat.periodic[1]:
        x, y = lat.x, lat.y
        shifted = lat.index(x, y + 1)  # S'[i + a2] = S[i]
        s2 = np.empty_like(s)
        s2[shifted] = s
        assert np.allclose(_g(desc, s2)[shifted], g0, atol=1e-10, rtol=0)
    if lat.periodic[0]:
        shifted = lat.index(lat.x + 2, lat.y)
        s2 = np.empty_like(s)
        s2[shifted] = s
        assert np.allclose(_g(desc, s2)[shifted], g0, atol=1e-10, rtol=0)


@pytest.mark.parametrize("kind,lx,ly,py", LATTICES)
@pytest.mark.parametrize("r_cut", [2.0, 3.0])
def test_point_group_invariance(kind, lx, ly, py, r_cut, rng):
    lat = make_lattice(kind, lx, ly, periodic_y=py)
    desc = _desc(lat, r_cut=r_cut)
    s = random_spins(lat.N, rng)
    g0 = _g(desc, s)
    centre = lat.index(lx // 2, ly // 2)
    for op in lat.point_group:
        perm = lat.site_permutation(op, centre)
        assert (perm >= 0).all() and len(set(perm)) == lat.N
        s2 = np.empty_like(s)
        s2[perm] = s
        g2 = _g(desc, s2)
        if kind == "strip" and not py:
            assert np.allclose(g2[centre], g0[centre], atol=1e-10, rtol=0)
        else:  # bijection of the torus: every site maps onto its image
            assert np.allclose(g2[perm], g0, atol=1e-10, rtol=0)


def test_plain_descriptor_is_not_point_group_invariant(rng):
    lat = make_lattice("triangular", 6, 6)
    desc = _desc(lat, kind="plain")
    s = random_spins(lat.N, rng)
    perm = lat.site_permutation(lat.point_group[1], 0)
    s2 = np.empty_like(s)
    s2[perm] = s
    assert not np.allclose(_g(desc, s2)[0], _g(desc, s)[0], atol=1e-3)


def test_sensitivity_to_chirality_and_order(rng):
    lat = make_lattice("triangular", 6, 6)
    desc = _desc(lat)
    no_chi = _desc(lat, chirality=False)
    # Reversing every spin keeps all bonds and flips every chirality. That is time
    # reversal, a symmetry of the equilibrium energy but not of the driven strip (bias),
    # so the descriptor deliberately keeps the overall chirality sign.
    s = random_spins(lat.N, rng)
    assert np.abs(_g(desc, s) - _g(desc, -s)).max(axis=1).min() > 1e-3
    assert np.allclose(_g(no_chi, s), _g(no_chi, -s), atol=1e-12)
    # A local chirality flip (domain of opposite chirality) inside a tetrahedral state.
    plus = tetrahedral(lat, 1)
    mixed = plus.copy()
    mixed[lat.x >= 3] *= -1  # right half: opposite chirality, same bonds inside each half
    assert np.abs(_g(desc, plus) - _g(desc, mixed)).max() > 0.1
    # The uniform states of opposite chirality are mirror images of each other (no
    # spin-orbit coupling: spatial mirrors act on positions only), hence equivalent.
    assert np.allclose(_g(desc, plus), _g(desc, tetrahedral(lat, -1)), atol=1e-10)
    g120 = _g(desc, three_sublattice_120(lat))
    assert np.abs(g120[0] - _g(desc, plus)[0]).max() > 0.1
    # every site of an ordered state has the same environment (up to symmetry)
    assert np.allclose(_g(desc, plus), _g(desc, plus)[0], atol=1e-10)
    assert np.allclose(g120, g120[0], atol=1e-10)


def test_sensitivity_to_small_local_change(rng):
    """Generic environments related by no symmetry get different descriptors."""
    lat = make_lattice("square", 6, 6)
    desc = _desc(lat)
    s = random_spins(lat.N, rng)
    g0 = _g(desc, s)
    for site in (1, lat.index(1, 1), lat.index(0, 2)):
        s2 = s.copy()
        s2[site] = random_spins(1, rng)[0]
        assert np.abs(_g(desc, s2)[0] - g0[0]).max() > 1e-4


def test_descriptor_is_differentiable(rng):
    lat = make_lattice("triangular", 6, 6)
    desc = _desc(lat)
    s = torch.as_tensor(random_spins(lat.N, rng), dtype=torch.float64).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: desc(x[None])[0, 0, ::17], (s,))


def test_bad_inputs():
    lat = make_lattice("square", 4, 4)
    with pytest.raises(ValueError, match="descriptor kind"):
        DescriptorConfig(kind="soap")
    with pytest.raises(ValueError, match="r_cut"):
        DescriptorConfig(r_cut=0.5)
    with pytest.raises(ValueError, match="unknown descriptor keys"):
        DescriptorConfig.from_dict({"rcut": 2})
    desc = make_descriptor(lat)
    with pytest.raises(ValueError, match="sites but the lattice has 16"):
        desc(torch.zeros(2, 9, 3))
    with pytest.raises(ValueError, match="spins must have shape"):
        desc(torch.zeros(2, 16, 2))


@pytest.mark.parametrize("triples", [True, False])
def test_multiscale_descriptor_invariance_and_size(triples, rng):
    lat = make_lattice("triangular", 8, 8)
    desc = _desc(lat, r_cut=4.0, inner_r_cut=2.0, triples=triples)
    # 60 centre bonds within r = 4, plus the 36 bonds and 24 triangles of the inner hexagon
    assert desc.n_objects == 60 + 36 + 24
    s = random_spins(lat.N, rng)
    g0 = _g(desc, s)
    rot = Rotation.random(random_state=7).as_matrix()
    assert np.allclose(_g(desc, s @ rot.T), g0, atol=1e-10, rtol=0)
    for op in lat.point_group:
        perm = lat.site_permutation(op, 9)
        s2 = np.empty_like(s)
        s2[perm] = s
        assert np.allclose(_g(desc, s2)[perm], g0, atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="inner_r_cut"):
        DescriptorConfig(r_cut=2.0, inner_r_cut=3.0)


def _ed(lat, J=2.0, filling=0.25):
    from mllg.electrons.base import Ensemble
    from mllg.electrons.ed import ExactDiagonalization
    from mllg.hamiltonian import SdHamiltonian

    return ExactDiagonalization(SdHamiltonian(lat, J=J), Ensemble.canonical(filling))


def test_chirality_mirror_images_are_equivalent_physically_and_in_the_descriptor(rng):
    """Group theory of the chirality sign, checked against exact diagonalization.

    Lattice mirrors (positions only) and time reversal are exact symmetries of the s-d
    energy: both flip every chirality, and both must leave E unchanged and map the
    fields. The descriptor is invariant under the mirrors, so the two tetrahedral states
    get equal descriptors; environments whose chiralities are reversed relative to the
    rest (not a symmetry) get different ones and different ED energies.
    """
    lat = make_lattice("triangular", 4, 4)
    ed = _ed(lat)
    desc = _desc(lat, r_cut=2.0)
    plus, minus = tetrahedral(lat, 1), tetrahedral(lat, -1)
    r_plus, r_minus = ed.solve(plus), ed.solve(minus)
    assert np.isclose(r_plus.energy[0], r_minus.energy[0], atol=1e-10)
    assert np.allclose(_g(desc, plus), _g(desc, minus), atol=1e-10)
    s = random_spins(lat.N, rng)
    r = ed.solve(s)
    mirrors = [op for op in lat.point_group if round(np.linalg.det(op)) == -1]
    assert len(mirrors) == 6
    chi = _desc(lat, kind="plain", r_cut=1.0, bond_cut=0.0)  # 6 bonds + 6 triangles
    for op in mirrors:
        perm = lat.site_permutation(op, 5)
        s2 = np.empty_like(s)
        s2[perm] = s
        r2 = ed.solve(s2)
        assert np.isclose(r2.energy[0], r.energy[0], atol=1e-10)
        assert np.allclose(r2.fields[perm], r.fields, atol=1e-10)
        assert np.allclose(_g(desc, s2)[perm], _g(desc, s), atol=1e-10)
        # the mirror image has the opposite total chirality around every site
        tri = slice(chi.n_objects - 6, None)
        assert np.allclose(_g(chi, s2)[perm][:, tri].sum(1), -_g(chi, s)[:, tri].sum(1))
    # time reversal: E[-S] = E[S], h[-S] = -h[S]
    r3 = ed.solve(-s)
    assert np.isclose(r3.energy[0], r.energy[0], atol=1e-10)
    assert np.allclose(r3.fields, -r.fields, atol=1e-10)
    # Relative chirality is physical: reverse the spins on one sublattice row pair
    # (a chiral domain inside the tetrahedral state) -> different energy and descriptor.
    mixed = plus.copy()
    mixed[lat.y >= 2] *= -1
    assert abs(ed.solve(mixed).energy[0] - r_plus.energy[0]) > 1e-3
    assert np.abs(_g(desc, mixed) - _g(desc, plus)).max() > 0.1


@pytest.mark.parametrize("triples", [True, False])
def test_chirality_relative_to_bond_pattern_is_kept(triples, rng):
    """Chirality sign relative to the bond pattern (not a lattice symmetry) is resolved.

    ``s`` and ``-s`` have equal bonds and opposite chiralities; for a generic ``s`` no
    lattice operation relates them (only time reversal, broken in the driven strip), so
    both bispectrum variants must separate them at every site.
    """
    lat = make_lattice("triangular", 6, 6)
    s = random_spins(lat.N, rng)
    d = _desc(lat, r_cut=2.0, triples=triples)
    assert np.abs(_g(d, s) - _g(d, -s)).max(axis=1).min() > 1e-3


# ---------------------------------------------------------------------------- golden sizes
# (n_objects, n_features) per configuration: structural counts fixed by the geometry and
# the group theory (irreps of the objects and invariant tensors of their products). The
# single nearest-neighbour ring of the square lattice (4 bonds = A1 + B1 + E), e.g., has
# A1, |f_B1|^2, |f_E|^2, f_B1 r_B1, f_E . r_E (degree <= 2) and f_B1 r_E r_E,
# f_E r_B1 r_E, r_B1 r_E r_E (degree 3): 8 features, 5 without the triples.
GOLDEN_CONFIGS = [
    {},
    {"triples": False},
    {"r_cut": 3.0},
    {"r_cut": 4.0, "inner_r_cut": 2.0},
    {"chirality": False},
    {"bond_cut": 0.0, "r_cut": 1.0},
    {"bond_cut": 0.0, "r_cut": 1.0, "chirality": False},
    {"bond_cut": 0.0, "r_cut": 1.0, "chirality": False, "triples": False},
    {"kind": "plain"},
]
GOLDEN_SIZES = {
    ("triangular", 8, 8, True): [
        (78, 261), (78, 96), (174, 577), (120, 395), (54, 177), (12, 38), (6, 16), (6, 7),
        (78, 78),
    ],
    ("square", 8, 8, True): [
        (48, 139), (48, 65), (140, 402), (84, 238), (24, 67), (8, 20), (4, 8), (4, 5), (48, 48),
    ],
    # {E, M_y}: only one-dimensional irreps (A1, A2), no degree-3 invariant exists
    ("strip", 9, 6, False): [
        (48, 69), (48, 69), (140, 205), (84, 121), (24, 33), (8, 11), (4, 5), (4, 5), (48, 48),
    ],
}  # fmt: skip


@pytest.mark.parametrize("geometry", list(GOLDEN_SIZES), ids=lambda g: g[0])
def test_golden_feature_counts(geometry):
    kind, lx, ly, py = geometry
    lat = make_lattice(kind, lx, ly, periodic_y=py)
    sizes = []
    for cfg in GOLDEN_CONFIGS:
        d = make_descriptor(lat, DescriptorConfig(**cfg))
        sizes.append((d.n_objects, d.n_features))
    assert sizes == GOLDEN_SIZES[geometry]


@pytest.mark.parametrize("kind", ["triangular", "square"])
def test_only_the_degree_3_invariants_tell_these_environments_apart(kind, rng):
    """Two nearest-neighbour rings with equal power spectra, related by no symmetry.

    The bonds ``b_k = S_0 . S_k`` around the ring (ordered by angle) of the two rings
    differ by the sign of their alternating component ``m (-1)^k``,
    ``m = mean_k (-1)^k b_k`` (the B irrep). That keeps the A1 coefficient and every
    degree-2 invariant (each irrep is unchanged up to its sign), so the descriptor
    without triples cannot tell the rings apart; no point-group operation flips B while
    fixing the E irreps, so the rings are not equivalent, and the degree-3 invariants
    (B x E x E) must separate them.
    """
    lat = make_lattice(kind, 6, 6)
    offsets, _ = lat.lattice_vectors(1.0)
    angle = np.arctan2(*(offsets @ lat.primitive).T[::-1])
    offsets = offsets[np.argsort(angle)]
    centre = lat.index(2, 3)
    ring = lat.index(2 + offsets[:, 0], 3 + offsets[:, 1])
    sign = (-1.0) ** np.arange(len(ring))
    u = rng.uniform(-0.3, 0.3, size=len(ring))  # generic A1 and E parts
    u -= np.mean(sign * u) * sign
    b, b_flip = u + 0.2 * sign, u - 0.2 * sign  # B component m = +-0.2
    envs = []
    for bonds in (b, b_flip):
        s = random_spins(lat.N, 4)
        s[centre] = [0.0, 0.0, 1.0]
        psi = rng.uniform(0, 2 * np.pi, size=len(ring))
        r = np.sqrt(1 - bonds**2)
        s[ring] = np.stack([r * np.cos(psi), r * np.sin(psi), bonds], axis=1)
        envs.append(s)
    cfg = {"r_cut": 1.0, "bond_cut": 0.0, "chirality": False}
    low = _desc(lat, triples=False, **cfg)
    full = _desc(lat, **cfg)
    g_low = [_g(low, s)[centre] for s in envs]
    g_full = [_g(full, s)[centre] for s in envs]
    np.testing.assert_allclose(g_low[0], g_low[1], atol=1e-12, rtol=0)
    assert np.abs(g_full[0] - g_full[1]).max() > 1e-3


# ---------------------------------------------------------------------------- reference
def _reference_object_values(desc, spins):
    """Slow reference: the original gather implementation (index tensors), (F, N, K)."""
    f = spins.shape[0]
    n = desc.lattice.N
    pad = torch.cat([spins, spins.new_zeros(f, 1, 3)], dim=1)
    parts = []
    if desc.bond_idx.shape[1]:
        parts.append((spins[:, :, None, :] * pad[:, desc.bond_idx, :]).sum(-1))
    if desc.tri_idx.shape[1]:
        sk = pad[:, desc.tri_idx[..., 0], :]
        sl = pad[:, desc.tri_idx[..., 1], :]
        parts.append((spins[:, :, None, :] * torch.linalg.cross(sk, sl, dim=-1)).sum(-1))
    fields = torch.cat(parts, dim=-1)
    fields = torch.cat([fields, fields.new_zeros(f, 1, fields.shape[-1])], dim=1)
    return fields.reshape(f, (n + 1) * fields.shape[-1])[:, desc.object_idx]


def _reference_features(desc, spins):
    """Slow reference: the original einsum bispectrum on the original basis order."""
    values = _reference_object_values(desc, spins)
    if desc.config.kind == "plain":
        return values
    c = values @ desc.basis.to(values.dtype)
    coef = {n: c[..., getattr(desc, f"cols_{n}")] for n in desc.names}
    out = []
    if "A1" in coef:
        out.append(coef["A1"][..., 0])
    refs = {"1": values.new_ones(values.shape[:2] + (1,))}
    for n, f in coef.items():
        if n != "A1":
            out.append((f * f).sum(-1))
            refs[n] = f.sum(-2) / np.sqrt(f.shape[-2])
    for n, r1, r2, name in desc._copy_terms:
        t = getattr(desc, name).to(values.dtype)
        b = torch.einsum("fnca,fnb,fne,kabe->fnck", coef[n], refs[r1], refs[r2], t)
        out.append(b.flatten(-2))
    for r1, r2, r3, name in desc._ref_terms:
        t = getattr(desc, name).to(values.dtype)
        out.append(torch.einsum("fna,fnb,fne,kabe->fnk", refs[r1], refs[r2], refs[r3], t))
    return torch.cat(out, dim=-1)


REFERENCE_LATTICES = [
    *LATTICES,
    ("triangular", 5, 7, True),
    ("strip", 9, 3, True),
    ("square", 3, 3, True),
]
REFERENCE_CONFIGS = [
    {},
    {"triples": False},
    {"kind": "plain"},
    {"kind": "plain", "r_cut": 4.0, "inner_r_cut": 2.0},
    {"r_cut": 3.0},
    {"r_cut": 4.0, "inner_r_cut": 2.0},
    {"chirality": False},
    {"bond_cut": 0.0, "r_cut": 1.0},
]


@pytest.mark.parametrize("kind,lx,ly,py", REFERENCE_LATTICES)
@pytest.mark.parametrize("cfg", REFERENCE_CONFIGS, ids=str)
def test_features_match_reference_implementation(kind, lx, ly, py, cfg, rng):
    """Same features, same order, as the original gather/einsum code (float64, 1e-12),
    for frames batched and single (to 1e-14), and float32 within rounding."""
    lat = make_lattice(kind, lx, ly, periodic_y=py)
    desc = _desc(lat, **cfg)
    s = torch.as_tensor(np.stack([random_spins(lat.N, rng) for _ in range(3)]))
    ref = _reference_features(desc, s)
    got = desc(s)
    assert got.shape == ref.shape == (3, lat.N, desc.n_features)
    assert float((got - ref).abs().max()) <= 1e-12
    # batched and single frames: equal to rounding (numpy 2.4.6 / torch 2.13 split the
    # batched products differently: 1-2 ulp, bitwise before)
    assert float((desc(s[1]) - got[1]).abs().max()) <= 1e-14 * float(got.abs().max())
    values = _reference_object_values(desc, s)
    assert float((desc.object_values(s) - values).abs().max()) <= 1e-12
    if desc.config.kind == "bispectrum":  # public irrep coefficients (F, N, copies, d)
        c = values @ desc.basis
        for n, f in desc.coefficients(values).items():
            assert float((f - c[..., getattr(desc, f"cols_{n}")]).abs().max()) <= 1e-12
    g32 = make_descriptor(lat, DescriptorConfig(**cfg)).float()(s.float())
    assert g32.dtype == torch.float32
    assert float((g32.double() - ref).abs().max()) <= 1e-4 * (1 + float(ref.abs().max()))


@pytest.mark.parametrize("kind,lx,ly,py", [LATTICES[0], LATTICES[3]])
@pytest.mark.parametrize("dkind", ["bispectrum", "plain"])
def test_gradients_match_reference_to_second_order(kind, lx, ly, py, dkind, rng):
    """dG/dS and the Hessian-vector products (create_graph=True, as in training) agree
    with autograd through the reference; gradcheck and gradgradcheck pass."""
    lat = make_lattice(kind, lx, ly, periodic_y=py)
    desc = _desc(lat, kind=dkind, r_cut=2.0)
    s = torch.as_tensor(np.stack([random_spins(lat.N, rng) for _ in range(2)]))
    s.requires_grad_(True)
    w = torch.as_tensor(rng.normal(size=(2, lat.N, desc.n_features)))
    u = torch.as_tensor(rng.normal(size=s.shape))

    def grads(fn):
        g = fn(s)
        e = (w * g).sum() + (w * g**2).sum()
        (d1,) = torch.autograd.grad(e, s, create_graph=True)
        (d2,) = torch.autograd.grad((d1 * u).sum(), s)
        return d1.detach(), d2

    a1, a2 = grads(desc)
    b1, b2 = grads(lambda x: _reference_features(desc, x))
    assert float((a1 - b1).abs().max()) <= 1e-10 * (1 + float(b1.abs().max()))
    assert float((a2 - b2).abs().max()) <= 1e-10 * (1 + float(b2.abs().max()))
    small = s[:1].detach().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: desc(x)[..., ::11], (small,))
    assert torch.autograd.gradgradcheck(lambda x: desc(x)[..., ::23], (small,))


@pytest.mark.parametrize("kind,lx,ly,py", REFERENCE_LATTICES)
@pytest.mark.parametrize("cfg", REFERENCE_CONFIGS[:5], ids=str)
def test_compiled_kernels_match_torch_values_and_gradients(kind, lx, ly, py, cfg, rng):
    """descriptor.kernels (mllg.kernels, the provider's CPU path): the same features and
    first derivatives as the torch operations, float64 to 1e-12 and float32 to rounding,
    batched frames; a second-order backward through the kernels raises."""
    lat = make_lattice(kind, lx, ly, periodic_y=py)
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 2e-5)):
        desc = make_descriptor(lat, DescriptorConfig(**cfg)).to(dtype)
        s = torch.as_tensor(np.stack([random_spins(lat.N, rng) for _ in range(3)]), dtype=dtype)
        w = torch.as_tensor(rng.normal(size=(3, lat.N, desc.n_features)), dtype=dtype)
        out = {}
        for on in (False, True):
            desc.kernels = on
            x = s.clone().requires_grad_(True)
            g = desc(x)
            (d,) = torch.autograd.grad((w * g).sum() + (w * g**2).sum(), x)
            out[on] = (g.detach(), d)
        for a, b in zip(out[False], out[True]):
            assert float((a - b).abs().max()) <= tol * (1 + float(a.abs().max()))
        assert out[True][0].dtype == dtype
    x = s.clone().requires_grad_(True)
    with pytest.raises(RuntimeError, match="first derivatives only"):
        torch.autograd.grad(desc(x).sum(), x, create_graph=True)
