"""Clean rate of the default fit on a simulation grid and on published datasets.

A fit is *clean* when it has 0 divergences, R-hat <= 1.01 and bulk and tail ESS >= 400 on every
reported quantity (:meth:`bayesdta.DTAFit.diagnostics`; E-BFMI >= 0.3 is also required).

Two settings per cell:

* ``before``: the defaults of the package before issue 9, reproduced by forcing them:
  centered study effects (study means for three levels), one run (``escalate=False``),
  the same draws / tune / target_accept / mass matrix defaults;
* ``after``: ``bd.fit(data, seed=...)`` with the current defaults (data-driven partial
  centering, bounded automatic escalation).

Run::

    python benchmarks/bench_default_grid.py --quick          # 12 simulated cells + datasets
    python benchmarks/bench_default_grid.py                  # 60 simulated cells + datasets
    python benchmarks/bench_default_grid.py --cells 30 --no-real --modes after

Writes one CSV row per (cell, mode) to ``benchmarks/results/default_grid[_quick].csv`` and
prints the clean rates as a Markdown table (recorded in ``benchmarks/README.md``).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

HERE = Path(__file__).resolve().parent

# factor levels of the simulation grid (the range issue 9 asks for)
STUDIES = (2, 3, 5, 8, 12, 20, 40, 60)
TAUS = (0.05, 0.2, 0.5, 1.0, 2.0)
RHOS = (-0.95, -0.5, 0.0, 0.5, 0.9)
SIZES = ((10, 30), (30, 100), (50, 500), (1000, 5000), (100000, 100000))
MEANS = ((1.4, 1.8), (3.0, 2.0), (4.5, 3.0))  # logits: se ~0.80 / ~0.95 / ~0.99

#: Named cells always included: the failures reported in issue 9 and the edges of the range.
FIXED = [
    # name, studies, tau, rho, (n_lo, n_hi), (mu_se, mu_sp)
    ("issue: 8 studies, tau 0.2", 8, 0.2, -0.3, (50, 200), (1.4, 1.8)),
    ("3 studies, tau 0.2", 3, 0.2, -0.3, (50, 200), (1.4, 1.8)),
    ("2 studies, tau 0.5", 2, 0.5, 0.0, (30, 100), (1.4, 1.8)),
    ("zero cells: small studies, se ~0.99", 10, 0.5, -0.5, (10, 30), (4.5, 3.0)),
    ("n = 100000, tau 0.05", 8, 0.05, 0.0, (100000, 100000), (1.4, 1.8)),
    ("60 studies, tau 2, rho 0.9", 60, 2.0, 0.9, (50, 500), (1.4, 1.8)),
    ("40 studies, tau 0.05, rho -0.95", 40, 0.05, -0.95, (30, 100), (3.0, 2.0)),
]

#: Published datasets: (name, loader) -> DTAData and fit options.
REAL = {
    "auditc (14)": ("example", "auditc", {}),
    "dementia (33)": ("example", "dementia", {}),
    "skin_tests (10)": ("example", "skin_tests", {}),
    "telomerase (10; Glas 2003)": ("csv", "telomerase.csv", {}),
    "smoking (51 rows / 26 studies, 3 levels)": ("example", "smoking", {}),
    "ascus (20 rows / 10 studies, ~ test)": ("csv", "ascus.csv", {"formula": "~ triage"}),
    "osteoporosis_dl (39 / 20, meta-regression)": ("example", "osteoporosis_dl", "truth"),
}


def simulate(seed: int, k: int, tau: float, rho: float, size, mu) -> pd.DataFrame:
    """k studies of the bivariate binomial model with equal between-study SDs ``tau``."""
    rng = np.random.default_rng(seed)
    cov = np.array([[tau**2, rho * tau**2], [rho * tau**2, tau**2]])
    th = rng.multivariate_normal(mu, cov, size=k)
    lo, hi = size
    n1 = rng.integers(lo, hi + 1, k)
    n0 = rng.integers(lo, hi + 1, k)
    tp = rng.binomial(n1, expit(th[:, 0]))
    tn = rng.binomial(n0, expit(th[:, 1]))
    return pd.DataFrame(
        {"study": [f"s{i + 1}" for i in range(k)], "TP": tp, "FN": n1 - tp, "TN": tn, "FP": n0 - tn}
    )


def grid_cells(n: int, seed: int = 20261129) -> list[dict]:
    """The fixed cells plus ``n`` cells drawn from the full factorial (seeded, no repeats)."""
    cells = [
        {"name": name, "k": k, "tau": tau, "rho": rho, "size": size, "mu": mu}
        for name, k, tau, rho, size, mu in FIXED
    ]
    full = list(itertools.product(STUDIES, TAUS, RHOS, SIZES, MEANS))
    rng = np.random.default_rng(seed)
    for i in rng.choice(len(full), size=min(n, len(full)), replace=False):
        k, tau, rho, size, mu = full[int(i)]
        name = f"k={k} tau={tau} rho={rho} n={size[0]}-{size[1]} mu={mu}"
        cells.append({"name": name, "k": k, "tau": tau, "rho": rho, "size": size, "mu": mu})
    return cells


def fit_one(bd, data, seed: int, mode: str, **options) -> tuple[dict, float]:
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "before":
            # the pre-issue-9 defaults: centered, one run, 400 + 400 at 0.8 (two levels) or
            # 1500 + 1500 at 0.95 (three levels), low-rank mass matrix for two levels only
            data = data if isinstance(data, bd.DTAData) else bd.DTAData.from_frame(data)
            three = bd.ModelSpec(**options).resolved_levels(data) == 3
            old = {"draws": 1500, "tune": 1500, "target_accept": 0.95} if three else {}
            old = old or {"draws": 400, "tune": 400, "target_accept": 0.8}
            f = bd.fit(
                data, seed=seed, parameterization="centered", escalate=False, **old, **options
            )
        else:
            f = bd.fit(data, seed=seed, **options)
    wall = time.perf_counter() - t
    d = f.diagnostics()
    row = {
        "clean": int(not d["warnings"]),
        "divergences": d["divergences"],
        "max_r_hat": round(d["max_r_hat"], 4),
        "min_ess_bulk": round(d["min_ess_bulk"]),
        "min_ess_tail": round(d["min_ess_tail"]),
        "min_bfmi": round(d["min_bfmi"], 3),
        "attempts": len(f.sampler.get("attempts", [])) or 1,
        "parameterization": f.sampler.get("parameterization", "centered"),
        "draws": f.sampler["draws"],
        "target_accept": f.sampler["target_accept"],
        "sample_s": round(sum(a["sample_s"] for a in f.sampler.get("attempts", [])), 2),
        "note": f.sampling_note() if mode == "after" else "",
    }
    return row, wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="12 drawn cells (default 60)")
    p.add_argument("--cells", type=int, default=None, help="number of drawn grid cells")
    p.add_argument("--modes", default="before,after")
    p.add_argument("--no-real", action="store_true", help="skip the published datasets")
    p.add_argument("--no-sim", action="store_true", help="skip the simulated cells")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    import bayesdta as bd

    n_cells = args.cells if args.cells is not None else (12 if args.quick else 60)
    out = (
        Path(args.out)
        if args.out
        else HERE / "results" / ("default_grid_quick.csv" if args.quick else "default_grid.csv")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    modes = args.modes.split(",")
    jobs = []
    if not args.no_sim:
        for i, c in enumerate(grid_cells(n_cells)):
            data = simulate(1000 + i, c["k"], c["tau"], c["rho"], c["size"], c["mu"])
            zeros = int((data[["TP", "FN", "FP", "TN"]] == 0).any(axis=1).sum())
            info = {
                "cell": c["name"],
                "source": "simulated",
                "studies": c["k"],
                "rows": c["k"],
                "tau": c["tau"],
                "rho": c["rho"],
                "n_range": f"{c['size'][0]}-{c['size'][1]}",
                "mu": f"{c['mu'][0]}/{c['mu'][1]}",
                "rows_with_zero": zeros,
            }
            jobs.append((info, data, {}))
    if not args.no_real:
        for name, (kind, src, opts) in REAL.items():
            if kind == "example":
                data = bd.load_example(src)
            else:
                frame = pd.read_csv(HERE / "data" / src)
                model = None
                if "test" in frame:  # the test is both the table id and the covariate
                    frame["triage"], model = frame["test"], "test"
                data = bd.DTAData.from_frame(frame, model=model)
            if opts == "truth":
                opts = dict(bd.load_truth(src)["model_spec"])
            fr = data.frame
            zeros = int((fr[["TP", "FN", "FP", "TN"]] == 0).any(axis=1).sum())
            info = {
                "cell": name,
                "source": "published",
                "studies": data.n_studies,
                "rows": data.n_rows,
                "tau": "",
                "rho": "",
                "n_range": "",
                "mu": "",
                "rows_with_zero": zeros,
            }
            jobs.append((info, data, opts))
    fields = None
    with out.open("w", newline="") as fh:
        for j, (info, data, opts) in enumerate(jobs):
            for mode in modes:
                row, wall = fit_one(bd, data, seed=j + 1, mode=mode, **opts)
                rec = {**info, "mode": mode, **row, "wall_s": round(wall, 2)}
                if fields is None:
                    fields = list(rec)
                    w = csv.DictWriter(fh, fieldnames=fields)
                    w.writeheader()
                w.writerow(rec)
                fh.flush()
                print(
                    f"{info['cell'][:44]:<44} {mode:<6} clean={row['clean']} "
                    f"div={row['divergences']} rhat={row['max_r_hat']:.3f} "
                    f"ess={row['min_ess_bulk']}/{row['min_ess_tail']} "
                    f"att={row['attempts']} {row['parameterization']} {wall:.1f}s",
                    flush=True,
                )
    df = pd.read_csv(out)
    print(f"\nwrote {out}\n")
    print("| set | mode | cells | clean | clean rate | median wall s | max wall s |")
    print("|---|---|---|---|---|---|---|")
    for (src, mode), g in df.groupby(["source", "mode"], sort=False):
        print(
            f"| {src} | {mode} | {len(g)} | {int(g['clean'].sum())} | "
            f"{g['clean'].mean():.0%} | {g['wall_s'].median():.1f} | {g['wall_s'].max():.1f} |"
        )


if __name__ == "__main__":
    main()
