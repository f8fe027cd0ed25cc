"""Fitting: parameter recovery, agreement with maximum likelihood, reproducibility, persistence."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import bayesdta as bd
from bayesdta import SamplerWarning

from .reference_glmm import fit_bivariate_ml

SUMMARY_COLUMNS = ["mean", "median", "sd", "lower", "upper", "ess_bulk", "r_hat"]


def simulate(seed, *, n_studies, rows_per_study, mu, tau, rho, tau_w=None, rho_w=None):
    """Counts from the documented model with known truth (independent numpy simulator)."""
    rng = np.random.default_rng(seed)
    cov_b = np.array([[tau[0] ** 2, rho * tau[0] * tau[1]], [rho * tau[0] * tau[1], tau[1] ** 2]])
    u = rng.multivariate_normal([0, 0], cov_b, size=n_studies)
    rows = []
    realized_w = []
    for s in range(n_studies):
        k = rows_per_study[s % len(rows_per_study)]
        for m in range(k):
            th = np.asarray(mu) + u[s]
            if tau_w is not None:
                c = rho_w * tau_w[0] * tau_w[1]
                cov_w = np.array([[tau_w[0] ** 2, c], [c, tau_w[1] ** 2]])
                v = rng.multivariate_normal([0, 0], cov_w)
                realized_w.append(v)
                th = th + v
            n1 = int(rng.integers(40, 250))
            n0 = int(rng.integers(80, 500))
            tp = rng.binomial(n1, expit(th[0]))
            tn = rng.binomial(n0, expit(th[1]))
            rows.append(
                {
                    "study": f"S{s}",
                    "model": f"m{m}",
                    "TP": tp,
                    "FN": n1 - tp,
                    "TN": tn,
                    "FP": n0 - tn,
                }
            )
    df = pd.DataFrame(rows)
    df.attrs["realized_sd_between"] = u.std(axis=0, ddof=1)
    df.attrs["realized_corr_between"] = float(np.corrcoef(u.T)[0, 1])
    if realized_w:
        df.attrs["realized_sd_within"] = np.std(realized_w, axis=0, ddof=1)
    return df


def _covers(fit, truth, prob=0.99):
    s = fit.summary(ci=prob)
    out = {}
    for name, value in truth.items():
        out[name] = bool(s.loc[name, "lower"] <= value <= s.loc[name, "upper"])
    return out, s


def test_recovery_two_level():
    """Truth within the 99% intervals; SDs and correlation as realized in the simulated effects."""
    df = simulate(101, n_studies=40, rows_per_study=[1], mu=(1.5, 2.0), tau=(0.7, 0.9), rho=-0.4)
    sd, corr = df.attrs["realized_sd_between"], df.attrs["realized_corr_between"]
    truth = {
        "mu_sensitivity": 1.5,
        "mu_specificity": 2.0,
        "tau_sensitivity": sd[0],
        "tau_specificity": sd[1],
        "rho": corr,
    }
    f = bd.fit(df, seed=5, draws=600, tune=600, chains=2)
    covered, s = _covers(f, truth)
    assert all(covered.values()), (covered, s.loc[list(truth)])
    assert f.levels == 2
    assert s.loc["sensitivity", "median"] == pytest.approx(
        float(expit(s.loc["mu_sensitivity", "median"])), abs=1e-3
    )


def test_recovery_three_level():
    """Three replicates; 90% intervals must cover the truth in most of the 18 checks.

    SDs are compared with the SDs of the effects actually drawn (what the data can inform).
    With 18 checks at 90%, at least 13 covered fails with probability < 5% if calibrated.
    """
    covered_all = []
    for sim in (202, 203, 204):
        df = simulate(
            sim,
            n_studies=30,
            rows_per_study=[1, 2, 3, 2],
            mu=(1.2, 2.2),
            tau=(0.8, 0.6),
            rho=-0.3,
            tau_w=(0.5, 0.4),
            rho_w=0.2,
        )
        sd_b, sd_w = df.attrs["realized_sd_between"], df.attrs["realized_sd_within"]
        truth = {
            "mu_sensitivity": 1.2,
            "mu_specificity": 2.2,
            "tau_sensitivity": sd_b[0],
            "tau_specificity": sd_b[1],
            "tau_within_sensitivity": sd_w[0],
            "tau_within_specificity": sd_w[1],
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplerWarning)
            f = bd.fit(df, seed=sim, draws=1000, tune=1000, chains=2)
        assert f.levels == 3
        covered, _ = _covers(f, truth, prob=0.9)
        covered_all += list(covered.values())
    assert sum(covered_all) >= 13, covered_all


def test_agrees_with_maximum_likelihood_glmm(dementia_fit, dementia_data):
    """Posterior means of the pooled logits match an independent AGHQ ML fit of the same GLMM.

    With 33 studies of hundreds of participants the likelihood dominates the weak priors, so the
    posterior mean and the MLE differ by a small fraction of the posterior SD.
    """
    d = dementia_data
    ml = fit_bivariate_ml(d.tp, d.fp, d.fn, d.tn, n_quad=15)
    assert ml["converged"]
    s = dementia_fit.summary()
    for name, key in [("mu_sensitivity", "mu_se"), ("mu_specificity", "mu_sp")]:
        assert abs(s.loc[name, "mean"] - ml[key]) < 0.3 * s.loc[name, "sd"], (name, ml[key])
    # between-study SDs: posterior medians within 15% of the MLE (ML is biased slightly low)
    for name, key in [("tau_sensitivity", "tau_se"), ("tau_specificity", "tau_sp")]:
        assert abs(s.loc[name, "median"] / ml[key] - 1) < 0.15, (
            name,
            s.loc[name, "median"],
            ml[key],
        )
    assert abs(s.loc["rho", "median"] - ml["rho"]) < 0.15


def test_summary_contract(dementia_fit, smoking_fit):
    s = dementia_fit.summary(0.9)
    assert list(s.columns[:7]) == SUMMARY_COLUMNS
    for q in [
        "sensitivity",
        "specificity",
        "lr_positive",
        "lr_negative",
        "dor",
        "tau_sensitivity",
        "tau_specificity",
        "rho",
        "auc",
        "i2_bivariate",
    ]:
        assert q in s.index
    assert np.all(s["lower"] <= s["median"]) and np.all(s["median"] <= s["upper"])
    assert not s.isna().any().any()
    # derived quantities are computed per draw
    se = dementia_fit.draws("sensitivity").values
    sp = dementia_fit.draws("specificity").values
    assert s.loc["dor", "mean"] == pytest.approx(np.mean(se / (1 - se) / ((1 - sp) / sp)))
    s3 = smoking_fit.summary()
    for q in [
        "tau_within_sensitivity",
        "tau_within_specificity",
        "rho_within",
        "beta_sensitivity[type[T.SAQ]]",
    ]:
        assert q in s3.index


def test_same_seed_same_numbers(dementia_fit):
    again = dementia_fit.refit()
    assert again.sampler["seed"] == dementia_fit.sampler["seed"]
    np.testing.assert_array_equal(
        again.posterior["beta_sensitivity"].values,
        dementia_fit.posterior["beta_sensitivity"].values,
    )
    pd.testing.assert_frame_equal(again.summary(), dementia_fit.summary())
    other = dementia_fit.refit(seed=999)
    assert not np.array_equal(
        other.posterior["tau_sensitivity"].values, dementia_fit.posterior["tau_sensitivity"].values
    )


def test_save_load_round_trip(tmp_path, smoking_fit):
    path = smoking_fit.save(tmp_path / "fit.nc")
    back = bd.load(path)
    pd.testing.assert_frame_equal(back.summary(), smoking_fit.summary())
    pd.testing.assert_frame_equal(back.data.frame, smoking_fit.data.frame)
    assert back.spec == smoking_fit.spec
    assert back.sampler == smoking_fit.sampler
    for v in smoking_fit.posterior.data_vars:
        np.testing.assert_array_equal(back.posterior[v].values, smoking_fit.posterior[v].values)
    np.testing.assert_array_equal(
        back.idata.log_likelihood["dta"].values, smoking_fit.idata.log_likelihood["dta"].values
    )


def test_sampler_trouble_is_loud():
    d = bd.load_example("auditc")
    with pytest.warns(SamplerWarning, match="ESS"):
        f = bd.fit(d, seed=1, draws=30, tune=30, chains=2)
    assert f.summary().attrs["warnings"]
    assert "SAMPLER WARNINGS" in f.format_summary()


def test_zero_weight_drops_a_row(dementia_fit):
    """Weight 0 on the highest-sensitivity row lowers the pooled sensitivity."""
    d = dementia_fit.data
    obs = d.tp / d.n_diseased
    w = np.ones(d.n_rows)
    w[np.argmax(obs)] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        loo = dementia_fit.refit(weights=w)
    assert (
        loo.summary().loc["sensitivity", "mean"] < dementia_fit.summary().loc["sensitivity", "mean"]
    )
    # the log-likelihood of the left-out row is still stored (for predictive checks)
    assert np.isfinite(loo.idata.log_likelihood["dta"].values).all()


def test_loo_grouped_by_study(smoking_fit):
    res = smoking_fit.loo(by="study")
    assert res["elpd_loo"] < smoking_fit.loo(by="study", integrated=False)["elpd_loo"]
    assert len(res["pareto_k"]) == smoking_fit.data.n_studies
    assert np.isfinite(res["elpd_loo"])
    rows = smoking_fit.loo(by="row")
    assert len(rows["pareto_k"]) == smoking_fit.data.n_rows


def test_pymc_backend_plumbing():
    """PyMC's own NUTS runs the same model and yields the same summary quantities."""
    d = bd.load_example("skin_tests")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bd.fit(d, backend="pymc", seed=2, draws=100, tune=100, chains=2)
    s = f.summary()
    assert {"sensitivity", "specificity", "rho", "auc"} <= set(s.index)
    assert f.sampler["backend"] == "pymc"
    assert f.idata.log_likelihood["dta_study"].sizes["study"] == d.n_studies


# ------------------------------------------------------------------------------ escalation
def _history(draws, chains, ess_bulk, ess_tail=1000.0, r_hat=1.0, div=0, pooled=False):
    return {
        "centering": "auto",
        "draws": draws,
        "tune": 300,
        "target_accept": 0.9,
        "chains": chains,
        "pooled": pooled,
        "diagnostics": {
            "divergences": div,
            "max_r_hat": r_hat,
            "min_ess_bulk": ess_bulk,
            "min_ess_tail": ess_tail,
            "min_bfmi": 0.9,
        },
    }


def test_short_clean_runs_are_extended_by_pooled_chains():
    """ESS short or R-hat a little high, no geometry trouble: add chains, keep the first run."""
    from bayesdta.inference import fit as F
    from bayesdta.inference.sampling import SamplerSettings

    spec = bd.ModelSpec()
    req = SamplerSettings(chains=4, cores=2)
    nxt = F._next_attempt([_history(800, 4, 391.0)], req, spec, False)
    # 1.3 x 400 / 391 = 1.33: 2 more chains of 800 draws (one per core)
    assert nxt["extra_chains"] == 2 and nxt["draws"] == 800 and nxt["tune"] == 300
    assert F._next_attempt([_history(800, 4, 150.0)], req, spec, False)["extra_chains"] == 10
    assert F._next_attempt([_history(800, 4, 1.0)], req, spec, False)["extra_chains"] == 12
    assert (
        F._next_attempt([_history(800, 4, 900.0, r_hat=1.02)], req, spec, False)["extra_chains"]
        == 4
    )
    # geometry (divergences, chains far apart) is not answered by more chains
    for h in (_history(800, 4, 300.0, div=3), _history(800, 4, 300.0, r_hat=1.2)):
        assert "extra_chains" not in F._next_attempt([h], req, spec, False)
    # draws fixed by the user: nothing to add; a pooled run still short: a longer new run
    assert (
        F._next_attempt([_history(800, 4, 300.0)], SamplerSettings(draws=800), spec, False) is None
    )
    again = F._next_attempt(
        [_history(800, 4, 300.0), _history(800, 6, 380.0, pooled=True)], req, spec, False
    )
    assert "extra_chains" not in again and again["draws"] > 800


def test_pooled_escalation_keeps_the_first_run(dementia_fit, monkeypatch):
    """A clean run short on ESS is kept and extended: its chains are the first of the result.

    The ESS target is raised above what the first run reaches (the plumbing is the same at
    any target), so that the escalation must add chains; the pooled chains must have more ESS.
    """
    from bayesdta.inference import diagnostics as dg

    d = dementia_fit.data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        once = bd.fit(d, seed=8, chains=4, cores=2, escalate=False, verbose=False)
        first = once.diagnostics()
        target = 1.1 * min(first["min_ess_bulk"], first["min_ess_tail"])
        monkeypatch.setattr(dg, "ESS_MIN", target)
        more = bd.fit(d, seed=8, chains=4, cores=2, verbose=False)
    a = more.sampler["attempts"]
    assert a[1]["pooled"] and a[1]["changed"][0].startswith("chains +2")
    assert a[1]["chains"] == 6 and a[1]["draws"] == a[0]["draws"]
    post, post1 = more.idata.posterior, once.idata.posterior
    assert post.sizes["chain"] == 6
    for k in ("beta_sensitivity", "rho", "theta"):
        np.testing.assert_array_equal(post[k].values[:4], post1[k].values, err_msg=k)
    assert a[1]["diagnostics"]["min_ess_bulk"] > a[0]["diagnostics"]["min_ess_bulk"]
    assert (
        more.summary().loc["sensitivity", "ess_bulk"]
        > once.summary().loc["sensitivity", "ess_bulk"]
    )
