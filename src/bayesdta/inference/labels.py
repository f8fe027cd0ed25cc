"""Readable names and descriptions of the summary quantities (summary, report and figures).

Without covariates, ``sensitivity`` and ``specificity`` are the summary point: the inverse link
of the mean linear predictor (``invlogit(mu)``). In a meta-regression the same names hold the
value **at the reference levels** of the categorical covariates (and the means of the
continuous ones): the intercept of the regression. Everything derived from that point (LR+,
LR-, DOR, the mean logits, the SROC curve's AUC) is at the reference levels too. The functions
here say so wherever a quantity is shown, and describe the pooled estimate over the observed
covariate mix (``sensitivity_pooled``, ``specificity_pooled``) offered beside it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..exceptions import SpecError

if TYPE_CHECKING:
    from ..families.bivariate import Design

__all__ = [
    "QUANTITY_LABELS",
    "AT_SUMMARY_POINT",
    "POOLED_QUANTITIES",
    "reference_text",
    "quantity_descriptions",
    "pooled_definition",
    "expand_names",
]

#: Readable names of the summary quantities (no covariates).
QUANTITY_LABELS: dict[str, str] = {
    "sensitivity": "Sensitivity (summary point)",
    "specificity": "Specificity (summary point)",
    "lr_positive": "Positive likelihood ratio",
    "lr_negative": "Negative likelihood ratio",
    "dor": "Diagnostic odds ratio",
    "mu_sensitivity": "Mean logit sensitivity",
    "mu_specificity": "Mean logit specificity",
    "tau_sensitivity": "Between-study SD, logit sensitivity",
    "tau_specificity": "Between-study SD, logit specificity",
    "rho": "Between-study correlation",
    "nu": "Degrees of freedom of the Student-t study effects (random_effects='t')",
    "tau_within_sensitivity": "Within-study SD, logit sensitivity",
    "tau_within_specificity": "Within-study SD, logit specificity",
    "rho_within": "Within-study correlation",
    "auc": "SROC AUC",
    "auc_partial": "SROC partial AUC (FPR range of the tables)",
    "i2_sensitivity": "I2, sensitivity (Higgins & Thompson, typical within-study variance)",
    "i2_specificity": "I2, specificity (Higgins & Thompson, typical within-study variance)",
    "i2_bivariate": "Bivariate I2 (Zhou & Dendukuri formula, typical within-study variances)",
    "i2_sensitivity_zd": "I2, sensitivity (Zhou & Dendukuri, model-based)",
    "i2_specificity_zd": "I2, specificity (Zhou & Dendukuri, model-based)",
    "i2_bivariate_zd": "Bivariate I2 (Zhou & Dendukuri, model-based)",
    "sensitivity_pooled": "Sensitivity over the observed covariate mix",
    "specificity_pooled": "Specificity over the observed covariate mix",
}

#: Quantities computed at the summary point: at the reference levels in a meta-regression.
AT_SUMMARY_POINT = (
    "sensitivity",
    "specificity",
    "lr_positive",
    "lr_negative",
    "dor",
    "mu_sensitivity",
    "mu_specificity",
    "auc",
    "auc_partial",
)
#: Pooled estimates over the observed covariate mix (meta-regressions only).
POOLED_QUANTITIES = ("sensitivity_pooled", "specificity_pooled")

_SHORT = {
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "lr_positive": "Positive likelihood ratio",
    "lr_negative": "Negative likelihood ratio",
    "dor": "Diagnostic odds ratio",
    "mu_sensitivity": "Mean {link} sensitivity",
    "mu_specificity": "Mean {link} specificity",
    "auc": "SROC AUC",
    "auc_partial": "SROC partial AUC (FPR range of the tables)",
}


def _fmt_number(x: float) -> str:
    return f"{float(x):.4g}"


def reference_text(design: Design, *, at: Mapping[str, Any] | None = None) -> str:
    """Where a meta-regression's summary point sits (``""`` without covariates).

    E.g. ``"at reference levels (backbone=ResNet, validation=internal)"``.

    Parameters
    ----------
    design : Design
        The fit's design (``fit.design``).
    at : mapping, optional
        Covariate values chosen instead of the reference levels (as ``at=`` of
        :mod:`bayesdta.quantities`); the others stay at their reference level / mean.

    Returns
    -------
    str
        ``"at reference levels (a=x, b=y; n at its mean 312)"``, or ``"at a=x (...)"`` with
        ``at``.
    """
    if not design.variables:
        return ""
    at = dict(at or {})
    chosen = [f"{k}={v}" for k, v in at.items()]
    cat = [
        f"{v}={design.levels[v][0]}" for v in design.variables if v in design.levels and v not in at
    ]
    cont = [
        f"{v} at its mean {_fmt_number(design.scaling[v][0])}"
        for v in design.variables
        if v in design.scaling and v not in at
    ]
    rest = ", ".join(cat)
    if cont:
        rest = "; ".join(x for x in (rest, ", ".join(cont)) if x)
    if chosen:
        head = "at " + ", ".join(chosen)
        return head + (f" (other covariates: {rest})" if rest else "")
    return f"at reference levels ({rest})"


def pooled_definition(link: str = "logit", n_rows: int | None = None) -> str:
    """How ``sensitivity_pooled`` / ``specificity_pooled`` are computed, as a phrase."""
    inv = "inverse logit" if link == "logit" else f"inverse {link}"
    rows = f"the {n_rows} tables in the fit" if n_rows is not None else "the tables in the fit"
    return f"{inv} of the mean linear predictor x_r beta of {rows}"


def quantity_descriptions(fit: Any, names: Sequence[str] | None = None) -> dict[str, str]:
    """A description of every summary quantity of a fit, saying where a summary point sits.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    names : sequence of str, optional
        Quantities to describe (default: :meth:`DTAFit.quantity_names`).

    Returns
    -------
    dict
        Name -> description. In a meta-regression the quantities of :data:`AT_SUMMARY_POINT`
        read e.g. ``"Sensitivity at reference levels (backbone=ResNet, validation=internal)"``
        and ``tau_*`` are residual (after the covariates).
    """
    names = list(names) if names is not None else fit.quantity_names()
    link = fit.spec.link
    design = fit.design
    ref = reference_text(design)
    n_in = int((fit.weights > 0).sum())
    tau_by = fit.spec.tau_by
    out: dict[str, str] = {}
    for n in names:
        base = QUANTITY_LABELS.get(n, "")
        if link != "logit":
            base = base.replace("logit", link)
        if ref and n in AT_SUMMARY_POINT:
            out[n] = f"{_SHORT[n].format(link=link)} {ref}"
        elif n in POOLED_QUANTITIES:
            out[n] = f"{base} ({pooled_definition(link, n_in)})"
        elif n.startswith("beta_") and n.endswith("]"):
            outcome, _, col = n[len("beta_") : -1].partition("[")
            out[n] = _coefficient_text(col, outcome, design, link)
        elif n.startswith(("tau_sensitivity[", "tau_specificity[")):
            outcome, _, lv = n[len("tau_") :].partition("[")
            out[n] = f"Between-study SD, {link} {outcome}, {tau_by}={lv.rstrip(']')}"
        else:
            if ref and n in ("tau_sensitivity", "tau_specificity", "rho"):
                base += " (residual, after the covariates)"
            if tau_by and n in ("tau_sensitivity", "tau_specificity"):
                levels = _tau_levels(fit)
                if levels:
                    base += f", {tau_by}={levels[0]}"
            out[n] = base
    return out


def _coefficient_text(column: str, outcome: str, design: Design, link: str) -> str:
    """``backbone[T.DenseNet]`` -> "backbone DenseNet vs ResNet, log odds ratio of sensitivity"."""
    scale = "log odds ratio" if link == "logit" else f"{link} difference"
    for v, levels in design.levels.items():
        prefix = f"{v}[T."
        if column.startswith(prefix) and column.endswith("]"):
            level = column[len(prefix) : -1]
            return f"{v} {level} vs {levels[0]}, {scale} of {outcome}"
    if column in design.scaling:
        return f"{column}, per unit, {scale} of {outcome}"
    return f"{column}, coefficient on {link} {outcome}"


def _tau_levels(fit: Any) -> list[str]:
    tau = fit.posterior["tau_sensitivity"]
    if "tau_level" not in tau.dims:
        return []
    return [str(v) for v in tau.coords["tau_level"].values]


def expand_names(patterns: Sequence[str] | str, available: Sequence[str]) -> list[str]:
    """Names of ``available`` matched by ``patterns`` (exact names or globs such as ``"lr_*"``).

    The order is that of the patterns (the order of ``available`` within a glob); a name is
    listed once. A pattern matching nothing raises a one-line :class:`SpecError` listing the
    known names.
    """
    if isinstance(patterns, str):
        patterns = [patterns]
    chosen: list[str] = []
    for p in patterns:
        p = str(p)
        # an exact name first: names such as beta_sensitivity[backbone[T.DenseNet]] hold
        # brackets, which are character classes in glob patterns
        hits = [p] if p in available else [a for a in available if fnmatch.fnmatchcase(a, p)]
        if not hits:
            raise SpecError(f"unknown quantity {p!r}; known: {', '.join(available)}")
        chosen += [h for h in hits if h not in chosen]
    return chosen
