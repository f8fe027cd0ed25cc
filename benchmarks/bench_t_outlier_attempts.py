"""The ``outliers`` table of ``bench_t_family.py`` with ``random_effects="t"``: what each
escalation attempt does, and first runs under other settings (benchmarks/README.md).

Run: python benchmarks/bench_t_outlier_attempts.py [--seed 2] [--variants]
Prints the attempts of the default fit (settings and diagnostics), the per-chain medians of
``nu``, the third attempt re-run on its own (``escalate=False`` with the attempt's seed),
and with ``--variants`` first runs (seeds 1 and 2) with 1500 + 800 draws, centered,
non-centered and target_accept 0.95; with ``--diagonal`` first runs with a diagonal mass
matrix (``low_rank=False``, which ``bd.fit`` does not expose: set through
``inference.sampling.resolve_defaults``) at the defaults and at 1500 + 800, for seeds 1, 2
and the seed of the third attempt.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import arviz as az
import numpy as np
from bench_t_family import outlier_table

import bayesdta as bd
from bayesdta.inference.fit import _attempt_seed


def _line(f) -> dict:
    d = f.diagnostics()
    nu = f.draws("nu").values
    return {
        **{k: round(float(d[k]), 3) for k in ("divergences", "max_r_hat", "min_ess_bulk")},
        "min_ess_tail": round(float(d["min_ess_tail"]), 1),
        "min_bfmi": round(float(d["min_bfmi"]), 2),
        "worst_ess": d["worst"]["ess_bulk"],
        "nu_ess_per_draw": round(float(az.ess(nu, method="bulk")) / nu.size, 3),
        "nu_chain_medians": np.round(np.median(nu, axis=1), 2).tolist(),
    }


def _fit_t(bd, table, seed, kw):
    """One run of the t model at the defaults (no escalation), 2 cores."""
    return bd.fit(
        table, random_effects="t", seed=seed, cores=2, verbose=False, escalate=False, **kw
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=2)
    p.add_argument("--variants", action="store_true")
    p.add_argument("--diagonal", action="store_true")
    args = p.parse_args()
    warnings.simplefilter("ignore")
    table = outlier_table(3)
    f = bd.fit(table, random_effects="t", seed=args.seed, cores=2, verbose=False)
    for h in f.sampler["attempts"]:
        keys = ("attempt", "draws", "tune", "target_accept", "chains", "pooled", "changed")
        print(json.dumps({k: h[k] for k in keys}), h["diagnostics"], flush=True)
    print("selected attempt", f.sampler["selected_attempt"], _line(f), flush=True)
    last = f.sampler["attempts"][-1]
    if not last["pooled"]:
        k = last["attempt"] - 1
        g = bd.fit(
            table,
            random_effects="t",
            seed=_attempt_seed(args.seed, k),
            draws=last["draws"],
            tune=last["tune"],
            cores=2,
            verbose=False,
            escalate=False,
        )
        print(f"attempt {k + 1} alone", _line(g), flush=True)
    if args.variants:
        variants = [
            {"draws": 1500, "tune": 800},
            {"parameterization": "centered"},
            {"parameterization": "noncentered"},
            {"draws": 1500, "tune": 800, "target_accept": 0.95},
        ]
        for kw in variants:
            for seed in (1, 2):
                t = time.perf_counter()
                g = _fit_t(bd, table, seed, kw)
                wall = round(time.perf_counter() - t, 1)
                print(json.dumps(kw), seed, wall, _line(g), flush=True)
    if args.diagonal:
        import dataclasses

        import bayesdta.inference.sampling as sampling

        resolve = sampling.resolve_defaults

        def diagonal(settings, levels, n_effects=None, **options):
            out = resolve(settings, levels, n_effects, **options)
            return dataclasses.replace(out, low_rank=False)

        sampling.resolve_defaults = diagonal  # fit_design looks it up at call time
        for kw in ({}, {"draws": 1500, "tune": 800}):
            for seed in (1, 2, _attempt_seed(args.seed, 2)):
                g = _fit_t(bd, table, seed, kw)
                print("diagonal", json.dumps(kw), seed, _line(g), flush=True)
        sampling.resolve_defaults = resolve


if __name__ == "__main__":
    main()
