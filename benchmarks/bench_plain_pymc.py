"""The alternative a user would write by hand: a plain PyMC bivariate model with pm.sample.

Same data as bench_fit.py (40 simulated studies). Standard textbook code: LKJCholeskyCov,
non-centered study effects, Binomial likelihoods, PyMC's default NUTS (4 chains, 1000+1000).
Run: python benchmarks/bench_plain_pymc.py
"""

from __future__ import annotations

import json
import time
import warnings

import arviz as az
import pymc as pm
from bench_fit import simulate

warnings.simplefilter("ignore")


def main() -> None:
    for rep, seed in enumerate([0, 100]):
        df = simulate(seed)
        n1 = (df.TP + df.FN).to_numpy()
        n0 = (df.TN + df.FP).to_numpy()
        t0 = time.perf_counter()
        with pm.Model():
            mu = pm.Normal("mu", 0, 2, shape=2)
            chol, _, sd = pm.LKJCholeskyCov(
                "chol", n=2, eta=2.0, sd_dist=pm.HalfNormal.dist(1.5), compute_corr=True
            )
            z = pm.Normal("z", 0, 1, shape=(len(df), 2))
            theta = mu + z @ chol.T
            pm.Binomial("tp", n=n1, logit_p=theta[:, 0], observed=df.TP.to_numpy())
            pm.Binomial("tn", n=n0, logit_p=theta[:, 1], observed=df.TN.to_numpy())
            idata = pm.sample(random_seed=1, progressbar=False, compute_convergence_checks=False)
        wall = time.perf_counter() - t0
        ess = az.ess(idata, var_names=["mu", "chol_stds", "chol_corr"])
        min_ess = min(float(ess[v].min()) for v in ["mu", "chol_stds"])
        div = int(idata.sample_stats.diverging.sum())
        print(
            json.dumps(
                {
                    "kind": "cold" if rep == 0 else "second",
                    "wall_s": round(wall, 2),
                    "min_ess_bulk": round(min_ess),
                    "divergences": div,
                }
            )
        )


if __name__ == "__main__":
    main()
