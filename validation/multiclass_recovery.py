"""Recovery and interval coverage of the joint multiclass model on simulated 3x3 reviews.

Replicates of the osteoporosis / osteopenia / normal design
(:mod:`bayesdta.data.datasets.simulate_multiclass`: class sizes of the review's studies,
default truth) at several numbers of studies; each replicate is fitted with the package
defaults (``bd.fit_multiclass``, escalation on). Reports, per number of studies, the coverage
of the 95% intervals of the 9 pooled confusion cells, the 3 one-vs-rest sensitivities and
specificities (at the truth's class prevalences of the design), the mean absolute error of the
pooled cells, and the sampler's trouble (divergences, R-hat, ESS, attempts).

    PYTHONPATH=src python validation/multiclass_recovery.py --studies 5 20 40 --reps 8

Writes validation/multiclass_recovery.csv (one row per replicate and quantity).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesdta as bd
from bayesdta.data.datasets.simulate_multiclass import (
    default_truth,
    multiclass_design,
    simulate_multiclass,
)


def true_one_vs_rest(conf: np.ndarray, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = conf.shape[0]
    se = np.diag(conf).copy()
    sp = np.empty(k)
    for i in range(k):
        o = [j for j in range(k) if j != i]
        sp[i] = np.sum(pi[o] * (1 - conf[o, i])) / pi[o].sum()
    return se, sp


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies", type=int, nargs="+", default=[5, 20, 40])
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).with_name("multiclass_recovery.csv")))
    a = ap.parse_args()
    truth = default_truth()
    conf = np.asarray(truth["confusion"])
    rows = []
    for n in a.studies:
        design = multiclass_design(n)
        counts = design[["n_osteoporosis", "n_osteopenia", "n_normal"]].to_numpy()
        pi = counts.sum(axis=0) / counts.sum()
        se_t, sp_t = true_one_vs_rest(conf, pi)
        for r in range(a.reps):
            table, _ = simulate_multiclass(counts, truth, seed=1000 * n + r)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", bd.SamplerWarning)
                f = bd.fit_multiclass(table, seed=r, prevalence=pi, cores=a.cores, verbose=False)
            el = time.perf_counter() - t0
            d = f.diagnostics()
            base = {
                "n_studies": n,
                "rep": r,
                "seconds": round(el, 1),
                "divergences": d["divergences"],
                "max_r_hat": d["max_r_hat"],
                "min_ess_bulk": d["min_ess_bulk"],
                "attempts": len(f.sampler.get("attempts", [])),
                "parameterization": f.sampler.get("parameterization"),
            }
            cf = f.confusion(0.95)
            for row, t in zip(cf.itertuples(), conf.ravel(), strict=True):
                rows.append(
                    {
                        **base,
                        "quantity": f"P({row.predicted}|{row.true})",
                        "truth": t,
                        "median": row.median,
                        "lower": row.lower,
                        "upper": row.upper,
                    }
                )
            cs = f.class_summary(0.95)
            for i, c in enumerate(f.classes):
                for q, tv in (("sensitivity", se_t[i]), ("specificity", sp_t[i])):
                    x = cs[(cs["class"] == c) & (cs["quantity"] == q)].iloc[0]
                    rows.append(
                        {
                            **base,
                            "quantity": f"{q}[{c}]",
                            "truth": tv,
                            "median": x["median"],
                            "lower": x["lower"],
                            "upper": x["upper"],
                        }
                    )
            print(f"n={n} rep={r}: {el:.0f} s, {base}", flush=True)
            pd.DataFrame(rows).to_csv(a.out, index=False)
    df = pd.DataFrame(rows)
    df["covered"] = (df["lower"] <= df["truth"]) & (df["truth"] <= df["upper"])
    df["abs_error"] = (df["median"] - df["truth"]).abs()
    df["kind"] = np.where(df["quantity"].str.startswith("P("), "cell", "one_vs_rest")
    print(
        df.groupby(["n_studies", "kind"])
        .agg(coverage=("covered", "mean"), mae=("abs_error", "mean"), n=("covered", "size"))
        .round(3)
        .to_string()
    )
    per_fit = df.drop_duplicates(["n_studies", "rep"])
    print(
        per_fit.groupby("n_studies")
        .agg(
            divergent_fits=("divergences", lambda x: int((x > 0).sum())),
            max_r_hat=("max_r_hat", "max"),
            min_ess=("min_ess_bulk", "min"),
            mean_attempts=("attempts", "mean"),
            median_seconds=("seconds", "median"),
        )
        .to_string()
    )


if __name__ == "__main__":
    main()
