"""K = 2 joint multiclass model against the bivariate model (development check, issue 13).

For two classes the joint model's log-odds are -logit(se) and -logit(sp) with the bivariate
model's priors (Normal(0, 2), HalfNormal(1.5), LKJ(2)), so the two fits are the same model. This
fits both to the AUDIT-C data (14 studies; 4 chains x 1000 draws each) and prints, per
quantity, the posterior means, their difference in Monte Carlo standard errors
(sqrt(sd1^2/ess1 + sd2^2/ess2)) and the posterior SDs.

    PYTHONPATH=src python validation/multiclass_k2_agreement.py [--seed 3] [--data auditc]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

import bayesdta as bd


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--data", default="auditc")
    ap.add_argument("--cores", type=int, default=2)
    a = ap.parse_args()
    d = bd.load_example(a.data)
    rows = []
    for r in d.frame.itertuples():
        for t, p, c in (("pos", "pos", r.TP), ("pos", "neg", r.FN), ("neg", "pos", r.FP)):
            rows.append({"study": r.study, "true": t, "predicted": p, "count": c})
        rows.append({"study": r.study, "true": "neg", "predicted": "neg", "count": r.TN})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        t0 = time.perf_counter()
        fb = bd.fit(d, seed=a.seed, draws=1000, tune=1000, chains=4, cores=a.cores, verbose=False)
        t1 = time.perf_counter()
        fm = bd.fit_multiclass(pd.DataFrame(rows), seed=a.seed, cores=a.cores, verbose=False)
        t2 = time.perf_counter()
    print(f"bivariate {t1 - t0:.0f} s, multiclass {t2 - t1:.0f} s (wall, incl. compilation)")
    sb, sm = fb.summary(), fm.summary()
    for qb, qm in (
        ("sensitivity", "sensitivity[pos]"),
        ("specificity", "specificity[pos]"),
        ("tau_sensitivity", "tau[pos -> neg]"),
        ("tau_specificity", "tau[neg -> pos]"),
        ("rho", "rho[pos -> neg, neg -> pos]"),
    ):
        x, y = sb.loc[qb], sm.loc[qm]
        mc = np.sqrt(x["sd"] ** 2 / x["ess_bulk"] + y["sd"] ** 2 / y["ess_bulk"])
        print(
            f"{qb:16s} bivariate {x['mean']:.4f} (sd {x['sd']:.4f})  joint K=2 {y['mean']:.4f} "
            f"(sd {y['sd']:.4f})  difference / MCSE {(x['mean'] - y['mean']) / mc:+.2f}"
        )
    print("joint-model diagnostics:", {k: v for k, v in fm.diagnostics().items() if k != "worst"})


if __name__ == "__main__":
    main()
