"""The ``bayesdta fit`` command end to end.

Bad input runs in a subprocess (exit status and stderr as a user sees them; no sampling). The
fit itself runs the same entry point in this process, so that it re-uses the session's compiled
model (a subprocess would compile again, ~20 s; test_cli_run.py covers commands that sample in
subprocesses).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

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
    r = run("fit", str(csv), "--out", str(tmp_path / "o"), "--prior", "tau=Weibull(1)")
    assert r.returncode == 2 and "unknown prior family" in r.stderr and "Traceback" not in r.stderr
    r = run("fit", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "does not exist" in r.stderr


# ------------------------------------------------------------------------------ issue 9: parity
def _excel_export(path, *, rows_per_study=1):
    """A semicolon-separated Excel export: BOM, CRLF, padded headers, odd count names, a decimal
    comma covariate and trailing blank rows."""
    lines = [" Study ID ;tp_col;fp_col;fn_col;tn_col; kind ;arm;age "]
    rng = np.random.default_rng(5)
    for s in range(8):
        for _r in range(rows_per_study):
            n1, n0 = rng.integers(30, 90), rng.integers(80, 200)
            tp, tn = rng.binomial(n1, 0.8), rng.binomial(n0, 0.85)
            kind = "c" if s == 7 else "a" if s % 2 else "b"
            arm = "x" if s < 4 else "y"
            lines.append(f"S{s};{tp};{n0 - tn};{n1 - tp};{tn};{kind};{arm};{60 + s},5")
    lines += [";;;;;;;", ";;;;;;;"]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")


def test_fit_command_parity_options_end_to_end(tmp_path, capsys):
    csv = tmp_path / "export.csv"
    _excel_export(csv)
    out = tmp_path / "out"
    code = main(
        [
            "fit",
            str(csv),
            "--out",
            str(out),
            "--sep",
            ";",
            "--columns",
            "TP=tp_col,FP=fp_col,FN=fn_col,TN=tn_col",
            "--formula-sensitivity",
            "~ kind",
            "--formula-specificity",
            "~ age",
            "--reference",
            "kind=b",
            "--tau-by",
            "arm",
            "--parameterization",
            "noncentered",
            "--figures",
            "sroc,forest",
            "--seed",
            "4",
            "--draws",
            "100",
            "--tune",
            "150",
            "--chains",
            "1",
        ]
    )
    captured = capsys.readouterr()
    printed = captured.out
    assert code == 0
    # level c of kind occurs in one study only: named, one line, on stderr
    warned = [ln for ln in captured.err.splitlines() if ln.startswith("warning: ")]
    assert len(warned) == 1
    assert warned[0].startswith("warning: beta_sensitivity[kind[T.c]] is informed by one study")
    assert "only in study 'S7'" in warned[0]
    first = printed.splitlines()[0]
    assert first.startswith(f"read 8 rows from {str(csv)!r} (';'-separated, UTF-8 with BOM)")
    assert "study id 'Study ID' (8 studies, found)" in first
    assert "counts TP='tp_col', FP='fp_col', FN='fn_col', TN='tn_col'" in first
    assert "covariates kind, arm, age" in first and "2 fully blank rows dropped" in first
    assert "decimal commas read in age" in first and first.endswith(
        "2 levels (chosen: one row per study)"
    )
    fit = bd.load(out / "posterior.nc")
    assert fit.spec.parameterization == "noncentered"
    assert fit.spec.reference == {"kind": "b"} and fit.spec.tau_by == "arm"
    assert fit.spec.formulas() == ("~ kind", "~ age")
    assert fit.design.columns["sensitivity"] == ["Intercept", "kind[T.a]", "kind[T.c]"]
    assert fit.design.columns["specificity"] == ["Intercept", "age"]
    np.testing.assert_allclose(fit.data.frame["age"], np.arange(8) + 60.5)
    summary = pd.read_csv(out / "summary.csv")
    assert {"tau_sensitivity[x]", "tau_sensitivity[y]"} <= set(summary.quantity)
    for kind in ("sroc", "forest"):
        assert (out / f"{kind}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--figures", "sroc,funnel"], "--figures: unknown figure kind 'funnel'; kinds are sroc"),
        (["--formula", "~ kind", "--reference", "kind=zz"], "reference level 'zz' of kind"),
        (["--reference", "kind"], "--reference expects KEY=VALUE, got 'kind'"),
        (["--tau-by", "nope"], "tau_by column 'nope' is not a column of the data"),
        (["--columns", "TP=nope"], "column 'nope' (mapped to TP) is not in the table"),
        (["--columns", "TP"], "--columns expects KEY=VALUE, got 'TP'"),
        (["--formula", "~ nope"], "formula '~ nope' uses 'nope'"),
        (["--sep", ":"], "sep must be one of"),
        (["--sep", ","], "row 1 (file line 2): 2 fields but the header has 1 (','-separated)"),
        (["--study", "nope"], "study column 'nope' is not in the table"),
        (["--ci", "95"], "--ci must lie strictly between 0 and 1, got 95"),
    ],
)
def test_fit_options_validated_before_sampling(tmp_path, capsys, extra, message):
    csv = tmp_path / "export.csv"
    _excel_export(csv)
    cols = ["--columns", "TP=tp_col,FP=fp_col,FN=fn_col,TN=tn_col"]
    if "--columns" in extra:
        cols = []
    out = tmp_path / "out"
    code = main(["fit", str(csv), "--out", str(out), *cols, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err
    assert "\x1b[" not in err and "np." not in err
    assert not out.exists()  # failed before sampling and writing


def test_repeated_study_needs_model_or_clustered_on_the_command_line(tmp_path, capsys):
    csv = tmp_path / "export.csv"
    _excel_export(csv, rows_per_study=2)
    base = [
        "fit",
        str(csv),
        "--out",
        str(tmp_path / "o"),
        "--columns",
        "TP=tp_col,FP=fp_col,FN=fn_col,TN=tn_col",
    ]
    assert main(base) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "study id 'S0' repeats" in err and "--clustered" in err
    # confirmed: reading succeeds and the next check (a bad reference level) is what stops it
    for confirm in (["--clustered"], ["--levels", "3"]):
        assert main([*base, *confirm, "--formula", "~ kind", "--reference", "kind=zz"]) == 2
        err = capsys.readouterr().err
        assert "reference level 'zz' of kind" in err, confirm


def test_usage_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(tmp_path / "x.csv"), "--out", "o", "--parameterization", "weird"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(
        "error: bayesdta fit: argument --parameterization"
    )


def test_readme_cli_example_is_valid_shell():
    import re
    import shlex
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    commands = [
        c.strip()
        for b in blocks
        for c in b.replace("\\\n", " ").splitlines()
        if c.strip().startswith("bayesdta fit")
    ]
    assert commands
    from bayesdta.cli import build_parser
    from bayesdta.families.priors import parse_prior_assignment

    parser = build_parser()
    for c in commands:
        r = subprocess.run(["bash", "-n", "-c", c], capture_output=True, text=True)
        assert r.returncode == 0, (c, r.stderr)  # unquoted parentheses are a syntax error
        args = parser.parse_args(shlex.split(c)[1:])
        for p in args.prior:
            parse_prior_assignment(p)


def test_no_escalate_samples_once_and_escalation_is_recorded(tmp_path, capsys):
    """Too few draws: by default the run is repeated; with --no-escalate it is not."""
    csv = tmp_path / "dementia.csv"
    bd.load_example("dementia").frame.drop(columns=["model"]).to_csv(csv, index=False)
    attempts = {}
    for flag in ([], ["--no-escalate"]):
        out = tmp_path / ("once" if flag else "escalated")
        args = ["fit", str(csv), "--out", str(out), "--seed", "3", "--draws", "30", "--tune", "200"]
        assert main([*args, "--chains", "2", *flag]) == 0
        attempts[bool(flag)] = bd.load(out / "posterior.nc").sampler["attempts"]
    capsys.readouterr()
    assert len(attempts[True]) == 1
    assert len(attempts[False]) > 1  # 60 draws cannot give ESS 400: the run is repeated
