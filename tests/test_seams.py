"""Seams between compiled-model re-use, weights and results (issue 10).

A compiled model is shared by every fit of the same structure; these tests check that each fit
still owns its labels, per-unit conversions and data-derived statistics.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import bayesdta as bd

from .conftest import PLUMBING

#: True per-unit logit slopes of the simulated covariates (sensitivity, specificity).
SLOPES = {"age": (0.05, -0.03), "year": (-0.08, 0.06)}


def _simulate_slopes(seed: int = 5, n_studies: int = 40) -> pd.DataFrame:
    """Independent numpy simulation: logit se/sp linear in age and year plus study effects."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(30, 75, n_studies)
    year = rng.integers(1995, 2024, n_studies).astype(float)
    u = rng.normal(0.0, 0.25, size=(n_studies, 2))
    rows = []
    for s in range(n_studies):
        th = np.array([1.2, 1.6]) + u[s]
        for v, x, centre in (("age", age[s], 50.0), ("year", year[s], 2010.0)):
            th = th + np.array(SLOPES[v]) * (x - centre)
        n1, n0 = int(rng.integers(150, 400)), int(rng.integers(200, 500))
        tp, tn = rng.binomial(n1, expit(th[0])), rng.binomial(n0, expit(th[1]))
        rows.append(
            {"study": f"S{s}", "TP": tp, "FN": n1 - tp, "TN": tn, "FP": n0 - tn}
            | {"age": age[s], "year": year[s]}
        )
    return pd.DataFrame(rows)


def _fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        return bd.fit(*args, **kwargs)


def test_two_formulas_in_one_process_own_their_labels_and_units():
    """~ age then ~ year re-use one compiled model; each reports its own per-unit slope.

    The age and year effects are simulated independently, so each single-covariate fit
    estimates its own marginal slope; the per-unit truth must lie in the 99% interval, and the
    names must be the fit's own (old code labelled the second fit ``age`` with year's per-SD
    value).
    """
    df = _simulate_slopes()
    fits = {v: _fit(df, formula=f"~ {v}", seed=21, **PLUMBING) for v in ("age", "year")}
    for v, f in fits.items():
        other = "year" if v == "age" else "age"
        s = f.summary(ci=0.99)
        assert list(f.posterior.coords["coef_sensitivity"].values) == ["Intercept", v]
        assert f"beta_sensitivity[{other}]" not in s.index
        for o, truth in zip(("sensitivity", "specificity"), SLOPES[v], strict=True):
            row = s.loc[f"beta_{o}[{v}]"]
            assert row["lower"] <= truth <= row["upper"], (v, o, truth, row.to_dict())
            # an interval on the per-SD scale would be ~10x wider than the truth's magnitude
            assert row["upper"] - row["lower"] < 8 * abs(truth)


def test_subgroup_fits_sharing_a_compiled_model_keep_their_labels():
    """Two one-covariate fits of models/osteoporosis_subgroups.toml in one process.

    ``~ validation`` and ``~ dimensionality`` have the same shapes, so the second re-uses the
    first's compiled model; its coefficient must still be named after dimensionality, with the
    sign of the observed difference between the two groups.
    """
    data = bd.load_example("osteoporosis_dl")
    refs = {"validation": "internal", "dimensionality": "2D"}
    for v, ref in refs.items():
        f = _fit(data, formula=f"~ {v}", reference={v: ref}, levels=2, seed=22, **PLUMBING)
        other = next(lv for lv in f.design.levels[v] if lv != ref)
        name = f"beta_sensitivity[{v}[T.{other}]]"
        s = f.summary()
        assert name in s.index, list(s.index)
        assert not any(n.startswith("beta_") and v not in n for n in s.index)
        # sign check against the pooled observed logits of the two groups (independent)
        g = data.frame[v].astype(str).to_numpy()
        tp, fn = data.tp, data.fn
        pooled = [np.log(tp[g == x].sum() / fn[g == x].sum()) for x in (ref, other)]
        if abs(pooled[1] - pooled[0]) > 0.3:
            assert np.sign(s.loc[name, "median"]) == np.sign(pooled[1] - pooled[0])


def _mc_close(a: pd.Series, b: pd.Series, z: float = 4.5) -> bool:
    """Means agree within ``z`` Monte Carlo SEs of their difference (MCSE = sd / sqrt(ESS))."""
    se = np.hypot(a["sd"] / np.sqrt(a["ess_bulk"]), b["sd"] / np.sqrt(b["ess_bulk"]))
    return bool(abs(a["mean"] - b["mean"]) <= z * se)


def test_weight_zero_refit_equals_subset_fit(dementia_fit, dementia_data):
    """Leaving rows out by weight 0 reports what a fit of the subset reports, quantity by quantity.

    The left-out rows are the two with the highest false-positive rate (they set the upper end
    of the partial-AUC range) and the three smallest (they dominate the typical within-study
    variance of I2). Deterministic data-derived statistics must agree exactly; posterior
    summaries within Monte Carlo error (the two fits have different shapes, hence different
    draws).
    """
    d = dementia_data
    fpr = d.fp / d.n_nondiseased
    out = set(np.argsort(fpr)[-2:]) | set(np.argsort(d.n_diseased + d.n_nondiseased)[:3])
    keep = np.ones(d.n_rows, dtype=bool)
    keep[list(out)] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        weighted = dementia_fit.refit(weights=keep.astype(float))
    subset = _fit(d.subset(keep), seed=31, **PLUMBING)

    sw, ss = weighted.summary(), subset.summary()
    assert list(sw.index) == list(ss.index)
    bad = [q for q in ss.index if not _mc_close(sw.loc[q], ss.loc[q])]
    assert not bad, {q: (sw.loc[q, "mean"], ss.loc[q, "mean"]) for q in bad}

    hw, hs = weighted.heterogeneity(), subset.heterogeneity()
    assert hw.attrs["typical_within_variance"] == pytest.approx(hs.attrs["typical_within_variance"])
    bad = [q for q in hs.index if not _mc_close(hw.loc[q], hs.loc[q])]
    assert not bad, bad
    # FP = 0 tables enter the FPR range with their posterior median FPR: Monte Carlo error
    assert weighted.auc().attrs["fpr_range"] == pytest.approx(
        subset.auc().attrs["fpr_range"], rel=0.05
    )
    assert weighted.sroc().attrs["fpr_range"] == pytest.approx(
        subset.sroc().attrs["fpr_range"], rel=0.05
    )
    dw, ds = weighted.deeks(), subset.deeks()
    assert dw["labels"] == ds["labels"]
    assert dw["p_value"] == pytest.approx(ds["p_value"])
    for kw in ({"by": "study", "integrated": False}, {"by": "study"}, {"by": "row"}):
        lw, ls = weighted.loo(**kw), subset.loo(**kw)
        assert [str(x) for x in lw["labels"]] == [str(x) for x in ls["labels"]], kw
        # elpd is a sum over 28 studies: Monte Carlo error of a few tenths at these draws
        assert abs(lw["elpd_loo"] - ls["elpd_loo"]) < max(2.0, 0.5 * ls["se"]), kw


# ------------------------------------------------------------------------------ formulas
def _covariate_data(n: int = 24, seed: int = 3) -> bd.DTAData:
    rng = np.random.default_rng(seed)
    n1, n0 = rng.integers(50, 200, n), rng.integers(50, 200, n)
    tp, tn = rng.binomial(n1, 0.8), rng.binomial(n0, 0.85)
    df = pd.DataFrame(
        {
            "study": [f"S{i}" for i in range(n)],
            "TP": tp,
            "FN": n1 - tp,
            "TN": tn,
            "FP": n0 - tn,
            "dose": rng.uniform(1.0, 20.0, n),
            "year": rng.choice([2005, 2010, 2015], n),
            "flag": np.tile([0, 1], n // 2),
            "grp": np.tile(["b", "a", "c"], n // 3),
        }
    )
    return bd.DTAData.from_frame(df)


def test_formulaic_syntax_and_per_unit_columns():
    """np.log, I(), C(), center() and interactions work; internal columns map back per unit.

    The model-matrix columns are recomputed here with numpy: ``X_internal * scale + center``
    must equal them, so dividing an internal coefficient by ``scale`` gives it per unit of the
    column, and the intercept is the linear predictor at the reference point.
    """
    data = _covariate_data()
    f = data.frame
    spec = bd.ModelSpec(formula="~ np.log(dose) + I(dose**2) + C(year) + center(dose):grp")
    d = bd.model.make_design(data, spec)
    cols = d.columns["sensitivity"]
    raw = d.X["sensitivity"] * d.scale["sensitivity"] + d.center["sensitivity"]
    dose = f["dose"].to_numpy(float)
    want = {
        "np.log(dose)": np.log(dose),
        "I(dose ** 2)": dose**2,
        "center(dose):grp[a]": (dose - dose.mean()) * (f["grp"] == "a"),
        "C(year)[T.2010]": (f["year"] == 2010).astype(float),
    }
    for c, x in want.items():
        j = cols.index(c)
        np.testing.assert_allclose(raw[:, j], x, rtol=1e-10, atol=1e-10, err_msg=c)
    # the reference point: dose at its mean, reference levels -> internal row of zeros
    mean_dose = dose.mean()
    np.testing.assert_allclose(
        d.center["sensitivity"][cols.index("np.log(dose)")], np.log(mean_dose)
    )
    at = pd.DataFrame({"dose": [mean_dose], "year": [int(sorted(f["year"])[0])], "grp": ["a"]})
    assert np.allclose(d.encode(at)["sensitivity"][0, 1:], 0.0)
    assert "per unit of np.log(dose)" == d.units()["beta_sensitivity[np.log(dose)]"]
    assert "C(year)" in d.units()["beta_sensitivity[C(year)[T.2010]]"]


def test_categorical_rule_is_explicit():
    """Numeric columns are continuous even with two values; C() makes them categorical."""
    data = _covariate_data()
    d = bd.model.make_design(data, bd.ModelSpec(formula="~ flag"))
    assert d.columns["sensitivity"] == ["Intercept", "flag"] and "flag" in d.scaling
    d = bd.model.make_design(data, bd.ModelSpec(formula="~ C(flag)", reference={"flag": 1}))
    assert d.columns["sensitivity"] == ["Intercept", "C(flag)[T.0]"] and d.levels["flag"] == [
        "1",
        "0",
    ]
    d = bd.model.make_design(data, bd.ModelSpec(formula="~ grp"))
    assert d.levels["grp"] == ["a", "b", "c"]
    with pytest.raises(bd.SpecError, match="'nosuch', which is not a column"):
        bd.model.make_design(data, bd.ModelSpec(formula="~ np.log(nosuch)"))
    bad = data.frame.assign(dose=lambda x: x["dose"] - 10.0)
    with pytest.raises(bd.DTADataError, match=r"row \d+: column 'np.log\(dose\)'.*not finite"):
        bd.model.make_design(bd.DTAData.from_frame(bad), bd.ModelSpec(formula="~ np.log(dose)"))


def test_interaction_slopes_recovered_per_unit():
    """~ age * grp on simulated data: main slope and slope difference both per unit of age.

    Old code reported the interaction per SD of age (about 13 times the per-unit value here).
    """
    rng = np.random.default_rng(8)
    n = 48
    age = rng.uniform(30, 75, n)
    grp = np.where(np.arange(n) % 2 == 0, "x", "y")
    slope = {"x": 0.04, "y": -0.03}  # per year, sensitivity; specificity has no covariate effect
    u = rng.normal(0.0, 0.2, size=(n, 2))
    th_se = 1.0 + np.array([slope[g] for g in grp]) * (age - 50.0) + u[:, 0]
    th_sp = 1.5 + u[:, 1]
    n1, n0 = rng.integers(200, 400, n), rng.integers(200, 400, n)
    tp, tn = rng.binomial(n1, expit(th_se)), rng.binomial(n0, expit(th_sp))
    df = pd.DataFrame(
        {"study": [f"S{i}" for i in range(n)], "TP": tp, "FN": n1 - tp, "TN": tn, "FP": n0 - tn}
        | {"age": age, "grp": grp}
    )
    f = _fit(df, formula_sensitivity="~ age * grp", formula_specificity="~ 1", seed=9, **PLUMBING)
    s = f.summary(ci=0.99)
    for name, truth in (
        ("beta_sensitivity[age]", slope["x"]),
        ("beta_sensitivity[age:grp[T.y]]", slope["y"] - slope["x"]),
    ):
        assert s.loc[name, "lower"] <= truth <= s.loc[name, "upper"], (name, s.loc[name])
    assert s.attrs["units"]["beta_sensitivity[age:grp[T.y]]"] == ("per unit of age; grp y vs x")


# ------------------------------------------------------------------------------ options
def test_parameterization_is_applied_with_spec(monkeypatch, dementia_data):
    """fit(spec=..., parameterization=...) applies it (old code ignored it silently)."""
    with pytest.raises(bd.SpecError, match="parameterization must be"):
        bd.fit(dementia_data, spec=bd.ModelSpec(), parameterization="bogus")
    seen = {}

    def capture(data, spec, settings, **kw):
        seen["spec"] = spec
        return None

    monkeypatch.setattr(_fit_mod(), "fit_design", capture)
    bd.fit(dementia_data, spec=bd.ModelSpec(link="probit"), parameterization="noncentered")
    assert seen["spec"].parameterization == "noncentered" and seen["spec"].link == "probit"


def _fit_mod():
    import importlib

    return importlib.import_module("bayesdta.inference.fit")


def test_sweep_links_are_validated_before_running(tmp_path):
    from bayesdta.reporting import sensitivity as sens

    from .test_sensitivity import spec_with_links

    spec = spec_with_links(tmp_path, '["logit", "probitt"]')
    with pytest.raises(bd.SpecError, match=r"links\[1\]: unknown link 'probitt'.*'probit'"):
        sens.build_variants(spec, spec.load_data())
    spec = spec_with_links(tmp_path, '["probit", "cloglog"]')
    variants = sens.build_variants(spec, spec.load_data())
    assert [v.implemented for v in variants[-2:]] == [True, False]


def test_design_with_weight_zero_rows_is_the_subset_design():
    """Covariate means, SDs and the reference point come from the rows in the fit only."""
    data = _covariate_data()
    w = np.ones(data.n_rows)
    w[np.argsort(data.frame["dose"].to_numpy())[-5:]] = 0.0  # the five largest doses
    spec = bd.ModelSpec(formula="~ np.log(dose) + dose:grp + grp")
    a = bd.model.make_design(data, spec, weights=w)
    b = bd.model.make_design(data.subset(w > 0), spec)
    assert a.scaling["dose"] == pytest.approx(b.scaling["dose"])
    for o in ("sensitivity", "specificity"):
        assert a.columns[o] == b.columns[o]
        np.testing.assert_allclose(a.center[o], b.center[o])
        np.testing.assert_allclose(a.scale[o], b.scale[o])
        np.testing.assert_allclose(a.X[o][w > 0], b.X[o])
