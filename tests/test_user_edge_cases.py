"""Regression tests from the new-user review (odd data on the ML companion and review outputs)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import bayesdta as bd


def _table(tp, fn, fp, tn):
    return pd.DataFrame(
        {"study": [f"S{i}" for i in range(len(tp))], "TP": tp, "FN": fn, "FP": fp, "TN": tn}
    )


def test_fit_ml_rho_at_minus_one_with_small_sd_has_a_summary():
    """3 studies: tau_sp ~ 0.007 (not fixed at 0) and rho = -1 to machine precision.

    Old code did not try rho's bound when an SD was small, and ``summary()`` raised
    ``ValueError: math domain error`` (atanh(-1)).
    """
    df = _table([58, 26, 33], [16, 6, 17], [13, 7, 22], [76, 45, 140])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.MLWarning)
        ml = bd.fit_ml(df)
    s = ml.summary()
    assert abs(s.loc["rho", "estimate"]) <= 1.0
    if abs(s.loc["rho", "estimate"]) > 1 - 1e-9:
        assert ml.at_boundary and any(b.startswith("rho") for b in ml.boundary)
    assert np.isfinite(s.loc[["sensitivity", "specificity"], ["lower", "upper"]].to_numpy()).all()


@pytest.mark.parametrize("column", ["FN", "FP"])
def test_fit_ml_all_zero_cells_warns_and_summarizes(column):
    """FN = 0 (or FP = 0) in every table: the ML logit diverges.

    Old code: FP = 0 everywhere raised ``OverflowError`` in ``summary()``; FN = 0 everywhere
    silently reported mu_sensitivity ~ 27 with junk intervals and no warning.
    """
    rng = np.random.default_rng(3)
    n1, n0 = rng.integers(20, 60, 8), rng.integers(50, 150, 8)
    tp, tn = rng.binomial(n1, 0.8), rng.binomial(n0, 0.85)
    df = _table(tp, n1 - tp, n0 - tn, tn)
    df[column] = 0
    outcome = "sensitivity" if column == "FN" else "specificity"
    with pytest.warns(bd.MLWarning, match=f"{outcome} = 1"):
        ml = bd.fit_ml(df)
    assert any(f"mu_{outcome} diverges" in n and f"{column} = 0" in n for n in ml.notes)
    s = ml.summary()
    assert math.isnan(s.loc[f"mu_{outcome}", "lower"]) and math.isnan(s.loc[outcome, "upper"])
    other = "specificity" if outcome == "sensitivity" else "sensitivity"
    assert 0 < s.loc[other, "lower"] < s.loc[other, "estimate"] < s.loc[other, "upper"] < 1


def test_fit_ml_non_integer_n_quad_is_refused():
    """Old code truncated n_quad=2.5 to 2 silently."""
    df = _table([58, 26, 33], [16, 6, 17], [13, 7, 22], [76, 45, 140])
    with pytest.raises(bd.SpecError, match="n_quad must be a positive integer"):
        bd.fit_ml(df, n_quad=2.5)
