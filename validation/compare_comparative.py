"""Bayesian comparison models vs lme4 ML (Laplace) on two real comparative DTA datasets.

ascus (Arbyn et al. 2013: HC2 vs repeat cytology, 10 paired-design studies) and smoking
(Patrick et al. 1994: SAQ vs IAQ, 26 studies, between-study comparison, several tables per
study). Reference: validation/glmer_comparative.csv (Rscript validation/glmer_comparative.R).
Fits bd.compare_tests with the package defaults (4 chains x 800 draws + 300 warm-up) and prints,
per model and parameter, the posterior mean and SD, the ML estimate and SE, the difference in ML
SEs, the Monte Carlo SE of the posterior mean, bulk ESS, and the fit time.

    PYTHONPATH=src python validation/compare_comparative.py [--seed 1] [--datasets ascus,smoking]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayesdta as bd

HERE = Path(__file__).resolve().parent
DATA = {
    "ascus": lambda: (HERE.parent / "benchmarks" / "data" / "ascus.csv", "test"),
    "smoking": lambda: (bd.load_example("smoking"), "type"),
}


def compare(dataset: str, model: str, seed: int, cores, ref: pd.DataFrame) -> list[tuple]:
    data, test = DATA[dataset]()
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bd.SamplerWarning)
        f = bd.compare_tests(
            data, test=test, comparison=model, seed=seed, cores=cores, verbose=False
        )
    elapsed = time.perf_counter() - t0
    par = f.parameters()
    d = f.draws()
    ml = ref[(ref["dataset"] == dataset) & (ref["model"] == model)].set_index("parameter")
    first = [a["diagnostics"] for a in f.sampler["attempts"]]
    print(
        f"\n{dataset} / {model}: {elapsed:.1f} s (last run: compile "
        f"{f.sampler['timing']['compile_s']:.1f} s, sample {f.sampler['timing']['sample_s']:.1f} s);"
        f" runs {len(first)}: "
        + "; ".join(
            f"div {x['divergences']}, R-hat {x['max_r_hat']:.3f}, ESS {x['min_ess_bulk']:.0f}/"
            f"{x['min_ess_tail']:.0f}"
            for x in first
        )
        + (f"; warnings {[str(w.message)[:60] for w in caught]}" if caught else "")
    )
    tests = sorted(f.tests)
    rows = []
    for o, short in (("sensitivity", "se"), ("specificity", "sp")):
        for t in tests:
            j = f.tests.index(t)
            x = d[f"mu_{o}"][:, j]
            p = par.loc[f"beta_{o}[{t}]"]
            r = ml.loc[f"mu_{short}[{t}]"]
            rows.append(
                (
                    dataset,
                    model,
                    f"mu_{short}[{t}]",
                    x.mean(),
                    x.std(),
                    r.estimate,
                    r.std_error,
                    (x.mean() - r.estimate) / r.std_error,
                    x.std() / np.sqrt(p.ess_bulk),
                    p.ess_bulk,
                )
            )
        a, b = f.tests.index(tests[0]), f.tests.index(tests[1])
        x = d[f"mu_{o}"][:, a] - d[f"mu_{o}"][:, b]
        r = ml.loc[f"logit_diff_{short}[{tests[0]}-{tests[1]}]"]
        rows.append(
            (
                dataset,
                model,
                f"logit_diff_{short}",
                x.mean(),
                x.std(),
                r.estimate,
                r.std_error,
                (x.mean() - r.estimate) / r.std_error,
                np.nan,
                np.nan,
            )
        )
    names = [("tau_sensitivity", "tau_se"), ("tau_specificity", "tau_sp"), ("rho", "rho")]
    if model == "deviations":
        names += [
            ("tau_within_sensitivity", "tau_within_se"),
            ("tau_within_specificity", "tau_within_sp"),
            ("rho_within", "rho_within"),
        ]
    for name, mlname in names:
        x = d[name] if d[name].ndim == 1 else d[name][:, 0]
        rows.append(
            (
                dataset,
                model,
                name,
                x.mean(),
                x.std(),
                ml.loc[mlname, "estimate"],
                np.nan,
                np.nan,
                np.nan,
                par.loc[name, "ess_bulk"],
            )
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cores", type=int, default=None)
    ap.add_argument("--datasets", default="ascus,smoking")
    ap.add_argument("--models", default="shared,deviations")
    args = ap.parse_args()
    ref = pd.read_csv(HERE / "glmer_comparative.csv")
    rows = []
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            rows += compare(dataset, model, args.seed, args.cores, ref)
    out = pd.DataFrame(
        rows,
        columns=[
            "dataset",
            "model",
            "parameter",
            "post_mean",
            "post_sd",
            "ml",
            "ml_se",
            "diff_in_ml_se",
            "mc_se",
            "ess_bulk",
        ],
    )
    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(out.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
