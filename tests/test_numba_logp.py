"""The hand-written numba log density of the three-level model against the PyMC graph.

The graph (``build_model``'s PyMC model, evaluated by PyTensor, not by nutpie) is the
independent reference: the log density, with every prior constant and Jacobian, and its
gradient must agree at random points of the unconstrained space, for random per-study
centering weights, zero-weight rows, the other SD prior families and non-default prior
numbers. The sampler uses the numba density only where it applies.
"""

from __future__ import annotations

import numpy as np
import pytest

import bayesdta as bd
from bayesdta.families.bivariate import ModelSpec, build_model
from bayesdta.families.bivariate_logp import make_three_level_logp, three_level_layout


def _graph_and_numba(built):
    model = built.model
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    ip = model.initial_point()
    names = [v.name for v in model.value_vars]
    shapes = [tuple(np.shape(ip[n])) for n in names]
    layout = three_level_layout(built, names, shapes)
    assert layout is not None
    inner = make_three_level_logp(layout)
    args = tuple(built.data_values[n] for n in layout["data_names"])

    def graph(x):
        point, o = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = int(np.prod(s)) if s else 1
            point[n] = x[o : o + k].reshape(s)
            o += k
        return float(logp(point)), np.asarray(dlogp(point))

    def fast(x):
        lp, g = inner(x, *args)
        return float(lp), np.asarray(g)

    return graph, fast, layout["n_dim"]


def _agree(built, seed, scales=(0.2, 0.7, 1.5)):
    graph, fast, n_dim = _graph_and_numba(built)
    rng = np.random.default_rng(seed)
    for s in scales:
        x = rng.normal(size=n_dim) * s
        lg, gg = graph(x)
        lf, gf = fast(x)
        assert np.isfinite(lf)
        assert lf == pytest.approx(lg, rel=1e-10, abs=1e-8)
        np.testing.assert_allclose(gf, gg, rtol=1e-8, atol=1e-8 * (1 + np.max(np.abs(gg))))


def test_osteoporosis_meta_regression_with_random_centering():
    truth = bd.load_truth("osteoporosis_dl")
    data = bd.load_example("osteoporosis_dl")
    spec = ModelSpec(**truth["model_spec"])
    built = build_model(data, spec)
    # per-study weights of every kind: non-centered, centered and in between
    rng = np.random.default_rng(3)
    w = rng.uniform(size=built.data_values["centering"].shape)
    w[:3] = 0.0
    w[3:6] = 1.0
    built.data_values["centering"] = w
    built.model.set_data("centering", w)
    _agree(built, seed=1)


def test_other_prior_families_and_zero_weight_rows():
    data = bd.load_example("smoking")
    spec = ModelSpec(
        formula="~ type",
        priors={
            "tau_sensitivity": "HalfCauchy(0.7)",
            "tau_specificity": "Exponential(2)",
            "tau_within_sensitivity": "HalfStudentT(3, 0.5)",
            "tau_within_specificity": "HalfNormal(0.8)",
            "rho": "LKJ(1.3)",
            "rho_within": "LKJ(4)",
            "beta": "Normal(0.5, 1.2)",
        },
    )
    weights = np.ones(data.n_rows)
    weights[[0, 5, 6]] = 0.0
    weights[7] = 0.5
    built = build_model(data, spec, weights=weights)
    assert built.levels == 3
    _agree(built, seed=2)


def test_only_the_models_it_was_written_for():
    data = bd.load_example("smoking")
    assert build_model(data, ModelSpec(formula="~ type")).numba_logp is not None
    assert build_model(data, ModelSpec(link="probit")).numba_logp is None
    assert build_model(data, ModelSpec(levels=2)).numba_logp is None
    # a model whose free variables differ from the three-level normal model keeps the graph
    built = build_model(data, ModelSpec(formula="~ type"))
    names = [v.name for v in built.model.value_vars]
    ip = built.model.initial_point()
    shapes = [tuple(np.shape(ip[n])) for n in names]
    assert three_level_layout(built, names[::-1], shapes[::-1]) is None


def test_underflowing_sd_gives_a_non_finite_density_not_an_exception():
    """Far out in the warm-up an SD can underflow to 0 (log SD -800): the graph's density is
    then not finite, and the numba one must say so too (an exception inside the sampler's C
    callback would be swallowed and leave its outputs unset)."""
    built = build_model(bd.load_example("smoking"), ModelSpec(levels=3))
    graph, fast, n_dim = _graph_and_numba(built)
    x = np.zeros(n_dim)
    x[: n_dim - 1] = np.random.default_rng(0).normal(size=n_dim - 1) * 0.1
    names = [v.name for v in built.model.value_vars]
    ip = built.model.initial_point()
    o = 0
    for n in names:
        k = int(np.prod(np.shape(ip[n]))) if np.shape(ip[n]) else 1
        if n.startswith("tau_") and n.endswith("_log__"):
            x[o : o + k] = -800.0
        o += k
    lg, _ = graph(x)
    lf, gf = fast(x)  # must not raise ZeroDivisionError
    assert not np.isfinite(lg)
    assert not (np.isfinite(lf) and np.all(np.isfinite(gf)))
