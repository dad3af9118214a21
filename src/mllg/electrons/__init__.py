"""Electronic solvers: exact diagonalization, kernel polynomial method and NEGF.

The NEGF solvers need Kwant for their Kwant engine; they are imported lazily so that
``import mllg.electrons`` works without it.
"""

from mllg.electrons.base import ElectronicResult, Ensemble
from mllg.electrons.ed import ExactDiagonalization
from mllg.electrons.kpm import KernelPolynomial, KPMAccuracyWarning

__all__ = [
    "NEGF",
    "DenseNEGF",
    "ElectronicResult",
    "Ensemble",
    "ExactDiagonalization",
    "KPMAccuracyWarning",
    "KernelPolynomial",
    "strip_negf",
]

_LAZY = {"NEGF", "DenseNEGF", "strip_negf"}


def __getattr__(name: str):
    if name in _LAZY:
        from mllg.electrons import negf

        return getattr(negf, name)
    raise AttributeError(f"module 'mllg.electrons' has no attribute {name!r}")
