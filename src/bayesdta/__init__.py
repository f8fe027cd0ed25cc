"""bayesdta: Bayesian hierarchical meta-analysis of diagnostic test accuracy.

The bivariate binomial model (Chu & Cole 2006; Reitsma et al. 2005) with exact likelihood,
a three-level extension for several correlated models per study, meta-regression, posterior
SROC / AUC / regions / heterogeneity, figures and reports. Sampled with NUTS (nutpie or PyMC).
"""

from __future__ import annotations

from . import _quiet  # noqa: F401  (silences third-party noise, see bayesdta._quiet)
from .data import DTAData, counts_from_metrics, split_confusion
from .datasets import list_examples, load_example, load_truth
from .exceptions import (
    BayesDTAError,
    DTADataError,
    IdentifiabilityWarning,
    SamplerWarning,
    SpecError,
)
from .fit import DTAFit, fit, load
from .model import ModelSpec
from .priors import DEFAULT_PRIORS, Prior, prior_predictive
from .regression import (
    collapse_studies,
    compare_clustering,
    contrasts,
    heterogeneity_explained,
    subgroup_table,
    subgroups,
)

__version__ = "0.1.0"

__all__ = [
    "DTAData",
    "DTAFit",
    "ModelSpec",
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
    "BayesDTAError",
    "DTADataError",
    "SpecError",
    "SamplerWarning",
    "IdentifiabilityWarning",
    "__version__",
]
