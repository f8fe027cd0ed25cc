"""Meta-regression: clear errors, subgroups, contrasts, explained heterogeneity, subgroup table.

Fits use plumbing-sized draws; the session fixtures ``osteo_fit`` (three-level meta-regression
on the simulated osteoporosis example) and ``smoking_fit`` (three-level, ``~ type``) are shared
with the other test modules. The subgroup table compiles one model for all its fits.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

import bayesdta as bd
from bayesdta import DTADataError, SpecError
from bayesdta.inference.sampling import cache_info
from bayesdta.workflows import regression as R

PLUMBING = {"draws": 300, "tune": 400, "chains": 2}


@pytest.fixture(scope="module")
def osteo_data():
    return bd.load_example("osteoporosis_dl")


@pytest.fixture(scope="module")
def truth():
    return bd.load_truth("osteoporosis_dl")


# ------------------------------------------------------------------------------ clear errors
def _frame(data):
    return data.frame


def test_unknown_reference_level_is_named(osteo_data):
    with pytest.raises(SpecError, match=r"reference level 'VGG' of backbone.*ResNet"):
        bd.fit(osteo_data, formula="~ backbone", reference={"backbone": "VGG"})


def test_constant_covariate_is_named(osteo_data):
    df = _frame(osteo_data).assign(scanner="CT-64")
    with pytest.raises(DTADataError, match=r"column scanner: covariate is constant"):
        bd.fit(df, formula="~ backbone + scanner")
    df = _frame(osteo_data).assign(kvp=120.0)
    with pytest.raises(DTADataError, match=r"column kvp: covariate is constant"):
        bd.fit(df, formula="~ kvp")


def test_collinear_design_names_the_column(osteo_data):
    df = _frame(osteo_data)
    df["is_3d"] = np.where(df["dimensionality"] == "3D", "yes", "no")
    with pytest.raises(DTADataError, match=r"collinear design.*'dimensionality\[T.3D\]'"):
        bd.fit(df, formula="~ dimensionality + is_3d")
    df["n_twice"] = 2 * df["n_test"] + 1
    with pytest.raises(DTADataError, match=r"collinear design.*'n_test'.*n_twice"):
        bd.fit(df, formula="~ n_test + n_twice")


def test_missing_covariate_value_names_row_and_column(osteo_data):
    df = _frame(osteo_data)
    df.loc[5, "backbone"] = np.nan
    with pytest.raises(DTADataError, match=r"row 6, column backbone: missing covariate value"):
        bd.fit(df, formula="~ backbone")
    df = _frame(osteo_data)
    df["n_test"] = df["n_test"].astype(float)
    df.loc[7, "n_test"] = np.nan
    with pytest.raises(DTADataError, match=r"row 8, column n_test: missing"):
        bd.fit(df, formula_sensitivity="~ n_test", formula_specificity="~ 1")


def test_unknown_covariate_and_levels_in_queries(osteo_fit):
    with pytest.raises(SpecError, match=r"unknown level 'VGG' of backbone"):
        R.subgroups(osteo_fit, at={"backbone": "VGG"})
    with pytest.raises(SpecError, match=r"'scan_plane' is not a covariate"):
        R.subgroups(osteo_fit, by="scan_plane")
    with pytest.raises(SpecError, match=r"not a level of backbone"):
        R.contrasts(osteo_fit, covariate="backbone", reference="VGG")
    with pytest.raises(SpecError, match=r"ci must lie"):
        R.contrasts(osteo_fit, ci=1.5)


def test_subgroup_table_validates_before_sampling(osteo_data):
    before = cache_info()
    with pytest.raises(SpecError, match=r"formula= is not accepted"):
        R.subgroup_table(osteo_data, covariates=["backbone"], formula="~ backbone")
    df = _frame(osteo_data).assign(site="one")
    with pytest.raises(DTADataError, match=r"column site: covariate is constant"):
        R.subgroup_table(df, covariates=["backbone", "site"], **PLUMBING)
    with pytest.raises(SpecError, match=r"reference= names \['nope'\]"):
        R.subgroup_table(osteo_data, covariates=["backbone"], reference={"nope": "x"})
    after = cache_info()
    assert after["compiles"] == before["compiles"] and after["reuses"] == before["reuses"]


# ------------------------------------------------------------------------------ subgroups
def test_subgroups_per_level(osteo_fit, truth):
    sub = R.subgroups(osteo_fit, by="backbone")
    assert list(sub.index.get_level_values("level")) == truth["levels"]["backbone"]
    cols = {f"{q}{s}" for q in R._QUANTITIES for s in ("", "_lower", "_upper")}
    assert cols <= set(sub.columns)
    assert (sub["sensitivity_lower"] < sub["sensitivity"]).all()
    assert (sub["sensitivity"] < sub["sensitivity_upper"]).all()
    # reference level, other covariates at reference: the fit's own summary point
    se_ref = float(np.median(osteo_fit.draws("sensitivity").values))
    assert sub.loc[("backbone", "ResNet"), "sensitivity"] == pytest.approx(se_ref, abs=1e-9)
    # counts of the data in each subgroup
    frame = osteo_fit.data.frame
    for lv in truth["levels"]["backbone"]:
        assert sub.loc[("backbone", lv), "n_rows"] == int((frame["backbone"] == lv).sum())
    # DOR = LR+ / LR- per draw, so medians are consistent in order
    assert (sub["dor"] > 1).all()
    # default: every categorical covariate of the formula
    everything = R.subgroups(osteo_fit)
    assert set(everything.index.get_level_values("covariate")) == set(
        truth["model_spec"]["reference"]
    )


def test_subgroups_at_chosen_values(osteo_fit):
    at = [{"backbone": "DenseNet", "validation": "external"}, {"backbone": "DenseNet"}]
    sub = R.subgroups(osteo_fit, at=at)
    assert len(sub) == 2
    mu = osteo_fit.posterior["beta_sensitivity"]
    lp = mu.sel(coef_sensitivity="Intercept") + mu.sel(coef_sensitivity="backbone[T.DenseNet]")
    want = float(np.median(expit(lp.values)))
    assert sub.iloc[1]["sensitivity"] == pytest.approx(want, abs=1e-9)
    assert sub.iloc[0]["sensitivity"] < sub.iloc[1]["sensitivity"] + 0.2
    with pytest.raises(SpecError, match="either by= or a list"):
        R.subgroups(osteo_fit, by="backbone", at=at)


# ------------------------------------------------------------------------------ contrasts
def test_contrasts_match_hand_computation(osteo_fit):
    con = R.contrasts(osteo_fit, covariate="backbone", ci=0.9)
    post = osteo_fit.posterior
    for outcome in ("sensitivity", "specificity"):
        beta = post[f"beta_{outcome}"]
        dim = f"coef_{outcome}"
        b0 = beta.sel({dim: "Intercept"}).values.ravel()
        b = beta.sel({dim: "backbone[T.DenseNet]"}).values.ravel()
        row = con.loc[("backbone", "DenseNet", outcome)]
        assert row["reference"] == "ResNet"
        assert row["logit_diff"] == pytest.approx(np.median(b), abs=1e-9)
        assert row["logit_diff_lower"] == pytest.approx(np.quantile(b, 0.05), abs=1e-9)
        assert row["logit_diff_upper"] == pytest.approx(np.quantile(b, 0.95), abs=1e-9)
        d = expit(b0 + b) - expit(b0)
        assert row["diff"] == pytest.approx(np.median(d), abs=1e-9)
        assert row["ratio"] == pytest.approx(np.median(expit(b0 + b) / expit(b0)), abs=1e-9)
        assert row["p_better"] == pytest.approx(np.mean(b > 0), abs=1e-12)
        # the summary quantity of the fit is the same coefficient on the original scale
        q = osteo_fit.draws(f"beta_{outcome}[backbone[T.DenseNet]]").values.ravel()
        np.testing.assert_allclose(np.sort(q), np.sort(b))
    b_se = post["beta_sensitivity"].sel(coef_sensitivity="backbone[T.DenseNet]").values.ravel()
    b_sp = post["beta_specificity"].sel(coef_specificity="backbone[T.DenseNet]").values.ravel()
    dor = con.loc[("backbone", "DenseNet", "dor")]
    assert dor["ratio"] == pytest.approx(np.median(np.exp(b_se + b_sp)), rel=1e-9)
    assert np.isnan(dor["diff"])
    both = np.mean((b_se > 0) & (b_sp > 0))
    assert con.loc[("backbone", "DenseNet", "sensitivity"), "p_better_both"] == pytest.approx(both)


def test_contrasts_other_reference_and_continuous(osteo_fit):
    con = R.contrasts(osteo_fit, covariate="backbone", reference="DenseNet")
    assert set(con.index.get_level_values("level")) == {"ResNet", "Other"}
    post = osteo_fit.posterior["beta_sensitivity"]
    other = post.sel(coef_sensitivity="backbone[T.Other]").values.ravel()
    dense = post.sel(coef_sensitivity="backbone[T.DenseNet]").values.ravel()
    row = con.loc[("backbone", "Other", "sensitivity")]
    assert row["logit_diff"] == pytest.approx(np.median(other - dense), abs=1e-9)
    # all covariates at once: one block per covariate of the formula
    everything = R.contrasts(osteo_fit)
    assert set(everything.index.get_level_values("covariate")) == {
        "backbone",
        "reference_standard",
        "dimensionality",
        "validation",
    }
    assert everything["p_better"].between(0, 1).all()


def test_continuous_covariate_on_original_scale(osteo_data):
    """Continuous covariates are scaled internally; coefficients and contrasts are per unit."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        f = bd.fit(osteo_data, formula="~ prevalence", levels=2, seed=3, **PLUMBING)
    mean, sd = f.design.scaling["prevalence"]
    raw = f.posterior["beta_sensitivity"].sel(coef_sensitivity="prevalence").values.ravel()
    per_unit = f.draws("beta_sensitivity[prevalence]").values.ravel()
    np.testing.assert_allclose(per_unit, raw / sd)
    con = R.contrasts(f, covariate="prevalence")
    row = con.loc[("prevalence", f"{mean + 1:g} (+1)", "sensitivity")]
    assert row["logit_diff"] == pytest.approx(np.median(per_unit), rel=1e-6)
    sub = R.subgroups(f, at=[{"prevalence": 0.2}, {"prevalence": 0.4}])
    b0 = f.posterior["beta_sensitivity"].sel(coef_sensitivity="Intercept").values.ravel()
    want = np.median(expit(b0 + raw * (0.4 - mean) / sd))
    assert sub.iloc[1]["sensitivity"] == pytest.approx(want, abs=1e-9)
    with pytest.raises(SpecError, match="continuous"):
        R.subgroups(f, by="prevalence")


# ------------------------------------------------------------------------------ smoking (real)
def test_smoking_three_level_with_type(smoking_fit):
    """Real data with several dependent tables per study: type (SAQ/IAQ) as covariate."""
    assert smoking_fit.levels == 3
    assert smoking_fit.design.levels["type"] == ["IAQ", "SAQ"]
    sub = R.subgroups(smoking_fit, by="type")
    assert list(sub["n_rows"]) == [20, 31]
    assert sub["sensitivity"].between(0.5, 1).all() and sub["specificity"].between(0.5, 1).all()
    con = R.contrasts(smoking_fit, covariate="type")
    row = con.loc[("type", "SAQ", "sensitivity")]
    b = smoking_fit.draws("beta_sensitivity[type[T.SAQ]]").values.ravel()
    assert row["logit_diff"] == pytest.approx(np.median(b), abs=1e-9)
    assert row["reference"] == "IAQ"
    assert 0 <= row["p_better"] <= 1


# ------------------------------------------------------------------------------ subgroup table
def test_subgroup_table_osteoporosis(osteo_data, truth, osteo_fit, smoking_fit):
    covs = ["backbone", "reference_standard", "dimensionality", "validation"]
    ref = {k: v for k, v in truth["reference_levels"].items() if k in covs}
    n_cols = len(osteo_fit.design.columns["sensitivity"])
    before = cache_info()["compiles"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        table, fits = R.subgroup_table(
            osteo_data,
            covariates=covs,
            reference=ref,
            seed=4,
            return_fits=True,
            pad_columns=n_cols,
            **PLUMBING,
        )
    # the model without covariates and the four meta-regressions share one compiled model,
    # padded to the meta-regression's columns: osteo_fit's, compiled already
    assert cache_info()["compiles"] == before
    expected = {
        "n_rows",
        "n_studies",
        "sensitivity",
        "sensitivity_lower",
        "sensitivity_upper",
        "specificity",
        "specificity_lower",
        "specificity_upper",
        "reference",
        "logit_diff_sensitivity",
        "logit_diff_sensitivity_lower",
        "logit_diff_sensitivity_upper",
        "diff_sensitivity",
        "p_better_sensitivity",
        "logit_diff_specificity",
        "diff_specificity",
        "p_better_specificity",
        "rdor",
        "elpd_diff",
        "elpd_diff_se",
        "max_pareto_k",
        "tau_sensitivity",
        "tau_specificity",
        "tau_reduction_sensitivity",
        "tau_reduction_specificity",
        "divergences",
    }
    assert expected <= set(table.columns)
    assert table.index.names == ["covariate", "level"]
    n_levels = sum(len(truth["levels"][c]) for c in covs)
    assert len(table) == 1 + n_levels
    assert table.loc[("overall", "all"), "elpd_diff"] == 0
    for c in covs:
        rows = table.loc[c]
        assert list(rows.index) == truth["levels"][c]
        assert (rows["reference"] == ref[c]).all()
        assert rows.loc[ref[c], ["logit_diff_sensitivity", "p_better_sensitivity"]].isna().all()
        assert rows["elpd_diff"].nunique() == 1 and np.isfinite(rows["elpd_diff"]).all()
        assert (rows["elpd_diff_se"] > 0).all()
        # the padded fits carry their own covariate's coefficient names
        assert fits[c].posterior["beta_sensitivity"].sizes["coef_sensitivity"] == len(
            truth["levels"][c]
        )
        assert all(
            str(x).startswith(("Intercept", f"{c}["))
            for x in fits[c].posterior["beta_sensitivity"].coords["coef_sensitivity"].values
        )
        # the table's contrasts are those of that covariate's fit
        con = R.contrasts(fits[c], covariate=c)
        lv = [x for x in truth["levels"][c] if x != ref[c]][0]
        assert rows.loc[lv, "p_better_specificity"] == pytest.approx(
            con.loc[(c, lv, "specificity"), "p_better"]
        )
    assert fits["overall"].posterior["beta_sensitivity"].sizes["coef_sensitivity"] == 1
    # the summary quantities kept from sampling the padded model are those of the trimmed fit
    for k in ("overall", "backbone"):
        kept = {q: fits[k].draws(q) for q in fits[k].quantity_names()}
        fresh = fits[k]._derived()
        assert list(kept) == list(fresh)
        for q in fresh:
            np.testing.assert_allclose(kept[q].values, fresh[q].values, rtol=1e-12, atol=1e-15)
    # explained heterogeneity of the table agrees with heterogeneity_explained
    het = R.heterogeneity_explained(fits["backbone"], fits["overall"])
    assert {"tau_sensitivity", "tau_within_sensitivity", "total_sensitivity"} <= set(het.index)
    assert table.loc[("backbone", "ResNet"), "tau_reduction_specificity"] == pytest.approx(
        het.loc["total_specificity", "explained"]
    )
    assert het["p_reduced"].between(0, 1).all()
    # padding does not change the model: the base fit's summary point matches its own subgroups
    base = fits["overall"]
    se = float(np.median(base.draws("sensitivity").values))
    assert table.loc[("overall", "all"), "sensitivity"] == pytest.approx(se)

    # a model without covariates fitted before (e.g. a run's main fit) is re-used, not refitted:
    # the same table as fitting it here (same seed, same compiled model, so the same draws)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        again, fits2 = R.subgroup_table(
            osteo_data,
            covariates=["validation"],
            reference={"validation": ref["validation"]},
            seed=4,
            return_fits=True,
            pad_columns=n_cols,
            base_fit=base,
            **PLUMBING,
        )
    assert fits2["overall"] is base and list(fits2) == ["overall", "validation"]
    pd.testing.assert_frame_equal(again, table.loc[["overall", "validation"]])
    assert cache_info()["compiles"] == before
    # a base fit that is not the table's model without covariates: an error before sampling
    reuses = cache_info()["reuses"]
    for other, kw, message in (
        (osteo_fit, {}, "base_fit has covariates"),
        (smoking_fit, {}, "other data"),
        (base, {"link": "probit"}, "differs from the subgroup table's model in link"),
        (base, {"levels": 2}, "in levels"),
    ):
        with pytest.raises(SpecError, match=message):
            R.subgroup_table(osteo_data, covariates=["validation"], base_fit=other, **kw)
    with pytest.raises(SpecError, match="pad_columns must be a positive integer"):
        R.subgroup_table(osteo_data, covariates=["validation"], pad_columns=2.5)
    assert cache_info()["reuses"] == reuses and cache_info()["compiles"] == before


def test_heterogeneity_explained_checks_inputs(osteo_fit, smoking_fit):
    with pytest.raises(SpecError, match="same data"):
        R.heterogeneity_explained(osteo_fit, smoking_fit)


def test_pad_design_keeps_the_model():
    """A zero column leaves every other parameter's log density unchanged."""
    from bayesdta.families.bivariate import ModelSpec, build_model, make_design

    data = bd.load_example("smoking")
    spec = ModelSpec(formula="~ type")
    design = make_design(data, spec)
    padded = R._pad_design(design, {"sensitivity": 3, "specificity": 4})
    assert padded.columns["specificity"][-2:] == ["__pad1", "__pad2"]
    m0 = build_model(data, spec, design=design).model
    m1 = build_model(data, spec, design=padded).model
    ip0, ip1 = m0.initial_point(), m1.initial_point()
    rng = np.random.default_rng(0)
    point0 = {k: rng.normal(size=np.shape(v)) * 0.3 for k, v in ip0.items()}
    point1 = {k: point0[k] for k in ip0}
    point1["beta_sensitivity"] = np.append(point0["beta_sensitivity"], 0.7)
    point1["beta_specificity"] = np.append(point0["beta_specificity"], [-0.2, 1.1])
    lik0, lik1 = (
        m.compile_fn(
            m.replace_rvs_by_values([m["likelihood"]])[0],
            inputs=m.value_vars,
            on_unused_input="ignore",
        )
        for m in (m0, m1)
    )
    assert lik0(point0) == pytest.approx(lik1(point1), rel=1e-12)
    assert set(ip1) == set(ip0)
