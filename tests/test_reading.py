"""Data read as meant, and said (issue 9, items 3 and 4): CSV exports, id headers, the
announcement line, no silent clustering, and what the data cannot inform.

No test here samples except the two that re-use the session's compiled dementia model.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesdta as bd
from bayesdta import DTAData, DTADataError, IdentifiabilityWarning
from bayesdta.data import check_learnable, fit_note, levels_reason
from bayesdta.families.bivariate import ModelSpec, make_design

ROWS = [
    ("A", 10, 1, 5, 50, "u"),
    ("B", 20, 2, 6, 60, "v"),
    ("C", 30, 3, 7, 70, "u"),
]


def write(path, text: str, *, bom: bool = False, newline: str = "\n") -> None:
    data = text.replace("\n", newline).encode("utf-8")
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)


def table(sep: str = ",", header=("study", "TP", "FP", "FN", "TN", "x"), rows=ROWS) -> str:
    lines = [sep.join(header)] + [sep.join(str(v) for v in r) for r in rows]
    return "\n".join(lines) + "\n"


def check_values(d: DTAData) -> None:
    assert d.n_rows == 3 and d.n_studies == 3
    assert d.studies == ["A", "B", "C"]
    assert list(d.tp) == [10, 20, 30] and list(d.fp) == [1, 2, 3]
    assert list(d.fn) == [5, 6, 7] and list(d.tn) == [50, 60, 70]


# ------------------------------------------------------------------------------ formats
@pytest.mark.parametrize(
    "sep, bom, newline",
    [(";", False, "\n"), (";", True, "\r\n"), (",", True, "\r\n"), ("\t", False, "\n")],
    ids=["semicolon", "excel-bom-semicolon-crlf", "bom-comma-crlf", "tab"],
)
def test_separators_bom_crlf_are_read(tmp_path, sep, bom, newline):
    p = tmp_path / "d.csv"
    write(p, table(sep), bom=bom, newline=newline)
    d = DTAData.from_csv(p)
    check_values(d)
    assert d.study_column == "study" and d.covariates == ["x"]
    assert list(d.frame["x"]) == ["u", "v", "u"]
    name = {";": "';'", ",": "','", "\t": "tab"}[sep]
    assert f"{name}-separated" in d.describe()


def test_explicit_sep_names(tmp_path):
    p = tmp_path / "d.csv"
    write(p, table(";"))
    for sep in (";", "semicolon"):
        check_values(DTAData.from_csv(p, sep=sep))
    # a wrong explicit separator is not second-guessed: the header is then one column
    with pytest.raises(DTADataError, match="required column TP is missing"):
        DTAData.from_csv(p, sep=",")
    with pytest.raises(DTADataError, match="sep must be one of"):
        DTAData.from_csv(p, sep=":")


def test_padded_headers_and_cells(tmp_path):
    p = tmp_path / "d.csv"
    text = " study ;  TP ; FP;FN ; TN ; x \nA ; 10;1;5;50; u\n B;20 ;2;6;60;v \nC;30;3;7;70;u\n"
    write(p, text)
    d = DTAData.from_csv(p)
    check_values(d)
    assert d.covariates == ["x"] and list(d.frame["x"]) == ["u", "v", "u"]


def test_blank_rows_dropped_and_counted(tmp_path):
    p = tmp_path / "d.csv"
    write(p, table(",") + ",,,,,\n , ,,,,\n")
    d = DTAData.from_csv(p)
    check_values(d)
    assert "2 fully blank rows dropped" in d.describe()
    # a blank row in the middle is dropped too, and errors still name the file line
    write(p, "study,TP,FP,FN,TN\nA,1,2,3,4\n,,,,\nB,1,-2,3,4\n")
    with pytest.raises(DTADataError, match=r"row 3 \(file line 4\), column FP: count -2"):
        DTAData.from_csv(p)
    # a partly filled row is not blank: it is an error naming the cell
    write(p, "study,TP,FP,FN,TN\nA,1,2,3,4\nB,,,,\n")
    with pytest.raises(DTADataError, match=r"row 2 \(file line 3\), column TP: missing count"):
        DTAData.from_csv(p)


def test_row_longer_than_header_is_refused_not_cut(tmp_path):
    p = tmp_path / "d.csv"
    write(p, "study,TP,FP,FN,TN,age\nA,10,1,5,50,61\nB,20,2,6,60,61,5\nC,30,3,7,70,58\n")
    with pytest.raises(DTADataError, match=r"row 2 \(file line 3\): 7 fields but the header has 6"):
        DTAData.from_csv(p)


def test_excel_separator_line_and_quoted_cells(tmp_path):
    p = tmp_path / "d.csv"
    text = 'sep=;\nstudy;TP;FP;FN;TN;x\n"Smith; 2001";10;1;5;50; "u; v"\nB;20;2;6;60;v\n'
    write(p, text, newline="\r\n")
    d = DTAData.from_csv(p)
    assert d.studies == ["Smith; 2001", "B"] and list(d.frame["x"]) == ["u; v", "v"]
    write(p, "study,TP,FP,FN,TN\nA,10,1,5,50\nB,20,2,-6,60\n".replace("study", "sep=,\nstudy"))
    with pytest.raises(DTADataError, match=r"row 2 \(file line 4\), column FN: count -6"):
        DTAData.from_csv(p)


def test_non_utf8_export_is_read_and_said(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes("study;TP;FP;FN;TN\nMüller;10;1;5;50\nBø;20;2;6;60\n".encode("cp1252"))
    d = DTAData.from_csv(p)
    assert d.studies == ["Müller", "Bø"]
    assert "cp1252 (not UTF-8)" in d.describe()


def test_trailing_separator_column_dropped(tmp_path):
    p = tmp_path / "d.csv"
    write(p, "study;TP;FP;FN;TN;\nA;10;1;5;50;\nB;20;2;6;60;\nC;30;3;7;70;\n")
    d = DTAData.from_csv(p)
    assert d.covariates == [] and d.n_rows == 3


def test_decimal_commas_in_semicolon_files(tmp_path):
    p = tmp_path / "d.csv"
    header = ("study", "TP", "FP", "FN", "TN", "age")
    rows = [r[:5] + (a,) for r, a in zip(ROWS, ("61,5", "58", "70,25"), strict=True)]
    write(p, table(";", header, rows))
    d = DTAData.from_csv(p)
    np.testing.assert_allclose(d.frame["age"].to_numpy(dtype=float), [61.5, 58.0, 70.25])
    assert "decimal commas read in age" in d.describe()
    # counts with a decimal comma are whole numbers or errors; "1,234" is ambiguous
    rows[1] = ("B", "20,0", 2, 6, 60, "58")
    write(p, table(";", header, rows))
    assert list(DTAData.from_csv(p).tp) == [10, 20, 30]
    for bad, says in (("20,5", "is not an integer"), ("1,234", "is ambiguous")):
        rows[1] = ("B", bad, 2, 6, 60, "58")
        write(p, table(";", header, rows))
        with pytest.raises(
            DTADataError, match=rf"row 2 \(file line 3\), column TP: count '{bad}' {says}"
        ):
            DTAData.from_csv(p)
    # a count written with a separator is refused, naming cell and value
    rows[1] = ("B", "1.234", 2, 6, 60, "58")
    write(p, table(";", header, rows))
    with pytest.raises(DTADataError, match=r"row 2 \(file line 3\), column TP: count '1.234' is"):
        DTAData.from_csv(p)


# ------------------------------------------------------------------------------ id headers
@pytest.mark.parametrize(
    "header",
    [
        "Study ID",
        "study_id",
        "StudyID",
        " study ",
        "Study",
        "author",
        "First author",
        "first_author",
        "FIRST-AUTHOR",
    ],
)
def test_study_id_headers_recognised(tmp_path, header):
    p = tmp_path / "d.csv"
    write(p, table(",", (header, "TP", "FP", "FN", "TN", "x")), bom=True)
    d = DTAData.from_csv(p)
    check_values(d)
    assert d.study_column == header.strip()
    assert d.covariates == ["x"]  # the id did not become a covariate
    line = d.describe()
    assert f"study id {header.strip()!r} (3 studies" in line


def test_study_id_header_from_frame_and_explicit_loose_name():
    df = pd.DataFrame(ROWS, columns=["Study ID", "TP", "FP", "FN", "TN", "x"])
    assert DTAData.from_frame(df).study_column == "Study ID"
    assert DTAData.from_frame(df, study="study id").study_column == "Study ID"


def test_column_mapping_and_describe(tmp_path):
    p = tmp_path / "d.csv"
    write(p, table(",", ("study", "tp_col", "fp_col", "fn_col", "tn_col", "x")))
    mapping = {"TP": "tp_col", "FP": "fp_col", "FN": "fn_col", "TN": "tn_col"}
    d = DTAData.from_csv(p, columns=mapping)
    check_values(d)
    assert "counts TP='tp_col', FP='fp_col', FN='fn_col', TN='tn_col'" in d.describe()
    with pytest.raises(DTADataError, match=r"required column TP is missing.*--columns TP="):
        DTAData.from_csv(p)


# ------------------------------------------------------------------------------ clustering
def clustered_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "study": ["A", "A", "B", "C", "C"],
            "TP": [10, 12, 20, 30, 31],
            "FP": [1, 2, 2, 3, 4],
            "FN": [5, 4, 6, 7, 6],
            "TN": [50, 49, 60, 70, 69],
        }
    )


def test_repeated_study_without_model_column_is_refused():
    with pytest.raises(DTADataError) as err:
        DTAData.from_frame(clustered_rows())
    msg = str(err.value)
    assert "\n" not in msg
    assert "row 1, column study: study id 'A' repeats (first at row 0)" in msg
    assert "model=" in msg and "clustered=True" in msg and "--clustered" in msg
    d = DTAData.from_frame(clustered_rows(), clustered=True)
    assert d.has_clusters and d.n_studies == 3
    assert "rows of a study numbered 1, 2, ... (clustered=True)" in d.describe()
    n, why = levels_reason(d)
    assert n == 3 and "2 of 3 studies have several rows" in why


def test_fit_refuses_silent_clustering_before_sampling():
    with pytest.raises(DTADataError, match="clustered=True"):
        bd.fit(clustered_rows(), verbose=False)


def test_model_id_named_test_is_announced_and_usable_in_formula():
    df = clustered_rows()
    df["test"] = ["CT", "MRI", "CT", "CT", "MRI"]
    d = DTAData.from_frame(df)
    assert d.model_column == "test"
    assert "model id 'test' (found)" in d.describe()
    assert d.covariates == []  # ids are not covariates...
    design = make_design(d, ModelSpec(formula="~ test"))  # ...but formulas may use them
    assert design.columns["sensitivity"] == ["Intercept", "test[T.MRI]"]
    np.testing.assert_array_equal(design.X["sensitivity"][:, 1], [0, 1, 0, 0, 1])
    # a study id column may be used the same way
    d2 = DTAData.from_frame(df.rename(columns={"study": "First author"}))
    assert "First author" in d2.frame.columns and d2.covariates == []


def test_packaged_examples_declare_their_ids():
    for name in bd.list_examples():
        d = bd.load_example(name)
        info = bd.datasets.example_info(name)
        if d.has_clusters:
            assert info["model"] is not None and d.model_column == info["model"]
        line = fit_note(d)
        assert line.startswith(f"read {d.n_rows} rows from")


# ------------------------------------------------------------------------------ announcement
def test_announcement_line_matches_the_file():
    d = bd.load_example("osteoporosis_dl")
    raw = pd.read_csv(bd.datasets.example_path("osteoporosis_dl"))
    n_studies = raw["study"].nunique()
    multi = int((raw.groupby("study").size() > 1).sum())
    covs = [c for c in raw.columns if c not in ("study", "model", "TP", "FP", "FN", "TN")]
    line = fit_note(d)
    assert "\n" not in line
    assert line.startswith(f"read {len(raw)} rows from ")
    assert f"study id 'study' ({n_studies} studies)" in line
    assert "model id 'model'" in line and "counts TP/FP/FN/TN" in line
    assert f"covariates {', '.join(covs)}" in line
    assert f"3 levels (chosen as {multi} of {n_studies} studies have several rows" in line
    assert fit_note(d, 2).endswith(
        f"2 levels (levels=2 requested: the {len(raw)} rows are treated as independent "
        f"studies, although {multi} studies have several rows)"
    )


def test_fit_announces_once_on_stderr(dementia_fit, capsys):
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        f = bd.fit(dementia_fit.data, seed=1, draws=30, tune=60, chains=1)
    err = capsys.readouterr().err.strip().splitlines()
    notes = [ln for ln in err if ln.startswith("read ")]
    assert notes == [f.data_note]
    assert "read 33 rows" in f.data_note and "2 levels (chosen: one row per study)" in f.data_note
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        bd.fit(dementia_fit.data, seed=1, draws=30, tune=60, chains=1, verbose=False)
    assert "read " not in capsys.readouterr().err


# ------------------------------------------------------------------------------ learnable
def test_one_study_is_an_error():
    one = clustered_rows().iloc[:1]
    with pytest.raises(DTADataError, match="at least two studies"):
        bd.fit(one, verbose=False)
    several = clustered_rows().iloc[:2]  # study A, two tables
    d = DTAData.from_frame(several, clustered=True)
    with pytest.raises(DTADataError, match=r"tau_sensitivity, tau_specificity and rho"):
        bd.fit(d, verbose=False)
    (msg,) = check_learnable(d, levels=3)
    assert "not informed" in msg and "one study ('A')" in msg
    assert check_learnable(d, levels=2) == []


def test_levels_three_on_one_row_per_study_warns_before_sampling(dementia_data):
    (msg,) = check_learnable(dementia_data, levels=3)
    assert msg.startswith("tau_within_sensitivity, tau_within_specificity and rho_within")
    assert "every study has one row" in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)  # stop fit() at the warning
        with pytest.raises(IdentifiabilityWarning, match="tau_within_sensitivity"):
            bd.fit(dementia_data, levels=3, verbose=False)
    assert check_learnable(dementia_data) == []


def test_covariate_level_in_one_study_names_the_coefficient():
    df = pd.DataFrame(
        {
            "study": list("ABCDEF"),
            "TP": [10, 20, 30, 12, 22, 32],
            "FP": [1, 2, 3, 2, 3, 4],
            "FN": [5, 6, 7, 6, 7, 8],
            "TN": [50, 60, 70, 55, 65, 75],
            "kind": ["a", "a", "b", "b", "c", "a"],
            "arm": ["x", "x", "x", "y", "y", "y"],
        }
    )
    d = DTAData.from_frame(df)
    spec = ModelSpec(formula="~ kind", tau_by="arm")
    msgs = check_learnable(d, design=make_design(d, spec), tau_by="arm")
    assert len(msgs) == 1
    assert msgs[0].startswith("beta_sensitivity[kind[T.c]] and beta_specificity[kind[T.c]]")
    assert "only in study 'E'" in msgs[0]
    spec = ModelSpec(formula="~ kind", reference={"kind": "c"})
    (msg,) = check_learnable(d, design=make_design(d, spec))
    assert msg.startswith("mu_sensitivity and mu_specificity (the summary point at the reference")
    df.loc[5, "arm"] = "z"
    d = DTAData.from_frame(df)
    (msg,) = check_learnable(d, tau_by="arm")
    assert msg.startswith("tau_sensitivity[z] and tau_specificity[z] are not informed")
    with warnings.catch_warnings():
        warnings.simplefilter("error", IdentifiabilityWarning)
        with pytest.raises(IdentifiabilityWarning, match=r"beta_sensitivity\[kind\[T.c\]\]"):
            bd.fit(d, formula="~ kind", verbose=False)


# ------------------------------------------------------------------------------ plain numbers
def test_numbers_in_messages_are_plain():
    df = pd.DataFrame(ROWS, columns=["study", "TP", "FP", "FN", "TN", "x"])
    df["TP"] = pd.Series([np.int64(10), np.int64(-1), np.int64(30)], dtype=object)
    with pytest.raises(DTADataError) as err:
        DTAData.from_frame(df)
    assert "count -1 is negative" in str(err.value) and "np." not in str(err.value)
    with pytest.raises(DTADataError) as err:
        bd.counts_from_metrics(np.float64(88.0), 0.9, n_diseased=10, n_nondiseased=100)
    assert "np." not in str(err.value) and "sensitivity 88 is not a proportion" in str(err.value)
    with pytest.raises(DTADataError, match="row 1: sensitivity is missing"):
        bd.counts_from_metrics(np.nan, 0.9, n_diseased=10, n_nondiseased=100)
    with pytest.raises(DTADataError, match="row 2: specificity 'x' is not a number"):
        bd.counts_from_metrics([0.9, 0.8], [0.9, "x"], n_diseased=10, n_nondiseased=100)


def test_spec_data_file_takes_sep_columns_and_clustered(tmp_path):
    from bayesdta.reporting.spec import load_spec

    rows = clustered_rows().rename(columns={"TP": "tp_col"})
    (tmp_path / "d.csv").write_bytes(
        b"\xef\xbb\xbf" + rows.to_csv(sep=";", index=False, lineterminator="\r\n").encode()
    )
    head = "[analysis]\nname = 'a'\n[data]\nfile = 'd.csv'\nsep = ';'\n"
    cols = "[data.columns]\nTP = 'tp_col'\n"
    (tmp_path / "s.toml").write_text(head + "clustered = true\n" + cols)
    d = load_spec(tmp_path / "s.toml").load_data()
    assert d.has_clusters and list(d.tp) == [10, 12, 20, 30, 31]
    assert "';'-separated, UTF-8 with BOM" in d.describe()
    (tmp_path / "s.toml").write_text(head + cols)
    with pytest.raises(DTADataError, match="clustered=True"):
        load_spec(tmp_path / "s.toml").load_data()
    # errors name the file line, also after data.exclude removed rows above it
    bad = clustered_rows()
    bad["model"] = ["m1", "m2", "m1", "m1", "m2"]
    bad.loc[4, "FN"] = -6
    bad.to_csv(tmp_path / "d.csv", sep=";", index=False)
    (tmp_path / "s.toml").write_text(head + "[data.exclude]\nstudy = ['A']\n")
    with pytest.raises(DTADataError, match=r"row 5 \(file line 6\), column FN: count -6"):
        load_spec(tmp_path / "s.toml").load_data()
