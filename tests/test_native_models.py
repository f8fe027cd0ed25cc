"""The native models (hand-written numba density, nothing compiled per structure) against
their PyMC graphs, called through nutpie's C interface exactly as the sampler calls them.

The graph (``build_model``'s PyMC model evaluated by PyTensor, not by nutpie) is the
independent reference: at random points of the unconstrained space, for two and three levels,
covariates, random per-effect centering weights, zero and fractional row weights, every SD
prior family and non-default prior numbers, the C callbacks must give the graph's log density
(every constant and Jacobian included), its gradient, and the stored draw (free variables,
constrained SDs and correlations, row parameters ``theta``). Then the compiled object behaves
as nutpie's: ``with_data`` swaps data, and a new process gives the same draws for a seed
without compiling anything.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import bayesdta as bd
from bayesdta.families.bivariate import ModelSpec, build_model
from bayesdta.inference import native, sampling

LOGP = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.c_uint64,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
)
EXPAND = ctypes.CFUNCTYPE(
    ctypes.c_int64,
    ctypes.c_uint64,
    ctypes.c_uint64,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_void_p,
)
OTHER_PRIORS = {
    "tau_sensitivity": "HalfCauchy(0.7)",
    "tau_specificity": "Exponential(2)",
    "tau_within_sensitivity": "HalfStudentT(3, 0.5)",
    "tau_within_specificity": "HalfNormal(0.8)",
    "rho": "LKJ(1.3)",
    "rho_within": "LKJ(4)",
    "beta": "Normal(0.5, 1.2)",
    "mu_sensitivity": "Normal(1, 2)",
}


def _compiled(built):
    shapes = native.free_shapes(built)
    return native.compile_native(built, sampling._neutral_initial_points(built.model, shapes))


def _call(compiled, x):
    n, m = compiled.n_dim, compiled.n_expanded
    grad, lp, out = np.zeros(n), np.zeros(1), np.zeros(m)
    ud = compiled.user_data.ctypes.data
    logp = LOGP(compiled.compiled_logp_func.address)
    expand = EXPAND(compiled.compiled_expand_func.address)
    rc = logp(n, x.ctypes.data, grad.ctypes.data, lp.ctypes.data, ud)
    rc_e = expand(n, m, x.ctypes.data, out.ctypes.data, ud)
    assert rc_e == 0
    return rc, float(lp[0]), grad, out


def _graph(built):
    model = built.model
    logp = model.compile_logp(mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(mode="FAST_COMPILE")
    stored = model.compile_fn(model.unobserved_value_vars, mode="FAST_COMPILE")
    names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    ip = model.initial_point()
    shapes = [tuple(np.shape(ip[n])) for n in names]

    def point(x):
        out, o = {}, 0
        for n, s in zip(names, shapes, strict=True):
            k = int(np.prod(s)) if s else 1
            out[n] = x[o : o + k].reshape(s)
            o += k
        return out

    def f(x):
        p = point(x)
        values = dict(zip([v.name for v in model.unobserved_value_vars], stored(p), strict=True))
        return float(logp(p)), np.asarray(dlogp(p)), values

    return f


def _agree(built, seed, scales=(0.2, 0.7, 1.5)):
    assert native.native_kind(built) is not None
    compiled = _compiled(built)
    graph = _graph(built)
    names, slices, shapes = compiled.shape_info
    rng = np.random.default_rng(seed)
    for s in scales:
        x = rng.normal(size=compiled.n_dim) * s
        rc, lp, grad, out = _call(compiled, x)
        lg, gg, values = graph(x)
        assert rc == 0
        assert lp == pytest.approx(lg, rel=1e-10, abs=1e-8)
        np.testing.assert_allclose(grad, gg, rtol=1e-8, atol=1e-8 * (1 + np.max(np.abs(gg))))
        for name, sl, shape in zip(names, slices, shapes, strict=True):
            np.testing.assert_allclose(
                out[sl].reshape(shape), values[name], rtol=1e-10, atol=1e-12, err_msg=name
            )
    return compiled


def _random_centering(built, seed):
    rng = np.random.default_rng(seed)
    w = rng.uniform(size=built.data_values["centering"].shape)
    w[:3] = 0.0
    w[3:6] = 1.0
    built.data_values["centering"] = w
    built.model.set_data("centering", w)


def test_two_level_meta_regression_with_random_centering_and_weights():
    truth = bd.load_truth("osteoporosis_dl")
    data = bd.load_example("osteoporosis_dl")
    weights = np.ones(data.n_rows)
    weights[[0, 4]] = 0.0
    weights[7] = 0.5
    built = build_model(data, ModelSpec(**truth["model_spec"], levels=2), weights=weights)
    assert built.levels == 2 and built.data_values["X_sensitivity"].shape[1] > 1
    _random_centering(built, 4)
    _agree(built, seed=1)


def test_two_level_other_prior_families():
    spec = ModelSpec(priors={k: v for k, v in OTHER_PRIORS.items() if "within" not in k})
    built = build_model(bd.load_example("dementia"), spec)
    _agree(built, seed=2)
    spec = ModelSpec(priors={"tau_sensitivity": "HalfStudentT(4, 1.5)"}, formula="~ 1")
    _agree(build_model(bd.load_example("skin_tests"), spec), seed=3)


@pytest.mark.parametrize("levels", [2, 3])
def test_different_formulas_per_outcome(levels):
    spec = ModelSpec(
        levels=levels, formula_sensitivity="~ type + population", formula_specificity="~ 1"
    )
    built = build_model(bd.load_example("smoking"), spec)
    k = [built.data_values[f"X_{o}"].shape[1] for o in ("sensitivity", "specificity")]
    assert k[0] > 1 and k[1] == 1
    _random_centering(built, 12)
    _agree(built, seed=13)


def test_three_level_meta_regression_with_random_centering():
    truth = bd.load_truth("osteoporosis_dl")
    built = build_model(bd.load_example("osteoporosis_dl"), ModelSpec(**truth["model_spec"]))
    assert built.levels == 3
    _random_centering(built, 5)
    _agree(built, seed=6)


def test_three_level_other_prior_families_and_zero_weight_rows():
    data = bd.load_example("smoking")
    weights = np.ones(data.n_rows)
    weights[[0, 5, 6]] = 0.0
    weights[7] = 0.5
    built = build_model(data, ModelSpec(formula="~ type", priors=OTHER_PRIORS), weights=weights)
    _agree(built, seed=7)


def _shared_model(data, test, priors=None, weights=None):
    from bayesdta.data.comparative import read_comparative
    from bayesdta.families.comparative import ComparativeSpec, build_comparative, test_design

    c = read_comparative(data, test=test)
    design = test_design(c.test_index, c.tests, c.test)
    spec = ComparativeSpec(model="shared", priors=dict(priors or {}))
    return build_comparative(c.data, spec, design, c.test_index, weights=weights)


def test_comparative_shared_model():
    """The comparative "shared" model: the three-level density without its within level."""
    built = _shared_model(bd.load_example("smoking"), "type")
    assert native.native_kind(built) == "shared_normal_logit"
    _random_centering(built, 9)
    _agree(built, seed=10)
    weights = np.ones(bd.load_example("smoking").n_rows)
    weights[[1, 2]] = 0.0
    built = _shared_model(
        bd.load_example("smoking"),
        "type",
        priors={k: v for k, v in OTHER_PRIORS.items() if "within" not in k},
        weights=weights,
    )
    _agree(built, seed=11)


def test_with_data_swaps_the_data_the_callbacks_read():
    data = bd.load_example("dementia")
    built = build_model(data, ModelSpec())
    compiled = _compiled(built)
    frame = data.frame.copy()
    frame["TP"] = np.maximum(frame["TP"] - 1, 0)
    frame["TN"] = frame["TN"] + 2
    other = build_model(
        bd.DTAData.from_frame(frame),
        ModelSpec(priors={"tau_sensitivity": "HalfNormal(0.3)", "rho": "LKJ(3)"}),
        weights=np.r_[np.zeros(5), np.ones(data.n_rows - 5)],
    )
    swapped = compiled.with_data(**other.data_values)
    x = np.random.default_rng(8).normal(size=compiled.n_dim) * 0.5
    lg, gg, _ = _graph(other)(x)
    rc, lp, grad, _ = _call(swapped, x)
    assert rc == 0 and lp == pytest.approx(lg, rel=1e-10)
    np.testing.assert_allclose(grad, gg, rtol=1e-8, atol=1e-8)
    # the original keeps its data
    assert _call(compiled, x)[1] != pytest.approx(lp, rel=1e-6)
    with pytest.raises(KeyError):
        compiled.with_data(not_a_variable=np.ones(3))


def test_other_models_keep_the_graph():
    data = bd.load_example("smoking")
    assert native.native_kind(build_model(data, ModelSpec(formula="~ type"))) is not None
    assert native.native_kind(build_model(data, ModelSpec(levels=2))) is not None
    assert native.native_kind(build_model(data, ModelSpec(link="probit"))) is None
    assert native.native_kind(build_model(data, ModelSpec(tau_by="type"))) is None
    assert native.native_kind(build_model(data, ModelSpec(levels=2, random_effects="t"))) is None
    from bayesdta.data.comparative import read_comparative
    from bayesdta.families.comparative import ComparativeSpec, build_comparative, test_design

    c = read_comparative(data, test="type")
    design = test_design(c.test_index, c.tests, c.test)
    for model, link in (("deviations_by_test", "logit"), ("shared", "probit")):
        spec = ComparativeSpec(model=model, link=link)
        assert native.native_kind(build_comparative(c.data, spec, design, c.test_index)) is None
    # a model whose variables are not the ones the density was written for keeps the graph
    built = build_model(data, ModelSpec(levels=2))
    built.numba_logp = {**built.numba_logp, "kind": "three_level_normal_logit"}
    assert native.native_kind(built) is None
    # ... and so is one whose data would give other shapes than its variables have
    built = build_model(data, ModelSpec(levels=2))
    assert native.native_kind(built) is not None
    X = built.data_values["X_sensitivity"]
    built.data_values["X_sensitivity"] = np.concatenate([X, X], axis=1)
    assert native.native_kind(built) is None


@pytest.mark.parametrize("example", ["dementia", "smoking"])
def test_underflowing_sd_is_refused_not_an_exception(example):
    """Far out in the warm-up an SD can underflow to 0 (log SD -800): the graph's density is
    then not finite, and the callback must say so too (an exception inside the sampler's C
    callback would be swallowed and leave its outputs unset)."""
    built = build_model(bd.load_example(example), ModelSpec())
    compiled = _compiled(built)
    x = np.random.default_rng(0).normal(size=compiled.n_dim) * 0.1
    names, slices, _ = compiled.shape_info
    for name, sl in zip(names, slices, strict=False):
        if name.startswith("tau_") and name.endswith("_log__"):
            x[sl] = -800.0
    lg, _, _ = _graph(built)(x)
    rc, lp, grad, _ = _call(compiled, x)  # must not raise
    assert not np.isfinite(lg)
    assert rc in (3, 4) and not (np.isfinite(lp) and np.all(np.isfinite(grad)))
    # a wrong dimension is an error code too
    g, l1 = np.zeros(compiled.n_dim + 1), np.zeros(1)
    bad = LOGP(compiled.compiled_logp_func.address)(
        compiled.n_dim + 1,
        g.ctypes.data,
        g.ctypes.data,
        l1.ctypes.data,
        compiled.user_data.ctypes.data,
    )
    assert bad == -1


SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    import bayesdta as bd
    from bayesdta.inference import sampling
    f = bd.fit(bd.load_example(sys.argv[2]), seed=11, draws=100, tune=100, chains=2, cores=1,
               escalate=False, verbose=False)
    post = f.idata.posterior
    np.savez(sys.argv[1], **{k: post[k].values for k in post.data_vars})
    print(json.dumps({"stats": sampling.cache_info(), "compile_s": f.timing["compile_s"]}))
    """
)


@pytest.mark.filterwarnings("ignore::bayesdta.SamplerWarning")  # plumbing-sized draws
@pytest.mark.parametrize("example", ["dementia", "smoking"])
def test_new_process_compiles_nothing_and_gives_the_same_draws(example, tmp_path):
    out = tmp_path / "draws.npz"
    env = dict(os.environ)
    env["BAYESDTA_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(Path(bd.__file__).resolve().parent.parent)
    here = bd.fit(
        bd.load_example(example),
        seed=11,
        draws=100,
        tune=100,
        chains=2,
        cores=1,
        escalate=False,
        verbose=False,
    )
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(out), example],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    assert res["stats"]["compiles"] == 0 and res["stats"]["native"] == 1
    assert res["stats"]["disk_writes"] == 0  # nothing to store: numba's cache holds the code
    # numba's on-disk cache of the callbacks (written by this process if not before): the
    # new process loads them instead of compiling (~0.2 s idle; 10-20 s to compile)
    assert res["compile_s"] < 5.0
    theirs = dict(np.load(out))
    post = here.idata.posterior
    assert set(theirs) == set(post.data_vars) >= {"beta_sensitivity", "rho", "theta"}
    for k in theirs:
        np.testing.assert_array_equal(theirs[k], post[k].values, err_msg=k)


def test_unreadable_numba_cache_is_removed_and_compiled_again(monkeypatch):
    """A damaged numba cache file makes loading the callbacks raise (numba unpickles it):
    the files are removed, a one-line CacheWarning says so, and the callbacks are compiled
    again (checked by hand on overwritten files: benchmarks/README.md)."""
    from bayesdta.families import bivariate_logp
    from bayesdta.inference import compile_cache as cc

    real = bivariate_logp.c_functions
    calls, removed = [], []

    def flaky(kind):
        calls.append(kind)
        if len(calls) == 1:
            raise ValueError("unpickling stack underflow")
        return real(kind)

    monkeypatch.setattr(bivariate_logp, "c_functions", flaky)
    monkeypatch.setattr(cc, "clear_native", lambda: removed.append(1) or 3)
    built = build_model(bd.load_example("dementia"), ModelSpec())
    with pytest.warns(cc.CacheWarning, match="could not be read .* removed 3 cache file"):
        compiled = _compiled(built)
    assert calls == ["two_level_normal_logit"] * 2 and removed == [1]
    x = np.zeros(compiled.n_dim)
    assert _call(compiled, x)[0] == 0
