"""Analysis of spin textures and trajectories.

* :mod:`mllg.analysis.structure` -- spin structure factor S(q) by FFT on the finite
  grid of either lattice (triangular reciprocal lattice included), weights at
  high-symmetry points;
* :mod:`mllg.analysis.order` -- scalar chirality, domain sizes L(t) (first moment of S(q)
  around the ordering wavevectors, chiral domains), FM/AF local order and fractions,
  per-frame quench observables, growth exponents with error bars across seeds;
* :mod:`mllg.analysis.domain_wall` -- domain-wall position and velocity of a strip.
"""
