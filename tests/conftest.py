"""Shared, session-scoped fitted models (fitted once per test session; plumbing-sized draws)."""

from __future__ import annotations

import warnings

import matplotlib
import pytest

matplotlib.use("Agg")

import bayesdta as bd  # noqa: E402

PLUMBING = {"draws": 300, "tune": 400, "chains": 2}


def _quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        return bd.fit(*args, verbose=False, **kwargs)


@pytest.fixture(scope="session")
def dementia_data():
    return bd.load_example("dementia")


@pytest.fixture(scope="session")
def dementia_fit(dementia_data):
    """Two-level bivariate fit of a real dataset (33 studies)."""
    return _quiet_fit(dementia_data, seed=11, **PLUMBING)


@pytest.fixture(scope="session")
def smoking_fit():
    """Three-level fit with a study/row covariate (51 tables in 26 studies)."""
    return _quiet_fit(bd.load_example("smoking"), formula="~ type", seed=12, **PLUMBING)


@pytest.fixture(scope="session")
def osteo_fit():
    """Three-level meta-regression on the simulated osteoporosis example."""
    truth = bd.load_truth("osteoporosis_dl")
    return _quiet_fit(
        bd.load_example("osteoporosis_dl"), seed=13, **truth["model_spec"], **PLUMBING
    )
