"""The three-level model against lme4::glmer on the smoking data (validation/README.md)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

import bayesdta as bd

from .conftest import PLUMBING

REFERENCE = Path(__file__).resolve().parents[1] / "validation" / "glmer_reference_smoking.csv"


@pytest.fixture(scope="module")
def smoking_intercept_fit():
    """Intercept-only three-level fit of smoking: the model of the glmer reference."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        return bd.fit(bd.load_example("smoking"), levels=3, seed=14, **PLUMBING)


def test_three_level_agrees_with_glmer_smoking(smoking_intercept_fit):
    """Posterior of the three-level model around the maximum-likelihood (Laplace) fit.

    With weakly informative priors the posterior is dominated by the likelihood: the pooled
    logits (posterior SD ~0.2-0.3) must match glmer's ``fixef`` to half a posterior SD, far
    more than the Monte Carlo error of a median at plumbing draws (~0.07 SD at ESS 200). The
    ML SDs are biased downwards and the SD posteriors are skewed, so for the SDs and
    correlations the check is that the ML value lies inside the 95% posterior interval.
    """
    ref = pd.read_csv(REFERENCE).iloc[0]
    s = smoking_intercept_fit.summary(ci=0.95)
    for name, col in (("mu_sensitivity", "mu_se"), ("mu_specificity", "mu_sp")):
        assert abs(s.loc[name, "median"] - ref[col]) < 0.5 * s.loc[name, "sd"], (name, ref[col])
    for name, col in (
        ("tau_sensitivity", "tau_se"),
        ("tau_specificity", "tau_sp"),
        ("rho", "rho"),
        ("tau_within_sensitivity", "tau_within_se"),
        ("tau_within_specificity", "tau_within_sp"),
        ("rho_within", "rho_within"),
    ):
        assert s.loc[name, "lower"] <= ref[col] <= s.loc[name, "upper"], (name, ref[col])
    # posterior SD of mu against the ML standard error (Laplace): same order of magnitude
    for name, col in (("mu_sensitivity", "se_mu_se"), ("mu_specificity", "se_mu_sp")):
        assert 0.6 < s.loc[name, "sd"] / ref[col] < 1.6, (name, s.loc[name, "sd"], ref[col])
