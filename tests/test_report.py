"""Scripted runs and reports: outputs, identical tables for the same seed, self-contained HTML,
graceful skipping of missing figures, rebuilding a report from a run folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesdta as bd
from bayesdta.reporting import report as rp
from bayesdta.reporting import sensitivity as sens
from bayesdta.reporting.spec import load_spec

SPEC = """
[analysis]
name = "tiny_report"
title = "Tiny report"
seed = 11

[data]
file = "dementia.csv"
study = "study"

[model]
levels = 2

[sampler]
chains = 2
draws = 150
tune = 200

[outputs]
quantities = ["sensitivity", "specificity", "dor", "auc", "tau_*", "rho"]
tables = ["summary", "heterogeneity", "fagan", "deeks", "observed"]
figures = ["forest", "sroc", "deeks"]
figure_formats = ["png", "svg"]
figure_dpi = 60
[outputs.table_options.fagan]
pretest = [0.2]

[report]
authors = "A. Reviewer"
notes = "A plumbing-sized run."
"""


def make_spec(folder: Path, text: str = SPEC):
    frame = bd.load_example("dementia").frame.drop(columns=["model"])
    frame["study"] = [f"S{i + 1:02d}" for i in range(len(frame))]
    frame.to_csv(folder / "dementia.csv", index=False)
    (folder / "spec.toml").write_text(text)
    return load_spec(folder / "spec.toml")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("report")
    spec = make_spec(folder)
    paths = rp.run_analysis(spec, folder / "run1")
    rp.run_analysis(spec, folder / "run2")
    return spec, folder, paths


def test_run_writes_posterior_tables_figures_and_reports(runs):
    spec, folder, paths = runs
    out = folder / "run1"
    assert paths["html"] == out / "report.html" and paths["md"] == out / "report.md"
    for name in ("posterior.nc", "data.csv", "spec.toml", "run.json"):
        assert (out / name).exists(), name
    assert not (out / "spec.resolved.toml").exists()  # no extends
    for t in ("summary", "heterogeneity", "fagan", "deeks", "observed", "pareto_k"):
        assert (out / "tables" / f"{t}.csv").exists() and (out / "tables" / f"{t}.tex").exists()
    for g in ("forest", "sroc", "deeks"):
        assert (out / "figures" / f"{g}.png").exists() and (out / "figures" / f"{g}.svg").exists()
    summary = pd.read_csv(out / "tables" / "summary.csv", index_col=0)
    assert list(summary.index) == [
        "sensitivity",
        "specificity",
        "dor",
        "tau_sensitivity",
        "tau_specificity",
        "rho",
        "auc",
    ]
    fit = bd.load(out / "posterior.nc")
    assert fit.sampler["seed"] == 11 and fit.levels == 2
    assert fit.summary().loc["sensitivity", "median"] == summary.loc["sensitivity", "median"]
    assert (out / "spec.toml").read_text() == spec.text
    tex = (out / "tables" / "summary.tex").read_text()
    assert r"\toprule" in tex and r"tau\_sensitivity" in tex


def test_same_spec_and_seed_give_identical_tables(runs):
    _, folder, _ = runs
    a, b = folder / "run1" / "tables", folder / "run2" / "tables"
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) >= 12
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n


def test_report_content_and_self_contained_html(runs):
    _, folder, _ = runs
    out = folder / "run1"
    md = (out / "report.md").read_text()
    page = (out / "report.html").read_text()
    for text in (md, page):
        assert "Tiny report" in text and "A. Reviewer" in text and "A plumbing-sized run." in text
        for section in ("Methods", "Results", "Figures", "Diagnostics", "Reproducibility"):
            assert section in text
        assert "33 2x2 tables from 33 studies" in text
        assert "2 chains of 150 draws after 200 warm-up iterations" in text
        assert "random seed 11" in text and "nutpie" in text and "HalfNormal(sigma=1.5)" in text
        assert "Pareto k" in text and "R-hat" in text
        assert 'file = "dementia.csv"' in text  # the spec itself
    # sampler warnings are shown prominently (150 draws x 2 chains: ESS < 400)
    assert '<div class="warn"><strong>Sampler and diagnostic warnings' in page
    assert "bulk ESS" in page.split("<h2")[0]
    # figures: embedded in the HTML, linked in the Markdown
    assert page.count("data:image/png;base64,") == 3
    assert 'src="figures/' not in page and "http://" not in page and "https://" not in page
    assert "![Figure 1. " in md and "(figures/forest.png)" in md
    assert "(figures/forest.svg)" in md


def test_report_rebuilds_from_the_run_folder(runs, tmp_path):
    _, folder, _ = runs
    out = folder / "run1"
    md, page = (out / "report.md").read_text(), (out / "report.html").read_text()
    (out / "report.md").unlink()
    (out / "report.html").unlink()
    paths = rp.build_report(out)
    assert paths["md"].read_text() == md and paths["html"].read_text() == page
    with pytest.raises(bd.BayesDTAError, match="not a bayesdta run folder"):
        rp.build_report(tmp_path)


def test_missing_or_failing_figures_and_tables_are_skipped_with_a_note(runs, monkeypatch):
    spec, folder, _ = runs
    from bayesdta import registry

    def boom(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setitem(registry.FIGURES, "sroc", boom)
    monkeypatch.delitem(registry.FIGURES, "deeks")
    monkeypatch.setitem(registry.TABLES, "heterogeneity", boom)
    out = folder / "degraded"
    rp.run_analysis(spec, out)
    rec = json.loads((out / "run.json").read_text())
    status = {g["name"]: g["status"] for g in rec["figures"]}
    assert status == {"forest": "ok", "sroc": "failed", "deeks": "missing"}
    md = (out / "report.md").read_text()
    assert "figure 'sroc' of main skipped: RuntimeError: boom" in md
    assert "figure 'deeks' skipped: no figure 'deeks' is registered" in md
    assert "table 'heterogeneity' of main skipped: RuntimeError: boom" in md
    assert (out / "figures" / "forest.png").exists() and not (out / "figures" / "sroc.png").exists()
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 1


def test_sweep_results_are_included_in_the_report(runs):
    spec, folder, _ = runs
    out = folder / "run1"
    sweep_dir = out / "sensitivity"
    sweep_dir.mkdir()
    variants = [
        sens.Variant("baseline", "baseline", "as specified", {}),
        sens.Variant("link:cloglog", "link", "cloglog link", {}, implemented=False, note="no"),
    ]
    results = {
        "baseline": {
            "status": "ok",
            "n_rows": 33,
            "n_studies": 33,
            "levels": 2,
            "summary": {"sensitivity": {"median": 0.8, "lower": 0.7, "upper": 0.9}},
            "diagnostics": {"divergences": 0, "max_r_hat": 1.0, "min_ess_bulk": 500.0},
        },
        "link:cloglog": {"status": "not implemented", "note": "not implemented yet"},
    }
    table = sens.comparison_table(variants, results, ["sensitivity"])
    table.to_csv(sweep_dir / "sweep.csv", index=False)
    (sweep_dir / "sweep.json").write_text(
        json.dumps(
            {
                "n_variants": 2,
                "fit": "main",
                "n_fitted": 1,
                "n_cached": 0,
                "executor": "sequential (this process)",
                "quantities": ["sensitivity"],
                "ci": 0.95,
            }
        )
    )
    md = rp.build_report(out)["md"].read_text()
    assert "## Sensitivity analysis" in md
    assert "0.800 [0.700, 0.900]" in md and "link:cloglog: not implemented" in md


def test_table_writers(tmp_path):
    df = pd.DataFrame(
        {"name": ["a_b", "50%"], "x": [0.123456, np.nan], "ess_bulk": [512.7, 3.0]}
    ).set_index("name")
    tex = rp.to_latex(df, digits=2, caption="Cap & co")
    assert r"a\_b & 0.12 & 513 \\" in tex and r"50\% &  & 3 \\" in tex and r"Cap \& co" in tex
    md = rp.to_markdown(df, digits=2)
    assert md.splitlines()[1] == "|---|---:|---:|" and "| a_b | 0.12 | 513 |" in md
    files = rp.write_table(df, tmp_path / "t", formats=("csv", "latex", "md"))
    assert [p.suffix for p in files] == [".csv", ".tex", ".md"]
    back = pd.read_csv(tmp_path / "t.csv", index_col=0)
    assert back.loc["a_b", "x"] == 0.123456


# ------------------------------------------------------------------------------------------
# issue 9: honest labels, captions with the interval level, one Pareto k, warnings
# ------------------------------------------------------------------------------------------
REG_SPEC = """
[analysis]
name = "labels"
title = "Labels"
seed = 5

[data]
file = "dementia_setting.csv"
study = "study"

[model]
levels = 2

[[regression]]
name = "setting"
title = "By setting"
formula = "~ setting"
tables = ["summary", "subgroups"]
[regression.reference]
setting = "community"

[sampler]
chains = 2
draws = 150
tune = 200

[outputs]
ci = 0.9
tables = ["summary", "influence", "deeks"]
figures = []
"""


@pytest.fixture(scope="module")
def reg_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labels")
    frame = bd.load_example("dementia").frame.drop(columns=["model"])
    frame["study"] = [f"S{i + 1:02d}" for i in range(len(frame))]
    frame["setting"] = np.where(np.arange(len(frame)) % 3 == 0, "community", "clinic")
    frame.to_csv(folder / "dementia_setting.csv", index=False)
    (folder / "spec.toml").write_text(REG_SPEC)
    spec = load_spec(folder / "spec.toml")
    rp.run_analysis(spec, folder / "run")
    return folder / "run"


def test_report_labels_meta_regression_rows_at_reference_levels(reg_run):
    md = (reg_run / "report.md").read_text()
    summary = pd.read_csv(reg_run / "tables" / "summary_setting.csv", index_col=0)
    ref = "at reference levels (setting=community)"
    for q in ("sensitivity", "specificity", "dor", "auc"):
        assert ref in summary.loc[q, "description"]
    assert "sensitivity_pooled" in summary.index
    section = md.split("### By setting")[1]
    assert f"Sensitivity {ref}" in section and "Sensitivity (summary point)" not in section
    assert "sensitivity_pooled" in section and "observed covariate mix" in section
    sub = pd.read_csv(reg_run / "tables" / "subgroups_setting.csv")
    assert list(sub["covariate"]) == ["setting", "setting", "pooled"]
    assert sub["sensitivity"].iloc[-1] == pytest.approx(summary.loc["sensitivity_pooled", "median"])
    assert "summary point at the reference levels" in md  # methods paragraph


def test_report_captions_name_the_interval_level(reg_run):
    record = json.loads((reg_run / "run.json").read_text())
    for t in record["tables"]:
        if t["name"].startswith(("summary", "subgroups")):
            assert "90%" in t["caption"] and "95%" not in t["caption"], t["name"]
    summary = next(t for t in record["tables"] if t["name"] == "summary")
    # the caption describes the columns the report shows
    assert "median" in summary["caption"] and "R-hat" in summary["caption"]


def test_report_has_one_pareto_k_per_study_and_warnings_point_to_tables(reg_run):
    k = pd.read_csv(reg_run / "tables" / "pareto_k.csv").set_index("study")["pareto_k"]
    inf = pd.read_csv(reg_run / "tables" / "influence.csv").set_index("study")
    assert "pareto_k_conditional" not in inf.columns
    np.testing.assert_allclose(inf.loc[k.index, "pareto_k"], k.to_numpy())
    md = (reg_run / "report.md").read_text()
    warn = "\n".join(line for line in md.splitlines() if line.startswith("> "))
    for path in re.findall(r"tables/[\w.-]+\.csv", warn):
        assert (reg_run / path).exists(), path


def test_deeks_caption_notes_clustered_rows(smoking_fit, dementia_fit):
    cap = rp._table_caption("deeks", "", ci=0.95, f=smoking_fit, data=smoking_fit.data)
    assert "51 tables come from 26 studies" in cap and "not independent" in cap
    cap = rp._table_caption("deeks", "", ci=0.95, f=dementia_fit, data=dementia_fit.data)
    assert "not independent" not in cap


def test_elpd_differences_with_high_pareto_k_are_flagged():
    table = pd.DataFrame({"elpd_diff": [0.0, -1.2, 3.4], "max_pareto_k": [0.4, 0.9, 0.69]})
    flagged, caption = rp._flag_elpd(table, "Subgroups.")
    assert list(flagged["elpd_reliable"]) == ["yes", "no: Pareto k > 0.7", "yes"]
    assert "0.7" in caption


def test_run_progress_weighs_stages_and_reports_steps(monkeypatch):
    """Stage k of n, elapsed time and time left from the weight of the finished stages (a
    stage of five fits counts five times a fit), compilation left out of the estimate."""
    clock = [100.0]
    monkeypatch.setattr(rp.time, "perf_counter", lambda: clock[0])
    lines: list[str] = []
    prog = rp.RunProgress(4, lines.append, weights=[1.0, 1.0, 5.0, 0.0])
    prog.start("main fit")
    clock[0] += 30.0  # 20 s compiling, 10 s sampling and tables
    prog.one_off(20.0)
    prog.start("meta-regression")
    clock[0] += 10.0
    prog.start("subgroup table")
    clock[0] += 4.0
    prog.step("subgroup_table: backbone", 2, 5)
    clock[0] += 26.0
    prog.start("writing the report")
    assert lines[0] == "[stage 1/4, 0 s elapsed] main fit"
    # 10 s per unit of weight (compilation left out), 6 units left
    assert lines[1] == "[stage 2/4, 30 s elapsed, about 60 s left] meta-regression"
    assert lines[2] == "[stage 3/4, 40 s elapsed, about 50 s left] subgroup table"
    # one of five fits of the stage done: 3 units done in 24 s, 4 left
    step = "  [2/5 of stage 3/4, 44 s elapsed, about 32 s left] subgroup_table: backbone"
    assert lines[3] == step
    assert lines[4] == "[stage 4/4, 70 s elapsed, about 0 s left] writing the report"


def test_precompile_helper_gets_only_the_later_fits_missing_from_the_cache(reg_run, monkeypatch):
    """The run's helper process is handed the models of the fits after the first whose code is
    not on disk (with an empty cache: the meta-regression's, not the main fit's, which the run
    compiles itself); nothing is started with the cache off, nor when every later fit has a
    hand-written density (nothing to compile)."""
    import pickle

    from bayesdta.inference import native
    from bayesdta.reporting import precompile as pc

    spec = load_spec(reg_run.parent / "spec.toml")
    data = spec.load_data()
    started = []

    class Started:
        def poll(self):
            return 0

    def popen(args, **kwargs):
        started.append((args, kwargs))
        return Started()

    monkeypatch.setattr(pc.subprocess, "Popen", popen)
    monkeypatch.setenv("BAYESDTA_CACHE_DIR", str(reg_run.parent / "empty_cache"))
    # these fits are logit-normal: hand-written, so no helper
    assert pc.start(spec, data).process is None and not started
    # as if they were compiled from their graphs (e.g. another link)
    monkeypatch.setattr(native, "native_kind", lambda built: None)
    helper = pc.start(spec, data)
    assert len(started) == 1 and helper.process is not None
    args, kwargs = started[0]
    assert args[1:3] == ["-m", "bayesdta.reporting.precompile"]
    assert kwargs["env"]["BAYESDTA_CACHE_DIR"] == str(reg_run.parent / "empty_cache")
    with open(args[3], "rb") as fh:
        payload = pickle.load(fh)
    assert [ms.formula for ms in payload["specs"]] == ["~ setting"]
    helper.stop()
    assert not Path(args[3]).exists()
    monkeypatch.setenv("BAYESDTA_CACHE_DIR", "off")
    assert pc.start(spec, data).process is None and len(started) == 1
