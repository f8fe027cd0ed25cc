"""Priors: the documented defaults, and user overrides written as ``NAME=Dist(args)``.

Every hyperparameter of every prior enters the model as data, not as a constant, so a prior
sensitivity sweep that keeps the families re-uses the compiled model (only the numbers change).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import SpecError

__all__ = [
    "Prior",
    "DEFAULT_PRIORS",
    "PRIOR_RATIONALE",
    "resolve_priors",
    "parse_prior",
]

# family -> ordered parameter names (positional order when parsing "Family(a, b)")
FAMILIES: dict[str, tuple[str, ...]] = {
    "Normal": ("mu", "sigma"),
    "HalfNormal": ("sigma",),
    "HalfStudentT": ("nu", "sigma"),
    "HalfCauchy": ("beta",),
    "Exponential": ("lam",),
    "LKJ": ("eta",),
    "Gamma": ("alpha", "beta"),
    "Fixed": ("value",),
    "Beta": ("alpha", "beta"),
}
LOCATION_FAMILIES = ("Normal",)
SCALE_FAMILIES = ("HalfNormal", "HalfStudentT", "HalfCauchy", "Exponential")
CORRELATION_FAMILIES = ("LKJ",)
#: Priors of the degrees of freedom ``nu`` of robust (Student-t) random effects; ``Fixed(value)``
#: (or a plain number) fixes ``nu`` instead of estimating it.
DOF_FAMILIES = ("Gamma", "Exponential", "Fixed")
#: Priors of probabilities of the latent-class family (prevalence, reference accuracy,
#: conditional dependence fractions; :mod:`bayesdta.families.latent_class`).
PROBABILITY_FAMILIES = ("Beta",)


@dataclass(frozen=True)
class Prior:
    """A prior distribution: a family name and its parameters.

    Parameters
    ----------
    dist : str
        One of ``Normal(mu, sigma)``, ``HalfNormal(sigma)``, ``HalfStudentT(nu, sigma)``,
        ``HalfCauchy(beta)``, ``Exponential(lam)`` (scale parameters), ``LKJ(eta)``
        (correlations; for a 2x2 correlation matrix LKJ(eta) is (rho + 1) / 2 ~ Beta(eta, eta)),
        ``Gamma(alpha, beta)`` (rate ``beta``), ``Exponential(lam)`` or ``Fixed(value)``
        (degrees of freedom ``nu`` of robust random effects).
    params : dict
        Parameter values by name.
    """

    dist: str
    params: tuple[tuple[str, float], ...]

    @classmethod
    def make(cls, dist: str, **params: float) -> Prior:
        """Build and validate a prior, e.g. ``Prior.make("HalfNormal", sigma=1.5)``."""
        fam = _family(dist)
        names = FAMILIES[fam]
        missing = [n for n in names if n not in params]
        extra = [n for n in params if n not in names]
        if missing or extra:
            raise SpecError(f"{fam} takes parameters {names}; missing {missing}, unknown {extra}")
        vals = {}
        for n in names:
            try:
                v = float(params[n])
            except (TypeError, ValueError):
                raise SpecError(f"{fam} parameter {n}={params[n]!r} is not a number") from None
            if n != "mu" and not v > 0:
                raise SpecError(f"{fam} parameter {n} must be positive, got {v}")
            vals[n] = v
        return cls(fam, tuple((n, vals[n]) for n in names))

    @property
    def kwargs(self) -> dict[str, float]:
        """Parameters as a dict."""
        return dict(self.params)

    def __str__(self) -> str:
        return f"{self.dist}({', '.join(f'{k}={v:g}' for k, v in self.params)})"

    def to_dict(self) -> dict[str, Any]:
        """Serializable form."""
        return {"dist": self.dist, **self.kwargs}


def _family(name: str) -> str:
    for fam in FAMILIES:
        if fam.lower() == str(name).strip().lower():
            return fam
    raise SpecError(f"unknown prior family {name!r}; known: {', '.join(FAMILIES)}")


_PRIOR_RE = re.compile(r"^\s*([A-Za-z]+)\s*\((.*)\)\s*$")


def parse_prior(text: str | Prior | Mapping[str, Any]) -> Prior:
    """Parse ``"HalfNormal(1.5)"``, ``"Normal(mu=0, sigma=2)"`` or ``{"dist": ..., ...}``."""
    if isinstance(text, Prior):
        return text
    if isinstance(text, Mapping):
        d = dict(text)
        if "dist" not in d:
            raise SpecError(f"prior {d} needs a 'dist' key")
        dist = d.pop("dist")
        return Prior.make(dist, **d)
    m = _PRIOR_RE.match(str(text))
    if not m:
        raise SpecError(f"cannot parse prior {text!r}; write it like HalfNormal(1.5)")
    fam = _family(m.group(1))
    try:
        call = ast.parse(f"f({m.group(2)})", mode="eval").body
    except SyntaxError:
        raise SpecError(f"cannot parse the arguments of prior {text!r}") from None
    assert isinstance(call, ast.Call)
    names = FAMILIES[fam]
    params: dict[str, float] = {}
    if len(call.args) > len(names):
        raise SpecError(f"{fam} takes {len(names)} argument(s) {names}, got {text!r}")
    try:
        for n, a in zip(names, call.args, strict=False):
            params[n] = float(ast.literal_eval(a))
        for kw in call.keywords:
            params[str(kw.arg)] = float(ast.literal_eval(kw.value))
    except (ValueError, TypeError):
        raise SpecError(f"arguments of prior {text!r} must be numbers") from None
    return Prior.make(fam, **params)


#: Default priors. Keys are the parameter names used in summaries and in ``--prior NAME=...``.
DEFAULT_PRIORS: dict[str, Prior] = {
    "mu_sensitivity": Prior.make("Normal", mu=0.0, sigma=2.0),
    "mu_specificity": Prior.make("Normal", mu=0.0, sigma=2.0),
    "beta_sensitivity": Prior.make("Normal", mu=0.0, sigma=2.0),
    "beta_specificity": Prior.make("Normal", mu=0.0, sigma=2.0),
    "tau_sensitivity": Prior.make("HalfNormal", sigma=1.5),
    "tau_specificity": Prior.make("HalfNormal", sigma=1.5),
    "rho": Prior.make("LKJ", eta=2.0),
    "tau_within_sensitivity": Prior.make("HalfNormal", sigma=1.0),
    "tau_within_specificity": Prior.make("HalfNormal", sigma=1.0),
    "rho_within": Prior.make("LKJ", eta=2.0),
}

#: Why each default is what it is (printed with the model and written into reports).
PRIOR_RATIONALE: dict[str, str] = {
    "mu_sensitivity": "logit-scale intercept; 95% prior mass for the summary sensitivity "
    "between 0.02 and 0.98, so the data decide",
    "mu_specificity": "as mu_sensitivity",
    "beta_sensitivity": "meta-regression coefficients (logit odds ratios per level, or per SD "
    "of a continuous covariate); 95% mass within odds ratios 1/50 to 50",
    "beta_specificity": "as beta_sensitivity",
    "tau_sensitivity": "between-study SD of logit sensitivity; half-normal(1.5) puts 95% "
    "below 2.9, covering the large heterogeneity common in DTA reviews, shrinking toward 0 "
    "only when studies agree",
    "tau_specificity": "as tau_sensitivity",
    "rho": "LKJ(2) on the between-study correlation, i.e. (rho+1)/2 ~ Beta(2, 2): mild "
    "regularization away from +-1, where few studies cannot inform it",
    "tau_within_sensitivity": "SD of models within a study (three levels); half-normal(1): "
    "models sharing a test set differ less than studies do",
    "tau_within_specificity": "as tau_within_sensitivity",
    "rho_within": "as rho, for rows within a study",
}

_ALIASES = {
    "mu_se": "mu_sensitivity",
    "mu_sp": "mu_specificity",
    "beta_se": "beta_sensitivity",
    "beta_sp": "beta_specificity",
    "tau_se": "tau_sensitivity",
    "tau_sp": "tau_specificity",
    "tau_within_se": "tau_within_sensitivity",
    "tau_within_sp": "tau_within_specificity",
}
_GROUPS = {
    "mu": ("mu_sensitivity", "mu_specificity"),
    "beta": ("beta_sensitivity", "beta_specificity"),
    "tau": ("tau_sensitivity", "tau_specificity"),
    "tau_within": ("tau_within_sensitivity", "tau_within_specificity"),
}


def _check_family(name: str, prior: Prior) -> None:
    if name == "nu":
        allowed = DOF_FAMILIES
    elif name in ("prevalence", "dependence_diseased", "dependence_nondiseased"):
        allowed = PROBABILITY_FAMILIES
    elif name.startswith(("mu_", "beta_")):
        allowed = LOCATION_FAMILIES
    elif name.startswith("tau"):
        allowed = SCALE_FAMILIES
    else:
        allowed = CORRELATION_FAMILIES
    if prior.dist not in allowed:
        raise SpecError(f"prior for {name} must be one of {allowed}, got {prior}")


def resolve_priors(
    overrides: Mapping[str, Any] | None = None,
    defaults: Mapping[str, Prior] | None = None,
) -> dict[str, Prior]:
    """Merge user priors over the defaults.

    Parameters
    ----------
    overrides : mapping, optional
        Parameter name (``mu_sensitivity``, ``tau_specificity``, ``rho``, ...; the short forms
        ``mu_se``, ``tau_sp``, and the groups ``mu``, ``beta``, ``tau``, ``tau_within`` that set
        both outcomes) to a :class:`Prior`, a string such as ``"HalfCauchy(1)"`` or a dict.

    defaults : mapping, optional
        The model family's default priors (default :data:`DEFAULT_PRIORS`, those of the
        normal family; the robust family adds ``nu``, where a plain number fixes ``nu``).

    Returns
    -------
    dict
        Complete prior set, every key of ``defaults``.
    """
    defaults = DEFAULT_PRIORS if defaults is None else defaults
    out = dict(defaults)
    for raw_name, value in (overrides or {}).items():
        name = _ALIASES.get(raw_name, raw_name)
        targets = _GROUPS.get(name, (name,))
        for t in targets:
            if t not in defaults:
                raise SpecError(
                    f"unknown prior name {raw_name!r}; known: {', '.join(defaults)} "
                    f"(or the groups {', '.join(_GROUPS)})"
                )
            if t == "nu" and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = {"dist": "Fixed", "value": value}
            p = parse_prior(value)
            _check_family(t, p)
            out[t] = p
    return out


def parse_prior_assignment(text: str) -> tuple[str, Prior]:
    """Parse a command-line ``NAME=Dist(args)`` assignment."""
    if "=" not in text:
        raise SpecError(f"--prior {text!r}: write NAME=Dist(args), e.g. tau=HalfCauchy(1)")
    name, dist = text.split("=", 1)
    name = name.strip()
    return name, parse_prior(dist)
