"""bayesdta: Bayesian hierarchical meta-analysis of diagnostic test accuracy.

The bivariate binomial model (Chu & Cole 2006; Reitsma et al. 2005) with exact likelihood,
a three-level extension for several correlated models per study, meta-regression, posterior
SROC / AUC / regions / heterogeneity, figures and reports. Sampled with NUTS (nutpie or PyMC).
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys

from . import _quiet  # noqa: F401  (silences third-party noise, see bayesdta._quiet)
from . import plots as _plots  # noqa: F401  (figures register for DTAFit.plot)
from .data.datasets import list_examples, load_example, load_truth
from .data.quadas import low_risk_subset, quadas_columns, read_quadas
from .data.tables import DTAData, counts_from_metrics, split_confusion
from .exceptions import (
    BayesDTAError,
    DTADataError,
    IdentifiabilityWarning,
    SamplerWarning,
    SpecError,
)
from .families.bivariate import ModelSpec, prior_predictive
from .families.latent_class import Beta, LatentClassSpec
from .families.priors import DEFAULT_PRIORS, Prior
from .inference.fit import DTAFit, fit, load
from .inference.latent_class import LatentClassFit, fit_latent_class
from .inference.ml import LRTest, MLFit, MLWarning, fit_ml, lrt
from .posterior import quantities as _quantities  # noqa: F401  (register for DTAFit methods)
from .posterior.review_outputs import (
    pca_table,
    quadas,
    quadas_summary,
    study_pca,
    study_ratios,
    summary_of_findings,
    threshold_effect,
)
from .reporting.spec import AnalysisSpec
from .workflows.comparative import ComparativeFit, compare_tests
from .workflows.ml import ml_subgroups, ml_summary
from .workflows.regression import (
    collapse_studies,
    compare_clustering,
    contrasts,
    heterogeneity_explained,
    subgroup_table,
    subgroups,
)

__version__ = "0.1.0"

#: Module paths of version 0.1 (deprecated) -> their place in the layered package. The old
#: path names the same module object, so ``from bayesdta.quantities import sroc`` keeps working.
_MOVED = {
    "datasets": "bayesdta.data.datasets",
    "model": "bayesdta.families.bivariate",
    "priors": "bayesdta.families.priors",
    "links": "bayesdta.families.links",
    "stats": "bayesdta.families.stats",
    "sampling": "bayesdta.inference.sampling",
    "compile_cache": "bayesdta.inference.compile_cache",
    "fit": "bayesdta.inference.fit",
    "labels": "bayesdta.inference.labels",
    "quantities": "bayesdta.posterior.quantities",
    "regression": "bayesdta.workflows.regression",
    "spec": "bayesdta.reporting.spec",
    "report": "bayesdta.reporting.report",
    "sensitivity": "bayesdta.reporting.sensitivity",
    "cli_analysis": "bayesdta.cli.analysis",
    "cli_cache": "bayesdta.cli.cache",
}


def _alias_moved_modules() -> None:
    package = _sys.modules[__name__]
    for old, new in _MOVED.items():
        module = _importlib.import_module(new)
        _sys.modules.setdefault(f"{__name__}.{old}", module)
        if not hasattr(package, old):  # bayesdta.fit stays the function
            setattr(package, old, module)


_alias_moved_modules()

__all__ = [
    "DTAData",
    "DTAFit",
    "ModelSpec",
    "AnalysisSpec",
    "Prior",
    "DEFAULT_PRIORS",
    "prior_predictive",
    "fit",
    "load",
    "load_example",
    "load_truth",
    "list_examples",
    "split_confusion",
    "counts_from_metrics",
    "subgroups",
    "contrasts",
    "heterogeneity_explained",
    "subgroup_table",
    "compare_clustering",
    "collapse_studies",
    "compare_tests",
    "ComparativeFit",
    "fit_ml",
    "MLFit",
    "LRTest",
    "lrt",
    "ml_summary",
    "ml_subgroups",
    "MLWarning",
    "BayesDTAError",
    "DTADataError",
    "SpecError",
    "SamplerWarning",
    "IdentifiabilityWarning",
    "fit_latent_class",
    "LatentClassFit",
    "LatentClassSpec",
    "Beta",
    "__version__",
    # issue 13: review outputs
    "summary_of_findings",
    "threshold_effect",
    "study_ratios",
    "quadas",
    "quadas_summary",
    "study_pca",
    "pca_table",
    "read_quadas",
    "quadas_columns",
    "low_risk_subset",
]
