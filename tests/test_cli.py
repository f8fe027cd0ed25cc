"""The ``bayesdta fit`` command end to end.

Bad input runs in a subprocess (exit status and stderr as a user sees them; no sampling). The
fit itself runs the same entry point in this process, so that it re-uses the session's compiled
model (a subprocess would compile again, ~20 s; test_cli_run.py covers commands that sample in
subprocesses).
"""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

import bayesdta as bd
from bayesdta.cli import main


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "bayesdta.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_fit_command_writes_summary_and_posterior(tmp_path, capsys):
    csv = tmp_path / "skin.csv"
    bd.load_example("skin_tests").frame.drop(columns=["model"]).to_csv(csv, index=False)
    out = tmp_path / "out"
    code = main(
        [
            "fit",
            str(csv),
            "--out",
            str(out),
            "--seed",
            "3",
            "--draws",
            "300",
            "--tune",
            "300",
            "--chains",
            "2",
            "--prior",
            "tau=HalfNormal(1)",
            "--prior",
            "rho=LKJ(1)",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary.columns[0] == "quantity"
    assert {"sensitivity", "specificity", "dor", "tau_sensitivity", "rho"} <= set(summary.quantity)
    assert "sensitivity" in printed and "tau_sensitivity" in printed
    fit = bd.load(out / "posterior.nc")
    assert str(fit.spec.priors["tau_sensitivity"]) == "HalfNormal(sigma=1)"
    assert fit.sampler["seed"] == 3
    pd.testing.assert_frame_equal(
        fit.summary().reset_index(), summary, check_exact=False, rtol=1e-12
    )


def test_bad_input_one_line_error(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("study,TP,FP,FN,TN\nA,1,2,3,4\nB,1,2.5,3,4\n")
    r = run("fit", str(csv), "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert "row 2 (file line 3), column FP" in r.stderr
    r = run("fit", str(csv), "--out", str(tmp_path / "o"), "--prior", "tau=Gamma(1)")
    assert r.returncode == 2 and "unknown prior family" in r.stderr and "Traceback" not in r.stderr
    r = run("fit", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "does not exist" in r.stderr
