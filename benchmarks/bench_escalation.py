"""Benchmark: why three-level refits escalate, and what the second run costs.

Run: python benchmarks/bench_escalation.py [--reps 8] [--settings '{"draws": 1000}']

One process: the osteoporosis meta-regression (its truth file's model specification) is
compiled once, then refitted at the package defaults (escalation on) on the simulated
replicates ``simulate_osteoporosis(seed=100 + r)`` with ``seed=r``. Prints one JSON line per
refit: wall time, every attempt's settings (draws, chains, what changed), seconds and
diagnostics (min bulk / tail ESS, max R-hat, divergences, E-BFMI), the worst quantities and the
mean number of leapfrog steps per draw and step size of the kept run. Results:
benchmarks/README.md ("Escalation of three-level fits").
"""

from __future__ import annotations

import argparse
import json
import time
import warnings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--settings", default="{}", help="JSON of extra bd.fit options")
    args = ap.parse_args()
    from bayesdta.datasets.simulate_osteoporosis import simulate_osteoporosis

    import bayesdta as bd

    warnings.simplefilter("ignore")
    kw = json.loads(args.settings)
    truth = bd.load_truth("osteoporosis_dl")
    spec = truth["model_spec"]
    example = bd.load_example("osteoporosis_dl")
    bd.fit(example, seed=1, escalate=False, draws=50, tune=50, verbose=False, **spec)
    for rep in range(args.reps):
        table, _ = simulate_osteoporosis(seed=100 + rep)
        t = time.perf_counter()
        f = bd.fit(table, seed=rep, verbose=False, **spec, **kw)
        wall = time.perf_counter() - t
        ss = f.idata.sample_stats
        rec = {"replicate": 100 + rep, "seed": rep, "wall_s": round(wall, 2), "attempts": []}
        for a in f.sampler["attempts"]:
            diag = a["diagnostics"]
            d = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in diag.items()}
            keep = ("draws", "tune", "chains", "target_accept", "changed", "sample_s")
            rec["attempts"].append({**{k: a.get(k) for k in keep}, **d})
        rec["worst"] = f.diagnostics()["worst"]
        rec["steps_per_draw"] = round(float(ss["n_steps"].mean()), 1)
        rec["step_size"] = round(float(ss["step_size"].mean()), 3)
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
