"""Tests of bayesdta.stats: every check compares against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special
from scipy import stats as sps

from bayesdta.exceptions import DTADataError, SpecError
from bayesdta.families import stats as S

mpath = pytest.importorskip("matplotlib.path")

FPR_GRID = np.linspace(0.01, 0.99, 25)


def _sigma(tau_se, tau_sp, rho):
    c = rho * tau_se * tau_sp
    return np.array([[tau_se**2, c], [c, tau_sp**2]])


def _simulate_bivariate(mu_se, mu_sp, tau_se, tau_sp, rho, n, seed):
    rng = np.random.default_rng(seed)
    return rng.multivariate_normal([mu_se, mu_sp], _sigma(tau_se, tau_sp, rho), size=n)


def _inverse_harbord(h):
    """Independent implementation of the HSROC -> bivariate map of Harbord et al. (2007).

    From logit se = (theta + alpha/2) exp(-beta/2), logit fpr = (theta - alpha/2) exp(beta/2).
    """
    lam, th, b = h["Lambda"], h["Theta"], h["beta"]
    s2a, s2t = h["sigma2_alpha"], h["sigma2_theta"]
    var_se = np.exp(-b) * (s2t + s2a / 4)
    var_fpr = np.exp(b) * (s2t + s2a / 4)
    cov_se_fpr = s2t - s2a / 4
    return {
        "mu_se": np.exp(-b / 2) * (th + lam / 2),
        "mu_sp": -np.exp(b / 2) * (th - lam / 2),
        "tau_se": np.sqrt(var_se),
        "tau_sp": np.sqrt(var_fpr),
        "rho": -cov_se_fpr / np.sqrt(var_se * var_fpr),
    }


def _auc_slope_one(a):
    """Closed-form area under expit(a + logit x) on [0, 1]: c/(c-1) * (1 - ln c / (c-1))."""
    c = np.exp(a)
    return c / (c - 1) * (1 - np.log(c) / (c - 1))


# ------------------------------------------------------------------------------------------
# transforms and likelihood ratios
# ------------------------------------------------------------------------------------------
def test_logit_invlogit_roundtrip_and_values():
    p = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(S.logit(p), np.log(p / (1 - p)))
    np.testing.assert_allclose(S.invlogit(S.logit(p)), p)
    assert S.invlogit(0.0) == 0.5


def test_likelihood_ratios_known_values():
    out = S.likelihood_ratios(0.9, 0.8)
    assert out["lr_positive"] == pytest.approx(4.5)
    assert out["lr_negative"] == pytest.approx(0.125)
    assert out["dor"] == pytest.approx(36.0)
    se = np.full((2, 50), 0.7)
    assert S.likelihood_ratios(se, 0.6)["dor"].shape == (2, 50)


# ------------------------------------------------------------------------------------------
# HSROC conversion and SROC curves
# ------------------------------------------------------------------------------------------
def test_hsroc_matches_simulation_from_hsroc_model():
    """Simulate from the HSROC model itself; the bivariate fit must recover its parameters."""
    truth = {"Lambda": 3.0, "Theta": 0.7, "beta": 0.6, "sigma2_alpha": 0.9, "sigma2_theta": 0.4}
    rng = np.random.default_rng(11)
    n = 400_000
    theta = rng.normal(truth["Theta"], np.sqrt(truth["sigma2_theta"]), n)
    alpha = rng.normal(truth["Lambda"], np.sqrt(truth["sigma2_alpha"]), n)
    b = truth["beta"]
    logit_se = (theta + alpha / 2) * np.exp(-b / 2)
    logit_fpr = (theta - alpha / 2) * np.exp(b / 2)
    logit_sp = -logit_fpr
    cov = np.cov(logit_se, logit_sp)
    est = dict(
        mu_se=logit_se.mean(),
        mu_sp=logit_sp.mean(),
        tau_se=np.sqrt(cov[0, 0]),
        tau_sp=np.sqrt(cov[1, 1]),
        rho=cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1]),
    )
    h = S.hsroc_from_bivariate(**est)
    for key, val in truth.items():
        assert h[key] == pytest.approx(val, abs=0.02), key
    true_curve = special.expit(
        truth["Lambda"] * np.exp(-b / 2) + np.exp(-b) * special.logit(FPR_GRID)
    )
    np.testing.assert_allclose(S.sroc_curve(FPR_GRID, **est, method="hsroc"), true_curve, atol=5e-3)


def test_hsroc_round_trip_with_independent_inverse():
    rng = np.random.default_rng(3)
    shape = (2, 50)
    par = dict(
        mu_se=rng.normal(1.5, 1, shape),
        mu_sp=rng.normal(2.0, 1, shape),
        tau_se=rng.uniform(0.2, 2, shape),
        tau_sp=rng.uniform(0.2, 2, shape),
        rho=rng.uniform(-0.95, 0.95, shape),
    )
    h = S.hsroc_from_bivariate(**par)
    for key in ("Lambda", "Theta", "beta", "sigma2_alpha", "sigma2_theta"):
        assert h[key].shape == shape
    back = _inverse_harbord(h)
    pub = S.bivariate_from_hsroc(**h)
    for key, val in par.items():
        np.testing.assert_allclose(back[key], val, rtol=1e-10, atol=1e-12, err_msg=key)
        np.testing.assert_allclose(pub[key], val, rtol=1e-10, atol=1e-12, err_msg=key)


def test_hsroc_curve_passes_through_summary_point_with_slope_tau_ratio():
    mu_se, mu_sp, tau_se, tau_sp = 1.2, 2.1, 0.5, 1.3
    for rho in (-0.8, 0.0, 0.6):
        fpr0 = special.expit(-mu_sp)
        se0 = S.sroc_curve([fpr0], mu_se, mu_sp, tau_se, tau_sp, rho)[0]
        assert se0 == pytest.approx(special.expit(mu_se))
        coef = S.sroc_coefficients(mu_se, mu_sp, tau_se, tau_sp, rho)
        assert coef["slope"] == pytest.approx(tau_se / tau_sp)


@pytest.fixture(scope="module")
def bivariate_sample():
    par = dict(mu_se=1.4, mu_sp=2.2, tau_se=0.8, tau_sp=1.3, rho=-0.55)
    x = _simulate_bivariate(**par, n=300_000, seed=5)
    return par, x[:, 0], x[:, 1]


def test_regression_se_on_sp_matches_polyfit(bivariate_sample):
    par, logit_se, logit_sp = bivariate_sample
    slope, intercept = np.polyfit(-logit_sp, logit_se, 1)  # E[logit se | logit fpr]
    coef = S.sroc_coefficients(**par, method="regression_se_on_sp")
    assert coef["slope"] == pytest.approx(slope, abs=0.01)
    assert coef["intercept"] == pytest.approx(intercept, abs=0.02)
    expected = special.expit(intercept + slope * special.logit(FPR_GRID))
    curve = S.sroc_curve(FPR_GRID, **par, method="regression_se_on_sp")
    np.testing.assert_allclose(curve, expected, atol=5e-3)


def test_regression_sp_on_se_matches_polyfit(bivariate_sample):
    par, logit_se, logit_sp = bivariate_sample
    c1, c0 = np.polyfit(logit_se, logit_sp, 1)  # logit sp = c0 + c1 logit se
    # invert: logit se = (logit sp - c0) / c1 = (-logit fpr - c0) / c1
    slope, intercept = -1 / c1, -c0 / c1
    coef = S.sroc_coefficients(**par, method="regression_sp_on_se")
    assert coef["slope"] == pytest.approx(slope, rel=0.02)
    assert coef["intercept"] == pytest.approx(intercept, rel=0.02)
    expected = special.expit(intercept + slope * special.logit(FPR_GRID))
    curve = S.sroc_curve(FPR_GRID, **par, method="regression_sp_on_se")
    np.testing.assert_allclose(curve, expected, atol=1e-2)


def test_major_axis_matches_principal_component(bivariate_sample):
    par, logit_se, logit_sp = bivariate_sample
    w, v = np.linalg.eigh(np.cov(-logit_sp, logit_se))
    vec = v[:, np.argmax(w)]
    coef = S.sroc_coefficients(**par, method="major_axis")
    assert coef["slope"] == pytest.approx(vec[1] / vec[0], rel=0.02)
    assert coef["intercept"] == pytest.approx(par["mu_se"] + coef["slope"] * par["mu_sp"])


def test_sroc_methods_differ_and_regression_sp_on_se_nan_at_rho_zero():
    par = dict(mu_se=1.0, mu_sp=1.5, tau_se=0.7, tau_sp=1.1, rho=-0.5)
    curves = {m: S.sroc_curve(FPR_GRID, **par, method=m) for m in S.SROC_METHODS}
    assert not np.allclose(curves["hsroc"], curves["regression_se_on_sp"])
    assert not np.allclose(curves["regression_se_on_sp"], curves["regression_sp_on_se"])
    zero = S.sroc_coefficients(1.0, 1.5, 0.7, 1.1, 0.0, method="regression_sp_on_se")
    assert np.isnan(zero["slope"])
    with pytest.raises(SpecError):
        S.sroc_curve(FPR_GRID, **par, method="nope")
    with pytest.raises(ValueError):
        S.sroc_curve([[0.1, 0.2]], **par)


# ------------------------------------------------------------------------------------------
# AUC
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("a", [-1.5, 0.3, 2.0, 4.5])
def test_auc_slope_one_closed_form_and_quad(a):
    # beta = 0 (tau_se == tau_sp) and Lambda = mu_se + mu_sp = a: logit se = a + logit fpr
    auc = S.auc_sroc(a - 0.8, 0.8, 0.9, 0.9, -0.3)
    quad = integrate.quad(lambda x: special.expit(a + special.logit(x)), 0, 1, epsabs=1e-12)[0]
    assert auc == pytest.approx(_auc_slope_one(a), abs=1e-9)
    assert auc == pytest.approx(quad, abs=1e-9)


@pytest.mark.parametrize("method", S.SROC_METHODS)
def test_auc_general_slope_matches_quad(method):
    par = dict(mu_se=1.1, mu_sp=1.9, tau_se=0.6, tau_sp=1.4, rho=-0.7)
    coef = S.sroc_coefficients(**par, method=method)
    a, b = float(coef["intercept"]), float(coef["slope"])

    def f(x):
        return special.expit(a + b * special.logit(x))

    assert S.auc_sroc(**par, method=method) == pytest.approx(
        integrate.quad(f, 0, 1, epsabs=1e-12, limit=200)[0], abs=1e-7
    )
    lo, hi = 0.05, 0.4
    pauc = S.partial_auc(**par, method=method, fpr_range=(lo, hi))
    assert pauc == pytest.approx(integrate.quad(f, lo, hi, epsabs=1e-12)[0], abs=1e-7)


def test_partial_auc_identities():
    par = dict(mu_se=0.9, mu_sp=1.6, tau_se=0.8, tau_sp=0.5, rho=-0.4)
    auc = S.auc_sroc(**par)
    assert S.partial_auc(**par, fpr_range=(0.0, 1.0)) == pytest.approx(auc, abs=1e-12)
    left = S.partial_auc(**par, fpr_range=(0.0, 0.3))
    right = S.partial_auc(**par, fpr_range=(0.3, 1.0))
    assert left + right == pytest.approx(auc, abs=1e-10)
    # chance diagonal (a = 0, slope 1): normalized pAUC is the midpoint of the range
    diag = dict(mu_se=-0.4, mu_sp=0.4, tau_se=1.0, tau_sp=1.0, rho=-0.2)
    assert S.auc_sroc(**diag) == pytest.approx(0.5, abs=1e-12)
    for lo, hi in [(0.0, 0.2), (0.1, 0.6), (0.5, 1.0)]:
        npauc = S.partial_auc(**diag, fpr_range=(lo, hi), normalize=True)
        assert npauc == pytest.approx((lo + hi) / 2, abs=1e-10)
    with pytest.raises(SpecError):
        S.partial_auc(**par, fpr_range=(0.5, 0.2))


# ------------------------------------------------------------------------------------------
# regions
# ------------------------------------------------------------------------------------------
def test_ellipse_points_on_mahalanobis_contour_and_batched():
    mean = np.array([1.0, -2.0])
    cov = np.array([[2.0, -0.9], [-0.9, 0.8]])
    pts = S.ellipse_points(mean, cov, level=0.9, n_points=150)
    assert pts.shape == (150, 2)
    d = pts - mean
    maha = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
    np.testing.assert_allclose(maha, sps.chi2.ppf(0.9, 2), rtol=1e-10)
    np.testing.assert_allclose(pts[0], pts[-1])
    batch = S.ellipse_points(np.zeros((3, 2)), np.broadcast_to(cov, (3, 2, 2)), n_points=40)
    assert batch.shape == (3, 40, 2)


def _inside(region_fpr_se, fpr, se):
    return mpath.Path(region_fpr_se).contains_points(np.column_stack([fpr, se]))


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_prediction_region_coverage_known_parameters(level):
    par = dict(mu_se=1.3, mu_sp=2.0, tau_se=0.9, tau_sp=0.6, rho=-0.5)
    n_draws = 20_000
    draws = {k: np.full(n_draws, v) for k, v in par.items()}
    region = S.prediction_region(**draws, level=level, seed=2, n_points=400)
    assert region.shape == (400, 2)
    new = _simulate_bivariate(**par, n=20_000, seed=99)
    cover = _inside(region, special.expit(-new[:, 1]), special.expit(new[:, 0])).mean()
    assert cover == pytest.approx(level, abs=0.012)


def test_prediction_region_includes_posterior_uncertainty():
    """Posterior draws of mu ~ N(m, V): new studies are marginally N(m, V + Sigma)."""
    rng = np.random.default_rng(8)
    n_draws = 20_000
    m, v = np.array([1.0, 1.8]), np.array([[0.3, 0.05], [0.05, 0.2]])
    mu = rng.multivariate_normal(m, v, size=n_draws)
    tau_se, tau_sp, rho = 0.7, 0.9, -0.3
    draws = dict(mu_se=mu[:, 0], mu_sp=mu[:, 1], tau_se=tau_se, tau_sp=tau_sp, rho=rho)
    new = rng.multivariate_normal(m, v + _sigma(tau_se, tau_sp, rho), size=20_000)
    fpr_new, se_new = special.expit(-new[:, 1]), special.expit(new[:, 0])
    for method in ("simulate", "moments"):
        region = S.prediction_region(**draws, seed=4, method=method, n_points=400)
        assert _inside(region, fpr_new, se_new).mean() == pytest.approx(0.95, abs=0.012), method
    # ignoring the uncertainty in mu (plug-in) must undercover
    plug = S.prediction_region(m[0], m[1], tau_se, tau_sp, rho, method="moments", n_points=400)
    assert _inside(plug, fpr_new, se_new).mean() < 0.92


def test_confidence_region_covers_its_draws():
    rng = np.random.default_rng(21)
    mu = rng.multivariate_normal([1.2, 2.5], [[0.04, -0.01], [-0.01, 0.02]], size=(4, 2500))
    region = S.confidence_region(mu[..., 0], mu[..., 1], n_points=400)
    assert region.shape == (400, 2)
    cover = _inside(region, special.expit(-mu[..., 1].ravel()), special.expit(mu[..., 0].ravel()))
    assert cover.mean() == pytest.approx(0.95, abs=0.01)
    logit_region = S.confidence_region(mu[..., 0], mu[..., 1], n_points=400, scale="logit")
    np.testing.assert_allclose(special.expit(logit_region), region)


def test_predictive_draws_moments_and_seed():
    par = dict(mu_se=0.5, mu_sp=1.5, tau_se=0.8, tau_sp=1.2, rho=-0.6)
    n = 200_000
    draws = {k: np.full(n, v) for k, v in par.items()}
    se1, sp1 = S.predictive_draws(**draws, seed=3)
    se2, sp2 = S.predictive_draws(**draws, seed=3)
    np.testing.assert_array_equal(se1, se2)
    np.testing.assert_array_equal(sp1, sp2)
    ls, lp = special.logit(se1), special.logit(sp1)
    assert ls.mean() == pytest.approx(0.5, abs=0.01)
    assert lp.mean() == pytest.approx(1.5, abs=0.01)
    assert ls.std() == pytest.approx(0.8, rel=0.01)
    assert lp.std() == pytest.approx(1.2, rel=0.01)
    assert np.corrcoef(ls, lp)[0, 1] == pytest.approx(-0.6, abs=0.01)


# ------------------------------------------------------------------------------------------
# heterogeneity
# ------------------------------------------------------------------------------------------
def test_logit_variances_by_hand_with_conditional_correction():
    tp, fp, fn, tn = [10, 0], [4, 3], [5, 5], [20, 7]
    v = S.logit_variances(tp, fp, fn, tn)
    np.testing.assert_allclose(v.se, [1 / 10 + 1 / 5, 1 / 0.5 + 1 / 5.5])
    np.testing.assert_allclose(v.sp, [1 / 20 + 1 / 4, 1 / 7.5 + 1 / 3.5])
    with pytest.raises(DTADataError):
        S.logit_variances([1, -1], [1, 1], [1, 1], [1, 1])


def test_typical_within_variance_and_i2_univariate_by_hand():
    v = np.array([0.1, 0.2, 0.4])
    # w = (10, 5, 2.5); sum w = 17.5; sum w^2 = 131.25; s2 = 2 * 17.5 / (306.25 - 131.25)
    s2 = S.typical_within_variance(v)
    assert s2 == pytest.approx(0.2)
    assert S.i2_univariate(0.2, s2) == pytest.approx(0.5)
    assert S.typical_within_variance(np.full(6, 0.37)) == pytest.approx(0.37)
    tau2 = np.linspace(0, 1, 100).reshape(2, 50)
    i2 = S.i2_univariate(tau2, s2)
    assert i2.shape == (2, 50)
    np.testing.assert_allclose(i2, tau2 / (tau2 + 0.2))


def test_expected_within_variance_matches_monte_carlo():
    rng = np.random.default_rng(17)
    mu, tau2, n = 1.2, 0.6, np.array([40, 85, 120, 300])
    p = special.expit(rng.normal(mu, np.sqrt(tau2), 1_000_000))
    mc = np.mean(1 / (p * (1 - p))) * np.mean(1 / n)
    assert S.expected_within_variance(mu, tau2, n) == pytest.approx(mc, rel=0.01)


def test_i2_bivariate_limits_and_reduction():
    s2_se, s2_sp = 0.3, 0.2
    assert S.i2_bivariate(0.0, 0.8, -0.5, s2_se, s2_sp) == pytest.approx(0.0)
    assert S.i2_bivariate(0.8, 0.8, -1.0, s2_se, s2_sp) == pytest.approx(0.0)
    assert S.i2_bivariate(1e3, 1e3, -0.5, s2_se, s2_sp) > 0.999
    # reduces to the univariate tau2 / (tau2 + s2) for equal, uncorrelated components
    assert S.i2_bivariate(0.7, 0.7, 0.0, 0.25, 0.25) == pytest.approx(0.49 / (0.49 + 0.25))
    # generalised-variance definition computed by hand with determinants
    sig = _sigma(0.9, 0.6, 0.4)
    sw = np.array([[0.3, 0.05], [0.05, 0.2]])
    root_b, root_w = np.sqrt(np.linalg.det(sig)), np.sqrt(np.linalg.det(sw))
    assert S.i2_bivariate(0.9, 0.6, 0.4, 0.3, 0.2, 0.05) == pytest.approx(
        root_b / (root_b + root_w)
    )
    tau = np.linspace(0.01, 3, 100).reshape(2, 50)
    i2 = S.i2_bivariate(tau, 0.5 * tau, -0.3, s2_se, s2_sp)
    assert i2.shape == (2, 50)
    assert np.all(np.diff(i2.ravel()) > 0)


# ------------------------------------------------------------------------------------------
# Fagan
# ------------------------------------------------------------------------------------------
def test_posttest_probability_known_values_and_shapes():
    pre = np.linspace(0.0, 1.0, 7)
    np.testing.assert_allclose(S.posttest_probability(pre, 1.0), pre)
    assert S.posttest_probability(0.2, 12.0) == pytest.approx(0.75)
    assert S.posttest_probability(0.5, 0.1) == pytest.approx(0.1 / 1.1)
    lr = np.full((2, 50), 3.0)
    out = S.posttest_probability(pre, lr)
    assert out.shape == (2, 50, 7)
    odds = pre[1:-1] / (1 - pre[1:-1]) * 3.0
    np.testing.assert_allclose(out[1, 7, 1:-1], odds / (1 + odds))


def test_fagan_positive_negative():
    se, sp = np.array([0.9, 0.8]), np.array([0.925, 0.6])
    out = S.fagan([0.2, 0.5], se, sp)
    assert out["positive"].shape == (2, 2)
    # se 0.9, sp 0.925 -> LR+ = 12, pre 0.2 -> 0.75
    assert out["positive"][0, 0] == pytest.approx(0.75)
    lr_neg = (1 - 0.8) / 0.6
    assert out["negative"][1, 1] == pytest.approx(lr_neg / (1 + lr_neg))


# ------------------------------------------------------------------------------------------
# Deeks' test
# ------------------------------------------------------------------------------------------
COUNTS = np.array(
    [[66, 4, 240, 870], [118, 12, 10, 110], [48, 20, 64, 990], [134, 8, 28, 152],
     [20, 0, 5, 50], [35, 9, 17, 260], [9, 3, 0, 30], [80, 14, 40, 400]]
)  # made-up counts; columns TP, FN, FP, TN  # fmt: skip


def test_deeks_matches_lstsq_wls():
    tp, fn, fp, tn = COUNTS.T.astype(float)
    out = S.deeks_test(tp, fp, fn, tn)
    # hand computation
    zero = (tp == 0) | (fp == 0) | (fn == 0) | (tn == 0)
    a, b, c, d = (cell + 0.5 * zero for cell in (tp, fp, fn, tn))
    y = np.log(a * d / (b * c))
    n1, n0 = tp + fn, fp + tn
    ess = 4 * n1 * n0 / (n1 + n0)
    x = 1 / np.sqrt(ess)
    np.testing.assert_allclose(out["x"], x)
    np.testing.assert_allclose(out["y"], y)
    np.testing.assert_allclose(out["weights"], ess)
    X = np.column_stack([np.ones_like(x), x])
    sw = np.sqrt(ess)
    coef, rss, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    k = len(y)
    cov = rss[0] / (k - 2) * np.linalg.inv(X.T @ (X * ess[:, None]))
    assert out["intercept"] == pytest.approx(coef[0], rel=1e-10)
    assert out["slope"] == pytest.approx(coef[1], rel=1e-10)
    assert out["se_slope"] == pytest.approx(np.sqrt(cov[1, 1]), rel=1e-10)
    assert out["se_intercept"] == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-10)
    t = coef[1] / np.sqrt(cov[1, 1])
    assert out["t"] == pytest.approx(t, rel=1e-10)
    assert out["df"] == k - 2
    assert out["p_value"] == pytest.approx(2 * sps.t.sf(abs(t), k - 2), rel=1e-10)


def test_weighted_line_equal_weights_is_linregress():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, 12)
    y = 0.3 + 1.7 * x + rng.normal(0, 0.4, 12)
    fit = S._weighted_line(x, y, np.full(12, 3.0))
    ref = sps.linregress(x, y)
    assert fit["slope"] == pytest.approx(ref.slope)
    assert fit["intercept"] == pytest.approx(ref.intercept)
    assert fit["se_slope"] == pytest.approx(ref.stderr)
    assert fit["se_intercept"] == pytest.approx(ref.intercept_stderr)
    assert fit["p_value"] == pytest.approx(ref.pvalue)


def test_deeks_input_errors():
    with pytest.raises(SpecError):
        S.deeks_test([1, 2], [1, 2], [1, 2], [1, 2])
    with pytest.raises(DTADataError):
        S.deeks_test([1, 2, 3], [1, 2, 3], [1, 2], [1, 2, 3])


# ------------------------------------------------------------------------------------------
# broadcasting
# ------------------------------------------------------------------------------------------
def test_broadcasting_over_draw_shapes():
    rng = np.random.default_rng(1)
    shape = (2, 50)
    mu_se = rng.normal(1, 0.2, shape)
    mu_sp = rng.normal(2, 0.2, shape)
    tau_se = rng.uniform(0.3, 1, shape)
    tau_sp = rng.uniform(0.3, 1, shape)
    rho = -0.4  # scalar broadcasts too
    for method in S.SROC_METHODS:
        curve = S.sroc_curve(FPR_GRID, mu_se, mu_sp, tau_se, tau_sp, rho, method=method)
        assert curve.shape == shape + (FPR_GRID.size,)
        auc = S.auc_sroc(mu_se, mu_sp, tau_se, tau_sp, rho, method=method)
        assert auc.shape == shape
    # per-draw values equal the scalar computation
    i, j = 1, 17
    scalar = S.sroc_curve(FPR_GRID, mu_se[i, j], mu_sp[i, j], tau_se[i, j], tau_sp[i, j], rho)
    full = S.sroc_curve(FPR_GRID, mu_se, mu_sp, tau_se, tau_sp, rho)
    np.testing.assert_allclose(full[i, j], scalar)
    auc = S.auc_sroc(mu_se, mu_sp, tau_se, tau_sp, rho)
    assert auc[i, j] == pytest.approx(
        float(S.auc_sroc(mu_se[i, j], mu_sp[i, j], tau_se[i, j], tau_sp[i, j], rho))
    )
    pauc = S.partial_auc(mu_se, mu_sp, tau_se, tau_sp, rho, fpr_range=(0.1, 0.3))
    assert pauc.shape == shape
    se_new, sp_new = S.predictive_draws(mu_se, mu_sp, tau_se, tau_sp, rho, seed=0)
    assert se_new.shape == sp_new.shape == shape
    assert S.i2_univariate(tau_se**2, 0.3).shape == shape
