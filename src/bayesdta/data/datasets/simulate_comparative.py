r"""Simulated comparative accuracy reviews: DL models vs radiologists on the osteoporosis design.

:func:`simulate_comparative` draws 2x2 tables for any comparative design (study, test, numbers
of diseased and non-diseased participants) from the comparison model of
:mod:`bayesdta.families.comparative`:

.. math::

    \theta_r = (\mu^{se}_{t(r)}, \mu^{sp}_{t(r)}) + u_{s(r)} + v_r, \quad
    u_s \sim MVN_2(0, \Sigma_{between}), \quad v_r \sim MVN_2(0, \Sigma_{within, t(r)}), \\
    TP_r \sim Bin(n1_r, \mathrm{logit}^{-1}\theta_{r1}), \quad
    TN_r \sim Bin(n0_r, \mathrm{logit}^{-1}\theta_{r2}).

:func:`osteoporosis_comparative_design` is the comparative design built on the packaged
osteoporosis example (``osteoporosis_dl.csv``: the 20 studies of Wang et al., J Med Internet Res
2025;27:e77155, with their test-set sizes and prevalences), by a deterministic rule:

1. Studies in sorted order; each study's deep-learning (DL) tables are one table per backbone
   class it used (tests ``"DL-ResNet"``, ``"DL-DenseNet"``, ``"DL-Other"``), on its test set
   (``n_test``, ``prevalence`` of its first row; ``n1 = floor(n_test * prevalence + 0.5)``).
2. Studies at even positions (0, 2, 4, ...) also report radiologists (test ``"Radiologist"``):
   on the same test set (paired: same n1 and n0) at positions 0, 4, 8, ...; on a separate
   reader sample of 60% of the test set (unpaired; same prevalence) at positions 2, 6, 10, ...

This gives a network of 4 tests (10 ResNet, 8 DenseNet, 6 Other, 10 Radiologist studies; no
study has every test), 5 paired and 5 unpaired DL-vs-radiologist studies. The true parameters
(:data:`OSTEOPOROSIS_COMPARATIVE_TRUTH`) are illustrative, not published estimates.

Run ``python -m bayesdta.data.datasets.simulate_comparative`` to regenerate
``osteoporosis_comparative.csv`` and ``osteoporosis_comparative_truth.json`` (seed 2026).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "OSTEOPOROSIS_COMPARATIVE_TRUTH",
    "osteoporosis_comparative_design",
    "simulate_comparative",
    "simulate_osteoporosis_comparative",
]

#: Seed of the packaged osteoporosis_comparative.csv.
SEED = 2026

#: True parameters of the osteoporosis comparative example (logit scale; summary points are
#: their inverse logits): tests' mean logits, shared study-effect SDs/correlation and
#: test-by-study deviation SDs/correlation.
OSTEOPOROSIS_COMPARATIVE_TRUTH: dict[str, Any] = {
    "sensitivity": {"DL-ResNet": 0.88, "DL-DenseNet": 0.90, "DL-Other": 0.85, "Radiologist": 0.75},
    "specificity": {"DL-ResNet": 0.94, "DL-DenseNet": 0.93, "DL-Other": 0.92, "Radiologist": 0.90},
    "tau_sensitivity": 0.5,
    "tau_specificity": 0.5,
    "rho": -0.3,
    "tau_within_sensitivity": 0.3,
    "tau_within_specificity": 0.3,
    "rho_within": 0.0,
}


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def simulate_comparative(
    design: pd.DataFrame,
    *,
    sensitivity: Mapping[str, float],
    specificity: Mapping[str, float],
    tau_sensitivity: float,
    tau_specificity: float,
    rho: float = 0.0,
    tau_within_sensitivity: float | Mapping[str, float] = 0.0,
    tau_within_specificity: float | Mapping[str, float] = 0.0,
    rho_within: float = 0.0,
    seed: int | None = None,
) -> pd.DataFrame:
    """Draw the 2x2 tables of a comparative design from the comparison model.

    Parameters
    ----------
    design : DataFrame
        Columns ``study``, ``test``, ``n_diseased``, ``n_nondiseased`` (one row per table);
        further columns are kept.
    sensitivity, specificity : mapping
        True summary sensitivity / specificity per test (inverse logit of its mean logit).
    tau_sensitivity, tau_specificity, rho : float
        SDs and correlation of the study effects shared by the tests of a study.
    tau_within_sensitivity, tau_within_specificity : float or mapping
        SDs of the test-by-study deviations (one for all tests, or per test); 0: none.
    rho_within : float
        Correlation of the deviations.
    seed : int, optional
        Random seed.

    Returns
    -------
    DataFrame
        ``design`` with ``TP``, ``FP``, ``FN``, ``TN`` added.
    """
    rng = np.random.default_rng(seed)
    studies = list(dict.fromkeys(design["study"]))
    cov = np.array(
        [
            [tau_sensitivity**2, rho * tau_sensitivity * tau_specificity],
            [rho * tau_sensitivity * tau_specificity, tau_specificity**2],
        ]
    )
    u = dict(
        zip(studies, rng.multivariate_normal(np.zeros(2), cov, size=len(studies)), strict=True)
    )

    def per_test(x, t):
        return float(x[t]) if isinstance(x, Mapping) else float(x)

    out = design.copy().reset_index(drop=True)
    tp, tn = [], []
    for _, r in out.iterrows():
        t = r["test"]
        a, b = per_test(tau_within_sensitivity, t), per_test(tau_within_specificity, t)
        z = rng.standard_normal(2)
        v = np.array([a * z[0], b * (rho_within * z[0] + np.sqrt(1 - rho_within**2) * z[1])])
        th = np.array([_logit(sensitivity[t]), _logit(specificity[t])]) + u[r["study"]] + v
        p = 1 / (1 + np.exp(-th))
        tp.append(int(rng.binomial(int(r["n_diseased"]), p[0])))
        tn.append(int(rng.binomial(int(r["n_nondiseased"]), p[1])))
    out["TP"] = tp
    out["FN"] = out["n_diseased"].astype(int) - out["TP"]
    out["TN"] = tn
    out["FP"] = out["n_nondiseased"].astype(int) - out["TN"]
    return out


def osteoporosis_comparative_design() -> pd.DataFrame:
    """The comparative design on the osteoporosis example's studies (rule in the module doc).

    Columns: ``study``, ``test``, ``n_diseased``, ``n_nondiseased``, ``test_set``
    (``"shared"`` when the radiologists read the DL test set, ``"separate"`` otherwise).
    """
    text = resources.files(__package__).joinpath("osteoporosis_dl.csv").read_text()
    from io import StringIO

    src = pd.read_csv(StringIO(text))
    rows = []
    cls = {"ResNet": "DL-ResNet", "DenseNet": "DL-DenseNet", "Other": "DL-Other"}
    for i, (study, g) in enumerate(sorted(src.groupby("study"), key=lambda kv: kv[0])):
        n = int(g["n_test"].iloc[0])
        prev = float(g["prevalence"].iloc[0])
        n1 = min(max(int(np.floor(n * prev + 0.5)), 1), n - 1)
        for b in ("ResNet", "DenseNet", "Other"):
            if (g["backbone"] == b).any():
                rows.append((study, cls[b], n1, n - n1, "shared"))
        if i % 2 == 0:
            if i % 4 == 0:
                rows.append((study, "Radiologist", n1, n - n1, "shared"))
            else:
                m = max(int(round(0.6 * n)), 10)
                m1 = min(max(int(np.floor(m * prev + 0.5)), 1), m - 1)
                rows.append((study, "Radiologist", m1, m - m1, "separate"))
    return pd.DataFrame(rows, columns=["study", "test", "n_diseased", "n_nondiseased", "test_set"])


def simulate_osteoporosis_comparative(
    seed: int = SEED, *, truth: Mapping[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate the osteoporosis comparative review (DL models vs radiologists).

    Parameters
    ----------
    seed : int
        Random seed (the packaged ``osteoporosis_comparative.csv`` uses :data:`SEED`).
    truth : mapping, optional
        Overrides of :data:`OSTEOPOROSIS_COMPARATIVE_TRUTH`.

    Returns
    -------
    (DataFrame, dict)
        The tables (``study``, ``test``, ``TP``, ``FP``, ``FN``, ``TN``, ``test_set``) and the
        truth (with the mean logits ``mu_sensitivity`` / ``mu_specificity`` per test).
    """
    t = copy.deepcopy(OSTEOPOROSIS_COMPARATIVE_TRUTH)
    t.update(dict(truth or {}))
    design = osteoporosis_comparative_design()
    df = simulate_comparative(design, seed=seed, **t)
    df = df[["study", "test", "TP", "FP", "FN", "TN", "test_set"]]
    t["mu_sensitivity"] = {k: _logit(v) for k, v in t["sensitivity"].items()}
    t["mu_specificity"] = {k: _logit(v) for k, v in t["specificity"].items()}
    t["seed"] = seed
    t["note"] = (
        "SIMULATED comparative review on the design of the osteoporosis example (Wang et al., "
        "J Med Internet Res 2025;27:e77155): DL models by backbone class vs radiologists, "
        "rule in bayesdta.data.datasets.simulate_comparative. Illustrative parameters."
    )
    return df, t


def _write(folder: Path) -> None:  # pragma: no cover - regenerates the packaged files
    df, truth = simulate_osteoporosis_comparative(SEED)
    df.to_csv(folder / "osteoporosis_comparative.csv", index=False)
    (folder / "osteoporosis_comparative_truth.json").write_text(json.dumps(truth, indent=2) + "\n")


if __name__ == "__main__":  # pragma: no cover
    _write(Path(__file__).parent)
