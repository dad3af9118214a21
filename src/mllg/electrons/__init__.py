"""Electronic solvers: exact diagonalization, kernel polynomial method and NEGF."""

from mllg.electrons.base import ElectronicResult, Ensemble
from mllg.electrons.ed import ExactDiagonalization

__all__ = ["ElectronicResult", "Ensemble", "ExactDiagonalization"]
