"""The maximum-likelihood companion (bayesdta.fit_ml, issue 13).

Statistical claims are checked against independent computations:

* lme4's glmer (Laplace, nAGQ = 1, tolPwrss = 1e-10) in ``validation/ml_glmer_reference.csv``
  (written by ``validation/ml_glmer_reference.R``; R is never needed by the tests). Both
  maximize the same Laplace-approximate likelihood, so they must agree up to the optimisers'
  termination: measured max |difference| 5e-6 over all estimates and cases
  (``validation/compare_ml_glmer.py``); the tolerance 1e-4 on logits, SDs and rho leaves a
  margin of 20 and still fails on any modelling difference (a missing binomial coefficient,
  another parameterization of rho, a wrong design scale would each be off by > 1e-2).
* scipy's adaptive ``dblquad`` / ``quad`` of the marginal likelihood of each study (brute
  force, in the original random-effect scale, with scipy.stats densities), for the AGHQ rule.
* closed forms: with tau_sensitivity = 0 the ML summary sensitivity is the pooled proportion.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from scipy.special import expit, logit

import bayesdta as bd
from bayesdta.cli import main
from bayesdta.inference.ml import ml_loglik

ROOT = Path(__file__).resolve().parents[1]
REF = pd.read_csv(ROOT / "validation" / "ml_glmer_reference.csv")
BENCH = ROOT / "benchmarks" / "data"


def load(dataset: str):
    path = BENCH / f"{dataset}.csv"
    return pd.read_csv(path) if path.exists() else bd.load_example(dataset)


def glmer(case: str) -> dict[str, float]:
    g = REF[REF.case == case]
    assert len(g), case
    return dict(zip(g["quantity"], g["value"], strict=True))


def quiet_fit(*args, **kwargs) -> bd.MLFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.MLWarning)
        return bd.fit_ml(*args, **kwargs)


CASES = {
    "skin_tests": ("skin_tests", "~ 1", "~ 1"),
    "smoking ~ type": ("smoking", "~ type", "~ type"),
    "osteoporosis_dl ~ dimensionality + prevalence": (
        "osteoporosis_dl",
        "~ dimensionality + prevalence",
        "~ dimensionality + prevalence",
    ),
    "telomerase": ("telomerase", "~ 1", "~ 1"),
}


@pytest.fixture(scope="module")
def laplace_fits() -> dict[str, bd.MLFit]:
    out = {}
    for case, (dataset, f_se, f_sp) in CASES.items():
        out[case] = quiet_fit(
            load(dataset),
            formula_sensitivity=f_se,
            formula_specificity=f_sp,
            levels=2,
            n_quad=1,
        )
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_laplace_fit_agrees_with_glmer(laplace_fits, case):
    """n_quad=1 is glmer's Laplace fit: estimates, log-likelihood and standard errors."""
    fit, ref = laplace_fits[case], glmer(case)
    s = fit.summary()
    assert fit.converged
    for o in ("sensitivity", "specificity"):
        for c in fit.design.columns[o]:
            name = f"beta_{o}[{c}]"
            row = f"mu_{o}" if c == "Intercept" else name
            assert s.loc[row, "estimate"] == pytest.approx(ref[name], abs=1e-4), name
            # SEs: both from finite-difference Hessians (lme4 over theta and beta)
            assert s.loc[row, "std_error"] == pytest.approx(ref["se_" + name], rel=2e-3), name
    for k in ("tau_sensitivity", "tau_specificity", "rho"):
        assert s.loc[k, "estimate"] == pytest.approx(ref[k], abs=1e-4), k
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-5)
    # glmer's singular fits are exactly ours on the boundary
    assert fit.at_boundary == bool(ref["singular"])


def test_likelihood_ratio_tests_and_subgroup_table_agree_with_glmer():
    """ml_subgroups: LRT statistics and per-level pooled values from glmer's fits."""
    smoking = bd.load_example("smoking")
    df = bd.ml_subgroups(smoking, covariates=["type"], levels=2, n_quad=1)
    base, full, se_only = (
        glmer("smoking"),
        glmer("smoking ~ type"),
        glmer("smoking ~ type (se only)"),
    )
    row = df.loc[("type", "SAQ")]
    assert row["lrt_chi2"] == pytest.approx(2 * (full["loglik"] - base["loglik"]), abs=1e-4)
    assert row["lrt_df"] == 2
    assert row["lrt_p"] == pytest.approx(stats.chi2.sf(row["lrt_chi2"], 2), rel=1e-9)
    assert row["lrt_chi2_sensitivity"] == pytest.approx(
        2 * (se_only["loglik"] - base["loglik"]), abs=1e-4
    )
    b0, b1 = full["beta_sensitivity[Intercept]"], full["beta_sensitivity[type[T.SAQ]]"]
    assert row["sensitivity"] == pytest.approx(expit(b0 + b1), abs=1e-5)
    assert df.loc[("type", "IAQ"), "sensitivity"] == pytest.approx(expit(b0), abs=1e-5)
    assert row["coef_sensitivity"] == pytest.approx(b1, abs=1e-4)
    assert row["coef_specificity"] == pytest.approx(full["beta_specificity[type[T.SAQ]]"], abs=1e-4)
    # the Wald interval of the level: logit +- z * sqrt(x' V x) with glmer's variances
    half = logit(row["sensitivity_upper"]) - logit(row["sensitivity"])
    assert half > 0
    assert df.loc[("type", "SAQ"), "n_rows"] == int((smoking.frame["type"] == "SAQ").sum())
    assert df.loc[("overall", "all"), "sensitivity"] == pytest.approx(
        expit(base["beta_sensitivity[Intercept]"]), abs=1e-5
    )


def _brute_force_loglik(tp, fp, fn, tn, mu, tau, rho) -> float:
    """Sum over studies of log of the 2-D integral by scipy dblquad (independent code).

    Plain-math integrand (binomial pmf by lgamma, the bivariate normal density written out)
    so that the adaptive quadrature takes a second, not minutes.
    """
    s1, s2 = tau
    det = s1 * s1 * s2 * s2 * (1 - rho * rho)
    norm = 1.0 / (2 * math.pi * math.sqrt(det))
    total = 0.0
    for a, b, c, d in zip(tp, fp, fn, tn, strict=True):
        n1, n0 = a + c, d + b
        lc = (
            math.lgamma(n1 + 1)
            - math.lgamma(a + 1)
            - math.lgamma(c + 1)
            + math.lgamma(n0 + 1)
            - math.lgamma(d + 1)
            - math.lgamma(b + 1)
        )

        def f(u2, u1, a=a, n1=n1, d=d, n0=n0, lc=lc):
            e1, e2 = mu[0] + u1, mu[1] + u2
            # log p^y (1-p)^(n-y) = y e - n log(1 + e^e)
            ll = a * e1 - n1 * math.log1p(math.exp(e1)) + d * e2 - n0 * math.log1p(math.exp(e2))
            q = (s2 * s2 * u1 * u1 - 2 * rho * s1 * s2 * u1 * u2 + s1 * s1 * u2 * u2) / det
            return math.exp(lc + ll - 0.5 * q) * norm

        lim = 9.0
        val, _ = integrate.dblquad(
            f, -lim * s1, lim * s1, -lim * s2, lim * s2, epsabs=0, epsrel=1e-10
        )
        total += math.log(val)
    return total


def test_aghq_matches_brute_force_integral():
    """AGHQ (n_quad=15) reproduces the exact marginal likelihood; Laplace (n_quad=1) does not."""
    # small counts (skin_tests) and a table with zero cells (FN = 0, FP = 0)
    d = bd.load_example("skin_tests").frame[["TP", "FP", "FN", "TN"]].iloc[:3]
    d = pd.concat([d, pd.DataFrame({"TP": [5], "FP": [0], "FN": [0], "TN": [20]})])
    args = {"mu": (-1.1, 3.6), "tau": (1.4, 1.45), "rho": -0.37}
    exact = _brute_force_loglik(d.TP, d.FP, d.FN, d.TN, **args)
    kw = {
        "mu_sensitivity": -1.1,
        "mu_specificity": 3.6,
        "tau_sensitivity": 1.4,
        "tau_specificity": 1.45,
        "rho": -0.37,
    }
    aghq = ml_loglik(d, n_quad=15, **kw)
    laplace = ml_loglik(d, n_quad=1, **kw)
    assert aghq == pytest.approx(exact, abs=1e-6)
    assert abs(laplace - exact) > 1e-3  # the check can tell a cruder rule


def test_aghq_on_the_boundary_matches_one_dimensional_integral():
    """rho = -1: the random effects lie on a line; compare with scipy quad of the 1-D integral."""
    tel = load("telomerase").iloc[:5]
    mu, tau = (1.2, 2.3), (0.43, 1.8)
    total = 0.0
    for r in tel.itertuples():

        def f(z, r=r):
            return (
                stats.binom.pmf(r.TP, r.TP + r.FN, expit(mu[0] + tau[0] * z))
                * stats.binom.pmf(r.TN, r.TN + r.FP, expit(mu[1] - tau[1] * z))
                * stats.norm.pdf(z)
            )

        total += math.log(integrate.quad(f, -12, 12, epsabs=0, epsrel=1e-12, limit=200)[0])
    got = ml_loglik(
        tel,
        mu_sensitivity=mu[0],
        mu_specificity=mu[1],
        tau_sensitivity=tau[0],
        tau_specificity=tau[1],
        rho=-1.0,
        n_quad=15,
    )
    assert got == pytest.approx(total, abs=1e-6)


def test_boundary_rho_minus_one_is_flagged():
    """Telomerase: the ML fit (AGHQ) sits at rho = -1 (Riley et al. 2007); said loudly."""
    with pytest.warns(bd.MLWarning, match="rho = -1"):
        fit = bd.fit_ml(load("telomerase"))
    assert fit.boundary == ["rho = -1"] and fit.at_boundary
    s = fit.summary()
    assert s.loc["rho", "estimate"] == -1.0
    assert np.isnan(s.loc["rho", "lower"])  # no Wald interval on the boundary
    assert any("boundary" in n and "chi-bar-square" in n for n in fit.notes)
    # the profile likelihood of rho decreases away from -1, so its interval starts at -1
    assert fit.profile_loglik("rho", -0.8) < fit.loglik - 0.05
    lo, hi = fit.profile_interval("rho")
    assert lo == -1.0 and -1.0 < hi < 0.0


def test_boundary_tau_zero_gives_the_pooled_proportion():
    """Homogeneous sensitivities: tau_sensitivity = 0, so the ML sensitivity is the pooled one.

    With tau_sensitivity = 0 the model of sensitivity is a fixed-effect logistic model, whose
    ML estimate is the pooled proportion sum(TP) / sum(TP + FN) exactly.
    """
    n1 = np.array([50, 60, 40, 80, 70, 55, 45, 65])
    tp = np.round(0.8 * n1).astype(int)
    n0 = np.array([100, 120, 90, 150, 80, 110, 95, 130])
    spec = np.array([0.95, 0.80, 0.90, 0.70, 0.97, 0.85, 0.60, 0.92])
    tn = np.round(spec * n0).astype(int)
    df = pd.DataFrame({"TP": tp, "FN": n1 - tp, "TN": tn, "FP": n0 - tn})
    with pytest.warns(bd.MLWarning, match="tau_sensitivity = 0"):
        fit = bd.fit_ml(df)
    assert fit.boundary == ["tau_sensitivity = 0"]
    e = fit.estimates
    assert e["tau_sensitivity"] == 0.0
    assert math.isnan(e["rho"])  # not identified when a tau is 0
    assert e["mu_sensitivity"] == pytest.approx(logit(tp.sum() / n1.sum()), abs=1e-5)
    assert e["tau_specificity"] > 0.5


def test_lrt_checks_and_boundary_note(laplace_fits):
    smoking = bd.load_example("smoking")
    base = quiet_fit(smoking, levels=2, n_quad=1)
    full = laplace_fits["smoking ~ type"]
    t = bd.lrt(base, full)
    assert t.df == 2 and t.tested == [
        "beta_sensitivity[type[T.SAQ]]",
        "beta_specificity[type[T.SAQ]]",
    ]
    assert full.lrt(base).statistic == t.statistic  # order does not matter
    with pytest.raises(bd.SpecError, match="different data"):
        bd.lrt(laplace_fits["skin_tests"], full)
    other = quiet_fit(smoking, formula="~ population", levels=2, n_quad=1)
    with pytest.raises(bd.SpecError, match="not nested"):
        bd.lrt(other, full)
    with pytest.raises(bd.SpecError, match="n_quad"):
        bd.lrt(quiet_fit(smoking, levels=2, n_quad=3), full)
    # a boundary fit: the test says that its chi-square reference is approximate
    tel = load("telomerase")
    tel["big"] = np.where(tel["TP"] + tel["FN"] > 40, "yes", "no")
    t2 = bd.lrt(quiet_fit(tel, n_quad=1), quiet_fit(tel, formula="~ big", n_quad=1))
    assert "boundary" in t2.note


def test_errors_are_one_line():
    smoking = bd.load_example("smoking")
    with pytest.raises(bd.SpecError, match="levels=2") as e:
        bd.fit_ml(smoking)
    assert "\n" not in str(e.value)
    with pytest.raises(bd.SpecError, match="two levels only"):
        bd.fit_ml(smoking, levels=3)
    with pytest.raises(bd.SpecError, match="n_quad"):
        bd.fit_ml(bd.load_example("dementia"), n_quad=0)


def test_cli_fit_ml_writes_the_glmer_numbers(tmp_path, capsys):
    csv = tmp_path / "skin.csv"
    bd.load_example("skin_tests").frame[["TP", "FP", "FN", "TN"]].to_csv(csv, index=False)
    rc = main(["fit", str(csv), "--out", str(tmp_path / "out"), "--ml", "--n-quad", "1"])
    assert rc == 0
    got = pd.read_csv(tmp_path / "out" / "ml_summary.csv").set_index("quantity")
    ref = glmer("skin_tests")
    assert got.loc["mu_sensitivity", "estimate"] == pytest.approx(
        ref["beta_sensitivity[Intercept]"], abs=1e-4
    )
    assert "log-likelihood" in capsys.readouterr().out
    assert main(["fit", str(csv), "--out", str(tmp_path / "o2"), "--ml", "--link", "probit"]) == 2


def test_ml_summary_table_beside_the_bayesian_fit(dementia_fit):
    df = bd.ml_summary(dementia_fit, n_quad=1)
    ref = glmer("dementia")
    assert df.loc["mu_sensitivity", "ml_estimate"] == pytest.approx(
        ref["beta_sensitivity[Intercept]"], abs=1e-4
    )
    for c in ("ml_lower", "ml_upper", "bayes_median", "bayes_lower", "bayes_upper"):
        assert np.isfinite(df.loc["sensitivity", c])
    # with weak priors the posterior median of the pooled logit is close to the ML estimate
    bayes = logit(df.loc["sensitivity", "bayes_median"])
    assert abs(bayes - ref["beta_sensitivity[Intercept]"]) < 0.15
    assert "ml_summary" in bd.registry.TABLES and "ml_subgroups" in bd.registry.TABLES


def test_ml_tables_refuse_a_three_level_fit_with_the_option_that_fixes_it(smoking_fit):
    with pytest.raises(bd.SpecError, match="levels = 2"):
        bd.ml_summary(smoking_fit)
    with pytest.raises(bd.SpecError, match="levels = 2"):
        bd.ml_subgroups(smoking_fit, covariates=["type"])


def test_same_numbers_after_other_fits():
    """Deterministic: no random starts; the mode search restarts with every fit."""
    d = bd.load_example("skin_tests")
    a = bd.fit_ml(d, n_quad=3)
    quiet_fit(load("telomerase"), n_quad=3)
    b = bd.fit_ml(d, n_quad=3)
    assert a.loglik == b.loglik
    assert a.estimates == b.estimates
