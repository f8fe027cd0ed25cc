"""Robust (Student-t) random effects: the "t" family of bayesdta.families.robust."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

import bayesdta as bd
from bayesdta.exceptions import SpecError
from bayesdta.families.bivariate import ModelSpec

TRUE_SE, TRUE_SP = 0.80, 0.90
REFERENCE = Path(__file__).parents[1] / "validation" / "t_family_reference.csv"


def _logit(p):
    p = np.asarray(p, dtype=float)
    return np.log(p / (1 - p))


def _outlier_table(seed: int = 3) -> pd.DataFrame:
    """20 studies around (0.80, 0.90) plus 2 gross outliers at (0.20, 0.40)."""
    rng = np.random.default_rng(seed)
    k = 20
    u = rng.multivariate_normal([0, 0], [[0.3**2, 0], [0, 0.3**2]], size=k)
    lse = np.concatenate([_logit(TRUE_SE) + u[:, 0], _logit([0.2, 0.25])])
    lsp = np.concatenate([_logit(TRUE_SP) + u[:, 1], _logit([0.4, 0.35])])
    n1 = rng.integers(80, 150, size=k + 2)
    n0 = rng.integers(150, 300, size=k + 2)
    tp = rng.binomial(n1, 1 / (1 + np.exp(-lse)))
    tn = rng.binomial(n0, 1 / (1 + np.exp(-lsp)))
    return pd.DataFrame(
        {
            "study": [f"s{i:02d}" for i in range(k)] + ["out1", "out2"],
            "TP": tp,
            "FN": n1 - tp,
            "FP": n0 - tn,
            "TN": tn,
        }
    )


@pytest.fixture(scope="module")
def outlier_fits():
    table = _outlier_table()
    kw = dict(seed=11, draws=400, tune=400, chains=2, cores=1, verbose=False, escalate=False)
    with _ignore():
        normal = bd.fit(table, **kw)
        robust = bd.fit(table, random_effects="t", **kw)
    return normal, robust


class _ignore:
    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("ignore")

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)


def test_bad_random_effects_is_one_line_spec_error():
    with pytest.raises(SpecError) as e:
        ModelSpec(random_effects="cauchy")
    assert "\n" not in str(e.value) and "'cauchy'" in str(e.value) and "'t'" in str(e.value)
    with pytest.raises(SpecError):
        bd.fit(_outlier_table(), random_effects="cauchy", verbose=False)


def test_nu_prior_fixed_or_estimated_and_only_for_t():
    assert ModelSpec(random_effects="t").priors["nu"].dist == "Gamma"
    assert ModelSpec(random_effects="t", priors={"nu": 4}).priors["nu"].kwargs == {"value": 4.0}
    assert ModelSpec(random_effects="t", priors={"nu": "Exponential(0.1)"}).priors["nu"].dist == (
        "Exponential"
    )
    with pytest.raises(SpecError, match="unknown prior name 'nu'"):
        ModelSpec(priors={"nu": 4})
    with pytest.raises(SpecError):
        ModelSpec(random_effects="t", priors={"nu": "Normal(0, 1)"})
    # switching the family keeps the user's priors that the new family knows
    s = ModelSpec(random_effects="t", priors={"nu": 4, "tau": "HalfNormal(1)"})
    back = s.replace(random_effects="normal")
    assert "nu" not in back.priors and str(back.priors["tau_sensitivity"]) == "HalfNormal(sigma=1)"


def test_three_levels_study_weights_flag_the_outlying_study():
    """Three levels: one t weight per study (rows of a study share it), normal deviations.

    12 studies of two tables each around (0.80, 0.90); both tables of study ``out`` at
    (0.20, 0.40). The outlying study gets the lowest weight, the pooled estimates stay near
    the truth, and the weights are per study (not per row).
    """
    rng = np.random.default_rng(4)
    k = 12
    u = rng.normal(0, 0.3, size=(k, 2))
    lse = np.repeat(np.append(_logit(TRUE_SE) + u[:-1, 0], _logit(0.2)), 2)
    lsp = np.repeat(np.append(_logit(TRUE_SP) + u[:-1, 1], _logit(0.4)), 2)
    lse, lsp = lse + rng.normal(0, 0.15, 2 * k), lsp + rng.normal(0, 0.15, 2 * k)
    n1, n0 = rng.integers(80, 150, 2 * k), rng.integers(150, 300, 2 * k)
    tp, tn = rng.binomial(n1, 1 / (1 + np.exp(-lse))), rng.binomial(n0, 1 / (1 + np.exp(-lsp)))
    table = pd.DataFrame(
        {
            "study": np.repeat([f"s{i:02d}" for i in range(k - 1)] + ["out"], 2),
            "model": ["a", "b"] * k,
            "TP": tp,
            "FN": n1 - tp,
            "FP": n0 - tn,
            "TN": tn,
        }
    )
    with _ignore():
        f = bd.fit(
            table,
            study="study",
            model="model",
            random_effects="t",
            levels=3,
            seed=5,
            draws=300,
            tune=300,
            chains=2,
            cores=1,
            verbose=False,
            escalate=False,
        )
    w = f.study_weights()
    assert list(w.index) == [f"s{i:02d}" for i in range(k - 1)] + ["out"]
    assert w["mean"].idxmin() == "out" and w.loc["out", "mean"] < 0.5 * w["mean"].median()
    s = f.summary(quantities=["sensitivity", "specificity", "nu"])["mean"]
    assert abs(s["sensitivity"] - TRUE_SE) < 0.05 and abs(s["specificity"] - TRUE_SP) < 0.05
    pred = f.predictive()
    assert pred.loc[("new study", "sensitivity"), "lower"] < TRUE_SE


def test_outliers_t_stays_near_truth_and_outliers_get_lowest_weights(outlier_fits):
    normal, robust = outlier_fits
    s_n = normal.summary(quantities=["sensitivity", "specificity"])["mean"]
    s_t = robust.summary(quantities=["sensitivity", "specificity", "nu"])["mean"]
    err_n = abs(s_n["sensitivity"] - TRUE_SE) + abs(s_n["specificity"] - TRUE_SP)
    err_t = abs(s_t["sensitivity"] - TRUE_SE) + abs(s_t["specificity"] - TRUE_SP)
    assert err_t < err_n
    assert abs(s_t["sensitivity"] - TRUE_SE) < 0.04 and abs(s_t["specificity"] - TRUE_SP) < 0.04
    w = robust.study_weights()
    assert list(w.columns) == ["mean", "median", "lower", "upper"]
    assert set(w["mean"].nsmallest(2).index) == {"out1", "out2"}
    with pytest.raises(SpecError, match="random_effects='t'"):
        normal.study_weights()


def test_predictive_uses_t_tails(outlier_fits):
    """A new study's weight is drawn from Gamma(nu/2, nu/2): compare with direct simulation.

    The package draws one new study per posterior draw, so its 95% interval has Monte Carlo
    error; the reference is the distribution of that interval over 400 independent repeats
    of the same simulation (with and without the weight).
    """
    _, robust = outlier_fits
    post = robust.posterior
    mu = post["beta_sensitivity"].sel(coef_sensitivity="Intercept").values.ravel()
    tau = post["tau_sensitivity"].values.ravel()
    nu = post["nu"].values.ravel()
    rng = np.random.default_rng(5)
    reps = 400
    z = rng.standard_normal((reps, nu.size))
    lam = rng.gamma(nu / 2, 2 / nu, size=(reps, nu.size))

    def lower(x):
        from scipy.special import expit

        return np.quantile(expit(x), 0.025, axis=1)

    t_lo = lower(mu + tau * z / np.sqrt(lam))
    normal_lo = lower(mu + tau * z)
    pred = robust.predictive().loc[("new study", "sensitivity")]
    assert np.quantile(t_lo, 0.005) <= pred["lower"] <= np.quantile(t_lo, 0.995)
    assert not np.quantile(normal_lo, 0.005) <= pred["lower"] <= np.quantile(normal_lo, 0.995)


def test_save_load_keeps_random_effects(outlier_fits, tmp_path):
    _, robust = outlier_fits
    path = robust.save(tmp_path / "t.nc")
    back = bd.load(path)
    assert back.spec.random_effects == "t"
    assert back.spec.priors["nu"] == robust.spec.priors["nu"]
    pd.testing.assert_frame_equal(back.study_weights(), robust.study_weights())


def _reference_table():
    """The table of validation/t_family_reference.py (checked equal to ``_outlier_table(3)``)."""
    import importlib.util

    path = REFERENCE.with_suffix(".py")
    spec = importlib.util.spec_from_file_location("t_family_reference", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.table()


def _disagreement(fit, ref: pd.DataFrame) -> pd.Series:
    """|posterior mean - reference mean| in units of the combined Monte Carlo SE, per quantity."""
    out = {}
    for q in ref.index:
        if q not in fit.quantity_names():
            continue
        x = fit.draws(q).transpose("chain", "draw").values
        mcse = x.std() / np.sqrt(float(az.ess(x, method="bulk")))
        out[q] = abs(x.mean() - ref.loc[q, "mean"]) / np.hypot(mcse, ref.loc[q, "mcse"])
    return pd.Series(out)


def test_agrees_with_independent_multivariate_t_and_detects_normal_effects(outlier_fits):
    """The t fit against an independent implementation; the normal fit must fail the check.

    ``validation/t_family_reference.py`` writes the long-run posterior of the same model
    written with PyMC's ``MvStudentT`` (no weights, no conditional factorization, no partial
    centering; nu ~ Gamma(2, 0.1)). The package's t fit agrees with it within 4 Monte Carlo
    SEs on the means of mu, tau and nu; the package's normal-effects fit of the same table
    disagrees (more than 4 SEs on the pooled logits): the check tells the two laws apart.
    """
    normal, robust = outlier_fits
    pd.testing.assert_frame_equal(_reference_table(), _outlier_table(3))
    ref = pd.read_csv(REFERENCE).set_index("quantity")
    assert (ref["r_hat"] < 1.01).all() and (ref["divergences"] == 0).all()
    z_t = _disagreement(robust, ref)
    assert len(z_t) == 5 and (z_t < 4).all(), z_t.to_dict()
    z_n = _disagreement(normal, ref)
    assert z_n[["mu_sensitivity", "mu_specificity"]].max() > 4, z_n.to_dict()


def test_analysis_spec_random_effects(tmp_path):
    from bayesdta.reporting.spec import load_spec

    path = tmp_path / "t.toml"
    path.write_text(
        '[data]\nexample = "dementia"\n[model]\nrandom_effects = "t"\n[model.priors]\nnu = 4\n'
    )
    spec = load_spec(path).fits[0].model_spec()
    assert spec.random_effects == "t" and spec.priors["nu"].kwargs == {"value": 4.0}
    path.write_text('[data]\nexample = "dementia"\n[model]\nrandom_effects = "cauchy"\n')
    with pytest.raises(SpecError) as e:
        load_spec(path)
    assert "random_effects" in str(e.value) and "\n" not in str(e.value).strip()


def test_integrated_study_likelihood_uses_t_effects(outlier_fits):
    """LOO's integrated study likelihood against 2-D quadrature over the bivariate t."""
    from scipy import stats

    from bayesdta.posterior.quantities import _study_log_marginal

    _, robust = outlier_fits
    post = robust.posterior
    row = robust.data.studies.index("out1")
    # the integrated log-likelihood of this one study (study_log_likelihood stacks these)
    ll = _study_log_marginal(robust, np.array([row]), np.random.default_rng(1))
    d = robust.data
    grid = np.linspace(-12, 12, 801)
    g1, g2 = np.meshgrid(grid, grid, indexing="ij")
    h = grid[1] - grid[0]
    for c, dr in ((0, 5), (1, 100), (0, 333)):
        p = {k: float(post[k].values[c, dr]) for k in ("tau_sensitivity", "tau_specificity")}
        rho = float(post["rho"].values[c, dr])
        nu = float(post["nu"].values[c, dr])
        mu = [
            float(post["beta_sensitivity"].values[c, dr, 0]),
            float(post["beta_specificity"].values[c, dr, 0]),
        ]
        t1, t2 = p["tau_sensitivity"], p["tau_specificity"]
        cov = [[t1**2, rho * t1 * t2], [rho * t1 * t2, t2**2]]
        dens = stats.multivariate_t(loc=mu, shape=cov, df=nu).pdf(np.dstack([g1, g2]))
        lik = stats.binom.pmf(d.tp[row], d.n_diseased[row], 1 / (1 + np.exp(-g1))) * (
            stats.binom.pmf(d.tn[row], d.n_nondiseased[row], 1 / (1 + np.exp(-g2)))
        )
        exact = np.log(np.sum(dens * lik) * h * h)
        assert abs(float(ll[c, dr]) - exact) < 0.1, (c, dr, exact)


SWEEP_SPEC = """
[analysis]
name = "robust"
seed = 5

[data]
file = "outliers.csv"

[sampler]
chains = 2
draws = 150
tune = 200

[outputs]
tables = ["summary"]
figures = ["forest"]

[[regression]]
name = "t_effects"
title = "Student-t study effects"
random_effects = "t"

[sensitivity]
random_effects = ["normal", "t"]
quantities = ["sensitivity", "specificity", "nu"]
"""


def test_random_effects_sweep_axis_and_report_model_comparison(tmp_path):
    """``[sensitivity] random_effects = ["normal", "t"]`` and the report's LOO comparison.

    On the table with two gross outliers the t variant's pooled estimates are nearer the
    truth than the normal ones, only the t variant has ``nu``, the figure is written; the
    report's ``model_comparison`` (integrated PSIS-LOO by study, t minus normal) favours the t
    effects by more than two standard errors.
    """
    from bayesdta.reporting import report as rp
    from bayesdta.reporting import sensitivity as sens
    from bayesdta.reporting.spec import load_spec

    _outlier_table(3).to_csv(tmp_path / "outliers.csv", index=False)
    (tmp_path / "spec.toml").write_text(SWEEP_SPEC)
    spec = load_spec(tmp_path / "spec.toml")
    assert spec.sensitivity.random_effects == ("normal", "t")
    variants = sens.build_variants(spec, spec.load_data())
    assert [v.name for v in variants] == ["baseline", "random_effects:normal", "random_effects:t"]
    assert variants[1].description.endswith("(as baseline)")
    assert variants[2].model["random_effects"] == "t"
    with _ignore():
        table = sens.run_sweep(spec, tmp_path / "sweep", workers=1, progress=False)
    t = table.set_index("variant")
    assert (t["status"] == "ok").all()
    assert np.isnan(t.loc["random_effects:normal", "nu_median"])
    assert np.isfinite(t.loc["random_effects:t", "nu_median"])
    err = {
        v: abs(t.loc[v, "sensitivity_median"] - TRUE_SE)
        + abs(t.loc[v, "specificity_median"] - TRUE_SP)
        for v in ("random_effects:normal", "random_effects:t")
    }
    assert err["random_effects:t"] < err["random_effects:normal"]
    assert (tmp_path / "sweep" / "sweep.png").exists()

    with _ignore():
        rp.run_analysis(spec, tmp_path / "run")
    mc = pd.read_csv(tmp_path / "run" / "tables" / "model_comparison.csv")
    assert list(mc["fit"]) == ["t_effects"] and mc.loc[0, "random_effects"] == "t"
    assert mc.loc[0, "elpd_diff"] > 2 * mc.loc[0, "se_diff"] > 0
