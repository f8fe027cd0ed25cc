r"""Imperfect reference standard: the bivariate latent-class family (``"latent_class"``).

Every table cross-classifies the index test (T1) against the study's reference standard (T2):
``TP`` = T1+ T2+, ``FP`` = T1+ T2-, ``FN`` = T1- T2+, ``TN`` = T1- T2-. When the reference is
imperfect these are not the true-positive... counts of the index test: the true status ``D``
is latent. The model (Dendukuri et al. 2012; Xie et al. 2017) is, for table ``i`` with
reference type ``t(i)``:

.. math::

    (\mathrm{logit}\, Se_{1i}, \mathrm{logit}\, Sp_{1i}) \sim
        N_2\big((\mu_{se}, \mu_{sp}), \Sigma(\tau_{se}, \tau_{sp}, \rho)\big),
    \quad \pi_i \sim \mathrm{Beta}(a_\pi, b_\pi),

    Se_{2t}, Sp_{2t} \sim \text{the user's Beta priors per reference type}
    \ (\text{or } Se_{2t} = Sp_{2t} = 1 \text{ for a type marked perfect}),

    (TP, FP, FN, TN)_i \sim \mathrm{Multinomial}(n_i; p_{++}, p_{+-}, p_{-+}, p_{--}),

    p_{ab} = \pi_i P(T_1 = a, T_2 = b \mid D = 1) + (1 - \pi_i) P(T_1 = a, T_2 = b \mid D = 0),

with, under conditional dependence (Dendukuri & Joseph 2001; positive dependence),

.. math::

    P(++|D=1) = Se_1 Se_2 + c_1,\ P(+-|D=1) = Se_1 (1 - Se_2) - c_1,
    \ P(-+|D=1) = (1 - Se_1) Se_2 - c_1,\ P(--|D=1) = (1 - Se_1)(1 - Se_2) + c_1,

    P(++|D=0) = (1 - Sp_1)(1 - Sp_2) + c_0,\ P(+-|D=0) = (1 - Sp_1) Sp_2 - c_0,
    \ P(-+|D=0) = Sp_1 (1 - Sp_2) - c_0,\ P(--|D=0) = Sp_1 Sp_2 + c_0,

    c_1 = \delta_{1t} \,[\min(Se_1, Se_2) - Se_1 Se_2],
    \quad c_0 = \delta_{0t} \,[\min(Sp_1, Sp_2) - Sp_1 Sp_2],
    \quad \delta_{1t}, \delta_{0t} \sim \mathrm{Beta}(1, 1),

so every cell probability lies in [0, 1] for every draw (``c`` runs over the whole admissible
range of positive covariances; ``c = 0``: conditional independence, the default).

Label switching: the mixture is invariant under swapping the latent classes together with
``Se <-> 1 - Sp`` of both tests. The index test's mean logits are constrained to
``mu_se + mu_sp > 0`` (the summary point has Youden index > 0, i.e. se + sp > 1), which
excludes the mirrored mode; the user's priors for the Normal means are truncated to that
half-plane (sampled as ``mu_se`` and ``log(mu_se + mu_sp)`` with the Jacobian).

Identifiability: per table the multinomial has 3 degrees of freedom against 5 unknowns
(``Se1, Sp1, pi, Se2, Sp2``); the random-effects distribution and several reference types
(some marked perfect) identify the rest. Without them the reference accuracy posterior is its
prior, so the user must state these priors (no defaults): see
:func:`parse_reference_priors`.

References
----------
Dendukuri N, Schiller I, Joseph L, Pai M. Bayesian meta-analysis of the accuracy of a test for
tuberculous pleuritis in the absence of a gold standard reference. Biometrics 2012;68:1285-1293.
Dendukuri N, Joseph L. Bayesian approaches to modeling the conditional dependence between
multiple diagnostic tests. Biometrics 2001;57:158-167.
Xie X, Sinclair A, Dendukuri N. Evaluating the accuracy and economic value of a new test in the
absence of a perfect reference test. Res Synth Methods 2017;8:321-332.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.tables import DTAData
from ..exceptions import DTADataError, SpecError
from .base import Family, register_family
from .bivariate import BuiltModel, Design, ModelSpec, make_design
from .priors import DEFAULT_PRIORS, PRIOR_RATIONALE, Prior, parse_prior, resolve_priors

__all__ = [
    "Beta",
    "LatentClassSpec",
    "LATENT_CLASS_FAMILY",
    "LATENT_CLASS_PRIORS",
    "LATENT_CLASS_PRIOR_RATIONALE",
    "REFERENCE_PRIOR_EXAMPLE",
    "build_latent_class_model",
    "cell_probabilities",
    "multinomial_loglik",
    "parse_reference_priors",
    "simulate_latent_class",
]

#: The parameters of the index test's random effects (as in the normal family) and the prior
#: of the per-table prevalence and of the conditional-dependence fractions.
LATENT_CLASS_PRIORS: dict[str, Prior] = {
    **{
        k: DEFAULT_PRIORS[k]
        for k in ("mu_sensitivity", "mu_specificity", "tau_sensitivity", "tau_specificity", "rho")
    },
    "prevalence": Prior.make("Beta", alpha=1.0, beta=1.0),
    "dependence_diseased": Prior.make("Beta", alpha=1.0, beta=1.0),
    "dependence_nondiseased": Prior.make("Beta", alpha=1.0, beta=1.0),
}
LATENT_CLASS_PRIOR_RATIONALE: dict[str, str] = {
    **{k: PRIOR_RATIONALE[k] for k in LATENT_CLASS_PRIORS if k in PRIOR_RATIONALE},
    "mu_sensitivity": PRIOR_RATIONALE["mu_sensitivity"]
    + "; truncated to mu_sensitivity + mu_specificity > 0 (label switching)",
    "prevalence": "per-table prevalence of the latent condition, independent Beta(1, 1) "
    "(uniform) as in Dendukuri et al. 2012: prevalence differs between test sets",
    "dependence_diseased": "conditional dependence among the diseased (only with "
    "conditional_dependence=True): the covariance as a fraction of its largest admissible "
    "value min(Se1, Se2) - Se1 Se2, uniform per reference type",
    "dependence_nondiseased": "as dependence_diseased, among the non-diseased",
}

#: How to state the reference priors (shown in errors).
REFERENCE_PRIOR_EXAMPLE = (
    "reference_priors={'DXA': {'sensitivity': 'Beta(40, 10)', 'specificity': 'Beta(95, 5)'}, "
    "'CT': 'perfect'}"
)
_NOT_IDENTIFIED = (
    "the latent-class model is not identifiable without informative priors on the reference "
    "standard's accuracy (or several reference types, some marked perfect): state them, e.g. "
    + REFERENCE_PRIOR_EXAMPLE
)


def Beta(alpha: float, beta: float) -> Prior:  # noqa: N802 - reads like the distribution
    """A Beta(alpha, beta) prior, e.g. for ``reference_priors`` (mean alpha / (alpha + beta))."""
    return Prior.make("Beta", alpha=alpha, beta=beta)


def _beta(value: Any, where: str) -> Prior:
    if isinstance(value, (tuple, list)) and len(value) == 2:
        value = {"dist": "Beta", "alpha": value[0], "beta": value[1]}
    try:
        p = parse_prior(value)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    if p.dist != "Beta":
        raise SpecError(f"{where} must be a Beta(alpha, beta) prior, got {p}")
    return p


def parse_reference_priors(
    reference_priors: Mapping[str, Any] | None, levels: list[str], column: str
) -> dict[str, dict[str, Any]]:
    """Validate the reference priors: one entry per reference type of the data.

    Parameters
    ----------
    reference_priors : mapping
        Reference type -> ``{"sensitivity": Beta, "specificity": Beta}`` (a :class:`Prior`,
        ``"Beta(a, b)"``, ``{"dist": "Beta", ...}`` or ``(a, b)``) or ``"perfect"`` (that
        reference classifies without error: Se = Sp = 1).
    levels : list of str
        Reference types in the data.
    column : str
        The data's reference-standard column (named in errors).

    Returns
    -------
    dict
        Type -> ``{"perfect": bool, "sensitivity": Prior, "specificity": Prior}`` in the
        order of ``levels``.
    """
    if not reference_priors:
        raise SpecError(_NOT_IDENTIFIED)
    given = {str(k): v for k, v in dict(reference_priors).items()}
    unknown = [k for k in given if k not in levels]
    if unknown:
        raise SpecError(
            f"reference_priors names {unknown}, not values of column {column!r} (values: {levels})"
        )
    missing = [lv for lv in levels if lv not in given]
    if missing:
        raise SpecError(
            f"reference_priors has no entry for {missing} of column {column!r}: "
            + _NOT_IDENTIFIED.split(": state them, ")[0]
            + f"; state them, e.g. {REFERENCE_PRIOR_EXAMPLE}"
        )
    out: dict[str, dict[str, Any]] = {}
    flat = Prior.make("Beta", alpha=1.0, beta=1.0)
    for lv in levels:
        v = given[lv]
        if isinstance(v, str) and v.strip().lower() == "perfect":
            out[lv] = {"perfect": True, "sensitivity": flat, "specificity": flat}
            continue
        if not isinstance(v, Mapping):
            raise SpecError(
                f"reference_priors[{lv!r}] must be 'perfect' or a mapping with 'sensitivity' "
                f"and 'specificity' Beta priors, got {v!r}"
            )
        keys = set(v)
        if keys != {"sensitivity", "specificity"}:
            raise SpecError(
                f"reference_priors[{lv!r}] needs exactly the keys 'sensitivity' and "
                f"'specificity', got {sorted(keys)}"
            )
        out[lv] = {
            "perfect": False,
            "sensitivity": _beta(v["sensitivity"], f"reference_priors[{lv!r}]['sensitivity']"),
            "specificity": _beta(v["specificity"], f"reference_priors[{lv!r}]['specificity']"),
        }
    return out


@dataclass(frozen=True)
class LatentClassSpec:
    """What to fit with the latent-class family.

    Parameters
    ----------
    reference_standard : str
        Column of the data naming each table's reference standard (e.g. DXA / CT).
    reference_priors : mapping
        Per reference type, Beta priors of its sensitivity and specificity, or ``"perfect"``
        (see :func:`parse_reference_priors`). Required: no defaults.
    conditional_dependence : bool
        Allow positive covariance between index and reference among the diseased and among
        the non-diseased, per reference type (Dendukuri & Joseph 2001). Default False
        (conditional independence).
    priors : mapping
        Overrides of :data:`LATENT_CLASS_PRIORS` (``mu_sensitivity``, ``tau``, ``rho``,
        ``prevalence``, ``dependence_diseased``, ...).
    """

    reference_standard: str = "reference_standard"
    reference_priors: Mapping[str, Any] = field(default_factory=dict)
    conditional_dependence: bool = False
    priors: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.conditional_dependence, bool):
            raise SpecError(
                f"conditional_dependence must be true or false, got {self.conditional_dependence!r}"
            )
        object.__setattr__(self, "priors", resolve_priors(self.priors, LATENT_CLASS_PRIORS))
        if not self.reference_priors:
            raise SpecError(_NOT_IDENTIFIED)
        object.__setattr__(self, "reference_priors", dict(self.reference_priors))

    def levels(self, data: DTAData) -> list[str]:
        """The reference types in ``data`` (sorted); errors name a missing column or cell."""
        col = self.reference_standard
        if col not in data.frame.columns:
            raise DTADataError(
                f"column {col!r} (the reference standard of each table) is not in the data; "
                f"columns: {list(data.frame.columns)}"
            )
        values = data.frame[col]
        bad = values.isna() | (values.astype(str).str.strip() == "")
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DTADataError(
                f"row {i + 1} ({data.row_labels[i]}), column {col!r}: the reference standard "
                "is missing"
            )
        return sorted(set(values.astype(str).str.strip()))

    def reference_index(self, data: DTAData) -> tuple[np.ndarray, list[str]]:
        """Per-row index into :meth:`levels`, and the levels."""
        levels = self.levels(data)
        col = data.frame[self.reference_standard].astype(str).str.strip().to_numpy()
        return np.array([levels.index(v) for v in col], dtype=np.int64), levels

    def resolved_reference_priors(self, data: DTAData) -> dict[str, dict[str, Any]]:
        """:func:`parse_reference_priors` for the types in ``data``."""
        return parse_reference_priors(
            self.reference_priors, self.levels(data), self.reference_standard
        )

    def replace(self, **changes: Any) -> LatentClassSpec:
        """A copy with some fields changed (``priors`` merge over the user's current ones)."""
        from dataclasses import replace

        if "priors" in changes:
            merged = {k: v for k, v in self.priors.items() if v != LATENT_CLASS_PRIORS.get(k)}
            merged.update(changes["priors"] or {})
            changes["priors"] = merged
        return replace(self, **changes)

    def model_spec(self) -> ModelSpec:
        """The :class:`ModelSpec` stored in a fit: two levels, the index test's priors.

        Its ``random_effects`` is ``"latent_class"``.
        """
        return ModelSpec(levels=2, random_effects="latent_class", priors=dict(self.priors))

    def to_dict(self) -> dict[str, Any]:
        """Serializable form."""

        def ser(v: Any) -> Any:
            if isinstance(v, str):
                return v
            if isinstance(v, Mapping):
                return {k: str(_beta(x, k)) for k, x in v.items()}
            return str(v)

        return {
            "reference_standard": self.reference_standard,
            "reference_priors": {k: ser(v) for k, v in self.reference_priors.items()},
            "conditional_dependence": self.conditional_dependence,
            "priors": {k: str(p) for k, p in self.priors.items()},
        }

    def describe(self, data: DTAData | None = None) -> str:
        """The model and its priors in words."""
        lines = [
            "Bivariate latent-class model (imperfect reference standard; Dendukuri et al. 2012)",
            "  logit Se1, logit Sp1 of the index test ~ bivariate normal across tables; "
            "Youden index of the summary point > 0",
            f"  reference standard per table: column {self.reference_standard!r}; "
            + (
                "conditional dependence (positive covariances per reference type)"
                if self.conditional_dependence
                else "index and reference conditionally independent given the true status"
            ),
            "  per-table prevalence; multinomial likelihood of the 2x2 table",
            "Reference priors:",
        ]
        refs = (
            self.resolved_reference_priors(data)
            if data is not None
            else {
                k: (
                    {"perfect": True}
                    if isinstance(v, str)
                    else {"perfect": False, **{kk: _beta(x, kk) for kk, x in v.items()}}
                )
                for k, v in self.reference_priors.items()
            }
        )
        for k, v in refs.items():
            if v["perfect"]:
                lines.append(f"  {k}: perfect (Se = Sp = 1)")
            else:
                lines.append(
                    f"  {k}: sensitivity ~ {v['sensitivity']}, specificity ~ {v['specificity']}"
                )
        lines.append("Priors:")
        for k, p in self.priors.items():
            if k.startswith("dependence") and not self.conditional_dependence:
                continue
            tag = "" if p == LATENT_CLASS_PRIORS[k] else "  [user]"
            lines.append(f"  {k:<24} {p!s:<32}{tag}")
        return "\n".join(lines)


# ------------------------------------------------------------------------------ closed forms
def cell_probabilities(
    se1: np.ndarray,
    sp1: np.ndarray,
    se2: np.ndarray,
    sp2: np.ndarray,
    prevalence: np.ndarray,
    cov_diseased: np.ndarray | float = 0.0,
    cov_nondiseased: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Probabilities of the cells (TP, FP, FN, TN) = (T1+T2+, T1+T2-, T1-T2+, T1-T2-).

    Broadcasts over its arguments; the last axis of the result has the four cells.
    """
    se1, sp1, se2, sp2, pi = (np.asarray(x, dtype=float) for x in (se1, sp1, se2, sp2, prevalence))
    c1, c0 = np.asarray(cov_diseased, dtype=float), np.asarray(cov_nondiseased, dtype=float)
    d = [se1 * se2 + c1, se1 * (1 - se2) - c1, (1 - se1) * se2 - c1, (1 - se1) * (1 - se2) + c1]
    nd = [(1 - sp1) * (1 - sp2) + c0, (1 - sp1) * sp2 - c0, sp1 * (1 - sp2) - c0, sp1 * sp2 + c0]
    return np.stack([pi * a + (1 - pi) * b for a, b in zip(d, nd, strict=True)], axis=-1)


def multinomial_loglik(counts: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Multinomial log-pmf of ``counts`` (last axis: 4 cells) under ``probs`` (with coefficient)."""
    from scipy.special import gammaln, xlogy

    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=-1)
    return gammaln(n + 1) - gammaln(counts + 1).sum(axis=-1) + xlogy(counts, probs).sum(axis=-1)


def simulate_latent_class(
    n: np.ndarray,
    reference_index: np.ndarray,
    *,
    mu_sensitivity: float,
    mu_specificity: float,
    tau_sensitivity: float,
    tau_specificity: float,
    rho: float,
    reference_sensitivity: np.ndarray,
    reference_specificity: np.ndarray,
    prevalence: np.ndarray,
    dependence_diseased: np.ndarray | None = None,
    dependence_nondiseased: np.ndarray | None = None,
    seed: int | None = None,
) -> dict[str, np.ndarray]:
    """Simulate 2x2 tables (index vs reference) from the latent-class model.

    Every patient gets a true status (Bernoulli ``prevalence`` of the table), then the two
    test results from the conditional cell probabilities. Returns ``TP``, ``FP``, ``FN``,
    ``TN``, the per-table ``sensitivity`` / ``specificity`` of the index test, and the true
    ``diseased`` counts.
    """
    rng = np.random.default_rng(seed)
    n = np.asarray(n, dtype=int)
    k = len(n)
    cov = np.array(
        [
            [tau_sensitivity**2, rho * tau_sensitivity * tau_specificity],
            [rho * tau_sensitivity * tau_specificity, tau_specificity**2],
        ]
    )
    theta = rng.multivariate_normal([mu_sensitivity, mu_specificity], cov, size=k)
    se1, sp1 = 1 / (1 + np.exp(-theta[:, 0])), 1 / (1 + np.exp(-theta[:, 1]))
    r = np.asarray(reference_index, dtype=int)
    se2 = np.asarray(reference_sensitivity, dtype=float)[r]
    sp2 = np.asarray(reference_specificity, dtype=float)[r]
    d1 = 0.0 if dependence_diseased is None else np.asarray(dependence_diseased, float)[r]
    d0 = 0.0 if dependence_nondiseased is None else np.asarray(dependence_nondiseased, float)[r]
    c1 = d1 * (np.minimum(se1, se2) - se1 * se2)
    c0 = d0 * (np.minimum(sp1, sp2) - sp1 * sp2)
    pi = np.broadcast_to(np.asarray(prevalence, dtype=float), (k,))
    diseased = rng.binomial(n, pi)
    cd = cell_probabilities(se1, sp1, se2, sp2, np.ones(k), c1, c0)
    cn = cell_probabilities(se1, sp1, se2, sp2, np.zeros(k), c1, c0)
    counts = np.array(
        [
            rng.multinomial(diseased[i], cd[i] / cd[i].sum())
            + rng.multinomial(n[i] - diseased[i], cn[i] / cn[i].sum())
            for i in range(k)
        ]
    )
    return {
        "TP": counts[:, 0],
        "FP": counts[:, 1],
        "FN": counts[:, 2],
        "TN": counts[:, 3],
        "sensitivity": se1,
        "specificity": sp1,
        "diseased": diseased,
    }


# ------------------------------------------------------------------------------ builder
def _bucket(n: int, step: int = 16) -> int:
    return int(-(-n // step) * step)


def _beta_variable(pm, pt, name, alpha, beta, dims=None):
    """A Beta(alpha, beta) variable sampled on the logit scale, started at the prior mean.

    The free variable is ``u`` (flat) with ``x = u + logit(alpha / (alpha + beta))`` and the
    variable ``sigmoid(x)``; the Potential ``alpha log p + beta log(1 - p)`` is the Beta
    log-density plus the log-Jacobian ``log p(1 - p)`` (the normalizing constant does not
    depend on the parameters). Starting every chain at the prior mean (``u = 0``) keeps a
    reference test from starting at se + sp = 1, where it carries no information and chains
    can drift into the mode in which the latent class follows the index test.
    """
    u = pm.Flat(f"{name}_logit_offset", dims=dims)
    x = u + pt.log(alpha) - pt.log(beta)
    pm.Potential(f"{name}_prior", pt.sum(-alpha * pt.softplus(-x) - beta * pt.softplus(x)))
    return pm.Deterministic(name, pm.math.sigmoid(x), dims=dims)


def build_latent_class_model(
    data: DTAData,
    spec: LatentClassSpec | ModelSpec,
    *,
    weights: np.ndarray | None = None,
    design: Design | None = None,
    centering: str | None = None,
) -> BuiltModel:
    """Build the PyMC latent-class model (one table per row; rows padded to a bucket).

    ``spec`` must be a :class:`LatentClassSpec` (a :class:`ModelSpec` with
    ``random_effects="latent_class"`` carries no reference priors and is refused with the
    way to state them). Every prior number, the reference type of each row and which types
    are perfect enter as model data, so refits over priors (sweeps) and over data of the same
    padded size re-use one compiled model; the structure key names the padded number of
    rows, the number of reference types, the prior families and ``conditional_dependence``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    if not isinstance(spec, LatentClassSpec):
        raise SpecError(
            "random_effects='latent_class' is fitted by bayesdta.fit_latent_class(data, "
            "reference_standard=..., reference_priors=...): " + _NOT_IDENTIFIED
        )
    ref_idx, levels = spec.reference_index(data)
    refs = parse_reference_priors(spec.reference_priors, levels, spec.reference_standard)
    n = data.n_rows
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or np.any(w < 0) or not np.all(np.isfinite(w)):
        raise SpecError(f"weights must be {n} finite non-negative numbers")
    n_pad = _bucket(n)
    pad = n_pad - n

    def padrows(a, fill=0):
        a = np.asarray(a)
        return np.concatenate([a, np.full((pad, *a.shape[1:]), fill, dtype=a.dtype)])

    priors = spec.priors
    n_ref = len(levels)
    dv: dict[str, np.ndarray] = {}
    coords = {
        "row": np.arange(n_pad),
        "outcome": ["sensitivity", "specificity"],
        "reference": levels,
        "coef_sensitivity": ["Intercept"],
        "coef_specificity": ["Intercept"],
    }
    with pm.Model(coords=coords) as model:

        def data_(name, value, dtype=float):
            dv[name] = np.asarray(value, dtype=dtype)
            return pm.Data(name, dv[name])

        def prior_kw(name, prior):
            return {p: data_(f"prior__{name}__{p}", v) for p, v in prior.params}

        counts = data_("counts", padrows(np.stack([data.tp, data.fp, data.fn, data.tn], axis=1)))
        wt = data_("weight", padrows(w))
        ridx = data_("reference_index", padrows(ref_idx), dtype=np.int64)
        perfect = data_("reference_perfect", [float(refs[lv]["perfect"]) for lv in levels])

        # index test: mean logits with mu_se + mu_sp > 0 (label switching), the user's Normal
        # priors truncated to that half-plane (Jacobian of s = log(mu_se + mu_sp) included)
        ms, mp = priors["mu_sensitivity"].kwargs, priors["mu_specificity"].kwargs
        m_se = data_("prior__mu_sensitivity__mu", ms["mu"])
        s_se = data_("prior__mu_sensitivity__sigma", ms["sigma"])
        m_sp = data_("prior__mu_specificity__mu", mp["mu"])
        s_sp = data_("prior__mu_specificity__sigma", mp["sigma"])
        mu_se = pm.Flat("mu_sensitivity")
        log_sum = pm.Flat("log_youden_logit")
        mu_sp = pm.Deterministic("mu_specificity", pt.exp(log_sum) - mu_se)
        pm.Potential(
            "prior_mu",
            pm.logp(pm.Normal.dist(m_se, s_se), mu_se)
            + pm.logp(pm.Normal.dist(m_sp, s_sp), mu_sp)
            + log_sum,
        )
        tau_se = getattr(pm, priors["tau_sensitivity"].dist)(
            "tau_sensitivity", **prior_kw("tau_sensitivity", priors["tau_sensitivity"])
        )
        tau_sp = getattr(pm, priors["tau_specificity"].dist)(
            "tau_specificity", **prior_kw("tau_specificity", priors["tau_specificity"])
        )
        eta = prior_kw("rho", priors["rho"])["eta"]
        rho_b = _beta_variable(pm, pt, "rho_beta", eta, eta)
        rho = pm.Deterministic("rho", 2.0 * rho_b - 1.0)
        z = pm.Normal("z_study", 0.0, 1.0, dims=("row", "outcome"))
        theta_se = mu_se + tau_se * z[:, 0]
        theta_sp = mu_sp + tau_sp * (rho * z[:, 0] + pt.sqrt(1.0 - rho**2) * z[:, 1])
        pm.Deterministic("theta", pt.stack([theta_se, theta_sp], axis=1), dims=("row", "outcome"))

        pk = prior_kw("prevalence", priors["prevalence"])
        prev = _beta_variable(pm, pt, "prevalence", pk["alpha"], pk["beta"], dims="row")
        ref_kw = {}
        for o in ("sensitivity", "specificity"):
            for p in ("alpha", "beta"):
                ref_kw[(o, p)] = data_(
                    f"prior__reference_{o}__{p}",
                    [refs[lv][o].kwargs[p] for lv in levels],
                )
        se2_raw = _beta_variable(
            pm,
            pt,
            "reference_sensitivity_raw",
            ref_kw[("sensitivity", "alpha")],
            ref_kw[("sensitivity", "beta")],
            dims="reference",
        )
        sp2_raw = _beta_variable(
            pm,
            pt,
            "reference_specificity_raw",
            ref_kw[("specificity", "alpha")],
            ref_kw[("specificity", "beta")],
            dims="reference",
        )
        se2_t = pm.Deterministic(
            "reference_sensitivity", perfect + (1.0 - perfect) * se2_raw, dims="reference"
        )
        sp2_t = pm.Deterministic(
            "reference_specificity", perfect + (1.0 - perfect) * sp2_raw, dims="reference"
        )
        se1, sp1 = pm.math.sigmoid(theta_se), pm.math.sigmoid(theta_sp)
        fn1, fp1 = pm.math.sigmoid(-theta_se), pm.math.sigmoid(-theta_sp)  # 1 - se1, 1 - sp1
        se2, sp2 = se2_t[ridx], sp2_t[ridx]
        if spec.conditional_dependence:
            k1 = prior_kw("dependence_diseased", priors["dependence_diseased"])
            k0 = prior_kw("dependence_nondiseased", priors["dependence_nondiseased"])
            d1 = _beta_variable(
                pm, pt, "dependence_diseased", k1["alpha"], k1["beta"], dims="reference"
            )
            d0 = _beta_variable(
                pm, pt, "dependence_nondiseased", k0["alpha"], k0["beta"], dims="reference"
            )
            c1 = d1[ridx] * (pt.minimum(se1, se2) - se1 * se2)
            c0 = d0[ridx] * (pt.minimum(sp1, sp2) - sp1 * sp2)
        else:
            c1 = c0 = 0.0
        p_pp = prev * (se1 * se2 + c1) + (1 - prev) * (fp1 * (1 - sp2) + c0)
        p_pm = prev * (se1 * (1 - se2) - c1) + (1 - prev) * (fp1 * sp2 - c0)
        p_mp = prev * (fn1 * se2 - c1) + (1 - prev) * (sp1 * (1 - sp2) - c0)
        p_mm = prev * (fn1 * (1 - se2) + c1) + (1 - prev) * (sp1 * sp2 + c0)
        probs = pt.stack([p_pp, p_pm, p_mp, p_mm], axis=1)
        # xlogy: a zero cell with zero probability (perfect reference) contributes 0
        logp = pt.log(pt.clip(probs, 1e-300, 1.0))
        ll = pt.sum(pt.switch(pt.eq(counts, 0), 0.0, counts * logp), axis=1)
        pm.Potential("likelihood", pt.sum(wt * ll))

    key_payload = {
        "family": "latent_class",
        "n_rows": n_pad,
        "n_reference": n_ref,
        "dependence": bool(spec.conditional_dependence),
        "families": {k: p.dist for k, p in priors.items()},
    }
    key = hashlib.sha1(json.dumps(key_payload, sort_keys=True).encode()).hexdigest()[:16]
    design = design or make_design(data, ModelSpec(levels=2), weights=w)
    built = BuiltModel(model, dv, key, 2, design, list(data.row_labels), n, n, [])
    # The Beta priors are written without special functions (logit-scale potentials); the
    # SD priors HalfStudentT / Gamma-type call gammaln, which numba links by process-specific
    # addresses: such models compile once per process and are never reloaded from disk.
    built.disk_cache = all(
        priors[k].dist in ("HalfNormal", "HalfCauchy", "Exponential")
        for k in ("tau_sensitivity", "tau_specificity")
    )
    return built


#: The latent-class family (imperfect reference standard); fitted by
#: :func:`bayesdta.fit_latent_class` (its builder needs a :class:`LatentClassSpec`).
LATENT_CLASS_FAMILY = register_family(
    Family(
        name="latent_class",
        parameters=(
            "mu_sensitivity",
            "mu_specificity",
            "tau_sensitivity",
            "tau_specificity",
            "rho",
        ),
        default_priors=LATENT_CLASS_PRIORS,
        prior_rationale=LATENT_CLASS_PRIOR_RATIONALE,
        build=build_latent_class_model,
        quantities=(
            "sensitivity",
            "specificity",
            "lr_positive",
            "lr_negative",
            "dor",
            "mu_sensitivity",
            "mu_specificity",
            "tau_sensitivity",
            "tau_specificity",
            "rho",
            "auc",
            "auc_partial",
            "prevalence_mean",
            "reference_sensitivity[*]",
            "reference_specificity[*]",
        ),
        description="bivariate latent-class model: imperfect reference standard (2 levels)",
    )
)
