"""The link function as a model option: probit next to the default logit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special
from scipy import stats as sps

import bayesdta as bd
from bayesdta.exceptions import SpecError
from bayesdta.families import links as lk
from bayesdta.families import stats as st
from bayesdta.families.bivariate import ModelSpec
from bayesdta.posterior import quantities as Q

TRUTH = {"mu_se": 1.1, "mu_sp": 1.5, "tau_se": 0.5, "tau_sp": 0.4, "rho": -0.4}


def _simulate(n_studies: int = 40, seed: int = 2024) -> tuple[pd.DataFrame, np.ndarray]:
    """Studies from the bivariate probit model; also returns the realized study effects."""
    rng = np.random.default_rng(seed)
    t = TRUTH
    cov = np.array(
        [
            [t["tau_se"] ** 2, t["rho"] * t["tau_se"] * t["tau_sp"]],
            [t["rho"] * t["tau_se"] * t["tau_sp"], t["tau_sp"] ** 2],
        ]
    )
    theta = rng.multivariate_normal([t["mu_se"], t["mu_sp"]], cov, size=n_studies)
    n1 = rng.integers(60, 200, n_studies)
    n0 = rng.integers(150, 500, n_studies)
    tp = rng.binomial(n1, sps.norm.cdf(theta[:, 0]))
    tn = rng.binomial(n0, sps.norm.cdf(theta[:, 1]))
    frame = pd.DataFrame(
        {
            "study": [f"s{i:02d}" for i in range(n_studies)],
            "TP": tp,
            "FP": n0 - tn,
            "FN": n1 - tp,
            "TN": tn,
        }
    )
    return frame, theta


@pytest.fixture(scope="module")
def probit_fit():
    frame, theta = _simulate()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        f = bd.fit(frame, link="probit", seed=7, draws=500, tune=500, chains=2)
    return f, theta


# ------------------------------------------------------------------------------ the module
def test_model_log_cdf_agrees_with_scipy_in_both_tails():
    """The likelihood's log F (the compiled graph, numba backend) and its gradient vs scipy.

    The probit form is written with erfc and an asymptotic series below -20 (cacheable code);
    it must match scipy's log_ndtr from the far lower tail (where Phi underflows) to the upper
    tail (where log Phi is tiny), with finite gradients everywhere (no NaN through the switch).
    """
    import pytensor
    import pytensor.tensor as pt

    x = pt.dvector("x")
    xs = np.concatenate([np.linspace(-60.0, 40.0, 2001), [-20.0, -20.0 - 1e-9, 0.0, -1e-300]])
    for link in lk.LINKS:
        f = lk.pt_log_inverse(x, link)
        fn = pytensor.function([x], [f, pytensor.grad(f.sum(), x)], mode="NUMBA")
        value, grad = fn(xs)
        ref = special.log_ndtr(xs) if link == "probit" else -np.logaddexp(0.0, -xs)
        dref = (
            np.exp(-0.5 * xs**2 - 0.5 * np.log(2 * np.pi) - ref)
            if link == "probit"
            else (special.expit(-xs))
        )
        big = np.abs(ref) > 1e-250
        np.testing.assert_allclose(value[big], ref[big], rtol=1e-11)
        np.testing.assert_allclose(value, ref, rtol=0, atol=1e-10)
        assert np.all(np.isfinite(grad))
        np.testing.assert_allclose(grad, dref, rtol=1e-9, atol=1e-300)


def test_link_functions_agree_with_scipy():
    x = np.linspace(-8.0, 8.0, 33)
    p = np.linspace(0.01, 0.99, 17)
    assert np.allclose(lk.inverse(x, "logit"), special.expit(x))
    assert np.allclose(lk.inverse(x, "probit"), sps.norm.cdf(x))
    assert np.allclose(lk.forward(p, "probit"), sps.norm.ppf(p))
    assert np.allclose(lk.log_inverse(x, "probit"), sps.norm.logcdf(x))
    assert np.allclose(lk.log_inverse(-x, "logit"), np.log1p(-special.expit(x)))
    assert np.allclose(lk.density(x, "probit"), sps.norm.pdf(x))
    for link in lk.LINKS:
        # symmetry, used for log(1 - p) and link(fpr) = -link(sp)
        assert np.allclose(lk.inverse(-x, link), 1.0 - lk.inverse(x, link))
        # derivatives against finite differences; the far tail stays finite
        h = 1e-5
        d1 = (lk.log_inverse(x + h, link) - lk.log_inverse(x - h, link)) / (2 * h)
        assert np.allclose(lk.dlog_inverse(x, link), d1, rtol=1e-6, atol=1e-8)
        d2 = (lk.dlog_inverse(x + h, link) - lk.dlog_inverse(x - h, link)) / (2 * h)
        assert np.allclose(lk.neg_d2log_inverse(x, link), -d2, rtol=1e-5, atol=1e-8)
        assert np.all(np.isfinite(lk.log_inverse(np.array([-60.0, 60.0]), link)))
    with pytest.raises(SpecError, match="cloglog"):
        lk.inverse(x, "cloglog")


def test_model_spec_link_is_validated_and_serialized():
    with pytest.raises(SpecError, match=r"link must be one of \['logit', 'probit'\]"):
        ModelSpec(link="cloglog")
    s = ModelSpec(link="probit")
    assert ModelSpec.from_dict(s.to_dict()).link == "probit"
    old = ModelSpec().to_dict()
    del old["link"]  # fits saved before the link option
    assert ModelSpec.from_dict(old).link == "logit"
    assert "probit link" in s.describe() and "logit link" in ModelSpec().describe()
    data = bd.load_example("dementia")
    with pytest.raises(SpecError, match="either spec="):
        bd.fit(data, spec=s, link="probit")


def test_structure_key_depends_on_link():
    from bayesdta.families.bivariate import build_model

    data = bd.load_example("dementia")
    a = build_model(data, ModelSpec())
    b = build_model(data, ModelSpec(link="probit"))
    assert a.structure_key != b.structure_key


def test_spec_file_accepts_probit(tmp_path):
    from bayesdta.reporting.spec import load_spec

    bd.load_example("dementia").frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "s.toml").write_text(
        '[data]\nfile = "d.csv"\n\n[model]\nlevels = 2\nlink = "probit"\n'
    )
    spec = load_spec(tmp_path / "s.toml")
    assert spec.fits[0].link == "probit" and spec.fits[0].model_spec().link == "probit"


# ------------------------------------------------------------------------------ pure stats
@pytest.mark.parametrize(
    "params",
    [
        (1.2, 1.5, 0.9, 0.7, -0.3),
        (0.3, 2.0, 0.4, 1.6, 0.5),
        (-0.5, 0.2, 1.5, 0.3, -0.9),
    ],
)
def test_probit_auc_matches_direct_integration(params):
    c = st.sroc_coefficients(*params)
    a, b = float(c["intercept"]), float(c["slope"])

    def se(x):
        return sps.norm.cdf(a + b * sps.norm.ppf(x))

    full = integrate.quad(se, 0.0, 1.0, limit=200, epsabs=1e-12)[0]
    assert st.auc_sroc(*params, link="probit") == pytest.approx(full, abs=1e-8)
    part = integrate.quad(se, 0.05, 0.3, limit=200, epsabs=1e-12)[0]
    assert st.partial_auc(*params, fpr_range=(0.05, 0.3), link="probit") == pytest.approx(
        part, abs=1e-8
    )
    grid = np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    assert np.allclose(st.sroc_curve(grid, *params, link="probit"), se(grid))
    # the logit default is unchanged
    assert st.auc_sroc(*params) == pytest.approx(st.auc_sroc(*params, link="logit"), abs=0)


def test_probit_regions_predictive_and_variances():
    rng = np.random.default_rng(3)
    mu_se, mu_sp = rng.normal(1.0, 0.1, 400), rng.normal(1.4, 0.1, 400)
    link_pts = st.confidence_region(mu_se, mu_sp, scale="link", link="probit")
    prob_pts = st.confidence_region(mu_se, mu_sp, link="probit")
    assert np.allclose(prob_pts, sps.norm.cdf(link_pts))
    with pytest.raises(SpecError, match="scale='link'"):
        st.confidence_region(mu_se, mu_sp, scale="logit", link="probit")
    se, sp = st.predictive_draws(1.0, 1.4, 0.5, 0.4, -0.3, seed=1, link="probit")
    l_se, l_sp = st.predictive_draws(1.0, 1.4, 0.5, 0.4, -0.3, seed=1, logit_scale=True)
    assert se == pytest.approx(sps.norm.cdf(l_se)) and sp == pytest.approx(sps.norm.cdf(l_sp))
    counts = ([20, 0, 45], [5, 3, 10], [4, 7, 5], [60, 30, 90])
    assert np.allclose(st.link_variances(*counts), st.logit_variances(*counts))
    v = st.link_variances(*counts, link="probit")
    tp, fp, fn, tn, _ = st.continuity_correction(*counts)
    p = tp / (tp + fn)
    expected = p * (1 - p) / ((tp + fn) * sps.norm.pdf(sps.norm.ppf(p)) ** 2)
    assert np.allclose(v.se, expected)
    with pytest.raises(SpecError, match="logit link only"):
        st.expected_within_variance(1.0, 0.25, [10, 20], link="probit")


def test_probit_laplace_marginal_matches_quadrature():
    """The integrated study likelihood under probit against brute-force 2-D integration."""
    k, n = np.array([37.0, 180.0]), np.array([45.0, 200.0])
    offset = np.array([[1.0, 1.3], [0.5, 2.0]])
    cov = np.array([[[0.3, -0.1], [-0.1, 0.2]], [[1.0, 0.4], [0.4, 0.8]]])
    got = Q._laplace_is_log_marginal(
        k, n, offset, np.eye(2), cov, np.random.default_rng(0), n_inner=4000, link="probit"
    )
    g = np.linspace(-6.0, 6.0, 1201)
    x1, x2 = np.meshgrid(g, g, indexing="ij")
    xs = np.stack([x1.ravel(), x2.ravel()], axis=-1)
    for i in range(2):
        ll = sps.binom.logpmf(k, n, sps.norm.cdf(offset[i] + xs)).sum(axis=-1)  # scipy
        lp = sps.multivariate_normal(np.zeros(2), cov[i]).logpdf(xs)
        ref = special.logsumexp(ll + lp) + 2 * np.log(g[1] - g[0])
        assert got[i] == pytest.approx(ref, abs=0.01)


# ------------------------------------------------------------------------------ a probit fit
def test_probit_pointwise_log_likelihood(probit_fit):
    f, _ = probit_fit
    d = f.data
    theta = f.posterior["theta"].transpose("chain", "draw", "row", "outcome").values
    expected = sps.binom.logpmf(d.tp, d.n_diseased, sps.norm.cdf(theta[..., 0])) + (
        sps.binom.logpmf(d.tn, d.n_nondiseased, sps.norm.cdf(theta[..., 1]))
    )
    stored = f.idata.log_likelihood["dta"].transpose("chain", "draw", "row").values
    assert np.allclose(stored, expected, rtol=1e-9, atol=1e-9)


def test_probit_parameter_recovery(probit_fit):
    f, theta = probit_fit
    realized = {
        "mu_sensitivity": TRUTH["mu_se"],
        "mu_specificity": TRUTH["mu_sp"],
        "tau_sensitivity": float(np.std(theta[:, 0], ddof=1)),
        "tau_specificity": float(np.std(theta[:, 1], ddof=1)),
        "rho": float(np.corrcoef(theta.T)[0, 1]),
    }
    s = f.summary(0.99)
    for name, value in realized.items():
        assert s.loc[name, "lower"] < value < s.loc[name, "upper"], (name, value, s.loc[name])
    mu = f.draws("mu_sensitivity").values
    assert s.loc["sensitivity", "median"] == pytest.approx(np.median(sps.norm.cdf(mu)), abs=1e-12)
    se = sps.norm.cdf(mu)
    sp = sps.norm.cdf(f.draws("mu_specificity").values)
    assert s.loc["lr_positive", "median"] == pytest.approx(np.median(se / (1 - sp)), rel=1e-12)
    # downstream quantities use the probit link
    reg = f.regions()
    assert reg["summary"][1] == pytest.approx(np.median(se), abs=1e-12)
    assert reg["summary"][0] == pytest.approx(np.median(1 - sp), abs=1e-12)
    shr = f.shrunken()
    th = f.posterior["theta"].sel(outcome="sensitivity").transpose("chain", "draw", "row")
    assert np.allclose(shr["sensitivity"], np.median(sps.norm.cdf(th.values), axis=(0, 1)))
    het = f.heterogeneity()
    assert "i2_sensitivity_zd" not in het.index and het.attrs["notes"]
    assert np.all(np.isfinite(het["median"]))


def test_probit_fit_save_load(probit_fit, tmp_path):
    f, _ = probit_fit
    path = f.save(tmp_path / "probit.nc")
    g = bd.load(path)
    assert g.spec.link == "probit"
    pd.testing.assert_frame_equal(
        g.summary().drop(columns=["ess_bulk", "r_hat", "ess_tail"]),
        f.summary().drop(columns=["ess_bulk", "r_hat", "ess_tail"]),
    )
