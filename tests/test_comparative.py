"""Comparative accuracy of several tests (issue 12): data checks, recovery, ML agreement."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesdta as bd
from bayesdta.data.comparative import read_comparative
from bayesdta.data.datasets.simulate_comparative import (
    simulate_comparative,
    simulate_osteoporosis_comparative,
)

ROOT = Path(__file__).resolve().parents[1]
ASCUS = ROOT / "benchmarks" / "data" / "ascus.csv"
SMALL = {"draws": 300, "tune": 300, "chains": 2, "cores": 1, "escalate": False}


def _compare(data, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        return bd.compare_tests(data, verbose=False, **{**SMALL, **kw})


# ---------------------------------------------------------------------------- data
def _table():
    return pd.DataFrame(
        {
            "study": ["a", "a", "b", "b", "c", "c", "d"],
            "test": ["X", "Y", "X", "Y", "X", "Z", "Z"],
            "TP": [10, 8, 20, 15, 5, 6, 9],
            "FN": [2, 4, 5, 10, 3, 2, 1],
            "FP": [3, 5, 4, 6, 2, 2, 7],
            "TN": [30, 28, 50, 47, 20, 30, 40],
        }
    )


def test_reads_network_and_says_what_it_read():
    c = read_comparative(_table(), reference="Z")
    assert c.tests == ["Z", "X", "Y"]
    assert c.studies_per_test == {"Z": ["c", "d"], "X": ["a", "b", "c"], "Y": ["a", "b"]}
    assert c.is_network
    # a and b: same diseased / non-diseased counts -> look paired; c: counts differ
    assert c.paired == {"a": True, "b": False, "c": False}
    line = c.describe()
    assert "network of 3 tests" in line and "X (3 studies)" in line
    assert "1 single-test studies" in line
    assert c.design_table().loc["d", "Z"] == 1 and c.design_table().loc["d", "X"] == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.drop(columns="test"), "test column 'test' is not in the table"),
        (lambda d: d.drop_duplicates("study").assign(test="X"), "only one test"),
        (lambda d: d.assign(test=["X", "X", "X", "Y", "X", "Z", "Z"]), "same test"),
        (
            lambda d: d.assign(test=["X", "Y", "X", "Y", "X", "Z", "W"]),
            "row 6, column test: test 'W' is evaluated in only",
        ),
        (lambda d: d.assign(test=["X", "Y", "X", "", "X", "Z", "Z"]), "column test: missing"),
    ],
)
def test_bad_input_one_line_errors(change, message):
    with pytest.raises(bd.DTADataError) as err:
        read_comparative(change(_table()))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_declared_paired_checks_the_counts():
    with pytest.raises(bd.DTADataError, match=r"row 3, .*study 'b' is declared paired"):
        read_comparative(_table(), paired=True)


def test_model_column_allows_several_tables_of_one_test():
    d = _table().assign(test=["X", "X", "X", "Y", "X", "Y", "Y"], model=list("pqrstuv"))
    c = read_comparative(d, model="model")
    assert c.design["a"] == ("X", "X") and c.data.n_rows == 7


def test_osteoporosis_comparative_design_rule():
    df, truth = simulate_osteoporosis_comparative()
    c = read_comparative(df)
    assert {t: len(s) for t, s in c.studies_per_test.items()} == {
        "DL-DenseNet": 8,
        "DL-Other": 6,
        "DL-ResNet": 10,
        "Radiologist": 10,
    }
    assert c.is_network and c.data.n_studies == 20
    rad = df[df["test"] == "Radiologist"]
    assert (rad["test_set"] == "shared").sum() == 5 and (rad["test_set"] == "separate").sum() == 5
    # the packaged file is this simulation (seed 2026)
    packaged = pd.read_csv(
        ROOT / "src/bayesdta/data/datasets/osteoporosis_comparative.csv", keep_default_na=False
    )
    pd.testing.assert_frame_equal(packaged, df.reset_index(drop=True), check_dtype=False)
    assert truth["mu_sensitivity"]["Radiologist"] == pytest.approx(np.log(0.75 / 0.25))


# ---------------------------------------------------------------------------- recovery
def _check_recovery(fit, truth, fwer=0.001):
    """Every test mean within z posterior SDs of the truth, z fixed by a family-wise error rate.

    With 2 x T means checked at once, z = Phi^-1(1 - fwer / (4 T)) (Bonferroni): a correct
    model fails one of these checks on at most ``fwer`` of simulated data sets.
    """
    from scipy.stats import norm

    d = fit.draws()
    z = float(norm.ppf(1 - fwer / (4 * len(fit.tests))))
    for o in ("sensitivity", "specificity"):
        for j, t in enumerate(fit.tests):
            x = d[f"mu_{o}"][:, j]
            true = np.log(truth[o][t] / (1 - truth[o][t]))
            assert abs(x.mean() - true) < z * x.std(), (o, t, x.mean(), true)


def test_recovery_paired_design():
    """16 paired studies of two tests: means and the difference recovered."""
    rng = np.random.default_rng(7)
    n1 = rng.integers(60, 200, 16)
    n0 = rng.integers(150, 400, 16)
    design = pd.DataFrame(
        {
            "study": np.repeat([f"s{i}" for i in range(16)], 2),
            "test": ["A", "B"] * 16,
            "n_diseased": np.repeat(n1, 2),
            "n_nondiseased": np.repeat(n0, 2),
        }
    )
    truth = {"sensitivity": {"A": 0.85, "B": 0.72}, "specificity": {"A": 0.88, "B": 0.93}}
    df = simulate_comparative(
        design,
        **truth,
        tau_sensitivity=0.5,
        tau_specificity=0.5,
        rho=-0.3,
        tau_within_sensitivity=0.25,
        tau_within_specificity=0.25,
        seed=11,
    )
    fit = _compare(df, paired=True, seed=3)
    _check_recovery(fit, truth)
    rel = fit.relative().set_index(["test", "comparator", "outcome"])
    se = rel.loc[("A", "B", "sensitivity")]
    assert se["difference_lower"] < 0.85 - 0.72 < se["difference_upper"]
    assert se["p_better"] > 0.9  # A is more sensitive by 0.13
    # both directions, consistent
    back = rel.loc[("B", "A", "sensitivity")]
    assert back["p_better"] == pytest.approx(1 - se["p_better"], abs=1e-9)
    assert back["ratio"] == pytest.approx(1 / se["ratio"], rel=0.02)


def test_recovery_network_and_ranking():
    """The osteoporosis network (4 tests, no study with all): means recovered, ranks sane."""
    df, truth = simulate_osteoporosis_comparative(seed=5)
    fit = _compare(df, reference="Radiologist", seed=4)
    _check_recovery(fit, truth)
    rk = fit.ranking().set_index(["criterion", "test"])
    p = rk[[c for c in rk.columns if c.startswith("p_rank_")]]
    assert np.allclose(p.sum(axis=1), 1.0) and np.allclose(p.groupby("criterion").sum(), 1.0)
    # the radiologists' sensitivity (0.75 vs 0.85-0.90) ranks last most of the time
    assert rk.loc[("sensitivity", "Radiologist"), "p_rank_4"] > 0.5
    assert rk.loc[("sensitivity", "Radiologist"), "sucra"] < 0.25
    assert len(fit.relative()) == 4 * 3 * 2
    fig = fit.plot("comparative_sroc")
    assert len(fig.axes[0].lines) >= 4


def test_test_specific_sds_are_recovered():
    """deviations_by_test: a test whose accuracy varies much more between studies is seen so."""
    rng = np.random.default_rng(8)
    k = 20
    n1, n0 = rng.integers(80, 200, k), rng.integers(150, 300, k)
    design = pd.DataFrame(
        {
            "study": np.repeat([f"s{i}" for i in range(k)], 2),
            "test": ["steady", "erratic"] * k,
            "n_diseased": np.repeat(n1, 2),
            "n_nondiseased": np.repeat(n0, 2),
        }
    )
    truth = {
        "sensitivity": {"steady": 0.8, "erratic": 0.8},
        "specificity": {"steady": 0.9, "erratic": 0.9},
    }
    df = simulate_comparative(
        design,
        **truth,
        tau_sensitivity=0.3,
        tau_specificity=0.3,
        tau_within_sensitivity={"steady": 0.05, "erratic": 1.2},
        tau_within_specificity={"steady": 0.05, "erratic": 1.2},
        seed=9,
    )
    fit = _compare(df, tau_by_test=True, seed=5)
    assert fit.spec.model == "deviations_by_test"
    d = fit.draws()
    j = fit.tests.index("erratic")
    for o in ("sensitivity", "specificity"):
        tw = d[f"tau_within_{o}"]
        assert np.mean(tw[:, j] > tw[:, 1 - j]) > 0.95, o
        lo, hi = np.quantile(tw[:, j], [0.025, 0.975])
        assert lo < 1.2 < hi, (o, lo, hi)
    _check_recovery(fit, truth)
    with pytest.raises(bd.SpecError, match="tau_by_test=True needs test-by-study deviations"):
        bd.compare_tests(df, comparison="shared", tau_by_test=True)


# ---------------------------------------------------------------------------- ML agreement
def _glmer(dataset, model):
    ref = pd.read_csv(ROOT / "validation" / "glmer_comparative.csv")
    return ref[(ref["dataset"] == dataset) & (ref["model"] == model)].set_index("parameter")


@pytest.mark.parametrize(
    ("dataset", "model", "tol"),
    [("ascus", "shared", 0.35), ("ascus", "deviations", 1.0), ("smoking", "deviations", 0.5)],
)
def test_agrees_with_glmer(dataset, model, tol):
    """Bayesian posterior means vs lme4 ML (Laplace) on real comparative data.

    ascus: Arbyn 2013, HC2 vs repeat cytology in 10 studies; smoking: Patrick 1994, SAQ vs IAQ
    questionnaires, 26 studies, no study with both (between-study comparison), several tables
    per study. ``tol``: allowed |posterior mean - ML estimate| in ML standard errors. The
    ascus shared-model ML fit is interior; the ascus deviations-model ML fit sits on the
    boundary (study SDs 0, rho_within -1), where the half-normal priors pull the SDs off zero
    and move the means by up to ~0.8 SE; smoking's ML fit has rho = -1 (validation/README.md).
    """
    ref = _glmer(dataset, model)
    data, test = (ASCUS, "test") if dataset == "ascus" else (bd.load_example("smoking"), "type")
    fit = _compare(data, test=test, comparison=model, seed=21, draws=500)
    d = fit.draws()
    tests = sorted(fit.tests)
    for o, short in (("sensitivity", "se"), ("specificity", "sp")):
        for t in tests:
            ml = ref.loc[f"mu_{short}[{t}]"]
            x = d[f"mu_{o}"][:, fit.tests.index(t)]
            assert abs(x.mean() - ml["estimate"]) < tol * ml["std_error"], (o, t)
            assert 0.7 < x.std() / ml["std_error"] < 1.6, (o, t, x.std(), ml["std_error"])
        a, b = (fit.tests.index(t) for t in tests)
        diff = d[f"mu_{o}"][:, a] - d[f"mu_{o}"][:, b]
        ml = ref.loc[f"logit_diff_{short}[{tests[0]}-{tests[1]}]"]
        assert abs(diff.mean() - ml["estimate"]) < tol * ml["std_error"] + 0.02, o
    if model == "shared":
        lo, hi = np.quantile(d["tau_sensitivity"], [0.025, 0.975])
        assert lo < ref.loc["tau_se", "estimate"] < hi


# ---------------------------------------------------------------------------- spec / report
def test_spec_rejects_bad_comparison():
    from bayesdta.reporting.spec import parse_spec

    base = {"data": {"example": "osteoporosis_comparative", "model": "test"}}
    with pytest.raises(bd.SpecError, match="comparison.model: must be one of"):
        parse_spec({**base, "comparison": {"model": "arm_based"}})
    with pytest.raises(bd.SpecError, match="comparison.tests: unknown key"):
        parse_spec({**base, "comparison": {"tests": "test"}})
    with pytest.raises(bd.SpecError, match="needs a \\[comparison\\] table"):
        parse_spec({**base, "sensitivity": {"comparison_models": ["shared"]}})


def test_worked_example_spec_runs(tmp_path):
    """models/osteoporosis_comparative.toml on small settings: tables, figure, report, sweep."""
    import dataclasses

    from bayesdta.reporting.report import run_analysis
    from bayesdta.reporting.sensitivity import run_sweep
    from bayesdta.reporting.spec import load_spec

    spec = load_spec(ROOT / "models" / "osteoporosis_comparative.toml")
    assert spec.comparison["reference"] == "Radiologist"
    small = {"draws": 200, "tune": 300, "chains": 2, "cores": 1}
    spec = dataclasses.replace(
        spec,
        sampler={**spec.sampler, **small},
        outputs={**spec.outputs, "figures": [], "loo": False},
        sensitivity=dataclasses.replace(spec.sensitivity, comparison_models=("shared",)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        paths = run_analysis(spec, tmp_path)
    folder = tmp_path / "comparative"
    rel = pd.read_csv(folder / "relative.csv")
    assert len(rel) == 4 * 3 * 2
    summ = pd.read_csv(folder / "summary.csv").set_index(["test", "quantity"])
    truth = bd.load_truth("osteoporosis_comparative")
    for t, se in truth["sensitivity"].items():
        row = summ.loc[(t, "sensitivity")]
        assert row["lower"] < se < row["upper"], (t, se)
    assert (folder / "comparative_sroc.png").stat().st_size > 1000
    text = paths["md"].read_text()
    assert "## Comparative accuracy" in text and "network of 4 tests" in text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        run_sweep(spec, tmp_path / "sensitivity", workers=1, progress=False)
    sweep = pd.read_csv(tmp_path / "sensitivity" / "comparison_sweep.csv")
    assert set(sweep["comparison_model"]) == {"shared"}
    assert set(sweep["test"]) == set(truth["sensitivity"])
    from bayesdta.reporting.report import build_report

    assert "Comparison models (sweep)" in build_report(tmp_path)["md"].read_text()


def test_cli_compare(tmp_path, capsys):
    from bayesdta.cli.main import main

    assert main(["compare", str(ASCUS), "--test", "tst", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: test column 'tst' is not in the table") and "\n" not in err
    argv = ["compare", str(ASCUS), "--out", str(tmp_path), "--comparison", "shared"]
    argv += ["--draws", "200", "--tune", "300", "--chains", "2", "--reference", "RepC"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        assert main(argv) == 0
    rel = pd.read_csv(tmp_path / "comparative" / "relative.csv")
    row = rel[(rel["test"] == "HC2") & (rel["outcome"] == "sensitivity")].iloc[0]
    assert row["comparator"] == "RepC" and row["p_better"] > 0.99  # HC2 is more sensitive
    assert (tmp_path / "comparative" / "comparative_sroc.pdf").exists()


def test_same_seed_same_numbers():
    """A seed gives the same draws again, after another comparison was fitted in between."""
    a = _compare(ASCUS, comparison="shared", seed=77, draws=100, tune=200)
    _compare(ASCUS, comparison="shared", seed=78, draws=100, tune=200)
    b = _compare(ASCUS, comparison="shared", seed=77, draws=100, tune=200)
    pd.testing.assert_frame_equal(a.relative(), b.relative())
