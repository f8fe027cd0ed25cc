#!/usr/bin/env python
"""Compare the scipy AGHQ reference (tests/reference_glmm.py) with lme4::glmer.

Usage (from the repo root, after ``Rscript validation/glmer_reference.R``):

    python validation/compare_reference.py [--data-dir /work/shared/data]

Prints, for each dataset, glmer (Laplace, nAGQ=1, tight tolPwrss and default
tolPwrss) next to the scipy implementation with n_quad = 1 (Laplace), 15 and
25 (adaptive Gauss-Hermite), and the differences.  Development-only: the
bayesdta package never depends on R.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from reference_glmm import fit_bivariate_ml  # noqa: E402

COLS = ["mu_se", "mu_sp", "tau_se", "tau_sp", "rho", "loglik", "se_mu_se", "se_mu_sp"]
DATASETS = ["auditc", "dementia", "skin_tests"]


def run_scipy(data_dir: Path, n_quads=(1, 15, 25)) -> pd.DataFrame:
    rows = []
    for name in DATASETS:
        d = pd.read_csv(data_dir / f"{name}.csv")
        for q in n_quads:
            t0 = time.perf_counter()
            r = fit_bivariate_ml(d["TP"], d["FP"], d["FN"], d["TN"], n_quad=q)
            el = time.perf_counter() - t0
            rows.append(
                {
                    "dataset": name,
                    "method": f"scipy AGHQ q={q}",
                    **{c: r[c] for c in COLS},
                    "converged": r["converged"],
                    "time_sec": el,
                }
            )
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-dir", default="/work/shared/data", type=Path)
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    args = ap.parse_args(argv)

    fmt = (
        (lambda df: df.to_markdown(index=False, floatfmt=".6f"))
        if args.markdown
        else (lambda df: df.to_string(index=False, float_format=lambda v: f"{v:.6f}"))
    )
    try:  # to_markdown needs 'tabulate'
        fmt(pd.DataFrame({"a": [1.0]}))
    except ImportError:
        fmt = lambda df: df.to_string(index=False, float_format=lambda v: f"{v:.6f}")  # noqa: E731

    ref = pd.read_csv(HERE / "glmer_reference.csv").assign(method="glmer Laplace tolPwrss=1e-10")
    frames = [ref]
    p_def = HERE / "glmer_reference_default_tol.csv"
    ref_def = None
    if p_def.exists():
        ref_def = pd.read_csv(p_def).assign(method="glmer Laplace default tol")
        frames.append(ref_def)
    ours = run_scipy(args.data_dir)
    allfits = pd.concat(frames + [ours], ignore_index=True)

    print("== Estimates ==")
    print(fmt(allfits[["dataset", "method"] + COLS].sort_values(["dataset"], kind="stable")))

    print("\n== Differences (scipy - glmer tolPwrss=1e-10) ==")
    diffs = []
    for _, o in ours.iterrows():
        g = ref.loc[ref.dataset == o.dataset].iloc[0]
        diffs.append({"dataset": o.dataset, "method": o.method, **{c: o[c] - g[c] for c in COLS}})
    if ref_def is not None:
        for _, g0 in ref_def.iterrows():
            g = ref.loc[ref.dataset == g0.dataset].iloc[0]
            diffs.append(
                {
                    "dataset": g0.dataset,
                    "method": "glmer default tol",
                    **{c: g0[c] - g[c] for c in COLS},
                }
            )
    diffs = pd.DataFrame(diffs)
    print(
        diffs.sort_values(["dataset"], kind="stable").to_string(
            index=False, float_format=lambda v: f"{v:+.1e}"
        )
    )

    print("\n== Quadrature stability: max |q=25 - q=15| over parameters ==")
    for name in DATASETS:
        a = ours[(ours.dataset == name) & (ours.method == "scipy AGHQ q=15")].iloc[0]
        b = ours[(ours.dataset == name) & (ours.method == "scipy AGHQ q=25")].iloc[0]
        print(f"{name:12s} {max(abs(a[c] - b[c]) for c in COLS):.2e}")

    print("\n== scipy timings (s) ==")
    print(fmt(ours[["dataset", "method", "converged", "time_sec"]]))

    lap = diffs[diffs.method == "scipy AGHQ q=1"]
    worst = float(np.max(np.abs(lap[COLS].to_numpy())))
    print(f"\nmax |scipy Laplace (q=1) - glmer Laplace| = {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
