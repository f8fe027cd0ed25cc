"""Bayesian comparison models vs lme4 ML (Laplace) on Arbyn 2013 ASC-US triage (HC2 vs RepC).

Reference: validation/glmer_comparative_ascus.csv (Rscript validation/glmer_comparative_ascus.R).
Fits bd.compare_tests with the package defaults (4 chains x 800 draws + 300 warm-up) and prints,
per model and parameter, the posterior mean and SD, the ML estimate and SE, the difference in ML
SEs, the Monte Carlo SE of the posterior mean, bulk ESS, and the fit time.

    PYTHONPATH=src python validation/compare_comparative_ascus.py [--seed 1] [--cores 2]
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
ASCUS = HERE.parent / "benchmarks" / "data" / "ascus.csv"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cores", type=int, default=None)
    ap.add_argument("--models", default="shared,deviations")
    args = ap.parse_args()
    ref = pd.read_csv(HERE / "glmer_comparative_ascus.csv")
    rows = []
    for model in args.models.split(","):
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", bd.SamplerWarning)
            f = bd.compare_tests(
                ASCUS, comparison=model, seed=args.seed, cores=args.cores, verbose=False
            )
        elapsed = time.perf_counter() - t0
        par = f.parameters()
        d = f.draws()
        ml = ref[ref["model"] == model].set_index("parameter")
        print(
            f"\n{model}: {elapsed:.1f} s (compile {f.sampler['timing']['compile_s']:.1f} s, "
            f"sample {f.sampler['timing']['sample_s']:.1f} s, attempts "
            f"{len(f.sampler['attempts'])}); diagnostics {f.diagnostics()}; "
            f"warnings {[str(w.message)[:60] for w in caught]}"
        )
        for o, short in (("sensitivity", "se"), ("specificity", "sp")):
            for j, t in enumerate(f.tests):
                x = d[f"mu_{o}"][:, j]
                p = par.loc[f"beta_{o}[{t}]"]
                r = ml.loc[f"mu_{short}[{t}]"]
                rows.append(
                    (
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
            i, k = f.tests.index("HC2"), f.tests.index("RepC")
            x = d[f"mu_{o}"][:, i] - d[f"mu_{o}"][:, k]
            r = ml.loc[f"logit_diff_{short}[HC2-RepC]"]
            rows.append(
                (
                    model,
                    f"logit_diff_{short}",
                    x.mean(),
                    x.std(),
                    r.estimate,
                    r.std_error,
                    (x.mean() - r.estimate) / r.std_error,
                    float("nan"),
                    float("nan"),
                )
            )
        for name, mlname in (
            ("tau_sensitivity", "tau_se"),
            ("tau_specificity", "tau_sp"),
            ("rho", "rho"),
        ):
            x = d[name]
            rows.append(
                (
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
        if model == "deviations":
            for name, mlname in (
                ("tau_within_sensitivity", "tau_within_se"),
                ("tau_within_specificity", "tau_within_sp"),
                ("rho_within", "rho_within"),
            ):
                x = d[name] if d[name].ndim == 1 else d[name][:, 0]
                rows.append(
                    (
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
    out = pd.DataFrame(
        rows,
        columns=[
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
