"""Benchmark: convergence of the Student-t random-effects family at the package defaults.

Fits ``random_effects="t"`` (default priors, nu ~ Gamma(2, 0.1); default draws / tune /
target_accept / chains) on every packaged data set (smoking and osteoporosis_dl with
``levels=2``; ``--three-level`` adds them with three levels) and on simulated data with gross
outliers, and reports per fit: divergences, max R-hat (and of which quantity), min bulk / tail
ESS, min E-BFMI, sampling seconds. ``--escalate 0`` (default) measures the first run only (the
geometry at the defaults); ``--escalate 1`` lets ``bd.fit`` escalate and reports the attempts.

Run: python benchmarks/bench_t_family.py [--seeds 1 2 3] [--data auditc dementia ...]
     [--escalate 1] [--family normal]
Prints one JSON line per fit and a Markdown table at the end (benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
from scipy.special import expit, logit


def outlier_table(seed: int, k: int = 20) -> pd.DataFrame:
    """``k`` studies around (0.80, 0.90), SDs 0.3, plus 2 gross outliers at (0.20, 0.40)."""
    rng = np.random.default_rng(seed)
    u = rng.multivariate_normal([0, 0], [[0.09, 0], [0, 0.09]], size=k)
    lse = np.concatenate([logit(0.8) + u[:, 0], logit([0.2, 0.25])])
    lsp = np.concatenate([logit(0.9) + u[:, 1], logit([0.4, 0.35])])
    n1 = rng.integers(80, 150, size=k + 2)
    n0 = rng.integers(150, 300, size=k + 2)
    tp = rng.binomial(n1, expit(lse))
    tn = rng.binomial(n0, expit(lsp))
    return pd.DataFrame({"TP": tp, "FN": n1 - tp, "FP": n0 - tn, "TN": tn})


def small_heavy_table(seed: int, k: int = 12) -> pd.DataFrame:
    """``k`` small studies (20-60 per group) with Student-t (nu = 3) effects, large SDs."""
    rng = np.random.default_rng(seed)
    z = rng.multivariate_normal([0, 0], [[1.0, -0.3], [-0.3, 1.0]], size=k)
    lam = rng.gamma(1.5, 1 / 1.5, size=k)
    th = np.array([1.2, 1.8]) + z * np.array([0.9, 0.8]) / np.sqrt(lam)[:, None]
    n1 = rng.integers(20, 60, size=k)
    n0 = rng.integers(20, 60, size=k)
    tp = rng.binomial(n1, expit(th[:, 0]))
    tn = rng.binomial(n0, expit(th[:, 1]))
    return pd.DataFrame({"TP": tp, "FN": n1 - tp, "FP": n0 - tn, "TN": tn})


def datasets(names: list[str], three_level: bool):
    import bayesdta as bd

    for name in names:
        if name == "outliers":
            yield name, outlier_table(3), {}
        elif name == "outliers_k8":
            yield name, outlier_table(5, k=6), {}
        elif name == "heavy_small":
            yield name, small_heavy_table(7), {}
        elif name in ("smoking", "osteoporosis_dl"):
            yield f"{name} (levels=2)", bd.load_example(name), {"levels": 2}
            if three_level:
                yield f"{name} (levels=3)", bd.load_example(name), {"levels": 3}
        else:
            yield name, bd.load_example(name), {}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--data",
        nargs="+",
        default=[
            "auditc",
            "dementia",
            "skin_tests",
            "smoking",
            "osteoporosis_dl",
            "outliers",
            "outliers_k8",
            "heavy_small",
        ],
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[1])
    p.add_argument("--escalate", type=int, default=0)
    p.add_argument("--family", default="t")
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--three-level", action="store_true")
    args = p.parse_args()
    import bayesdta as bd

    warnings.simplefilter("ignore")
    rows = []
    for name, data, kw in datasets(args.data, args.three_level):
        for seed in args.seeds:
            t = time.perf_counter()
            f = bd.fit(
                data,
                random_effects=args.family,
                seed=seed,
                cores=args.cores,
                verbose=False,
                escalate=bool(args.escalate),
                **kw,
            )
            wall = time.perf_counter() - t
            d = f.diagnostics()
            row = {
                "data": name,
                "seed": seed,
                "family": args.family,
                "divergences": d["divergences"],
                "max_r_hat": round(d["max_r_hat"], 3),
                "r_hat_of": d["worst"]["r_hat"],
                "min_ess_bulk": round(d["min_ess_bulk"]),
                "min_ess_tail": round(d["min_ess_tail"]),
                "ess_of": d["worst"]["ess_bulk"],
                "min_bfmi": round(d["min_bfmi"], 2),
                "sample_s": round(f.timing["sample_s"], 1),
                "wall_s": round(wall, 1),
                "attempts": len(f.sampler.get("attempts", [])) or 1,
                "parameterization": f.sampler.get("parameterization"),
                "clean": not d["warnings"],
            }
            if "nu" in f.posterior:
                row["nu_median"] = round(float(np.median(f.posterior["nu"].values)), 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    cols = [
        "data",
        "seed",
        "divergences",
        "max_r_hat",
        "r_hat_of",
        "min_ess_bulk",
        "min_ess_tail",
        "min_bfmi",
        "sample_s",
        "attempts",
        "clean",
    ]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
