"""Training recipes: the sampling and training settings that reach the accuracies of
``docs/benchmarks.md`` for each system (:func:`recommended_config`)."""

from __future__ import annotations

from mllg.settings import ModelConfig, TrainConfig

__all__ = ["recommended_config"]


def recommended_config(system: str = "tetrahedral") -> dict:
    """Training recipe of a system: sampling, label ensemble and training settings.

    Parameters
    ----------
    system : {"tetrahedral", "120", "double_exchange", "strip"}
        Triangular f = 1/4, J = 2 (tetrahedral regime); triangular f = 1/2, J = 6
        (120 deg); square double exchange J = 6, n = 0.97; driven strip (vector model of
        ``h(V) - h(0)`` with lead features).

    Returns
    -------
    dict
        ``sampling``: the ED training lattice ``L``, the label ensemble
        (``"ensemble"``: ``"canonical"``, or ``"grand_canonical"`` at the ``mu`` that gives
        the sampled frames the target mean filling, :func:`mllg.electrons.ed.mu_for_mean_filling`),
        the electronic ``kT`` of the labels, and the keyword arguments of
        :func:`sample_training_frames`; ``train``: a :class:`TrainConfig` to pass to
        :func:`train`.

    Notes
    -----
    A BP energy is a sum of local terms, i.e. grand canonical: the recipe labels at
    grand-canonical ``mu`` whenever the canonical chemical potential varies between
    frames. Every recipe uses the plain descriptor ``r_cut = 4`` with neighbour bonds
    and elementary triangles within radius 2 and a (64, 64) SiLU network; the
    tetrahedral one adds one message-passing step (``message_r_cut = 2``) and the fitted
    pair exchange to ``r = 6``. The accuracies these recipes reach, with their commands,
    are in ``docs/benchmarks.md``.
    """
    plain = {"kind": "plain", "r_cut": 4.0, "inner_r_cut": 2.0}
    common = {"n_perturbed": 300, "llg_kTs": (0.02, 0.05, 0.1), "n_quench": 2}
    long = {"batch_size": 4, "max_epochs": 300, "augment": False, "energy_weight": 0.0}
    short = {"batch_size": 8, "max_epochs": 60, "augment": True, "energy_weight": 0.1}
    recipes = {
        "tetrahedral": ({"L": 12, "ensemble": "grand_canonical", "kT": 0.2, **common}, True, long),
        "120": ({"L": 12, "ensemble": "canonical", "kT": 0.0, **common}, True, short),
        "double_exchange": (
            {"L": 10, "ensemble": "grand_canonical", "kT": 0.2, **common},
            True,
            long,
        ),
        "strip": (
            {"ensemble": "grand_canonical", "kT": 0.0025, "n_perturbed": 300},
            False,
            short,
        ),
    }
    if system not in recipes:
        raise ValueError(f"system={system!r} is not allowed; use one of {tuple(recipes)}.")
    sampling, equilibrium, fit = recipes[system]
    model = ModelConfig(
        descriptor=plain,
        hidden=(64, 64),
        potential="conservative" if equilibrium else "vector",
        lead_columns=0 if equilibrium else 5,
        message_r_cut=2.0 if system == "tetrahedral" else 0.0,
        pair_r_cut=6.0 if system == "tetrahedral" else 0.0,
    )
    train_cfg = TrainConfig(
        model=model.to_dict(),
        lr=3e-3,
        energy_weight=fit["energy_weight"],
        batch_size=fit["batch_size"],
        max_epochs=fit["max_epochs"],
        patience=fit["max_epochs"],
        augment_point_group=fit["augment"],
        augment_time_reversal=equilibrium and fit["augment"],
        lr_schedule="cosine",
    )
    return {"sampling": dict(sampling), "train": train_cfg}
