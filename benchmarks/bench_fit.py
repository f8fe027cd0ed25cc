"""Benchmark: a 40-study bivariate fit, cold (fresh process incl. compilation) and warm (refit).

Run: python benchmarks/bench_fit.py [--reps 5] [--draws N --tune N --chains 4] [--backend pymc]
(draws/tune 0 = the package defaults).
Prints one JSON line per measurement; results are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit


def simulate(seed: int, n_studies: int = 40) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cov = np.array([[0.8**2, -0.4 * 0.8 * 0.9], [-0.4 * 0.8 * 0.9, 0.9**2]])
    th = rng.multivariate_normal([1.6, 2.2], cov, size=n_studies)
    n1 = rng.integers(30, 300, n_studies)
    n0 = rng.integers(60, 600, n_studies)
    tp = rng.binomial(n1, expit(th[:, 0]))
    tn = rng.binomial(n0, expit(th[:, 1]))
    return pd.DataFrame({"TP": tp, "FN": n1 - tp, "TN": tn, "FP": n0 - tn})


def one_process(args: argparse.Namespace) -> dict:
    t0 = time.perf_counter()
    import bayesdta as bd

    t_import = time.perf_counter() - t0
    warnings.simplefilter("ignore")
    kw = dict(
        draws=args.draws or None, tune=args.tune or None, chains=args.chains, backend=args.backend
    )
    t1 = time.perf_counter()
    f = bd.fit(simulate(0), seed=1, **kw)
    cold = time.perf_counter() - t0
    first = time.perf_counter() - t1
    d = f.diagnostics()
    out = {
        "kind": "cold",
        "wall_s_incl_import": round(cold, 2),
        "import_s": round(t_import, 2),
        "fit_s": round(first, 2),
        "compile_s": round(f.timing["compile_s"], 2),
        "sample_s": round(f.timing["sample_s"], 2),
        "min_ess_bulk": round(d["min_ess_bulk"]),
        "divergences": d["divergences"],
    }
    warm = []
    for rep in range(args.reps):
        t = time.perf_counter()
        g = bd.fit(simulate(100 + rep), seed=rep, **kw)
        wall = time.perf_counter() - t
        dg = g.diagnostics()
        warm.append(
            {
                "kind": "warm",
                "wall_s": round(wall, 2),
                "sample_s": round(g.timing["sample_s"], 2),
                "min_ess_bulk": round(dg["min_ess_bulk"]),
                "min_ess_tail": round(dg["min_ess_tail"]),
                "ess_per_s": round(dg["min_ess_bulk"] / g.timing["sample_s"]),
                "divergences": dg["divergences"],
                "runs": len(g.sampler.get("attempts", [])) or 1,
            }
        )
    return {"cold": out, "warm": warm}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--draws", type=int, default=0)
    p.add_argument("--tune", type=int, default=0)
    p.add_argument("--backend", default="nutpie", choices=["nutpie", "pymc"])
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        print(json.dumps(one_process(args)))
        return
    cmd = [
        sys.executable,
        __file__,
        "--inner",
        "--reps",
        str(args.reps),
        "--draws",
        str(args.draws),
        "--tune",
        str(args.tune),
        "--chains",
        str(args.chains),
        "--backend",
        args.backend,
    ]
    res = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    print(json.dumps(res["cold"]))
    for w in res["warm"]:
        print(json.dumps(w))
    ws = [w["wall_s"] for w in res["warm"]]
    es = [w["min_ess_bulk"] for w in res["warm"]]
    et = [w.get("min_ess_tail", 0) for w in res["warm"]]
    print(
        json.dumps(
            {
                "warm_median_wall_s": float(np.median(ws)),
                "warm_min_ess": min(es),
                "warm_min_ess_tail": min(et),
            }
        )
    )


if __name__ == "__main__":
    main()
