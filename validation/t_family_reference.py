"""Reference posterior of the Student-t random-effects model from an independent implementation.

The model of ``bd.fit(table, random_effects="t")`` (default priors) written directly with
PyMC's ``MvStudentT`` for the study effects (one bivariate t per study, no weights, no
factorization, no partial centering; ``pm.Binomial`` likelihood; the package's default priors
``mu ~ N(0, 2)``, ``tau ~ HalfNormal(1.5)``, ``rho = 2 Beta(2, 2) - 1``, ``nu ~ Gamma(2, 0.1)``)
and sampled long (4 chains x 2000 draws after 1000 warm-up, target_accept 0.95). Writes
``t_family_reference.csv``: posterior mean, SD and Monte Carlo SE of ``mu_sensitivity``,
``mu_specificity``, ``tau_sensitivity``, ``tau_specificity`` and ``nu`` on the table of
:func:`table` (20 studies around (0.80, 0.90) and two gross outliers, the table of
``tests/test_robust.py``), which the tests compare with the package's t fit -- and with the
package's *normal* fit, which must disagree (the check detects the wrong effects).

Run: python validation/t_family_reference.py   (a few minutes on an idle machine)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
TRUE_SE, TRUE_SP = 0.80, 0.90


def table() -> pd.DataFrame:
    """20 studies around (0.80, 0.90) (SDs 0.3 on the logit scale), two at (0.20, 0.40)."""
    rng = np.random.default_rng(3)
    k = 20
    logit = lambda p: np.log(np.asarray(p) / (1 - np.asarray(p)))  # noqa: E731
    u = rng.multivariate_normal([0, 0], [[0.09, 0], [0, 0.09]], size=k)
    lse = np.concatenate([logit(TRUE_SE) + u[:, 0], logit([0.2, 0.25])])
    lsp = np.concatenate([logit(TRUE_SP) + u[:, 1], logit([0.4, 0.35])])
    n1 = rng.integers(80, 150, size=k + 2)
    n0 = rng.integers(150, 300, size=k + 2)
    tp = rng.binomial(n1, 1 / (1 + np.exp(-lse)))
    tn = rng.binomial(n0, 1 / (1 + np.exp(-lsp)))
    full = pd.DataFrame(
        {
            "study": [f"s{i:02d}" for i in range(k)] + ["out1", "out2"],
            "TP": tp,
            "FN": n1 - tp,
            "FP": n0 - tn,
            "TN": tn,
        }
    )
    return full


def main() -> None:
    import arviz as az
    import pymc as pm
    import pytensor.tensor as pt

    t = table()
    tp, fn, fp, tn = (t[c].to_numpy() for c in ("TP", "FN", "FP", "TN"))
    with pm.Model():
        mu = pm.Normal("mu", 0.0, 2.0, shape=2)
        tau = pm.HalfNormal("tau", 1.5, shape=2)
        r = 2.0 * pm.Beta("r", 2.0, 2.0) - 1.0
        cov = pt.stack(
            [
                pt.stack([tau[0] ** 2, r * tau[0] * tau[1]]),
                pt.stack([r * tau[0] * tau[1], tau[1] ** 2]),
            ]
        )
        nu = pm.Gamma("nu", alpha=2.0, beta=0.1)
        theta = pm.MvStudentT("theta", nu=nu, mu=mu, scale=cov, shape=(len(tp), 2))
        pm.Binomial("tp", n=tp + fn, logit_p=theta[:, 0], observed=tp)
        pm.Binomial("tn", n=tn + fp, logit_p=theta[:, 1], observed=tn)
        idata = pm.sample(
            2000,
            tune=1000,
            chains=4,
            cores=2,
            random_seed=20261129,
            target_accept=0.95,
            progressbar=False,
            nuts_sampler="nutpie",
        )
    post = idata.posterior
    idata.to_netcdf(Path(tempfile.gettempdir()) / "t_family_reference.nc")  # the raw draws
    div = int(idata.sample_stats["diverging"].sum())
    draws = {"nu": post["nu"].values}
    for j, outcome in enumerate(("sensitivity", "specificity")):
        draws[f"mu_{outcome}"] = post["mu"].values[..., j]
        draws[f"tau_{outcome}"] = post["tau"].values[..., j]
    rows = []
    for name, x in draws.items():
        rows.append(
            {
                "quantity": name,
                "mean": float(x.mean()),
                "sd": float(x.std()),
                "mcse": float(np.ravel(az.mcse(x, method="mean"))[0]),
                "ess_bulk": float(az.ess(x, method="bulk")),
                "r_hat": float(az.rhat(x)),
                "divergences": div,
            }
        )
    out = pd.DataFrame(rows)
    out.to_csv(HERE / "t_family_reference.csv", index=False, float_format="%.6g")
    print(out.to_string(index=False))


if __name__ == "__main__":
    main()
