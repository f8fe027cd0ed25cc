"""Regression tests from the new-user review (odd data on the ML companion and review outputs)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import bayesdta as bd


def _table(tp, fn, fp, tn):
    return pd.DataFrame(
        {"study": [f"S{i}" for i in range(len(tp))], "TP": tp, "FN": fn, "FP": fp, "TN": tn}
    )


def test_fit_ml_rho_at_minus_one_with_small_sd_has_a_summary():
    """3 studies: tau_sp ~ 0.007 (not fixed at 0) and rho = -1 to machine precision.

    Old code did not try rho's bound when an SD was small, and ``summary()`` raised
    ``ValueError: math domain error`` (atanh(-1)).
    """
    df = _table([58, 26, 33], [16, 6, 17], [13, 7, 22], [76, 45, 140])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.MLWarning)
        ml = bd.fit_ml(df)
    s = ml.summary()
    assert abs(s.loc["rho", "estimate"]) <= 1.0
    if abs(s.loc["rho", "estimate"]) > 1 - 1e-9:
        assert ml.at_boundary and any(b.startswith("rho") for b in ml.boundary)
    assert np.isfinite(s.loc[["sensitivity", "specificity"], ["lower", "upper"]].to_numpy()).all()


@pytest.mark.parametrize("column", ["FN", "FP"])
def test_fit_ml_all_zero_cells_warns_and_summarizes(column):
    """FN = 0 (or FP = 0) in every table: the ML logit diverges.

    Old code: FP = 0 everywhere raised ``OverflowError`` in ``summary()``; FN = 0 everywhere
    silently reported mu_sensitivity ~ 27 with junk intervals and no warning.
    """
    rng = np.random.default_rng(3)
    n1, n0 = rng.integers(20, 60, 8), rng.integers(50, 150, 8)
    tp, tn = rng.binomial(n1, 0.8), rng.binomial(n0, 0.85)
    df = _table(tp, n1 - tp, n0 - tn, tn)
    df[column] = 0
    outcome = "sensitivity" if column == "FN" else "specificity"
    with pytest.warns(bd.MLWarning, match=f"{outcome} = 1"):
        ml = bd.fit_ml(df)
    assert any(f"mu_{outcome} diverges" in n and f"{column} = 0" in n for n in ml.notes)
    s = ml.summary()
    assert math.isnan(s.loc[f"mu_{outcome}", "lower"]) and math.isnan(s.loc[outcome, "upper"])
    other = "specificity" if outcome == "sensitivity" else "sensitivity"
    assert 0 < s.loc[other, "lower"] < s.loc[other, "estimate"] < s.loc[other, "upper"] < 1


def test_fit_ml_separation_within_a_level_is_reported():
    """FN = 0 in every table of one level: its coefficient diverges (old: silent, SE ~ 7000)."""
    rng = np.random.default_rng(4)
    n1, n0 = rng.integers(20, 60, 12), rng.integers(50, 150, 12)
    tp, tn = rng.binomial(n1, 0.8), rng.binomial(n0, 0.85)
    df = _table(tp, n1 - tp, n0 - tn, tn)
    df["g"] = ["a"] * 6 + ["b"] * 6
    df.loc[df.g == "b", "FN"] = 0
    with pytest.warns(bd.MLWarning, match=r"beta_sensitivity\[g\[T.b\]\] = \+inf"):
        ml = bd.fit_ml(df, formula="~ g")
    assert any("beta_sensitivity[g[T.b]] diverges" in n for n in ml.notes)
    s = ml.summary()
    assert math.isnan(s.loc["beta_sensitivity[g[T.b]]", "lower"])
    ref = s.loc["sensitivity"]  # level a: 156 / 183-ish, a finite Wald interval remains
    assert 0 < ref["lower"] < ref["estimate"] < ref["upper"] < 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.MLWarning)
        sub = bd.ml_subgroups(df, covariates=["g"]).loc["g"]
    assert np.isfinite(sub.loc["a", ["sensitivity_lower", "sensitivity_upper"]].astype(float)).all()


def test_fit_ml_non_integer_n_quad_is_refused():
    """Old code truncated n_quad=2.5 to 2 silently."""
    df = _table([58, 26, 33], [16, 6, 17], [13, 7, 22], [76, 45, 140])
    with pytest.raises(bd.SpecError, match="n_quad must be a positive integer"):
        bd.fit_ml(df, n_quad=2.5)


# ----------------------------------------------------------------------------- review outputs
def _dementia_frame(n: int = 8) -> pd.DataFrame:
    base = bd.load_example("dementia").frame.iloc[:n][["TP", "FP", "FN", "TN"]].copy()
    base.insert(0, "study", [f"S{i}" for i in range(n)])
    return base.reset_index(drop=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"prevalences": [0.1, 0.1]}, r"distinct, \[0.1\]"),  # old: pandas pivot ValueError
        ({"prevalences": "abc"}, "prevalences must be numbers"),  # old: float() ValueError
        ({"prevalences": 0.2, "per": 100.5}, "per must be a positive whole number"),  # old: 100
        ({"prevalences": 0.2, "per": "abc"}, "per must be a number"),  # old: int() ValueError
        ({"prevalences": 0.2, "per": True}, "per must be a number"),  # old: per = 1
        ({"prevalences": 0.2, "ci": "x"}, "ci must be a number"),
        ({"prevalences": 0.2, "at": "SAQ"}, "at= must map covariate names"),  # old: ValueError
    ],
)
def test_summary_of_findings_bad_options_one_line(dementia_fit, kwargs, match):
    with pytest.raises(bd.SpecError, match=match) as err:
        bd.summary_of_findings(dementia_fit, layout="grade", **kwargs)
    assert "\n" not in str(err.value)


def test_summary_of_findings_per_100_is_the_per_1000_table_over_10(dementia_fit):
    """per=100 (and per=100.0) scale every count: independent of the per=1000 table."""
    a = bd.summary_of_findings(dementia_fit, prevalences=[0.05, 0.3], per=1000)
    b = bd.summary_of_findings(dementia_fit, prevalences=[0.05, 0.3], per=100.0)
    assert b.attrs["per"] == 100
    for c in ("median", "lower", "upper"):
        np.testing.assert_allclose(b[c], a[c] / 10, rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"correction": "x"}, "correction must be a number"),  # old: ValueError
        ({"correction": float("nan")}, "correction must be a finite number"),  # old: NaN rows
        ({"ci": "x"}, "ci must be a number"),
    ],
)
def test_threshold_and_ratios_bad_options_one_line(kwargs, match):
    data = bd.DTAData.from_frame(_dementia_frame())
    for fn in (bd.threshold_effect, bd.study_ratios):
        with pytest.raises(bd.SpecError, match=match):
            fn(data, **kwargs)


def test_review_outputs_accept_a_dataframe():
    """Old code: ``bd.threshold_effect(frame)`` raised AttributeError ('DataFrame'.data)."""
    frame = _dementia_frame(6)
    te = bd.threshold_effect(frame)
    sens = frame.TP / (frame.TP + frame.FN)
    fpr = frame.FP / (frame.FP + frame.TN)
    assert frame[["TP", "FP", "FN", "TN"]].to_numpy().min() > 0  # no correction involved
    r = stats.spearmanr(sens, fpr).statistic
    assert te.loc["spearman_sensitivity_fpr", "estimate"] == pytest.approx(r, abs=1e-12)
    ratios = bd.study_ratios(frame)
    lr = (frame.TP / (frame.TP + frame.FN)) / (frame.FP / (frame.FP + frame.TN))
    np.testing.assert_allclose(ratios["lr_positive"].to_numpy()[: len(frame)], lr, rtol=1e-12)
    with pytest.raises(bd.SpecError, match="expected a fit, a DTAData"):
        bd.quadas(42)


def test_quadas_reads_revman_judgements_and_refuses_question_mark():
    """RevMan exports write 'Low risk' / 'High risk of bias' / 'Unclear concern' (old: refused)."""
    frame = _dementia_frame(4)
    frame["rob_patient_selection"] = ["Low risk", " HIGH  risk of bias ", "unclear risk", "Low"]
    frame["applicability_index_test"] = ["low concern", "High concerns", "Unclear", "low"]
    q = bd.quadas(frame)
    assert q["patient_selection"].tolist() == ["low", "high", "unclear", "low"]
    assert q["applicability_index_test"].tolist() == ["low", "high", "unclear", "low"]
    frame.loc[2, "rob_patient_selection"] = "?"
    with pytest.raises(bd.DTADataError, match=r"row 3 \(study 'S2'\), column 'rob_patient_se"):
        bd.quadas(frame)
    frame.loc[2, "rob_patient_selection"] = "low risky"
    with pytest.raises(bd.DTADataError, match="'low risky' is not a QUADAS-2 judgement"):
        bd.quadas(frame)


def test_pca_table_n_components_must_be_positive(osteo_fit):
    """Old code turned n_components=0 into 1 silently."""
    with pytest.raises(bd.SpecError, match="n_components must be a positive integer"):
        bd.pca_table(osteo_fit, n_components=0)


def test_threshold_effect_small_n_p_value_is_exact():
    """3 tables with r_s = -1: old code reported the t approximation's P = 0.

    Exact: of the 3! = 6 orderings, 2 give |r_s| = 1, so P = 1/3. With 6 tables, the exact
    P-value agrees with scipy's permutation test over all 720 orderings.
    """
    three = pd.DataFrame({"TP": [10, 20, 30], "FN": [30, 20, 10], "FP": [30, 20, 10]})
    three["TN"] = 50
    te = bd.threshold_effect(three)
    assert te.loc["spearman_sensitivity_fpr", "estimate"] == pytest.approx(-1.0)
    assert te.loc["spearman_sensitivity_fpr", "p_value"] == pytest.approx(1 / 3)
    assert "exact" in te["method"].iloc[0]
    frame = _dementia_frame(6)
    sens = frame.TP / (frame.TP + frame.FN)
    fpr = frame.FP / (frame.FP + frame.TN)
    ref = stats.permutation_test(
        (sens.to_numpy(),),
        lambda x: stats.spearmanr(x, fpr.to_numpy()).statistic,
        permutation_type="pairings",
        n_resamples=np.inf,
    )
    got = bd.threshold_effect(frame).loc["spearman_sensitivity_fpr", "p_value"]
    assert got == pytest.approx(ref.pvalue, abs=1e-12)


def test_pca_biplot_with_one_variable_says_why(osteo_fit):
    """One usable covariate: old message 'components must be two of 1..1, got [1, 2]'."""
    with pytest.raises(bd.SpecError, match="needs two components, and the PCA has 1") as err:
        osteo_fit.plot("pca_biplot", covariates=["prevalence"])
    assert "prevalence" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("thing", [None, "dementia.csv"])
def test_summary_of_findings_without_a_fit_is_one_line(thing):
    # old: AttributeError "'NoneType' object has no attribute 'data'"
    with pytest.raises(bd.SpecError, match="needs a fitted model") as exc:
        bd.summary_of_findings(thing)
    assert "\n" not in str(exc.value)


def test_all_zero_weights_are_one_line_errors():
    """Weights that leave no table in the fit are refused before anything is built."""
    from bayesdta.data.datasets.simulate_multiclass import default_truth, simulate_multiclass

    d = bd.load_example("dementia")
    with pytest.raises(bd.SpecError, match="weights are all 0") as info:
        bd.fit(d, weights=np.zeros(d.n_rows), verbose=False)
    assert "\n" not in str(info.value)
    lc = bd.load_example("osteoporosis_latent_class")
    priors = {"DXA": {"sensitivity": "Beta(15, 5)", "specificity": "Beta(45, 5)"}, "CT": "perfect"}
    with pytest.raises(bd.SpecError, match="weights are all 0"):
        bd.fit_latent_class(
            lc,
            reference_standard="reference_standard",
            reference_priors=priors,
            weights=np.zeros(lc.n_rows),
            verbose=False,
        )
    t, _ = simulate_multiclass(np.full((3, 3), 20), default_truth(), seed=1)
    n_studies = t["study"].nunique()
    with pytest.raises(bd.SpecError, match="weights are all 0"):
        bd.fit_multiclass(t, weights=np.zeros(n_studies), verbose=False)
