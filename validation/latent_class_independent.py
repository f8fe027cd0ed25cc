"""An independent implementation of the bivariate latent-class model, in plain PyMC.

Written from the model's equations (Dendukuri et al. 2012; docs/latent_class.md), sharing no
code with ``bayesdta.families.latent_class``: centered bivariate normal table effects
(``pm.MvNormal``) instead of bayesdta's non-centered ones, ``pm.Beta`` priors instead of
bayesdta's logit-scale Beta potentials, the Youden constraint as a hard ``-inf`` potential
instead of bayesdta's ``log(mu_se + mu_sp)`` parameterization, the cell probabilities by
enumerating the latent status and both test results, ``pm.Multinomial`` for the likelihood,
and PyMC's own NUTS instead of nutpie. Agreement of the two posteriors within Monte Carlo
error checks the model code, the priors and the sampling of bayesdta.

    python validation/latent_class_independent.py [DRAWS] [pymc|nutpie]   # worked example

prints the posterior means, SDs and MCSEs of both implementations and the z-scores of their
differences (``tests/test_latent_class.py`` runs a smaller version).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "src" / "bayesdta" / "data" / "datasets" / "osteoporosis_latent_class.csv"
#: The worked example's reference priors (models/osteoporosis_latent_class.toml).
REFERENCE_PRIORS = {
    "DXA": {"sensitivity": (15.0, 5.0), "specificity": (45.0, 5.0)},
    "CT": "perfect",
}
COMPARED = [
    "mu_sensitivity",
    "mu_specificity",
    "tau_sensitivity",
    "tau_specificity",
    "rho",
    "reference_sensitivity[DXA]",
    "reference_specificity[DXA]",
    "prevalence_mean",
]


def independent_model(frame: pd.DataFrame, reference_priors=REFERENCE_PRIORS):
    """The latent-class model written directly in PyMC (default priors of bayesdta)."""
    import pymc as pm
    import pytensor.tensor as pt

    counts = frame[["TP", "FP", "FN", "TN"]].to_numpy(dtype=int)
    n = counts.sum(axis=1)
    types = sorted(reference_priors)
    ridx = np.array([types.index(v) for v in frame["reference_standard"]])
    k = len(frame)
    with pm.Model() as model:
        mu_se = pm.Normal("mu_sensitivity", 0.0, 2.0)
        mu_sp = pm.Normal("mu_specificity", 0.0, 2.0)
        pm.Potential("youden", pt.switch(mu_se + mu_sp > 0, 0.0, -np.inf))
        tau_se = pm.HalfNormal("tau_sensitivity", 1.5)
        tau_sp = pm.HalfNormal("tau_specificity", 1.5)
        rho = pm.Deterministic("rho", 2.0 * pm.Beta("r01", 2.0, 2.0) - 1.0)
        cov = pt.stack(
            [
                pt.stack([tau_se**2, rho * tau_se * tau_sp]),
                pt.stack([rho * tau_se * tau_sp, tau_sp**2]),
            ]
        )
        theta = pm.MvNormal("theta", mu=pt.stack([mu_se, mu_sp]), cov=cov, shape=(k, 2))
        se1 = pm.math.invlogit(theta[:, 0])
        sp1 = pm.math.invlogit(theta[:, 1])
        prev = pm.Beta("prevalence", 1.0, 1.0, shape=k)
        se2_types, sp2_types = [], []
        for t in types:
            spec = reference_priors[t]
            if spec == "perfect":
                se2_types.append(pt.as_tensor(1.0))
                sp2_types.append(pt.as_tensor(1.0))
            else:
                se2_types.append(pm.Beta(f"reference_sensitivity[{t}]", *spec["sensitivity"]))
                sp2_types.append(pm.Beta(f"reference_specificity[{t}]", *spec["specificity"]))
        se2 = pt.stack(se2_types)[ridx]
        sp2 = pt.stack(sp2_types)[ridx]
        # enumerate: P(T1 = a, T2 = b) = sum_d P(d) P(T1 = a | d) P(T2 = b | d)
        cells = []
        for a, b in ((1, 1), (1, 0), (0, 1), (0, 0)):
            p_d1 = (se1 if a else 1 - se1) * (se2 if b else 1 - se2)
            p_d0 = ((1 - sp1) if a else sp1) * ((1 - sp2) if b else sp2)
            cells.append(prev * p_d1 + (1 - prev) * p_d0)
        probs = pt.stack(cells, axis=1)
        probs = probs / probs.sum(axis=1, keepdims=True)
        pm.Multinomial("counts", n=n, p=probs, observed=counts)
        pm.Deterministic("prevalence_mean", prev.mean())
    return model


def fit_independent(
    frame: pd.DataFrame, *, draws=1000, tune=1000, chains=4, seed=1, nuts_sampler="pymc"
):
    """Sample the independent model (PyMC's NUTS by default); returns draws by name.

    ``nuts_sampler="nutpie"`` samples the same independent model with nutpie (faster; the
    model code stays independent, the sampler is then bayesdta's).
    """
    import pymc as pm

    model = independent_model(frame)
    with model:
        idata = pm.sample(
            nuts_sampler=nuts_sampler,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=1,
            random_seed=seed,
            target_accept=0.9,
            progressbar=False,
            initvals={"mu_specificity": 1.0},
            compute_convergence_checks=False,
        )
    post = idata.posterior
    return {name: post[name].values for name in COMPARED}


def fit_bayesdta(frame: pd.DataFrame, *, draws=1000, tune=1000, chains=4, seed=1):
    """The same model fitted by bayesdta; returns draws by compared name."""
    import bayesdta as bd

    f = bd.fit_latent_class(
        frame,
        reference_priors={
            t: v if v == "perfect" else {m: bd.Beta(*ab) for m, ab in v.items()}
            for t, v in REFERENCE_PRIORS.items()
        },
        draws=draws,
        tune=tune,
        chains=chains,
        seed=seed,
        escalate=False,
        verbose=False,
    )
    return {name: f.draws(name).transpose("chain", "draw").values for name in COMPARED}


def compare(a: dict, b: dict) -> pd.DataFrame:
    """Means, SDs, MCSEs and the z-score of the difference of means."""
    import arviz as az

    rows = []
    for name in COMPARED:
        xa, xb = np.asarray(a[name]), np.asarray(b[name])
        ma = float(np.ravel(az.mcse(xa, method="mean"))[0])
        mb = float(np.ravel(az.mcse(xb, method="mean"))[0])
        rows.append(
            {
                "quantity": name,
                "bayesdta_mean": xa.mean(),
                "independent_mean": xb.mean(),
                "bayesdta_sd": xa.std(),
                "independent_sd": xb.std(),
                "mcse_diff": float(np.hypot(ma, mb)),
                "z": (xa.mean() - xb.mean()) / float(np.hypot(ma, mb)),
                "sd_ratio": xa.std() / xb.std(),
            }
        )
    return pd.DataFrame(rows).set_index("quantity")


def main(argv: list[str]) -> None:
    draws = int(argv[1]) if len(argv) > 1 else 1000
    sampler = argv[2] if len(argv) > 2 else "pymc"
    frame = pd.read_csv(EXAMPLE)
    t0 = time.perf_counter()
    a = fit_bayesdta(frame, draws=draws, tune=draws)
    t1 = time.perf_counter()
    b = fit_independent(frame, draws=draws, tune=draws, nuts_sampler=sampler)
    t2 = time.perf_counter()
    np.savez(
        "latent_class_agreement_draws.npz",
        **{f"bayesdta:{k}": v for k, v in a.items()},
        **{f"independent:{k}": v for k, v in b.items()},
    )
    with pd.option_context("display.width", 160):
        print(compare(a, b).round(4))
    print(
        f"bayesdta {t1 - t0:.1f} s, independent model ({sampler}) {t2 - t1:.1f} s "
        f"(4 chains, {draws} draws, each including compilation)"
    )


if __name__ == "__main__":
    main(sys.argv)
