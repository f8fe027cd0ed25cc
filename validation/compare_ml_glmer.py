#!/usr/bin/env python
"""Compare bayesdta.fit_ml (Laplace, n_quad=1) with lme4::glmer (validation/ml_glmer_reference.csv).

Usage (from the repo root, after ``Rscript validation/ml_glmer_reference.R``)::

    PYTHONPATH=src python validation/compare_ml_glmer.py

Prints, per case, the largest absolute difference over the coefficients, SDs, correlation,
log-likelihood and standard errors, the fit times, and the largest difference overall.
Development-only: the bayesdta package never depends on R.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesdta as bd
from bayesdta.inference.ml import fit_ml

ROOT = Path(__file__).resolve().parents[1]
REF = ROOT / "validation" / "ml_glmer_reference.csv"


def load(dataset: str) -> pd.DataFrame | bd.DTAData:
    bench = ROOT / "benchmarks" / "data" / f"{dataset}.csv"
    if bench.exists():
        return pd.read_csv(bench)
    return bd.load_example(dataset)


def ours(fit) -> dict[str, float]:
    s = fit.summary()
    out = {}
    for o in ("sensitivity", "specificity"):
        for c in fit.design.columns[o]:
            name = f"beta_{o}[{c}]"
            row = f"mu_{o}" if c == "Intercept" else name
            out[name] = float(s.loc[row, "estimate"])
            out["se_" + name] = float(s.loc[row, "std_error"])
    for k in ("tau_sensitivity", "tau_specificity", "rho"):
        out[k] = float(s.loc[k, "estimate"])
    out["loglik"] = fit.loglik
    return out


def compare(n_quad: int = 1) -> pd.DataFrame:
    ref = pd.read_csv(REF)
    rows = []
    for case, g in ref.groupby("case", sort=False):
        r = dict(zip(g["quantity"], g["value"], strict=True))
        first = g.iloc[0]
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = fit_ml(
                load(first["dataset"]),
                formula_sensitivity=first["formula_sensitivity"],
                formula_specificity=first["formula_specificity"],
                levels=2,
                n_quad=n_quad,
            )
        el = time.perf_counter() - t0
        o = ours(f)
        est = [k for k in o if not k.startswith("se_") and k in r and np.isfinite(o[k])]
        ses = [k for k in o if k.startswith("se_") and k in r]
        d_est = {k: o[k] - r[k] for k in est}
        worst = max(d_est, key=lambda k: abs(d_est[k]))
        d_se = max(abs(o[k] - r[k]) for k in ses)
        rows.append(
            {
                "case": case,
                "glmer_singular": bool(r["singular"]),
                "boundary": ", ".join(f.boundary),
                "max_abs_diff": abs(d_est[worst]),
                "worst": worst,
                "loglik_diff": o["loglik"] - r["loglik"],
                "max_abs_diff_se": d_se,
                "fit_s": round(el, 2),
                "glmer_s": r["time_sec"],
            }
        )
    return pd.DataFrame(rows)


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    df = compare()
    print(df.to_string(index=False, float_format=lambda v: f"{v:.2e}"))
    interior = df[df.boundary == ""]
    print(
        f"\ninterior fits: max |fit_ml - glmer| over estimates {interior.max_abs_diff.max():.1e}, "
        f"over SEs {interior.max_abs_diff_se.max():.1e}"
    )
