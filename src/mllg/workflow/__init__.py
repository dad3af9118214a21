"""The workflow's stages: one module per rule, one public function per module.

=================  ==========================================================
module             rule and function
=================  ==========================================================
``sample``         ``sample``: exact training data of one chunk; ``chemical_potential``:
                   the filling-matched mu of ``sample.label_mu = auto``
``featurize``      ``featurize``: descriptor cache of one chunk
``train``          ``train``: one BP model per data set and seed
``validate``       ``validate``: models against the exact solver, speed, LLG
``simulate``       ``simulate``: one production run (:func:`mllg.production.run`)
``analyze``        ``analyze``: L(t) and growth law, or the v(V) table
``figures``        ``figures``: the figures of one system
``summary``        ``summary``: ``results/<system>/summary.json``
``explore``        ``explore``: one committee-driven ML-LLG run of the learning loop
``select``         ``select``: frames of an iteration ranked by committee disagreement
``label``          ``label``: exact labels of the selected frames (ED or KPM)
``train``          ``retrain``: ``retrain_model``, one member of an iteration's committee
``learning``       ``learning_curve``: the loop's record and figure
``audit``          ``audit``: exact labels of frames of the production trajectories
=================  ==========================================================

Each function takes the validated section of one system (``config["systems"][name]``,
a plain dict with the keys of ``workflow/schemas/config.schema.yaml``) and file paths;
the scripts in ``scripts/`` only unpack the ``snakemake`` object. What differs between
equilibrium and driven systems is decided once, in :class:`System` (``System.of``
returns :class:`EquilibriumSystem` or :class:`DrivenSystem`), which also builds the
lattices, exact solvers and integrators that tests and benchmarks use.
"""

from mllg.workflow.analyze import analyze
from mllg.workflow.audit import audit
from mllg.workflow.driven import DrivenSystem
from mllg.workflow.equilibrium import EquilibriumSystem
from mllg.workflow.explore import explore
from mllg.workflow.featurize import featurize
from mllg.workflow.figures import figures
from mllg.workflow.label import label
from mllg.workflow.learning import learning_curve
from mllg.workflow.sample import chemical_potential, sample
from mllg.workflow.select import select
from mllg.workflow.simulate import run_config, simulate
from mllg.workflow.summary import summary
from mllg.workflow.system import System, build_model, resolve_label_mu, write_json
from mllg.workflow.train import retrain_model, train_model, training_data, training_settings
from mllg.workflow.validate import reference_test_set, time_per_call, validate

__all__ = [
    "DrivenSystem",
    "EquilibriumSystem",
    "System",
    "analyze",
    "audit",
    "build_model",
    "chemical_potential",
    "explore",
    "featurize",
    "figures",
    "label",
    "learning_curve",
    "reference_test_set",
    "resolve_label_mu",
    "retrain_model",
    "run_config",
    "sample",
    "select",
    "simulate",
    "summary",
    "time_per_call",
    "train_model",
    "training_data",
    "training_settings",
    "validate",
    "write_json",
]
