"""Clustering done right: three-level vs study-pooled vs rows-independent on clustered data.

Data are simulated from the three-level model with strong clustering (12 studies with 4 tables
each, large between-study and small within-study SDs), so the tables of a study nearly agree.
Treating them as independent studies (the review's approach) then counts each study 4 times
and its pooled intervals are too narrow; the three-level model is the correct one.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import expit

import bayesdta as bd
from bayesdta import SpecError
from bayesdta.workflows import regression as R

PLUMBING = {"draws": 300, "tune": 400, "chains": 2}
MU = (1.5, 2.0)


def simulate_clustered(
    seed: int,
    n_studies: int = 12,
    rows: int = 4,
    tau=(1.0, 1.0),
    tau_within=(0.15, 0.15),
    rho: float = -0.3,
) -> pd.DataFrame:
    """Three-level bivariate binomial data; ``region`` is a study-level covariate."""
    rng = np.random.default_rng(seed)
    cov = np.array([[tau[0] ** 2, rho * tau[0] * tau[1]], [rho * tau[0] * tau[1], tau[1] ** 2]])
    u = rng.multivariate_normal([0.0, 0.0], cov, size=n_studies)
    out = []
    for s in range(n_studies):
        n1, n0 = rng.integers(60, 150), rng.integers(150, 400)  # one test set per study
        for m in range(rows):
            v = rng.normal(0.0, tau_within)
            th = np.asarray(MU) + u[s] + v
            tp = rng.binomial(n1, expit(th[0]))
            tn = rng.binomial(n0, expit(th[1]))
            out.append(
                {
                    "study": f"S{s + 1:02d}",
                    "model": f"net{m + 1}",
                    "TP": tp,
                    "FN": n1 - tp,
                    "TN": tn,
                    "FP": n0 - tn,
                    "region": "EU" if s % 2 else "Asia",
                    "network": f"net{m + 1}",
                }
            )
    frame = pd.DataFrame(out)
    # the pooled logits the data were generated around: the truth plus the realized mean
    # study effect (12 studies: the mean effect has SD tau / sqrt(12) ~ 0.3 on the logit scale)
    frame.attrs["realized_mu"] = np.asarray(MU) + u.mean(axis=0)
    return frame


@pytest.fixture(scope="module")
def clustered_frame():
    return simulate_clustered(7)


@pytest.fixture(scope="module")
def clustered(clustered_frame):
    return bd.DTAData.from_frame(clustered_frame)


def test_collapse_studies_sums_counts_and_keeps_study_covariates(clustered):
    pooled = R.collapse_studies(clustered)
    assert pooled.n_rows == pooled.n_studies == clustered.n_studies
    assert pooled.studies == clustered.studies
    frame = clustered.frame
    for c in ("TP", "FP", "FN", "TN"):
        want = frame.groupby("study", sort=False)[c].sum().to_numpy()
        np.testing.assert_array_equal(pooled.frame[c].to_numpy(), want)
    assert "region" in pooled.covariates  # constant within study
    assert "network" not in pooled.covariates  # varies within study
    assert (pooled.frame["rows_pooled"] == 4).all()


def test_pooling_constant_is_the_binomial_coefficient_ratio(clustered):
    """Shared (se, sp): rows' log-likelihood = summed counts' log-likelihood + constant."""
    const = R._pooling_constant(clustered)
    pooled = R.collapse_studies(clustered)
    for p_se, p_sp in ((0.8, 0.9), (0.3, 0.6)):
        rows = stats.binom.logpmf(clustered.tp, clustered.n_diseased, p_se) + stats.binom.logpmf(
            clustered.tn, clustered.n_nondiseased, p_sp
        )
        by_study = np.bincount(clustered.study_index, weights=rows)
        summed = stats.binom.logpmf(pooled.tp, pooled.n_diseased, p_se) + stats.binom.logpmf(
            pooled.tn, pooled.n_nondiseased, p_sp
        )
        np.testing.assert_allclose(by_study, summed + const, rtol=1e-10)


def test_compare_clustering_input_errors(clustered):
    with pytest.raises(SpecError, match="no study has several rows"):
        R.compare_clustering(bd.load_example("auditc"))
    with pytest.raises(SpecError, match=r"'network' varies within study 'S01'"):
        R.compare_clustering(clustered, formula="~ network")
    with pytest.raises(SpecError, match="levels"):
        R.compare_clustering(clustered, levels=3)


def test_ignoring_clustering_gives_too_narrow_intervals(clustered, clustered_frame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        table = R.compare_clustering(clustered, seed=3, **PLUMBING)
    assert list(table.index) == [
        "three-level",
        "two-level, studies pooled",
        "two-level, rows independent",
    ]
    assert list(table["units"]) == [12, 12, 48]
    three, indep = table.loc["three-level"], table.loc["two-level, rows independent"]
    # rows independent: the 4 nearly identical tables of a study count as 4 studies
    for q in ("sensitivity", "specificity"):
        assert indep[f"{q}_width"] < 0.8 * three[f"{q}_width"], table[[f"{q}_width"]]
        assert table.loc["two-level, rows independent", f"width_ratio_{q}"] < 0.8
        # the correct (three-level) interval contains the pooled value of the realized studies
        realized = clustered_frame.attrs["realized_mu"]
        truth = float(expit(realized[0] if q == "sensitivity" else realized[1]))
        assert three[f"{q}_lower"] < truth < three[f"{q}_upper"]
    # a new study's tables are predicted better when their correlation is modelled
    assert indep["elpd_diff"] < 0
    assert np.isfinite(table["elpd_loo"]).all() and (table["elpd_se"] > 0).all()
    # between-study SD of the three-level model is the large one; within is small
    assert three["tau_within_sensitivity"] < three["tau_sensitivity"]
