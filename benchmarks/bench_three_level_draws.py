"""Benchmark: ESS per draw of three-level fits, to choose the three-level sampler defaults.

Run: python benchmarks/bench_three_level_draws.py [--reps 3] [--settings 1500/1500/0.95 ...]

One process; every fit after the first of a structure is a warm refit (compiled model re-used).
Data: the osteoporosis meta-regression (packaged example and ``--reps`` simulated replicates of
its design, the truth's model specification), smoking ``~ type`` and ``data/ascus.csv``
``~ test``. Each setting ``draws/tune/target_accept`` is run with ``escalate=False`` (the first
run as the defaults would make it) at the current centering defaults. Prints one JSON line per
fit: sampling time, min bulk and tail ESS over every reported quantity
(``DTAFit.diagnostics()``), bulk ESS per kept draw, divergences, max R-hat, load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument(
        "--settings", nargs="+", default=["1500/1500/0.95", "600/600/0.95", "500/500/0.9"]
    )
    ap.add_argument("--data", nargs="+", default=["osteoporosis", "smoking", "ascus"])
    args = ap.parse_args()
    import bayesdta as bd
    from bayesdta.datasets.simulate_osteoporosis import simulate_osteoporosis

    warnings.simplefilter("ignore")
    truth = bd.load_truth("osteoporosis_dl")
    jobs = []
    if "osteoporosis" in args.data:
        jobs.append(
            ("osteoporosis example", bd.load_example("osteoporosis_dl"), truth["model_spec"])
        )
        for r in range(args.reps):
            table, _ = simulate_osteoporosis(seed=100 + r)
            jobs.append((f"osteoporosis replicate {100 + r}", table, truth["model_spec"]))
    if "smoking" in args.data:
        jobs.append(("smoking ~ type", bd.load_example("smoking"), {"formula": "~ type"}))
    if "ascus" in args.data:
        jobs.append(
            ("ascus ~ test", pd.read_csv(HERE / "data" / "ascus.csv"), {"formula": "~ test"})
        )
    for setting in args.settings:
        draws, tune, ta = setting.split("/")
        for i, (name, data, spec) in enumerate(jobs):
            t0 = time.perf_counter()
            f = bd.fit(
                data,
                **spec,
                seed=i + 1,
                draws=int(draws),
                tune=int(tune),
                target_accept=float(ta),
                escalate=False,
            )
            wall = time.perf_counter() - t0
            d = f.diagnostics()
            n_kept = int(draws) * f.sampler.get("chains", 4)
            print(
                json.dumps(
                    {
                        "data": name,
                        "setting": setting,
                        "wall_s": round(wall, 2),
                        "sample_s": round(f.timing["sample_s"], 2),
                        "min_ess_bulk": round(d["min_ess_bulk"]),
                        "min_ess_tail": round(d.get("min_ess_tail", float("nan"))),
                        "ess_bulk_per_draw": round(d["min_ess_bulk"] / n_kept, 3),
                        "divergences": d["divergences"],
                        "max_r_hat": round(d["max_r_hat"], 3),
                        "load": round(os.getloadavg()[0], 2),
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
