"""Outputs reviewers look for (issue 13): summary of findings, threshold effect, DOR / LR per
study, QUADAS-2, the study-characteristics PCA. Checked against independent computations
(posterior draws read directly, scipy, closed forms, a known low-rank matrix)."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from scipy import special
from scipy import stats as sps

import bayesdta as bd
from bayesdta.exceptions import DTADataError, SpecError
from bayesdta.plots import review_figures as RF
from bayesdta.posterior import review_outputs as R

PLUMBING = {"draws": 150, "tune": 200, "chains": 2}


def _intercept_draws(fit, outcome: str) -> np.ndarray:
    """Summary-point draws read directly from the posterior (the test's own computation)."""
    beta = fit.posterior[f"beta_{outcome}"].sel({f"coef_{outcome}": "Intercept"})
    return special.expit(beta.values.ravel())


# ------------------------------------------------------------------------------------------
# summary of findings
# ------------------------------------------------------------------------------------------
def test_summary_of_findings_matches_direct_monte_carlo(dementia_fit):
    f = dementia_fit
    prevs = [0.05, 0.2, 0.5]
    sof = bd.summary_of_findings(f, prevalences=prevs, per=1000, ci=0.9)
    se, sp = _intercept_draws(f, "sensitivity"), _intercept_draws(f, "specificity")
    for p in prevs:
        expect = {
            "true_positives": 1000 * p * se,
            "false_negatives": 1000 * p * (1 - se),
            "true_negatives": 1000 * (1 - p) * sp,
            "false_positives": 1000 * (1 - p) * (1 - sp),
            # joint: a positive result per draw, not the sum of two marginal intervals
            "test_positives": 1000 * (p * se + (1 - p) * (1 - sp)),
            "test_negatives": 1000 * (p * (1 - se) + (1 - p) * sp),
        }
        got = sof[sof["prevalence"] == p].set_index("outcome")
        for name, draws in expect.items():
            q = np.quantile(draws, [0.5, 0.05, 0.95])
            np.testing.assert_allclose(
                got.loc[name, ["median", "lower", "upper"]].to_numpy(float), q, rtol=1e-9
            )
        # medians of the four cells add up to the people tested
        total = got.loc[
            ["true_positives", "false_negatives", "true_negatives", "false_positives"], "median"
        ].sum()
        assert total == pytest.approx(1000.0, abs=1e-6)
    med = sof.pivot(index="prevalence", columns="outcome", values="median")
    assert np.all(np.diff(med["true_positives"]) > 0)
    assert np.all(np.diff(med["false_negatives"]) > 0)
    assert np.all(np.diff(med["true_negatives"]) < 0)
    assert np.all(np.diff(med["false_positives"]) < 0)
    # via the fit (registry) and in the GRADE layout
    grade = f.summary_of_findings(prevalences=prevs, layout="grade")
    assert list(grade.index) == list(R.SOF_OUTCOMES)
    assert grade.shape[1] == 1 + len(prevs)


def test_summary_of_findings_default_prevalences_and_errors(dementia_fit):
    f = dementia_fit
    d = f.data
    prev = d.n_diseased / (d.n_diseased + d.n_nondiseased)
    expect = np.unique(np.round(np.quantile(prev, [0.25, 0.5, 0.75]), 3))
    sof = f.summary_of_findings()
    np.testing.assert_allclose(np.unique(sof["prevalence"]), expect)
    assert "quartiles" in sof.attrs["prevalence_source"]
    with pytest.raises(SpecError, match="prevalences"):
        f.summary_of_findings(prevalences=[0.2, 1.5])
    with pytest.raises(SpecError, match="per"):
        f.summary_of_findings(per=0)


# ------------------------------------------------------------------------------------------
# threshold effect
# ------------------------------------------------------------------------------------------
def test_threshold_effect_agrees_with_scipy_spearman(dementia_fit):
    f = dementia_fit
    d = f.data
    cells = np.stack([d.tp, d.fp, d.fn, d.tn], axis=1).astype(float)
    zero = (cells == 0).any(axis=1)
    assert zero.any()  # the correction matters on this dataset
    cells = cells + 0.5 * zero[:, None]
    sens = cells[:, 0] / (cells[:, 0] + cells[:, 2])
    fpr = cells[:, 1] / (cells[:, 1] + cells[:, 3])
    ref = sps.spearmanr(sens, fpr)
    tab = f.threshold_effect(ci=0.95)
    row = tab.loc["spearman_sensitivity_fpr"]
    assert row["estimate"] == pytest.approx(ref.statistic, abs=1e-12)
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-9)
    n = d.n_rows
    r = ref.statistic
    half = 1.959963984540054 * np.sqrt((1 + r**2 / 2) / (n - 3))
    assert row["lower"] == pytest.approx(np.tanh(np.arctanh(r) - half), abs=1e-9)
    assert row["upper"] == pytest.approx(np.tanh(np.arctanh(r) + half), abs=1e-9)
    assert "0.5 added" in row["method"] and int(row["n"]) == n
    rho = f.posterior["rho"].values.ravel()
    assert tab.loc["rho", "estimate"] == pytest.approx(np.median(rho))
    assert tab.loc["rho_sensitivity_fpr", "estimate"] == pytest.approx(np.median(-rho))
    # without the correction the ranks of the zero-cell tables change
    plain = bd.threshold_effect(d, correction=0.0)
    raw = np.stack([d.tp, d.fp, d.fn, d.tn], axis=1).astype(float)
    ref0 = sps.spearmanr(raw[:, 0] / (raw[:, 0] + raw[:, 2]), raw[:, 1] / (raw[:, 1] + raw[:, 3]))
    assert plain.loc["spearman_sensitivity_fpr", "estimate"] == pytest.approx(ref0.statistic)
    assert list(plain.index) == ["spearman_sensitivity_fpr"]  # data only: no model rho


def test_threshold_effect_says_why_when_undefined():
    two = bd.DTAData.from_frame(
        pd.DataFrame({"TP": [10, 20], "FP": [1, 3], "FN": [2, 0], "TN": [30, 40]})
    )
    same = bd.DTAData.from_frame(
        pd.DataFrame({"TP": [10, 10, 10], "FP": [0, 0, 0], "FN": [0, 0, 0], "TN": [3, 4, 5]})
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no scipy warning leaks
        t2 = bd.threshold_effect(two)
        t3 = bd.threshold_effect(same)
    assert "needs at least 3 studies (n = 2)" in t2["method"].iloc[0]
    assert "every table has the same sensitivity" in t3["method"].iloc[0]


# ------------------------------------------------------------------------------------------
# DOR, LR+, LR- per study
# ------------------------------------------------------------------------------------------
def test_study_ratios_closed_forms():
    frame = pd.DataFrame(
        {
            "study": ["A", "B", "C"],
            "TP": [20, 45, 9],
            "FP": [5, 10, 0],
            "FN": [4, 5, 3],
            "TN": [30, 90, 40],
        }
    )
    data = bd.DTAData.from_frame(frame)
    tab = bd.study_ratios(data, ci=0.9)
    z = sps.norm.ppf(0.95)
    for i, cells in enumerate(frame[["TP", "FP", "FN", "TN"]].to_numpy()):
        a, b, c, d = cells.astype(float)
        if 0 in (a, b, c, d):
            a, b, c, d = a + 0.5, b + 0.5, c + 0.5, d + 0.5
            dor = a * d / (b * c)
        else:  # DOR: the sample odds ratio (scipy), with Woolf's interval
            table = np.array([[cells[0], cells[2]], [cells[1], cells[3]]])
            dor = sps.contingency.odds_ratio(table, kind="sample").statistic
        se = np.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
        row = tab.iloc[i]
        assert row["dor"] == pytest.approx(dor)
        assert row["dor_lower"] == pytest.approx(dor * np.exp(-z * se))
        assert row["dor_upper"] == pytest.approx(dor * np.exp(z * se))
        # LRs: ratio of two proportions, log (Katz) interval
        sens, spec = a / (a + c), d / (b + d)
        lrp, lrn = sens / (1 - spec), (1 - sens) / spec
        se_p = np.sqrt((1 - sens) / a + spec / b)
        se_n = np.sqrt(sens / c + (1 - spec) / d)
        assert row["lr_positive"] == pytest.approx(lrp)
        assert row["lr_positive_upper"] == pytest.approx(lrp * np.exp(z * se_p))
        assert row["lr_negative"] == pytest.approx(lrn)
        assert row["lr_negative_lower"] == pytest.approx(lrn * np.exp(-z * se_n))
    assert list(tab["corrected"]) == [False, False, True]


def test_study_ratios_pooled_rows_and_subgroups(dementia_fit, smoking_fit):
    tab = dementia_fit.study_ratios()
    pooled = tab.loc["Summary"]
    for k in ("dor", "lr_positive", "lr_negative"):
        draws = dementia_fit.draws(k).values.ravel()
        assert pooled[k] == pytest.approx(np.median(draws))
    sub = smoking_fit.study_ratios(by="type")
    se = {}
    for lv in smoking_fit.design.levels["type"]:
        # the design centres nothing for a categorical covariate: reference + level effect
        b = smoking_fit.posterior["beta_sensitivity"]
        g = smoking_fit.posterior["beta_specificity"]
        col_se = [c for c in b.coords["coef_sensitivity"].values if str(c).endswith(f"[T.{lv}]")]
        col_sp = [c for c in g.coords["coef_specificity"].values if str(c).endswith(f"[T.{lv}]")]
        eta_se = b.sel(coef_sensitivity="Intercept").values.ravel()
        eta_sp = g.sel(coef_specificity="Intercept").values.ravel()
        if col_se:
            eta_se = eta_se + b.sel(coef_sensitivity=col_se[0]).values.ravel()
            eta_sp = eta_sp + g.sel(coef_specificity=col_sp[0]).values.ravel()
        s, p = special.expit(eta_se), special.expit(eta_sp)
        se[lv] = np.median(s / (1 - p))
        got = sub.loc[f"Summary: type={lv}", "lr_positive"]
        assert got == pytest.approx(se[lv], rel=1e-9)
    with pytest.raises(SpecError, match="formula"):
        dementia_fit.study_ratios(by="setting")


# ------------------------------------------------------------------------------------------
# QUADAS-2
# ------------------------------------------------------------------------------------------
def _quadas_frame(n: int = 8, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = bd.load_example("dementia").frame.iloc[:n][["TP", "FP", "FN", "TN"]].copy()
    base.insert(0, "study", [f"S{i}" for i in range(n)])
    for c in ("RoB patient selection", "rob_index_test", "Reference standard - RoB"):
        base[c] = rng.choice(["Low", "HIGH", "unclear"], size=n)
    base["quadas_flow_and_timing"] = "low"
    base["applicability_index_test"] = rng.choice(["low", "high"], size=n)
    base["reference_standard"] = rng.choice(["DXA", "CT"], size=n)  # a covariate, not QUADAS
    return base


def test_quadas_columns_are_found_and_counted():
    frame = _quadas_frame()
    data = bd.DTAData.from_frame(frame)
    cols = bd.quadas_columns(data)
    assert cols == {
        "patient_selection": "RoB patient selection",
        "index_test": "rob_index_test",
        "reference_standard": "Reference standard - RoB",
        "flow_and_timing": "quadas_flow_and_timing",
        "applicability_index_test": "applicability_index_test",
    }
    q = bd.quadas(data)
    assert "RoB patient selection" in q.attrs["note"] and "not given" in q.attrs["note"]
    summ = bd.quadas_summary(data)
    for key, col in cols.items():
        kind = "applicability" if key.startswith("applicability") else "risk of bias"
        domain = R.QUADAS_DOMAINS[key.removeprefix("applicability_")]
        expect = frame[col].str.lower().value_counts()
        row = summ.loc[(kind, domain)]
        for j in ("low", "unclear", "high"):
            assert row[j] == expect.get(j, 0)
        assert row[["low_pct", "unclear_pct", "high_pct"]].sum() == pytest.approx(100.0)
    fig = RF.plot_quadas(data)
    widths = [p.get_width() for p in fig.axes[0].patches]
    assert sum(widths) == pytest.approx(100.0 * 4)  # four risk-of-bias bars of 100%


@pytest.mark.parametrize(
    ("value", "shown"), [("medium", "'medium'"), (None, "an empty cell"), ("yes", "'yes'")]
)
def test_quadas_bad_value_names_row_and_column(value, shown):
    frame = _quadas_frame()
    frame["rob_index_test"] = frame["rob_index_test"].astype(object)
    frame.loc[3, "rob_index_test"] = value
    data = bd.DTAData.from_frame(frame)
    with pytest.raises(DTADataError) as err:
        bd.quadas(data)
    msg = str(err.value)
    assert "\n" not in msg
    assert "row 4" in msg and "'rob_index_test'" in msg and shown in msg


def test_quadas_errors_without_columns_and_worst_of_rows():
    with pytest.raises(DTADataError, match="no QUADAS-2 columns"):
        bd.quadas(bd.load_example("dementia"))
    frame = _quadas_frame(4)
    frame["study"] = ["S0", "S0", "S1", "S2"]
    frame["model"] = ["a", "b", "a", "a"]
    frame["rob_index_test"] = ["low", "high", "low", "unclear"]
    data = bd.DTAData.from_frame(frame, model="model")
    q = bd.quadas(data)
    assert q.loc["S0", "index_test"] == "high"
    assert "S0" in q.attrs["note"] and "worst" in q.attrs["note"]


def test_low_risk_subset_refuses_and_fits(capsys, dementia_fit):
    frame = bd.load_example("dementia").frame[["study", "TP", "FP", "FN", "TN"]].copy()
    n = len(frame)
    for c in ("rob_patient_selection", "rob_index_test"):
        frame[c] = "high"
    data = bd.DTAData.from_frame(frame.assign(rob_index_test=["low"] * n))
    one = frame.copy()
    one.loc[0, ["rob_patient_selection"]] = "low"
    one.loc[0, ["rob_index_test"]] = "LOW"
    with pytest.raises(DTADataError, match=r"1 of 33 studies .* at least 2"):
        bd.fit(bd.DTAData.from_frame(one), subset="low_risk", verbose=False)
    with pytest.raises(DTADataError, match="0 of 33"):
        bd.fit(data, subset="low_risk", verbose=False)
    with pytest.raises(SpecError, match="subset"):
        bd.fit(data, subset="low", verbose=False)
    # 40 tables, 34 at low risk: the padded shapes of the 33-study session fit (no compile)
    frame = pd.concat([frame, frame.iloc[:7].assign(study=[f"x{i}" for i in range(7)])])
    frame = frame.reset_index(drop=True)
    n = len(frame)
    keep = np.arange(n) < 34
    frame.loc[keep, ["rob_patient_selection", "rob_index_test"]] = "low"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bd.fit(frame, subset="low_risk", seed=3, **PLUMBING)
    assert f.data.n_studies == int(keep.sum())
    assert list(f.data.studies) == [str(s) for s in frame["study"][keep]]
    err = capsys.readouterr().err
    assert f"{int(keep.sum())} of {n} studies" in err and "rob_index_test" in err
    assert f"{int(keep.sum())} of {n} studies" in f.sampler["subset"]


def test_sweep_low_risk_only_variant(tmp_path):
    from bayesdta.reporting import sensitivity as sens
    from bayesdta.reporting.spec import load_spec

    frame = bd.load_example("dementia").frame.drop(columns=["model"])
    frame["study"] = [f"S{i + 1:02d}" for i in range(len(frame))]
    frame["rob_patient_selection"] = np.where(np.arange(len(frame)) % 3 == 0, "high", "low")
    frame["rob_flow_and_timing"] = np.where(np.arange(len(frame)) % 5 == 0, "Unclear", "Low")
    frame.to_csv(tmp_path / "d.csv", index=False)
    text = (
        '[analysis]\nname = "t"\nseed = 1\n[data]\nfile = "d.csv"\n[model]\nlevels = 2\n'
        "[sensitivity]\nlow_risk_only = true\n"
    )
    (tmp_path / "s.toml").write_text(text)
    spec = load_spec(tmp_path / "s.toml")
    variants = sens.build_variants(spec, spec.load_data())
    v = [x for x in variants if x.name == "low_risk_only"]
    assert len(v) == 1
    i = np.arange(len(frame))
    expect = np.flatnonzero((i % 3 == 0) | (i % 5 == 0))
    assert list(v[0].excluded_rows) == list(expect)
    assert f"{len(frame) - expect.size} of {len(frame)} studies" in v[0].description
    frame["rob_patient_selection"] = "high"
    frame.to_csv(tmp_path / "d.csv", index=False)
    spec = load_spec(tmp_path / "s.toml")
    with pytest.raises(SpecError, match="low_risk_only refused: .*0 of 33"):
        sens.build_variants(spec, spec.load_data())


# ------------------------------------------------------------------------------------------
# PCA
# ------------------------------------------------------------------------------------------
def test_pca_recovers_a_known_low_rank_structure():
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(40, 2)) * [3.0, 1.0]
    basis, _ = np.linalg.qr(rng.normal(size=(6, 2)))
    x = scores @ basis.T + 7.0
    res = R.pca(x, standardize=False)
    assert res["explained"][:2].sum() == pytest.approx(1.0, abs=1e-12)
    assert np.all(res["explained"][2:] < 1e-20)
    v2 = res["loadings"][:, :2]
    # the two loadings span the planted subspace
    np.testing.assert_allclose(v2 @ v2.T, basis @ basis.T, atol=1e-10)
    np.testing.assert_allclose(
        res["variance"][:2], np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1][:2], rtol=1e-10
    )
    # standardized: the eigenvalues of the correlation matrix
    y = x + rng.normal(scale=0.3, size=x.shape)
    res = R.pca(y)
    ev = np.sort(np.linalg.eigvalsh(np.corrcoef(y.T)))[::-1]
    np.testing.assert_allclose(res["variance"], ev[: res["variance"].size], rtol=1e-10)
    np.testing.assert_allclose(res["scores"].std(axis=0, ddof=1) ** 2, res["variance"])


def test_study_pca_table_and_biplot(osteo_fit):
    f = osteo_fit
    res = f.study_pca()
    assert "simulated (constant)" in res["note"]
    assert set(res["in_formula"]) == set(f.design.variables)
    theta = f.posterior["theta"].transpose("chain", "draw", ...).values
    perf = theta.reshape(-1, theta.shape[2], 2).mean(axis=0)
    pc1 = res["scores"]["PC1"].to_numpy()
    assert res["performance"].loc["logit_sensitivity", "PC1"] == pytest.approx(
        np.corrcoef(pc1, perf[:, 0])[0, 1]
    )
    tab = bd.pca_table(f, n_components=2)
    assert list(tab.columns) == ["PC1", "PC2"]
    assert any(ix.startswith("loading: backbone=") and ix.endswith("*") for ix in tab.index)
    assert not any(ix.startswith("loading: scan_plane") and ix.endswith("*") for ix in tab.index)
    fig = f.plot("pca_biplot")
    assert fig.axes[0].get_xlabel().startswith("PC1")
    with pytest.raises(SpecError, match="usable covariate"):
        bd.study_pca(f, covariates=["simulated"])


# ------------------------------------------------------------------------------------------
# forest plots with counts
# ------------------------------------------------------------------------------------------
def test_forest_plots_show_counts_and_diamonds(dementia_fit, smoking_fit):
    f = dementia_fit
    fig = f.plot("forest_ratios")
    assert len(fig.axes) == 3
    texts = [t.get_text() for t in fig.axes[0].texts]
    for c in ("TP", "FP", "FN", "TN"):
        assert c in texts
    d = f.data
    # every count of every table appears once in its column
    counts = Counter(t for t in texts if t not in ("TP", "FP", "FN", "TN"))
    expect = Counter(str(int(v)) for c in ("tp", "fp", "fn", "tn") for v in getattr(d, c))
    assert counts == expect
    for ax in fig.axes:
        pts = [c for c in ax.collections if c.get_label() == "Observed"][0]
        assert len(pts.get_offsets()) == d.n_rows
        assert sum(p.get_label() == "Summary" for p in ax.patches) == 1
    sub = smoking_fit.plot("forest_ratios", by="type")
    n_levels = len(smoking_fit.design.levels["type"])
    assert sum(p.get_label() == "Summary" for p in sub.axes[0].patches) == n_levels
    plain = f.plot("forest")
    assert {"TP", "FP", "FN", "TN"} <= {t.get_text() for t in plain.axes[0].texts}
    none = f.plot("forest", show_counts=False)
    assert "TP" not in {t.get_text() for t in none.axes[0].texts}


# ------------------------------------------------------------------------------------------
# spec -> report
# ------------------------------------------------------------------------------------------
def test_spec_run_writes_the_review_tables_and_figures(tmp_path, dementia_fit):
    from bayesdta.reporting.report import run_analysis
    from bayesdta.reporting.spec import load_spec

    frame = bd.load_example("dementia").frame.drop(columns=["model"])
    frame["study"] = [f"S{i + 1:02d}" for i in range(len(frame))]
    frame["rob_patient_selection"] = np.where(np.arange(len(frame)) % 4 == 0, "High", "low")
    frame["applicability_index_test"] = "unclear"
    frame.to_csv(tmp_path / "d.csv", index=False)
    (tmp_path / "s.toml").write_text(
        '[analysis]\nname = "rev"\nseed = 11\n[data]\nfile = "d.csv"\n[model]\nlevels = 2\n'
        "[sampler]\nchains = 2\ndraws = 150\ntune = 200\n"
        "[outputs]\nloo = false\nsave_posterior = false\n"
        'tables = ["summary_of_findings", "threshold_effect", "quadas_summary"]\n'
        'figures = ["forest_ratios", "quadas"]\n'
        "[outputs.table_options.summary_of_findings]\nprevalences = [0.1, 0.4]\n"
    )
    spec = load_spec(tmp_path / "s.toml")
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_analysis(spec, out)
    sof = pd.read_csv(out / "tables" / "summary_of_findings.csv")
    assert list(sof.columns) == ["outcome", "description", "prevalence 10%", "prevalence 40%"]
    q = pd.read_csv(out / "tables" / "quadas_summary.csv")
    assert int(q.loc[q["domain"] == "Patient selection", "high"].iloc[0]) == 9
    for name in ("forest_ratios", "quadas"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
    md = (out / "report.md").read_text()
    assert "prevalence 40%" in md and "rob_patient_selection" in md
    assert "Spearman" in md


def test_cli_fit_subset_low_risk_refuses_in_one_line(tmp_path, capsys):
    from bayesdta.cli import main

    frame = _quadas_frame(6)
    frame["RoB patient selection"] = ["low", "high", "high", "unclear", "high", "high"]
    frame["rob_index_test"] = "low"
    frame["Reference standard - RoB"] = "LOW"
    frame.to_csv(tmp_path / "d.csv", index=False)
    code = main(["fit", str(tmp_path / "d.csv"), "--out", str(tmp_path), "--subset", "low_risk"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "1 of 6 studies" in err[0] and "at least 2" in err[0]


def test_sensitivity_forest_subgroup_diamonds(smoking_fit):
    f = smoking_fit
    fig = f.plot("forest", by="type")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    for lv in f.design.levels["type"]:
        assert f"Summary (type={lv})" in labels
    # the diamond of the non-reference level: reference + level coefficient, per draw
    lv = f.design.levels["type"][1]
    b = f.posterior["beta_sensitivity"]
    eta = b.sel(coef_sensitivity="Intercept") + b.sel(coef_sensitivity=f"type[T.{lv}]")
    med = np.median(special.expit(eta.values.ravel()))
    tips = [
        p.get_xy()[1][0]  # the diamond's top vertex sits at the median
        for p in fig.axes[0].patches
        if p.get_label() == "Summary" and p.get_facecolor()[:3] != (0.0, 0.0, 0.0)
    ]
    assert any(abs(t - med) < 1e-12 for t in tips)
    with pytest.raises(SpecError, match="formula"):
        f.plot("forest", by="population")


def test_exact_and_score_intervals(dementia_fit):
    # Koopman's (1984) worked example: 36/40 against 16/80, 95% interval 2.94 to 7.15
    lo, hi = R.koopman_interval(36, 40, 16, 80, ci=0.95)
    assert (round(lo, 2), round(hi, 2)) == (2.94, 7.15)
    # the definition, by brute force: theta on a grid, the constrained MLE by numerical
    # maximization of the likelihood, the Pearson chi-square against the chi-square quantile
    from scipy.optimize import minimize_scalar

    def chi2(theta, x1, n1, x2, n2):
        def nll(p2):
            p1 = theta * p2
            return -(sps.binom.logpmf(x1, n1, p1) + sps.binom.logpmf(x2, n2, p2))

        p2 = minimize_scalar(
            nll,
            bounds=(1e-12, min(1.0, 1.0 / theta) - 1e-12),
            method="bounded",
            options={"xatol": 1e-12},
        ).x
        p1 = theta * p2
        return (x1 - n1 * p1) ** 2 / (n1 * p1 * (1 - p1)) + (x2 - n2 * p2) ** 2 / (
            n2 * p2 * (1 - p2)
        )

    crit = sps.chi2.ppf(0.9, 1)
    for x1, n1, x2, n2 in ((20, 24, 5, 35), (3, 50, 40, 60), (0, 12, 3, 40)):
        lo, hi = R.koopman_interval(x1, n1, x2, n2, ci=0.9)
        grid = np.exp(np.linspace(np.log(max(lo, 1e-3) / 1.5), np.log(hi * 1.5), 160))
        inside = grid[[chi2(t, x1, n1, x2, n2) <= crit for t in grid]]
        ratio = grid[1] / grid[0]
        assert inside.max() <= hi * ratio and inside.max() >= hi / ratio
        if x1 > 0:
            assert inside.min() >= lo / ratio and inside.min() <= lo * ratio
        else:
            assert lo == 0.0
    # in study_ratios: DOR by scipy's exact conditional interval, LRs by the score interval
    frame = pd.DataFrame({"TP": [20, 9], "FP": [5, 0], "FN": [4, 3], "TN": [30, 40]})
    tab = bd.study_ratios(bd.DTAData.from_frame(frame), interval="exact", ci=0.9)
    ref = sps.contingency.odds_ratio(np.array([[20, 4], [5, 30]]), kind="conditional")
    ci_ref = ref.confidence_interval(confidence_level=0.9)
    assert tab["dor_lower"].iloc[0] == pytest.approx(ci_ref.low)
    assert tab["dor_upper"].iloc[0] == pytest.approx(ci_ref.high)
    assert tab["lr_positive_lower"].iloc[0] == pytest.approx(
        R.koopman_interval(20, 24, 5, 35, ci=0.9)[0]
    )
    assert np.isinf(tab["lr_positive_upper"].iloc[1]) and np.isinf(tab["dor_upper"].iloc[1])
    # a zero count reaches infinity: drawn to the panel's edge, every segment finite
    fig = dementia_fit.plot("forest_ratios", interval="exact")
    segs = np.concatenate([np.asarray(c.get_segments()) for c in fig.axes[1].collections[:1]])
    assert np.isfinite(segs).all() and len(segs) == dementia_fit.data.n_rows


def test_summary_of_findings_at_covariate_values(osteo_fit):
    f = osteo_fit
    sof = f.summary_of_findings(prevalences=[0.3], at={"backbone": "DenseNet"})
    eta = {}
    for o in ("sensitivity", "specificity"):
        b = f.posterior[f"beta_{o}"]
        names = [str(c) for c in b.coords[f"coef_{o}"].values]
        level = [c for c in names if c.startswith("backbone") and c.endswith("DenseNet]")][0]
        eta[o] = (b.sel({f"coef_{o}": "Intercept"}) + b.sel({f"coef_{o}": level})).values.ravel()
    se = special.expit(eta["sensitivity"])
    fp = 1000 * 0.7 * (1 - special.expit(eta["specificity"]))
    got = sof.set_index("outcome")
    assert got.loc["true_positives", "median"] == pytest.approx(np.median(300 * se))
    assert got.loc["false_positives", "upper"] == pytest.approx(np.quantile(fp, 0.975))


def test_exact_dor_intervals_agree_with_r_fisher_test_and_the_definition():
    """References: R's fisher.test conf.int (validation/review_outputs_fisher.R), whose
    uniroot default tolerance leaves errors of up to a few percent on large odds ratios, and
    the definition solved here to 1e-14: the limits are the odds ratios at which the Fisher
    noncentral hypergeometric tail of TP has probability (1 - ci) / 2."""
    from pathlib import Path

    from scipy.optimize import brentq

    ref = pd.read_csv(Path(__file__).parents[1] / "validation" / "review_outputs_fisher.csv")
    data = bd.load_example("dementia")
    cells = np.stack([data.tp, data.fp, data.fn, data.tn], axis=1)
    assert (ref[["TP", "FP", "FN", "TN"]].to_numpy() == cells).all()
    tab = bd.study_ratios(data, interval="exact", ci=0.95)
    np.testing.assert_allclose(tab["dor_lower"], ref["dor_lower"], rtol=0.05)
    np.testing.assert_allclose(tab["dor_upper"], ref["dor_upper"], rtol=0.05)
    for i in (0, 1, 29, 30):
        tp, fp, fn, tn = (int(v) for v in cells[i])
        hg = (tp + fp + fn + tn, tp + fn, tp + fp)
        est = np.log(tp * tn / (fp * fn))

        def upper(lt, tp=tp, hg=hg):
            return sps.nchypergeom_fisher.cdf(tp, *hg, np.exp(lt)) - 0.025

        def lower(lt, tp=tp, hg=hg):
            return sps.nchypergeom_fisher.sf(tp - 1, *hg, np.exp(lt)) - 0.025

        hi = np.exp(brentq(upper, est, est + 6, xtol=1e-14))
        lo = np.exp(brentq(lower, est - 6, est, xtol=1e-14))
        assert tab["dor_upper"].iloc[i] == pytest.approx(hi, rel=1e-6)
        assert tab["dor_lower"].iloc[i] == pytest.approx(lo, rel=1e-6)
