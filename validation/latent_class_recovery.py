"""Recovery of the latent-class model on simulated reviews, and the perfect-reference bias.

Replicates of the worked example's design (39 tables of the osteoporosis review: sizes,
prevalences, 24 CT / 15 DXA references) are simulated from the latent-class model with the
truth of ``bd.load_truth("osteoporosis_latent_class")`` (CT perfect, DXA imperfect),
each fitted by ``bd.fit_latent_class`` (the worked example's priors) and by the bivariate model
(two levels, reference taken as perfect). Prints per quantity the mean error, RMSE and
95% interval coverage of both.

    python validation/latent_class_recovery.py 20      # replicates (default 10)
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandas as pd

import bayesdta as bd
from bayesdta.families.latent_class import simulate_latent_class

TRUTH = bd.load_truth("osteoporosis_latent_class")
PRIORS = {"DXA": {"sensitivity": "Beta(15, 5)", "specificity": "Beta(45, 5)"}, "CT": "perfect"}


def replicate(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    ridx = (frame["reference_standard"] == "DXA").to_numpy().astype(int)  # CT 0, DXA 1
    n = frame[["TP", "FP", "FN", "TN"]].sum(axis=1).to_numpy()
    ref = TRUTH["reference"]
    sim = simulate_latent_class(
        n,
        ridx,
        mu_sensitivity=TRUTH["mu_sensitivity"],
        mu_specificity=TRUTH["mu_specificity"],
        tau_sensitivity=TRUTH["tau_sensitivity"],
        tau_specificity=TRUTH["tau_specificity"],
        rho=TRUTH["rho"],
        reference_sensitivity=[ref["CT"]["sensitivity"], ref["DXA"]["sensitivity"]],
        reference_specificity=[ref["CT"]["specificity"], ref["DXA"]["specificity"]],
        prevalence=np.asarray(TRUTH["prevalence"]),
        seed=seed,
    )
    out = frame[["study", "model", "reference_standard"]].copy()
    for c in ("TP", "FP", "FN", "TN"):
        out[c] = sim[c]
    return out


def main(n_rep: int) -> None:
    frame = bd.load_example("osteoporosis_latent_class").frame
    truth = {
        "sensitivity": TRUTH["sensitivity"],
        "specificity": TRUTH["specificity"],
        "reference_sensitivity[DXA]": TRUTH["reference"]["DXA"]["sensitivity"],
        "reference_specificity[DXA]": TRUTH["reference"]["DXA"]["specificity"],
    }
    rows = []
    for r in range(n_rep):
        df = replicate(frame, 1000 + r)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lc = bd.fit_latent_class(df, reference_priors=PRIORS, seed=r, verbose=False)
            t1 = time.perf_counter()
            nv = bd.fit(df, levels=2, seed=r, verbose=False)
        s, ns = lc.summary(), nv.summary(quantities=["sensitivity", "specificity"])
        d = lc.diagnostics()
        for q, v in truth.items():
            rows.append(
                {
                    "rep": r,
                    "model": "latent_class",
                    "quantity": q,
                    "mean": s.loc[q, "mean"],
                    "covered": s.loc[q, "lower"] < v < s.loc[q, "upper"],
                    "truth": v,
                    "fit_s": t1 - t0,
                    "min_ess_bulk": d["min_ess_bulk"],
                    "divergences": d["divergences"],
                }
            )
            if q in ns.index:
                rows.append(
                    {
                        "rep": r,
                        "model": "perfect_reference",
                        "quantity": q,
                        "mean": ns.loc[q, "mean"],
                        "covered": ns.loc[q, "lower"] < v < ns.loc[q, "upper"],
                        "truth": v,
                    }
                )
        print(
            f"replicate {r}: latent-class fit {t1 - t0:.1f} s, min bulk ESS "
            f"{d['min_ess_bulk']:.0f}, divergences {d['divergences']}",
            flush=True,
        )
    res = pd.DataFrame(rows)
    res["error"] = res["mean"] - res["truth"]
    table = res.groupby(["model", "quantity"]).agg(
        mean_error=("error", "mean"),
        rmse=("error", lambda e: float(np.sqrt(np.mean(e**2)))),
        coverage=("covered", "mean"),
        n=("error", "size"),
    )
    with pd.option_context("display.width", 140):
        print(table.round(4))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
