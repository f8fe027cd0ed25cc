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
