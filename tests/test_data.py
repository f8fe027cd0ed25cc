"""DTAData validation, 2x2 builders and packaged datasets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayesdta as bd
from bayesdta import DTAData, DTADataError, counts_from_metrics, split_confusion


def frame(**overrides):
    df = pd.DataFrame(
        {
            "study": ["A", "B", "C"],
            "TP": [10, 20, 30],
            "FP": [1, 2, 3],
            "FN": [5, 6, 7],
            "TN": [50, 60, 70],
            "x": ["u", "v", "u"],
        }
    )
    for k, v in overrides.items():
        df[k] = v
    return df


def test_valid_frame_and_views():
    d = DTAData.from_frame(frame())
    assert d.n_rows == 3 and d.n_studies == 3
    assert list(d.tp) == [10, 20, 30]
    assert list(d.n_diseased) == [15, 26, 37]
    assert d.covariates == ["x"]
    assert not d.has_clusters
    with pytest.raises(ValueError):
        d.tp[0] = 3  # immutable views


def test_case_insensitive_and_mapping():
    df = frame().rename(columns={"TP": "tp", "TN": "Tn"})
    assert list(DTAData.from_frame(df).tn) == [50, 60, 70]
    df2 = frame().rename(columns={"TP": "true_pos"})
    with pytest.raises(DTADataError, match="required column TP is missing"):
        DTAData.from_frame(df2)
    d = DTAData.from_frame(df2, columns={"TP": "true_pos"})
    assert list(d.tp) == [10, 20, 30]


@pytest.mark.parametrize(
    "column, values, message",
    [
        ("TP", [10, -1, 30], r"row 1, column TP: count -1 is negative"),
        ("FN", [5, 6.5, 7], r"row 1, column FN: count 6.5 is not an integer"),
        ("TN", [50, np.nan, 70], r"row 1, column TN: missing count"),
        ("FP", [1, "two", 3], r"row 1, column FP: count 'two' is not a number"),
    ],
)
def test_bad_counts_name_row_and_column(column, values, message):
    with pytest.raises(DTADataError, match=message):
        DTAData.from_frame(frame(**{column: values}))


def test_no_diseased_or_no_nondiseased():
    with pytest.raises(DTADataError, match=r"row 2, columns TP/FN: no diseased"):
        DTAData.from_frame(frame(TP=[10, 20, 0], FN=[5, 6, 0]))
    with pytest.raises(DTADataError, match=r"row 0, columns FP/TN: no non-diseased"):
        DTAData.from_frame(frame(FP=[0, 2, 3], TN=[0, 60, 70]))


def test_duplicated_study_model_pairs():
    df = frame(study=["A", "A", "B"], model=["m1", "m1", "m1"])
    with pytest.raises(DTADataError, match=r"row 1, columns study/model: duplicated .*'A', 'm1'"):
        DTAData.from_frame(df)
    ok = DTAData.from_frame(frame(study=["A", "A", "B"], model=["m1", "m2", "m1"]))
    assert ok.has_clusters and ok.n_studies == 2


def test_missing_id_and_empty_and_missing_column():
    with pytest.raises(DTADataError, match=r"row 1, column study: missing id"):
        DTAData.from_frame(frame(study=["A", None, "C"]))
    with pytest.raises(DTADataError, match="empty"):
        DTAData.from_frame(frame().iloc[:0])
    with pytest.raises(DTADataError, match="required column FN is missing"):
        DTAData.from_frame(frame().drop(columns="FN"))


def test_csv_errors_give_file_line(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("study,TP,FP,FN,TN\nA,1,2,3,4\nB,1,-2,3,4\n")
    with pytest.raises(DTADataError, match=r"row 2 \(file line 3\), column FP"):
        DTAData.from_csv(p)
    with pytest.raises(DTADataError, match="does not exist"):
        DTAData.from_csv(tmp_path / "nope.csv")


def test_json_round_trip():
    d = bd.load_example("smoking")
    d2 = DTAData.from_json(d.to_json())
    pd.testing.assert_frame_equal(d.frame, d2.frame)
    assert d2.study_column == d.study_column


def test_split_confusion_three_class():
    m = np.array([[50, 8, 2], [6, 40, 9], [1, 7, 77]])  # rows: truth
    out = split_confusion(m, labels=["osteoporosis", "osteopenia", "normal"])
    op = out.set_index("target").loc["osteoporosis"]
    assert (op.TP, op.FN, op.FP, op.TN) == (50, 10, 7, 133)
    # every table sums to N and the TP sum is the trace
    assert (out[["TP", "FP", "FN", "TN"]].sum(axis=1) == m.sum()).all()
    assert out.TP.sum() == np.trace(m)
    # truth along columns gives the transpose's answer
    out_c = split_confusion(m.T, truth="columns")
    assert out_c[["TP", "FP", "FN", "TN"]].equals(out[["TP", "FP", "FN", "TN"]])
    with pytest.raises(DTADataError, match=r"cell \[0, 1\]"):
        split_confusion([[1, -1], [2, 3]])


def test_counts_from_metrics_round_trip_and_mismatch():
    rng = np.random.default_rng(0)
    n1 = rng.integers(20, 400, 50)
    n0 = rng.integers(20, 400, 50)
    tp = rng.binomial(n1, 0.85)
    tn = rng.binomial(n0, 0.9)
    se = np.round(tp / n1, 4)
    sp = np.round(tn / n0, 4)
    out = counts_from_metrics(se, sp, n_diseased=n1, n_nondiseased=n0, decimals=4)
    assert np.array_equal(out.TP, tp) and np.array_equal(out.TN, tn)
    assert np.array_equal(out.FN, n1 - tp) and np.array_equal(out.FP, n0 - tn)
    # total + prevalence
    out2 = counts_from_metrics(0.9, 0.8, n_total=200, prevalence=0.25)
    assert out2.iloc[0].to_dict() == {"TP": 45, "FP": 30, "FN": 5, "TN": 120}
    # 0.87 of 10 diseased is impossible to two decimals
    with pytest.raises(DTADataError, match=r"row 1: reported sensitivity 0.87"):
        counts_from_metrics(0.87, 0.9, n_diseased=10, n_nondiseased=100)
    with pytest.raises(DTADataError, match="not a proportion"):
        counts_from_metrics(88, 0.9, n_diseased=10, n_nondiseased=100)


@pytest.mark.parametrize("name", list(bd.list_examples()))
def test_examples_load(name):
    d = bd.load_example(name)
    assert d.n_rows > 0
    info = bd.datasets.example_info(name)
    assert info["citation"]


def test_smoking_is_clustered():
    d = bd.load_example("smoking")
    assert d.n_rows == 51 and d.n_studies == 26 and d.has_clusters
    assert {"type", "population"} <= set(d.covariates)
