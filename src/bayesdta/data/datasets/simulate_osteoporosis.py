"""Simulated osteoporosis deep-learning DTA data on the design of a published review.

Wang A, Ma Z, Wang T, et al. Deep learning-assisted automated diagnosis of osteoporosis based on
computed tomography scans: systematic review and meta-analysis. J Med Internet Res
2025;27:e77155 (doi:10.2196/77155). The review pooled 39 osteoporosis-vs-rest models from 20
studies (sensitivity 0.88, specificity 0.94). Its per-study 2x2 tables are not published, so
this module SIMULATES the counts on the published study design (``osteoporosis_dl_studies.csv``,
shipped next to this file) from exactly the model that :mod:`bayesdta` fits:

.. math::

    \\theta_r = (\\mathrm{logit}\\,se_r, \\mathrm{logit}\\,sp_r) = X_r\\beta + u_{s(r)} + v_r,
    \\quad u_s \\sim MVN_2(0, \\Sigma_{between}), \\quad v_r \\sim MVN_2(0, \\Sigma_{within}) \\\\
    TP_r \\sim Bin(n1_r, \\mathrm{logit}^{-1}\\theta_{r1}), \\quad
    TN_r \\sim Bin(n0_r, \\mathrm{logit}^{-1}\\theta_{r2})

Design allocation rule (deterministic; gives 39 rows, 15 studies with 2-4 rows, 5 with 1 row):

1. Only the 20 studies with ``in_meta_analysis == 1`` are used, in file order.
2. Every study gets one row per (test set x network family). Test sets come from ``test_sets``
   (``kind:size`` separated by ``;``; ``internal`` -> validation "internal", ``external`` or
   ``temporal`` -> "external"). Network families: "ResNet" and "DenseNet" separately when a
   study uses both (``uses_resnet == uses_densenet == 1``), else "ResNet" if ``uses_resnet``,
   "DenseNet" if ``uses_densenet``, otherwise "Other". This gives 31 rows (7 multi-row studies).
3. A study left with a single row gets a second model row when its design implies one: it
   compared several algorithms (``network`` "Multiple algorithms" or "Joint framework"), it lists
   several scan planes for a 2D model (one model per plane), or its test set has at least 150
   cases (assumed to report a second model variant, e.g. another input configuration). The
   second row of a "Multiple algorithms" study has backbone "Other" (the comparator), otherwise
   the same backbone. This adds 8 rows -> 39 rows, 15 multi-row studies, 5 single-row studies.

Row covariates: ``reference_standard`` "CT" for QCT/HU, "DXA" for DXA; ``scan_plane`` "axial"
or "sagittal/coronal" (per-plane rows of 2D multi-plane studies take the planes in order; other
rows are "axial" only if every listed plane is axial); ``risk_of_bias`` "low" if rated low,
"high" if rated high or unclear; ``dimensionality`` as published; ``n_test`` the test-set size.

Prevalence: the true osteoporosis prevalence of each test set is part of the fixed design (the
same for every seed), drawn once from Beta(12, 28) (mean 0.30, SD 0.07; CT
opportunistic-screening populations), clipped to [0.15, 0.50] and rounded to 3 decimals, with
generator seed :data:`DESIGN_SEED`. ``n_diseased = floor(n_test * prevalence + 0.5)`` clipped to
``[1, n_test - 1]``; rows sharing a test set share it.

Run ``python -m bayesdta.datasets.simulate_osteoporosis`` to regenerate
``osteoporosis_dl.csv`` and ``osteoporosis_dl_truth.json`` (seed 2025).
"""

from __future__ import annotations

import copy
import functools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "DEFAULT_SEED",
    "DESIGN_SEED",
    "default_truth",
    "osteoporosis_design",
    "simulate_osteoporosis",
]

HERE = Path(__file__).resolve().parent
STUDIES_FILE = HERE / "osteoporosis_dl_studies.csv"
DATA_FILE = HERE / "osteoporosis_dl.csv"
TRUTH_FILE = HERE / "osteoporosis_dl_truth.json"

DEFAULT_SEED = 2025
DESIGN_SEED = 20250  # fixed seed of the prevalence draw (design, not a replicate)
N_ROWS_PUBLISHED = 39

PREVALENCE_BETA = (12.0, 28.0)
PREVALENCE_RANGE = (0.15, 0.50)
SECOND_MODEL_MIN_TEST = 150
MULTI_MODEL_NETWORKS = ("Multiple algorithms", "Joint framework")

TARGET_SENSITIVITY = 0.88
TARGET_SPECIFICITY = 0.94

OUTCOMES = ("sensitivity", "specificity")

# categorical covariates: levels with the reference level first (treatment coding)
LEVELS: dict[str, list[str]] = {
    "backbone": ["ResNet", "DenseNet", "Other"],
    "reference_standard": ["DXA", "CT"],
    "dimensionality": ["2D", "3D"],
    "validation": ["internal", "external"],
    "scan_plane": ["axial", "sagittal/coronal"],
    "risk_of_bias": ["low", "high"],
}
REFERENCE_LEVELS = {k: v[0] for k, v in LEVELS.items()}
FORMULA_VARIABLES = ("backbone", "reference_standard", "dimensionality", "validation")

# default true effects (logit scale), formulaic treatment-contrast column names
DEFAULT_EFFECTS: dict[str, dict[str, float]] = {
    "sensitivity": {
        "backbone[T.DenseNet]": 0.6,
        "backbone[T.Other]": 0.0,
        "reference_standard[T.CT]": 0.5,
        "dimensionality[T.3D]": 0.4,
        "validation[T.external]": -0.5,
        "scan_plane[T.sagittal/coronal]": 0.0,
        "risk_of_bias[T.high]": 0.0,
    },
    "specificity": {
        "backbone[T.DenseNet]": 0.5,
        "backbone[T.Other]": 0.0,
        "reference_standard[T.CT]": 0.7,
        "dimensionality[T.3D]": 0.3,
        "validation[T.external]": -0.4,
        "scan_plane[T.sagittal/coronal]": 0.0,
        "risk_of_bias[T.high]": 0.0,
    },
}
COLUMNS = list(DEFAULT_EFFECTS["sensitivity"])

DEFAULT_SDS = {
    "tau_sensitivity": 0.6,
    "tau_specificity": 0.7,
    "rho": -0.3,
    "tau_within_sensitivity": 0.3,
    "tau_within_specificity": 0.35,
    "rho_within": 0.2,
}

NOTE = (
    "SIMULATED data. The per-study 2x2 counts of Wang et al. (J Med Internet Res "
    "2025;27:e77155) are not public, so TP/FP/FN/TN are simulated on the published design "
    "(20 meta-analysed studies, 39 osteoporosis-vs-rest models; test sets, networks, reference "
    "standard, dimensionality, scan plane and risk of bias from the review) from the "
    "three-level bivariate binomial model with the parameters in this file. Do not cite the "
    "counts as study results."
)
SOURCE = (
    "Wang A, Ma Z, Wang T, et al. Deep learning-assisted automated diagnosis of osteoporosis "
    "based on computed tomography scans: systematic review and meta-analysis. J Med Internet Res "
    "2025;27:e77155. doi:10.2196/77155"
)
DESIGN_RULE = (
    "20 studies with in_meta_analysis == 1; one row per (test set x network family), families "
    "ResNet and DenseNet separately when a study uses both, else ResNet / DenseNet / Other; a "
    "study left with one row gets a second model row if network is 'Multiple algorithms' or "
    "'Joint framework' (second row backbone Other for 'Multiple algorithms'), if it lists "
    "several scan planes for a 2D model (one row per plane), or if its test set has >= 150 "
    "cases. Result: 39 rows, 15 studies with 2-4 rows, 5 with 1 row."
)
PREVALENCE_RULE = (
    "per test set, fixed across seeds: Beta(12, 28) (mean 0.30, SD 0.07) drawn with seed "
    f"{DESIGN_SEED}, clipped to [0.15, 0.50], rounded to 3 decimals; "
    "n_diseased = floor(n_test * prevalence + 0.5) clipped to [1, n_test - 1]"
)

TABLE_COLUMNS = [
    "study",
    "model",
    "TP",
    "FP",
    "FN",
    "TN",
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

_PARAMETER_KEYS = {"coefficients", "sensitivity", "specificity", *DEFAULT_SDS}
_DERIVED_KEYS = {
    "note",
    "source",
    "simulated",
    "seed",
    "n_rows",
    "n_studies",
    "formula",
    "formula_all",
    "reference_levels",
    "model_spec",
    "levels",
    "intercept_sensitivity",
    "intercept_specificity",
    "coefficient_table",
    "mean_linear_predictor_sensitivity",
    "mean_linear_predictor_specificity",
    "design_rule",
    "prevalence_rule",
    "study_effects",
    "row_effects",
}


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def n_diseased(n_test: np.ndarray, prevalence: np.ndarray) -> np.ndarray:
    """Number of diseased participants of a test set (at least 1 of each class)."""
    n_test = np.asarray(n_test, dtype=np.int64)
    n1 = np.floor(n_test * np.asarray(prevalence, dtype=float) + 0.5).astype(np.int64)
    return np.clip(n1, 1, n_test - 1)


# ------------------------------------------------------------------------------ design
def _parse_test_sets(text: str) -> list[tuple[str, int]]:
    out = []
    for part in str(text).split(";"):
        kind, size = part.strip().split(":")
        kind = kind.strip().lower()
        if kind not in ("internal", "external", "temporal"):
            raise ValueError(f"unknown test-set kind {kind!r} in {text!r}")
        out.append(("internal" if kind == "internal" else "external", int(size)))
    return out


def _plane(plane: str) -> str:
    return "axial" if plane.strip().lower() == "axial" else "sagittal/coronal"


@functools.lru_cache(maxsize=1)
def _published_design() -> pd.DataFrame:
    studies = pd.read_csv(STUDIES_FILE, keep_default_na=False)
    studies = studies[studies["in_meta_analysis"].astype(int) == 1]
    rows: list[dict[str, Any]] = []
    n_sets = 0
    for _, s in studies.iterrows():
        sets = _parse_test_sets(s["test_sets"])
        if int(s["uses_resnet"]) and int(s["uses_densenet"]):
            families = ["ResNet", "DenseNet"]
        elif int(s["uses_resnet"]):
            families = ["ResNet"]
        elif int(s["uses_densenet"]):
            families = ["DenseNet"]
        else:
            families = ["Other"]
        planes = [p for p in str(s["scan_plane"]).split(";") if p.strip()]
        study_plane = "axial" if all(_plane(p) == "axial" for p in planes) else "sagittal/coronal"
        # (backbone, test-set index, scan plane)
        units = [(fam, i, study_plane) for i in range(len(sets)) for fam in families]
        if len(units) == 1:
            multi_plane_2d = len(planes) > 1 and s["dimensionality"] == "2D"
            if (
                s["network"] in MULTI_MODEL_NETWORKS
                or multi_plane_2d
                or sets[0][1] >= SECOND_MODEL_MIN_TEST
            ):
                fam = units[0][0]
                second = "Other" if s["network"] == "Multiple algorithms" else fam
                if multi_plane_2d:
                    units = [(fam, 0, _plane(planes[0])), (second, 0, _plane(planes[1]))]
                else:
                    units = [(fam, 0, study_plane), (second, 0, study_plane)]
        ref = str(s["reference_standard"]).upper()
        if ref in ("QCT", "HU"):
            reference = "CT"
        elif ref == "DXA":
            reference = "DXA"
        else:
            raise ValueError(f"unknown reference standard {ref!r} ({s['study']})")
        rob = "low" if str(s["risk_of_bias"]).lower() == "low" else "high"
        counter: dict[tuple[str, str], int] = {}
        for fam, i, plane in units:
            kind, size = sets[i]
            counter[(fam, kind)] = counter.get((fam, kind), 0) + 1
            rows.append(
                {
                    "study": s["study"],
                    "model": f"{fam}-{kind}-{counter[(fam, kind)]}",
                    "backbone": fam,
                    "reference_standard": reference,
                    "dimensionality": s["dimensionality"],
                    "validation": kind,
                    "scan_plane": plane,
                    "risk_of_bias": rob,
                    "n_test": size,
                    "_test_set": n_sets + i,
                }
            )
        n_sets += len(sets)
    design = pd.DataFrame(rows)
    # prevalence: one fixed draw per test set (part of the design, same for every seed)
    rng = np.random.default_rng(DESIGN_SEED)
    prev = rng.beta(*PREVALENCE_BETA, size=n_sets)
    prev = np.round(np.clip(prev, *PREVALENCE_RANGE), 3)
    design["prevalence"] = prev[design["_test_set"].to_numpy()]
    return design.drop(columns="_test_set")


def osteoporosis_design(n_rows: int = N_ROWS_PUBLISHED) -> pd.DataFrame:
    """The fixed design: one row per model with covariates, test-set size and prevalence.

    ``n_rows`` other than 39: the first ``n_rows`` rows when smaller; when larger, the design is
    repeated (copies ``k >= 2`` become new studies named ``"<study> (rep k)"``) and truncated.
    Columns ``n_diseased`` / ``n_nondiseased`` are added.
    """
    n_rows = int(n_rows)
    if n_rows < 1:
        raise ValueError(f"n_rows must be at least 1, got {n_rows}")
    base = _published_design()
    parts = []
    for k in range(-(-n_rows // len(base))):
        part = base.copy()
        if k:
            part["study"] = part["study"] + f" (rep {k + 1})"
        parts.append(part)
    design = pd.concat(parts, ignore_index=True).iloc[:n_rows].reset_index(drop=True)
    design["n_diseased"] = n_diseased(design["n_test"], design["prevalence"])
    design["n_nondiseased"] = design["n_test"] - design["n_diseased"]
    return design


def _design_matrix(design: pd.DataFrame) -> np.ndarray:
    """Treatment-coded columns (without intercept) in the order of ``COLUMNS``."""
    cols = []
    for name in COLUMNS:
        var, level = name.split("[T.")
        cols.append((design[var].to_numpy() == level[:-1]).astype(float))
    return np.column_stack(cols)


# ------------------------------------------------------------------------------ truth
def _resolve_truth(truth: dict | None) -> dict[str, Any]:
    """Merge user parameters over the defaults and derive intercepts and pooled values."""
    truth = copy.deepcopy(truth or {})
    unknown = set(truth) - _PARAMETER_KEYS - _DERIVED_KEYS
    if unknown:
        raise ValueError(f"unknown truth keys {sorted(unknown)}; parameters: {_PARAMETER_KEYS}")
    params: dict[str, Any] = dict(DEFAULT_SDS)
    params.update({k: float(truth[k]) for k in DEFAULT_SDS if k in truth})
    for k in (
        "tau_sensitivity",
        "tau_specificity",
        "tau_within_sensitivity",
        "tau_within_specificity",
    ):
        if not params[k] >= 0:
            raise ValueError(f"{k} must be >= 0, got {params[k]}")
    for k in ("rho", "rho_within"):
        if not -1 < params[k] < 1:
            raise ValueError(f"{k} must be in (-1, 1), got {params[k]}")
    user_coefs = truth.get("coefficients", {}) or {}
    bad = set(user_coefs) - set(OUTCOMES)
    if bad:
        raise ValueError(f"coefficients must be keyed by {OUTCOMES}, got {sorted(bad)}")
    # the intercept is solved on the published 39-row design so that it does not depend on n_rows
    x_pub = _design_matrix(osteoporosis_design())
    coefficients: dict[str, dict[str, float]] = {}
    for outcome in OUTCOMES:
        given = dict(user_coefs.get(outcome, {}))
        if outcome in user_coefs:
            effects = {c: float(given.get(c, 0.0)) for c in COLUMNS}
        else:
            effects = dict(DEFAULT_EFFECTS[outcome])
        extra = set(given) - set(COLUMNS) - {"Intercept"}
        if extra:
            raise ValueError(f"unknown {outcome} coefficients {sorted(extra)}; known: {COLUMNS}")
        beta = np.array([effects[c] for c in COLUMNS])
        if "Intercept" in given:
            intercept = float(given["Intercept"])
        else:
            target = float(
                truth.get(
                    outcome, TARGET_SENSITIVITY if outcome == "sensitivity" else TARGET_SPECIFICITY
                )
            )
            if not 0 < target < 1:
                raise ValueError(f"{outcome} target must be in (0, 1), got {target}")
            intercept = round(_logit(target) - float(np.mean(x_pub @ beta)), 4)
        coefficients[outcome] = {"Intercept": intercept, **effects}
    params["coefficients"] = coefficients
    return params


def _describe_truth(params: dict[str, Any], design: pd.DataFrame, seed: int) -> dict[str, Any]:
    x = _design_matrix(design)
    coefs = params["coefficients"]
    used = [
        v
        for v in LEVELS
        if v in FORMULA_VARIABLES
        or any(coefs[o][c] != 0 for o in OUTCOMES for c in COLUMNS if c.startswith(v + "["))
    ]
    out: dict[str, Any] = {
        "note": NOTE,
        "source": SOURCE,
        "simulated": True,
        "seed": int(seed),
        "n_rows": int(len(design)),
        "n_studies": int(design["study"].nunique()),
        "formula": "~ " + " + ".join(used),
        "formula_all": "~ " + " + ".join(LEVELS),
        "reference_levels": dict(REFERENCE_LEVELS),
        # usable as bayesdta.model.ModelSpec(**truth["model_spec"]) so the fitted coefficients
        # have the reference levels (and formulaic column names) of the truth
        "model_spec": {
            "formula": "~ " + " + ".join(used),
            "reference": {v: REFERENCE_LEVELS[v] for v in used},
        },
        "levels": {k: list(v) for k, v in LEVELS.items()},
        "intercept_sensitivity": coefs["sensitivity"]["Intercept"],
        "intercept_specificity": coefs["specificity"]["Intercept"],
        "coefficients": coefs,
        "coefficient_table": [
            {
                "name": c.replace("[T.", "["),
                "column": c,
                "variable": c.split("[")[0],
                "level": c.split("[T.")[1][:-1],
                "reference": REFERENCE_LEVELS[c.split("[")[0]],
                "sensitivity": coefs["sensitivity"][c],
                "specificity": coefs["specificity"][c],
            }
            for c in COLUMNS
        ],
    }
    for k in DEFAULT_SDS:
        out[k] = params[k]
    for outcome in OUTCOMES:
        beta = np.array([coefs[outcome][c] for c in COLUMNS])
        lp = float(np.mean(coefs[outcome]["Intercept"] + x @ beta))
        out[f"mean_linear_predictor_{outcome}"] = round(lp, 6)
        out[outcome] = round(_expit(lp), 6)
    out["design_rule"] = DESIGN_RULE
    out["prevalence_rule"] = PREVALENCE_RULE
    return out


def default_truth() -> dict[str, Any]:
    """The default true parameters (without the realized random effects)."""
    design = osteoporosis_design()
    return _describe_truth(_resolve_truth(None), design, DEFAULT_SEED)


# ------------------------------------------------------------------------------ simulate
def _cholesky(sd1: float, sd2: float, rho: float) -> np.ndarray:
    return np.array([[sd1, 0.0], [rho * sd2, math.sqrt(1.0 - rho**2) * sd2]])


def simulate_osteoporosis(
    *, seed: int = DEFAULT_SEED, truth: dict | None = None, n_rows: int = N_ROWS_PUBLISHED
) -> tuple[pd.DataFrame, dict]:
    """Simulate the osteoporosis DTA table on the published design.

    Parameters
    ----------
    seed : int
        Seed of the random effects and binomial counts (design and prevalence do not change).
    truth : dict, optional
        Parameters overriding the defaults: ``coefficients`` (``{"sensitivity": {column:
        value}, "specificity": {...}}`` with formulaic column names such as
        ``"backbone[T.DenseNet]"``; omitted columns are 0; without ``"Intercept"`` the
        intercept is solved so that the pooled value equals ``truth["sensitivity"]`` /
        ``truth["specificity"]`` (default 0.88 / 0.94) on the 39-row design), and any of
        ``tau_sensitivity``, ``tau_specificity``, ``rho``, ``tau_within_sensitivity``,
        ``tau_within_specificity``, ``rho_within``. A truth dict returned by this function
        (or read from ``osteoporosis_dl_truth.json``) is accepted and reproduces the data.
    n_rows : int
        Number of rows; 39 is the published design (see :func:`osteoporosis_design`).

    Returns
    -------
    table : pandas.DataFrame
        Columns ``study``, ``model``, ``TP``, ``FP``, ``FN``, ``TN``, ``backbone``,
        ``reference_standard``, ``dimensionality``, ``validation``, ``scan_plane``,
        ``risk_of_bias``, ``n_test``, ``prevalence``, ``simulated``.
    truth : dict
        The parameters used, the pooled sensitivity/specificity (inverse logit of the mean
        linear predictor over the rows) and the realized random effects.
    """
    design = osteoporosis_design(n_rows)
    params = _resolve_truth(truth)
    rng = np.random.default_rng(int(seed))

    studies = pd.unique(design["study"])
    study_index = pd.Categorical(design["study"], categories=studies).codes
    l_between = _cholesky(params["tau_sensitivity"], params["tau_specificity"], params["rho"])
    l_within = _cholesky(
        params["tau_within_sensitivity"], params["tau_within_specificity"], params["rho_within"]
    )
    u = rng.standard_normal((len(studies), 2)) @ l_between.T
    v = rng.standard_normal((len(design), 2)) @ l_within.T

    x = _design_matrix(design)
    coefs = params["coefficients"]
    lp = np.column_stack(
        [coefs[o]["Intercept"] + x @ np.array([coefs[o][c] for c in COLUMNS]) for o in OUTCOMES]
    )
    theta = lp + u[study_index] + v
    n1 = design["n_diseased"].to_numpy(np.int64)
    n0 = design["n_nondiseased"].to_numpy(np.int64)
    tp = rng.binomial(n1, 1.0 / (1.0 + np.exp(-theta[:, 0])))
    tn = rng.binomial(n0, 1.0 / (1.0 + np.exp(-theta[:, 1])))

    table = pd.DataFrame(
        {
            "study": design["study"],
            "model": design["model"],
            "TP": tp.astype(np.int64),
            "FP": (n0 - tn).astype(np.int64),
            "FN": (n1 - tp).astype(np.int64),
            "TN": tn.astype(np.int64),
        }
    )
    for col in TABLE_COLUMNS[6:-1]:
        table[col] = design[col].to_numpy()
    table["simulated"] = True
    table = table[TABLE_COLUMNS]

    out = _describe_truth(params, design, seed)
    out["study_effects"] = {
        str(s): {"sensitivity": round(float(u[i, 0]), 6), "specificity": round(float(u[i, 1]), 6)}
        for i, s in enumerate(studies)
    }
    out["row_effects"] = [
        {
            "study": str(design["study"].iat[r]),
            "model": str(design["model"].iat[r]),
            "sensitivity": round(float(v[r, 0]), 6),
            "specificity": round(float(v[r, 1]), 6),
        }
        for r in range(len(design))
    ]
    return table, out


def write_default(directory: Path | str | None = None) -> tuple[Path, Path]:
    """Regenerate ``osteoporosis_dl.csv`` and ``osteoporosis_dl_truth.json`` (seed 2025)."""
    directory = Path(directory) if directory is not None else HERE
    table, truth = simulate_osteoporosis(seed=DEFAULT_SEED)
    data_path = directory / DATA_FILE.name
    truth_path = directory / TRUTH_FILE.name
    table.to_csv(data_path, index=False, lineterminator="\n")
    truth_path.write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return data_path, truth_path


if __name__ == "__main__":
    for path in write_default():
        print(f"wrote {path}")
