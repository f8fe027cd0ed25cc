"""PSIS-LOO: relative efficiency from the chains, agreement with exact leave-one-out."""

from __future__ import annotations

import numpy as np
import xarray as xr
from scipy import stats

from bayesdta.inference import _arviz


def _ar1(rng, phi, chains, draws, size):
    """AR(1) draws with unit marginal variance (autocorrelation phi)."""
    z = np.empty((chains, draws, size))
    z[:, 0] = rng.standard_normal((chains, size))
    e = rng.standard_normal((chains, draws, size)) * np.sqrt(1 - phi**2)
    for t in range(1, draws):
        z[:, t] = phi * z[:, t - 1] + e[:, t]
    return z


def test_relative_efficiency_of_autocorrelated_draws():
    """r_eff of an AR(1) chain is (1 - phi) / (1 + phi) for a likelihood linear in the draw."""
    rng = np.random.default_rng(1)
    phi = 0.6
    z = _ar1(rng, phi, 4, 4000, 1)[..., 0]
    ll = np.log1p(0.05 * z)[..., None]  # exp(ll) = 1 + 0.05 z: linear in the draw
    r = _arviz.relative_efficiency(ll)
    assert abs(r[0] - (1 - phi) / (1 + phi)) < 0.05
    iid = rng.standard_normal((4, 4000, 1))
    assert abs(_arviz.relative_efficiency(np.log1p(0.05 * iid))[0] - 1.0) < 0.1


def test_psis_loo_matches_exact_leave_one_out_with_correlated_draws():
    """Normal mean, flat prior: exact LOO predictive N(mean of others, 1 + 1/(n-1)).

    Posterior draws mu ~ N(ybar, 1/n) are generated as autocorrelated chains, so r_eff < 1; the
    PSIS-LOO elpd must match the exact one within a few Monte Carlo SEs.
    """
    rng = np.random.default_rng(2)
    n = 20
    y = rng.normal(0.3, 1.0, n)
    z = _ar1(rng, 0.5, 4, 2000, 1)[..., 0]
    mu = y.mean() + z / np.sqrt(n)
    ll = stats.norm.logpdf(y[None, None, :], mu[..., None], 1.0)
    res = _arviz.loo_pointwise(xr.DataArray(ll, dims=("chain", "draw", "obs")), dim="obs")
    others = (y.sum() - y) / (n - 1)
    exact = stats.norm.logpdf(y, others, np.sqrt(1 + 1 / (n - 1)))
    assert np.all(res["r_eff"] < 0.6) and np.all(res["r_eff"] > 0.15)
    np.testing.assert_allclose(res["loo_i"], exact, atol=0.02)
    assert abs(res["elpd_loo"] - exact.sum()) < 0.1
    assert np.all(res["pareto_k"] < 0.7) and not res["warning"]


def test_integrated_loo_is_computed_once_per_fit_and_seed(dementia_fit, monkeypatch):
    """The report's LOO table and the influence table share one integrated-LOO computation;
    another seed, a Generator, or other draws or weights compute it again."""
    import copy

    from bayesdta.posterior import quantities as Q

    calls = []
    real = Q.study_log_likelihood

    def counted(fit, **kw):
        calls.append(kw)
        return real(fit, **kw)

    monkeypatch.setattr(Q, "study_log_likelihood", counted)
    first = Q.loo_integrated(dementia_fit, n_inner=16, seed=3)
    first["loo_i"][:] = 0.0  # a caller changing its copy does not change the next answer
    again = dementia_fit.loo(by="study", n_inner=16, seed=3)
    assert len(calls) == 1
    assert np.all(again["loo_i"] != 0.0) and again["labels"] == first["labels"]
    Q.loo_integrated(dementia_fit, n_inner=16, seed=4)
    Q.loo_integrated(dementia_fit, n_inner=16, seed=np.random.default_rng(3))
    assert len(calls) == 3
    # the same fit object with other draws (as a padded fit trimmed after sampling)
    clone = copy.copy(dementia_fit)
    clone.idata = dementia_fit.idata.copy()
    clone._draw_cache = {}
    full = Q.loo_integrated(clone, n_inner=16, seed=3)
    post = clone.idata.posterior
    clone.idata.posterior = post.isel(draw=slice(0, post.sizes["draw"] // 2))
    clone._draw_cache = {}
    half = Q.loo_integrated(clone, n_inner=16, seed=3)
    assert len(calls) == 5 and half["elpd_loo"] != full["elpd_loo"]
    assert full["elpd_loo"] == again["elpd_loo"]
