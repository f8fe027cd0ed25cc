"""Posterior quantities (bayesdta.quantities): each checked against a hand computation from draws.

Uses the session fixtures of conftest.py (plumbing-sized fits); the only new sampling is one
leave-two-studies-out refit and one simulated two-level fit, both re-using compiled models.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.path import Path as MplPath
from scipy import special
from scipy import stats as sps

import bayesdta as bd
from bayesdta.exceptions import SpecError
from bayesdta.families import stats as S
from bayesdta.posterior import quantities as Q


def _flat(fit, name):
    return fit.draws(name).transpose("chain", "draw").values.ravel()


def _bivariate_draws(fit):
    """(mu_se, mu_sp, tau_se, tau_sp, rho) of a two-level intercept-only fit, by hand."""
    p = fit.posterior
    return (
        p["beta_sensitivity"].sel(coef_sensitivity="Intercept").values.ravel(),
        p["beta_specificity"].sel(coef_specificity="Intercept").values.ravel(),
        p["tau_sensitivity"].values.ravel(),
        p["tau_specificity"].values.ravel(),
        p["rho"].values.ravel(),
    )


def _fpr_support_by_hand(fit):
    """Each table's FPR: observed, or the posterior median FPR when FP = 0 or FP = n0."""
    d = fit.data
    theta_sp = fit.posterior["theta"].sel(outcome="specificity").values
    post = np.median(1.0 - special.expit(theta_sp), axis=(0, 1))
    edge = (d.fp == 0) | (d.fp == d.n_nondiseased)
    return np.where(edge, post, d.fp / d.n_nondiseased)


# ------------------------------------------------------------------------------------------
# SROC, AUC, HSROC
# ------------------------------------------------------------------------------------------
def test_sroc_band_brackets_median_over_observed_range(dementia_fit):
    f = dementia_fit
    curve = Q.sroc(f)
    assert list(curve.columns) == ["fpr", "median", "lower", "upper"]
    assert np.all(curve["lower"] <= curve["median"]) and np.all(curve["median"] <= curve["upper"])
    fpr_obs = _fpr_support_by_hand(f)  # observed FPRs, FP = 0 tables at their posterior FPR
    assert curve["fpr"].min() == pytest.approx(fpr_obs.min())
    assert curve["fpr"].max() == pytest.approx(fpr_obs.max())
    assert curve.attrs["fpr_range"] == pytest.approx((fpr_obs.min(), fpr_obs.max()))
    # the HSROC curve increases with the FPR (slope exp(-beta) > 0)
    assert np.all(np.diff(curve["median"]) >= 0)
    full = Q.sroc(f, extrapolate=True)
    assert full["fpr"].min() == 0.0 and full["fpr"].max() == 1.0


def test_sroc_matches_hand_computation_and_passes_summary_point(dementia_fit):
    f = dementia_fit
    grid = np.array([0.05, 0.1, 0.3])
    mu_se, mu_sp, t_se, t_sp, r = _bivariate_draws(f)
    # HSROC by hand (Harbord et al. 2007): logit se = Lambda e^{-beta/2} + e^{-beta} logit fpr
    beta = np.log(t_sp / t_se)
    lam = np.sqrt(t_sp / t_se) * mu_se + np.sqrt(t_se / t_sp) * mu_sp
    se = special.expit(
        lam[:, None] * np.exp(-beta[:, None] / 2) + np.exp(-beta[:, None]) * special.logit(grid)
    )
    got = Q.sroc(f, fpr=grid, ci=0.9)
    np.testing.assert_allclose(got["median"], np.median(se, axis=0), rtol=1e-10)
    np.testing.assert_allclose(got["lower"], np.quantile(se, 0.05, axis=0), rtol=1e-10)
    # near the summary point the curve gives the summary sensitivity
    s = f.summary()
    at_summary = Q.sroc(f, fpr=[1 - s.loc["specificity", "median"]])["median"].iloc[0]
    assert at_summary == pytest.approx(s.loc["sensitivity", "median"], abs=0.01)
    other = Q.sroc(f, fpr=grid, method="regression_se_on_sp")
    assert not np.allclose(other["median"], got["median"])


def test_auc_by_quadrature_of_the_hsroc_line(dementia_fit):
    """AUC and partial AUC per draw against scipy quadrature of the HSROC line.

    The HSROC curve of the bivariate model is the line through the summary point
    (logit fpr = -mu_sp, logit se = mu_se) with slope tau_se / tau_sp on the logit scales
    (Harbord et al. 2007); integrated here over FPR with ``scipy.integrate.quad``, over [0, 1]
    and over the FPR range the data support (:func:`bayesdta.quantities.fpr_support`).
    """
    from scipy.integrate import quad

    f = dementia_fit
    mu_se, mu_sp, t_se, t_sp, _ = _bivariate_draws(f)
    auc, pauc = _flat(f, "auc"), _flat(f, "auc_partial")
    # the FPR range the tables support (its definition is checked in
    # test_sroc_range_with_zero_false_positives_stays_off_the_axis)
    lo, hi = Q.fpr_support(f)
    for j in np.random.default_rng(0).choice(mu_se.size, 12, replace=False):

        def curve(x, j=j):
            return special.expit(mu_se[j] + t_se[j] / t_sp[j] * (special.logit(x) + mu_sp[j]))

        assert auc[j] == pytest.approx(quad(curve, 0.0, 1.0, limit=200)[0], abs=1e-5)
        assert pauc[j] == pytest.approx(quad(curve, lo, hi, limit=200)[0], abs=1e-5)
    table = Q.auc(f)
    assert table.attrs["fpr_range"] == pytest.approx((lo, hi))
    assert table.loc["auc", "median"] == pytest.approx(np.median(auc))


def test_sroc_by_level_uses_each_subgroups_fpr_range(osteo_fit):
    curves = Q.sroc(osteo_fit, by="backbone")
    frame = osteo_fit.data.frame
    fpr = pd.Series(_fpr_support_by_hand(osteo_fit), index=frame.index)
    for lv, g in curves.groupby("group"):
        rows = frame["backbone"] == lv
        assert g["fpr"].min() == pytest.approx(fpr[rows].min())
        assert g["fpr"].max() == pytest.approx(fpr[rows].max())
    dense = Q.sroc(osteo_fit, at={"backbone": "DenseNet"})
    np.testing.assert_allclose(
        dense["median"], curves.loc[curves["group"] == "DenseNet", "median"].to_numpy()
    )


def test_at_by_errors(osteo_fit, dementia_fit):
    with pytest.raises(SpecError, match="not a covariate"):
        Q.sroc(osteo_fit, at={"colour": "red"})
    with pytest.raises(SpecError, match="not a level"):
        Q.sroc(osteo_fit, at={"backbone": "VGG"})
    with pytest.raises(SpecError, match="categorical covariate"):
        Q.regions(dementia_fit, by="backbone")
    with pytest.raises(SpecError, match="both"):
        Q.sroc(osteo_fit, by="backbone", at={"backbone": "ResNet"})
    with pytest.raises(SpecError, match="method"):
        Q.sroc(dementia_fit, method="moses")


def test_linear_predictor_at_levels_is_sum_of_coefficients(osteo_fit):
    at = {"backbone": "DenseNet", "reference_standard": "CT"}
    mu_se, mu_sp = Q._linear_predictor(osteo_fit, at)
    b = osteo_fit.posterior["beta_sensitivity"]
    hand = (
        b.sel(coef_sensitivity="Intercept")
        + b.sel(coef_sensitivity="backbone[T.DenseNet]")
        + b.sel(coef_sensitivity="reference_standard[T.CT]")
    ).values
    np.testing.assert_allclose(mu_se, hand)


def test_hsroc_parameters_from_draws(dementia_fit):
    h = Q.hsroc_parameters(dementia_fit)
    assert list(h.index) == ["Lambda", "Theta", "beta", "sigma2_alpha", "sigma2_theta"]
    mu_se, mu_sp, t_se, t_sp, r = _bivariate_draws(dementia_fit)
    beta = np.log(t_sp / t_se)
    theta = 0.5 * (np.sqrt(t_sp / t_se) * mu_se - np.sqrt(t_se / t_sp) * mu_sp)
    s2a = 2 * (t_se * t_sp + r * t_se * t_sp)
    assert h.loc["beta", "median"] == pytest.approx(np.median(beta))
    assert h.loc["Theta", "median"] == pytest.approx(np.median(theta))
    assert h.loc["sigma2_alpha", "mean"] == pytest.approx(np.mean(s2a))
    assert {"ess_bulk", "r_hat"} <= set(h.columns)


# ------------------------------------------------------------------------------------------
# regions and predictive
# ------------------------------------------------------------------------------------------
def _inside(poly, fpr, se):
    return MplPath(poly).contains_points(np.column_stack([fpr, se]))


def test_regions_cover_their_draws(dementia_fit):
    f = dementia_fit
    reg = Q.regions(f, levels=(0.5, 0.95))
    assert set(reg) == {"summary", "confidence", "prediction"}
    assert set(reg["confidence"]) == {0.5, 0.95}
    se, sp = _flat(f, "sensitivity"), _flat(f, "specificity")
    cover = _inside(reg["confidence"][0.95], 1 - sp, se).mean()
    assert cover == pytest.approx(0.95, abs=0.03)
    assert _inside(reg["confidence"][0.5], 1 - sp, se).mean() == pytest.approx(0.5, abs=0.06)
    # the prediction region covers draws of a new study (one per posterior draw)
    se_new, sp_new = Q._predictive_targets(f, at=None, within_study=None, seed=1)["new study"]
    pred = _inside(reg["prediction"][0.95], 1 - sp_new.ravel(), se_new.ravel()).mean()
    assert pred == pytest.approx(0.95, abs=0.03)
    assert reg["summary"] == pytest.approx([np.median(1 - sp), np.median(se)])


def test_regions_by_level(osteo_fit):
    reg = Q.regions(osteo_fit, by="backbone")
    assert list(reg) == ["ResNet", "DenseNet", "Other"]
    # DenseNet has the higher true sensitivity; its summary point lies higher
    assert reg["DenseNet"]["summary"][1] > reg["ResNet"]["summary"][1]


def test_prediction_region_coverage_on_simulated_data(dementia_fit):
    """Posterior-level check: new studies from the true model fall in the 95% region ~95%.

    40 studies from a known two-level model, one plumbing-sized fit (re-uses the compiled
    two-level model of the dementia fixture: same padded shapes). The region integrates over
    the posterior of (mu, Sigma), so coverage of new studies should be close to 95%.
    """
    rng = np.random.default_rng(2024)
    mu = np.array([1.4, 2.0])
    tau_se, tau_sp, rho = 0.7, 0.9, -0.4
    c = rho * tau_se * tau_sp
    cov = np.array([[tau_se**2, c], [c, tau_sp**2]])
    th = rng.multivariate_normal(mu, cov, size=40)
    n1 = rng.integers(40, 200, size=40)
    n0 = rng.integers(80, 400, size=40)
    tp = rng.binomial(n1, special.expit(th[:, 0]))
    tn = rng.binomial(n0, special.expit(th[:, 1]))
    df = pd.DataFrame({"TP": tp, "FN": n1 - tp, "TN": tn, "FP": n0 - tn})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        f = bd.fit(df, seed=3, draws=300, tune=400, chains=2)
    reg = Q.regions(f, levels=(0.95,))
    new = rng.multivariate_normal(mu, cov, size=5000)
    cover = _inside(reg["prediction"][0.95], special.expit(-new[:, 1]), special.expit(new[:, 0]))
    assert 0.88 <= cover.mean() <= 0.99
    truth = (special.expit(-mu[1]), special.expit(mu[0]))
    assert _inside(reg["confidence"][0.95], [truth[0]], [truth[1]])[0]


def test_predictive_two_level(dementia_fit):
    pr = Q.predictive(dementia_fit)
    assert list(pr.index.get_level_values("target").unique()) == ["new study"]
    s = dementia_fit.summary()
    for q in ("sensitivity", "specificity"):
        row = pr.loc[("new study", q)]
        assert row["lower"] < s.loc[q, "lower"] and row["upper"] > s.loc[q, "upper"]
        assert row["median"] == pytest.approx(s.loc[q, "median"], abs=0.03)
    with pytest.raises(SpecError, match="three-level"):
        Q.predictive(dementia_fit, within_study="1")
    # reproducible with a seed
    pd.testing.assert_frame_equal(
        Q.predictive(dementia_fit, seed=5), Q.predictive(dementia_fit, seed=5)
    )


def test_predictive_three_level_targets(smoking_fit):
    f = smoking_fit
    shr = Q.shrunken(f)
    multi = shr.groupby("study").filter(lambda g: len(g) > 2)
    low = multi.groupby("study")["sensitivity"].mean().idxmin()
    pr = Q.predictive(f, within_study=[low])
    targets = list(pr.index.get_level_values("target").unique())
    assert targets == ["new study", "new model, typical study", f"new model in {low}"]
    # within-study spread only: narrower than a new study
    w_new = (
        pr.loc[("new study", "sensitivity"), "upper"]
        - pr.loc[("new study", "sensitivity"), "lower"]
    )
    typical = pr.loc[("new model, typical study", "sensitivity")]
    assert typical["upper"] - typical["lower"] < w_new
    # a new model in a low-sensitivity study is predicted lower than in a typical study
    assert pr.loc[(f"new model in {low}", "sensitivity"), "median"] < typical["median"]
    with pytest.raises(SpecError, match="not a study"):
        Q.predictive(f, within_study="no such study")


def test_study_effect_draws_match_their_prior_scale(smoking_fit):
    """Draws of u_s from their exact conditional: across studies E[u^2] ~ tau_between^2."""
    f = smoking_fit
    rng = np.random.default_rng(0)
    u = np.stack([Q._study_effect_draws(f, s, rng) for s in range(f.data.n_studies)], axis=2)
    tb_se, tb_sp, _ = Q._covariance(f, "between")
    ratio_se = np.mean(np.mean(u[..., 0] ** 2, axis=2) / tb_se**2)
    ratio_sp = np.mean(np.mean(u[..., 1] ** 2, axis=2) / tb_sp**2)
    assert ratio_se == pytest.approx(1.0, abs=0.25)
    assert ratio_sp == pytest.approx(1.0, abs=0.25)


# ------------------------------------------------------------------------------------------
# heterogeneity, Fagan, Deeks
# ------------------------------------------------------------------------------------------
def _logit_variances_by_hand(d):
    """Observed logits and their variances, 0.5 added to every cell of a row with a zero."""
    cells = np.stack([d.tp, d.fn, d.tn, d.fp], axis=-1).astype(float)
    cells = cells + 0.5 * (cells == 0).any(axis=-1, keepdims=True)
    tp, fn, tn, fp = cells.T
    return (np.log(tp / fn), 1 / tp + 1 / fn), (np.log(tn / fp), 1 / tn + 1 / fp)


def test_heterogeneity_i2_is_higgins_thompson(dementia_fit, smoking_fit):
    """i2_* use Higgins & Thompson's typical variance: checked by their identity with Q.

    Higgins & Thompson (2002) define I2 = (Q - df) / Q; with the DerSimonian-Laird tau^2 this
    equals tau^2 / (tau^2 + s^2) for their typical within-study variance s^2. For three levels
    the statistic uses the total (between + within) variance of the posterior draws.
    """
    for f in (dementia_fit, smoking_fit):
        h = Q.heterogeneity(f)
        s2 = h.attrs["typical_within_variance"]
        pairs = zip(_logit_variances_by_hand(f.data), ("sensitivity", "specificity"), strict=True)
        for (y, v), o in pairs:
            w = 1 / v
            q = np.sum(w * (y - np.sum(w * y) / w.sum()) ** 2)
            df = y.size - 1
            assert q > df
            tau2_dl = (q - df) / (w.sum() - np.sum(w**2) / w.sum())
            assert S.i2_univariate(tau2_dl, s2[o]) == pytest.approx((q - df) / q, rel=1e-10)
            t2 = f.posterior[f"tau_{o}"].values ** 2
            if f.levels == 3:
                t2 = t2 + f.posterior[f"tau_within_{o}"].values ** 2
            np.testing.assert_allclose(_flat(f, f"i2_{o}"), (t2 / (t2 + s2[o])).ravel(), rtol=1e-10)
        i2 = h.loc[[i for i in h.index if i.startswith("i2_")], ["lower", "upper"]]
        assert ((i2 >= 0) & (i2 <= 1)).all().all()
    h3 = Q.heterogeneity(smoking_fit)
    assert {"tau_within_sensitivity", "between_share_sensitivity", "rho_total"} <= set(h3.index)
    assert 0 <= h3.loc["between_share_specificity", "median"] <= 1
    assert "between_share_sensitivity" not in Q.heterogeneity(dementia_fit).index


def test_zhou_dendukuri_i2_by_quadrature(dementia_fit):
    """i2_*_zd: the expected within-study variance E[1 / (n p (1 - p))] by Gauss-Hermite.

    Zhou & Dendukuri's statistic uses the expectation of the binomial within-study variance
    over logit p ~ N(mu, tau^2), averaged over the studies' sizes; computed here by 80-node
    Gauss-Hermite quadrature per draw instead of their closed form.
    """
    f = dementia_fit
    mu_se, _, t_se, _, _ = _bivariate_draws(f)
    x, wq = np.polynomial.hermite_e.hermegauss(80)
    wq = wq / wq.sum()
    p = special.expit(mu_se[:, None] + t_se[:, None] * x[None, :])
    expected = (1 / (p * (1 - p))) @ wq * np.mean(1 / f.data.n_diseased)
    want = t_se**2 / (t_se**2 + expected)
    np.testing.assert_allclose(_flat(f, "i2_sensitivity_zd"), want, rtol=1e-8)
    h = Q.heterogeneity(f)
    assert h.loc["i2_sensitivity_zd", "median"] == pytest.approx(np.median(want), rel=1e-8)


def test_heterogeneity_zd_by_hand(dementia_fit):
    f = dementia_fit
    mu_se, _, t_se, _, _ = _bivariate_draws(f)
    n1 = f.data.n_diseased
    s2 = (np.exp(mu_se + t_se**2 / 2) + np.exp(-mu_se + t_se**2 / 2) + 2) * np.mean(1 / n1)
    i2 = t_se**2 / (t_se**2 + s2)
    assert Q.heterogeneity(f).loc["i2_sensitivity_zd", "median"] == pytest.approx(np.median(i2))


def test_fagan_matches_hand_computation(dementia_fit):
    f = dementia_fit
    se, sp = _flat(f, "sensitivity"), _flat(f, "specificity")
    lr_pos, lr_neg = se / (1 - sp), (1 - se) / sp
    p = 0.2
    post_pos = p * lr_pos / (p * lr_pos + 1 - p)
    post_neg = p * lr_neg / (p * lr_neg + 1 - p)
    fg = Q.fagan(f, pretest=[0.1, p], ci=0.9)
    row = fg.loc[fg["pretest"] == p].iloc[0]
    assert row["positive"] == pytest.approx(np.median(post_pos))
    assert row["positive_lower"] == pytest.approx(np.quantile(post_pos, 0.05))
    assert row["negative_upper"] == pytest.approx(np.quantile(post_neg, 0.95))
    assert fg.attrs["lr_positive"][0] == pytest.approx(f.summary().loc["lr_positive", "median"])
    grid = Q.fagan(f)
    np.testing.assert_allclose(grid["pretest"], Q.DEFAULT_PRETEST)
    assert np.all(np.diff(grid["positive"]) > 0)
    wide = Q.fagan(f, pretest=[p], predictive=True).iloc[0]
    assert (
        wide["positive_upper"] - wide["positive_lower"]
        > row["positive_upper"] - row["positive_lower"]
    )


def _deeks_tables(rng, k, *, asymmetry):
    """k tables; with asymmetry, small studies report a larger DOR (a small-study effect)."""
    n1, n0 = rng.integers(15, 300, k), rng.integers(15, 300, k)
    ess = 4 * n1 * n0 / (n1 + n0)
    shift = asymmetry * (1 / np.sqrt(ess) - np.mean(1 / np.sqrt(ess))) / 0.05
    se = special.expit(1.2 + shift / 2)
    sp = special.expit(1.6 + shift / 2)
    tp, tn = rng.binomial(n1, se), rng.binomial(n0, sp)
    return tp, n0 - tn, n1 - tp, tn


def test_deeks_test_is_calibrated_and_detects_asymmetry(smoking_fit):
    """Simulation: P < 0.10 in about 10% of meta-analyses without small-study effects, and in
    most with a strong one; the fit wrapper tests the fit's rows."""
    rng = np.random.default_rng(3)
    null = [S.deeks_test(*_deeks_tables(rng, 30, asymmetry=0.0))["p_value"] for _ in range(400)]
    rate = np.mean(np.asarray(null) < 0.10)
    assert 0.05 <= rate <= 0.16, rate
    alt = [S.deeks_test(*_deeks_tables(rng, 30, asymmetry=1.0))["p_value"] for _ in range(100)]
    assert np.mean(np.asarray(alt) < 0.10) > 0.8
    res = Q.deeks(smoking_fit)
    assert res["labels"] == smoking_fit.data.row_labels and res["df"] == smoking_fit.data.n_rows - 2


# ------------------------------------------------------------------------------------------
# influence
# ------------------------------------------------------------------------------------------
def test_influence_without_refits(dementia_fit):
    inf = Q.influence(dementia_fit, refit="none", seed=4)
    loo = dementia_fit.loo(by="study", integrated=False)
    np.testing.assert_allclose(inf["pareto_k_conditional"], loo["pareto_k"])
    np.testing.assert_allclose(inf["elpd_loo_conditional"], loo["loo_i"])
    li = Q.loo_integrated(dementia_fit, seed=4)
    np.testing.assert_allclose(inf["pareto_k"], li["pareto_k"])
    np.testing.assert_allclose(inf["elpd_loo"], li["loo_i"])
    assert inf.attrs["elpd_loo"] == pytest.approx(li["elpd_loo"])
    assert list(inf.index) == dementia_fit.data.studies
    assert not inf["refitted"].any() and inf["delta_sensitivity"].isna().all()
    with pytest.raises(SpecError, match="refit"):
        Q.influence(dementia_fit, refit="some")


def test_influence_refits_change_summary_with_the_right_sign(dementia_fit):
    """Leaving out the most and least sensitive study moves the summary the opposite ways."""
    shr = Q.shrunken(dementia_fit)
    high = shr["study"].iloc[int(np.argmax(shr["sensitivity"]))]
    low = shr["study"].iloc[int(np.argmin(shr["sensitivity"]))]
    inf = Q.influence(dementia_fit, studies=[high, low], draws=200)
    assert inf["refitted"].sum() == 2
    assert inf.loc[high, "delta_sensitivity"] < 0 < inf.loc[low, "delta_sensitivity"]
    base = inf.attrs["sensitivity"]
    assert inf.loc[high, "sensitivity_without"] == pytest.approx(
        base + inf.loc[high, "delta_sensitivity"]
    )
    assert np.isfinite(inf.loc[[high, low], "elpd_exact"]).all()
    assert inf.drop(index=[high, low])["elpd_exact"].isna().all()


# ------------------------------------------------------------------------------------------
# row-level quantities
# ------------------------------------------------------------------------------------------
def test_observed_clopper_pearson_matches_scipy(dementia_fit):
    obs = Q.observed(dementia_fit, ci=0.9)
    d = dementia_fit.data
    for i in (0, 5, 12):
        ref = sps.binomtest(int(d.tp[i]), int(d.n_diseased[i])).proportion_ci(0.9, "exact")
        assert obs["sensitivity_lower"].iloc[i] == pytest.approx(ref.low)
        assert obs["sensitivity_upper"].iloc[i] == pytest.approx(ref.high)
    # a zero cell: exact upper limit 1 - (a/2)^(1/n)
    full = np.flatnonzero(d.tp == d.n_diseased)
    if full.size:
        i = int(full[0])
        assert obs["sensitivity_upper"].iloc[i] == 1.0
        assert obs["sensitivity_lower"].iloc[i] == pytest.approx(0.05 ** (1 / d.n_diseased[i]))


def test_shrunken_estimates_are_pulled_toward_the_summary(dementia_fit):
    f = dementia_fit
    shr = Q.shrunken(f)
    assert list(shr.index) == f.data.row_labels
    assert np.all(shr["sensitivity_lower"] <= shr["sensitivity"])
    assert np.all(shr["sensitivity"] <= shr["sensitivity_upper"])
    mu = f.summary().loc["mu_sensitivity", "median"]
    obs = special.logit(np.clip(shr["observed_sensitivity"], 0.005, 0.995))
    post = special.logit(shr["sensitivity"])
    assert np.mean(np.abs(post - mu)) < np.mean(np.abs(obs - mu))


@pytest.mark.parametrize("mixed", [False, True])
def test_posterior_predictive_counts(smoking_fit, mixed):
    f = smoking_fit
    rep = Q.posterior_predictive(f, seed=1, mixed=mixed)
    assert rep["TP"].dims == ("chain", "draw", "row")
    tp, tn = rep["TP"].values, rep["TN"].values
    assert tp.min() >= 0 and np.all(tp <= f.data.n_diseased)
    assert tn.min() >= 0 and np.all(tn <= f.data.n_nondiseased)
    again = Q.posterior_predictive(f, seed=1, mixed=mixed)
    np.testing.assert_array_equal(again["TP"].values, tp)
    if not mixed:
        # conditional replicates: mean n1 * invlogit(theta) per row
        expected = (f.data.n_diseased * special.expit(f.posterior["theta"].values[..., 0])).mean(
            axis=(0, 1)
        )
        np.testing.assert_allclose(tp.mean(axis=(0, 1)), expected, rtol=0.05, atol=1.0)
    else:
        # mixed replicates spread more than conditional ones
        cond = Q.posterior_predictive(f, seed=1)["TP"].values
        assert np.mean(tp.std(axis=(0, 1))) > np.mean(cond.std(axis=(0, 1)))


# ------------------------------------------------------------------------------------------
# integrated study likelihood (leave-one-study-out)
# ------------------------------------------------------------------------------------------
def _grid_log_marginal(k, n, offset, cov, half_width=10.0, n_grid=801):
    """Brute-force 2-D quadrature of prod Bin(k | n, invlogit(offset + x)) N(x | 0, cov)."""
    g = np.linspace(-half_width, half_width, n_grid)
    X, Y = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel()], -1)
    eta = offset + pts
    ll = (sps.binom.logpmf(k, n, special.expit(eta))).sum(-1)
    ll = ll + sps.multivariate_normal(np.zeros(2), cov).logpdf(pts)
    return special.logsumexp(ll) + 2 * np.log(g[1] - g[0])


@pytest.mark.parametrize(
    "k, n, offset",
    [
        ([118, 110], [130, 120], [1.4, 2.2]),  # moderate study near the mean
        ([27, 1233], [74, 1258], [3.0, 1.8]),  # large study far from the mean
        ([5, 0], [5, 40], [1.0, 1.0]),  # zero / full cells
    ],
)
def test_laplace_importance_sampling_matches_quadrature(k, n, offset):
    """The estimate is unbiased on the log scale to < 0.01 with a per-draw SD of ~0.03."""
    k, n, offset = (np.asarray(v, dtype=float) for v in (k, n, offset))
    reps = 100  # the same integral repeated, as for 100 posterior draws
    offs = np.tile(offset, (reps, 1))
    cov = np.array([[0.8, -0.3], [-0.3, 1.4]])
    ref = _grid_log_marginal(k, n, offset, cov)
    got = Q._laplace_is_log_marginal(
        k, n, offs, np.eye(2), np.tile(cov, (reps, 1, 1)), np.random.default_rng(1), n_inner=64
    )
    assert got.mean() == pytest.approx(ref, abs=0.015)
    assert got.std() < 0.06
    # three-level form: u ~ N(0, Sb), v ~ N(0, Sw), theta = offset + u + v (4-D integral)
    sb, sw = np.array([[2.1, -1.3], [-1.3, 0.95]]), np.array([[1.2, -0.27], [-0.27, 0.6]])
    prior = np.zeros((reps, 4, 4))
    prior[:, :2, :2], prior[:, 2:, 2:] = sb, sw
    design = np.hstack([np.eye(2), np.eye(2)])
    got3 = Q._laplace_is_log_marginal(
        k, n, offs, design, prior, np.random.default_rng(2), n_inner=64
    )
    assert got3.mean() == pytest.approx(_grid_log_marginal(k, n, offset, sb + sw), abs=0.015)
    assert got3.std() < 0.06


def test_integrated_loo_agrees_with_exact_refit(dementia_fit):
    """PSIS on the integrated study likelihood reproduces exact leave-one-study-out refits.

    The conditional PSIS-LOO (given each study's own theta) is too optimistic for informative
    studies; the integrated one is not.
    """
    f = dementia_fit
    li = Q.loo_integrated(f)
    assert li["labels"] == f.data.studies
    ll = Q.study_log_likelihood(f)
    assert ll.dims == ("chain", "draw", "study") and np.isfinite(ll.values).all()
    k = np.asarray(li["pareto_k"])
    i = int(np.argmax(k))  # the hardest study for importance sampling
    study = f.data.studies[i]
    inf = Q.influence(f, studies=[study, study], draws=300)
    assert inf["refitted"].sum() == 1
    row = inf.loc[study]
    assert row["elpd_loo"] == pytest.approx(row["elpd_exact"], abs=0.5)
    assert li["elpd_loo"] < f.loo(by="study", integrated=False)["elpd_loo"]
    # exact leave-one-study-out by brute force: refit without the study, then
    # log mean_j p(y_s | phi_j) with the study's 2-D effect integrated on a grid
    w = np.ones(f.data.n_rows)
    w[i] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        r = f.refit(weights=w, draws=300)
    mu_se, mu_sp, t_se, t_sp, rho = _bivariate_draws(r)
    d = f.data
    (y_se, v_se), (y_sp, v_sp) = _logit_variances_by_hand(d)
    axes = []
    for y, v, mu, t in ((y_se, v_se, mu_se, t_se), (y_sp, v_sp, mu_sp, t_sp)):
        lo = min(y[i] - 8 * np.sqrt(v[i]), np.min(mu - 8 * t))
        hi = max(y[i] + 8 * np.sqrt(v[i]), np.max(mu + 8 * t))
        axes.append(np.linspace(lo, hi, 401))
    gx, gy = np.meshgrid(*axes, indexing="ij")
    loglik = sps.binom.logpmf(d.tp[i], d.n_diseased[i], special.expit(gx)) + sps.binom.logpmf(
        d.tn[i], d.n_nondiseased[i], special.expit(gy)
    )
    cell = np.log(axes[0][1] - axes[0][0]) + np.log(axes[1][1] - axes[1][0])
    log_p = np.empty(mu_se.size)
    for j in range(mu_se.size):
        zx, zy = (gx - mu_se[j]) / t_se[j], (gy - mu_sp[j]) / t_sp[j]
        q = (zx**2 - 2 * rho[j] * zx * zy + zy**2) / (1 - rho[j] ** 2)
        log_prior = -0.5 * q - np.log(2 * np.pi * t_se[j] * t_sp[j] * np.sqrt(1 - rho[j] ** 2))
        log_p[j] = special.logsumexp(loglik + log_prior) + cell
    exact = special.logsumexp(log_p) - np.log(log_p.size)
    assert li["loo_i"][i] == pytest.approx(exact, abs=0.3), (k[i], li["loo_i"][i], exact)


# ------------------------------------------------------------------------------------------
# honest labels of meta-regressions, pooled over the covariate mix (issue 9)
# ------------------------------------------------------------------------------------------
REF_TEXT = (
    "at reference levels (backbone=ResNet, reference_standard=DXA, dimensionality=2D, "
    "validation=internal)"
)


def test_meta_regression_summary_is_labelled_at_reference_levels(osteo_fit, dementia_fit):
    s = osteo_fit.summary()
    for q in ("sensitivity", "specificity", "lr_positive", "lr_negative", "dor", "auc"):
        assert REF_TEXT in s.loc[q, "description"], q
    assert s.attrs["reference"] == REF_TEXT
    assert "observed covariate mix" in s.loc["sensitivity_pooled", "description"]
    text = osteo_fit.format_summary()
    assert "sensitivity, specificity, lr_positive, lr_negative, dor" in text
    assert REF_TEXT in text and "sensitivity_pooled, specificity_pooled: over the observed" in text
    # without covariates: the summary point, no reference levels, no pooled duplicates
    d = dementia_fit.summary()
    assert d.loc["sensitivity", "description"] == "Sensitivity (summary point)"
    assert d.attrs["reference"] == "" and "sensitivity_pooled" not in d.index
    assert "reference levels" not in dementia_fit.format_summary()


def test_pooled_over_covariate_mix_matches_numpy(osteo_fit):
    """sensitivity_pooled = invlogit(mean_r x_r beta), the design built here from the data."""
    frame = osteo_fit.data.frame
    for outcome in ("sensitivity", "specificity"):
        beta = osteo_fit.posterior[f"beta_{outcome}"]
        eta = beta.sel({f"coef_{outcome}": "Intercept"}).values.copy()
        for cov, level in (
            ("backbone", "DenseNet"),
            ("backbone", "Other"),
            ("reference_standard", "CT"),
            ("dimensionality", "3D"),
            ("validation", "external"),
        ):
            share = float(np.mean(frame[cov].astype(str) == level))
            coef = f"{cov}[T.{level}]"
            eta += share * beta.sel({f"coef_{outcome}": coef}).values
        want = special.expit(eta).ravel()
        got = osteo_fit.draws(f"{outcome}_pooled").transpose("chain", "draw").values.ravel()
        np.testing.assert_allclose(got, want, rtol=1e-10)
        # not the summary point at the reference levels
        ref = _flat(osteo_fit, outcome)
        assert np.max(np.abs(np.median(got) - np.median(ref))) > 0.005
    # the same number in the subgroups table (pooled row) and the summary
    from bayesdta.workflows import regression as R

    sub = R.subgroups(osteo_fit, by="backbone", pooled=True)
    row = sub.loc[("pooled", "observed covariate mix")]
    assert row["sensitivity"] == pytest.approx(np.median(_flat(osteo_fit, "sensitivity_pooled")))
    assert row["n_rows"] == osteo_fit.data.n_rows
    assert ("pooled", "observed covariate mix") not in R.subgroups(osteo_fit, by="backbone").index


def test_summary_accepts_glob_patterns_and_names_unknown_quantities(dementia_fit):
    s = dementia_fit.summary(quantities=["lr_*"])
    assert list(s.index) == ["lr_positive", "lr_negative"]
    s = dementia_fit.summary(quantities=["rho", "tau_*", "rho"])
    assert list(s.index) == ["rho", "tau_sensitivity", "tau_specificity"]
    with pytest.raises(SpecError, match=r"unknown quantity 'sensitivty'; known: sensitivity, "):
        dementia_fit.summary(quantities=["sensitivty"])
    with pytest.raises(SpecError) as info:
        dementia_fit.summary(quantities=["nothing_*"])
    assert "\n" not in str(info.value) and "auc" in str(info.value)


def test_sroc_range_with_zero_false_positives_stays_off_the_axis(dementia_fit):
    """A table with FP = 0 enters the curve's range with its posterior FPR, not 0."""
    f = dementia_fit
    d = f.data
    assert (d.fp == 0).any()
    fpr = d.fp / d.n_nondiseased
    theta_sp = f.posterior["theta"].sel(outcome="specificity").values  # (chain, draw, row)
    post_fpr = np.median(1.0 - special.expit(theta_sp), axis=(0, 1))
    support = np.where(d.fp == 0, post_fpr, fpr)
    want = (support.min(), support.max())
    curve = Q.sroc(f)
    assert curve["fpr"].min() == pytest.approx(want[0]) and curve["fpr"].max() == pytest.approx(
        want[1]
    )
    assert curve["fpr"].min() > 0 and curve["median"].min() > 0.05  # not down to (0, 0)
    assert Q.auc(f).attrs["fpr_range"] == pytest.approx(want)
    assert f.summary().loc["auc_partial", "median"] == pytest.approx(
        Q.auc(f).loc["auc_partial", "median"]
    )


def test_influence_reports_the_pareto_k_of_loo(dementia_fit):
    """One Pareto k per study: influence's k is DTAFit.loo's (the report's Pareto k table)."""
    inf = Q.influence(dementia_fit, refit="none")
    loo = dementia_fit.loo(by="study")
    np.testing.assert_array_equal(inf["pareto_k"].to_numpy(), np.asarray(loo["pareto_k"]))
    np.testing.assert_array_equal(inf["elpd_loo"].to_numpy(), np.asarray(loo["loo_i"]))


def test_summary_takes_exact_names_with_brackets(osteo_fit):
    name = "beta_sensitivity[backbone[T.DenseNet]]"
    s = osteo_fit.summary(quantities=[name, "beta_specificity[*"])
    assert s.index[0] == name and len(s) == 6
    assert "backbone DenseNet vs ResNet" in s.loc[name, "description"]
