"""Registry of the ordered states the studies look for: one entry per name.

Each :class:`OrderedState` says on which lattice the state lives, the period its
lattice size must have, its ordering wavevectors (a high-symmetry point of the
Brillouin zone), its reference texture, how a texture is coloured in the figures and
which length is the domain size L(t) of a quench. The workflow key ``analyze.order``,
the config checks, :func:`mllg.analysis.order.quench_series` and the figures all read
this registry, so a new state is one new entry here.

Lengths (:mod:`mllg.analysis.order`): ``spin`` is ``2 pi / <|q - Q|>`` of the spin
structure factor around the ordering wavevectors Q; ``chiral`` the same for the
structure factor of the scalar chirality (the Z2 domains of the tetrahedral state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from mllg import textures
from mllg.lattice import Lattice

__all__ = ["ORDERED_STATES", "OrderedState", "ordered_state"]


@dataclass(frozen=True)
class OrderedState:
    """An ordered state of the s-d model and how the analysis measures it.

    Attributes
    ----------
    name : str
        Registry key (the value of ``analyze.order``).
    lattice : {"triangular", "square", "strip"}
        Lattice the state lives on.
    period : int
        The linear size must be a multiple of it (ordering wavevectors on the k grid).
    point : str or None
        High-symmetry point of the ordering wavevectors (``Gamma``, ``M``, ``K``), or
        None (a domain wall: no ordering wavevector).
    texture : callable or None
        Reference texture ``lattice -> spins (N, 3)``.
    colour : {"chirality", "order", "Sz"}
        Site colouring of texture figures (:func:`mllg.plotting.plot_texture`).
    length : {"spin", "chiral"} or None
        Which length is the domain size L(t) of a quench.
    description : str
        One line for messages and documentation.
    """

    name: str
    lattice: str
    period: int
    point: str | None
    texture: Callable[[Lattice], NDArray[np.float64]] | None
    colour: str
    length: str | None
    description: str

    def wavevectors(self, lattice: Lattice) -> NDArray[np.float64]:
        """Ordering wavevectors on ``lattice`` (Cartesian, shape (n, 2))."""
        if self.point == "Gamma":
            return np.zeros((1, 2))
        if self.point is None or lattice.kind != self.lattice:
            raise ValueError(
                f"the {self.name!r} state has no ordering wavevectors on a {lattice.kind!r} "
                f"lattice (it needs a {self.lattice} lattice)."
            )
        return lattice.high_symmetry_points()[self.point]


ORDERED_STATES: dict[str, OrderedState] = {
    s.name: s
    for s in (
        OrderedState(
            "tetrahedral",
            "triangular",
            2,
            "M",
            textures.tetrahedral,
            "chirality",
            "chiral",
            "four-sublattice non-coplanar state, uniform scalar chirality (Z2 domains)",
        ),
        OrderedState(
            "120",
            "triangular",
            3,
            "K",
            textures.three_sublattice_120,
            "Sz",
            "spin",
            "three-sublattice coplanar 120 deg state",
        ),
        OrderedState(
            "neel", "square", 2, "M", textures.neel, "Sz", "spin", "checkerboard antiferromagnet"
        ),
        OrderedState(
            "ferro_af",
            "square",
            2,
            "M",
            textures.neel,
            "order",
            "spin",
            "phase-separated ferromagnetic and Neel regions (doped double exchange)",
        ),
        OrderedState(
            "ferro", "square", 1, "Gamma", textures.ferromagnet, "Sz", "spin", "ferromagnet"
        ),
        OrderedState(
            "wall", "strip", 1, None, None, "Sz", None, "a domain wall in a strip between leads"
        ),
    )
}


def ordered_state(name: str) -> OrderedState:
    """The registry entry ``name``; ValueError (one sentence) for an unknown name."""
    try:
        return ORDERED_STATES[name]
    except KeyError:
        raise ValueError(
            f"order={name!r} is not a known ordered state; use one of {tuple(ORDERED_STATES)}."
        ) from None
