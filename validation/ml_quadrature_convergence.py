#!/usr/bin/env python
"""How the ML estimates of bd.fit_ml move with the number of Gauss-Hermite points.

Usage (from the repo root)::

    PYTHONPATH=src python validation/ml_quadrature_convergence.py

For each dataset, the largest absolute change of (mu_se, mu_sp, tau_se, tau_sp, rho) against
n_quad = 25, and the fit time (docs/ml_companion.md).
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pandas as pd

import bayesdta as bd

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["mu_sensitivity", "mu_specificity", "tau_sensitivity", "tau_specificity", "rho"]


def main() -> None:
    warnings.simplefilter("ignore", bd.MLWarning)
    sets = {
        "skin_tests": bd.load_example("skin_tests"),
        "dementia": bd.load_example("dementia"),
        "auditc": bd.load_example("auditc"),
        "telomerase": pd.read_csv(ROOT / "benchmarks" / "data" / "telomerase.csv"),
    }
    for name, d in sets.items():
        res = {}
        for q in (1, 5, 7, 15, 25):
            t = time.perf_counter()
            f = bd.fit_ml(d, n_quad=q)
            res[q] = (f, time.perf_counter() - t)
        ref = res[25][0]
        line = [f"{name:10s}"]
        for q, (f, el) in res.items():
            dmax = max(abs(f.estimates[k] - ref.estimates[k]) for k in KEYS)
            line.append(f"q={q}: {dmax:.1e} ({el:.2f} s)")
        print(" | ".join(line))


if __name__ == "__main__":
    main()
