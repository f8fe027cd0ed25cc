"""counts_from_metrics: every bad input is a one-line DTADataError naming the row and column."""

from __future__ import annotations

import math

import pytest

import bayesdta as bd
from bayesdta.exceptions import DTADataError

OK = {"n_diseased": [10, 20], "n_nondiseased": [10, 20]}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"sensitivity": [0.9, math.nan], "specificity": [0.8, 0.7], **OK},
            r"^row 2: sensitivity is missing \(NaN or empty\); give a proportion in \[0, 1\]$",
        ),
        (
            {"sensitivity": [0.9, "abc"], "specificity": [0.8, 0.7], **OK},
            r"^row 2: sensitivity 'abc' is not a number$",
        ),
        (
            {"sensitivity": [0.9, 0.8, 0.7], "specificity": [0.8, 0.7], **OK},
            r"^inputs differ in length \(sensitivity has 3, specificity has 2, ",
        ),
        (
            {
                "sensitivity": [0.9, 0.8],
                "specificity": [0.8, 0.7],
                "n_total": [10, 20],
                "prevalence": [0.5, math.nan],
            },
            r"^row 2: prevalence is missing",
        ),
        (
            {
                "sensitivity": [0.9, 0.8],
                "specificity": [0.8, 0.7],
                "n_total": [10, 20],
                "prevalence": [0.5, 1.5],
            },
            r"^row 2: prevalence 1.5 is not a proportion strictly between 0 and 1$",
        ),
        (
            {
                "sensitivity": [0.9, 0.8],
                "specificity": [0.8, 0.7],
                "n_diseased": [10, None],
                "n_nondiseased": [10, 20],
            },
            r"^row 2: n_diseased is missing",
        ),
        (
            {
                "sensitivity": [0.9, 0.8],
                "specificity": [0.8, 0.7],
                "n_diseased": [10, 20.5],
                "n_nondiseased": [10, 20],
            },
            r"^row 2: n_diseased 20.5 is not a positive integer$",
        ),
        (
            {"sensitivity": [[0.9, 0.8]], "specificity": [0.8, 0.7], **OK},
            r"^sensitivity: give one value per row",
        ),
        (
            {"sensitivity": [0.9, 88], "specificity": [0.8, 0.7], **OK},
            r"^row 2: sensitivity 88 is not a proportion in \[0, 1\] \(give 0.88, not 88\)$",
        ),
    ],
)
def test_bad_inputs_give_one_line_errors_naming_row_and_column(kwargs, message):
    with pytest.raises(DTADataError, match=message) as info:
        bd.counts_from_metrics(**kwargs)
    assert "\n" not in str(info.value) and "np." not in str(info.value)


def test_good_inputs_still_reconstruct_the_counts():
    df = bd.counts_from_metrics(
        [0.9, 0.85], [0.8, 0.75], n_diseased=[10, 20], n_nondiseased=[10, 20]
    )
    assert df.values.tolist() == [[9, 2, 1, 8], [17, 5, 3, 15]]
    one = bd.counts_from_metrics(0.9, [0.8, 0.75], n_diseased=[10, 20], n_nondiseased=[10, 20])
    assert one["TP"].tolist() == [9, 18]
