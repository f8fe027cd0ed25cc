"""Benchmark: the three-level meta-regression on the 39-row osteoporosis example.

Run: python benchmarks/bench_metaregression.py [--reps 5] [--draws N --tune N --chains 4]
     [--target-accept 0.9] [--table] [--clustering] [--coverage N] [--graph]

``--graph``: the gradient from the PyMC graph and its three-level defaults (800 + 300), i.e.
the path before the hand-written numba log density (for before/after in one run).

* cold: a fresh process (import + model build + numba compilation + sampling) fitting the
  packaged example with the truth's model specification
  (``~ backbone + reference_standard + dimensionality + validation``) at the package defaults;
* warm: in that process, refits on new simulated replicates of the same design (the compiled
  model is re-used), median wall time over ``--reps``;
* ``--table``: ``subgroup_table`` over the four covariates, warm (one extra compilation for the
  padded single-covariate structure, then one refit per covariate);
* ``--clustering``: ``compare_clustering`` on a strongly clustered simulation (12 studies x 4
  tables);
* ``--coverage N``: N clustered replicates; coverage of the true pooled sensitivity and
  specificity by the 95% intervals of the three-level and the rows-independent models.

For every fit: min bulk ESS over the coefficients, SDs and correlations, divergences, max
R-hat. Prints one JSON line per measurement; results are recorded in docs/meta_regression.md.
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


def simulate_clustered(seed: int, n_studies: int = 12, rows: int = 4) -> pd.DataFrame:
    """Three-level data with strong clustering (tau between 1.0, within 0.15), mu = (1.5, 2)."""
    rng = np.random.default_rng(seed)
    tau, rho = (1.0, 1.0), -0.3
    cov = np.array([[tau[0] ** 2, rho * tau[0] * tau[1]], [rho * tau[0] * tau[1], tau[1] ** 2]])
    u = rng.multivariate_normal([0.0, 0.0], cov, size=n_studies)
    out = []
    for s in range(n_studies):
        n1, n0 = rng.integers(60, 150), rng.integers(150, 400)
        for m in range(rows):
            th = np.array([1.5, 2.0]) + u[s] + rng.normal(0.0, 0.15, size=2)
            tp, tn = rng.binomial(n1, expit(th[0])), rng.binomial(n0, expit(th[1]))
            out.append(
                {
                    "study": f"S{s + 1:02d}",
                    "model": f"net{m + 1}",
                    "TP": tp,
                    "FN": n1 - tp,
                    "TN": tn,
                    "FP": n0 - tn,
                }
            )
    return pd.DataFrame(out)


def _record(kind: str, f, wall: float, **extra) -> dict:
    import os

    d = f.diagnostics()
    attempts = f.sampler.get("attempts") or []
    return {
        "kind": kind,
        "wall_s": round(wall, 2),
        "compile_s": round(f.timing.get("compile_s", 0.0), 2),
        "sample_s": round(f.timing.get("sample_s", 0.0), 2),
        "min_ess_bulk": round(d["min_ess_bulk"]),
        "ess_per_s": round(d["min_ess_bulk"] / max(f.timing.get("sample_s", 1e-9), 1e-9), 1),
        "divergences": d["divergences"],
        "max_r_hat": round(d["max_r_hat"], 3),
        "min_ess_tail": round(d["min_ess_tail"]),
        "runs": len(attempts) or 1,
        "first_run_draws": attempts[0]["draws"] if attempts else f.sampler.get("draws"),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        **extra,
    }


def one_process(args: argparse.Namespace) -> list[dict]:
    t0 = time.perf_counter()
    import bayesdta as bd
    from bayesdta import regression as R
    from bayesdta.datasets.simulate_osteoporosis import simulate_osteoporosis

    t_import = time.perf_counter() - t0
    warnings.simplefilter("ignore")
    if args.graph:
        from bayesdta.inference import sampling

        sampling.USE_NUMBA_LOGP = False
    kw = {
        "draws": args.draws or None,
        "tune": args.tune or None,
        "chains": args.chains,
        "target_accept": args.target_accept,
    }
    truth = bd.load_truth("osteoporosis_dl")
    out = []
    t1 = time.perf_counter()
    f = bd.fit(bd.load_example("osteoporosis_dl"), seed=1, **truth["model_spec"], **kw)
    wall = time.perf_counter() - t1
    out.append(
        _record(
            "cold",
            f,
            wall,
            import_s=round(t_import, 2),
            wall_incl_import_s=round(time.perf_counter() - t0, 2),
            data="example",
        )
    )
    for rep in range(args.reps):
        table, _ = simulate_osteoporosis(seed=100 + rep)
        t = time.perf_counter()
        g = bd.fit(table, seed=rep, **truth["model_spec"], **kw)
        out.append(_record("warm", g, time.perf_counter() - t, data=f"replicate {100 + rep}"))
    if args.table:
        covs = ["backbone", "reference_standard", "dimensionality", "validation"]
        ref = {c: truth["reference_levels"][c] for c in covs}
        t = time.perf_counter()
        tab, fits = R.subgroup_table(
            bd.load_example("osteoporosis_dl"),
            covariates=covs,
            reference=ref,
            seed=1,
            return_fits=True,
            **kw,
        )
        out.append(
            {
                "kind": "subgroup_table",
                "wall_s": round(time.perf_counter() - t, 2),
                "fits": len(fits),
                "fit_s": tab.attrs["timing_s"],
                "divergences": int(sum(x.diagnostics()["divergences"] for x in fits.values())),
                "min_ess_bulk": round(min(x.diagnostics()["min_ess_bulk"] for x in fits.values())),
            }
        )
        cols = [
            "n_rows",
            "sensitivity",
            "specificity",
            "logit_diff_sensitivity",
            "p_better_sensitivity",
            "logit_diff_specificity",
            "p_better_specificity",
            "elpd_diff",
            "elpd_diff_se",
            "tau_reduction_sensitivity",
            "tau_reduction_specificity",
        ]
        print(tab[cols].round(3).to_string(), file=sys.stderr)
    if args.clustering:
        t = time.perf_counter()
        cmp_ = R.compare_clustering(simulate_clustered(7), seed=1, **kw)
        out.append({"kind": "compare_clustering", "wall_s": round(time.perf_counter() - t, 2)})
        print(cmp_.round(3).T.to_string(), file=sys.stderr)
    if args.coverage:
        hits = {"three-level": [], "rows independent": []}
        widths = {"three-level": [], "rows independent": []}
        for rep in range(args.coverage):
            data = bd.DTAData.from_frame(simulate_clustered(1000 + rep))
            for name, levels in (("three-level", 3), ("rows independent", 2)):
                g = bd.fit(data, levels=levels, seed=rep, **kw)
                for q, mu in (("sensitivity", 1.5), ("specificity", 2.0)):
                    x = g.draws(q).values.ravel()
                    lo, hi = np.quantile(x, [0.025, 0.975])
                    hits[name].append(bool(lo <= expit(mu) <= hi))
                    widths[name].append(float(hi - lo))
        out.append(
            {
                "kind": "coverage_95",
                "replicates": args.coverage,
                **{f"coverage {k}": round(float(np.mean(v)), 3) for k, v in hits.items()},
                **{f"mean width {k}": round(float(np.mean(v)), 4) for k, v in widths.items()},
            }
        )
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--draws", type=int, default=0)
    p.add_argument("--tune", type=int, default=0)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--target-accept", type=float, default=None)
    p.add_argument("--table", action="store_true")
    p.add_argument("--clustering", action="store_true")
    p.add_argument("--coverage", type=int, default=0)
    p.add_argument(
        "--graph",
        action="store_true",
        help="gradient from the PyMC graph (the path before the numba log density), its defaults",
    )
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.inner:
        print(json.dumps(one_process(args)))
        return
    cmd = [sys.executable, __file__, "--inner"] + sys.argv[1:]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        sys.stderr.write(proc.stderr)
        raise SystemExit(proc.returncode)
    sys.stderr.write(proc.stderr)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    for r in res:
        print(json.dumps(r))
    warm = [r for r in res if r["kind"] == "warm"]
    if warm:
        import os

        summary = {
            "gradient": "graph" if args.graph else "numba (where it applies)",
            "load_avg_1_5_15min_at_end": [round(x, 2) for x in os.getloadavg()],
            "warm_median_wall_s": float(np.median([w["wall_s"] for w in warm])),
            "warm_max_wall_s": max(w["wall_s"] for w in warm),
            "warm_escalated": sum(w["runs"] > 1 for w in warm),
            "warm_min_ess": min(w["min_ess_bulk"] for w in warm),
            "warm_divergences_total": sum(w["divergences"] for w in warm),
        }
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
