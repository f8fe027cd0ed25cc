"""Packaged example datasets: real published DTA tables and the simulated osteoporosis example."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from ...exceptions import DTADataError
from ..tables import DTAData

__all__ = ["list_examples", "load_example", "example_info", "load_truth"]

_EXAMPLES: dict[str, dict[str, Any]] = {
    "auditc": {
        "file": "auditc.csv",
        "study": None,
        "model": None,
        "description": "AUDIT-C for unhealthy alcohol use, 14 studies",
        "citation": "Kriston L, et al. Meta-analysis: are 3 questions enough to detect unhealthy "
        "alcohol use? Ann Intern Med 2008;149:879-888",
        "simulated": False,
    },
    "dementia": {
        "file": "dementia.csv",
        "study": None,
        "model": None,
        "description": "Mini-mental state examination for dementia, 33 studies",
        "citation": "Mitchell A. A meta-analysis of the accuracy of the mini-mental state "
        "examination in the detection of dementia and mild cognitive impairment. "
        "J Psychiatr Res 2009;43:411-431",
        "simulated": False,
    },
    "skin_tests": {
        "file": "skin_tests.csv",
        "study": None,
        "model": None,
        "description": "Penicillin allergy skin tests, 10 studies (small counts, zero cells)",
        "citation": "Sousa-Pinto B, et al. Accuracy of penicillin allergy diagnostic tests: a "
        "systematic review and meta-analysis. J Allergy Clin Immunol 2021;147:296-308 "
        "(part of the data)",
        "simulated": False,
    },
    "smoking": {
        "file": "smoking.csv",
        "study": "study_id",
        "model": "result_id",
        "description": "Self-reported smoking vs biochemical validation, 51 tables from 26 "
        "studies (several dependent tables per study); covariates type (SAQ/IAQ), population",
        "citation": "Patrick D, et al. The validity of self-reported smoking: a review and "
        "meta-analysis. Am J Public Health 1994;84:1086-1093",
        "simulated": False,
    },
    "osteoporosis_dl": {
        "file": "osteoporosis_dl.csv",
        "study": "study",
        "model": "model",
        "description": "SIMULATED counts on the real design of a review of deep-learning models "
        "detecting osteoporosis on CT: 39 models from 20 studies (the per-study 2x2 tables are not "
        "public; counts simulated with known truth, see load_truth('osteoporosis_dl'))",
        "citation": "Design from: Wang A, Ma Z, et al. Deep learning-assisted automated diagnosis "
        "of osteoporosis based on computed tomography scans: systematic review and meta-analysis. "
        "J Med Internet Res 2025;27:e77155. Counts: SIMULATED by bayesdta.",
        "simulated": True,
    },
    "osteoporosis_latent_class": {
        "file": "osteoporosis_latent_class.csv",
        "study": "study",
        "model": "model",
        "description": "SIMULATED index test vs imperfect reference standard on the osteoporosis "
        "design: 39 tables, reference DXA (imperfect) or CT (perfect) in column "
        "reference_standard; truth: load_truth('osteoporosis_latent_class')",
        "citation": "Design from: Wang A, Ma Z, et al. J Med Internet Res 2025;27:e77155. "
        "Counts: SIMULATED by bayesdta from the latent-class model "
        "(validation/simulate_latent_class_example.py).",
        "simulated": True,
    },
    # comparative accuracy example (issue 12): see simulate_comparative.py
    "osteoporosis_comparative": {
        "file": "osteoporosis_comparative.csv",
        "study": "study",
        "model": "test",
        "description": "SIMULATED comparative review on the osteoporosis design: deep-learning "
        "models by backbone class vs radiologists, network of 4 tests, 34 tables from 20 studies "
        "(5 paired, 5 unpaired DL-vs-radiologist studies); truth: "
        "load_truth('osteoporosis_comparative'); use with bayesdta.compare_tests(test='test')",
        "citation": "Design from: Wang A, Ma Z, et al. J Med Internet Res 2025;27:e77155 (studies, "
        "test sets, prevalences). Tests and counts: SIMULATED by bayesdta "
        "(bayesdta.data.datasets.simulate_comparative).",
        "simulated": True,
    },
}


def list_examples() -> dict[str, str]:
    """Names of the packaged datasets with a one-line description."""
    return {k: v["description"] for k, v in _EXAMPLES.items()}


def example_info(name: str) -> dict[str, Any]:
    """Description, citation and id columns of a packaged dataset."""
    if name not in _EXAMPLES:
        raise DTADataError(f"unknown example {name!r}; available: {', '.join(_EXAMPLES)}")
    return dict(_EXAMPLES[name])


def example_path(name: str):
    """Path of a packaged dataset's CSV file."""
    info = example_info(name)
    return resources.files(__name__).joinpath(info["file"])


def load_example(name: str) -> DTAData:
    """Load a packaged dataset as validated :class:`~bayesdta.data.DTAData`.

    Parameters
    ----------
    name : str
        One of :func:`list_examples`.
    """
    info = example_info(name)
    with resources.as_file(example_path(name)) as p:
        data = DTAData.from_csv(p, study=info["study"], model=info["model"])
    return data


def load_truth(name: str = "osteoporosis_dl") -> dict[str, Any]:
    """True parameters of a simulated example."""
    if name == "osteoporosis_comparative":
        text = resources.files(__name__).joinpath(f"{name}_truth.json").read_text()
        return json.loads(text)
    if name not in ("osteoporosis_dl", "osteoporosis_latent_class"):
        raise DTADataError(f"{name!r} is real data; it has no known truth")
    text = resources.files(__name__).joinpath(f"{name}_truth.json").read_text()
    return json.loads(text)
