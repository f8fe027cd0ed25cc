"""Model builder checks without sampling: shapes, priors, finite log-density and gradient."""

from __future__ import annotations

import numpy as np
import pytest

import bayesdta as bd
from bayesdta import ModelSpec, SpecError
from bayesdta.families.bivariate import build_model, make_design
from bayesdta.families.priors import parse_prior, resolve_priors


def _logp_and_grad_finite(built):
    model = built.model
    ip = model.initial_point()
    logp = model.compile_logp()(ip)
    grads = model.compile_dlogp()(ip)
    return np.isfinite(logp) and np.all(np.isfinite(grads))


@pytest.mark.parametrize("levels", [2, 3])
@pytest.mark.parametrize("parameterization", ["noncentered", "centered"])
def test_builder_compiles_finite_gradient(levels, parameterization):
    data = bd.load_example("smoking")
    built = build_model(data, ModelSpec(levels=levels, parameterization=parameterization))
    assert _logp_and_grad_finite(built)
    names = {v.name for v in built.model.free_RVs}
    assert ("tau_within_sensitivity" in names) == (levels == 3)
    # padded to a multiple of 16 rows: padded rows carry no data
    assert built.data_values["n1"].shape[0] % 16 == 0
    assert built.data_values["n1"][data.n_rows :].sum() == 0
    assert built.data_values["weight"][data.n_rows :].sum() == 0


def test_levels_default_follow_clustering():
    spec = ModelSpec()
    assert spec.resolved_levels(bd.load_example("smoking")) == 3
    assert spec.resolved_levels(bd.load_example("dementia")) == 2


def test_likelihood_matches_binomial_logpmf():
    """The model's log density at a point equals an independent scipy computation."""
    from scipy import stats

    data = bd.load_example("auditc")
    built = build_model(data, ModelSpec(levels=2))
    model = built.model
    ip = model.initial_point()
    rng = np.random.default_rng(1)
    point = {k: rng.normal(size=np.shape(v)) * 0.3 for k, v in ip.items()}
    outs = model.replace_rvs_by_values([model["likelihood"], model["theta"]])
    fn = model.compile_fn(outs, inputs=model.value_vars, on_unused_input="ignore")
    logp, theta = fn(point)
    th = theta[: data.n_rows]
    ref = stats.binom.logpmf(data.tp, data.n_diseased, 1 / (1 + np.exp(-th[:, 0])))
    ref += stats.binom.logpmf(data.tn, data.n_nondiseased, 1 / (1 + np.exp(-th[:, 1])))
    from scipy.special import gammaln

    n1, n0, tp, tn = data.n_diseased, data.n_nondiseased, data.tp, data.tn
    const = (gammaln(n1 + 1) - gammaln(tp + 1) - gammaln(n1 - tp + 1)) + (
        gammaln(n0 + 1) - gammaln(tn + 1) - gammaln(n0 - tn + 1)
    )
    assert np.isclose(logp, (ref - const).sum(), rtol=1e-10)


def test_priors_parse_override_and_print():
    p = parse_prior("HalfStudentT(3, 1)")
    assert p.dist == "HalfStudentT" and p.kwargs == {"nu": 3.0, "sigma": 1.0}
    assert parse_prior("Normal(mu=0.5, sigma=2)").kwargs == {"mu": 0.5, "sigma": 2.0}
    pri = resolve_priors({"tau": "HalfCauchy(1)", "rho": "LKJ(1)"})
    assert str(pri["tau_sensitivity"]) == "HalfCauchy(beta=1)"
    assert pri["tau_specificity"].dist == "HalfCauchy"
    text = str(ModelSpec(priors={"tau_se": "HalfNormal(0.5)"}))
    assert "HalfNormal(sigma=0.5)" in text and "[user]" in text and "LKJ(eta=2)" in text
    for bad, msg in [
        ("Weibull(1, 2)", "unknown prior family"),
        ("HalfNormal(-1)", "must be positive"),
        ("HalfNormal(1, 2, 3)", "takes 1 argument"),
    ]:
        with pytest.raises(SpecError, match=msg):
            parse_prior(bad)
    with pytest.raises(SpecError, match="must be one of"):
        resolve_priors({"tau_sensitivity": "Normal(0, 1)"})
    with pytest.raises(SpecError, match="unknown prior name"):
        resolve_priors({"sigma": "HalfNormal(1)"})


def test_prior_numbers_are_data_not_structure():
    """Changing prior numbers keeps the compiled-model key; changing a family changes it."""
    data = bd.load_example("dementia")
    a = build_model(data, ModelSpec())
    b = build_model(data, ModelSpec(priors={"tau": "HalfNormal(0.5)"}))
    c = build_model(data, ModelSpec(priors={"tau": "HalfCauchy(1)"}))
    assert a.structure_key == b.structure_key != c.structure_key
    assert b.data_values["prior__tau_sensitivity__sigma"] == 0.5


def test_design_coding_and_errors():
    data = bd.load_example("smoking")
    d = make_design(data, ModelSpec(formula="~ type", reference={"type": "SAQ"}))
    assert d.columns["sensitivity"] == ["Intercept", "type[T.IAQ]"]
    with pytest.raises(SpecError, match="reference level 'XYZ'"):
        make_design(data, ModelSpec(formula="~ type", reference={"type": "XYZ"}))
    with pytest.raises(SpecError, match="not a column"):
        make_design(data, ModelSpec(formula="~ nonexistent"))


def test_prior_predictive_matches_prior():
    """Prior draws follow the stated priors (independent check of the builder's priors)."""
    from scipy import stats

    data = bd.load_example("auditc")
    pp = bd.prior_predictive(data, draws=4000, seed=3, priors={"tau": "HalfNormal(0.7)"})
    # tau ~ HalfNormal(0.7): KS test against scipy's halfnorm
    assert stats.kstest(pp["tau_sensitivity"].values, stats.halfnorm(scale=0.7).cdf).pvalue > 1e-3
    # rho ~ LKJ(2) on 2x2: (rho + 1) / 2 ~ Beta(2, 2)
    assert stats.kstest((pp["rho"].values + 1) / 2, stats.beta(2, 2).cdf).pvalue > 1e-3
    # logit se ~ Normal(0, 2)
    logit = np.log(pp["sensitivity"].values / (1 - pp["sensitivity"].values))
    assert stats.kstest(logit, stats.norm(0, 2).cdf).pvalue > 1e-3
    tp = pp["TP"].values
    assert tp.shape == (4000, data.n_rows)
    assert (tp >= 0).all() and (tp <= data.n_diseased).all()


@pytest.mark.parametrize("parameterization", ["centered", "noncentered"])
def test_three_level_effects_have_the_model_covariances(parameterization):
    """The study-mean / deviation parameterization is the three-level model, exactly.

    Under the prior, theta_r - mu has covariance Sigma_b + Sigma_w, two rows of one study
    share Sigma_b, and rows of different studies are independent (checked against the drawn
    SDs and correlations, within 4.5 Monte Carlo standard errors).
    """
    data = bd.load_example("smoking")
    pp = bd.prior_predictive(data, draws=6000, seed=4, levels=3, parameterization=parameterization)
    mu = np.stack(
        [np.log(pp[q].values / (1 - pp[q].values)) for q in ("sensitivity", "specificity")], -1
    )
    e = pp["theta"].values - mu[:, None, :]  # (draw, row, 2)
    tb = np.stack([pp["tau_sensitivity"].values, pp["tau_specificity"].values], -1)
    tw = np.stack([pp["tau_within_sensitivity"].values, pp["tau_within_specificity"].values], -1)
    sb12 = pp["rho"].values * tb[:, 0] * tb[:, 1]
    sw12 = pp["rho_within"].values * tw[:, 0] * tw[:, 1]
    sizes = np.bincount(data.study_index)
    s = int(np.argmax(sizes))
    r1, r2 = np.flatnonzero(data.study_index == s)[:2]
    r3 = int(np.flatnonzero(data.study_index != s)[0])

    def close(x, target):
        d = x - target
        assert abs(d.mean()) < 4.5 * d.std() / np.sqrt(d.size), (x.mean(), target.mean())

    for k in (0, 1):
        close(e[:, r1, k] ** 2, tb[:, k] ** 2 + tw[:, k] ** 2)
        close(e[:, r1, k] * e[:, r2, k], tb[:, k] ** 2)
        close(e[:, r1, k] * e[:, r3, k], np.zeros(len(tb)))
    close(e[:, r1, 0] * e[:, r1, 1], sb12 + sw12)
    close(e[:, r1, 0] * e[:, r2, 1], sb12)


def test_starting_values_do_not_depend_on_the_data():
    """A compiled model re-used for new data must start where a fresh compilation would.

    PyMC's default start (support points) of centered effects depends on the covariates of the
    data the model was built with; the sampler starts from data-free constants instead, so the
    same data and seed give the same draws whichever data set triggered the compilation (the
    Dask-vs-local test of test_sensitivity.py checks the draws across processes).
    """
    from bayesdta.inference.sampling import _neutral_initial_points

    a = build_model(bd.load_example("auditc"), ModelSpec(formula=None))
    frame = bd.load_example("skin_tests").frame
    b = build_model(bd.DTAData.from_frame(frame), ModelSpec(priors={"tau": "HalfNormal(3)"}))
    assert a.structure_key == b.structure_key
    pa, pb = _neutral_initial_points(a.model), _neutral_initial_points(b.model)
    assert pa.keys() == pb.keys() == {rv.name for rv in a.model.free_RVs}
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k])
    # PyMC's own support points differ between the two (the reason for the constants)
    sa, sb = a.model.initial_point(), b.model.initial_point()
    assert any(not np.array_equal(sa[k], sb[k]) for k in sa)
