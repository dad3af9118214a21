"""Field providers built on BP models, for the LLG engine and for uncertainty estimates.

:class:`MLFieldProvider` maps spins (N, 3) to exchange fields (N, 3) (units of t) with a
trained :class:`mllg.nn.model.BPModel`; :class:`Committee` averages independently trained
models and gives the per-site spread of their perpendicular fields.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from mllg.nn.model import BPModel


class MLFieldProvider:
    """Field provider for the LLG engine: spins (N, 3) -> fields (N, 3), NumPy in and out.

    Also offers ``energy(spins)``: the model energy (``E`` or ``(E_A, E_B)``), units of t.
    """

    def __init__(self, model: BPModel) -> None:
        self.model = model.eval()

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        spins = np.asarray(spins, dtype=float)
        if spins.shape != (self.model.lattice.N, 3):
            raise ValueError(
                f"spins have shape {spins.shape}; this model's lattice needs "
                f"({self.model.lattice.N}, 3)."
            )
        return self.model.predict(spins)["fields"].astype(np.float64)

    def energy(self, spins: NDArray) -> NDArray[np.float64]:
        return self.model.predict(spins)["energy"]


class Committee:
    """Committee of independently trained models: mean field and per-site spread.

    The uncertainty of site i is the committee standard deviation of the perpendicular
    field, ``sigma_i = sqrt(mean_m |h_perp,i^(m) - <h_perp,i>|^2)`` (units of t).
    """

    def __init__(self, models: list[BPModel]) -> None:
        if len(models) < 2:
            raise ValueError(f"a committee needs at least 2 models, got {len(models)}.")
        self.models = [m.eval() for m in models]

    def predict(self, spins: NDArray) -> dict[str, NDArray]:
        """``fields`` mean (F, N, 3) and ``sigma`` (F, N) for spins (F, N, 3) or (N, 3)."""
        spins = np.asarray(spins, dtype=float)
        h = np.stack([m.predict(spins)["fields"] for m in self.models])
        h_perp = h - np.sum(h * spins, axis=-1, keepdims=True) * spins
        mean = h.mean(0)
        sigma = np.sqrt(((h_perp - h_perp.mean(0)) ** 2).sum(-1).mean(0))
        return {"fields": mean, "sigma": sigma}

    def __call__(self, spins: NDArray) -> NDArray[np.float64]:
        return self.predict(spins)["fields"]
