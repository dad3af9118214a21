"""Is the current-induced field of a domain wall a local spin-transfer torque?

Fits the nonequilibrium part of the NEGF field on perturbed walls of a chain,
``dh_i = h_i(V) - h_i(0)`` (perpendicular to S_i, units of t), to the two local
first-order-gradient forms with constant coefficients (bulk sites, 4 columns from each
lead left out)::

    dh_perp = a [g_i]_perp + b S_i x g_i,     g_i = (S_{i+1} - S_{i-1}) / 2 ~ dS/dx

In the LLG with precession ``+1`` the ``b`` term gives the adiabatic torque
``S x (S x g) = -g_perp`` that moves the wall. Neither form can come from a sum of local
rotation-invariant site energies (``-dE_A/dS`` or ``S x (-dE_B/dS)`` of the generalized
potential): such sums have no term linear in the gradient (``S . dS/dx = 0``).

Run::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/negf_torque_form.py
"""

from __future__ import annotations

import numpy as np

from mllg.electrons.negf import strip_negf
from mllg.lattice import Lattice
from mllg.negf_sampling import wall_configurations


def perp(h: np.ndarray, s: np.ndarray) -> np.ndarray:
    return h - (h * s).sum(-1, keepdims=True) * s


def main(Lx: int = 32, bias: float = 0.2, n: int = 12) -> None:
    # the demo driven system of config/driven_domain_wall.yaml
    neg = strip_negf(Lx, 1, J=3.0, mu=-3.0, kT=0.0, t_lead=2.0, t_coupling=2.0)
    walls = wall_configurations(Lattice("strip", Lx, 1, periodic_y=False), n, rng=1, noise=0.15)
    bulk = slice(4, Lx - 4)
    rows, target = [], []
    for s in walls:
        neg.bias = 0.0
        h0 = neg(s)
        neg.bias = bias
        dh = perp(neg(s) - h0, s)
        g = 0.5 * (np.roll(s, -1, 0) - np.roll(s, 1, 0))
        rows.append(np.stack([perp(g, s)[bulk], np.cross(s, g)[bulk]], -1).reshape(-1, 2))
        target.append(dh[bulk].reshape(-1))
    x, y = np.concatenate(rows), np.concatenate(target)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    r2 = 1 - np.sum((y - x @ coef) ** 2) / np.sum((y - y.mean()) ** 2)
    print(
        f"chain Lx={Lx}, V={bias}, {n} walls: a={coef[0]:.3e}, b={coef[1]:.3e}, R^2={r2:.3f}, "
        f"rms dh_perp={np.sqrt(np.mean(y**2)):.3e}"
    )


if __name__ == "__main__":
    main()
