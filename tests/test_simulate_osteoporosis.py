"""Tests of the simulated osteoporosis deep-learning dataset (bayesdta.datasets)."""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

so = importlib.import_module("bayesdta.data.datasets.simulate_osteoporosis")

HERE = Path(so.__file__).resolve().parent
COUNTS = ["TP", "FP", "FN", "TN"]
DESIGN_COLUMNS = [
    "study",
    "model",
    "backbone",
    "reference_standard",
    "dimensionality",
    "validation",
    "scan_plane",
    "risk_of_bias",
    "n_test",
    "prevalence",
    "simulated",
]


@pytest.fixture(scope="module")
def default():
    return so.simulate_osteoporosis(seed=2025)


def test_shape_and_allocation(default):
    table, truth = default
    assert list(table.columns) == so.TABLE_COLUMNS
    assert len(table) == 39
    sizes = table.groupby("study", sort=False).size()
    assert len(sizes) == 20
    assert (sizes >= 2).sum() == 15
    assert (sizes == 1).sum() == 5
    assert sizes.max() <= 6
    assert not table.duplicated(["study", "model"]).any()
    studies = pd.read_csv(HERE / "osteoporosis_dl_studies.csv")
    meta = set(studies.loc[studies["in_meta_analysis"] == 1, "study"])
    assert set(table["study"]) == meta
    assert truth["n_rows"] == 39 and truth["n_studies"] == 20


def test_covariate_levels(default):
    table, _ = default
    expected = {
        "backbone": {"ResNet", "DenseNet", "Other"},
        "reference_standard": {"DXA", "CT"},
        "dimensionality": {"2D", "3D"},
        "validation": {"internal", "external"},
        "scan_plane": {"axial", "sagittal/coronal"},
        "risk_of_bias": {"low", "high"},
    }
    for col, levels in expected.items():
        assert set(table[col]) == levels, col
    assert table["simulated"].all()
    # a study with internal and external test sets gives rows of both kinds
    li = table[table["study"] == "Li 2025b"]
    assert set(li["validation"]) == {"internal", "external"}
    assert set(li["backbone"]) == {"ResNet", "DenseNet"}
    wu = table[table["study"] == "Wu 2025"].set_index("validation")["n_test"]
    assert wu.to_dict() == {"internal": 975, "external": 4401}


def test_counts_integer_and_consistent(default):
    table, _ = default
    for c in COUNTS:
        assert pd.api.types.is_integer_dtype(table[c]), c
        assert (table[c] >= 0).all(), c
    n1 = so.n_diseased(table["n_test"].to_numpy(), table["prevalence"].to_numpy())
    assert np.array_equal((table["TP"] + table["FN"]).to_numpy(), n1)
    assert np.array_equal(table[COUNTS].sum(axis=1).to_numpy(), table["n_test"].to_numpy())
    assert ((table["TP"] + table["FN"]) >= 1).all()
    assert ((table["FP"] + table["TN"]) >= 1).all()
    assert table["prevalence"].between(0.15, 0.5).all()


def test_shipped_files_equal_regeneration(default):
    table, truth = default
    text = (HERE / "osteoporosis_dl.csv").read_text(encoding="utf-8")
    assert text == table.to_csv(index=False, lineterminator="\n")
    shipped = pd.read_csv(HERE / "osteoporosis_dl.csv")
    pd.testing.assert_frame_equal(shipped[COUNTS], table[COUNTS])
    stored = json.loads((HERE / "osteoporosis_dl_truth.json").read_text(encoding="utf-8"))
    assert stored == json.loads(json.dumps(truth))


def test_truth_round_trip_reproduces_data(default):
    table, truth = default
    stored = json.loads((HERE / "osteoporosis_dl_truth.json").read_text(encoding="utf-8"))
    again, _ = so.simulate_osteoporosis(seed=stored["seed"], truth=stored)
    pd.testing.assert_frame_equal(again, table)


def test_seeds_change_counts_not_design(default):
    table, _ = default
    other, truth = so.simulate_osteoporosis(seed=7)
    pd.testing.assert_frame_equal(other[DESIGN_COLUMNS], table[DESIGN_COLUMNS])
    assert not other[COUNTS].equals(table[COUNTS])
    assert (other["TP"] != table["TP"]).sum() > 10
    assert truth["seed"] == 7


def test_truth_keys_and_pooled_values(default):
    _, truth = default
    stored = json.loads((HERE / "osteoporosis_dl_truth.json").read_text(encoding="utf-8"))
    for t in (truth, stored):
        for key in [
            "note",
            "formula",
            "reference_levels",
            "coefficients",
            "coefficient_table",
            "intercept_sensitivity",
            "intercept_specificity",
            "tau_sensitivity",
            "tau_specificity",
            "rho",
            "tau_within_sensitivity",
            "tau_within_specificity",
            "rho_within",
            "sensitivity",
            "specificity",
            "seed",
        ]:
            assert key in t, key
        assert abs(t["sensitivity"] - 0.88) < 0.02
        assert abs(t["specificity"] - 0.94) < 0.02
        assert "not public" in t["note"] and "simulated" in t["note"].lower()
        assert t["formula"] == "~ backbone + reference_standard + dimensionality + validation"
    assert truth["reference_levels"]["backbone"] == "ResNet"
    assert truth["model_spec"] == {
        "formula": truth["formula"],
        "reference": {
            "backbone": "ResNet",
            "reference_standard": "DXA",
            "dimensionality": "2D",
            "validation": "internal",
        },
    }
    rows = {r["column"]: r for r in truth["coefficient_table"]}
    assert rows["backbone[T.DenseNet]"]["name"] == "backbone[DenseNet]"
    for outcome in ("sensitivity", "specificity"):
        c = truth["coefficients"][outcome]
        assert c["backbone[T.DenseNet]"] > 0
        assert c["reference_standard[T.CT]"] > 0
        assert c["dimensionality[T.3D]"] > 0
        assert c["validation[T.external]"] < 0
        assert c["scan_plane[T.sagittal/coronal]"] == 0
        assert c["risk_of_bias[T.high]"] == 0
        assert rows["validation[T.external]"][outcome] == c["validation[T.external]"]


def test_truth_matches_formulaic_columns(default):
    formulaic = pytest.importorskip("formulaic")
    table, truth = default
    frame = table.copy()
    for var, levels in truth["levels"].items():
        frame[var] = pd.Categorical(frame[var], categories=levels)
    mm = formulaic.model_matrix(truth["formula_all"], frame)
    assert set(mm.columns) == set(truth["coefficients"]["sensitivity"])
    for outcome in ("sensitivity", "specificity"):
        beta = pd.Series(truth["coefficients"][outcome])[mm.columns]
        lp = float(np.mean(mm.to_numpy() @ beta.to_numpy()))
        assert lp == pytest.approx(truth[f"mean_linear_predictor_{outcome}"], abs=1e-6)
        assert 1 / (1 + math.exp(-lp)) == pytest.approx(truth[outcome], abs=1e-6)


def test_custom_truth_changes_effects():
    table, truth = so.simulate_osteoporosis(
        seed=3, truth={"coefficients": {"sensitivity": {"scan_plane[T.sagittal/coronal]": 1.0}}}
    )
    assert truth["coefficients"]["sensitivity"]["backbone[T.DenseNet]"] == 0.0
    assert truth["coefficients"]["specificity"]["backbone[T.DenseNet]"] == 0.5
    assert "scan_plane" in truth["formula"]
    assert truth["sensitivity"] == pytest.approx(0.88, abs=1e-3)
    with pytest.raises(ValueError):
        so.simulate_osteoporosis(truth={"coefficients": {"sensitivity": {"bogus[T.x]": 1}}})
    with pytest.raises(ValueError):
        so.simulate_osteoporosis(truth={"tau_sensitvity": 0.5})
    big, _ = so.simulate_osteoporosis(seed=3, n_rows=50)
    assert len(big) == 50 and big["study"].nunique() == 20 + 6


def _elogit_moments(design, lp, sd, events, nodes=40):
    """Per-row mean and variance of log((X + .5)/(n - X + .5)), X ~ Bin(n, expit(N(lp, sd^2)))."""
    z, w = np.polynomial.hermite_e.hermegauss(nodes)
    w = w / w.sum()
    mean, var = [], []
    for n, m in zip(design[events].to_numpy(), lp, strict=True):
        x = np.arange(n + 1)
        elogit = np.log((x + 0.5) / (n - x + 0.5))
        p = 1 / (1 + np.exp(-(m + sd * z)))
        pmf = w @ stats.binom.pmf(x[None, :], n, p[:, None])
        mean.append(float(pmf @ elogit))
        var.append(float(pmf @ elogit**2) - mean[-1] ** 2)
    return np.array(mean), np.array(var)


def test_replicates_consistent_with_truth():
    """Empirical logits over 200 replicates match their mean and variance under the truth."""
    reps = 200
    design = so.osteoporosis_design()
    elogits = {"sensitivity": [], "specificity": []}
    study_u, row_v = [], []
    for seed in range(1, reps + 1):
        table, truth = so.simulate_osteoporosis(seed=seed)
        elogits["sensitivity"].append(np.log((table.TP + 0.5) / (table.FN + 0.5)).to_numpy())
        elogits["specificity"].append(np.log((table.TN + 0.5) / (table.FP + 0.5)).to_numpy())
        study_u += [[e["sensitivity"], e["specificity"]] for e in truth["study_effects"].values()]
        row_v += [[e["sensitivity"], e["specificity"]] for e in truth["row_effects"]]
    x = so._design_matrix(design)
    for outcome, events in (("sensitivity", "n_diseased"), ("specificity", "n_nondiseased")):
        coefs = truth["coefficients"][outcome]
        lp = coefs["Intercept"] + x @ np.array([coefs[c] for c in so.COLUMNS])
        sd = math.hypot(truth[f"tau_{outcome}"], truth[f"tau_within_{outcome}"])
        mean_r, var_r = _elogit_moments(design, lp, sd, events)
        # the +0.5 empirical logit is nearly unbiased for the mean linear predictor
        expected = float(mean_r.mean())
        assert abs(expected - truth[f"mean_linear_predictor_{outcome}"]) < 0.03
        e = np.asarray(elogits[outcome])  # (reps, rows), replicates independent
        m = e.mean(axis=1)
        mcse = m.std(ddof=1) / math.sqrt(reps)
        assert abs(m.mean() - expected) < 4 * mcse, (outcome, m.mean(), expected, mcse)
        # spread around the row means: tests the random-effect SDs reach the counts
        q = ((e - mean_r) ** 2).mean(axis=1)
        q_se = q.std(ddof=1) / math.sqrt(reps)
        assert abs(q.mean() - var_r.mean()) < 4 * q_se, (outcome, q.mean(), var_r.mean(), q_se)
    # realized random effects: SDs and correlations (pooled over replicates)
    for eff, (s1, s2, r) in (
        (np.array(study_u), ("tau_sensitivity", "tau_specificity", "rho")),
        (np.array(row_v), ("tau_within_sensitivity", "tau_within_specificity", "rho_within")),
    ):
        n = len(eff)
        sd = eff.std(axis=0, ddof=1)
        assert abs(sd[0] - truth[s1]) < 4 * truth[s1] / math.sqrt(2 * n)
        assert abs(sd[1] - truth[s2]) < 4 * truth[s2] / math.sqrt(2 * n)
        rho = np.corrcoef(eff.T)[0, 1]
        assert abs(rho - truth[r]) < 4 * (1 - truth[r] ** 2) / math.sqrt(n)
        assert np.all(
            np.abs(eff.mean(axis=0)) < 4 * np.array([truth[s1], truth[s2]]) / math.sqrt(n)
        )
