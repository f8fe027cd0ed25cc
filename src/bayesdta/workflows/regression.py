r"""Meta-regression results: subgroups, contrasts, explained heterogeneity, subgroup tables.

A meta-regression is an ordinary :func:`bayesdta.fit` with a formula; covariates enter logit
sensitivity and logit specificity with separate coefficients (see
:class:`~bayesdta.model.ModelSpec`). This module reads off what a review reports from such fits,
per posterior draw and then summarized (posterior median and equal-tailed ``ci`` interval):

* :func:`subgroups` -- pooled sensitivity, specificity, LR+, LR- and DOR per level of a
  categorical covariate, or at chosen covariate values;
* :func:`contrasts` -- differences between levels on the logit scale (log odds ratios) and the
  probability scale, ratios, the relative DOR, and the posterior probability that a level is
  better;
* :func:`heterogeneity_explained` -- residual between-study (and within-study) SDs and the
  proportion of the heterogeneity variance explained, relative to a model without covariates;
* :func:`subgroup_table` -- the review's subgroup table, Bayesian: every covariate fitted on
  its own, with contrasts, P(better), the ELPD-LOO difference (grouped by study) against the
  model without it and the heterogeneity explained, in one call that compiles the model once;
* :func:`compare_clustering` -- three-level model, two-level model on study-pooled counts
  (:func:`collapse_studies`) and the "rows independent" two-level model, side by side: ELPD-LOO
  grouped by study and the width of the pooled intervals.

ELPD-LOO is grouped by study with each study's random effects integrated out
(:meth:`DTAFit.loo`, :func:`bayesdta.quantities.loo_integrated`): the predictive density of a
whole new study.

With ``link="probit"`` fits, "logit" reads "probit" throughout (the ``logit_diff`` columns keep
their name and hold link-scale differences; :mod:`bayesdta.links`).

The summary point of a subgroup is ``F(x beta)`` (``F`` the inverse link, invlogit by
default): the conditional (study-specific
median) sensitivity of a study with covariates ``x``, as :meth:`DTAFit.summary` reports for the
reference levels. Covariates not named are held at their reference level (categorical) or their
mean (continuous).
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import gammaln

from ..data.tables import COUNT_COLUMNS, DTAData
from ..exceptions import SamplerWarning, SpecError
from ..families import links as lk
from ..families import stats as st
from ..families.bivariate import OUTCOMES, Design, ModelSpec, make_design
from ..inference.fit import DTAFit, as_data, fit_design
from ..inference.fit import fit as _bd_fit
from ..inference.sampling import SamplerSettings
from ..registry import register_table

__all__ = [
    "subgroups",
    "contrasts",
    "heterogeneity_explained",
    "subgroup_table",
    "collapse_studies",
    "compare_clustering",
]

_QUANTITIES = ("sensitivity", "specificity", "lr_positive", "lr_negative", "dor")
_MODEL_KEYS = ("levels", "priors", "parameterization", "reference", "tau_by", "link")
_SAMPLER_KEYS = (
    "backend",
    "draws",
    "tune",
    "chains",
    "target_accept",
    "cores",
    "progress",
    "low_rank",
)
_PAD = "__pad{}"


# ------------------------------------------------------------------------------ helpers
def _check_ci(ci: float) -> float:
    ci = float(ci)
    if not 0.0 < ci < 1.0:
        raise SpecError(f"ci must lie strictly between 0 and 1, got {ci!r}")
    return ci


def _summ(x: np.ndarray, ci: float) -> tuple[float, float, float]:
    """Median and equal-tailed interval of draws (any shape, flattened; NaN ignored)."""
    a = (1.0 - ci) / 2.0
    flat = np.asarray(x, dtype=float).ravel()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(flat, [0.5, a, 1.0 - a])
    return float(q[0]), float(q[1]), float(q[2])


def _put(row: dict[str, Any], name: str, x: np.ndarray, ci: float) -> None:
    row[name], row[f"{name}_lower"], row[f"{name}_upper"] = _summ(x, ci)


def _relabel(fit: DTAFit) -> DTAFit:
    """Make the posterior's coefficient (and ``tau_level``) labels those of ``fit.design``.

    A compiled model re-used for a formula with the same number of coefficients keeps the
    coordinate labels of the model it was compiled for; the design knows the right ones.
    """
    post = fit.idata.posterior
    update: dict[str, list[str]] = {}
    for o in OUTCOMES:
        dim = f"coef_{o}"
        cols = list(fit.design.columns[o])
        if dim in post.dims and [str(c) for c in post[dim].values] != cols:
            if post.sizes[dim] != len(cols):
                raise SpecError(f"posterior has {post.sizes[dim]} {o} coefficients, design {cols}")
            update[dim] = cols
    if fit.spec.tau_by and "tau_level" in post.dims:
        # the order of bayesdta.model.build_model: sorted, the reference level first
        lv = sorted(set(fit.data.frame[fit.spec.tau_by].astype(object).map(str)))
        ref = fit.spec.reference.get(fit.spec.tau_by)
        if ref is None and fit.spec.tau_by in fit.design.levels:
            ref = fit.design.levels[fit.spec.tau_by][0]
        if ref is not None and str(ref) in lv:
            lv = [str(ref)] + [x for x in lv if x != str(ref)]
        if [str(v) for v in post["tau_level"].values] != lv and len(lv) == post.sizes["tau_level"]:
            update["tau_level"] = lv
    if update:
        fit.idata.posterior = post.assign_coords(update)
        fit._draw_cache.clear()
        fit._diag = None
    return fit


def _beta(fit: DTAFit, outcome: str) -> np.ndarray:
    """Coefficient draws (chain * draw, p) on the internal scale, in design column order."""
    b = fit.posterior[f"beta_{outcome}"].transpose("chain", "draw", f"coef_{outcome}").values
    return np.asarray(b, dtype=float).reshape(-1, b.shape[-1])


def _cd(x: Any) -> np.ndarray:
    """(chain, draw) values of a DataArray."""
    return np.asarray(x.transpose("chain", "draw").values, dtype=float)


def _complete_row(design: Design, at: Mapping[str, Any]) -> dict[str, Any]:
    """A full covariate row: ``at`` values, others at reference level / mean; validated."""
    known = list(design.variables)
    for k, v in at.items():
        if k not in known:
            raise SpecError(
                f"{k!r} is not a covariate of the model formula; "
                f"covariates are {known or 'none (no meta-regression)'}"
            )
        if k in design.levels:
            if str(v) not in design.levels[k]:
                raise SpecError(f"unknown level {v!r} of {k}; levels are {design.levels[k]}")
        else:
            try:
                float(v)
            except (TypeError, ValueError):
                raise SpecError(f"{k} is continuous; got the non-numeric value {v!r}") from None
    row: dict[str, Any] = {}
    for v in known:
        if v in design.levels:
            row[v] = str(at[v]) if v in at else design.levels[v][0]
        else:
            row[v] = float(at[v]) if v in at else design.scaling[v][0]
    return row


def _linear_predictors(fit: DTAFit, rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Draws (n_rows, chain * draw) of x beta for covariate rows (completed by _complete_row)."""
    design = fit.design
    full = [_complete_row(design, r) for r in rows]
    if design.variables:
        X = design.encode(pd.DataFrame(full))
    else:
        X = {o: np.ones((len(full), 1)) for o in OUTCOMES}
    return {o: X[o] @ _beta(fit, o).T for o in OUTCOMES}


def _level_mask(fit: DTAFit, at: Mapping[str, Any]) -> np.ndarray:
    frame = fit.data.frame
    m = np.ones(fit.data.n_rows, dtype=bool)
    for k, v in at.items():
        if k in fit.design.levels:
            m &= frame[k].astype(object).map(str).to_numpy() == str(v)
    return m


def _describe(at: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in at.items()) or "reference"


def _as_list(x: str | Sequence[str] | None) -> list[str] | None:
    if x is None:
        return None
    return [x] if isinstance(x, str) else list(x)


# ------------------------------------------------------------------------------ subgroups
@register_table("subgroups", regression=True)
def subgroups(
    fit: DTAFit,
    *,
    by: str | Sequence[str] | None = None,
    at: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    ci: float = 0.95,
    pooled: bool = False,
) -> pd.DataFrame:
    """Subgroup-specific pooled sensitivity, specificity, LR+, LR- and DOR of a meta-regression.

    Parameters
    ----------
    fit : DTAFit
        A meta-regression (or any fit: without covariates there is one row, the summary point).
    by : str or list of str, optional
        Categorical covariates; one row per level of each, the other covariates held at ``at``
        (or their reference level / mean). Default: every categorical covariate of the formula
        (the summary point alone when there is none).
    at : mapping or list of mappings, optional
        Covariate values (original scale for continuous covariates). A mapping fixes the other
        covariates while ``by`` varies; a list of mappings gives one row per mapping (chosen
        covariate values, e.g. ``[{"n_test": 100}, {"n_test": 500}]``) and excludes ``by``.
    ci : float
        Probability of the equal-tailed credible intervals.
    pooled : bool
        Append the summary point over the observed covariate mix, row (``"pooled"``,
        ``"observed covariate mix"``): per draw the inverse link of the mean linear predictor
        ``x_r beta`` over the rows in the fit (weight > 0), as ``sensitivity_pooled`` /
        ``specificity_pooled`` of :meth:`DTAFit.summary` (meta-regressions only).

    Returns
    -------
    pandas.DataFrame
        Indexed by (``covariate``, ``level``); columns ``n_rows`` and ``n_studies`` (rows and
        studies of the data in the subgroup), then for each of ``sensitivity``,
        ``specificity``, ``lr_positive``, ``lr_negative``, ``dor`` the posterior median and
        ``<name>_lower`` / ``<name>_upper``. With ``tau_by`` equal to the ``by`` covariate,
        the subgroup's between-study SDs ``tau_sensitivity`` / ``tau_specificity`` (medians).

    Raises
    ------
    SpecError
        An unknown covariate or level, or ``by`` naming a continuous covariate.
    """
    ci = _check_ci(ci)
    _relabel(fit)
    design = fit.design
    entries: list[tuple[str, str, dict[str, Any]]] = []
    if at is not None and not isinstance(at, Mapping):
        if by is not None:
            raise SpecError("give either by= or a list of covariate values at=, not both")
        for a in at:
            if not isinstance(a, Mapping):
                raise SpecError(f"at= must be a mapping or a list of mappings, got {a!r}")
            entries.append(("at", _describe(a), dict(a)))
    else:
        base = dict(at or {})
        _complete_row(design, base)  # validate
        names = _as_list(by)
        if names is None:
            names = [v for v in design.variables if v in design.levels and v not in base]
        for v in names:
            if v not in design.variables:
                raise SpecError(
                    f"by= {v!r} is not a covariate of the model formula; "
                    f"covariates are {list(design.variables) or 'none (no meta-regression)'}"
                )
            if v not in design.levels:
                raise SpecError(
                    f"by= {v!r} is continuous; give chosen values with at=[{{{v!r}: value}}, ...]"
                )
            if v in base:
                raise SpecError(f"{v!r} is given both in by= and in at=")
            for lv in design.levels[v]:
                entries.append((v, lv, {**base, v: lv}))
        if not entries:
            entries.append(("overall", _describe(base), base))
    lp = _linear_predictors(fit, [e[2] for e in entries])
    tau_by = fit.spec.tau_by
    rows = []
    for i, (cov, label, a) in enumerate(entries):
        se = lk.inverse(lp["sensitivity"][i], fit.spec.link)
        sp = lk.inverse(lp["specificity"][i], fit.spec.link)
        q = {"sensitivity": se, "specificity": sp, **st.likelihood_ratios(se, sp)}
        mask = _level_mask(fit, a)
        row: dict[str, Any] = {
            "covariate": cov,
            "level": label,
            "n_rows": int(mask.sum()),
            "n_studies": int(len(set(fit.data.frame["study"][mask]))),
        }
        for name in _QUANTITIES:
            _put(row, name, q[name], ci)
        if tau_by and cov == tau_by and "tau_level" in fit.posterior["tau_sensitivity"].dims:
            for o in OUTCOMES:
                tau = fit.posterior[f"tau_{o}"].sel(tau_level=label)
                row[f"tau_{o}"] = float(np.median(_cd(tau)))
        rows.append(row)
    if pooled and design.has_covariates:
        rows.append(_pooled_row(fit, ci))
    df = pd.DataFrame(rows).set_index(["covariate", "level"])
    df.attrs["ci"] = ci
    return df


def _pooled_row(fit: DTAFit, ci: float) -> dict[str, Any]:
    """The subgroups row of the summary point over the observed covariate mix."""
    keep = fit.weights > 0
    se = _cd(fit.draws("sensitivity_pooled")).ravel()
    sp = _cd(fit.draws("specificity_pooled")).ravel()
    q = {"sensitivity": se, "specificity": sp, **st.likelihood_ratios(se, sp)}
    row: dict[str, Any] = {
        "covariate": "pooled",
        "level": "observed covariate mix",
        "n_rows": int(keep.sum()),
        "n_studies": int(len(set(fit.data.frame["study"][keep]))),
    }
    for name in _QUANTITIES:
        _put(row, name, q[name], ci)
    return row


# ------------------------------------------------------------------------------ contrasts
@register_table("contrasts", regression=True)
def contrasts(
    fit: DTAFit,
    *,
    covariate: str | Sequence[str] | None = None,
    ci: float = 0.95,
    reference: Any = None,
    at: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Contrasts between covariate levels: differences, ratios and P(better), per draw.

    For a categorical covariate every level is compared with the reference level (the fitted
    one, or ``reference``); for a continuous covariate the value ``reference + 1`` (original
    units; default reference: the mean) is compared with ``reference``. The other covariates
    are held at ``at`` (default: reference level / mean); without interactions this matters
    only for the probability-scale differences and ratios, not for the logit differences.

    Parameters
    ----------
    fit : DTAFit
        A meta-regression.
    covariate : str or list of str, optional
        Covariates to contrast (default: every covariate of the formula).
    ci : float
        Probability of the equal-tailed credible intervals.
    reference : optional
        The level (categorical) or value (continuous) compared against; only with a single
        ``covariate``.
    at : mapping, optional
        Values of the other covariates.

    Returns
    -------
    pandas.DataFrame
        Indexed by (``covariate``, ``level``, ``outcome``) with ``outcome`` in
        ``sensitivity``, ``specificity``, ``dor``. Columns: ``reference``; ``logit_diff``
        (the log odds ratio of the level against the reference; for ``dor`` the log relative
        DOR; for probit fits the difference of the linear predictors, probit se + probit sp
        for ``dor``) with ``_lower`` / ``_upper``; ``diff`` (difference of probabilities; NaN for
        ``dor``) with its interval; ``ratio`` (se_level / se_reference, sp likewise, and the
        relative DOR, from the probabilities for probit fits) with its interval; ``p_better`` =
        P(the level's value is larger), and
        ``p_better_both`` = P(both sensitivity and specificity are larger). ``p_better`` is NaN
        when the covariate is not in that outcome's formula (the difference is 0 by
        assumption).

    Raises
    ------
    SpecError
        An unknown covariate or level, or a fit without covariates.
    """
    ci = _check_ci(ci)
    _relabel(fit)
    design = fit.design
    if not design.variables:
        raise SpecError("the fit has no covariates: there is nothing to contrast")
    names = _as_list(covariate) or list(design.variables)
    if reference is not None and len(names) != 1:
        raise SpecError("reference= needs exactly one covariate")
    at = dict(at or {})
    rows = []
    for v in names:
        if v not in design.variables:
            raise SpecError(
                f"{v!r} is not a covariate of the model formula; "
                f"covariates are {list(design.variables)}"
            )
        others = {k: x for k, x in at.items() if k != v}
        if v in design.levels:
            ref = design.levels[v][0] if reference is None else str(reference)
            if ref not in design.levels[v]:
                raise SpecError(
                    f"reference {reference!r} is not a level of {v}; levels are {design.levels[v]}"
                )
            pairs = [(lv, {v: lv}) for lv in design.levels[v] if lv != ref]
            ref_row = {v: ref}
        else:
            ref_val = design.scaling[v][0] if reference is None else float(reference)
            ref = f"{ref_val:g}"
            pairs = [(f"{ref_val + 1:g} (+1)", {v: ref_val + 1.0})]
            ref_row = {v: ref_val}
        in_formula = {o: any(_uses(c, v) for c in design.columns[o]) for o in OUTCOMES}
        lp = _linear_predictors(fit, [{**others, **ref_row}] + [{**others, **p[1]} for p in pairs])
        r_se, r_sp = lp["sensitivity"][0], lp["specificity"][0]
        for i, (label, _) in enumerate(pairs, start=1):
            l_se, l_sp = lp["sensitivity"][i], lp["specificity"][i]
            d = {"sensitivity": l_se - r_se, "specificity": l_sp - r_sp}
            both = float(np.mean((d["sensitivity"] > 0) & (d["specificity"] > 0)))
            link = fit.spec.link
            p_ref = {"sensitivity": lk.inverse(r_se, link), "specificity": lk.inverse(r_sp, link)}
            p_lev = {"sensitivity": lk.inverse(l_se, link), "specificity": lk.inverse(l_sp, link)}
            for o in (*OUTCOMES, "dor"):
                row: dict[str, Any] = {"covariate": v, "level": label, "outcome": o}
                row["reference"] = ref
                if o == "dor":
                    ld = d["sensitivity"] + d["specificity"]
                    _put(row, "logit_diff", ld, ci)
                    row.update(diff=np.nan, diff_lower=np.nan, diff_upper=np.nan)
                    if link == "logit":
                        _put(row, "ratio", np.exp(ld), ci)
                    else:  # relative DOR from the probabilities (exp(ld) is not a DOR ratio)
                        dor_lev = st.likelihood_ratios(p_lev["sensitivity"], p_lev["specificity"])
                        dor_ref = st.likelihood_ratios(p_ref["sensitivity"], p_ref["specificity"])
                        _put(row, "ratio", dor_lev["dor"] / dor_ref["dor"], ci)
                    informative = any(in_formula.values())
                else:
                    ld = d[o]
                    _put(row, "logit_diff", ld, ci)
                    _put(row, "diff", p_lev[o] - p_ref[o], ci)
                    _put(row, "ratio", p_lev[o] / p_ref[o], ci)
                    informative = in_formula[o]
                row["p_better"] = float(np.mean(ld > 0)) if informative else np.nan
                row["p_better_both"] = both if all(in_formula.values()) else np.nan
                rows.append(row)
    df = pd.DataFrame(rows).set_index(["covariate", "level", "outcome"])
    df.attrs["ci"] = ci
    return df


def _uses(column: str, variable: str) -> bool:
    """Whether a formulaic column name involves ``variable``."""
    for part in str(column).split(":"):
        name = part.split("[", 1)[0]
        if name == variable:
            return True
    return False


# ------------------------------------------------------------------------------ heterogeneity
def _variance_components(fit: DTAFit) -> dict[str, np.ndarray]:
    """(chain, draw) draws of the SDs: between (per tau level) and within."""
    _relabel(fit)
    p = fit.posterior
    out: dict[str, np.ndarray] = {}
    for o in OUTCOMES:
        tau = p[f"tau_{o}"]
        if "tau_level" in tau.dims:
            for lv in tau.coords["tau_level"].values:
                out[f"tau_{o}[{lv}]"] = _cd(tau.sel(tau_level=lv, drop=True))
        else:
            out[f"tau_{o}"] = _cd(tau)
    if fit.levels == 3:
        for o in OUTCOMES:
            out[f"tau_within_{o}"] = _cd(p[f"tau_within_{o}"])
    return out


def _check_same_data(fit: DTAFit, base_fit: DTAFit) -> None:
    if fit.data.n_rows != base_fit.data.n_rows or fit.data.studies != base_fit.data.studies:
        raise SpecError(
            "fit and base_fit must be fitted to the same data "
            f"({fit.data.n_rows} rows / {fit.data.n_studies} studies vs "
            f"{base_fit.data.n_rows} / {base_fit.data.n_studies})"
        )


@register_table("heterogeneity_explained", regression=True)
def heterogeneity_explained(
    fit: DTAFit, base_fit: DTAFit, *, ci: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Residual heterogeneity of a meta-regression and the proportion explained by its covariates.

    The proportion of a variance component explained is ``1 - tau^2 / tau_base^2`` (Bayesian
    analogue of the "R^2" of a meta-regression), with ``tau_base`` from the model without
    covariates. The point value uses the posterior medians of the two variances; its interval
    pairs draws of the two (independent) posteriors at random, so it reflects the uncertainty
    of both. Negative values mean the covariates did not reduce that component.

    Parameters
    ----------
    fit : DTAFit
        The meta-regression.
    base_fit : DTAFit
        The same data and random-effect levels without covariates (or with fewer).
    ci : float
        Probability of the equal-tailed credible intervals.
    seed : int
        Seed of the random pairing of draws.

    Returns
    -------
    pandas.DataFrame
        Indexed by component: ``tau_sensitivity``, ``tau_specificity`` (between-study; with
        ``tau_by``, one row per level, compared with the base model's SD of that level if it
        has one, else with its single SD), for three-level fits also ``tau_within_*`` and
        ``total_*`` (between + within, the SD of a new row in a new study). Columns
        ``base``, ``base_lower``, ``base_upper`` (base SD), ``tau``, ``tau_lower``,
        ``tau_upper`` (residual SD), ``explained``, ``explained_lower``, ``explained_upper``
        and ``p_reduced`` = P(residual variance < base variance), from the random pairing.
    """
    ci = _check_ci(ci)
    _check_same_data(fit, base_fit)
    if fit.levels != base_fit.levels:
        raise SpecError(
            f"fit has {fit.levels} levels and base_fit {base_fit.levels}: compare like with like"
        )
    comp = _variance_components(fit)
    base = _variance_components(base_fit)
    if fit.levels == 3:
        for o in OUTCOMES:
            b_between = [k for k in comp if k.startswith(f"tau_{o}")]
            if len(b_between) == 1:
                comp[f"total_{o}"] = np.sqrt(comp[b_between[0]] ** 2 + comp[f"tau_within_{o}"] ** 2)
            bb = [k for k in base if k.startswith(f"tau_{o}")]
            if len(bb) == 1:
                base[f"total_{o}"] = np.sqrt(base[bb[0]] ** 2 + base[f"tau_within_{o}"] ** 2)
    rng = np.random.default_rng(seed)
    rows = []
    for name, x in comp.items():
        if name in base:
            b = base[name]
        else:
            stem = name.split("[", 1)[0]
            if stem not in base:
                continue
            b = base[stem]
        xf, bf = x.ravel(), b.ravel()
        n = min(xf.size, bf.size)
        xs = rng.permutation(xf)[:n]
        bs = rng.permutation(bf)[:n]
        ratio = 1.0 - xs**2 / bs**2
        row: dict[str, Any] = {"component": name}
        _put(row, "base", bf, ci)
        _put(row, "tau", xf, ci)
        _, lo, hi = _summ(ratio, ci)
        row["explained"] = 1.0 - float(np.median(xf**2)) / float(np.median(bf**2))
        row["explained_lower"], row["explained_upper"] = lo, hi
        row["p_reduced"] = float(np.mean(xs**2 < bs**2))
        rows.append(row)
    df = pd.DataFrame(rows).set_index("component")
    df.attrs["ci"] = ci
    return df


# ------------------------------------------------------------------------------ LOO helpers
def _loo_study(fit: DTAFit) -> dict[str, Any]:
    """PSIS-LOO by study with the study's random effects integrated out (``DTAFit.loo``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit.loo(by="study")


def _pooling_constant(data: DTAData) -> np.ndarray:
    """Per study: log-likelihood of its rows minus that of its summed counts, same (se, sp).

    With one (se, sp) shared by the rows of a study, ``prod_r Bin(y_r | n_r, p)`` and
    ``Bin(sum y | sum n, p)`` differ only by binomial coefficients, so the integrated
    likelihood of the original rows is that of the summed counts plus this constant.
    """

    def lchoose(n: np.ndarray, k: np.ndarray) -> np.ndarray:
        return gammaln(n + 1.0) - gammaln(k + 1.0) - gammaln(n - k + 1.0)

    out = np.empty(data.n_studies)
    for s in range(data.n_studies):
        r = data.study_index == s
        n1, n0, tp, tn = data.n_diseased[r], data.n_nondiseased[r], data.tp[r], data.tn[r]
        out[s] = (
            lchoose(n1, tp).sum()
            + lchoose(n0, tn).sum()
            - lchoose(n1.sum(), tp.sum())
            - lchoose(n0.sum(), tn.sum())
        )
    return out


def _loo_pooled_on_rows(pooled_fit: DTAFit, data: DTAData) -> dict[str, Any]:
    """LOO by study of a study-pooled fit, as the predictive density of the original rows."""
    res = dict(_loo_study(pooled_fit))
    order = [pooled_fit.data.studies.index(s) for s in data.studies]
    loo_i = np.asarray(res["loo_i"], dtype=float)[order] + _pooling_constant(data)
    res["loo_i"] = loo_i
    res["pareto_k"] = np.asarray(res["pareto_k"])[order]
    res["elpd_loo"] = float(loo_i.sum())
    res["labels"] = data.studies
    return res


def _elpd_diff(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """ELPD difference a - b and its SE from paired pointwise (per study) differences."""
    d = np.asarray(a["loo_i"], dtype=float) - np.asarray(b["loo_i"], dtype=float)
    return float(d.sum()), float(np.sqrt(d.size * np.var(d, ddof=1))) if d.size > 1 else np.nan


# ------------------------------------------------------------------------------ subgroup table
def _split_kwargs(kwargs: Mapping[str, Any], where: str) -> tuple[dict, dict, dict]:
    model, sampler, ids = {}, {}, {}
    for k, v in kwargs.items():
        if k in _MODEL_KEYS:
            model[k] = v
        elif k in _SAMPLER_KEYS:
            sampler[k] = v
        elif k in ("study", "model"):
            ids[k] = v
        elif k in ("formula", "formula_sensitivity", "formula_specificity", "spec"):
            raise SpecError(
                f"{where} fits each covariate on its own; {k}= is not accepted "
                "(use bayesdta.fit for a multi-covariate meta-regression)"
            )
        else:
            raise SpecError(f"{where} got an unknown argument {k!r}")
    return model, sampler, ids


def _pad_design(design: Design, p: Mapping[str, int]) -> Design:
    """The design with zero columns appended up to ``p`` columns per outcome.

    A zero column leaves the likelihood unchanged; its coefficient only follows its prior,
    independently of everything else, so the posterior of the other parameters is exactly that
    of the unpadded model. Padding every single-covariate model (and the model without
    covariates) to the same number of columns lets them share one compiled model.
    """
    X, cols = {}, {}
    for o in OUTCOMES:
        k = p[o] - design.X[o].shape[1]
        X[o] = np.hstack([design.X[o], np.zeros((design.X[o].shape[0], k))])
        cols[o] = list(design.columns[o]) + [_PAD.format(j + 1) for j in range(k)]
    return Design(X, cols, design.scaling, design.levels, design.formulas, design.variables)


def _fit_padded(
    data: DTAData, spec: ModelSpec, settings: SamplerSettings, p: Mapping[str, int]
) -> DTAFit:
    design = make_design(data, spec)
    padded = _pad_design(design, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        f = fit_design(data, spec, settings, design=padded)
    post = f.idata.posterior.assign_coords({f"coef_{o}": padded.columns[o] for o in OUTCOMES}).sel(
        {f"coef_{o}": design.columns[o] for o in OUTCOMES}
    )
    f.idata.posterior = post
    f.design = design
    # the summary quantities (SROC areas, I2, ...) do not depend on the zero columns: keep
    # those computed during sampling, drop the padding coefficients and recompute the summary
    # point over the covariate mix (it exists only for a design with covariates)
    pads = {f"beta_{o}[{c}]" for o in OUTCOMES for c in padded.columns[o] if c.startswith("__pad")}
    pooled = {f"{o}_pooled" for o in OUTCOMES}
    kept = {k: v for k, v in f._draw_cache.items() if k not in pads and k not in pooled}
    f._draw_cache.clear()
    f._diag = None
    if kept:
        kept.update(f._pooled_over_mix(kept["sensitivity"].dims))
        f._draw_cache.update(kept)
    msgs = f.diagnostics()["warnings"]
    if msgs:
        label = spec.formula or "no covariates"
        warnings.warn(f"{label}: " + "; ".join(msgs), SamplerWarning, stacklevel=3)
    return f


@register_table("subgroup_table")
def subgroup_table(
    data: DTAData | pd.DataFrame | str | Path,
    *,
    covariates: Sequence[str],
    levels: int | None = None,
    seed: int = 0,
    ci: float = 0.95,
    return_fits: bool = False,
    base_fit: DTAFit | None = None,
    pad_columns: int | None = None,
    on_fit: Callable[[str, int, int], Any] | None = None,
    **fit_kwargs: Any,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, DTAFit]]:
    """A subgroup table like a review's, but Bayesian: each covariate fitted on its own.

    The model without covariates and one meta-regression per covariate (``"~ <covariate>"``,
    separate coefficients for sensitivity and specificity) are fitted to the same data with the
    same seed. All these fits share one compiled model: every design is padded with zero
    columns to the largest number of coefficients (a zero column does not change the
    posterior, see :func:`_pad_design`), so only the first fit compiles.

    Parameters
    ----------
    data : DTAData, DataFrame or path
        The 2x2 tables with covariate columns.
    covariates : list of str
        Covariates, each fitted on its own. Categorical covariates give one row per level;
        continuous ones one row (estimates at the mean, contrasts per unit).
    levels : {2, 3} or None
        Random-effect levels (as in :func:`bayesdta.fit`; default three when some study has
        several rows).
    seed : int
        Seed of every fit.
    ci : float
        Probability of the equal-tailed credible intervals.
    return_fits : bool
        Also return the fits, ``{"overall": base_fit, covariate: fit, ...}``.
    base_fit : DTAFit, optional
        The model without covariates, already fitted to the same data (e.g. an analysis's
        main fit): it is the ``overall`` row and the base of every comparison instead of being
        fitted again (with its own seed). It must have no covariates, every row in the fit
        (weight > 0) and the same levels, priors, link, parameterization and random-effects
        family as the table's fits; otherwise a :class:`~bayesdta.SpecError` says what differs.
    pad_columns : int, optional
        Pad every design to at least this many coefficients per outcome, e.g. those of
        another fit whose compiled model these fits should re-use (same levels, priors and
        link); the zero columns do not change the posterior.
    on_fit : callable, optional
        Called as ``on_fit(label, j, m)`` before the ``j``-th of ``m`` fits (progress
        display); ``label`` is ``"overall"`` or the covariate.
    **fit_kwargs
        Other settings of :func:`bayesdta.fit`: ``priors``, ``parameterization``,
        ``reference`` (reference levels, a mapping), ``draws``, ``tune``, ``chains``,
        ``target_accept``, ``backend``, ``cores``, ``progress``, ``study``, ``model``.

    Returns
    -------
    pandas.DataFrame
        Indexed by (``covariate``, ``level``); the first row (``overall``) is the model
        without covariates. Columns:

        * ``n_rows``, ``n_studies`` -- tables and studies in the subgroup;
        * ``sensitivity``, ``specificity`` with ``_lower`` / ``_upper`` -- subgroup estimates
          (posterior median and interval) from that covariate's meta-regression;
        * ``reference`` and, for non-reference levels, ``logit_diff_sensitivity`` (log odds
          ratio against the reference level) with interval, ``diff_sensitivity`` (difference
          in sensitivity) with interval, ``p_better_sensitivity``, the same for specificity,
          and ``rdor`` (relative DOR) with interval;
        * per covariate (repeated on its rows): ``elpd_diff`` and ``elpd_diff_se`` (ELPD-LOO
          grouped by study, :meth:`DTAFit.loo`, of the meta-regression minus that of the
          model without covariates, SE from the paired per-study differences; positive favours
          the covariate), ``max_pareto_k`` (of the meta-regression's LOO), ``tau_sensitivity`` /
          ``tau_specificity`` (residual between-study SDs, medians), ``tau_reduction_*``
          (proportion of the heterogeneity variance explained, see
          :func:`heterogeneity_explained`; for three-level fits the total between + within
          variance) and ``divergences``.

        ``df.attrs`` holds ``ci``, ``seed`` and the timings.
    """
    ci = _check_ci(ci)
    model_kw, sampler_kw, ids = _split_kwargs(fit_kwargs, "subgroup_table")
    if not covariates or isinstance(covariates, str):
        raise SpecError("covariates must be a non-empty list of covariate names")
    if model_kw.get("tau_by"):
        raise SpecError("subgroup_table does not take tau_by= (fit it with bayesdta.fit)")
    data = as_data(data, ids.get("study"), ids.get("model"))
    reference = dict(model_kw.pop("reference", None) or {})
    unknown_ref = set(reference) - set(covariates)
    if unknown_ref:
        raise SpecError(f"reference= names {sorted(unknown_ref)}, which are not in covariates")
    settings = SamplerSettings(seed=seed, **sampler_kw)
    base_spec = ModelSpec(levels=levels, **model_kw)
    specs: dict[str, ModelSpec] = {"overall": base_spec}
    for c in covariates:
        if c in specs:
            raise SpecError(f"covariate {c!r} is listed twice")
        ref = {c: reference[c]} if c in reference else {}
        specs[c] = base_spec.replace(formula=f"~ {c}", reference=ref)
    if base_fit is not None:
        _check_base_fit(base_fit, data, base_spec)
    # validate every design before sampling anything (clear errors first)
    designs = {k: make_design(data, s) for k, s in specs.items()}
    fitted = [k for k in specs if not (k == "overall" and base_fit is not None)]
    p = {o: max(len(designs[k].columns[o]) for k in fitted) for o in OUTCOMES}
    if pad_columns is not None:
        if isinstance(pad_columns, (bool, np.bool_)) or int(pad_columns) != pad_columns:
            raise SpecError(f"pad_columns must be a positive integer, got {pad_columns!r}")
        p = {o: max(p[o], int(pad_columns)) for o in OUTCOMES}
    fits: dict[str, DTAFit] = {}
    timing: dict[str, float] = {}
    if base_fit is not None:
        fits["overall"] = base_fit
    for j, k in enumerate(fitted, start=1):
        if on_fit is not None:
            on_fit(k, j, len(fitted))
        fits[k] = _fit_padded(data, specs[k], settings, p)
    for k, f in fits.items():
        timing[k] = round(f.timing.get("compile_s", 0) + f.timing.get("sample_s", 0), 2)
    base = fits["overall"]
    base_loo = _loo_study(base)
    rows = []
    b_sub = subgroups(base, ci=ci)
    brow = {"covariate": "overall", "level": "all", **b_sub.iloc[0][["n_rows", "n_studies"]]}
    for q in ("sensitivity", "specificity"):
        for sfx in ("", "_lower", "_upper"):
            brow[q + sfx] = b_sub.iloc[0][q + sfx]
    brow.update(_covariate_columns(base, base, base_loo, base_loo, ci))
    brow["elpd_diff"], brow["elpd_diff_se"] = 0.0, 0.0
    rows.append(brow)
    for c in covariates:
        f = fits[c]
        design = f.design
        cov_cols = _covariate_columns(f, base, _loo_study(f), base_loo, ci)
        if c in design.levels:
            sub = subgroups(f, by=c, ci=ci)
            con = contrasts(f, covariate=c, ci=ci)
            ref = design.levels[c][0]
            for lv in design.levels[c]:
                s = sub.loc[(c, lv)]
                row = {"covariate": c, "level": lv, "n_rows": s["n_rows"]}
                row["n_studies"] = s["n_studies"]
                for q in ("sensitivity", "specificity"):
                    for sfx in ("", "_lower", "_upper"):
                        row[q + sfx] = s[q + sfx]
                row["reference"] = ref
                if lv != ref:
                    row.update(_contrast_columns(con, c, lv))
                row.update(cov_cols)
                rows.append(row)
        else:
            mean = design.scaling[c][0]
            sub = subgroups(f, at=[{c: mean}], ci=ci)
            con = contrasts(f, covariate=c, ci=ci)
            lv = con.index.get_level_values("level")[0]
            s = sub.iloc[0]
            row = {"covariate": c, "level": "per unit", "n_rows": data.n_rows}
            row["n_studies"] = data.n_studies
            for q in ("sensitivity", "specificity"):
                for sfx in ("", "_lower", "_upper"):
                    row[q + sfx] = s[q + sfx]
            row["reference"] = f"mean {mean:g}"
            row.update(_contrast_columns(con, c, lv))
            row.update(cov_cols)
            rows.append(row)
    df = pd.DataFrame(rows).set_index(["covariate", "level"])
    df.attrs.update({"ci": ci, "seed": seed, "timing_s": timing})
    if return_fits:
        return df, fits
    return df


def _check_base_fit(base_fit: DTAFit, data: DTAData, base_spec: ModelSpec) -> None:
    """Raise unless ``base_fit`` is the table's model without covariates on the same data."""
    if not isinstance(base_fit, DTAFit):
        raise SpecError(f"base_fit must be a fitted model (DTAFit), got {type(base_fit).__name__}")
    d = base_fit.data
    same_data = (
        d.n_rows == data.n_rows
        and list(d.studies) == list(data.studies)
        and all(
            np.array_equal(getattr(d, a), getattr(data, a))
            for a in ("tp", "fp", "fn", "tn", "study_index")
        )
    )
    if not same_data:
        raise SpecError("base_fit was fitted to other data than the subgroup table's")
    if not np.all(np.asarray(base_fit.weights, dtype=float) == 1.0):
        raise SpecError("base_fit leaves rows out (weights); refit it on all rows")
    if base_fit.design.has_covariates:
        raise SpecError("base_fit has covariates; it must be the model without covariates")
    a = dataclasses.replace(base_fit.spec, levels=base_fit.spec.resolved_levels(data))
    b = dataclasses.replace(base_spec, levels=base_spec.resolved_levels(data))
    differ = [
        f.name
        for f in dataclasses.fields(ModelSpec)
        if not f.name.startswith("formula")
        and f.name != "reference"
        and getattr(a, f.name) != getattr(b, f.name)
    ]
    if differ:
        raise SpecError(
            f"base_fit differs from the subgroup table's model in {', '.join(differ)}; "
            "pass the same options or leave base_fit out"
        )


def _contrast_columns(con: pd.DataFrame, cov: str, level: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for o in OUTCOMES:
        r = con.loc[(cov, level, o)]
        for sfx in ("", "_lower", "_upper"):
            out[f"logit_diff_{o}{sfx}"] = float(r[f"logit_diff{sfx}"])
            out[f"diff_{o}{sfx}"] = float(r[f"diff{sfx}"])
        out[f"p_better_{o}"] = float(r["p_better"])
    r = con.loc[(cov, level, "dor")]
    for sfx in ("", "_lower", "_upper"):
        out[f"rdor{sfx}"] = float(r[f"ratio{sfx}"])
    return out


def _covariate_columns(
    f: DTAFit, base: DTAFit, loo: dict[str, Any], base_loo: dict[str, Any], ci: float
) -> dict[str, float]:
    out: dict[str, float] = {}
    out["elpd_diff"], out["elpd_diff_se"] = _elpd_diff(loo, base_loo)
    out["max_pareto_k"] = float(np.max(loo["pareto_k"]))
    het = heterogeneity_explained(f, base, ci=ci)
    for o in OUTCOMES:
        out[f"tau_{o}"] = float(het.loc[f"tau_{o}", "tau"])
        key = f"total_{o}" if f.levels == 3 else f"tau_{o}"
        out[f"tau_reduction_{o}"] = float(het.loc[key, "explained"])
    out["divergences"] = int(f.diagnostics()["divergences"])
    return out


# ------------------------------------------------------------------------------ clustering
def collapse_studies(data: DTAData | pd.DataFrame | str | Path) -> DTAData:
    """One row per study: the 2x2 counts of a study's rows summed ("pooled within study").

    This is the usual fix-up of a review that has several tables per study: it keeps one table
    per study so that the two-level model's studies are independent. Summing counts treats all
    models (tests, test sets) of a study as one, with no heterogeneity between them: it is the
    three-level model with the within-study SDs fixed at zero. Participants shared by several
    rows are counted once per row, as in the original table.

    Covariates that are constant within every study are kept (study-level covariates); the
    others are dropped. A column ``rows_pooled`` gives the number of rows summed.
    """
    data = as_data(data, None, None) if not isinstance(data, DTAData) else data
    frame = data.frame
    g = frame.groupby("study", sort=False)
    keep = [c for c in data.covariates if int(g[c].nunique(dropna=False).max()) <= 1]
    agg = g.agg({**{c: "sum" for c in COUNT_COLUMNS}, **{c: "first" for c in keep}})
    agg = agg.reset_index()
    agg.insert(1, "model", "pooled")
    agg["rows_pooled"] = g.size().to_numpy()
    return DTAData.from_frame(agg, study="study", model="model", source=f"{data.source} (pooled)")


def _check_study_level(data: DTAData, spec_kwargs: Mapping[str, Any]) -> None:
    """Raise when the formula uses a covariate that varies within a study."""
    spec = ModelSpec(**{k: v for k, v in spec_kwargs.items()})
    design = make_design(data, spec)
    frame = data.frame
    for v in design.variables + ([spec.tau_by] if spec.tau_by else []):
        n = frame.groupby("study", sort=False)[v].nunique(dropna=False)
        if int(n.max()) > 1:
            s = n.index[int(np.argmax(n.to_numpy()))]
            vals = sorted(map(str, frame.loc[frame["study"] == s, v].unique()))
            raise SpecError(
                f"covariate {v!r} varies within study {s!r} ({vals}); the study-pooled "
                "two-level model can use study-level covariates only"
            )


@register_table("clustering")
def compare_clustering(
    data: DTAData | pd.DataFrame | str | Path,
    *,
    seed: int = 0,
    ci: float = 0.95,
    return_fits: bool = False,
    **fit_kwargs: Any,
) -> pd.DataFrame | tuple[pd.DataFrame, dict[str, DTAFit]]:
    """Three ways to handle several tables per study, compared on the same clustered data.

    * ``three-level``: study effects plus row-within-study effects (the package default);
    * ``two-level, studies pooled``: counts summed within each study
      (:func:`collapse_studies`), then the two-level model on one table per study;
    * ``two-level, rows independent``: every table treated as its own study (what many
      reviews do, e.g. the osteoporosis review; ``levels=2`` on clustered data).

    Parameters
    ----------
    data : DTAData, DataFrame or path
        Clustered data (some study has several rows).
    seed : int
        Seed of every fit.
    ci : float
        Probability of the equal-tailed credible intervals.
    return_fits : bool
        Also return the three fits (keys as the index of the table).
    **fit_kwargs
        Other arguments of :func:`bayesdta.fit` (not ``levels``). A formula may use only
        study-level covariates (the pooled model has one row per study).

    Returns
    -------
    pandas.DataFrame
        One row per approach: ``levels``, ``units`` (random-effect units: studies or rows),
        ``elpd_loo`` and ``elpd_se`` (PSIS-LOO grouped by study with the random effects
        integrated out, :meth:`DTAFit.loo`; evaluated on the original rows for all three,
        so they are comparable: the predictive density of a new study's tables),
        ``elpd_diff`` / ``elpd_diff_se`` (against the three-level model, paired over
        studies), ``p_loo``, ``max_pareto_k``;
        ``sensitivity`` and ``specificity`` (pooled, posterior median) with ``_lower``,
        ``_upper`` and ``_width`` (interval width), ``width_ratio_*`` (width relative to the
        three-level model), ``tau_sensitivity`` / ``tau_specificity`` (between-unit SDs,
        medians) and ``divergences``.

    Notes
    -----
    Ignoring the clustering (rows independent) counts a study with k tables as k independent
    studies: the pooled intervals shrink roughly by sqrt(studies / rows) when tables of a
    study agree (large between-study, small within-study SD), i.e. they are too narrow.
    """
    ci = _check_ci(ci)
    if "levels" in fit_kwargs:
        raise SpecError("compare_clustering fits levels 3 and 2 itself; do not pass levels=")
    data = as_data(data, fit_kwargs.pop("study", None), fit_kwargs.pop("model", None))
    if not data.has_clusters:
        raise SpecError("no study has several rows: there is no clustering to compare")
    model_keys = {f.name for f in dataclasses.fields(ModelSpec)} - {"levels"}
    spec_kw = {k: v for k, v in fit_kwargs.items() if k in model_keys and v is not None}
    _check_study_level(data, spec_kw)
    pooled = collapse_studies(data)
    fits = {
        "three-level": _relabel(_bd_fit(data, levels=3, seed=seed, **fit_kwargs)),
        "two-level, studies pooled": _relabel(_bd_fit(pooled, levels=2, seed=seed, **fit_kwargs)),
        "two-level, rows independent": _relabel(_bd_fit(data, levels=2, seed=seed, **fit_kwargs)),
    }
    loos = {
        "three-level": _loo_study(fits["three-level"]),
        "two-level, studies pooled": _loo_pooled_on_rows(fits["two-level, studies pooled"], data),
        "two-level, rows independent": _loo_study(fits["two-level, rows independent"]),
    }
    rows = []
    for name, f in fits.items():
        row: dict[str, Any] = {"approach": name, "levels": f.levels}
        row["units"] = (
            data.n_rows if name.endswith("independent") else data.n_studies
        )  # random-effect units at the top level
        lo = loos[name]
        row["elpd_loo"], row["elpd_se"], row["p_loo"] = lo["elpd_loo"], lo["se"], lo["p_loo"]
        row["elpd_diff"], row["elpd_diff_se"] = (
            (0.0, 0.0) if name == "three-level" else _elpd_diff(lo, loos["three-level"])
        )
        row["max_pareto_k"] = float(np.max(lo["pareto_k"]))
        for q in ("sensitivity", "specificity"):
            _put(row, q, _cd(f.draws(q)), ci)
            row[f"{q}_width"] = row[f"{q}_upper"] - row[f"{q}_lower"]
        for o in OUTCOMES:
            row[f"tau_{o}"] = float(np.median(_cd(f.draws(f"tau_{o}"))))
        if f.levels == 3:
            for o in OUTCOMES:
                row[f"tau_within_{o}"] = float(np.median(_cd(f.draws(f"tau_within_{o}"))))
        row["divergences"] = int(f.diagnostics()["divergences"])
        rows.append(row)
    df = pd.DataFrame(rows).set_index("approach")
    for q in ("sensitivity", "specificity"):
        df[f"width_ratio_{q}"] = df[f"{q}_width"] / df.loc["three-level", f"{q}_width"]
    df.attrs.update({"ci": ci, "seed": seed})
    if return_fits:
        return df, fits
    return df
