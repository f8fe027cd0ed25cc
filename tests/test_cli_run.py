"""``bayesdta run | sensitivity | report`` end to end, in subprocesses (as a user runs them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

import bayesdta as bd

SPEC = """
[analysis]
name = "smoke"
title = "CLI smoke test"
seed = 5

[data]
file = "data/dementia.csv"

[model]
levels = 2

[[regression]]
name = "setting"
title = "By setting"
formula = "~ setting"
reference = { setting = "community" }
figures = ["sroc"]
figure_options = { sroc = { by = "setting" } }

[sampler]
chains = 2
draws = 150
tune = 200

[outputs]
tables = ["summary", "heterogeneity", "deeks", "subgroup_table"]
figures = ["forest", "sroc"]
figure_dpi = 60

[sensitivity]
leave_one_study_out = ["S03"]
levels = [2]
links = ["logit", "cloglog"]  # probit sweeps: test_links.py / test_sensitivity.py
quantities = ["sensitivity", "specificity", "auc"]
[[sensitivity.exclude]]
name = "community_only"
column = "setting"
values = ["clinic"]
"""


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "bayesdta.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def make_spec(folder: Path) -> Path:
    (folder / "data").mkdir()
    frame = bd.load_example("dementia").frame.drop(columns=["model"])
    frame["study"] = [f"S{i + 1:02d}" for i in range(len(frame))]
    frame["setting"] = np.where(np.arange(len(frame)) % 2 == 0, "community", "clinic")
    frame.to_csv(folder / "data" / "dementia.csv", index=False)
    spec = folder / "spec.toml"
    spec.write_text(SPEC)
    return spec


def test_run_then_report(tmp_path):
    spec = make_spec(tmp_path)
    r = run("run", "spec.toml", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    html = (out / "report.html").resolve()
    assert f"report (html): {html}" in r.stdout
    assert "fitting setting: By setting" in r.stderr
    # whole-run progress: stage k of n with elapsed time, the last stage the report
    stages = [ln for ln in r.stderr.splitlines() if ln.startswith("[stage ")]
    n = len(stages)
    assert n >= 3 and all(f"/{n}, " in ln and " s elapsed" in ln for ln in stages)
    assert stages[0].startswith(f"[stage 1/{n}, ") and "writing the report" in stages[-1]
    assert "s left]" in stages[1]
    # a stage of several fits shows each of them; the subgroup table re-uses the main fit as
    # its model without covariates, so it fits the one covariate only
    steps = [ln for ln in r.stderr.splitlines() if " of stage " in ln]
    assert len(steps) == 1 and steps[0].startswith(f"  [1/1 of stage {n - 1}/{n}, ")
    assert steps[0].endswith("] subgroup_table: setting")
    main_summary = pd.read_csv(out / "tables" / "summary.csv", index_col=0)
    sub = pd.read_csv(out / "tables" / "subgroup_table.csv").set_index("covariate")
    for q in ("sensitivity", "specificity"):
        assert abs(sub.loc["overall", q] - main_summary.loc[q, "median"]) < 1e-9
    for name in ("posterior.nc", "posterior_setting.nc", "report.md", "run.json", "data.csv"):
        assert (out / name).exists(), name
    for t in ("summary", "summary_setting", "heterogeneity", "deeks", "pareto_k"):
        assert (out / "tables" / f"{t}.csv").exists() and (out / "tables" / f"{t}.tex").exists()
    for g in ("forest", "sroc", "sroc_setting"):
        assert (out / "figures" / f"{g}.png").exists() and (out / "figures" / f"{g}.pdf").exists()
    coefs = pd.read_csv(out / "tables" / "summary_setting.csv", index_col=0).index
    assert "beta_sensitivity[setting[T.clinic]]" in coefs
    rec = json.loads((out / "run.json").read_text())
    assert [f["name"] for f in rec["fits"]] == ["main", "setting"]
    assert rec["fits"][0]["seed"] == 5 and rec["command"] == "bayesdta run spec.toml --out out"
    page = html.read_text()
    assert "Meta-regression" in page and page.count("data:image/png;base64,") == 3
    assert (out / "spec.toml").read_text() == spec.read_text()

    (out / "report.html").unlink()
    r = run("report", out)
    assert r.returncode == 0, r.stderr
    assert (out / "report.html").read_text() == page


def test_sensitivity_then_resume(tmp_path):
    make_spec(tmp_path)
    r = run("sensitivity", "spec.toml", "--out", "sweep", "--workers", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(tmp_path / "sweep" / "sweep.csv")
    assert list(table["variant"]) == [
        "baseline",
        "loso:S03",
        "exclude:community_only",
        "levels:2",
        "link:logit",
        "link:cloglog",
    ]
    assert list(table["status"]) == ["ok"] * 5 + ["not implemented"]
    assert "link:cloglog: not implemented" in r.stderr
    rec = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert rec["executor"] == "sequential (this process)" and rec["n_fitted"] == 5
    assert "sweep: 100%" in r.stderr  # the progress bar
    # a second call finds every fit in the cache
    r = run("sensitivity", "spec.toml", "--out", "sweep", "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "0 fitted, 5 from the cache" in r.stderr
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "sweep" / "sweep.csv"), table)


def test_bad_spec_one_line_error(tmp_path):
    make_spec(tmp_path)
    bad = tmp_path / "bad.toml"
    bad.write_text(SPEC.replace("levels = 2\n", "levels = 2\nlink = 'cloglog'\n", 1))
    for cmd in ("run", "sensitivity"):
        r = run(cmd, bad, "--out", tmp_path / "o")
        assert r.returncode == 2, r.stderr
        assert "Traceback" not in r.stderr
        err = r.stderr.strip().splitlines()[-1]
        assert err.startswith("error: ") and "model.link: link 'cloglog' is not implemented" in err
    r = run("report", tmp_path)
    assert r.returncode == 2 and "not a bayesdta run folder" in r.stderr
