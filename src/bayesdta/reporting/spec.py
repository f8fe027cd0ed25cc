"""Analysis specifications: a TOML file naming data, models, sampler, outputs, report and sweeps.

A spec is read with :func:`load_spec` (or :func:`parse_spec` from a mapping) and validated in
full before anything is fitted: every error is a :class:`~bayesdta.exceptions.SpecError` whose
message starts with the file and the dotted key at fault, e.g.
``models/x.toml: sampler.draws: must be a positive integer, got 'many'``.

The format is documented key by key in ``models/README.md``; in short::

    extends = "base.toml"          # optional: start from another spec (tables merge, lists replace)

    [analysis]                     # name, title, description, seed
    [data]                         # example = "<packaged>" | file = "<csv, relative to spec>",
                                   # study, model, [data.columns], [data.include], [data.exclude]
    [model]                        # the main fit: levels, link, formula(s), reference, priors, ...
    [[regression]]                 # further fits (meta-regressions), each overriding [model]
    [sampler]                      # backend, draws, tune, chains, target_accept, cores
    [outputs]                      # ci, quantities, figures, figure formats, table formats
    [report]                       # title, authors, notes, formats, include_spec, round_to
    [sensitivity]                  # sweeps: prior grid, leave-one-study-out, exclusions, levels,
                                   # links, with their own sampler settings
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import fnmatch
import hashlib
import itertools
import json
import math
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import BayesDTAError, SpecError
from ..families.links import LINKS as _LINKS

__all__ = [
    "AnalysisSpec",
    "FitSpec",
    "FIGURES",
    "TABLES",
    "DATA_TABLES",
    "OPT_IN_TABLES",
    "OPT_IN_FIGURES",
    "REGRESSION_TABLES",
    "LINKS",
    "load_spec",
    "parse_spec",
    "derive_seed",
    "dump_toml",
    "spec_hash",
]

#: Link functions of the model (:data:`bayesdta.links.LINKS`: logit and probit); others are
#: rejected. Only symmetric links are offered (the SROC curves use link(fpr) = -link(sp)).
LINKS = _LINKS

#: Figures a spec may request: name -> (function of :mod:`bayesdta.plots`, default caption); the
#: report takes the function from :data:`bayesdta.registry.FIGURES` (registered by name).
FIGURES: dict[str, tuple[str, str]] = {
    "forest": (
        "plot_forest",
        "Forest plot of the observed sensitivity and specificity of every table (with 95% "
        "intervals) and the pooled posterior estimate.",
    ),
    "sroc": (
        "plot_sroc",
        "Summary ROC (HSROC) curve implied by the bivariate model, with the summary point, its "
        "credible region and the prediction region for a new study; circles are the tables.",
    ),
    "fagan": (
        "plot_fagan",
        "Fagan nomogram: post-test probability after a positive and after a negative result, "
        "from the pooled likelihood ratios.",
    ),
    "lr_scatter": (
        "plot_lr_scatter",
        "Likelihood-ratio scatter plot (LR+ against LR-) with the quadrants of clinical utility.",
    ),
    "deeks": (
        "plot_deeks",
        "Deeks' funnel plot: log diagnostic odds ratio against 1/sqrt(effective sample size), "
        "with the regression line of the asymmetry test.",
    ),
    "influence": (
        "plot_influence",
        "Study influence: PSIS-LOO Pareto k and the change in pooled estimates per study.",
    ),
    "ppc": (
        "plot_ppc",
        "Posterior predictive check of the observed true positives and true negatives.",
    ),
    "prior_posterior": (
        "plot_prior_posterior",
        "Prior and posterior densities of the hyperparameters.",
    ),
    # outputs reviewers look for (issue 13; bayesdta.plots.review_figures)
    "forest_ratios": (
        "plot_forest_ratios",
        "Forest plots of the diagnostic odds ratio, LR+ and LR- of every table (log scale; "
        "observed with log-method intervals, counts TP, FP, FN, TN at the left) and the pooled "
        "posterior values (diamonds).",
    ),
    "quadas": (
        "plot_quadas",
        "QUADAS-2 summary: percentage of studies at low, unclear and high risk of bias (and "
        "applicability concerns) in each domain.",
    ),
    "pca_biplot": (
        "plot_pca_biplot",
        "Study-characteristics explorer: biplot of the principal components of the study "
        "covariates; coloured arrows are the studies' shrunken logit sensitivity and "
        "specificity (supplementary variables).",
    ),
}
#: Figures drawn only when a spec lists them (they need QUADAS-2 columns or covariates).
OPT_IN_FIGURES = ("quadas", "pca_biplot")

#: Tables a spec may request for the main fit: name -> (where the function lives, caption). The
#: report takes the function from :data:`bayesdta.registry.TABLES` (registered next to it).
TABLES: dict[str, tuple[str, str]] = {
    "summary": (
        "fit:summary",
        "Pooled estimates: posterior mean, median, SD and credible interval, with bulk/tail ESS "
        "and R-hat.",
    ),
    "heterogeneity": (
        "quantities:heterogeneity",
        "Heterogeneity: between-study SDs and correlation on the logit scale, I2 statistics.",
    ),
    "predictive": (
        "quantities:predictive",
        "Predicted sensitivity and specificity of a new study (posterior predictive).",
    ),
    "hsroc": (
        "quantities:hsroc_parameters",
        "HSROC (Rutter-Gatsonis) parameters implied by the bivariate parameters.",
    ),
    "auc": ("quantities:auc", "Area under the SROC curve (full and over the observed FPR range)."),
    "fagan": (
        "quantities:fagan",
        "Post-test probabilities after a positive and a negative result (Fagan).",
    ),
    "deeks": ("quantities:deeks", "Deeks' funnel-plot asymmetry test (classical regression)."),
    "influence": (
        "quantities:influence",
        "Study influence: PSIS-LOO by study (Pareto k) and exact leave-one-study-out refits of "
        "studies with k > 0.7.",
    ),
    "observed": (
        "quantities:observed",
        "Observed sensitivity and specificity of every table, with exact intervals.",
    ),
    "shrunken": (
        "quantities:shrunken",
        "Posterior (shrunken) sensitivity and specificity of every table.",
    ),
    "subgroup_table": (
        "regression:subgroup_table",
        "Subgroup analyses: each covariate in its own three-level meta-regression (same seed, "
        "one compiled model): subgroup estimates, contrasts with the reference level, "
        "P(better), ELPD-LOO difference against the model without covariates and heterogeneity "
        "explained.",
    ),
    "clustering": (
        "regression:compare_clustering",
        "Several tables per study: three-level model, two-level model on study-pooled counts "
        "and the 'rows independent' two-level model, side by side (ELPD-LOO by study, pooled "
        "estimates and interval widths).",
    ),
    "ml_summary": (
        "ml:ml_summary",
        "Maximum-likelihood companion: the same bivariate GLMM (two levels, logit link) fitted "
        "by ML with adaptive Gauss-Hermite quadrature, with Wald intervals, beside the "
        "posterior median and credible interval.",
    ),
    "ml_subgroups": (
        "ml:ml_subgroups",
        "Maximum-likelihood subgroup analyses (MIDAS style): per covariate, likelihood-ratio "
        "tests against the model without covariates (joint, sensitivity only, specificity "
        "only) and the pooled sensitivity and specificity of every level with Wald intervals.",
    ),
    # outputs reviewers look for (issue 13; bayesdta.posterior.review_outputs)
    "summary_of_findings": (
        "review_outputs:summary_of_findings",
        "Summary of findings (GRADE): true and false positives and negatives per 1000 people "
        "tested at each prevalence, posterior medians and credible intervals from the joint "
        "posterior of sensitivity and specificity.",
    ),
    "threshold_effect": (
        "review_outputs:threshold_effect",
        "Threshold effect: Spearman correlation of observed sensitivity and false-positive rate "
        "(0.5 added to tables with a zero cell) beside the bivariate model's correlation.",
    ),
    "study_ratios": (
        "review_outputs:study_ratios",
        "Diagnostic odds ratio, LR+ and LR- of every table (observed, log-method intervals) "
        "and pooled (posterior).",
    ),
    "quadas": (
        "review_outputs:quadas",
        "QUADAS-2 risk of bias and applicability concerns of every study.",
    ),
    "quadas_summary": (
        "review_outputs:quadas_summary",
        "QUADAS-2 summary: number and percentage of studies judged low, unclear and high in "
        "each domain.",
    ),
    "pca": (
        "review_outputs:pca_table",
        "Study-characteristics explorer: variance explained and loadings of the leading "
        "principal components of the study covariates, and their correlation with the shrunken "
        "logit sensitivity and specificity (* covariates of the meta-regression formula).",
    ),
}
#: Tables computed from the data with extra fits (opt-in: list them in ``outputs.tables``).
DATA_TABLES = ("subgroup_table", "clustering")
#: Tables of the maximum-likelihood companion (opt-in: list them in ``outputs.tables``).
ML_TABLES = ("ml_summary", "ml_subgroups")
#: Tables written only when a spec lists them (they need QUADAS-2 columns or covariates).
OPT_IN_TABLES = ("quadas", "quadas_summary", "pca")
#: Tables of meta-regression fits (functions of :mod:`bayesdta.regression`).
REGRESSION_TABLES: dict[str, tuple[str, str]] = {
    "summary": ("fit:summary", "Meta-regression: posterior summary, coefficients per outcome."),
    "subgroups": (
        "regression:subgroups",
        "Subgroup estimates from the meta-regression: pooled sensitivity, specificity, LR+, LR- "
        "and DOR per covariate level (other covariates at their reference level).",
    ),
    "contrasts": (
        "regression:contrasts",
        "Contrasts of each level with the reference level: log odds ratios, differences, ratios "
        "and the posterior probability that the level is better.",
    ),
    "heterogeneity_explained": (
        "regression:heterogeneity_explained",
        "Residual heterogeneity and the proportion of the heterogeneity variance explained by "
        "the covariates, relative to the main model.",
    ),
}

_FIGURE_FORMATS = ("png", "pdf", "svg")
_TABLE_FORMATS = ("csv", "latex")
_REPORT_FORMATS = ("html", "md")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# ------------------------------------------------------------------------------ helpers
def derive_seed(seed: int, name: str) -> int:
    """A deterministic seed for a named part of an analysis (e.g. one sweep variant).

    ``sha256(f"{seed}:{name}")`` reduced to ``[0, 2**31)``: the same spec seed and name give the
    same seed in every process and on every machine.
    """
    digest = hashlib.sha256(f"{int(seed)}:{name}".encode()).hexdigest()
    return int(digest[:12], 16) % 2**31


def spec_hash(payload: Any, length: int = 16) -> str:
    """Short hash of a JSON-serializable payload (keys sorted)."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def _suggest(key: str, allowed: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Checker:
    """Validation helpers that prefix every error with the source and the dotted key."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, key: str, message: str) -> SpecError:
        where = f"{key}: " if key else ""
        return SpecError(f"{self.source}: {where}{message}")

    def table(self, value: Any, key: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise self.error(key, f"must be a table, got {type(value).__name__} {value!r}")
        return dict(value)

    def keys(self, table: Mapping[str, Any], allowed: Sequence[str], key: str) -> None:
        for k in table:
            if k not in allowed:
                full = f"{key}.{k}" if key else k
                raise self.error(
                    full,
                    f"unknown key{_suggest(k, allowed)}; allowed keys"
                    f"{' in [' + key + ']' if key else ''}: {', '.join(allowed)}",
                )

    def string(self, value: Any, key: str, *, allow_none: bool = True) -> str | None:
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, f"must be a non-empty string, got {value!r}")
        return value

    def name(self, value: Any, key: str) -> str:
        s = self.string(value, key, allow_none=False)
        assert s is not None
        if not _NAME_RE.match(s):
            raise self.error(
                key,
                f"{s!r} is not a valid name: use letters, digits, '_', '-' or '.', "
                "starting with a letter or digit (it is used in file names)",
            )
        return s

    def integer(self, value: Any, key: str, *, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, got {value!r}")
        if minimum is not None and value < minimum:
            what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise self.error(key, f"must be {what}, got {value!r}")
        return int(value)

    def number(self, value: Any, key: str, *, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number, got {value!r}")
        if not (low < float(value) < high) or math.isnan(float(value)):
            raise self.error(key, f"must lie strictly between {low:g} and {high:g}, got {value!r}")
        return float(value)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.error(key, f"must be true or false, got {value!r}")
        return value

    def choice(self, value: Any, key: str, choices: Sequence[Any]) -> Any:
        if value not in choices:
            shown = ", ".join(repr(c) for c in choices)
            raise self.error(key, f"must be one of {shown}, got {value!r}")
        return value

    def string_list(
        self, value: Any, key: str, *, choices: Sequence[str] | None = None
    ) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a list of strings, got {value!r}")
        if choices is not None:
            for v in value:
                if v not in choices:
                    raise self.error(
                        key,
                        f"unknown entry {v!r}{_suggest(v, choices)}; known: {', '.join(choices)}",
                    )
        if len(set(value)) != len(value):
            raise self.error(key, f"has duplicated entries: {value!r}")
        return list(value)

    def value_list(self, value: Any, key: str) -> list[Any]:
        if not isinstance(value, list):
            value = [value]
        for v in value:
            if isinstance(v, (Mapping, list)):
                raise self.error(key, f"values must be strings, numbers or booleans, got {v!r}")
        if not value:
            raise self.error(key, "must list at least one value")
        return list(value)


# ------------------------------------------------------------------------------ fit entries
_MODEL_KEYS = (
    "levels",
    "link",
    "formula",
    "formula_sensitivity",
    "formula_specificity",
    "reference",
    "priors",
    "tau_by",
    "parameterization",
    "random_effects",
)
_REGRESSION_KEYS = (
    "name",
    "title",
    "subgroups",
    "tables",
    "figures",
    "figure_options",
    "sampler",
    *_MODEL_KEYS,
)
_MAIN_KEYS = ("name", "title", *_MODEL_KEYS)


@dataclass(frozen=True)
class FitSpec:
    """One model fitted by a spec: the main model or a meta-regression.

    Attributes
    ----------
    name : str
        Used in file names (``posterior_<name>.nc``, ``summary_<name>.csv``).
    title : str
        Shown in the report.
    model : dict
        Keyword arguments of :class:`~bayesdta.model.ModelSpec` (priors as strings).
    link : str
        Link function (``"logit"`` or ``"probit"``). Also in ``model`` (key ``link``) when it
        is not the default ``"logit"``.
    subgroups : list of str
        Covariates whose subgroup table is reported (meta-regressions).
    sampler : dict
        Sampler settings overriding the spec's ``[sampler]`` for this fit.
    is_main : bool
        True for ``[model]``.
    """

    name: str
    title: str
    model: dict[str, Any]
    link: str = "logit"
    subgroups: tuple[str, ...] = ()
    sampler: dict[str, Any] = field(default_factory=dict)
    is_main: bool = False
    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    figure_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    subgroups_given: bool = False

    def model_spec(self):
        """The :class:`~bayesdta.model.ModelSpec` of this fit."""
        from ..families.bivariate import ModelSpec

        return ModelSpec(**{**self.model, "link": self.link})

    def variables(self) -> list[str]:
        """Covariates named in the formulas (in order of appearance)."""
        from ..families.bivariate import formula_variables

        out: list[str] = []
        for key in ("formula", "formula_sensitivity", "formula_specificity"):
            f = self.model.get(key)
            if not f:
                continue
            for name in formula_variables(f)[0]:
                if name not in out:
                    out.append(name)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Serializable form."""
        return {
            "name": self.name,
            "title": self.title,
            "model": copy.deepcopy(self.model),
            "link": self.link,
            "subgroups": list(self.subgroups),
            "sampler": dict(self.sampler),
            "is_main": self.is_main,
            "tables": list(self.tables),
            "figures": list(self.figures),
            "figure_options": copy.deepcopy(self.figure_options),
        }


def _parse_one_prior(chk: _Checker, name: str, value: Any, key: str) -> str:
    from ..families.base import FAMILIES
    from ..families.priors import parse_prior, resolve_priors

    # names of every registered family's priors (e.g. nu of random_effects = "t"); the model
    # spec checks that the fit's family has them
    known = {k: v for fam in FAMILIES.values() for k, v in fam.default_priors.items()}
    try:
        if name == "nu" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = {"dist": "Fixed", "value": value}
        p = parse_prior(value)
        resolve_priors({name: p}, known)
    except SpecError as exc:
        raise chk.error(key, str(exc)) from None
    return str(p)


def _parse_priors(chk: _Checker, value: Any, key: str) -> dict[str, str]:
    table = chk.table(value, key)
    return {name: _parse_one_prior(chk, name, v, f"{key}.{name}") for name, v in table.items()}


def _parse_model_fields(
    chk: _Checker, table: Mapping[str, Any], key: str, base: Mapping[str, Any] | None
) -> tuple[dict[str, Any], str]:
    """Model settings of a fit entry; ``base`` (the main model) fills what is not given."""
    model: dict[str, Any] = copy.deepcopy(dict(base)) if base else {}
    if base is not None:
        # a regression's formula replaces the main formulas as a whole
        if any(k in table for k in ("formula", "formula_sensitivity", "formula_specificity")):
            for k in ("formula", "formula_sensitivity", "formula_specificity", "reference"):
                model.pop(k, None)
    link = str(model.get("link", "logit"))
    for k in _MODEL_KEYS:
        if k not in table:
            continue
        v = table[k]
        full = f"{key}.{k}"
        if k == "levels":
            if v == "auto":
                model["levels"] = None
            else:
                model["levels"] = chk.choice(v, full, [2, 3, "auto"])
        elif k == "link":
            v = chk.string(v, full, allow_none=False)
            if v not in LINKS:
                raise chk.error(
                    full,
                    f"link {v!r} is not implemented; available: "
                    f"{', '.join(repr(x) for x in LINKS)} (asymmetric links such as cloglog "
                    "are not offered: the SROC curves use link(fpr) = -link(sp))",
                )
            link = v
        elif k in ("formula", "formula_sensitivity", "formula_specificity"):
            s = chk.string(v, full, allow_none=False)
            assert s is not None
            if not s.strip().startswith("~"):
                raise chk.error(
                    full, f"write the right-hand side only, starting with '~', got {s!r}"
                )
            model[k] = s
        elif k == "reference":
            ref = chk.table(v, full)
            for rk, rv in ref.items():
                if isinstance(rv, bool) or not isinstance(rv, (str, int, float)):
                    raise chk.error(f"{full}.{rk}", f"must be a level (string), got {rv!r}")
            model["reference"] = {str(rk): str(rv) for rk, rv in ref.items()}
        elif k == "priors":
            merged = dict(model.get("priors", {}))
            merged.update(_parse_priors(chk, v, full))
            model["priors"] = merged
        elif k == "tau_by":
            model["tau_by"] = chk.string(v, full, allow_none=False)
        elif k == "parameterization":
            model["parameterization"] = chk.choice(v, full, ["auto", "noncentered", "centered"])
        elif k == "random_effects":
            # the model family of the study effects (bayesdta.families registry): "normal", "t"
            from ..families.base import FAMILIES

            model["random_effects"] = chk.choice(v, full, sorted(FAMILIES))
    # the link is part of the ModelSpec keywords; stored only when not the default, so that
    # logit specs (and their hashes) are unchanged
    if link != "logit":
        model["link"] = link
    else:
        model.pop("link", None)
    return model, link


# ------------------------------------------------------------------------------ sampler
_SAMPLER_KEYS = ("backend", "draws", "tune", "chains", "target_accept", "cores", "progress")


def _parse_sampler(chk: _Checker, value: Any, key: str) -> dict[str, Any]:
    table = chk.table(value, key)
    chk.keys(table, _SAMPLER_KEYS, key)
    out: dict[str, Any] = {}
    for k, v in table.items():
        full = f"{key}.{k}"
        if k == "backend":
            out[k] = chk.choice(v, full, ["nutpie", "pymc"])
        elif k in ("draws", "chains", "cores"):
            out[k] = chk.integer(v, full, minimum=1)
        elif k == "tune":
            out[k] = chk.integer(v, full, minimum=0)
        elif k == "target_accept":
            out[k] = chk.number(v, full, low=0.0, high=1.0)
        elif k == "progress":
            out[k] = chk.boolean(v, full)
    return out


#: Unset draws / tune / target_accept take the package's structure-dependent defaults
#: (:class:`bayesdta.sampling.SamplerSettings`).
_SAMPLER_DEFAULTS: dict[str, Any] = {"backend": "nutpie", "chains": 4}


# ------------------------------------------------------------------------------ sensitivity
@dataclass(frozen=True)
class SweepSpec:
    """The sweeps of ``[sensitivity]`` (see ``models/README.md``)."""

    fit: str = "main"
    baseline: bool = True
    leave_one_study_out: bool | tuple[str, ...] = False
    prior_grid: dict[str, list[str]] = field(default_factory=dict)
    priors: tuple[dict[str, Any], ...] = ()
    exclude: tuple[dict[str, Any], ...] = ()
    levels: tuple[int, ...] = ()
    links: tuple[str, ...] = ()
    sampler: dict[str, Any] = field(default_factory=dict)
    quantities: tuple[str, ...] = ("sensitivity", "specificity", "auc")
    workers: int | str = "auto"
    save_fits: bool = False
    #: Comparison models refitted by the sweep (needs ``[comparison]``).
    comparison_models: tuple[str, ...] = ()
    low_risk_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Serializable form."""
        return {
            "fit": self.fit,
            "baseline": self.baseline,
            "leave_one_study_out": (
                list(self.leave_one_study_out)
                if isinstance(self.leave_one_study_out, tuple)
                else self.leave_one_study_out
            ),
            "prior_grid": copy.deepcopy(self.prior_grid),
            "priors": [dict(p) for p in self.priors],
            "exclude": [dict(e) for e in self.exclude],
            "levels": list(self.levels),
            "links": list(self.links),
            "sampler": dict(self.sampler),
            "quantities": list(self.quantities),
            "workers": self.workers,
            "save_fits": self.save_fits,
            "comparison_models": list(self.comparison_models),
            "low_risk_only": self.low_risk_only,
        }


_SWEEP_KEYS = (
    "fit",
    "baseline",
    "leave_one_study_out",
    "prior_grid",
    "priors",
    "exclude",
    "levels",
    "links",
    "sampler",
    "quantities",
    "workers",
    "save_fits",
    "comparison_models",
    "low_risk_only",
)


def _parse_sweeps(chk: _Checker, value: Any, fit_names: Sequence[str]) -> SweepSpec | None:
    if value is None:
        return None
    key = "sensitivity"
    t = chk.table(value, key)
    chk.keys(t, _SWEEP_KEYS, key)
    kw: dict[str, Any] = {}
    if "fit" in t:
        kw["fit"] = chk.choice(t["fit"], f"{key}.fit", list(fit_names))
    for b in ("baseline", "save_fits", "low_risk_only"):
        if b in t:
            kw[b] = chk.boolean(t[b], f"{key}.{b}")
    if "leave_one_study_out" in t:
        v = t["leave_one_study_out"]
        full = f"{key}.leave_one_study_out"
        if isinstance(v, bool):
            kw["leave_one_study_out"] = v
        else:
            studies = chk.string_list(v, full)
            if not studies:
                raise chk.error(full, "give true, false or a list of study ids")
            kw["leave_one_study_out"] = tuple(studies)
    if "prior_grid" in t:
        grid = chk.table(t["prior_grid"], f"{key}.prior_grid")
        out_grid: dict[str, list[str]] = {}
        for name, vals in grid.items():
            full = f"{key}.prior_grid.{name}"
            vals = vals if isinstance(vals, list) else [vals]
            if not vals:
                raise chk.error(full, "must list at least one prior")
            out_grid[name] = [
                _parse_one_prior(chk, name, v, f"{full}[{i}]") for i, v in enumerate(vals)
            ]
        kw["prior_grid"] = out_grid
    if "priors" in t:
        sets = t["priors"]
        if not isinstance(sets, list):
            raise chk.error(f"{key}.priors", "must be an array of tables ([[sensitivity.priors]])")
        parsed = []
        for i, s in enumerate(sets):
            full = f"{key}.priors[{i}]"
            s = chk.table(s, full)
            if "name" not in s:
                raise chk.error(f"{full}.name", "missing: every prior set needs a name")
            nm = chk.name(s["name"], f"{full}.name")
            pri = _parse_priors(chk, {k: v for k, v in s.items() if k != "name"}, full)
            if not pri:
                raise chk.error(full, "sets no prior")
            parsed.append({"name": nm, "priors": pri})
        kw["priors"] = tuple(parsed)
    if "exclude" in t:
        sets = t["exclude"]
        if not isinstance(sets, list):
            raise chk.error(
                f"{key}.exclude", "must be an array of tables ([[sensitivity.exclude]])"
            )
        parsed = []
        for i, s in enumerate(sets):
            full = f"{key}.exclude[{i}]"
            s = chk.table(s, full)
            chk.keys(s, ("name", "column", "values", "studies"), full)
            if "column" in s and "studies" in s:
                raise chk.error(full, "give either column/values or studies, not both")
            if "studies" in s:
                studies = chk.string_list(s["studies"], f"{full}.studies")
                if not studies:
                    raise chk.error(f"{full}.studies", "must list at least one study")
                nm = chk.name(s.get("name", "exclude_studies"), f"{full}.name")
                parsed.append({"name": nm, "studies": studies})
                continue
            if "column" not in s:
                raise chk.error(f"{full}.column", "missing: name the covariate column")
            col = chk.string(s["column"], f"{full}.column", allow_none=False)
            if "values" not in s:
                raise chk.error(f"{full}.values", "missing: list the values to exclude")
            vals = chk.value_list(s["values"], f"{full}.values")
            default = f"exclude_{col}_" + "_".join(str(v) for v in vals)
            default = re.sub(r"[^A-Za-z0-9_.-]+", "-", default)
            nm = chk.name(s.get("name", default), f"{full}.name")
            parsed.append({"name": nm, "column": col, "values": vals})
        kw["exclude"] = tuple(parsed)
    if "levels" in t:
        lv = t["levels"] if isinstance(t["levels"], list) else [t["levels"]]
        for i, v in enumerate(lv):
            chk.choice(v, f"{key}.levels[{i}]", [2, 3])
        kw["levels"] = tuple(int(v) for v in lv)
    if "links" in t:
        kw["links"] = tuple(chk.string_list(t["links"], f"{key}.links"))
    if "sampler" in t:
        kw["sampler"] = _parse_sampler(chk, t["sampler"], f"{key}.sampler")
    if "quantities" in t:
        q = chk.string_list(t["quantities"], f"{key}.quantities")
        if not q:
            raise chk.error(f"{key}.quantities", "must name at least one quantity")
        kw["quantities"] = tuple(q)
    if "workers" in t:
        w = t["workers"]
        kw["workers"] = w if w == "auto" else chk.integer(w, f"{key}.workers", minimum=1)
    if "comparison_models" in t:
        from ..families.comparative import COMPARISON_MODELS

        kw["comparison_models"] = tuple(
            chk.string_list(
                t["comparison_models"], f"{key}.comparison_models", choices=COMPARISON_MODELS
            )
        )
    return SweepSpec(**kw)


def _parse_comparison(value: Any, sweeps: SweepSpec | None) -> dict[str, Any] | None:
    """``[comparison]`` (see :func:`bayesdta.reporting.comparative.parse_comparison`)."""
    from .comparative import parse_comparison

    out = parse_comparison(value)
    if out is None and sweeps is not None and sweeps.comparison_models:
        raise SpecError(
            "sensitivity.comparison_models: needs a [comparison] table naming the test column"
        )
    return out


# ------------------------------------------------------------------------------ the spec
@dataclass(frozen=True)
class AnalysisSpec:
    """A validated analysis specification (see :func:`load_spec`).

    Attributes
    ----------
    name, title, description : str
        Identity of the analysis (``name`` is used in file names).
    seed : int
        Master seed: the main fit uses it, every other fit a seed derived from it and its name
        (:func:`derive_seed`).
    data : dict
        ``example`` or ``file`` (absolute path), ``study``, ``model``, ``columns``, ``include``,
        ``exclude``.
    fits : tuple of FitSpec
        The main model first, then the meta-regressions.
    sampler : dict
        Sampler settings shared by all fits.
    outputs, report : dict
        Output and report options with defaults filled in.
    sensitivity : SweepSpec or None
        Declared sweeps.
    source : str
        The spec file (or ``"<mapping>"``).
    text : str
        The spec as written (TOML text; for specs built from mappings, a TOML rendering).
    raw : dict
        The merged mapping the spec was parsed from (after ``extends``).
    extends : tuple of str
        The spec files this one extends (nearest first).
    """

    name: str
    title: str
    description: str
    seed: int
    data: dict[str, Any]
    fits: tuple[FitSpec, ...]
    sampler: dict[str, Any]
    outputs: dict[str, Any]
    report: dict[str, Any]
    sensitivity: SweepSpec | None
    source: str = "<mapping>"
    text: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    extends: tuple[str, ...] = ()
    #: The ``[latent_class]`` fit (imperfect reference standard), validated by
    #: :func:`bayesdta.reporting.latent_class_spec.parse_latent_class`; None when not declared.
    latent_class: dict[str, Any] | None = None
    #: ``[comparison]``: comparative accuracy of the tests named by a column (see
    #: :mod:`bayesdta.reporting.comparative`), None when absent.
    comparison: dict[str, Any] | None = None

    # -------------------------------------------------------------- accessors
    @property
    def main(self) -> FitSpec:
        """The main fit (``[model]``)."""
        return self.fits[0]

    @property
    def regressions(self) -> tuple[FitSpec, ...]:
        """The ``[[regression]]`` fits."""
        return self.fits[1:]

    def fit_spec(self, name: str) -> FitSpec:
        """The fit called ``name``."""
        for f in self.fits:
            if f.name == name:
                return f
        raise SpecError(
            f"{self.source}: no fit named {name!r}; fits: {[f.name for f in self.fits]}"
        )

    def fit_seed(self, fit: FitSpec) -> int:
        """Seed of a fit: the spec seed for the main model, a derived seed for the others."""
        return self.seed if fit.is_main else derive_seed(self.seed, f"fit:{fit.name}")

    def sampler_settings(self, fit: FitSpec | None = None, **overrides: Any) -> dict[str, Any]:
        """Sampler keyword arguments of :func:`bayesdta.fit` for ``fit``."""
        s = dict(_SAMPLER_DEFAULTS)
        s.update(self.sampler)
        if fit is not None:
            s.update(fit.sampler)
        s.update(overrides)
        return s

    # -------------------------------------------------------------- data
    def load_data(self):
        """Load the data named by ``[data]`` and apply its ``include`` / ``exclude`` filters.

        Returns
        -------
        DTAData

        Raises
        ------
        SpecError
            When a filter names a column that is not in the data or keeps no row; data errors
            (:class:`~bayesdta.exceptions.DTADataError`) name the row and column.
        """
        import pandas as pd

        from ..data.tables import DTAData

        d = self.data
        if "example" in d:
            from ..data.datasets import example_info, example_path

            info = example_info(d["example"])
            from importlib import resources

            with resources.as_file(example_path(d["example"])) as p:
                frame = pd.read_csv(p)
            study = d.get("study", info["study"])
            model = d.get("model", info["model"])
            source = f"packaged example {d['example']!r}"
            read_info = None
        else:
            from ..data.tables import read_table
            from ..exceptions import DTADataError

            path = Path(d["file"])
            if not path.exists():
                raise SpecError(f"{self.source}: data.file: {str(path)!r} does not exist")
            try:
                frame, read_info = read_table(path, sep=d.get("sep"))
            except DTADataError as exc:
                raise SpecError(f"{self.source}: data.file: {exc}") from None
            study, model = d.get("study"), d.get("model")
            source = str(path)
        mask = np.ones(len(frame), dtype=bool)
        for kind in ("include", "exclude"):
            for col, values in d.get(kind, {}).items():
                if col not in frame.columns:
                    raise SpecError(
                        f"{self.source}: data.{kind}.{col}: no column {col!r} in the data; "
                        f"columns are {list(frame.columns)}"
                    )
                hit = matches(frame[col], values)
                if kind == "include":
                    if not hit.any():
                        raise SpecError(
                            f"{self.source}: data.include.{col}: no row has a value in {values}; "
                            f"values are {sorted(map(str, frame[col].unique()))}"
                        )
                    mask &= hit
                else:
                    mask &= ~hit
        if not mask.any():
            raise SpecError(f"{self.source}: data.include / data.exclude leave no row")
        if read_info is None:
            frame = frame.loc[mask].reset_index(drop=True)
            frame.index = pd.RangeIndex(1, len(frame) + 1)
        else:  # a file: keep the row numbers, so that errors name the file line
            frame = frame.loc[mask]
        return DTAData.from_frame(
            frame,
            study=study,
            model=model,
            columns=d.get("columns") or None,
            clustered=bool(d.get("clustered", False)),
            source=source,
            _line_offset=None if read_info is None else read_info["line_offset"],
            _read_info=read_info,
        )

    def is_simulated(self) -> bool:
        """True when the data are a packaged simulated example."""
        if "example" not in self.data:
            return False
        from ..data.datasets import example_info

        return bool(example_info(self.data["example"]).get("simulated", False))

    def check_data(self, data) -> None:
        """Check the spec against the loaded data: covariates, reference levels, quantities.

        Raises
        ------
        SpecError
            Naming the key of the spec at fault.
        """
        from ..exceptions import DTADataError
        from ..families.bivariate import make_design

        for i, f in enumerate(self.fits):
            key = "model" if f.is_main else f"regression[{i - 1}]"
            try:
                make_design(data, f.model_spec())
            except (SpecError, DTADataError) as exc:
                raise SpecError(f"{self.source}: {key}: {exc}") from None
            for j, s in enumerate(f.subgroups if f.subgroups_given else ()):
                if s not in data.covariates:
                    raise SpecError(
                        f"{self.source}: {key}.subgroups[{j}]: {s!r} is not a covariate of the "
                        f"data; covariates are {data.covariates}"
                    )
        sw = self.sensitivity
        if sw is not None:
            if isinstance(sw.leave_one_study_out, tuple):
                for j, st in enumerate(sw.leave_one_study_out):
                    if st not in data.studies:
                        raise SpecError(
                            f"{self.source}: sensitivity.leave_one_study_out[{j}]: no study "
                            f"{st!r}; studies are {data.studies}"
                        )
            for i, e in enumerate(sw.exclude):
                key = f"sensitivity.exclude[{i}]"
                if "column" in e:
                    if e["column"] not in data.covariates:
                        raise SpecError(
                            f"{self.source}: {key}.column: {e['column']!r} is not a covariate "
                            f"of the data; covariates are {data.covariates}"
                        )
                    hit = matches(data.frame[e["column"]], e["values"])
                    if not hit.any():
                        raise SpecError(
                            f"{self.source}: {key}.values: no row has {e['column']} in "
                            f"{e['values']}; values are "
                            f"{sorted(map(str, data.frame[e['column']].unique()))}"
                        )
                    if hit.all():
                        raise SpecError(f"{self.source}: {key}: excludes every row")
                else:
                    for j, s in enumerate(e["studies"]):
                        if s not in data.studies:
                            raise SpecError(
                                f"{self.source}: {key}.studies[{j}]: no study {s!r}; "
                                f"studies are {data.studies}"
                            )

    def quantities(self, available: Sequence[str]) -> list[str]:
        """The ``outputs.quantities`` (glob patterns) expanded against the names a fit offers."""
        return expand_quantities(
            self.outputs["quantities"], available, source=self.source, key="outputs.quantities"
        )

    # -------------------------------------------------------------- serialization
    def to_dict(self) -> dict[str, Any]:
        """The normalized spec (defaults filled in), as written into reports and run records."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "seed": self.seed,
            "data": copy.deepcopy(self.data),
            "fits": [f.to_dict() for f in self.fits],
            "sampler": dict(self.sampler),
            "outputs": copy.deepcopy(self.outputs),
            "report": copy.deepcopy(self.report),
            "sensitivity": self.sensitivity.to_dict() if self.sensitivity else None,
            "source": self.source,
            "latent_class": copy.deepcopy(self.latent_class),
            "comparison": copy.deepcopy(self.comparison),
        }

    def resolved_toml(self) -> str:
        """The merged spec (after ``extends``) as TOML."""
        return dump_toml(self.raw)


def expand_quantities(
    patterns: Sequence[str], available: Sequence[str], *, source: str = "spec", key: str = ""
) -> list[str]:
    """Names of ``available`` matched by the (glob) ``patterns``, in the order of ``available``.

    Every pattern must match at least one name, else a :class:`SpecError` names ``key``.
    """
    if not patterns:
        return list(available)
    chosen: list[str] = []
    for i, p in enumerate(patterns):
        hits = [a for a in available if fnmatch.fnmatchcase(a, p)]
        if not hits:
            raise SpecError(
                f"{source}: {key}[{i}]: {p!r} matches no quantity{_suggest(p, available)}; "
                f"available: {', '.join(available)}"
            )
        for h in hits:
            if h not in chosen:
                chosen.append(h)
    return [a for a in available if a in chosen]


def matches(column, values: Sequence[Any]) -> np.ndarray:
    """Rows whose value equals one of ``values`` (compared as strings, so 1 matches "1")."""
    wanted = {_norm_value(v) for v in values}
    return np.array([_norm_value(v) in wanted for v in column.to_numpy()], dtype=bool)


def _norm_value(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return str(v)


# ------------------------------------------------------------------------------ parsing
_TOP_KEYS = (
    "extends",
    "analysis",
    "data",
    "model",
    "regression",
    "sampler",
    "outputs",
    "report",
    "sensitivity",
    "latent_class",
    "comparison",
)
_ANALYSIS_KEYS = ("name", "title", "description", "seed")
_DATA_KEYS = (
    "example",
    "file",
    "study",
    "model",
    "columns",
    "sep",
    "clustered",
    "include",
    "exclude",
)
_OUTPUT_KEYS = (
    "ci",
    "quantities",
    "tables",
    "table_formats",
    "table_options",
    "figures",
    "figure_formats",
    "figure_options",
    "figure_dpi",
    "captions",
    "save_posterior",
    "loo",
)
_REPORT_KEYS = ("title", "authors", "notes", "formats", "include_spec", "round_to")


def _parse_data(chk: _Checker, value: Any, base_dir: Path | None) -> dict[str, Any]:
    key = "data"
    t = chk.table(value, key)
    if not t:
        raise chk.error(key, "missing: give data.example (packaged dataset) or data.file (CSV)")
    chk.keys(t, _DATA_KEYS, key)
    out: dict[str, Any] = {}
    if ("example" in t) == ("file" in t):
        raise chk.error(key, "give exactly one of data.example and data.file")
    if "example" in t:
        from ..data.datasets import list_examples

        ex = chk.string(t["example"], "data.example", allow_none=False)
        if ex not in list_examples():
            raise chk.error(
                "data.example",
                f"unknown packaged example {ex!r}{_suggest(str(ex), list(list_examples()))}; "
                f"available: {', '.join(list_examples())}",
            )
        out["example"] = ex
    else:
        f = chk.string(t["file"], "data.file", allow_none=False)
        assert f is not None
        p = Path(f).expanduser()
        if not p.is_absolute() and base_dir is not None:
            p = base_dir / p
        out["file"] = str(p.resolve())
    for k in ("study", "model", "sep"):
        if k in t:
            out[k] = chk.string(t[k], f"data.{k}", allow_none=False)
    if "clustered" in t:
        if not isinstance(t["clustered"], bool):
            raise chk.error("data.clustered", f"must be true or false, got {t['clustered']!r}")
        out["clustered"] = t["clustered"]
    if "columns" in t:
        cols = chk.table(t["columns"], "data.columns")
        chk.keys(cols, ("TP", "FP", "FN", "TN"), "data.columns")
        out["columns"] = {
            k: chk.string(v, f"data.columns.{k}", allow_none=False) for k, v in cols.items()
        }
    for kind in ("include", "exclude"):
        if kind in t:
            filt = chk.table(t[kind], f"data.{kind}")
            out[kind] = {
                str(col): chk.value_list(v, f"data.{kind}.{col}") for col, v in filt.items()
            }
    return out


def _parse_outputs(chk: _Checker, value: Any) -> dict[str, Any]:
    key = "outputs"
    t = chk.table(value, key)
    chk.keys(t, _OUTPUT_KEYS, key)
    out: dict[str, Any] = {
        "ci": 0.95,
        "quantities": [],
        "tables": [
            t
            for t in TABLES
            if t != "auc" and t not in DATA_TABLES and t not in ML_TABLES and t not in OPT_IN_TABLES
        ],
        "table_formats": list(_TABLE_FORMATS),
        "table_options": {},
        "figures": [f for f in FIGURES if f not in OPT_IN_FIGURES],
        "figure_formats": ["png", "pdf"],
        "figure_options": {},
        "figure_dpi": 200,
        "captions": {},
        "save_posterior": True,
        "loo": True,
    }
    if "ci" in t:
        out["ci"] = chk.number(t["ci"], "outputs.ci", low=0.0, high=1.0)
    if "quantities" in t:
        out["quantities"] = chk.string_list(t["quantities"], "outputs.quantities")
    if "figures" in t:
        out["figures"] = chk.string_list(t["figures"], "outputs.figures", choices=list(FIGURES))
    if "figure_formats" in t:
        ff = chk.string_list(t["figure_formats"], "outputs.figure_formats", choices=_FIGURE_FORMATS)
        out["figure_formats"] = ["png"] + [f for f in ff if f != "png"]
    if "figure_options" in t:
        opts = chk.table(t["figure_options"], "outputs.figure_options")
        chk.keys(opts, list(FIGURES), "outputs.figure_options")
        out["figure_options"] = {
            k: chk.table(v, f"outputs.figure_options.{k}") for k, v in opts.items()
        }
    if "captions" in t:
        caps = chk.table(t["captions"], "outputs.captions")
        chk.keys(caps, list(FIGURES), "outputs.captions")
        out["captions"] = {
            k: chk.string(v, f"outputs.captions.{k}", allow_none=False) for k, v in caps.items()
        }
    if "tables" in t:
        out["tables"] = chk.string_list(t["tables"], "outputs.tables", choices=list(TABLES))
    if "table_formats" in t:
        out["table_formats"] = chk.string_list(
            t["table_formats"], "outputs.table_formats", choices=_TABLE_FORMATS
        )
    if "table_options" in t:
        opts = chk.table(t["table_options"], "outputs.table_options")
        chk.keys(opts, list(TABLES), "outputs.table_options")
        out["table_options"] = {
            k: chk.table(v, f"outputs.table_options.{k}") for k, v in opts.items()
        }
    if "figure_dpi" in t:
        dpi = chk.integer(t["figure_dpi"], "outputs.figure_dpi", minimum=50)
        if dpi > 1200:
            raise chk.error("outputs.figure_dpi", f"must be at most 1200, got {dpi}")
        out["figure_dpi"] = dpi
    for b in ("save_posterior", "loo"):
        if b in t:
            out[b] = chk.boolean(t[b], f"outputs.{b}")
    return out


def _parse_report(chk: _Checker, value: Any, title: str) -> dict[str, Any]:
    key = "report"
    t = chk.table(value, key)
    chk.keys(t, _REPORT_KEYS, key)
    out: dict[str, Any] = {
        "title": title,
        "authors": "",
        "notes": "",
        "formats": list(_REPORT_FORMATS),
        "include_spec": True,
        "round_to": 3,
    }
    for k in ("title", "authors", "notes"):
        if k in t:
            out[k] = chk.string(t[k], f"report.{k}", allow_none=False)
    if "formats" in t:
        out["formats"] = chk.string_list(t["formats"], "report.formats", choices=_REPORT_FORMATS)
    if "include_spec" in t:
        out["include_spec"] = chk.boolean(t["include_spec"], "report.include_spec")
    if "round_to" in t:
        r = chk.integer(t["round_to"], "report.round_to", minimum=0)
        if r > 10:
            raise chk.error("report.round_to", f"must be at most 10, got {r}")
        out["round_to"] = r
    return out


def parse_spec(
    mapping: Mapping[str, Any],
    *,
    base_dir: str | Path | None = None,
    source: str = "<mapping>",
    text: str | None = None,
    default_name: str = "analysis",
) -> AnalysisSpec:
    """Validate a spec given as a mapping (the parsed TOML).

    Parameters
    ----------
    mapping : mapping
        The spec tables (``extends`` is not resolved here; use :func:`load_spec`).
    base_dir : path, optional
        Directory that relative data paths are resolved against.
    source : str
        Name used in error messages.
    text : str, optional
        The spec text to record (default: a TOML rendering of ``mapping``).
    default_name : str
        Analysis name when ``analysis.name`` is not given.

    Returns
    -------
    AnalysisSpec
    """
    chk = _Checker(source)
    raw = copy.deepcopy(dict(mapping))
    chk.keys(raw, _TOP_KEYS, "")
    base = Path(base_dir) if base_dir is not None else None

    an = chk.table(raw.get("analysis"), "analysis")
    chk.keys(an, _ANALYSIS_KEYS, "analysis")
    name = chk.name(an.get("name", default_name), "analysis.name")
    title = chk.string(an.get("title", name), "analysis.title", allow_none=False)
    description = an.get("description", "")
    if not isinstance(description, str):
        raise chk.error("analysis.description", f"must be a string, got {description!r}")
    seed = chk.integer(an.get("seed", 2025), "analysis.seed", minimum=0)
    if seed >= 2**31:
        raise chk.error("analysis.seed", f"must be below 2**31, got {seed}")

    data = _parse_data(chk, raw.get("data"), base)

    m = chk.table(raw.get("model"), "model")
    chk.keys(m, _MAIN_KEYS, "model")
    main_model, main_link = _parse_model_fields(chk, m, "model", None)
    main_name = chk.name(m.get("name", "main"), "model.name")
    main = FitSpec(
        name=main_name,
        title=chk.string(m.get("title", "Main model"), "model.title", allow_none=False) or "",
        model=main_model,
        link=main_link,
        is_main=True,
    )
    _try_model(chk, main, "model")
    fits = [main]
    regs = raw.get("regression", [])
    if not isinstance(regs, list):
        raise chk.error("regression", "must be an array of tables: write [[regression]]")
    base_model = {k: v for k, v in main_model.items()}
    for i, r in enumerate(regs):
        key = f"regression[{i}]"
        r = chk.table(r, key)
        chk.keys(r, _REGRESSION_KEYS, key)
        if "name" not in r:
            raise chk.error(f"{key}.name", "missing: every regression needs a name")
        nm = chk.name(r["name"], f"{key}.name")
        if nm in [f.name for f in fits]:
            raise chk.error(f"{key}.name", f"duplicated fit name {nm!r}")
        has_formula = any(k in r for k in ("formula", "formula_sensitivity", "formula_specificity"))
        if not has_formula and "random_effects" not in r:
            # a fit without a formula is a model variant (e.g. random_effects = "t"), compared
            # with the main fit by PSIS-LOO in the report's model_comparison table
            raise chk.error(f"{key}.formula", "missing: a regression needs a formula")
        model, link = _parse_model_fields(chk, r, key, base_model)
        subgroups = (
            chk.string_list(r["subgroups"], f"{key}.subgroups") if "subgroups" in r else None
        )
        fs = FitSpec(
            name=nm,
            title=chk.string(r.get("title", f"Meta-regression {nm}"), f"{key}.title") or nm,
            model=model,
            link=link if "link" in r else main_link,
            subgroups=(),
            sampler=_parse_sampler(chk, r.get("sampler"), f"{key}.sampler"),
        )
        if subgroups is None:
            subgroups = fs.variables()
        tables = (
            chk.string_list(r["tables"], f"{key}.tables", choices=list(REGRESSION_TABLES))
            if "tables" in r
            else (list(REGRESSION_TABLES) if has_formula else [])
        )
        figures = (
            chk.string_list(r["figures"], f"{key}.figures", choices=list(FIGURES))
            if "figures" in r
            else []
        )
        fopts = chk.table(r.get("figure_options"), f"{key}.figure_options")
        chk.keys(fopts, list(FIGURES), f"{key}.figure_options")
        fopts = {k: chk.table(v, f"{key}.figure_options.{k}") for k, v in fopts.items()}
        fs = dataclasses.replace(
            fs,
            subgroups_given="subgroups" in r,
            subgroups=tuple(subgroups),
            tables=tuple(tables),
            figures=tuple(figures),
            figure_options=fopts,
        )
        _try_model(chk, fs, key)
        fits.append(fs)

    sampler = dict(_SAMPLER_DEFAULTS)
    sampler.update(_parse_sampler(chk, raw.get("sampler"), "sampler"))
    outputs = _parse_outputs(chk, raw.get("outputs"))
    report = _parse_report(chk, raw.get("report"), title or name)
    sweeps = _parse_sweeps(chk, raw.get("sensitivity"), [f.name for f in fits])
    from .latent_class_spec import parse_latent_class

    latent_class = parse_latent_class(raw.get("latent_class"), source)
    spec = AnalysisSpec(
        name=name,
        title=title or name,
        description=description,
        seed=seed,
        data=data,
        fits=tuple(fits),
        sampler=sampler,
        outputs=outputs,
        report=report,
        sensitivity=sweeps,
        comparison=_parse_comparison(raw.get("comparison"), sweeps),
        source=source,
        text=text if text is not None else dump_toml(raw),
        raw=raw,
        latent_class=latent_class,
    )
    return spec


def _try_model(chk: _Checker, fit: FitSpec, key: str) -> None:
    try:
        fit.model_spec()
    except SpecError as exc:
        raise chk.error(key, str(exc)) from None


def _deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(dict(out[k]), v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _read_toml(
    path: Path, chain: tuple[Path, ...], parents: list[str] | None = None
) -> dict[str, Any]:
    """Read a TOML spec, resolving ``extends`` (relative data paths made absolute per file)."""
    if path in chain:
        raise SpecError(f"{path}: extends: circular ({' -> '.join(map(str, (*chain, path)))})")
    if not path.exists():
        where = f"{chain[-1]}: extends: " if chain else ""
        raise SpecError(f"{where}spec file {str(path)!r} does not exist")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a UTF-8 text file") from None
    data = raw.get("data")
    if isinstance(data, dict) and isinstance(data.get("file"), str):
        p = Path(data["file"]).expanduser()
        if not p.is_absolute():
            data["file"] = str((path.parent / p).resolve())
    ext = raw.pop("extends", None)
    if ext is None:
        return raw
    if not isinstance(ext, str) or not ext.strip():
        raise SpecError(f"{path}: extends: must be a file name, got {ext!r}")
    parent_path = (path.parent / ext).resolve()
    if parents is not None:
        parents.append(str(parent_path))
    parent = _read_toml(parent_path, (*chain, path), parents)
    if "file" in (raw.get("data") or {}) and "example" in (parent.get("data") or {}):
        parent["data"].pop("example")
    if "example" in (raw.get("data") or {}) and "file" in (parent.get("data") or {}):
        parent["data"].pop("file")
    merged = _deep_merge(parent, raw)
    return merged


def load_spec(path: str | Path) -> AnalysisSpec:
    """Read and validate a TOML analysis spec.

    Parameters
    ----------
    path : str or Path
        The spec file. ``data.file`` and ``extends`` are relative to the file's folder.

    Returns
    -------
    AnalysisSpec

    Raises
    ------
    SpecError
        Naming the file and the dotted key at fault.
    """
    path = Path(path)
    if not path.exists():
        raise SpecError(f"spec file {str(path)!r} does not exist")
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a spec file")
    resolved = path.resolve()
    parents: list[str] = []
    raw = _read_toml(resolved, (), parents)
    text = path.read_text(encoding="utf-8")
    spec = parse_spec(
        raw,
        base_dir=resolved.parent,
        source=str(path),
        text=text,
        default_name=path.stem,
    )
    return dataclasses.replace(spec, extends=tuple(parents))


# ------------------------------------------------------------------------------ TOML output
def _toml_key(k: str) -> str:
    return k if re.match(r"^[A-Za-z0-9_-]+$", k) else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "nan"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        return repr(f)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        raise BayesDTAError("TOML has no null value")
    return json.dumps(str(v))


def _is_table_array(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, Mapping) for x in v)


def dump_toml(mapping: Mapping[str, Any]) -> str:
    """Render a mapping of TOML types as TOML text (``None`` values are left out).

    Enough for specs: scalars, lists, tables and arrays of tables.
    """
    lines: list[str] = []

    def emit(table: Mapping[str, Any], prefix: str, header: str | None) -> None:
        scalars = [
            (k, v)
            for k, v in table.items()
            if v is not None and not isinstance(v, Mapping) and not _is_table_array(v)
        ]
        subs = [(k, v) for k, v in table.items() if isinstance(v, Mapping)]
        arrays = [(k, v) for k, v in table.items() if _is_table_array(v)]
        if header is not None and (scalars or not (subs or arrays)):
            if lines:
                lines.append("")
            lines.append(header)
        for k, v in scalars:
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in subs:
            name = f"{prefix}{_toml_key(k)}"
            emit(v, f"{name}.", f"[{name}]")
        for k, v in arrays:
            name = f"{prefix}{_toml_key(k)}"
            for item in v:
                lines.append("")
                lines.append(f"[[{name}]]")
                sub_scalars = {a: b for a, b in item.items() if not isinstance(b, Mapping)}
                for a, b in sub_scalars.items():
                    if b is not None:
                        lines.append(f"{_toml_key(a)} = {_toml_value(b)}")
                for a, b in item.items():
                    if isinstance(b, Mapping):
                        lines.append(f"{_toml_key(a)} = {_toml_value(b)}")

    emit(mapping, "", None)
    return "\n".join(lines).strip() + "\n"


def grid_product(grid: Mapping[str, Sequence[str]]) -> list[dict[str, str]]:
    """All combinations of a prior grid ``{name: [prior, ...]}``, in a stable order."""
    if not grid:
        return []
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*grid.values())]


# ------------------------------------------------------------------------------ key reference
#: Every key an analysis spec accepts, by section (``""`` = top level), in the order the parser
#: checks them. ``docs/spec_reference.md`` is generated from it (``python tools/gen_docs.py``),
#: so the reference cannot drift from the parser.
from .latent_class_spec import LATENT_CLASS_KEYS as _LATENT_CLASS_KEYS  # noqa: E402

SPEC_KEYS: dict[str, tuple[str, ...]] = {
    "": _TOP_KEYS,
    "analysis": _ANALYSIS_KEYS,
    "data": _DATA_KEYS,
    "model": _MAIN_KEYS,
    "regression": _REGRESSION_KEYS,
    "sampler": _SAMPLER_KEYS,
    "outputs": _OUTPUT_KEYS,
    "report": _REPORT_KEYS,
    "sensitivity": _SWEEP_KEYS,
    "latent_class": _LATENT_CLASS_KEYS,
}
#: Formats a spec may ask for: figures, tables and the report.
SPEC_FORMATS: dict[str, tuple[str, ...]] = {
    "figure_formats": _FIGURE_FORMATS,
    "table_formats": _TABLE_FORMATS,
    "report.formats": _REPORT_FORMATS,
}
