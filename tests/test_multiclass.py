"""Joint multiclass model (issue 13): reading KxK tables, recovery, K = 2 agreement, round trips."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesdta as bd
from bayesdta import DTADataError, SpecError
from bayesdta.data.datasets.simulate_multiclass import default_truth, simulate_multiclass

CLASSES = ["osteoporosis", "osteopenia", "normal"]


def _long(rng: np.random.Generator, n_studies: int = 3) -> pd.DataFrame:
    rows = []
    for s in range(n_studies):
        for a in CLASSES:
            for b in CLASSES:
                rows.append(
                    {"study": f"S{s}", "true": a, "predicted": b, "count": int(rng.integers(0, 30))}
                )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- reading
def test_long_and_wide_layouts_read_the_same_matrices():
    long = _long(np.random.default_rng(0))
    wide = long.assign(cell=long["true"] + "->" + long["predicted"]).pivot(
        index="study", columns="cell", values="count"
    )
    wide = wide.reset_index()
    a = bd.read_confusion(long)
    b = bd.read_confusion(wide, classes=CLASSES)
    assert a.classes == tuple(CLASSES) and b.classes == tuple(CLASSES)
    assert a.studies == b.studies == ("S0", "S1", "S2")
    np.testing.assert_array_equal(a.counts, b.counts)
    # independent lookup of one cell
    cell = long.query("study == 'S1' and true == 'osteopenia' and predicted == 'normal'")
    assert a.counts[1, 1, 2] == int(cell["count"].iloc[0])
    # classes= reorders rows and columns together
    c = bd.read_confusion(long, classes=["normal", "osteopenia", "osteoporosis"])
    np.testing.assert_array_equal(c.counts, a.counts[:, ::-1, ::-1])
    assert "3 studies" in a.describe() and "order as first seen" in a.describe()


@pytest.mark.parametrize(
    "change, words",
    [
        (lambda d: d.drop(index=4), ["study 'S0'", "no row for true", "osteopenia"]),
        (
            lambda d: d.assign(count=d["count"].astype(object).where(d.index != 5, "x")),
            ["row 6", "count"],
        ),
        (lambda d: d.assign(count=d["count"].where(d.index != 2, -3)), ["row 3", "negative"]),
        (
            lambda d: d.assign(predicted=d["predicted"].replace({"normal": "Normal"})),
            ["inconsistent class labels", "'Normal'", "'normal'"],
        ),
        (lambda d: pd.concat([d, d.iloc[[2]]]), ["row 28", "repeats row 3"]),
        (
            lambda d: d.assign(predicted=d["predicted"].replace({"normal": "healthy"})),
            ["column predicted", "'healthy'", "never a true class"],
        ),
    ],
)
def test_bad_confusion_tables_get_one_line_errors(change, words):
    bad = change(_long(np.random.default_rng(1)))
    with pytest.raises(DTADataError) as err:
        bd.read_confusion(bad)
    msg = str(err.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, msg


def test_class_not_in_given_classes_and_empty_class():
    d = _long(np.random.default_rng(2))
    with pytest.raises(DTADataError, match="not one of classes="):
        bd.read_confusion(d, classes=["osteoporosis", "osteopenia"])
    d.loc[d["true"] == "normal", "count"] = 0
    with pytest.raises(DTADataError, match="'normal' has no participants"):
        bd.read_confusion(d)


def test_split_confusion_gains_a_study_column():
    long = _long(np.random.default_rng(3))
    out = bd.split_confusion(long, study="study")
    assert list(out.columns) == ["study", "target", "TP", "FP", "FN", "TN"]
    assert len(out) == 9
    for s in ("S0", "S2"):
        m = (
            long[long["study"] == s]
            .pivot(index="true", columns="predicted", values="count")
            .loc[CLASSES, CLASSES]
            .to_numpy()
        )
        for k, c in enumerate(CLASSES):
            row = out[(out["study"] == s) & (out["target"] == c)].iloc[0]
            assert row["TP"] == m[k, k]
            assert row["FN"] == m[k].sum() - m[k, k]
            assert row["FP"] == m[:, k].sum() - m[k, k]
            assert row["TN"] == m.sum() - m[k].sum() - m[:, k].sum() + m[k, k]
    # a single matrix keeps the old output
    single = bd.split_confusion(np.eye(3, dtype=int) * 5 + 1)
    assert list(single.columns) == ["target", "TP", "FP", "FN", "TN"]


# ----------------------------------------------------------------------------- fitting
FAST = {"draws": 500, "tune": 600, "chains": 2, "cores": 1}


@pytest.fixture(scope="module")
def sim3():
    truth = default_truth()
    n = np.full((12, 3), 150)
    table, _ = simulate_multiclass(n, truth, seed=5)
    return table, truth


@pytest.fixture(scope="module")
def fit3(sim3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        return bd.fit_multiclass(sim3[0], seed=21, verbose=False, **FAST)


def test_recovery_of_the_pooled_confusion_matrix(fit3, sim3):
    """12 simulated studies x 150 per class: the truth lies in the 99% intervals, medians close."""
    truth = np.asarray(sim3[1]["confusion"])
    df = fit3.confusion(0.99)
    med = df["median"].to_numpy().reshape(3, 3)
    lo = df["lower"].to_numpy().reshape(3, 3)
    hi = df["upper"].to_numpy().reshape(3, 3)
    assert np.all((lo <= truth) & (truth <= hi)), (lo, truth, hi)
    assert np.max(np.abs(med - truth)) < 0.05
    np.testing.assert_allclose(med.sum(axis=1), 1.0, atol=0.02)  # medians of rows summing to 1
    # sensitivity of each class is its diagonal cell; tau recovered in broad terms
    cs = fit3.class_summary(0.99)
    se = cs[cs["quantity"] == "sensitivity"]["median"].to_numpy()
    np.testing.assert_allclose(se, np.diag(med), atol=1e-9)
    tau = fit3.posterior["tau"].median(("chain", "draw")).values
    assert np.all((tau > 0.15) & (tau < 1.2)), tau


def test_specificity_uses_the_stated_prevalences(fit3):
    """sp_k = sum_{i != k} pi_i (1 - P(k | i)) / sum_{i != k} pi_i, per draw (closed form)."""
    c = fit3.confusion_draws("pooled")
    pi = np.array([0.2, 0.5, 0.3])
    sp = fit3.one_vs_rest_draws(prevalence=pi)["specificity"]
    manual = (pi[1] * (1 - c[..., 1, 0]) + pi[2] * (1 - c[..., 2, 0])) / (pi[1] + pi[2])
    np.testing.assert_allclose(sp[..., 0], manual, rtol=1e-12)
    obs = fit3.data.observed_prevalence()
    np.testing.assert_allclose(obs, [1 / 3] * 3)
    assert fit3.prevalence_source == "pooled observed"


def test_predictive_is_wider_than_pooled(fit3):
    pooled = fit3.confusion(0.95)
    pred = fit3.confusion(0.95, kind="predictive")
    wp = (pooled["upper"] - pooled["lower"]).to_numpy()
    wq = (pred["upper"] - pred["lower"]).to_numpy()
    assert np.all(wq > wp)


def test_seed_reproducible_after_other_fits_and_save_load(fit3, sim3, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        again = bd.fit_multiclass(sim3[0], seed=21, verbose=False, **FAST)
    np.testing.assert_array_equal(again.posterior["mu"].values, fit3.posterior["mu"].values)
    path = fit3.save(tmp_path / "mc.nc")
    back = bd.load_multiclass(path)
    assert back.classes == fit3.classes and back.studies == fit3.studies
    pd.testing.assert_frame_equal(back.confusion(), fit3.confusion())
    pd.testing.assert_frame_equal(
        back.confusion(kind="predictive"), fit3.confusion(kind="predictive")
    )
    # bd.load reads it too (the file says what kind of fit it holds)
    other = bd.load(path)
    assert isinstance(other, bd.MulticlassFit)
    pd.testing.assert_frame_equal(other.summary(), fit3.summary())
    assert other.sampler == back.sampler


def test_figures_and_summary(fit3):
    import matplotlib.pyplot as plt

    for kind in ("confusion", "multiclass_roc"):
        fig = fit3.plot(kind)
        assert fig.axes
        plt.close(fig)
    s = fit3.summary()
    assert "P(osteopenia | osteoporosis)" in s.index and "accuracy" in s.index
    assert {"ess_bulk", "r_hat"} <= set(s.columns)
    assert "pooled confusion matrix" in repr(fit3)


def test_bad_options():
    t, _ = simulate_multiclass(np.full((3, 3), 20), default_truth(), seed=1)
    with pytest.raises(SpecError, match="prevalence"):
        bd.fit_multiclass(t, prevalence=[0.5, 0.5], verbose=False)
    with pytest.raises(SpecError, match="unknown prior name"):
        bd.fit_multiclass(t, priors={"sigma": "HalfNormal(1)"}, verbose=False)
    with pytest.raises(SpecError, match="at least 2 studies"):
        bd.fit_multiclass(t[t["study"] == "study 1"], verbose=False)


@pytest.mark.slow
def test_k2_joint_model_matches_the_bivariate_model():
    """K = 2 is the bivariate model (eta = -logit se, -logit sp; priors matched): the pooled
    sensitivity, specificity, SDs and correlation agree within Monte Carlo error."""
    data = bd.load_example("auditc")
    fr = data.frame
    rows = []
    for r in fr.itertuples():
        for a, b, c in (
            ("pos", "pos", r.TP),
            ("pos", "neg", r.FN),
            ("neg", "pos", r.FP),
            ("neg", "neg", r.TN),
        ):
            rows.append({"study": r.study, "true": a, "predicted": b, "count": c})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        fb = bd.fit(data, seed=3, draws=1000, tune=1000, chains=4, cores=1, verbose=False)
        fm = bd.fit_multiclass(pd.DataFrame(rows), seed=3, chains=4, cores=1, verbose=False)
    sb, sm = fb.summary(), fm.summary()
    pairs = [
        ("sensitivity", "sensitivity[pos]"),
        ("specificity", "specificity[pos]"),
        ("tau_sensitivity", "tau[pos -> neg]"),
        ("tau_specificity", "tau[neg -> pos]"),
        ("rho", "rho[pos -> neg, neg -> pos]"),
    ]
    for qb, qm in pairs:
        a, b = sb.loc[qb], sm.loc[qm]
        mcse = np.sqrt(a["sd"] ** 2 / a["ess_bulk"] + b["sd"] ** 2 / b["ess_bulk"])
        assert abs(a["mean"] - b["mean"]) < 4 * mcse, (qb, a["mean"], b["mean"], mcse)
        assert abs(a["sd"] / b["sd"] - 1) < 0.15, (qb, a["sd"], b["sd"])


# ----------------------------------------------------------------------------- spec
def _spec_error(tmp_path, text: str) -> str:
    from bayesdta.reporting.spec import load_spec

    p = tmp_path / "s.toml"
    p.write_text(text)
    with pytest.raises(SpecError) as info:
        spec = load_spec(p)
        spec.check_data(spec.load_data())
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_multiclass_spec_section(tmp_path):
    from bayesdta.reporting.spec import load_spec

    base = (
        '[data]\nfrom_multiclass = "osteopenia"\n'
        '[multiclass]\nexample = "osteoporosis_multiclass"\n'
    )
    p = tmp_path / "ok.toml"
    p.write_text(base + "prevalence = { osteoporosis = 1, osteopenia = 2, normal = 1 }\n")
    spec = load_spec(p)
    data = spec.load_data()  # the osteopenia-vs-rest tables of the matrices
    cd = spec.load_confusion()
    k = cd.classes.index("osteopenia")
    np.testing.assert_array_equal(data.tp, cd.counts[:, k, k])
    np.testing.assert_array_equal(data.fn, cd.counts[:, k, :].sum(axis=1) - cd.counts[:, k, k])
    assert spec.multiclass["tables"][-1] == "multiclass_comparison"
    assert "multiclass" in spec.to_dict()
    assert "multiclass.colour" in _spec_error(tmp_path, base + 'colour = "red"\n')
    assert "unknown multiclass example" in _spec_error(
        tmp_path, '[data]\nexample = "auditc"\n[multiclass]\nexample = "nope"\n'
    )
    assert "data.from_multiclass" in _spec_error(
        tmp_path, '[data]\nfrom_multiclass = "osteoporosis"\n'
    )
    assert "'bone' is not a class" in _spec_error(tmp_path, base.replace("osteopenia", "bone"))
    assert "multiclass.priors" in _spec_error(tmp_path, base + "[multiclass.priors]\nnu = 3\n")


def test_bayesdta_run_writes_the_multiclass_section(sim3, tmp_path):
    """Plumbing: a spec with [multiclass] (file input, no comparison) through run_analysis."""
    from bayesdta.reporting.report import run_analysis
    from bayesdta.reporting.spec import load_spec

    sim3[0].to_csv(tmp_path / "m.csv", index=False)
    (tmp_path / "s.toml").write_text(
        '[analysis]\nname = "mc"\nseed = 3\n[data]\nfrom_multiclass = "osteopenia"\n'
        "[model]\nlevels = 2\n[sampler]\ndraws = 150\ntune = 200\nchains = 2\ncores = 1\n"
        '[outputs]\ntables = ["summary"]\nfigures = []\nfigure_formats = ["png"]\n'
        'table_formats = ["csv"]\n'
        '[multiclass]\nfile = "m.csv"\ncompare_one_vs_rest = false\n'
        "prevalence = { osteoporosis = 0.2, osteopenia = 0.4, normal = 0.4 }\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = run_analysis(load_spec(tmp_path / "s.toml"), tmp_path / "out")
    out = tmp_path / "out"
    report = paths["md"].read_text()
    assert "### Joint multiclass model" in report
    assert "osteoporosis 0.200, osteopenia 0.400, normal 0.400" in report
    for name in ("multiclass_confusion", "multiclass_classes", "multiclass_heterogeneity"):
        assert (out / "tables" / f"{name}.csv").exists()
    assert not (out / "tables" / "multiclass_comparison.csv").exists()
    assert (out / "figures" / "confusion_heatmap.png").exists()
    back = bd.load_multiclass(out / "posterior_multiclass.nc")
    np.testing.assert_allclose(back.prevalence, [0.2, 0.4, 0.4])
    conf = pd.read_csv(out / "tables" / "multiclass_confusion.csv")
    np.testing.assert_allclose(conf["median"].to_numpy(), back.confusion()["median"].to_numpy())


@pytest.mark.slow
def test_worked_example_spec_runs_on_small_settings(tmp_path):
    """`bayesdta run models/osteoporosis_multiclass.toml` end to end (plumbing-sized draws)."""
    import subprocess
    import sys
    from pathlib import Path

    spec = Path(__file__).resolve().parents[1] / "models" / "osteoporosis_multiclass.toml"
    r = subprocess.run(
        [sys.executable, "-m", "bayesdta.cli", "run", str(spec), "--out", str(tmp_path / "o")]
        + ["--draws", "100", "--tune", "150", "--chains", "1"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / "o"
    report = (out / "report.md").read_text()
    assert "### Joint multiclass model (osteoporosis / osteopenia / normal)" in report
    cmp = pd.read_csv(out / "tables" / "multiclass_comparison.csv")
    assert list(cmp["class"].unique()) == CLASSES and len(cmp) == 6
    for g in ("confusion_heatmap", "multiclass_roc", "forest", "sroc"):
        assert (out / "figures" / f"{g}.png").exists(), g


def test_cli_multiclass_bad_table_is_one_line(tmp_path):
    import subprocess
    import sys

    p = tmp_path / "w.csv"
    p.write_text("study;a->a;a->b;b->a;b->b\nS1;5;2;1;9\nS2;4;x;0;3\n")
    r = subprocess.run(
        [sys.executable, "-m", "bayesdta.cli", "multiclass", str(p)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == "error: row 2 (file line 3), column a->b: count 'x' is not a number"
