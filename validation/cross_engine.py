"""Cross-engine agreement: bayesdta against the same models written from scratch in numpyro.

The bivariate binomial model (two levels) and the three-level model, with bayesdta's default
priors, are written independently here in numpyro (JAX NUTS; non-centered random effects, LKJ
Cholesky correlations) and fitted to every packaged dataset. For every parameter the posterior
means are compared with their Monte Carlo standard errors:

    z = (mean_bayesdta - mean_numpyro) / sqrt(mcse_bayesdta^2 + mcse_numpyro^2)

|z| < 3 is agreement within Monte Carlo error (a wrong prior, likelihood or transformation in
either implementation shows up as |z| in the tens). Posterior SDs are compared as a ratio.

    pip install numpyro jax          # validation only; never a dependency of the package
    python validation/cross_engine.py                       # all datasets
    python validation/cross_engine.py --datasets dementia --draws 1000

Writes validation/results/cross_engine.csv and prints the Markdown table of docs/validation.md.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

RESULTS = ROOT / "validation" / "results"

#: dataset -> levels fitted (three when a study has several tables).
DATASETS = {
    "auditc": 2,
    "dementia": 2,
    "skin_tests": 2,
    "smoking": 3,
    "osteoporosis_dl": 3,
}

BETWEEN = ["mu_sensitivity", "mu_specificity", "tau_sensitivity", "tau_specificity", "rho"]
WITHIN = ["tau_within_sensitivity", "tau_within_specificity", "rho_within"]


def numpyro_model(tp, n1, tn, n0, study, n_studies, three_level):
    """The bivariate binomial model with bayesdta's default priors, written from scratch.

    mu_* ~ Normal(0, 2); tau_* ~ HalfNormal(1.5); between-study correlation LKJ(2);
    three levels: tau_within_* ~ HalfNormal(1), within correlation LKJ(2).
    theta_r = mu + u_study(r) [+ v_r];
    TP ~ Bin(n1, invlogit theta_1), TN ~ Bin(n0, invlogit theta_2).
    """
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 2.0).expand([2]).to_event(1))
    tau = numpyro.sample("tau", dist.HalfNormal(1.5).expand([2]).to_event(1))
    L = numpyro.sample("L", dist.LKJCholesky(2, concentration=2.0))
    z = numpyro.sample("z", dist.Normal(0.0, 1.0).expand([n_studies, 2]).to_event(2))
    u = (z @ L.T) * tau
    theta = mu + u[study]
    numpyro.deterministic("rho", L[1, 0])
    if three_level:
        tau_w = numpyro.sample("tau_w", dist.HalfNormal(1.0).expand([2]).to_event(1))
        Lw = numpyro.sample("Lw", dist.LKJCholesky(2, concentration=2.0))
        zw = numpyro.sample("zw", dist.Normal(0.0, 1.0).expand([len(tp), 2]).to_event(2))
        theta = theta + (zw @ Lw.T) * tau_w
        numpyro.deterministic("rho_w", Lw[1, 0])
    numpyro.sample("tp", dist.Binomial(n1, logits=theta[:, 0]), obs=tp)
    numpyro.sample("tn", dist.Binomial(n0, logits=theta[:, 1]), obs=tn)
    del jnp


def fit_numpyro(data, levels: int, *, draws: int, chains: int, seed: int) -> dict[str, np.ndarray]:
    """Posterior draws (chain, draw) of the reported parameters from numpyro NUTS."""
    import jax
    from numpyro.infer import MCMC, NUTS

    f = data.frame
    study_codes, study = np.unique(f["study"].astype(str), return_inverse=True)
    kw = {
        "tp": np.asarray(f["TP"], dtype=np.int32),
        "n1": np.asarray(f["TP"] + f["FN"], dtype=np.int32),
        "tn": np.asarray(f["TN"], dtype=np.int32),
        "n0": np.asarray(f["TN"] + f["FP"], dtype=np.int32),
        "study": study,
        "n_studies": len(study_codes),
        "three_level": levels == 3,
    }
    mcmc = MCMC(
        NUTS(numpyro_model, target_accept_prob=0.95),
        num_warmup=draws,
        num_samples=draws,
        num_chains=chains,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(seed), **kw)
    s = mcmc.get_samples(group_by_chain=True)
    out = {
        "mu_sensitivity": np.asarray(s["mu"][..., 0]),
        "mu_specificity": np.asarray(s["mu"][..., 1]),
        "tau_sensitivity": np.asarray(s["tau"][..., 0]),
        "tau_specificity": np.asarray(s["tau"][..., 1]),
        "rho": np.asarray(s["rho"]),
    }
    if levels == 3:
        out["tau_within_sensitivity"] = np.asarray(s["tau_w"][..., 0])
        out["tau_within_specificity"] = np.asarray(s["tau_w"][..., 1])
        out["rho_within"] = np.asarray(s["rho_w"])
    expit = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    out["sensitivity"] = expit(out["mu_sensitivity"])
    out["specificity"] = expit(out["mu_specificity"])
    return out


def fit_bayesdta(data, levels: int, *, draws: int, chains: int, seed: int) -> dict[str, np.ndarray]:
    """Posterior draws (chain, draw) of the same parameters from bayesdta (default priors)."""
    import bayesdta as bd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bd.fit(
            data, levels=levels, seed=seed, draws=draws, tune=draws, chains=chains, progress=False
        )
    names = ["sensitivity", "specificity", *BETWEEN] + (WITHIN if levels == 3 else [])
    return {n: np.asarray(fit.draws(n).values, dtype=float) for n in names}


def _mcse(x: np.ndarray) -> float:
    """Monte Carlo SE of the mean of draws shaped (chain, draw)."""
    ds = az.convert_to_dataset({"x": np.asarray(x, dtype=float)[None] if x.ndim == 1 else x})
    return float(az.mcse(ds, method="mean")["x"].values)


def compare(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> pd.DataFrame:
    """Means, SDs, MCSEs and the z statistic of every common parameter."""
    rows = []
    for n in a:
        if n not in b:
            continue
        xa, xb = a[n], b[n]
        ma, mb = float(xa.mean()), float(xb.mean())
        ea = _mcse(xa)
        eb = _mcse(xb)
        rows.append(
            {
                "parameter": n,
                "mean_bayesdta": ma,
                "mean_numpyro": mb,
                "mcse_bayesdta": ea,
                "mcse_numpyro": eb,
                "z": (ma - mb) / np.hypot(ea, eb),
                "sd_ratio": float(xa.std() / xb.std()),
                "q025_bayesdta": float(np.quantile(xa, 0.025)),
                "q025_numpyro": float(np.quantile(xb, 0.025)),
                "q975_bayesdta": float(np.quantile(xa, 0.975)),
                "q975_numpyro": float(np.quantile(xb, 0.975)),
            }
        )
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """The agreement table of docs/validation.md."""
    lines = [
        "| dataset | levels | parameter | bayesdta mean (95% CrI) | numpyro mean (95% CrI) "
        "| z | SD ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        lines.append(
            f"| {r.dataset} | {r.levels} | `{r.parameter}` | {r.mean_bayesdta:.3f} "
            f"({r.q025_bayesdta:.3f}, {r.q975_bayesdta:.3f}) | {r.mean_numpyro:.3f} "
            f"({r.q025_numpyro:.3f}, {r.q975_numpyro:.3f}) | {r.z:+.2f} | {r.sd_ratio:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="*", default=list(DATASETS))
    ap.add_argument("--draws", type=int, default=2000, help="draws (and warm-up) per chain")
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=20240601)
    args = ap.parse_args(argv)
    import bayesdta as bd

    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / "cross_engine.csv"
    old = pd.read_csv(out_path) if out_path.exists() else pd.DataFrame()
    tables = []
    for name in args.datasets:
        levels = DATASETS[name]
        data = bd.load_example(name)
        t0 = time.perf_counter()
        a = fit_bayesdta(data, levels, draws=args.draws, chains=args.chains, seed=args.seed)
        t1 = time.perf_counter()
        b = fit_numpyro(data, levels, draws=args.draws, chains=args.chains, seed=args.seed)
        t2 = time.perf_counter()
        tab = compare(a, b)
        tab.insert(0, "levels", levels)
        tab.insert(0, "dataset", name)
        tab["draws"] = args.draws * args.chains
        print(
            f"{name}: bayesdta {t1 - t0:.0f} s, numpyro {t2 - t1:.0f} s, "
            f"max |z| {tab.z.abs().max():.2f}"
        )
        tables.append(tab)
    new = pd.concat(tables, ignore_index=True)
    if not old.empty:
        new = pd.concat([old[~old["dataset"].isin(args.datasets)], new], ignore_index=True)
    new.to_csv(out_path, index=False)
    print(markdown(new))
    return 0


if __name__ == "__main__":
    sys.exit(main())
