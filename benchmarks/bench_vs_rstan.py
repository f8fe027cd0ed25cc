"""Benchmark: smoking three-level model with a covariate (``~ type``), bayesdta vs rstan.

Run: python benchmarks/bench_vs_rstan.py [--seed 1] [--stan-iter 2000] [--reps 3] [--graph]

``--graph``: also the same refits with the gradient of the PyMC graph and its defaults (the
path before the hand-written numba log density), for before/after in one run.

Both samplers fit the same model with the same priors (``benchmarks/stan/three_level.stan``:
README.md "The model", the default priors of ``bayesdta.priors.DEFAULT_PRIORS``, the design
matrix taken from the bayesdta fit) in one run, one after the other, 4 chains on the machine's
cores. ESS per second = min bulk ESS (ArviZ, the same function for both) over the coefficients,
SDs and correlations divided by the sampling time: for rstan the sampling time only
(``get_elapsed_time``, warm-up + sampling, summed over the chains and divided by the cores
used, i.e. the wall time of 4 chains on the cores without R's process start-up; and, as a
second ratio, the wall time of ``sampling()`` itself; compilation excluded), for bayesdta the
sampler's wall time of a warm refit (compiled model re-used; compilation excluded), median
over ``--reps``. Posterior agreement: the difference of the
posterior means in units of the Monte Carlo standard error of the difference.

Needs R with rstan (``sh /work/shared/tools/setup_rstack.sh`` on Debian); without ``Rscript``
or rstan it prints a note and exits 0 after the bayesdta half.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
STAN = HERE / "stan" / "three_level.stan"
PARAMS = [
    "tau_sensitivity",
    "tau_specificity",
    "rho",
    "tau_within_sensitivity",
    "tau_within_specificity",
    "rho_within",
]

R_SCRIPT = r"""
suppressMessages(library(rstan))
args <- commandArgs(trailingOnly = TRUE)
d <- jsonlite::fromJSON(args[1])
d$X_se <- matrix(as.numeric(d$X_se), nrow = d$R)  # column-major
d$X_sp <- matrix(as.numeric(d$X_sp), nrow = d$R)
t0 <- Sys.time()
m <- stan_model(args[2])
compile_s <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
t0 <- Sys.time()
f <- sampling(m, data = d, chains = 4, cores = as.integer(args[5]), iter = as.integer(args[4]),
              seed = as.integer(args[6]), refresh = 0)
wall_s <- as.numeric(difftime(Sys.time(), t0, units = "secs"))
el <- get_elapsed_time(f)
pars <- c("beta_sensitivity", "beta_specificity", "tau_sensitivity", "tau_specificity", "rho",
          "tau_within_sensitivity", "tau_within_specificity", "rho_within")
a <- as.array(f, pars = pars)
div <- sum(sapply(get_sampler_params(f, inc_warmup = FALSE), function(x) sum(x[, "divergent__"])))
out <- list(compile_s = compile_s, wall_s = wall_s, warmup_s = as.numeric(el[, 1]),
            sample_s = as.numeric(el[, 2]), divergences = div, dim = dim(a),
            names = dimnames(a)[[3]], draws = as.vector(a))
writeLines(jsonlite::toJSON(out, digits = NA), args[3])
"""


def _have_rstan() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    r = subprocess.run(
        ["Rscript", "-e", "library(rstan); library(jsonlite)"], capture_output=True, text=True
    )
    return None if r.returncode == 0 else "R packages rstan/jsonlite not installed"


def _ess_table(draws: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    import arviz as az

    out = {}
    for name, x in draws.items():  # x: (chain, draw)
        ds = az.convert_to_dataset({"x": x})
        out[name] = {
            "mean": float(x.mean()),
            "sd": float(x.std()),
            "ess_bulk": float(az.ess(ds, method="bulk")["x"]),
            "mcse": float(az.mcse(ds, method="mean")["x"]),
        }
    return out


def _bayesdta_draws(fit) -> dict[str, np.ndarray]:
    post = fit.posterior
    out = {}
    for o in ("sensitivity", "specificity"):
        b = post[f"beta_{o}"].values
        for j in range(b.shape[-1]):
            out[f"beta_{o}[{j + 1}]"] = b[..., j]
    for p in PARAMS:
        out[p] = post[p].values
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stan-iter", type=int, default=2000, help="rstan iter (half warm-up)")
    ap.add_argument("--reps", type=int, default=3, help="bayesdta warm refits")
    ap.add_argument(
        "--graph",
        action="store_true",
        help="also refit with the PyMC graph's gradient (before the numba log density)",
    )
    args = ap.parse_args()
    import bayesdta as bd

    cores = min(4, os.cpu_count() or 1)
    data = bd.load_example("smoking")
    t0 = time.perf_counter()
    first = bd.fit(data, formula="~ type", seed=args.seed)
    cold = time.perf_counter() - t0
    fits, walls = [], []
    for r in range(args.reps):
        t0 = time.perf_counter()
        f = bd.fit(data, formula="~ type", seed=args.seed + 1 + r)
        walls.append(time.perf_counter() - t0)
        fits.append(f)
    rows = _rows(fits, walls)
    med = sorted(rows, key=lambda r: r["ess_per_s"])[len(rows) // 2]
    res = {
        "load_avg": os.getloadavg(),
        "bayesdta_cold_s": cold,
        "bayesdta_refits": rows,
        "bayesdta_median": med,
    }
    if args.graph:
        # the same refits with the gradient of the PyMC graph (before the numba log density)
        from bayesdta.inference import sampling

        sampling.USE_NUMBA_LOGP = False
        bd.fit(data, formula="~ type", seed=args.seed)  # compile the graph (not timed)
        gfits, gwalls = [], []
        for r in range(args.reps):
            t0 = time.perf_counter()
            gfits.append(bd.fit(data, formula="~ type", seed=args.seed + 1 + r))
            gwalls.append(time.perf_counter() - t0)
        sampling.USE_NUMBA_LOGP = True
        grows = _rows(gfits, gwalls)
        res["bayesdta_graph_refits"] = grows
        res["bayesdta_graph_median"] = sorted(grows, key=lambda r: r["ess_per_s"])[len(grows) // 2]
        res["load_avg_after_graph"] = os.getloadavg()
    _finish(args, bd, data, first, fits, med, res, cores)


def _rows(fits, walls) -> list[dict]:
    rows = []
    for f, w in zip(fits, walls, strict=True):
        d = f.diagnostics()
        tab = _ess_table(_bayesdta_draws(f))
        ess = min(v["ess_bulk"] for v in tab.values())
        rows.append(
            {
                "wall_s": w,
                "sample_s": f.timing["sample_s"],
                "min_ess_bulk": ess,
                "ess_per_s": ess / f.timing["sample_s"],
                "divergences": d["divergences"],
                "draws": f.sampler.get("draws"),
                "tune": f.sampler.get("tune"),
                "runs": len(f.sampler.get("attempts", [])) or 1,
                "load_avg_1min": os.getloadavg()[0],
            }
        )
    return rows


def _finish(args, bd, data, first, fits, med, res, cores) -> None:
    note = _have_rstan()
    if note:
        res["rstan"] = f"skipped: {note}"
        print(json.dumps(res, indent=1, default=float))
        return
    # the compiled design is padded to a multiple of 16 rows: keep the data's rows
    X = {o: np.asarray(x)[: data.n_rows] for o, x in first.design.X.items()}
    sdata = {
        "R": int(data.n_rows),
        "S": int(data.n_studies),
        "P": int(X["sensitivity"].shape[1]),
        "study": (np.asarray(data.study_index) + 1).tolist(),
        "X_se": X["sensitivity"].ravel(order="F").tolist(),  # column-major for R's matrix()
        "X_sp": X["specificity"].ravel(order="F").tolist(),
        "tp": np.asarray(data.tp).astype(int).tolist(),
        "n1": np.asarray(data.n_diseased).astype(int).tolist(),
        "tn": np.asarray(data.tn).astype(int).tolist(),
        "n0": np.asarray(data.n_nondiseased).astype(int).tolist(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        dj, rs, oj = Path(tmp, "d.json"), Path(tmp, "run.R"), Path(tmp, "out.json")
        dj.write_text(json.dumps(sdata))
        rs.write_text(R_SCRIPT)
        cmd = ["Rscript", str(rs), str(dj), str(STAN), str(oj), str(args.stan_iter)]
        cmd += [str(cores), str(args.seed)]
        subprocess.run(cmd, check=True)
        out = json.loads(oj.read_text())
    arr = np.asarray(out["draws"], dtype=float).reshape(out["dim"], order="F")  # iter, chain, par
    sdraws = {nm: arr[:, :, i].T for i, nm in enumerate(out["names"])}
    stan_tab = _ess_table(sdraws)
    stan_ess = min(v["ess_bulk"] for v in stan_tab.values())
    chain_s = np.add(out["warmup_s"], out["sample_s"])
    # 4 chains on `cores` cores without R's process overhead: total chain time / cores (as
    # bayesdta's sample_s, the wall time of 4 chains on the cores); the slowest chain alone is
    # reported too
    stan_s = float(np.sum(chain_s) / min(cores, len(chain_s)))
    # agreement: pooled bayesdta refits vs rstan, z = diff / sqrt(mcse_a^2 + mcse_b^2)
    btab = _ess_table({k: np.concatenate([_bayesdta_draws(f)[k] for f in fits]) for k in stan_tab})
    agree = {
        k: {
            "bayesdta": btab[k]["mean"],
            "rstan": stan_tab[k]["mean"],
            "z": (btab[k]["mean"] - stan_tab[k]["mean"])
            / np.hypot(btab[k]["mcse"], stan_tab[k]["mcse"]),
        }
        for k in stan_tab
    }
    res["rstan"] = {
        "compile_s": out["compile_s"],
        "sampling_s": stan_s,
        "slowest_chain_s": float(np.max(chain_s)),
        "sampling_wall_s": out["wall_s"],
        "min_ess_bulk": stan_ess,
        "ess_per_s": stan_ess / stan_s,
        "divergences": out["divergences"],
    }
    res["rstan"]["ess_per_s_wall"] = stan_ess / float(np.max(out["wall_s"]))
    # chain time: as get_elapsed_time (the slowest chain); wall: 4 chains on the cores, as
    # bayesdta's sample_s is measured
    res["ratio_ess_per_s"] = med["ess_per_s"] / (stan_ess / stan_s)
    res["ratio_ess_per_s_vs_rstan_wall"] = med["ess_per_s"] / res["rstan"]["ess_per_s_wall"]
    if "bayesdta_graph_median" in res:
        res["ratio_ess_per_s_graph"] = res["bayesdta_graph_median"]["ess_per_s"] / (
            stan_ess / stan_s
        )
    res["agreement"] = agree
    res["max_abs_z"] = max(abs(v["z"]) for v in agree.values())
    res["load_avg_end"] = os.getloadavg()
    print(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    sys.exit(main())
