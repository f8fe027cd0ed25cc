"""Benchmark: time and memory against the number of tables (issue 11, target 5).

Run: python benchmarks/bench_scaling.py [--sizes 40 400 4000] [--levels 2 3] [--draws N]

One fresh subprocess per (levels, size), so peak RSS (``resource.getrusage``, ``ru_maxrss``)
is that of one fit. Data: simulated, mu = (1.6, 2.2), between-study SDs (0.8, 0.9), rho -0.4,
n1 30-300 and n0 60-600 per table; two levels: every table its own study; three levels: two
tables per study (within-study SDs 0.3). Each subprocess: ``bd.fit`` at the defaults (escalation
off, so every size does the same number of draws; ``--draws/--tune`` override), then
``fit.summary()``, ``fit.loo(by="study")`` (the integrated LOO) and ``fit.diagnostics()``, each
timed. Compilation (or the disk-cache load) is reported apart from sampling. Prints one JSON
line per size, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
import pandas as pd
from scipy.special import expit


def simulate(n_tables: int, levels: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per = 1 if levels == 2 else 2
    n_studies = n_tables // per
    tau, rho = np.array([0.8, 0.9]), -0.4
    cov = np.outer(tau, tau) * np.array([[1.0, rho], [rho, 1.0]])
    u = rng.multivariate_normal([0.0, 0.0], cov, size=n_studies)
    rows = []
    for s in range(n_studies):
        for m in range(per):
            th = np.array([1.6, 2.2]) + u[s] + (rng.normal(0.0, 0.3, 2) if per > 1 else 0.0)
            n1, n0 = rng.integers(30, 301), rng.integers(60, 601)
            tp, tn = rng.binomial(n1, expit(th[0])), rng.binomial(n0, expit(th[1]))
            rows.append(
                {
                    "study": f"S{s:05d}",
                    "model": f"m{m + 1}",
                    "TP": tp,
                    "FN": n1 - tp,
                    "TN": tn,
                    "FP": n0 - tn,
                }
            )
    return pd.DataFrame(rows)


def inner(n_tables: int, levels: int, draws: int, tune: int) -> dict:
    import warnings

    import bayesdta as bd

    warnings.simplefilter("ignore")
    frame = simulate(n_tables, levels)
    if levels == 2:
        frame = frame.drop(columns=["study", "model"])
    kw = {"draws": draws or None, "tune": tune or None, "escalate": False, "seed": 1}
    out: dict = {"levels": levels, "tables": n_tables}
    t = time.perf_counter()
    f = bd.fit(frame, **kw)
    out["fit_s"] = round(time.perf_counter() - t, 2)
    out["compile_or_load_s"] = round(f.timing.get("compile_s", 0.0), 2)
    out["sample_s"] = round(f.timing.get("sample_s", 0.0), 2)
    out["draws"], out["tune"] = f.sampler.get("draws"), f.sampler.get("tune")
    out["rss_after_fit_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    t = time.perf_counter()
    d = f.diagnostics()
    out["diagnostics_s"] = round(time.perf_counter() - t, 2)
    out["min_ess_bulk"] = round(d["min_ess_bulk"])
    out["divergences"] = d["divergences"]
    t = time.perf_counter()
    f.summary()
    out["summary_s"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    f.loo(by="study")
    out["loo_s"] = round(time.perf_counter() - t, 2)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    out["load"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[40, 400, 4000])
    ap.add_argument("--levels", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--draws", type=int, default=0)
    ap.add_argument("--tune", type=int, default=0)
    ap.add_argument("--inner", nargs=2, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.inner:
        print(json.dumps(inner(args.inner[0], args.inner[1], args.draws, args.tune)))
        return
    for levels in args.levels:
        for size in args.sizes:
            cmd = [sys.executable, __file__, "--inner", str(size), str(levels)]
            cmd += ["--draws", str(args.draws), "--tune", str(args.tune)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                sys.stderr.write(proc.stderr[-3000:])
                print(json.dumps({"levels": levels, "tables": size, "error": proc.returncode}))
                continue
            print(proc.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
