"""Simulation-based calibration (Talts et al. 2018) of the bayesdta model families.

For each replicate: draw the parameters from the prior the fit uses, simulate 2x2 tables on a
fixed realistic design from the model, fit with bayesdta, and record (a) the rank of every true
parameter among L thinned posterior draws and (b) whether the central 50 / 90 / 95% intervals
cover it. If the model code and the sampler are right, the ranks are uniform on 0..L and the
coverages are 50 / 90 / 95% up to binomial noise.

    python validation/sbc.py                                  # every case, 200 replicates each
    python validation/sbc.py --cases two_level --replicates 50
    python validation/sbc.py --list

Writes ``validation/results/sbc_ranks_<case>.csv`` (one row per replicate),
``validation/results/sbc_coverage.csv`` (all cases; the rows of the cases run are replaced in
place, other cases' rows are kept), ``validation/results/sbc_runs.csv`` (one row per case:
replicates, seed, sampler settings, finish date, wall time, load) and rank histograms
``docs/img/sbc_<case>.png``.

Cases are pluggable: a case is a :class:`Case` registered in :data:`CASES` with a design, the
priors it fits under (the *same* priors generate the truth: prior overrides resolved through
``bayesdta.families.priors.resolve_priors`` over the family's defaults, so generation and fit
cannot disagree), a simulator and the fit options; families not fitted by ``bd.fit`` give a
``fitter`` (the ``comparative`` and ``latent_class`` cases: ``bd.compare_tests``,
``bd.fit_latent_class``).

Priors: SBC is valid for any prior as long as the same prior generates and fits. The cases use
*realistic* priors (summary sensitivity around 0.8, specificity around 0.88, between-study SDs
HalfNormal(1)) so that simulated reviews look like real ones; ``--default-priors`` uses the
package defaults instead (wider: many simulated reviews then have sensitivities near 0 or 1).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import bayesdta as bd  # noqa: E402
from bayesdta.families.base import get_family  # noqa: E402
from bayesdta.families.priors import Prior, parse_prior, resolve_priors  # noqa: E402

RESULTS = ROOT / "validation" / "results"
IMG = ROOT / "docs" / "img"
LEVELS = (0.5, 0.9, 0.95)

#: Realistic priors shared by the cases (user-settable priors of bayesdta).
REALISTIC_PRIORS: dict[str, str] = {
    "mu_sensitivity": "Normal(1.4, 0.7)",
    "mu_specificity": "Normal(2.0, 0.7)",
    "tau": "HalfNormal(1.0)",
    "rho": "LKJ(2)",
    "tau_within": "HalfNormal(0.5)",
    "beta": "Normal(0, 0.7)",
}


# ------------------------------------------------------------------------------ priors
def draw_prior(prior: Prior, rng: np.random.Generator) -> float:
    """One draw from a bayesdta :class:`Prior` (scipy / numpy, independent of the model code)."""
    k = prior.kwargs
    d = prior.dist
    if d == "Normal":
        return float(rng.normal(k["mu"], k["sigma"]))
    if d == "HalfNormal":
        return float(abs(rng.normal(0.0, k["sigma"])))
    if d == "HalfCauchy":
        return float(abs(k["beta"] * rng.standard_cauchy()))
    if d == "HalfStudentT":
        return float(abs(k["sigma"] * rng.standard_t(k["nu"])))
    if d == "Exponential":
        return float(rng.exponential(1.0 / k["lam"]))
    if d == "Gamma":
        return float(rng.gamma(k["alpha"], 1.0 / k["beta"]))
    if d == "LKJ":  # 2x2: (rho + 1) / 2 ~ Beta(eta, eta)
        return float(2.0 * rng.beta(k["eta"], k["eta"]) - 1.0)
    if d == "Fixed":
        return float(k["value"])
    raise ValueError(f"no sampler for prior family {d}")


def cov2(tau_se: float, tau_sp: float, rho: float) -> np.ndarray:
    """2x2 covariance matrix from SDs and correlation."""
    return np.array(
        [[tau_se**2, rho * tau_se * tau_sp], [rho * tau_se * tau_sp, tau_sp**2]], dtype=float
    )


# ------------------------------------------------------------------------------ designs
def realistic_sizes(n_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Diseased / non-diseased per table: log-uniform 15-200 and 40-800 (typical DTA reviews)."""
    rng = np.random.default_rng(seed)
    n1 = np.round(np.exp(rng.uniform(np.log(15), np.log(200), n_rows))).astype(int)
    n0 = np.round(np.exp(rng.uniform(np.log(40), np.log(800), n_rows))).astype(int)
    return n1, n0


@dataclass
class Design:
    """A fixed design: study of each row, table sizes, covariate columns."""

    study: np.ndarray
    n1: np.ndarray
    n0: np.ndarray
    covariates: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.study)


def two_level_design(n_studies: int = 12, seed: int = 20180406) -> Design:
    n1, n0 = realistic_sizes(n_studies, seed)
    return Design(np.arange(n_studies), n1, n0)


def three_level_design(seed: int = 20180407) -> Design:
    per_study = [1, 1, 2, 2, 2, 3, 3, 1, 2, 4, 1, 2]  # 24 tables in 12 studies
    study = np.repeat(np.arange(len(per_study)), per_study)
    n1s, n0s = realistic_sizes(len(per_study), seed)  # tables of a study share the test set
    return Design(study, n1s[study], n0s[study])


def metareg_design(n_studies: int = 16, seed: int = 20180408) -> Design:
    n1, n0 = realistic_sizes(n_studies, seed)
    x = np.array(["A", "B"] * (n_studies // 2) + ["A"] * (n_studies % 2))
    return Design(np.arange(n_studies), n1, n0, {"group": x})


# ------------------------------------------------------------------------------ cases
@dataclass
class Case:
    """One SBC case: a family, a design, priors, a simulator and the fit options.

    ``simulate(truth_priors, design, rng) -> (truth dict, counts DataFrame)``; ``parameters``
    are the summary names compared (``fit.draws(name)``).
    """

    name: str
    family: str
    design: Callable[[], Design]
    parameters: tuple[str, ...]
    simulate: Callable[
        [Mapping[str, Prior], Design, np.random.Generator], tuple[dict, pd.DataFrame]
    ]
    fit_options: dict[str, Any] = field(default_factory=dict)
    priors: dict[str, str] = field(default_factory=lambda: dict(REALISTIC_PRIORS))
    description: str = ""
    #: ``fitter(frame, priors, seed, settings) -> ({parameter: draws}, attempts)`` for families
    #: that are not fitted by ``bd.fit`` (comparative, latent class); default ``bd.fit``.
    fitter: Callable[..., tuple[dict[str, np.ndarray], int]] | None = None


def _frame(design: Design, theta: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    se = special.expit(theta[:, 0])
    sp = special.expit(theta[:, 1])
    tp = rng.binomial(design.n1, se)
    tn = rng.binomial(design.n0, sp)
    df = pd.DataFrame(
        {
            "study": [f"s{s:02d}" for s in design.study],
            "TP": tp,
            "FN": design.n1 - tp,
            "FP": design.n0 - tn,
            "TN": tn,
        }
    )
    if len(np.unique(design.study)) < design.n_rows:
        df.insert(1, "model", [f"m{i}" for i in range(design.n_rows)])
    for k, v in design.covariates.items():
        df[k] = v
    return df


def _between(pri: Mapping[str, Prior], rng) -> dict[str, float]:
    return {
        "mu_sensitivity": draw_prior(pri["mu_sensitivity"], rng),
        "mu_specificity": draw_prior(pri["mu_specificity"], rng),
        "tau_sensitivity": draw_prior(pri["tau_sensitivity"], rng),
        "tau_specificity": draw_prior(pri["tau_specificity"], rng),
        "rho": draw_prior(pri["rho"], rng),
    }


def simulate_normal(pri, design: Design, rng) -> tuple[dict, pd.DataFrame]:
    """Two or three levels (three when a study has several rows), no covariates."""
    t = _between(pri, rng)
    n_st = int(design.study.max()) + 1
    u = rng.multivariate_normal(
        np.zeros(2), cov2(t["tau_sensitivity"], t["tau_specificity"], t["rho"]), n_st
    )
    theta = np.array([t["mu_sensitivity"], t["mu_specificity"]]) + u[design.study]
    if n_st < design.n_rows:
        t["tau_within_sensitivity"] = draw_prior(pri["tau_within_sensitivity"], rng)
        t["tau_within_specificity"] = draw_prior(pri["tau_within_specificity"], rng)
        t["rho_within"] = draw_prior(pri["rho_within"], rng)
        v = rng.multivariate_normal(
            np.zeros(2),
            cov2(t["tau_within_sensitivity"], t["tau_within_specificity"], t["rho_within"]),
            design.n_rows,
        )
        theta = theta + v
    return t, _frame(design, theta, rng)


def simulate_metareg(pri, design: Design, rng) -> tuple[dict, pd.DataFrame]:
    """Two levels, one binary covariate (reference level "A"): theta = mu + beta x + u."""
    t = _between(pri, rng)
    b_se = draw_prior(pri["beta_sensitivity"], rng)
    b_sp = draw_prior(pri["beta_specificity"], rng)
    t["beta_sensitivity[group[T.B]]"] = b_se
    t["beta_specificity[group[T.B]]"] = b_sp
    x = (design.covariates["group"] == "B").astype(float)
    u = rng.multivariate_normal(
        np.zeros(2), cov2(t["tau_sensitivity"], t["tau_specificity"], t["rho"]), design.n_rows
    )
    theta = np.column_stack([t["mu_sensitivity"] + b_se * x, t["mu_specificity"] + b_sp * x]) + u
    return t, _frame(design, theta, rng)


def simulate_t(pri, design: Design, rng) -> tuple[dict, pd.DataFrame]:
    """Bivariate Student-t study effects as a scale mixture: u_s ~ N(0, Sigma / lambda_s)."""
    t = _between(pri, rng)
    t["nu"] = draw_prior(pri["nu"], rng)
    lam = rng.gamma(t["nu"] / 2.0, 2.0 / t["nu"], design.n_rows)
    z = rng.multivariate_normal(
        np.zeros(2), cov2(t["tau_sensitivity"], t["tau_specificity"], t["rho"]), design.n_rows
    )
    theta = np.array([t["mu_sensitivity"], t["mu_specificity"]]) + z / np.sqrt(lam)[:, None]
    return t, _frame(design, theta, rng)


BETWEEN = ("mu_sensitivity", "mu_specificity", "tau_sensitivity", "tau_specificity", "rho")

#: name -> Case. Add a family by registering a Case here.
CASES: dict[str, Case] = {}


def register_case(case: Case) -> Case:
    """Add ``case`` to :data:`CASES`."""
    CASES[case.name] = case
    return case


register_case(
    Case(
        "two_level",
        "normal",
        two_level_design,
        BETWEEN,
        simulate_normal,
        description="bivariate binomial-normal, 12 studies",
    )
)
register_case(
    Case(
        "three_level",
        "normal",
        three_level_design,
        BETWEEN + ("tau_within_sensitivity", "tau_within_specificity", "rho_within"),
        simulate_normal,
        fit_options={"levels": 3},
        description="three levels, 24 tables in 12 studies (1-4 per study)",
    )
)
register_case(
    Case(
        "metaregression",
        "normal",
        metareg_design,
        BETWEEN + ("beta_sensitivity[group[T.B]]", "beta_specificity[group[T.B]]"),
        simulate_metareg,
        fit_options={"formula": "~ group", "reference": {"group": "A"}},
        description="two levels, binary covariate, 16 studies",
    )
)
register_case(
    Case(
        "t",
        "t",
        lambda: two_level_design(14, seed=20180409),
        BETWEEN + ("nu",),
        simulate_t,
        fit_options={"random_effects": "t"},
        description="bivariate Student-t study effects, 14 studies, nu ~ Gamma(2, 0.1)",
    )
)

register_case(
    Case(
        "t_many",
        "t",
        lambda: Design(
            np.arange(48),
            *(x * 4 for x in realistic_sizes(48, seed=20180412)),
        ),
        BETWEEN + ("nu",),
        simulate_t,
        fit_options={"random_effects": "t"},
        description="Student-t effects, 48 large studies (60-800 / 160-3200 per group)",
    )
)


# ---------------------------------------------------------------- comparative (issue 12)
COMPARATIVE_TESTS = ("A", "B", "C")


def comparative_design(seed: int = 20180410) -> Design:
    """14 studies: 6 with tests A and B, 2 with A, B and C, 3 with A and C, 1 each single-test.

    Tables of a study share the test set (paired); the test of each row is the covariate
    ``test``.
    """
    per_study = [("A", "B")] * 6 + [("A", "B", "C")] * 2 + [("A", "C")] * 3
    per_study += [("A",), ("B",), ("C",)]
    study = np.concatenate([[s] * len(t) for s, t in enumerate(per_study)])
    test = np.concatenate([list(t) for t in per_study])
    n1s, n0s = realistic_sizes(len(per_study), seed)
    return Design(study, n1s[study], n0s[study], {"test": test})


def simulate_comparative(pri, design: Design, rng) -> tuple[dict, pd.DataFrame]:
    """The ``"deviations"`` model: theta_r = mu_t(r) + u_s(r) + v_r (docs/comparative.md).

    Every test's mean logit is drawn from the summary-point prior (no-intercept coding).
    """
    t = _between(pri, rng)
    del t["mu_sensitivity"], t["mu_specificity"]
    tests = design.covariates["test"]
    mu = {}
    for k in COMPARATIVE_TESTS:
        mu[k] = (draw_prior(pri["mu_sensitivity"], rng), draw_prior(pri["mu_specificity"], rng))
        t[f"mu_sensitivity[{k}]"], t[f"mu_specificity[{k}]"] = mu[k]
    for k in ("tau_within_sensitivity", "tau_within_specificity", "rho_within"):
        t[k] = draw_prior(pri[k], rng)
    n_st = int(design.study.max()) + 1
    u = rng.multivariate_normal(
        np.zeros(2), cov2(t["tau_sensitivity"], t["tau_specificity"], t["rho"]), n_st
    )
    v = rng.multivariate_normal(
        np.zeros(2),
        cov2(t["tau_within_sensitivity"], t["tau_within_specificity"], t["rho_within"]),
        design.n_rows,
    )
    theta = np.array([mu[k] for k in tests]) + u[design.study] + v
    frame = _frame(design, theta, rng)
    return t, frame.drop(columns=["model"], errors="ignore")


def fit_comparative(frame, priors, seed, settings) -> tuple[dict[str, np.ndarray], int]:
    """``bd.compare_tests`` (``"deviations"``); draws of the mean logits per test and the SDs."""
    fit = bd.compare_tests(
        frame, test="test", study="study", priors=priors, seed=seed, verbose=False, **settings
    )
    d = fit.draws()
    out = {}
    for j, k in enumerate(fit.tests):
        for o in ("sensitivity", "specificity"):
            out[f"mu_{o}[{k}]"] = d[f"mu_{o}"][:, j]
    for k in ("tau_sensitivity", "tau_specificity", "rho", "rho_within"):
        out[k] = d[k]
    for o in ("sensitivity", "specificity"):
        out[f"tau_within_{o}"] = d[f"tau_within_{o}"][:, 0]  # one SD for all tests
    return out, len(fit.sampler.get("attempts", [])) or 1


register_case(
    Case(
        "comparative",
        "normal",
        comparative_design,
        tuple(f"mu_{o}[{k}]" for k in COMPARATIVE_TESTS for o in ("sensitivity", "specificity"))
        + BETWEEN[2:]
        + ("tau_within_sensitivity", "tau_within_specificity", "rho_within"),
        simulate_comparative,
        fitter=fit_comparative,
        description="compare_tests (deviations), 3 tests, 25 tables in 14 studies",
    )
)


# ---------------------------------------------------------------- latent class (issue 12)
#: Reference types of the latent-class case: their Beta priors generate and fit.
LATENT_REFERENCE_PRIORS: dict[str, Any] = {
    "DXA": {"sensitivity": "Beta(15, 5)", "specificity": "Beta(45, 5)"},
    "CT": "perfect",
}


def latent_class_design(seed: int = 20180411) -> Design:
    """16 tables, every table its own unit: 8 against CT (perfect), 8 against DXA."""
    n = 16
    rng = np.random.default_rng(seed)
    tot = np.round(np.exp(rng.uniform(np.log(80), np.log(600), n))).astype(int)
    ref = np.array(["CT", "DXA"] * (n // 2))
    # n1 + n0 is the table size (the split is latent); n1 carries the total, n0 is unused
    return Design(np.arange(n), tot, np.zeros(n, dtype=int), {"reference_standard": ref})


def _beta_args(text: str) -> tuple[float, float]:
    p = parse_prior(text)
    return float(p.kwargs["alpha"]), float(p.kwargs["beta"])


def simulate_latent_class(pri, design: Design, rng) -> tuple[dict, pd.DataFrame]:
    """Conditionally independent latent-class model (docs/latent_class.md), own code.

    The index summary point is drawn from the Normal priors truncated to mu_se + mu_sp > 0
    (rejection), per-table prevalence from its Beta prior, DXA accuracy from its Beta priors.
    """
    while True:
        t = _between(pri, rng)
        if t["mu_sensitivity"] + t["mu_specificity"] > 0:
            break
    a, b = pri["prevalence"].kwargs["alpha"], pri["prevalence"].kwargs["beta"]
    ref_acc = {}
    for name, spec in LATENT_REFERENCE_PRIORS.items():
        if spec == "perfect":
            ref_acc[name] = (1.0, 1.0)
        else:
            se2 = rng.beta(*_beta_args(spec["sensitivity"]))
            sp2 = rng.beta(*_beta_args(spec["specificity"]))
            ref_acc[name] = (float(se2), float(sp2))
            t[f"reference_sensitivity[{name}]"] = float(se2)
            t[f"reference_specificity[{name}]"] = float(sp2)
    u = rng.multivariate_normal(
        np.zeros(2), cov2(t["tau_sensitivity"], t["tau_specificity"], t["rho"]), design.n_rows
    )
    se1 = special.expit(t["mu_sensitivity"] + u[:, 0])
    sp1 = special.expit(t["mu_specificity"] + u[:, 1])
    refs = design.covariates["reference_standard"]
    rows = []
    for i in range(design.n_rows):
        pi = rng.beta(a, b)
        se2, sp2 = ref_acc[refs[i]]
        # cells (index, reference): ++, +-, -+, --
        p1 = np.array(
            [se1[i] * se2, se1[i] * (1 - se2), (1 - se1[i]) * se2, (1 - se1[i]) * (1 - se2)]
        )
        p0 = np.array(
            [(1 - sp1[i]) * (1 - sp2), (1 - sp1[i]) * sp2, sp1[i] * (1 - sp2), sp1[i] * sp2]
        )
        cells = rng.multinomial(design.n1[i], np.clip(pi * p1 + (1 - pi) * p0, 0, 1))
        rows.append(
            {"study": f"s{i:02d}", "TP": cells[0], "FP": cells[1], "FN": cells[2], "TN": cells[3]}
        )
    frame = pd.DataFrame(rows)
    frame["reference_standard"] = refs
    return t, frame


def fit_latent_class_case(frame, priors, seed, settings) -> tuple[dict[str, np.ndarray], int]:
    """``bd.fit_latent_class`` with the case's reference priors."""
    fit = bd.fit_latent_class(
        frame,
        reference_standard="reference_standard",
        reference_priors=LATENT_REFERENCE_PRIORS,
        priors=priors,
        seed=seed,
        verbose=False,
        study="study",
        **settings,
    )
    out = {p: np.asarray(fit.draws(p).values, dtype=float) for p in LATENT_CLASS_PARAMETERS}
    return out, len(fit.sampler.get("attempts", [])) or 1


LATENT_CLASS_PARAMETERS = BETWEEN + (
    "reference_sensitivity[DXA]",
    "reference_specificity[DXA]",
)

register_case(
    Case(
        "latent_class",
        "latent_class",
        latent_class_design,
        LATENT_CLASS_PARAMETERS,
        simulate_latent_class,
        fitter=fit_latent_class_case,
        priors={
            **{k: REALISTIC_PRIORS[k] for k in ("mu_sensitivity", "mu_specificity", "tau", "rho")},
            # prevalence 0.05-0.85 (95%): a table with every patient in one reference class
            # (FP + TN = 0 or TP + FN = 0) is refused by DTAData, about 1e-4 per table here
            "prevalence": "Beta(2, 3)",
        },
        description="fit_latent_class, 16 tables (8 CT perfect, 8 DXA Beta(15,5)/Beta(45,5))",
    )
)


# ------------------------------------------------------------------------------ running
@dataclass
class SBCResult:
    """Ranks (replicate x parameter, 0..n_draws), coverage table and per-replicate records."""

    case: str
    n_draws: int
    ranks: pd.DataFrame
    covered: pd.DataFrame  # replicate x (parameter, level) booleans
    records: pd.DataFrame  # replicate: seconds, warnings, attempts
    skipped: list[str] = field(default_factory=list)  # replicates whose tables were refused

    @property
    def coverage(self) -> pd.DataFrame:
        """Fraction of replicates whose central interval covers the truth, parameter x level."""
        c = self.covered.mean().unstack("level")
        c.columns = [f"cover_{int(round(100 * x))}" for x in c.columns]
        c.insert(0, "n", len(self.covered))
        return c

    def chi2(self, bins: int = 10) -> pd.Series:
        """Chi-square p-value of rank uniformity (``bins`` equal bins) per parameter."""
        out = {}
        edges = np.linspace(0, self.n_draws + 1, bins + 1)
        for p in self.ranks:
            counts, _ = np.histogram(self.ranks[p].dropna(), bins=edges)
            out[p] = stats.chisquare(counts).pvalue
        return pd.Series(out, name="chi2_p")


def _thin(x: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws evenly spaced over chains (x: chain x draw)."""
    flat = np.asarray(x).reshape(-1)
    idx = np.linspace(0, flat.size - 1, n).round().astype(int)
    return flat[idx]


def _ess(x: np.ndarray) -> float:
    """Bulk ESS of chain x draw draws (ArviZ); NaN for flattened draws."""
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        return float("nan")
    import arviz as az

    return float(az.ess(x, method="bulk"))


def fit_priors(case: Case, default_priors: bool) -> dict[str, Prior]:
    """The complete prior set of a case (the family's defaults with the case's overrides)."""
    fam = get_family(case.family)
    over = {} if default_priors else case.priors
    over = {k: v for k, v in over.items() if _applies(k, fam.default_priors)}
    return resolve_priors(over, defaults=fam.default_priors)


def _applies(name: str, defaults: Mapping[str, Any]) -> bool:
    groups = {"tau", "tau_within", "mu", "beta"}
    return name in defaults or name in groups


def run_sbc(
    case: str | Case,
    *,
    n_replicates: int = 100,
    seed: int = 0,
    n_draws: int = 99,
    sampler: Mapping[str, Any] | None = None,
    default_priors: bool = False,
    progress: bool = False,
) -> SBCResult:
    """Run ``n_replicates`` SBC replicates of a case.

    Parameters
    ----------
    case : str or Case
        A name of :data:`CASES` or a case.
    n_replicates : int
        Replicates (each: one simulated review, one fit).
    seed : int
        Master seed: replicate ``i`` simulates with ``seed * 100003 + i`` and fits with the
        same number.
    n_draws : int
        L: posterior draws (thinned evenly over the chains) the truth is ranked among.
    sampler : mapping, optional
        Sampler settings of ``bd.fit`` (default chains=2, draws=500, tune=500).
    default_priors : bool
        Fit and generate under the package's default priors instead of the case's.
    """
    c = CASES[case] if isinstance(case, str) else case
    design = c.design()
    pri = fit_priors(c, default_priors)
    prior_arg = {k: str(v) for k, v in pri.items()}
    settings = {"chains": 2, "draws": 500, "tune": 500, "progress": False, **(sampler or {})}
    ranks, covered, records, skipped = [], [], [], []
    for i in range(n_replicates):
        rep_seed = seed * 100003 + i
        rng = np.random.default_rng(rep_seed)
        truth, frame = c.simulate(pri, design, rng)
        t0 = time.perf_counter()
        fit_diag: dict[str, float] = {}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if c.fitter is not None:
                    post, attempts = c.fitter(frame, prior_arg, rep_seed, settings)
                else:
                    data = bd.DTAData.from_frame(
                        frame, study="study", model="model" if "model" in frame else None
                    )
                    fit = bd.fit(
                        data,
                        priors=prior_arg,
                        seed=rep_seed,
                        verbose=False,
                        **c.fit_options,
                        **settings,
                    )
                    post = {p: np.asarray(fit.draws(p).values, dtype=float) for p in c.parameters}
                    attempts = len(fit.sampler.get("attempts", [])) or 1
                    fd = fit.diagnostics()
                    fit_diag = {
                        "divergences": int(fd["divergences"]),
                        "max_r_hat": float(fd["max_r_hat"]),
                        "min_ess_bulk": float(fd["min_ess_bulk"]),
                        "min_ess_tail": float(fd["min_ess_tail"]),
                        "min_bfmi": float(fd["min_bfmi"]),
                    }
            except bd.DTADataError as err:
                # A simulated table the reader refuses (e.g. every patient of a latent-class
                # table in one reference class). Skipping depends on the data only, and given
                # the data the truth is still a posterior draw, so the kept ranks stay uniform.
                skipped.append(f"replicate {i} (seed {rep_seed}): {err}")
                if progress:
                    print(f"  {c.name} replicate {i + 1}/{n_replicates} skipped: {err}", flush=True)
                continue
        n_warn = sum(issubclass(w.category, bd.SamplerWarning) for w in caught)
        r, cv, diag = {}, {}, {}
        for p in c.parameters:
            x = np.asarray(post[p], dtype=float)
            r[p] = int((_thin(x, n_draws) < truth[p]).sum())
            # bulk ESS (chains x draws arrays only) and posterior SD: is the thinned sample of
            # L draws roughly independent, and how far did the data move the prior?
            diag[f"ess_{p}"] = _ess(x)
            diag[f"sd_{p}"] = float(np.std(x))
            for lev in LEVELS:
                lo, hi = np.quantile(x, [(1 - lev) / 2, (1 + lev) / 2])
                cv[(p, lev)] = bool(lo <= truth[p] <= hi)
        ranks.append(r)
        covered.append(cv)
        records.append(
            {
                "replicate": i,
                "seed": rep_seed,
                "seconds": time.perf_counter() - t0,
                "sampler_warnings": n_warn,
                "attempts": attempts,
                **fit_diag,
                **{f"true_{k}": v for k, v in truth.items()},
                **diag,
            }
        )
        if progress:
            print(
                f"  {c.name} replicate {i + 1}/{n_replicates} {records[-1]['seconds']:.1f} s",
                flush=True,
            )
    cov = pd.DataFrame(covered)
    cov.columns = pd.MultiIndex.from_tuples(cov.columns, names=["parameter", "level"])
    return SBCResult(c.name, n_draws, pd.DataFrame(ranks), cov, pd.DataFrame(records), skipped)


def fast_check(res: SBCResult) -> list[str]:
    """The gross-miscalibration checks of ``tests/test_sbc_fast.py``; returns the failures.

    Pooled over parameters and replicates (n checks): 50% coverage within n/2 +- 5 binomial
    SDs, 90% coverage above 0.9 n - 6 SDs; per parameter, the mean normalised rank within
    0.5 +- 0.25.
    """
    cov = res.covered
    n = cov.shape[0] * len(res.ranks.columns)
    c50 = int(cov.xs(0.5, axis=1, level="level").to_numpy().sum())
    c90 = int(cov.xs(0.9, axis=1, level="level").to_numpy().sum())
    sd50, sd90 = np.sqrt(n * 0.25), np.sqrt(n * 0.09)
    out = []
    if abs(c50 - n / 2) > 5 * sd50:
        out.append(f"50% intervals cover {c50}/{n}")
    if c90 < 0.9 * n - 6 * sd90:
        out.append(f"90% intervals cover {c90}/{n}")
    u = (res.ranks + 0.5) / (res.n_draws + 1)
    for p, m in u.mean().items():
        if abs(m - 0.5) > 0.25:
            out.append(f"mean normalised rank of {p} is {m:.2f}")
    return out


def _misspecified(kind: str) -> Case:
    """The two-level case with a deliberately wrong simulator (for the power of fast_check)."""
    base = CASES["two_level"]
    if kind == "tau_x2":

        def simulate(pri, design, rng):
            t, _ = simulate_normal(pri, design, rng)  # draws the truth as the prior says
            t2 = dict(
                t,
                tau_sensitivity=2 * t["tau_sensitivity"],
                tau_specificity=2 * t["tau_specificity"],
            )
            u = rng.multivariate_normal(
                np.zeros(2),
                cov2(t2["tau_sensitivity"], t2["tau_specificity"], t2["rho"]),
                design.n_rows,
            )
            theta = np.array([t["mu_sensitivity"], t["mu_specificity"]]) + u
            return t, _frame(design, theta, rng)  # ... but reports the prior's taus as the truth

    elif kind == "swap_se_sp":

        def simulate(pri, design, rng):
            t, frame = simulate_normal(pri, design, rng)
            frame = frame.rename(columns={"TP": "TN", "TN": "TP", "FN": "FP", "FP": "FN"})
            return t, frame

    elif kind in ("t_nu_scale", "t_mixing_scale", "t_normal_effects"):
        return _misspecified_t(kind)
    else:
        raise ValueError(kind)
    return Case(f"two_level_{kind}", base.family, base.design, base.parameters, simulate)


def _misspecified_t(kind: str) -> Case:
    """The t case with a wrong simulator (power of fast_check for the t family).

    ``t_nu_scale``: nu drawn from Gamma(2, 0.1) read as shape / *scale* (nu ~ 0.2, the
    parameterization slip the SBC of issue 10 was suspected of); ``t_mixing_scale``: the
    mixing weights drawn as Gamma(nu/2, scale nu/2) instead of rate nu/2 (effects about nu/2
    times too narrow); ``t_normal_effects``: bivariate normal effects (nu = infinity) reported
    with a nu drawn from the prior (a wrong likelihood for nu only).
    """
    base = CASES["t"]

    def simulate(pri, design, rng):
        t = _between(pri, rng)
        t["nu"] = draw_prior(pri["nu"], rng)
        nu = t["nu"]
        cov = cov2(t["tau_sensitivity"], t["tau_specificity"], t["rho"])
        if kind == "t_nu_scale":
            k = pri["nu"].kwargs
            t["nu"] = nu = float(rng.gamma(k["alpha"], k["beta"]))
            lam = rng.gamma(nu / 2.0, 2.0 / nu, design.n_rows)
        elif kind == "t_mixing_scale":
            lam = rng.gamma(nu / 2.0, nu / 2.0, design.n_rows)
        else:
            lam = np.ones(design.n_rows)
        z = rng.multivariate_normal(np.zeros(2), cov, design.n_rows)
        theta = np.array([t["mu_sensitivity"], t["mu_specificity"]]) + z / np.sqrt(lam)[:, None]
        return t, _frame(design, theta, rng)

    return Case(f"t_{kind}", base.family, base.design, base.parameters, simulate, base.fit_options)


#: Settings of the fast SBC subsets (tests/test_sbc_fast.py) per case: replicates, sampler.
FAST_SETTINGS: dict[str, dict[str, Any]] = {
    "two_level": {"n_replicates": 20, "sampler": {"chains": 2, "draws": 300, "tune": 300}},
    "t": {"n_replicates": 16, "sampler": {"chains": 2, "draws": 250, "tune": 250}},
}
#: Wrong simulators of the power study per family of cases.
POWER_KINDS: dict[str, tuple[str, ...]] = {
    "two_level": ("tau_x2", "swap_se_sp"),
    "t": ("t_nu_scale", "t_mixing_scale", "t_normal_effects"),
}


def power_study(n_runs: int = 5, seed: int = 100, case: str = "two_level") -> pd.DataFrame:
    """How often fast_check fails for the correct and for wrong simulators of ``case``."""
    rows = []
    fast = FAST_SETTINGS[case]
    for kind in ("correct", *POWER_KINDS[case]):
        sim = CASES[case] if kind == "correct" else _misspecified(kind)
        for r in range(n_runs):
            res = run_sbc(sim, seed=seed + r, n_draws=49, **fast)
            fails = fast_check(res)
            rows.append(
                {
                    "case": case,
                    "simulator": kind,
                    "run": r,
                    "failed": bool(fails),
                    "why": "; ".join(fails),
                }
            )
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def plot_ranks(res: SBCResult, *, bins: int = 10):
    """Rank histograms with the 99% band of a uniform histogram (binomial quantiles)."""
    import matplotlib.pyplot as plt

    params = list(res.ranks.columns)
    ncol = min(4, len(params))
    nrow = int(np.ceil(len(params) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.0 * ncol, 2.4 * nrow), squeeze=False)
    n = len(res.ranks)
    edges = np.linspace(0, res.n_draws + 1, bins + 1)
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1.0 / bins)
    for ax, p in zip(axes.flat, params, strict=False):
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(n / bins, color="0.5", lw=0.8)
        ax.hist(res.ranks[p], bins=edges, color="tab:blue", edgecolor="white")
        ax.set_title(p, fontsize=8)
        ax.set_yticks([])
        ax.set_xticks([0, res.n_draws + 1])
    for ax in list(axes.flat)[len(params) :]:
        ax.axis("off")
    fig.suptitle(
        f"SBC ranks, {res.case}: {n} replicates, L = {res.n_draws} (grey: 99% band)", fontsize=9
    )
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", default=list(CASES))
    ap.add_argument("--replicates", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2018)
    ap.add_argument("--draws", type=int, default=500, help="posterior draws per chain")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--default-priors", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--power", type=int, default=0, help="power study of the fast test: N runs")
    ap.add_argument(
        "--power-case", default="two_level", choices=list(POWER_KINDS), help="with --power"
    )
    args = ap.parse_args(argv)
    if args.power:
        RESULTS.mkdir(parents=True, exist_ok=True)
        table = power_study(args.power, case=args.power_case)
        path = RESULTS / "sbc_fast_power.csv"
        if path.exists():  # keep the other cases' rows
            old = pd.read_csv(path)
            if "case" not in old:  # files written before the t case: two_level rows
                old.insert(0, "case", "two_level")
            old = old[old["case"] != args.power_case]
            table = pd.concat([old, table], ignore_index=True)
        table.to_csv(path, index=False)
        print(table.groupby(["case", "simulator"])["failed"].agg(["sum", "count"]))
        return 0
    if args.list:
        for c in CASES.values():
            print(f"{c.name:16s} family={c.family:8s} {c.description}")
        return 0
    RESULTS.mkdir(parents=True, exist_ok=True)
    IMG.mkdir(parents=True, exist_ok=True)
    cov_path = RESULTS / "sbc_coverage.csv"
    old = pd.read_csv(cov_path) if cov_path.exists() else pd.DataFrame()
    tables = []
    for name in args.cases:
        t0 = time.perf_counter()
        res = run_sbc(
            name,
            n_replicates=args.replicates,
            seed=args.seed,
            sampler={"draws": args.draws, "tune": args.draws, "chains": args.chains},
            default_priors=args.default_priors,
            progress=True,
        )
        pd.concat([res.records, res.ranks.add_prefix("rank_")], axis=1).to_csv(
            RESULTS / f"sbc_ranks_{name}.csv", index=False
        )
        cov = res.coverage.join(res.chi2())
        cov.insert(0, "case", name)
        tables.append(cov.reset_index().rename(columns={"index": "parameter"}))
        fig = plot_ranks(res)
        fig.savefig(IMG / f"sbc_{name}.png", dpi=110)
        runs_path = RESULTS / "sbc_runs.csv"
        run = {
            "case": name,
            "replicates": args.replicates,
            "seed": args.seed,
            "draws": args.draws,
            "chains": args.chains,
            "priors": "default" if args.default_priors else "realistic",
            "finished_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
            "wall_s": round(time.perf_counter() - t0),
            "load_1min": round(os.getloadavg()[0], 1),
            "skipped": len(res.skipped),
        }
        runs_old = pd.read_csv(runs_path, dtype=str) if runs_path.exists() else pd.DataFrame()
        _replace_case_rows(runs_old, pd.DataFrame([run])).to_csv(runs_path, index=False)
        print(
            f"{name}: {time.perf_counter() - t0:.0f} s, "
            f"{int(res.records['sampler_warnings'].gt(0).sum())} replicates with sampler warnings"
        )
        print(cov.round(3).to_string())
    new = _replace_case_rows(old, pd.concat(tables, ignore_index=True))
    new.to_csv(cov_path, index=False)
    print("wrote", cov_path)
    return 0


def _replace_case_rows(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """``old`` with the rows of the cases in ``new`` replaced in place (new cases appended).

    Other cases' rows keep their content and position, so runs of different cases (on
    different branches) change disjoint blocks of the CSV files.
    """
    if old.empty:
        return new
    parts = [
        new[new["case"] == c] if c in set(new["case"]) else rows
        for c, rows in old.groupby("case", sort=False)
    ]
    parts += [new[new["case"] == c] for c in new["case"].unique() if c not in set(old["case"])]
    return pd.concat(parts, ignore_index=True)


if __name__ == "__main__":
    sys.exit(main())
