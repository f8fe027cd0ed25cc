"""Tables of the maximum-likelihood companion (:func:`bayesdta.fit_ml`) for reports and specs.

* :func:`ml_summary` -- the ML estimates of the main model with Wald (and optionally profile)
  intervals, beside the Bayesian posterior median and interval when given a fit.
* :func:`ml_subgroups` -- a MIDAS-style subgroup table: per covariate, likelihood-ratio tests
  (joint, sensitivity only, specificity only) against the model without covariates, and the
  pooled sensitivity and specificity of every level with Wald intervals.

Both are registered report tables (``"ml_summary"``, ``"ml_subgroups"``), so an analysis spec
can list them in ``outputs.tables``. See ``docs/ml_companion.md``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from ..data.tables import DTAData
from ..exceptions import SpecError
from ..families.bivariate import OUTCOMES, ModelSpec, make_design
from ..inference.fit import DTAFit, as_data
from ..inference.ml import DEFAULT_N_QUAD, MLFit, MLWarning, fit_ml, lrt
from ..registry import register_table

__all__ = ["ml_summary", "ml_subgroups"]

_SUMMARY_ROWS = (
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
)


def _ml_kwargs_from_fit(fit: DTAFit, levels: int | None) -> dict[str, Any]:
    spec = fit.spec
    if spec.link != "logit":
        raise SpecError(f"the ML companion fits the logit link; this fit uses link={spec.link!r}")
    if spec.tau_by:
        raise SpecError("the ML companion does not fit tau_by (covariate-specific SDs)")
    if fit.levels == 3 and levels != 2:
        raise SpecError(
            "the ML companion fits two levels only and this fit has three (several tables per "
            "study): pass levels=2 (spec: outputs.table_options.<table>.levels = 2) to fit "
            "every table as its own study by ML, as MIDAS / metandi analyses do"
        )
    return {
        "formula": spec.formula,
        "formula_sensitivity": spec.formula_sensitivity,
        "formula_specificity": spec.formula_specificity,
        "reference": dict(spec.reference),
        "levels": 2,
    }


@register_table("ml_summary")
def ml_summary(
    fit: DTAFit | MLFit | DTAData | pd.DataFrame | str | Path,
    *,
    ci: float = 0.95,
    n_quad: int = DEFAULT_N_QUAD,
    profile: bool = False,
    levels: int | None = None,
    **fit_kwargs: Any,
) -> pd.DataFrame:
    """ML estimates of the bivariate GLMM beside the Bayesian ones.

    Parameters
    ----------
    fit : DTAFit, MLFit, DTAData, DataFrame or path
        A Bayesian fit (its data, formulas and reference levels are fitted by ML and its
        posterior median and interval are shown beside), an ML fit, or data (then
        ``fit_kwargs`` go to :func:`bayesdta.fit_ml`).
    ci : float
        Confidence (and credible) level.
    n_quad : int
        Gauss-Hermite points per dimension (1 = Laplace, as glmer).
    profile : bool
        Also profile-likelihood intervals (slower: a maximization per point).
    levels : {2} or None
        ML fits two levels. For a three-level Bayesian fit pass ``levels=2`` to fit every
        table as its own study by ML (the columns then compare different models; ``attrs
        ["notes"]`` says so); without it such a fit is a one-line error.

    Returns
    -------
    pandas.DataFrame
        Indexed by quantity (the Bayesian summary's names); columns ``ml_estimate``,
        ``ml_std_error``, ``ml_lower``, ``ml_upper`` (Wald), optionally ``ml_profile_lower``
        / ``ml_profile_upper``, and with a Bayesian fit ``bayes_median``, ``bayes_lower``,
        ``bayes_upper``; ``ml_note`` (on the first row) when the ML fit has notes (boundary
        estimate, non-convergence, levels). ``attrs``: log-likelihood, AIC, BIC, n_quad,
        boundary, notes.
    """
    bayes = None
    if isinstance(fit, MLFit):
        ml = fit
    elif isinstance(fit, DTAFit):
        bayes = fit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLWarning)  # reported in the table's notes
            ml = fit_ml(fit.data, n_quad=n_quad, **_ml_kwargs_from_fit(fit, levels), **fit_kwargs)
        if fit.levels == 3:
            ml.notes.append(
                "the Bayesian fit has three levels; the ML fit treats every table as its own "
                "study (two levels), so the columns compare different models"
            )
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MLWarning)
            ml = fit_ml(fit, n_quad=n_quad, levels=levels, **fit_kwargs)
    s = ml.summary(ci, profile=profile)
    cols = ["estimate", "std_error", "lower", "upper"]
    if profile:
        cols += ["profile_lower", "profile_upper"]
    df = s[cols].rename(columns={c: f"ml_{c}" for c in cols})
    if bayes is not None:
        b = bayes.summary(ci, quantities=[q for q in df.index if q in bayes.quantity_names()])
        df["bayes_median"] = b["median"].reindex(df.index)
        df["bayes_lower"] = b["lower"].reindex(df.index)
        df["bayes_upper"] = b["upper"].reindex(df.index)
    df.attrs.update(s.attrs)
    if ml.notes:
        # boundary estimates, non-convergence, different models: said in the table itself
        df["ml_note"] = ""
        df.iloc[0, df.columns.get_loc("ml_note")] = "; ".join(ml.notes)
    return df


def _level_rows(ml: MLFit, covariate: str, ci: float) -> list[dict[str, Any]]:
    """Pooled sensitivity / specificity of every level (Wald on the logit scale)."""
    zq = float(stats.norm.ppf(0.5 + ci / 2))
    design = ml.design
    vc = ml.coefficient_covariance()
    p1 = len(design.columns["sensitivity"])
    if covariate in design.levels:
        values = list(design.levels[covariate])
        labels = values
    else:
        values = [design.scaling[covariate][0]]
        labels = ["per unit"]
    frame = pd.DataFrame({covariate: values})
    X = design.encode(frame)
    rows = []
    data = ml.data
    col = data.frame[covariate]
    for j, (lv, label) in enumerate(zip(values, labels, strict=True)):
        row: dict[str, Any] = {"covariate": covariate, "level": label}
        if covariate in design.levels:
            mask = col.astype(object).map(_as_level).to_numpy() == lv
            row["n_rows"] = int(mask.sum())
            row["n_studies"] = int(len(set(np.asarray(data.frame["study"])[mask])))
        else:
            row["n_rows"] = data.n_rows
            row["n_studies"] = data.n_studies
        for o, off in (("sensitivity", 0), ("specificity", p1)):
            x = X[o][j]
            idx = slice(off, off + x.size)
            eta = float(x @ ml.phi[idx])
            nz = np.flatnonzero(x != 0)  # a diverging coefficient (NaN) of another level
            v = vc[idx, idx][np.ix_(nz, nz)]
            sd = math.sqrt(max(float(x[nz] @ v @ x[nz]), 0.0))
            row[o] = float(expit(eta))
            row[f"{o}_lower"] = float(expit(eta - zq * sd))
            row[f"{o}_upper"] = float(expit(eta + zq * sd))
        rows.append(row)
    return rows


def _as_level(x: Any) -> str:
    """A covariate value as a level name (as the formula design names levels)."""
    if isinstance(x, str):
        return x
    if isinstance(x, (float, np.floating)) and float(x).is_integer():
        return str(int(x))
    return str(x)


@register_table("ml_subgroups")
def ml_subgroups(
    data: DTAFit | DTAData | pd.DataFrame | str | Path,
    *,
    covariates: Sequence[str],
    reference: Mapping[str, str] | None = None,
    ci: float = 0.95,
    n_quad: int = DEFAULT_N_QUAD,
    levels: int | None = None,
    study: str | None = None,
    model: str | None = None,
) -> pd.DataFrame:
    """MIDAS-style subgroup table by maximum likelihood, with likelihood-ratio tests.

    For every covariate the model without covariates and three meta-regressions are fitted by
    ML (:func:`bayesdta.fit_ml`): the covariate on both outcomes (joint test, df = 2 per
    extra coefficient pair), on sensitivity only and on specificity only (the separate tests of
    MIDAS' meta-regression table).

    Parameters
    ----------
    data : DTAFit, DTAData, DataFrame or path
        The tables with covariate columns (a Bayesian fit: its data and levels).
    covariates : list of str
        Covariates, each tested on its own.
    reference : mapping, optional
        Reference level per categorical covariate.
    ci : float
        Confidence level of the Wald intervals.
    n_quad : int
        Gauss-Hermite points per dimension (1 = Laplace).
    levels : {2} or None
        Two levels only (see :func:`bayesdta.fit_ml`).

    Returns
    -------
    pandas.DataFrame
        Indexed by (``covariate``, ``level``); the first row (``overall``, ``all``) is the
        model without covariates. Columns: ``n_rows``, ``n_studies``, ``sensitivity``,
        ``specificity`` with ``_lower`` / ``_upper`` (Wald, logit scale; the level's pooled
        value from the joint meta-regression; continuous covariates: at their mean),
        ``coef_sensitivity`` / ``coef_specificity`` with ``_lower`` / ``_upper`` (the joint
        model's coefficient: the level minus the reference level on the logit scale, NaN on
        the reference row; continuous covariates: per unit),
        per covariate ``lrt_chi2``, ``lrt_df``, ``lrt_p`` (joint), ``lrt_chi2_sensitivity``,
        ``lrt_p_sensitivity``, ``lrt_chi2_specificity``, ``lrt_p_specificity``,
        ``tau_sensitivity`` / ``tau_specificity`` (residual SDs of the joint model),
        ``boundary`` (what lies on the boundary in any of the covariate's fits) and ``note``.
    """
    if isinstance(data, DTAFit):
        if data.levels == 3 and levels != 2:
            raise SpecError(
                "ml_subgroups fits two levels only and this fit has three (several tables per "
                "study): pass levels=2 (spec: outputs.table_options.ml_subgroups.levels = 2) "
                "to test every table as its own study, as MIDAS / metandi analyses do"
            )
        levels = 2
        data = data.data
    if not covariates or isinstance(covariates, str):
        raise SpecError("covariates must be a non-empty list of covariate names")
    if not 0 < ci < 1:
        raise SpecError(f"ci must lie strictly between 0 and 1, got {ci}")
    d = as_data(data, study, model, clustered=levels is not None)
    reference = dict(reference or {})
    unknown_ref = set(reference) - set(covariates)
    if unknown_ref:
        raise SpecError(f"reference= names {sorted(unknown_ref)}, which are not in covariates")
    kw = {"n_quad": n_quad, "levels": levels}
    for c in covariates:  # every design is checked before anything is fitted
        if c not in d.frame.columns:
            raise SpecError(
                f"covariate {c!r} is not a column of the data; covariates are {d.covariates}"
            )
        ref = {c: reference[c]} if c in reference else {}
        make_design(d, ModelSpec(levels=2, formula=f"~ {c}", reference=ref))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLWarning)  # boundary fits are reported in the table
        base = fit_ml(d, **kw)
        bs = base.summary(ci)
        rows = [
            {
                "covariate": "overall",
                "level": "all",
                "n_rows": d.n_rows,
                "n_studies": d.n_studies,
                **{
                    f"{o}{sfx}": float(bs.loc[o, col])
                    for o in OUTCOMES
                    for sfx, col in (("", "estimate"), ("_lower", "lower"), ("_upper", "upper"))
                },
                "tau_sensitivity": base.tau_sensitivity,
                "tau_specificity": base.tau_specificity,
                "boundary": ", ".join(base.boundary),
                "note": "; ".join(base.notes),
            }
        ]
        for c in covariates:
            if c not in d.frame.columns:
                raise SpecError(
                    f"covariate {c!r} is not a column of the data; covariates are {d.covariates}"
                )
            ref = {c: reference[c]} if c in reference else {}
            joint = fit_ml(d, formula=f"~ {c}", reference=ref, **kw)
            se_only = fit_ml(
                d, formula_sensitivity=f"~ {c}", formula_specificity="~ 1", reference=ref, **kw
            )
            sp_only = fit_ml(
                d, formula_sensitivity="~ 1", formula_specificity=f"~ {c}", reference=ref, **kw
            )
            t = lrt(base, joint)
            t_se = lrt(base, se_only)
            t_sp = lrt(base, sp_only)
            bnd = sorted({b for f in (joint, se_only, sp_only) for b in f.boundary})
            notes = [n for n in (t.note,) if n]
            if not all(f.converged for f in (joint, se_only, sp_only)):
                notes.append("a meta-regression did not converge")
            per_cov = {
                "lrt_chi2": t.statistic,
                "lrt_df": t.df,
                "lrt_p": t.p_value,
                "lrt_chi2_sensitivity": t_se.statistic,
                "lrt_p_sensitivity": t_se.p_value,
                "lrt_chi2_specificity": t_sp.statistic,
                "lrt_p_specificity": t_sp.p_value,
                "tau_sensitivity": joint.tau_sensitivity,
                "tau_specificity": joint.tau_specificity,
                "boundary": ", ".join(bnd),
                "note": "; ".join(notes),
            }
            js = joint.summary(ci)
            for r in _level_rows(joint, c, ci):
                col = c if r["level"] == "per unit" else f"{c}[T.{r['level']}]"
                for o in OUTCOMES:
                    # the coefficient: level minus reference (logit), or per unit of c
                    name = f"beta_{o}[{col}]"
                    for sfx, k in (("", "estimate"), ("_lower", "lower"), ("_upper", "upper")):
                        r[f"coef_{o}{sfx}"] = float(js.loc[name, k]) if name in js.index else np.nan
                rows.append({**r, **per_cov})
    df = pd.DataFrame(rows).set_index(["covariate", "level"])
    front = [c for c in df.columns if not c.startswith(("tau_", "boundary", "note"))]
    df = df[front + ["tau_sensitivity", "tau_specificity", "boundary", "note"]]
    df.attrs.update({"ci": ci, "n_quad": n_quad, "loglik_base": base.loglik})
    return df
