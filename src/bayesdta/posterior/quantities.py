"""Posterior quantities of a fitted DTA meta-analysis: SROC, regions, predictive, I2, Fagan, ...

Thin wrappers around the pure functions of :mod:`bayesdta.stats`: each function takes a
:class:`~bayesdta.fit.DTAFit`, extracts the posterior draws it needs (per draw, never a plug-in
estimate), calls the array function and summarizes the result as a pandas table. The names are
those of the corresponding :class:`DTAFit` methods.

Conventions shared by every function:

* ``ci`` is the probability of the equal-tailed credible interval (``lower``, ``upper``), the
  point estimate is the posterior ``median``;
* ``at`` selects covariate values of a meta-regression, e.g. ``{"backbone": "DenseNet"}``:
  the summary point is then ``F(x beta)`` (``F`` the inverse link, ``invlogit`` by default)
  with ``x`` the design row for those values and
  the other covariates at their reference level (categorical) or mean (continuous); without
  ``at`` it is the intercept, as in :meth:`DTAFit.summary`;
* ``by`` names a categorical covariate of the formula and repeats the computation at each of its
  levels (one curve / region per subgroup);
* for three-level fits, the SROC curve, AUC, I2 and the prediction region of a new study use the
  total covariance of a new row in a new study, ``Sigma_between + Sigma_within``, as
  :meth:`DTAFit.summary` does;
* everything uses the link of the fit (``fit.spec.link``, :mod:`bayesdta.links`): "logit"
  below reads "probit" for a probit fit.
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special
from scipy import stats as sps

from .. import registry as _registry
from ..data.tables import DTAData
from ..exceptions import SamplerWarning, SpecError
from ..families import links as lk
from ..families import stats as st
from ..inference import _arviz

if TYPE_CHECKING:
    from ..inference.fit import DTAFit

__all__ = [
    "study_weights",
    "nu_draws",
    "sroc",
    "auc",
    "hsroc_parameters",
    "regions",
    "predictive",
    "heterogeneity",
    "fagan",
    "deeks",
    "influence",
    "study_log_likelihood",
    "loo_integrated",
    "shrunken",
    "observed",
    "posterior_predictive",
    "fpr_support",
    "DEFAULT_PRETEST",
]

#: Default grid of pre-test probabilities for :func:`fagan`: 0.01, 0.02, ..., 0.99.
DEFAULT_PRETEST: np.ndarray = np.round(np.arange(1, 100) / 100.0, 2)


# --------------------------------------------------------------------------------------------
# Draw extraction
# --------------------------------------------------------------------------------------------
def _cd(x: xr.DataArray) -> np.ndarray:
    """Values with dims (chain, draw, ...) in that order."""
    return np.asarray(x.transpose("chain", "draw", ...).values, dtype=float)


def _check_ci(ci: float) -> float:
    ci = float(ci)
    if not 0.0 < ci < 1.0:
        raise SpecError(f"ci must lie strictly between 0 and 1, got {ci!r}")
    return ci


def _interval(x: np.ndarray, ci: float, axis: int = 0) -> tuple[np.ndarray, ...]:
    """Median and equal-tailed interval along ``axis`` (NaN draws ignored)."""
    a = (1.0 - ci) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(x, [0.5, a, 1.0 - a], axis=axis)
    return q[0], q[1], q[2]


def _summarize(draws: Mapping[str, np.ndarray], ci: float) -> pd.DataFrame:
    """Summary table (as :meth:`DTAFit.summary`) of draws shaped (chain, draw)."""
    return _arviz.summary_table(draws, ci)


def _check_at(fit: DTAFit, at: Mapping[str, Any] | None) -> dict[str, Any]:
    at = dict(at or {})
    design = fit.design
    tau_by = fit.spec.tau_by
    known = set(design.variables) | ({tau_by} if tau_by else set())
    for k, v in at.items():
        if k not in known:
            raise SpecError(
                f"at= names {k!r}, which is not a covariate of the model; "
                f"covariates are {sorted(known) or 'none (no meta-regression)'}"
            )
        if k in design.levels and str(v) not in design.levels[k]:
            raise SpecError(f"at= {k}={v!r} is not a level of {k}; levels: {design.levels[k]}")
        if k == tau_by and k not in design.variables:
            levels = _tau_levels(fit)
            if str(v) not in levels:
                raise SpecError(f"at= {k}={v!r} is not a level of {k}; levels: {levels}")
    return at


def _tau_levels(fit: DTAFit) -> list[str]:
    tau = fit.posterior["tau_sensitivity"]
    if "tau_level" not in tau.dims:
        return []
    return [str(v) for v in tau.coords["tau_level"].values]


def _design_row(fit: DTAFit, at: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Design rows (internal scale) for covariates ``at``, others at reference / mean."""
    design = fit.design
    if not design.variables:
        return {o: np.ones(1) for o in ("sensitivity", "specificity")}
    row: dict[str, Any] = {}
    for v in design.variables:
        if v in at:
            row[v] = str(at[v]) if v in design.levels else float(at[v])
        elif v in design.levels:
            row[v] = design.levels[v][0]
        else:
            row[v] = design.scaling[v][0]
    X = design.encode(pd.DataFrame([row]))
    return {o: np.asarray(X[o][0], dtype=float) for o in ("sensitivity", "specificity")}


def _linear_predictor(fit: DTAFit, at: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
    """Draws (chain, draw) of the mean logit sensitivity and specificity at covariates ``at``."""
    at = _check_at(fit, at)
    x = _design_row(fit, at)
    out = []
    for o in ("sensitivity", "specificity"):
        beta = _cd(fit.posterior[f"beta_{o}"])  # (chain, draw, p)
        out.append(beta @ x[o])
    return out[0], out[1]


def _row_linear_predictor(fit: DTAFit) -> tuple[np.ndarray, np.ndarray]:
    """Draws (chain, draw, row) of x_r beta for every row of the data."""
    out = []
    for o in ("sensitivity", "specificity"):
        beta = _cd(fit.posterior[f"beta_{o}"])
        out.append(beta @ fit.design.X[o].T)
    return out[0], out[1]


def _tau_draws(fit: DTAFit, level: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Between-study SDs (chain, draw); ``level`` picks a ``tau_by`` level (default: the first)."""
    p = fit.posterior
    tau_se, tau_sp = p["tau_sensitivity"], p["tau_specificity"]
    if "tau_level" in tau_se.dims:
        if level is None:
            tau_se, tau_sp = tau_se.isel(tau_level=0), tau_sp.isel(tau_level=0)
        else:
            tau_se, tau_sp = tau_se.sel(tau_level=str(level)), tau_sp.sel(tau_level=str(level))
    return _cd(tau_se), _cd(tau_sp)


def _covariance(
    fit: DTAFit, component: str = "total", at: Mapping[str, Any] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SDs and correlation (chain, draw) of the random effects.

    ``component`` is ``"between"`` (study level), ``"within"`` (rows within a study, three
    levels only) or ``"total"`` (a new row in a new study: between + within).
    """
    at = dict(at or {})
    tau_by = fit.spec.tau_by
    level = str(at[tau_by]) if tau_by and tau_by in at else None
    p = fit.posterior
    tb_se, tb_sp = _tau_draws(fit, level)
    rb = _cd(p["rho"])
    if component == "between" or (component == "total" and fit.levels == 2):
        return tb_se, tb_sp, rb
    if fit.levels == 2:
        raise SpecError("the within-study covariance exists only for three-level fits")
    tw_se = _cd(p["tau_within_sensitivity"])
    tw_sp = _cd(p["tau_within_specificity"])
    rw = _cd(p["rho_within"])
    if component == "within":
        return tw_se, tw_sp, rw
    if component != "total":
        raise SpecError(f"component must be 'between', 'within' or 'total', got {component!r}")
    return st.total_covariance(tb_se, tb_sp, rb, tw_se, tw_sp, rw)


def _params(
    fit: DTAFit, at: Mapping[str, Any] | None = None, component: str = "total"
) -> tuple[np.ndarray, ...]:
    """``(mu_se, mu_sp, tau_se, tau_sp, rho)`` draws (chain, draw) for :mod:`bayesdta.stats`."""
    mu_se, mu_sp = _linear_predictor(fit, at)
    return (mu_se, mu_sp, *_covariance(fit, component, at))


def _groups(
    fit: DTAFit, at: Mapping[str, Any] | None, by: str | None
) -> list[tuple[str | None, dict[str, Any], np.ndarray]]:
    """(label, at, row mask) per subgroup: one entry without ``by``, one per level with it."""
    at = _check_at(fit, at)
    frame = fit.data.frame
    n = fit.data.n_rows

    def mask_for(values: Mapping[str, Any]) -> np.ndarray:
        m = np.ones(n, dtype=bool)
        for k, v in values.items():
            if k in fit.design.levels or k == fit.spec.tau_by:
                m &= frame[k].astype(object).map(str).to_numpy() == str(v)
        return m if m.any() else np.ones(n, dtype=bool)

    if by is None:
        return [(None, at, mask_for(at))]
    if by not in fit.design.levels:
        raise SpecError(
            f"by= {by!r} must be a categorical covariate of the model formula; "
            f"categorical covariates are {list(fit.design.levels) or 'none'}"
        )
    if by in at:
        raise SpecError(f"{by!r} is given both in by= and in at=")
    out = []
    for lv in fit.design.levels[by]:
        a = {**at, by: lv}
        out.append((lv, a, mask_for(a)))
    return out


def _fpr_grid(lo: float, hi: float, n_points: int) -> np.ndarray:
    """Grid on [lo, hi]: equally spaced points plus points equally spaced in logit(fpr).

    The logit-spaced half resolves the steep part of the curve near fpr = 0 (and 1).
    """
    n = max(int(n_points), 2)
    parts = [np.linspace(lo, hi, n)]
    a, b = max(lo, 1e-4), min(hi, 1.0 - 1e-4)
    if b > a:
        parts.append(special.expit(np.linspace(special.logit(a), special.logit(b), n)))
    return np.unique(np.concatenate(parts))


def _in_fit(fit: DTAFit) -> np.ndarray:
    """Rows in the fit (likelihood weight > 0): the rows that data-derived statistics use."""
    return np.asarray(fit.weights, dtype=float) > 0


def fpr_support(fit: DTAFit, mask: np.ndarray | None = None) -> tuple[float, float] | None:
    """The FPR range over which the data support the SROC curve (default curve, partial AUC).

    The range of the tables' false-positive rates, over the rows in ``mask`` that are in the
    fit (weight > 0). A table with ``FP = 0`` (or ``FP = n0``) enters with its posterior
    (shrunken) FPR, the posterior median of ``1 - F(theta_sp,r)``, instead of its observed 0
    (or 1): an observed 0 would put the end of the range at ``logit(fpr) = -inf``, where every
    SROC curve runs down the y-axis to (0, 0), far outside what any table supports.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    mask : numpy.ndarray of bool, optional
        Rows to consider (default: all).

    Returns
    -------
    tuple of float or None
        ``(lower, upper)``, strictly inside (0, 1); None when all the FPRs are equal.
    """
    d = fit.data
    keep = np.ones(d.n_rows, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    w = np.asarray(fit.idata.constant_data["weight"].values, dtype=float)
    if (keep & (w > 0)).any():
        keep = keep & (w > 0)
    n0 = np.asarray(d.n_nondiseased, dtype=float)
    fp = np.asarray(d.fp, dtype=float)
    fpr = fp / n0
    edge = keep & ((fp == 0) | (fp == n0))
    if edge.any():
        theta_sp = _cd(fit.posterior["theta"].sel(outcome="specificity"))[..., edge]
        shrunk = np.median(lk.inverse(-theta_sp, fit.spec.link), axis=(0, 1))
        fpr = fpr.copy()
        fpr[edge] = shrunk
    lo, hi = float(fpr[keep].min()), float(fpr[keep].max())
    return (lo, hi) if hi > lo else None


def _observed_fpr_range(fit: DTAFit, mask: np.ndarray) -> tuple[float, float]:
    rng_ = fpr_support(fit, mask)
    return rng_ if rng_ is not None else (0.0, 1.0)


# --------------------------------------------------------------------------------------------
# SROC and AUC
# --------------------------------------------------------------------------------------------
def sroc(
    fit: DTAFit,
    *,
    fpr: Sequence[float] | np.ndarray | None = None,
    method: str = "hsroc",
    ci: float = 0.95,
    at: Mapping[str, Any] | None = None,
    by: str | None = None,
    extrapolate: bool = False,
    n_points: int = 101,
) -> pd.DataFrame:
    """Posterior SROC curve with a pointwise credible band.

    For every posterior draw the SROC line ``logit(se) = a + b logit(fpr)`` of
    :func:`bayesdta.stats.sroc_coefficients` is evaluated on the grid, then the draws are
    summarized per grid point. The default ``method="hsroc"`` is the Rutter-Gatsonis HSROC curve
    implied by the bivariate parameters (Harbord et al. 2007), ``se(fpr) =
    invlogit(Lambda exp(-beta/2) + exp(-beta) logit(fpr))``; the other definitions are those of
    :data:`bayesdta.stats.SROC_METHODS`. Every one of these curves passes through the summary
    point of its draw.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    fpr : array_like, optional
        False-positive rates at which to evaluate the curve. Default: a grid over the FPR
        range the data support (:func:`fpr_support`: the tables' FPRs, of the subgroup's rows
        with ``by``/``at``, a table with FP = 0 entering with its posterior FPR, so that the
        curve does not run down the y-axis to (0, 0)), or over [0, 1] with
        ``extrapolate=True``: ``n_points`` equally spaced values plus ``n_points`` values
        equally spaced in ``logit(fpr)`` (for the steep part near 0).
    method : {"hsroc", "regression_se_on_sp", "regression_sp_on_se", "major_axis"}
        SROC definition.
    ci : float
        Probability of the pointwise equal-tailed band.
    at : mapping, optional
        Covariate values of a meta-regression (see the module docstring).
    by : str, optional
        Categorical covariate: one curve per level (column ``group``).
    extrapolate : bool
        Draw the default grid over [0, 1] instead of the observed range.
    n_points : int
        Points of each half of the default grid.

    Returns
    -------
    pandas.DataFrame
        Columns ``fpr``, ``median``, ``lower``, ``upper`` (and ``group`` first with ``by``).
        ``attrs``: ``method``, ``ci``, ``fpr_range`` (per group with ``by``).

    Notes
    -----
    The band is pointwise: at each FPR it holds ``ci`` of the posterior of se(FPR); it is not a
    simultaneous band for the whole curve. For three-level fits the curve uses the covariance of
    a new row in a new study (between + within).

    References
    ----------
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    Rutter CM, Gatsonis CA. A hierarchical regression approach to meta-analysis of diagnostic
    test accuracy evaluations. Stat Med 2001;20:2865-2884.
    """
    ci = _check_ci(ci)
    if method not in st.SROC_METHODS:
        raise SpecError(f"method must be one of {st.SROC_METHODS}, got {method!r}")
    frames = []
    ranges: dict[Any, tuple[float, float]] = {}
    for label, at_g, mask in _groups(fit, at, by):
        if fpr is not None:
            grid = np.asarray(fpr, dtype=float).ravel()
            rng_ = (float(grid.min()), float(grid.max()))
        else:
            rng_ = (0.0, 1.0) if extrapolate else _observed_fpr_range(fit, mask)
            grid = _fpr_grid(rng_[0], rng_[1], n_points)
        curve = st.sroc_curve(grid, *_params(fit, at_g), method=method, link=fit.spec.link)
        med, lo, hi = _interval(curve.reshape(-1, grid.size), ci)
        df = pd.DataFrame({"fpr": grid, "median": med, "lower": lo, "upper": hi})
        if by is not None:
            df.insert(0, "group", label)
        frames.append(df)
        ranges[label] = rng_
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(method=method, ci=ci, fpr_range=ranges[None] if by is None else ranges, by=by)
    return out


def auc(
    fit: DTAFit,
    *,
    ci: float = 0.95,
    method: str = "hsroc",
    at: Mapping[str, Any] | None = None,
    by: str | None = None,
    fpr_range: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Area under the SROC curve and partial area over the FPR range the data support.

    ``auc`` integrates the SROC curve of every draw over FPR in [0, 1] and ``auc_partial`` over
    ``fpr_range`` (default: :func:`fpr_support` of the rows, or of the subgroup's rows: the
    observed FPRs, a table with FP = 0 entering with its posterior FPR), see
    :func:`bayesdta.stats.auc_sroc` and :func:`bayesdta.stats.partial_auc` (not normalized:
    divide by the width of the range for the mean sensitivity over it). At the defaults this is
    the ``auc`` / ``auc_partial`` of :meth:`DTAFit.summary`.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    ci : float
        Credible-interval probability.
    method : str
        SROC definition (see :func:`sroc`).
    at, by
        Covariate values / subgroup variable (see the module docstring).
    fpr_range : tuple of float, optional
        Range of the partial AUC.

    Returns
    -------
    pandas.DataFrame
        Summary table indexed by ``quantity`` (``auc``, ``auc_partial``), or by
        ``(group, quantity)`` with ``by``; ``attrs["fpr_range"]``.

    References
    ----------
    Walter SD. Properties of the summary receiver operating characteristic (SROC) curve for
    diagnostic test data. Stat Med 2002;21:1237-1256.
    """
    ci = _check_ci(ci)
    tables, ranges = [], {}
    for label, at_g, mask in _groups(fit, at, by):
        p = _params(fit, at_g)
        rng_ = fpr_range if fpr_range is not None else _observed_fpr_range(fit, mask)
        draws = st.sroc_areas(*p, fpr_range=rng_, method=method, link=fit.spec.link)
        t = _summarize(draws, ci)
        if by is not None:
            t = pd.concat({label: t}, names=["group"])
        tables.append(t)
        ranges[label] = tuple(rng_)
    out = pd.concat(tables)
    out.attrs.update(ci=ci, method=method, fpr_range=ranges[None] if by is None else ranges)
    return out


def hsroc_parameters(
    fit: DTAFit, *, ci: float = 0.95, at: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    """Rutter-Gatsonis HSROC parameters implied by the bivariate parameters, per draw.

    ``Lambda`` (accuracy), ``Theta`` (threshold), ``beta`` (shape: 0 for a symmetric curve),
    ``sigma2_alpha`` and ``sigma2_theta`` (variances of accuracy and threshold) from
    :func:`bayesdta.stats.hsroc_from_bivariate` (Harbord et al. 2007). For three-level fits the
    bivariate covariance is the total between + within covariance, as for the SROC curve.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    ci : float
        Credible-interval probability.
    at : mapping, optional
        Covariate values of a meta-regression.

    Returns
    -------
    pandas.DataFrame
        Summary table (columns as :meth:`DTAFit.summary`) indexed by parameter.

    References
    ----------
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    """
    ci = _check_ci(ci)
    h = st.hsroc_from_bivariate(*_params(fit, at))
    names = ("Lambda", "Theta", "beta", "sigma2_alpha", "sigma2_theta")
    return _summarize({k: h[k] for k in names}, ci)


# --------------------------------------------------------------------------------------------
# Regions
# --------------------------------------------------------------------------------------------
def regions(
    fit: DTAFit,
    *,
    levels: Sequence[float] = (0.95,),
    at: Mapping[str, Any] | None = None,
    by: str | None = None,
    n_points: int = 200,
    scale: str = "probability",
) -> dict[str, Any]:
    """Credible region of the summary point and prediction region of a new study.

    The credible region is the normal-theory ellipse (on the logit scale) of the posterior draws
    of ``(mu_se, mu_sp)`` (:func:`bayesdta.stats.confidence_region`). The prediction region is
    the ellipse of the posterior predictive distribution of a new study's
    ``(logit se, logit sp)``, with mean ``E[mu]`` and covariance ``Cov[mu] + E[Sigma]`` (law of
    total covariance; :func:`bayesdta.stats.prediction_region` with ``method="moments"``), so
    that the uncertainty in ``mu`` and ``Sigma`` is included. For three-level fits ``Sigma`` is
    the covariance of a new row in a new study (between + within).

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    levels : sequence of float
        Probabilities of the contours.
    at, by
        Covariate values / subgroup variable (see the module docstring).
    n_points : int
        Number of boundary points of each polygon.
    scale : {"probability", "link", "logit"}
        Polygons in ``(fpr, se)`` or on the link scale ``(link fpr, link se)`` (``"logit"``
        names the link scale of logit fits).

    Returns
    -------
    dict
        ``{"summary": array([fpr, se]), "confidence": {level: (n_points, 2) array},
        "prediction": {level: array}}``, where ``summary`` is the posterior median of
        ``(1 - F(mu_sp), F(mu_se))`` (``F`` the inverse link); with ``by``, a dict of such
        dicts keyed by
        level of ``by``.

    References
    ----------
    Reitsma JB, Glas AS, Rutjes AWS, Scholten RJPM, Bossuyt PM, Zwinderman AH. Bivariate
    analysis of sensitivity and specificity produces informative summary measures in
    diagnostic reviews. J Clin Epidemiol 2005;58:982-990.
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    """
    levels = [float(lv) for lv in np.atleast_1d(levels)]
    link = fit.spec.link
    out: dict[str, Any] = {}
    for label, at_g, _ in _groups(fit, at, by):
        p = _params(fit, at_g)
        mu_se, mu_sp = p[0], p[1]
        summary = np.array(
            [np.median(lk.inverse(-mu_sp, link)), np.median(lk.inverse(mu_se, link))]
        )
        if scale in ("logit", "link"):
            summary = np.array([np.median(-mu_sp), np.median(mu_se)])
        res = {
            "summary": summary,
            "confidence": {
                lv: st.confidence_region(
                    mu_se, mu_sp, level=lv, n_points=n_points, scale=scale, link=link
                )
                for lv in levels
            },
            "prediction": {
                lv: st.prediction_region(
                    *p, level=lv, n_points=n_points, method="moments", scale=scale, link=link
                )
                for lv in levels
            },
        }
        if by is None:
            return res
        out[label] = res
    return out


# --------------------------------------------------------------------------------------------
# Predictive distributions
# --------------------------------------------------------------------------------------------
def _chol2(tau_se: np.ndarray, tau_sp: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Cholesky factors (..., 2, 2) of [[tau_se^2, c], [c, tau_sp^2]], c = rho tau_se tau_sp."""
    L = np.zeros((*np.shape(tau_se), 2, 2))
    L[..., 0, 0] = tau_se
    L[..., 1, 0] = rho * tau_sp
    L[..., 1, 1] = tau_sp * np.sqrt(np.clip(1.0 - rho**2, 0.0, None))
    return L


def _cov2(tau_se: np.ndarray, tau_sp: np.ndarray, rho: np.ndarray) -> np.ndarray:
    L = _chol2(tau_se, tau_sp, rho)
    return L @ np.swapaxes(L, -1, -2)


def _row_tau_level(fit: DTAFit) -> list[str | None]:
    """The ``tau_by`` level of each row (None without ``tau_by``)."""
    if not fit.spec.tau_by:
        return [None] * fit.data.n_rows
    return [str(v) for v in fit.data.frame[fit.spec.tau_by].astype(object)]


def _study_effect_draws(fit: DTAFit, study: int, rng: np.random.Generator) -> np.ndarray:
    """Draws (chain, draw, 2) of the study effect u_s of a three-level fit.

    In the model the data enter only through the row parameters ``theta_r``, so given
    ``theta``, ``beta`` and the covariances the study effect has the exact conditional
    ``u_s | e ~ N(P^{-1} Sigma_w^{-1} sum_r e_r, P^{-1})`` with ``e_r = theta_r - x_r beta`` over
    the study's rows and ``P = Sigma_b^{-1} + n_s Sigma_w^{-1}``. One draw per posterior draw
    is a draw from the joint posterior.
    """
    rows = np.flatnonzero(fit.data.study_index == study)
    level = _row_tau_level(fit)[rows[0]]
    at = {fit.spec.tau_by: level} if level is not None else {}
    sb = _cov2(*_covariance(fit, "between", at))
    if "lambda_study" in fit.posterior:  # t effects: u_s ~ N(0, Sigma_b / lambda_s)
        sb = sb / _cd(fit.posterior["lambda_study"])[:, :, study, None, None]
    sw = _cov2(*_covariance(fit, "within"))
    theta = _cd(fit.posterior["theta"])[:, :, rows, :]  # (c, d, n_s, 2)
    lp_se, lp_sp = _row_linear_predictor(fit)
    lp = np.stack([lp_se[:, :, rows], lp_sp[:, :, rows]], axis=-1)
    e_sum = (theta - lp).sum(axis=2)  # (c, d, 2)
    sw_inv = np.linalg.inv(sw)
    prec = np.linalg.inv(sb) + rows.size * sw_inv
    cov = np.linalg.inv(prec)
    cov = 0.5 * (cov + np.swapaxes(cov, -1, -2))
    mean = np.einsum("...ij,...j->...i", cov @ sw_inv, e_sum)
    z = rng.standard_normal(mean.shape)
    return mean + np.einsum("...ij,...j->...i", np.linalg.cholesky(cov), z)


def nu_draws(fit: DTAFit) -> np.ndarray | None:
    """Draws (chain, draw) of the degrees of freedom of t study effects (``None``: normal)."""
    if fit.spec.random_effects != "t":
        return None
    if "nu" in fit.posterior:
        return np.asarray(_cd(fit.posterior["nu"]), dtype=float)
    shape = (fit.posterior.sizes["chain"], fit.posterior.sizes["draw"])
    return np.full(shape, float(fit.spec.priors["nu"].kwargs["value"]))


def study_weights(fit: DTAFit, *, ci: float = 0.95, seed: int | None = None) -> pd.DataFrame:
    """Per-study posterior weights of a fit with Student-t study effects.

    With ``random_effects="t"`` each study's effect is ``N(0, Sigma / lambda_s)`` with
    ``lambda_s ~ Gamma(nu / 2, nu / 2)`` (:mod:`bayesdta.families.robust`). A posterior weight
    well below 1 marks a study in conflict with the others (an outlier, the diagnostic bamdit
    offers); weights near or above 1 mark studies that agree with the t model's centre.

    Two-level fits integrate the weights out of the sampled model; their posterior is
    recovered exactly from the conditional ``lambda_s | u_s, nu, Sigma ~ Gamma((nu + 2) / 2,
    rate (nu + d_s^2) / 2)`` (``d_s^2`` the Mahalanobis distance of the study's effect): the
    ``mean`` is the average over draws of the conditional mean ``(nu + 2) / (nu + d_s^2)``
    (Rao-Blackwellized), the median and interval come from one conditional draw of
    ``lambda_s`` per posterior draw (``seed``). Three-level fits sample ``lambda_s``
    (one per study) directly.

    Parameters
    ----------
    fit : DTAFit
        A fit with ``random_effects="t"``.
    ci : float
        Probability of the equal-tailed credible interval.
    seed : int, optional
        Seed of the conditional draws (default: the fit's seed), so that the table is the same
        in any process.

    Returns
    -------
    pandas.DataFrame
        Indexed by study (two-level fits: the rows; three-level fits: the studies), columns
        ``mean`` (posterior mean of ``lambda_s``), ``median``, ``lower``, ``upper``, sorted as
        the data.
    """
    ci = _check_ci(ci)
    post = fit.posterior
    if fit.spec.random_effects != "t" or not (
        "lambda_study" in post or "lambda_study_mean" in post
    ):
        raise SpecError(
            "study_weights() needs a fit with random_effects='t' "
            f"(this fit has random_effects={fit.spec.random_effects!r})"
        )
    if "lambda_study_mean" in post:
        m = np.asarray(_cd(post["lambda_study_mean"]), dtype=float)  # (chain, draw, row)
        nu = nu_draws(fit)[..., None]
        if seed is None:
            seed = int(fit.sampler.get("seed") or 0)
        rng = np.random.default_rng([int(seed), 1729])
        shape = np.broadcast_to((nu + 2.0) / 2.0, m.shape)
        lam = rng.gamma(shape, m / shape)  # Gamma((nu + 2) / 2) with mean m
        means = m.reshape(-1, m.shape[-1]).mean(axis=0)
        labels = list(fit.data.row_labels)
    else:
        lam = np.asarray(_cd(post["lambda_study"]), dtype=float)
        means = lam.reshape(-1, lam.shape[-1]).mean(axis=0)
        labels = list(post["lambda_study"].coords[post["lambda_study"].dims[-1]].values)
    x = lam.reshape(-1, lam.shape[-1])
    rows = []
    for j, label in enumerate(labels):
        med, lo, hi = _interval(x[:, j], ci)
        rows.append(
            {
                "study": str(label),
                "mean": float(means[j]),
                "median": float(med),
                "lower": float(lo),
                "upper": float(hi),
            }
        )
    df = pd.DataFrame(rows).set_index("study")
    df.attrs["ci"] = ci
    return df


def _predictive_targets(
    fit: DTAFit,
    *,
    at: Mapping[str, Any] | None,
    within_study: str | Sequence[str] | None,
    seed: int | np.random.Generator | None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Predictive draws (chain, draw) of (se, sp) per target."""
    rng = np.random.default_rng(seed)
    at = _check_at(fit, at)
    mu_se, mu_sp = _linear_predictor(fit, at)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    tau = _covariance(fit, "total", at)
    link = fit.spec.link
    nu = nu_draws(fit)
    if nu is not None:
        # Student-t study effects: a new study's weight lambda ~ Gamma(nu/2, nu/2) scales Sigma
        lam = rng.gamma(nu / 2.0, 2.0 / nu)
        if fit.levels == 3:  # only the study effect is t; the model's deviation is normal
            tb = _covariance(fit, "between", at)
            tb = (tb[0] / np.sqrt(lam), tb[1] / np.sqrt(lam), tb[2])
            tau = st.total_covariance(*tb, *_covariance(fit, "within"))
        else:
            tau = (tau[0] / np.sqrt(lam), tau[1] / np.sqrt(lam), tau[2])
    out["new study"] = st.predictive_draws(mu_se, mu_sp, *tau, seed=rng, link=link)
    if fit.levels == 3:
        tw = _covariance(fit, "within")
        out["new model, typical study"] = st.predictive_draws(
            mu_se, mu_sp, *tw, seed=rng, link=link
        )
    if within_study is None:
        return out
    if fit.levels != 3:
        raise SpecError("within_study= needs a three-level fit (several models per study)")
    studies = fit.data.studies
    if isinstance(within_study, str):
        chosen = studies if within_study == "all" and "all" not in studies else [within_study]
    else:
        chosen = list(within_study)
    tw = _covariance(fit, "within")
    for s in chosen:
        if s not in studies:
            raise SpecError(f"within_study= {s!r} is not a study of the data")
        u = _study_effect_draws(fit, studies.index(s), rng)
        out[f"new model in {s}"] = st.predictive_draws(
            mu_se + u[..., 0], mu_sp + u[..., 1], *tw, seed=rng, link=link
        )
    return out


def predictive(
    fit: DTAFit,
    *,
    ci: float = 0.95,
    seed: int | np.random.Generator | None = 0,
    within_study: str | Sequence[str] | None = None,
    at: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Posterior predictive sensitivity and specificity of a new study (or new model).

    ``new study``: for every posterior draw, ``(logit se, logit sp) ~ N(x beta, Sigma)``
    with ``Sigma`` the between-study covariance (two levels) or between + within covariance
    (three levels: a new model in a new study). This is the distribution the prediction
    region of :func:`regions` summarizes (Riley et al. 2011).

    For three-level fits also:

    ``new model, typical study``
        a new model in a study whose study effect is zero: ``N(x beta, Sigma_within)``, the
        between-row (within-study) variance only;
    ``new model in <study>`` (with ``within_study``)
        a new model in an existing study: ``x beta + u_s + v`` with ``v ~ N(0, Sigma_within)``
        and ``u_s`` drawn from its exact conditional posterior given that study's row
        parameters (see the Notes). ``x`` is the design row of ``at`` (default: reference
        levels), i.e. the study's effect is carried over to a model with those covariates.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    ci : float
        Credible-interval probability.
    seed : int, Generator or None
        Seed of the predictive simulation (one predictive draw per posterior draw).
    within_study : str, sequence of str or "all", optional
        Study label(s) for the ``new model in <study>`` rows (three-level fits only).
    at : mapping, optional
        Covariate values of a meta-regression.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(target, quantity)`` with quantity ``sensitivity`` / ``specificity``;
        columns ``mean``, ``median``, ``lower``, ``upper``.

    Notes
    -----
    The data enter the model only through the row parameters ``theta``, so the conditional
    posterior of ``u_s`` given ``theta``, ``beta`` and the covariances is normal with precision
    ``Sigma_b^{-1} + n_s Sigma_w^{-1}``; drawing it once per posterior draw gives exact draws of
    the study effect without storing it.

    References
    ----------
    Riley RD, Higgins JPT, Deeks JJ. Interpretation of random effects meta-analyses. BMJ
    2011;342:d549.
    """
    ci = _check_ci(ci)
    targets = _predictive_targets(fit, at=at, within_study=within_study, seed=seed)
    rows = []
    for target, (se, sp) in targets.items():
        for q, x in (("sensitivity", se), ("specificity", sp)):
            med, lo, hi = _interval(x.ravel(), ci)
            rows.append(
                {
                    "target": target,
                    "quantity": q,
                    "mean": float(np.mean(x)),
                    "median": float(med),
                    "lower": float(lo),
                    "upper": float(hi),
                }
            )
    df = pd.DataFrame(rows).set_index(["target", "quantity"])
    df.attrs["ci"] = ci
    return df


# --------------------------------------------------------------------------------------------
# Heterogeneity
# --------------------------------------------------------------------------------------------
def heterogeneity(
    fit: DTAFit, *, ci: float = 0.95, at: Mapping[str, Any] | None = None
) -> pd.DataFrame:
    r"""Between-study heterogeneity: SDs, correlation and I2 statistics, per draw.

    Definitions (``tau`` and ``rho`` are the SDs and correlation of a new row in a new study:
    between-study for two levels, between + within for three levels; residual heterogeneity
    given the covariates for meta-regressions):

    ``i2_sensitivity``, ``i2_specificity``
        Higgins & Thompson (2002): ``I2 = tau^2 / (tau^2 + s^2)`` with ``s^2`` the typical
        within-study variance ``(k-1) sum w / ((sum w)^2 - sum w^2)``, ``w = 1 / v``,
        ``v = 1/TP + 1/FN`` (se) or ``1/TN + 1/FP`` (sp), 0.5 added to every cell of a row
        with a zero cell. These are the ``i2_*`` of :meth:`DTAFit.summary`. For probit fits
        ``v`` is the delta-method variance of the observed probit,
        ``p (1 - p) / (n phi(Phi^{-1}(p))^2)`` (:func:`bayesdta.stats.link_variances`).
    ``i2_bivariate``
        Zhou & Dendukuri's (2014) bivariate formula
        ``|Sigma|^{1/2} / (|Sigma|^{1/2} + |S|^{1/2})`` with ``Sigma`` the between-study
        covariance and ``S = diag(s^2_se, s^2_sp)`` the Higgins-Thompson typical variances
        above (a hybrid: Zhou & Dendukuri use their expected variance, see ``i2_*_zd``).
    ``i2_*_zd``
        Zhou & Dendukuri's own statistics: the same three formulas with their model-based
        typical within-study
        variance ``(e^{mu + tau^2/2} + e^{-mu + tau^2/2} + 2) mean(1/n)``
        (:func:`bayesdta.stats.expected_within_variance`), which does not need continuity
        corrections. Logit fits only: on the probit scale that expectation is infinite once
        ``tau >= 1``, so probit fits omit these rows and say so in ``attrs["notes"]``.
    ``between_share_*`` (three levels)
        ``tau_between^2 / (tau_between^2 + tau_within^2)``: the share of the heterogeneity
        that lies between studies rather than between models of a study.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    ci : float
        Credible-interval probability.
    at : mapping, optional
        Covariate values (the logit means entering the ``*_zd`` statistics; a ``tau_by`` level).

    Returns
    -------
    pandas.DataFrame
        Summary table indexed by quantity.

    References
    ----------
    Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med
    2002;21:1539-1558.
    Zhou Y, Dendukuri N. Statistics for quantifying heterogeneity in univariate and bivariate
    meta-analyses of binary data: the case of meta-analyses of diagnostic accuracy. Stat Med
    2014;33:2701-2717.
    """
    ci = _check_ci(ci)
    at = _check_at(fit, at)
    mu_se, mu_sp = _linear_predictor(fit, at)
    tb = _covariance(fit, "between", at)
    draws: dict[str, np.ndarray] = {
        "tau_sensitivity": tb[0],
        "tau_specificity": tb[1],
        "rho": tb[2],
    }
    t_se, t_sp, r = _covariance(fit, "total", at)
    if fit.levels == 3:
        tw = _covariance(fit, "within")
        draws.update(
            tau_within_sensitivity=tw[0],
            tau_within_specificity=tw[1],
            rho_within=tw[2],
            tau_total_sensitivity=t_se,
            tau_total_specificity=t_sp,
            rho_total=r,
            between_share_sensitivity=tb[0] ** 2 / t_se**2,
            between_share_specificity=tb[1] ** 2 / t_sp**2,
        )
    d, act = fit.data, _in_fit(fit)  # rows with weight 0 are not in the fit
    link = fit.spec.link
    i2, (s2_se, s2_sp) = st.i2_statistics(
        t_se,
        t_sp,
        r,
        mu_se,
        mu_sp,
        tp=d.tp[act],
        fp=d.fp[act],
        fn=d.fn[act],
        tn=d.tn[act],
        link=link,
    )
    draws.update(i2)
    notes = []
    if link != "logit":
        notes.append(
            f"i2_*_zd omitted: the Zhou-Dendukuri model-based within-study variance is defined "
            f"for the logit link only (on the {link} scale its expectation is infinite once "
            "tau >= 1); i2_* use delta-method within-study variances on the "
            f"{link} scale"
        )
    out = _summarize(draws, ci)
    out.attrs["typical_within_variance"] = {"sensitivity": s2_se, "specificity": s2_sp}
    out.attrs["link"] = link
    out.attrs["notes"] = notes
    return out


# --------------------------------------------------------------------------------------------
# Fagan
# --------------------------------------------------------------------------------------------
def fagan(
    fit: DTAFit,
    *,
    pretest: float | Sequence[float] | np.ndarray | None = None,
    ci: float = 0.95,
    at: Mapping[str, Any] | None = None,
    predictive: bool = False,
    seed: int | np.random.Generator | None = 0,
) -> pd.DataFrame:
    """Post-test probabilities after a positive and a negative result, with intervals.

    Bayes' theorem in odds form per posterior draw (Fagan 1975):
    ``post-test odds = pre-test odds x LR`` with ``LR+ = se / (1 - sp)`` after a positive and
    ``LR- = (1 - se) / sp`` after a negative result, ``se`` and ``sp`` the summary point
    (:func:`bayesdta.stats.fagan`). With ``predictive=True`` ``se`` and ``sp`` are those of a
    new study (:func:`predictive`, target ``new study``): what a clinician using the test in a
    new setting can expect, with the between-study spread included.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    pretest : float or array_like, optional
        Pre-test probabilities (default :data:`DEFAULT_PRETEST`, 0.01 to 0.99).
    ci : float
        Credible-interval probability.
    at : mapping, optional
        Covariate values of a meta-regression.
    predictive : bool
        Use a new study's se/sp instead of the summary point.
    seed : int, Generator or None
        Seed of the predictive simulation (``predictive=True`` only).

    Returns
    -------
    pandas.DataFrame
        Columns ``pretest``, ``positive``, ``positive_lower``, ``positive_upper``,
        ``negative``, ``negative_lower``, ``negative_upper`` (medians and interval limits).
        ``attrs``: ``lr_positive`` and ``lr_negative`` as (median, lower, upper), ``ci``.

    References
    ----------
    Fagan TJ. Nomogram for Bayes's theorem. N Engl J Med 1975;293:257.
    """
    ci = _check_ci(ci)
    p = DEFAULT_PRETEST if pretest is None else np.atleast_1d(np.asarray(pretest, dtype=float))
    if predictive:
        se, sp = _predictive_targets(fit, at=at, within_study=None, seed=seed)["new study"]
    else:
        mu_se, mu_sp = _linear_predictor(fit, at)
        se, sp = lk.inverse(mu_se, fit.spec.link), lk.inverse(mu_sp, fit.spec.link)
    f = st.fagan(p, se.ravel(), sp.ravel())
    pos = _interval(f["positive"], ci)
    neg = _interval(f["negative"], ci)
    df = pd.DataFrame(
        {
            "pretest": p,
            "positive": pos[0],
            "positive_lower": pos[1],
            "positive_upper": pos[2],
            "negative": neg[0],
            "negative_lower": neg[1],
            "negative_upper": neg[2],
        }
    )
    df.attrs.update(
        ci=ci,
        predictive=predictive,
        lr_positive=tuple(float(v) for v in _interval(f["lr_positive"], ci)),
        lr_negative=tuple(float(v) for v in _interval(f["lr_negative"], ci)),
    )
    return df


# --------------------------------------------------------------------------------------------
# Deeks' test
# --------------------------------------------------------------------------------------------
def deeks(fit_or_data: DTAFit | DTAData) -> dict[str, Any]:
    """Deeks' funnel-plot asymmetry test on the rows of the data (a classical test).

    Weighted least-squares regression of the log diagnostic odds ratio of each 2x2 table on
    ``1 / sqrt(ESS)``, weighted by the effective sample size ``ESS = 4 n1 n0 / (n1 + n0)``;
    the P-value is that of the slope (t test on ``k - 2`` df); ``P < 0.10`` suggests
    small-study effects. See :func:`bayesdta.stats.deeks_test`.

    Parameters
    ----------
    fit_or_data : DTAFit or DTAData
        A fit (its data are used) or the data.

    Returns
    -------
    dict
        The result of :func:`bayesdta.stats.deeks_test` (``slope``, ``intercept``, ``se_slope``,
        ``t``, ``df``, ``p_value``, ``x``, ``y``, ``weights``) plus ``labels`` (row labels).

    Notes
    -----
    Every 2x2 table is one point, as in the published MIDAS analyses; when studies contribute
    several tables these are not independent and the P-value is optimistic.

    References
    ----------
    Deeks JJ, Macaskill P, Irwig L. The performance of tests of publication bias and other
    sample size effects in systematic reviews of diagnostic test accuracy was assessed.
    J Clin Epidemiol 2005;58:882-893.
    """
    if isinstance(fit_or_data, DTAData):
        data, act = fit_or_data, np.ones(fit_or_data.n_rows, dtype=bool)
    else:
        data, act = fit_or_data.data, _in_fit(fit_or_data)  # rows with weight 0 are left out
    res = st.deeks_test(data.tp[act], data.fp[act], data.fn[act], data.tn[act])
    res["labels"] = [lab for lab, a in zip(data.row_labels, act, strict=True) if a]
    return res


# --------------------------------------------------------------------------------------------
# Influence
# --------------------------------------------------------------------------------------------
def _score_curvature(
    k: np.ndarray, n: np.ndarray, eta: np.ndarray, link: str
) -> tuple[np.ndarray, np.ndarray]:
    """First derivative and minus the second derivative of the binomial log-likelihood in eta.

    ``l = k log F(eta) + (n - k) log F(-eta)`` (symmetric link). For the logit link these are
    ``k - n p`` and ``n p (1 - p)``; otherwise ``k g(eta) - (n - k) g(-eta)`` and
    ``k h(eta) + (n - k) h(-eta)`` with ``g = (log F)'`` and ``h = -(log F)''`` (both
    computed stably, :mod:`bayesdta.links`; ``h >= 0`` as ``log F`` is concave).
    """
    if link == "logit":
        prob = special.expit(eta)
        return k - n * prob, n * prob * (1.0 - prob)
    score = k * lk.dlog_inverse(eta, link) - (n - k) * lk.dlog_inverse(-eta, link)
    curv = k * lk.neg_d2log_inverse(eta, link) + (n - k) * lk.neg_d2log_inverse(-eta, link)
    return score, curv


def _binom_loglik_x(k: np.ndarray, n: np.ndarray, eta: np.ndarray, link: str) -> np.ndarray:
    """The part of the binomial log-pmf that depends on ``eta``, summed over the last axis.

    That is, without the log binomial coefficient (constant in ``eta``).
    """
    if link == "logit":
        # k log p + (n - k) log(1 - p) = k eta - n log(1 + e^eta)
        return eta @ k - np.logaddexp(0.0, eta) @ n
    return lk.log_inverse(eta, link) @ k + lk.log_inverse(-eta, link) @ (n - k)


def _laplace_is_log_marginal(
    k: np.ndarray,
    n: np.ndarray,
    offset: np.ndarray,
    design: np.ndarray,
    prior_cov: np.ndarray,
    rng: np.random.Generator,
    *,
    n_inner: int = 64,
    df: float = 8.0,
    max_iter: int = 50,
    link: str = "logit",
) -> np.ndarray:
    """``log integral prod_i Bin(k_i | n_i, F(eta_i)) N(x | 0, prior_cov) dx``, batched.

    ``eta = offset + design @ x`` with latent ``x`` of size ``q``. The integrand is log-concave,
    so Newton's method finds its mode and curvature (Laplace approximation); the integral is
    then estimated by importance sampling from a multivariate t (``df`` degrees of freedom)
    centred there with the Laplace covariance, which is accurate with few draws even when the
    binomial likelihood is much narrower than the prior (large studies).

    Vectorized over posterior draws: Newton iterates only the draws not yet converged, the
    backtracking line search evaluates shorter steps only for the draws whose full step failed,
    constants (log binomial coefficients, log determinants) are computed once, and the prior
    density of the importance draws uses the prior precision instead of one triangular solve
    per draw. The random numbers are drawn exactly as before, so for a seed the estimate
    agrees with the previous implementation to rounding (modes agree to the Newton tolerance).

    Parameters
    ----------
    k, n : numpy.ndarray
        Counts and denominators, shape ``(m,)``.
    offset : numpy.ndarray
        Fixed part of the linear predictor, shape ``(N, m)`` (one row per posterior draw).
    design : numpy.ndarray
        Map from latent to linear predictor, shape ``(m, q)``.
    prior_cov : numpy.ndarray
        Prior covariance of the latent vector, shape ``(N, q, q)``.
    rng : numpy.random.Generator
        Random numbers of the importance sampler.
    n_inner : int
        Importance draws per posterior draw.
    df : float
        Degrees of freedom of the t proposal.
    max_iter : int
        Newton iterations (at most).
    link : {"logit", "probit"}
        Link function (``F`` its inverse). Newton uses the exact gradient and curvature of the
        binomial log-likelihood under the link (:func:`_score_curvature`); the log integrand is
        log-concave for both links.

    Returns
    -------
    numpy.ndarray
        Log marginal likelihood per posterior draw, shape ``(N,)``.
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    offset = np.asarray(offset, dtype=float)
    design = np.asarray(design, dtype=float)
    n_draws, q = offset.shape[0], design.shape[1]
    log_binom = float(
        np.sum(special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0))
    )
    prior_chol = np.linalg.cholesky(prior_cov)
    eye = np.eye(q)
    chol_inv = np.linalg.solve(prior_chol, np.broadcast_to(eye, prior_cov.shape))
    prec = np.swapaxes(chol_inv, -1, -2) @ chol_inv
    prior_logdet = np.sum(np.log(np.diagonal(prior_chol, axis1=-2, axis2=-1)), axis=-1)  # half
    design_t = np.ascontiguousarray(design.T)
    # design' diag(c) design as a (q*q, m) map: info = curv @ dd
    dd = np.einsum("mi,mj->mij", design, design).reshape(design.shape[0], q * q)

    def objective(x_: np.ndarray, off: np.ndarray, pr: np.ndarray) -> np.ndarray:
        eta_ = off + x_ @ design_t
        return _binom_loglik_x(k, n, eta_, link) - 0.5 * np.einsum("ni,nij,nj->n", x_, pr, x_)

    x = np.zeros((n_draws, q))
    f_x = objective(x, offset, prec)
    active = np.arange(n_draws)
    for _ in range(max_iter):
        xa, off, pr = x[active], offset[active], prec[active]
        score, curv = _score_curvature(k, n, off + xa @ design_t, link)
        grad = score @ design - np.einsum("nij,nj->ni", pr, xa)
        info = (curv @ dd).reshape(-1, q, q) + pr
        step = np.linalg.solve(info, grad[..., None])[..., 0]
        slope = np.sum(grad * step, axis=-1)
        # backtracking line search (Newton alone can oscillate on logistic likelihoods):
        # halvings 1, 1/2, ..., 1/2^11, the first one with sufficient increase, else the last
        t = np.ones(active.size)
        f_new = np.empty(active.size)
        todo = np.arange(active.size)
        for h in range(12):
            fac = 0.5**h
            cand = xa[todo] + fac * step[todo]
            f_c = objective(cand, off[todo], pr[todo])
            ok = f_c >= f_x[active[todo]] + 1e-4 * fac * slope[todo]
            if h == 11:
                ok[:] = True
            t[todo[ok]] = fac
            f_new[todo[ok]] = f_c[ok]
            todo = todo[~ok]
            if not todo.size:
                break
        moved = t[:, None] * step
        x[active] = xa + moved
        f_x[active] = f_new
        active = active[np.max(np.abs(moved), axis=1) >= 1e-8]
        if not active.size:
            break
    eta = offset + x @ design_t
    _, curv = _score_curvature(k, n, eta, link)
    info = (curv @ dd).reshape(-1, q, q) + prec
    cov = np.linalg.inv(info)
    chol = np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, -1, -2)))
    z = rng.standard_normal((n_draws, n_inner, q))
    scale = np.sqrt(df / rng.chisquare(df, size=(n_draws, n_inner, 1)))
    # importance draws x = mode + chol @ w (w the t-distributed white noise); everything below
    # is linear in w, so the linear predictor and the whitened prior draw are
    # eta_mode + (design chol) w and L^-1 mode + (L^-1 chol) w (L the prior Cholesky factor)
    logdet = np.sum(np.log(np.diagonal(chol, axis1=-2, axis2=-1)), axis=-1)  # (N,)
    const = (
        special.gammaln(df / 2.0)
        - special.gammaln((df + q) / 2.0)
        + 0.5 * q * np.log(df * np.pi)
        + logdet  # minus the log t density's normalizing constant
        - prior_logdet
        - 0.5 * q * np.log(2.0 * np.pi)
        + log_binom
    )  # log_lik + log_prior - log_q = const + (the terms below)
    to_eta = np.swapaxes(design @ chol, -1, -2)  # (N, q, m)
    to_sol = np.swapaxes(chol_inv @ chol, -1, -2)  # (N, q, q)
    sol_mode = np.einsum("nij,nj->ni", chol_inv, x)
    out = np.empty(n_draws)
    chunk = max(1, 2**18 // (n_inner * max(q, design.shape[0])))  # keep blocks in cache
    for lo in range(0, n_draws, chunk):
        sl = slice(lo, lo + chunk)
        white = z[sl] * scale[sl]
        eta_c = eta[sl, None, :] + white @ to_eta[sl]
        sol = sol_mode[sl, None, :] + white @ to_sol[sl]
        log_w = (
            _binom_loglik_x(k, n, eta_c, link)
            - 0.5 * np.sum(sol * sol, axis=-1)
            + 0.5 * (df + q) * np.log1p(np.sum(white * white, axis=-1) / df)
        )
        out[sl] = special.logsumexp(log_w, axis=1)
    return out + const - np.log(n_inner)


def _study_log_marginal_parts(fit: DTAFit) -> dict[str, Any]:
    """The draws :func:`_study_log_marginal` needs for every study, computed once per fit.

    Row linear predictors (chain, draw, row) and covariance matrices (chain * draw, 2, 2).
    """
    lp_se, lp_sp = _row_linear_predictor(fit)
    parts: dict[str, Any] = {
        "lp_se": lp_se,
        "lp_sp": lp_sp,
        "row_level": _row_tau_level(fit),
        "between": {},
    }
    if fit.levels == 3:
        parts["within"] = _cov2(*_covariance(fit, "within")).reshape(-1, 2, 2)
    return parts


def _study_log_marginal(
    fit: DTAFit,
    rows: np.ndarray,
    rng: np.random.Generator,
    *,
    n_inner: int = 64,
    parts: dict[str, Any] | None = None,
) -> np.ndarray:
    """``log p(y_rows | phi)`` per posterior draw (chain, draw), the rows' effects integrated out.

    Two levels: every row has its own effect ``theta_r ~ N(x_r beta, Sigma)`` (with
    ``random_effects="t"``: bivariate t with ``nu`` degrees of freedom and scale ``Sigma``; the
    proposal stays the normal-prior Laplace approximation). Three levels: the
    rows share a new study effect ``u ~ N(0, Sigma_between)`` plus row effects
    ``v_r ~ N(0, Sigma_within)``. See :func:`_laplace_is_log_marginal`. ``parts``
    (:func:`_study_log_marginal_parts`) shares the per-fit draws between studies, which keeps
    the integrated LOO linear in the number of studies.
    """
    d = fit.data
    if parts is None:
        parts = _study_log_marginal_parts(fit)
    lp_se, lp_sp = parts["lp_se"], parts["lp_sp"]
    c, n_d = lp_se.shape[:2]
    n_rows = rows.size
    offset = np.stack([lp_se[:, :, rows], lp_sp[:, :, rows]], axis=-1).reshape(c * n_d, -1)
    k = np.stack([d.tp[rows], d.tn[rows]], axis=-1).reshape(-1).astype(float)
    n = np.stack([d.n_diseased[rows], d.n_nondiseased[rows]], axis=-1).reshape(-1).astype(float)
    level = parts["row_level"][rows[0]]
    if level not in parts["between"]:
        at = {fit.spec.tau_by: level} if level is not None else {}
        parts["between"][level] = _cov2(*_covariance(fit, "between", at)).reshape(-1, 2, 2)
    sb = parts["between"][level]
    eye_r = np.eye(2 * n_rows)
    if fit.levels == 2:
        design = eye_r
        blocks = [sb] * n_rows
    else:
        sw = parts["within"]
        design = np.hstack([np.tile(np.eye(2), (n_rows, 1)), eye_r])
        blocks = [sb] + [sw] * n_rows
    q = design.shape[1]
    prior_cov = np.zeros((c * n_d, q, q))
    for b, block in enumerate(blocks):
        prior_cov[:, 2 * b : 2 * b + 2, 2 * b : 2 * b + 2] = block
    # the part of the prior covariance that a t weight lambda scales: the study effect
    # (two levels: every row's effect; three levels: the between block only)
    t_part = prior_cov.copy()
    if fit.levels == 3:
        t_part[:, 2:, :] = 0.0
        t_part[:, :, 2:] = 0.0
    nu = nu_draws(fit)
    if nu is None:
        out = _laplace_is_log_marginal(
            k, n, offset, design, prior_cov, rng, n_inner=n_inner, link=fit.spec.link
        )
        return out.reshape(c, n_d)
    if fit.levels == 2 and n_rows > 1:
        # two levels: every row has its own effect and its own weight (independent rows)
        return sum(
            _study_log_marginal(fit, rows[i : i + 1], rng, n_inner=n_inner, parts=parts)
            for i in range(n_rows)
        )
    # Student-t effects: the study effect is N(x beta, Sigma / lambda) with
    # lambda ~ Gamma(nu/2, rate nu/2) (three levels: plus the rows' normal deviations). The
    # integral over lambda is the trapezoid rule on a grid of log(lambda) (outlying studies
    # get their likelihood from small lambda); the normal integral at each node by Laplace +
    # importance sampling
    from scipy.stats import gamma as gamma_dist

    a = nu.reshape(-1) / 2.0
    grid = np.linspace(-14.0, 4.0, T_STRATA)
    step = grid[1] - grid[0]
    parts = []
    for j, g in enumerate(grid):
        lam = np.exp(g)
        logw = gamma_dist.logpdf(lam, a, scale=1.0 / a) + g + np.log(step)
        if j in (0, len(grid) - 1):
            logw = logw - np.log(2.0)
        parts.append(
            logw
            + _laplace_is_log_marginal(
                k,
                n,
                offset,
                design,
                prior_cov + t_part * (1.0 / lam - 1.0),
                rng,
                n_inner=n_inner,
                link=fit.spec.link,
            )
        )
    out = special.logsumexp(np.stack(parts), axis=0)
    return out.reshape(c, n_d)


#: Nodes (in log lambda) of the integrated likelihood of t effects.
T_STRATA = 33


def study_log_likelihood(
    fit: DTAFit, *, n_inner: int = 64, seed: int | np.random.Generator | None = 0
) -> xr.DataArray:
    """Integrated log-likelihood of every study per posterior draw (random effects integrated).

    ``log p(y_s | phi)`` with ``phi = (beta, Sigma)`` and the study's own effects integrated over
    their distribution: for two levels each row's ``theta_r ~ N(x_r beta, Sigma)``; for three
    levels a study effect ``u ~ N(0, Sigma_between)`` shared by its rows plus row effects
    ``v_r ~ N(0, Sigma_within)``. The integral is computed per draw by a Laplace approximation
    refined by importance sampling (``n_inner`` multivariate-t draws around the mode; at the
    default the log density of one draw has a Monte Carlo SD of about 0.03 and no visible bias,
    and the noise averages out over posterior draws).

    This is the likelihood to use for leave-one-study-out cross-validation: the conditional
    log-likelihood given the study's own ``theta`` (the ``log_likelihood`` group of the fit)
    makes the study's posterior, not its predictive distribution, the importance-sampling
    proposal, which for informative studies gives too-high ``elpd`` with Pareto ``k`` that
    may not flag it (integrated importance sampling, Vehtari et al. 2016).

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    n_inner : int
        Importance draws per posterior draw and study.
    seed : int, Generator or None
        Random seed of the importance sampler.

    Returns
    -------
    xarray.DataArray
        Dims (chain, draw, study).

    References
    ----------
    Vehtari A, Mononen T, Tolvanen V, Sivula T, Winther O. Bayesian leave-one-out
    cross-validation approximations for Gaussian latent variable models. J Mach Learn Res
    2016;17(103):1-38.
    """
    rng = np.random.default_rng(seed)
    d, act = fit.data, _in_fit(fit)
    # rows of every study in one pass (a mask per study would be quadratic in the rows)
    act_idx = np.flatnonzero(act)
    order = act_idx[np.argsort(d.study_index[act_idx], kind="stable")]
    cuts = np.searchsorted(d.study_index[order], np.arange(d.n_studies + 1))
    rows = [order[cuts[s] : cuts[s + 1]] for s in range(d.n_studies)]
    studies = [s for s in range(d.n_studies) if rows[s].size]  # weight-0 studies are not in
    parts = _study_log_marginal_parts(fit)
    ll = np.stack(
        [_study_log_marginal(fit, rows[s], rng, n_inner=n_inner, parts=parts) for s in studies],
        axis=-1,
    )
    post = fit.posterior
    return xr.DataArray(
        ll,
        dims=("chain", "draw", "study"),
        coords={
            "chain": post.chain.values,
            "draw": post.draw.values,
            "study": [d.studies[s] for s in studies],
        },
        name="log_likelihood_study",
    )


def loo_integrated(
    fit: DTAFit, *, n_inner: int = 64, seed: int | np.random.Generator | None = 0
) -> dict[str, Any]:
    """Leave-one-study-out PSIS-LOO on the integrated study log-likelihood.

    PSIS-LOO (Vehtari et al. 2017) with :func:`study_log_likelihood`, i.e. integrated importance
    sampling: estimates ``log p(y_s | y_-s)`` for a left-out study whose effects are new draws
    from the random-effects distribution, as an exact refit without the study does.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    n_inner : int
        Importance draws per posterior draw and study (see :func:`study_log_likelihood`).
    seed : int, Generator or None
        Random seed.

    Returns
    -------
    dict
        As :meth:`DTAFit.loo`: ``elpd_loo``, ``se``, ``p_loo``, ``loo_i``, ``pareto_k``,
        ``warning`` and ``labels``.

    References
    ----------
    Vehtari A, Gelman A, Gabry J. Practical Bayesian model evaluation using leave-one-out
    cross-validation and WAIC. Stat Comput 2017;27:1413-1432.
    Vehtari A, Mononen T, Tolvanen V, Sivula T, Winther O. Bayesian leave-one-out
    cross-validation approximations for Gaussian latent variable models. J Mach Learn Res
    2016;17(103):1-38.
    """
    # the same fit, draws, weights, n_inner and integer seed give the same numbers: the report's
    # LOO table and the influence table share one computation (a deterministic memo)
    key = _loo_memo_key(fit, n_inner, seed)
    if key is not None:
        hit = _LOO_MEMO.get(fit, {}).get(key[0])
        if hit is not None and hit[0] is fit.posterior and np.array_equal(hit[1], key[1]):
            return _copy_loo(hit[2])
    ll = study_log_likelihood(fit, n_inner=n_inner, seed=seed)
    res = _arviz.loo_pointwise(ll, dim="study")
    res["labels"] = [str(s) for s in ll.coords["study"].values]
    if key is not None:
        try:
            _LOO_MEMO.setdefault(fit, {})[key[0]] = (fit.posterior, key[1], _copy_loo(res))
        except TypeError:  # pragma: no cover - an object that cannot be weakly referenced
            pass
    return res


#: ``loo_integrated`` results per fit (weak keys: a fit that is gone takes its entries along),
#: each with the posterior object and the weights it was computed from (checked on a hit).
_LOO_MEMO: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _loo_memo_key(fit: DTAFit, n_inner: int, seed: Any) -> tuple[tuple, np.ndarray] | None:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        return None  # a Generator or None: fresh random numbers, nothing to re-use
    return (int(n_inner), int(seed)), np.array(fit.weights, dtype=float, copy=True)


def _copy_loo(res: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: v.copy() if isinstance(v, np.ndarray) else list(v) if isinstance(v, list) else v
        for k, v in res.items()
    }


def influence(
    fit: DTAFit,
    *,
    k_threshold: float = 0.7,
    refit: str = "high_k",
    studies: Sequence[str] | None = None,
    seed: int | None = None,
    at: Mapping[str, Any] | None = None,
    n_inner: int = 64,
    **sampler: Any,
) -> pd.DataFrame:
    """Study influence: leave-one-study-out PSIS-LOO with Pareto k, and exact refits.

    Every study gets its leave-one-study-out expected log predictive density ``elpd_loo`` and
    Pareto ``k`` from PSIS-LOO on the integrated study log-likelihood (:func:`loo_integrated`);
    ``k > k_threshold`` means the importance-sampling estimate is unreliable. The conditional
    PSIS-LOO of :meth:`DTAFit.loo` is reported beside it (``*_conditional``). The studies
    selected by ``refit`` are then refitted without their rows (likelihood weight 0, re-using
    the compiled model), which gives

    ``sensitivity_without``, ``specificity_without``
        posterior medians of the summary point without the study;
    ``delta_sensitivity``, ``delta_specificity``
        ``without - with``: negative when the study pulled the summary up;
    ``elpd_exact``
        the exact leave-one-study-out ``log p(y_s | y_-s) = log mean_j p(y_s | phi_j)`` over the
        refit's draws ``phi_j``, with the study's effects integrated out as in
        :func:`study_log_likelihood`.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    k_threshold : float
        Pareto k above which a study is refitted with ``refit="high_k"``.
    refit : {"high_k", "all", "none"}
        Which studies to refit.
    studies : sequence of str, optional
        Refit exactly these studies (overrides ``refit``).
    seed : int, optional
        Seed of the refits (default: the fit's seed) and of the integration (default: 0, the
        default of :meth:`DTAFit.loo`, so that ``pareto_k`` and ``elpd_loo`` are those of
        ``fit.loo(by="study")``, of the report's Pareto k table and of
        :func:`bayesdta.regression.subgroup_table`).
    at : mapping, optional
        Covariate values at which the summary point is compared (meta-regressions).
    n_inner : int
        Importance draws of the integration (see :func:`study_log_likelihood`).
    **sampler
        Sampler settings of the refits (``draws``, ``tune``, ``chains``, ...).

    Returns
    -------
    pandas.DataFrame
        Indexed by study: ``n_rows``, ``pareto_k``, ``elpd_loo``, ``pareto_k_conditional``,
        ``elpd_loo_conditional``, ``refitted``, ``sensitivity_without``,
        ``specificity_without``, ``delta_sensitivity``, ``delta_specificity``, ``elpd_exact``,
        ``refit_warnings`` (NaN / empty when not refitted). ``attrs``: ``sensitivity``,
        ``specificity`` (medians with all studies), ``k_threshold``, ``elpd_loo`` (total,
        integrated) and ``elpd_loo_conditional``.

    References
    ----------
    Vehtari A, Gelman A, Gabry J. Practical Bayesian model evaluation using leave-one-out
    cross-validation and WAIC. Stat Comput 2017;27:1413-1432.
    """
    if refit not in ("high_k", "all", "none"):
        raise SpecError(f"refit must be 'high_k', 'all' or 'none', got {refit!r}")
    labels = list(fit.data.studies)
    if studies is not None:
        unknown = [s for s in studies if s not in labels]
        if unknown:
            raise SpecError(f"studies= {unknown} are not studies of the data")
    # the integration seed of DTAFit.loo (0) by default: the same Pareto k everywhere
    inner_seed = seed if seed is not None else 0
    loo = loo_integrated(fit, n_inner=n_inner, seed=inner_seed)
    cond = fit.loo(by="study", integrated=False)
    # studies whose rows all have weight 0 are not in the fit: NaN, never refitted
    k = pd.Series(np.asarray(loo["pareto_k"], float), loo["labels"]).reindex(labels).to_numpy()
    elpd = pd.Series(np.asarray(loo["loo_i"], float), loo["labels"]).reindex(labels).to_numpy()
    k_c = pd.Series(np.asarray(cond["pareto_k"], float), cond["labels"]).reindex(labels)
    elpd_c = pd.Series(np.asarray(cond["loo_i"], float), cond["labels"]).reindex(labels)
    if studies is not None:
        chosen = list(dict.fromkeys(studies))
    elif refit == "all":
        chosen = [s for s in labels if s in loo["labels"]]
    elif refit == "high_k":
        chosen = [s for s, kk in zip(labels, k, strict=True) if kk > k_threshold]
    else:
        chosen = []
    mu_se, mu_sp = _linear_predictor(fit, at)
    link = fit.spec.link
    base_se = float(np.median(lk.inverse(mu_se, link)))
    base_sp = float(np.median(lk.inverse(mu_sp, link)))
    base_w = np.asarray(fit.idata.constant_data["weight"].values, dtype=float)
    df = pd.DataFrame(
        {
            "n_rows": np.bincount(fit.data.study_index, minlength=len(labels)),
            "pareto_k": k,
            "elpd_loo": elpd,
            "pareto_k_conditional": k_c.to_numpy(),
            "elpd_loo_conditional": elpd_c.to_numpy(),
            "refitted": False,
            "sensitivity_without": np.nan,
            "specificity_without": np.nan,
            "delta_sensitivity": np.nan,
            "delta_specificity": np.nan,
            "elpd_exact": np.nan,
            "refit_warnings": "",
        },
        index=pd.Index(labels, name="study"),
    )
    for s in chosen:
        rows = np.flatnonzero(fit.data.study_index == labels.index(s))
        w = base_w.copy()
        w[rows] = 0.0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplerWarning)
            r = fit.refit(weights=w, seed=seed, **sampler)
        r_se, r_sp = _linear_predictor(r, at)
        se_wo = float(np.median(lk.inverse(r_se, link)))
        sp_wo = float(np.median(lk.inverse(r_sp, link)))
        rng = np.random.default_rng(inner_seed)
        log_p = _study_log_marginal(r, rows, rng, n_inner=int(n_inner)).ravel()
        df.loc[s, "refitted"] = True
        df.loc[s, "sensitivity_without"] = se_wo
        df.loc[s, "specificity_without"] = sp_wo
        df.loc[s, "delta_sensitivity"] = se_wo - base_se
        df.loc[s, "delta_specificity"] = sp_wo - base_sp
        df.loc[s, "elpd_exact"] = float(special.logsumexp(log_p) - np.log(log_p.size))
        df.loc[s, "refit_warnings"] = "; ".join(r.diagnostics()["warnings"])
    df.attrs.update(
        sensitivity=base_se,
        specificity=base_sp,
        k_threshold=float(k_threshold),
        elpd_loo=float(loo["elpd_loo"]),
        elpd_loo_conditional=float(cond["elpd_loo"]),
    )
    return df


# --------------------------------------------------------------------------------------------
# Row-level quantities
# --------------------------------------------------------------------------------------------
def observed(fit_or_data: DTAFit | DTAData, *, ci: float = 0.95) -> pd.DataFrame:
    """Observed sensitivity and specificity of each row with exact (Clopper-Pearson) intervals.

    ``lower = B(a/2; x, n - x + 1)`` and ``upper = B(1 - a/2; x + 1, n - x)`` with ``B`` the
    beta quantile function and ``a = 1 - ci`` (0 and 1 at ``x = 0`` and ``x = n``).

    Parameters
    ----------
    fit_or_data : DTAFit or DTAData
        A fit (its data are used) or the data.
    ci : float
        Confidence level.

    Returns
    -------
    pandas.DataFrame
        Indexed by row label: ``study``, ``model``, ``TP``, ``FP``, ``FN``, ``TN``,
        ``n_diseased``, ``n_nondiseased``, ``sensitivity``, ``sensitivity_lower``,
        ``sensitivity_upper``, ``specificity``, ``specificity_lower``, ``specificity_upper``.

    References
    ----------
    Clopper CJ, Pearson ES. The use of confidence or fiducial limits illustrated in the case of
    the binomial. Biometrika 1934;26:404-413.
    """
    ci = _check_ci(ci)
    data = fit_or_data if isinstance(fit_or_data, DTAData) else fit_or_data.data
    a = 1.0 - ci
    df = data.frame[["study", "model", "TP", "FP", "FN", "TN"]].copy()
    df.index = pd.Index(data.row_labels, name="row")
    df["n_diseased"] = data.n_diseased
    df["n_nondiseased"] = data.n_nondiseased
    for name, x, n in (
        ("sensitivity", data.tp, data.n_diseased),
        ("specificity", data.tn, data.n_nondiseased),
    ):
        x = np.asarray(x, dtype=float)
        n = np.asarray(n, dtype=float)
        with np.errstate(invalid="ignore"):
            lo = np.where(x > 0, sps.beta.ppf(a / 2, x, n - x + 1), 0.0)
            hi = np.where(x < n, sps.beta.ppf(1 - a / 2, x + 1, n - x), 1.0)
        df[name] = x / n
        df[f"{name}_lower"] = lo
        df[f"{name}_upper"] = hi
    df.attrs["ci"] = ci
    return df


def shrunken(fit: DTAFit, *, ci: float = 0.95) -> pd.DataFrame:
    """Posterior (shrunken) sensitivity and specificity of each row.

    ``F(theta_r)`` per draw (``F`` the inverse link, invlogit by default), where ``theta_r``
    are the row parameters of the model (covariates + study effect + row effect): the study's
    own accuracy, estimated with partial pooling toward the summary point.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    ci : float
        Credible-interval probability.

    Returns
    -------
    pandas.DataFrame
        Indexed by row label: ``study``, ``sensitivity``, ``sensitivity_lower``,
        ``sensitivity_upper``, ``specificity``, ``specificity_lower``, ``specificity_upper``
        (posterior medians and interval limits), ``observed_sensitivity``,
        ``observed_specificity``.
    """
    ci = _check_ci(ci)
    theta = lk.inverse(_cd(fit.posterior["theta"]), fit.spec.link)  # (c, d, row, 2)
    flat = theta.reshape(-1, theta.shape[2], 2)
    data = fit.data
    df = pd.DataFrame(
        {"study": np.asarray(data.frame["study"], dtype=object)},
        index=pd.Index(data.row_labels, name="row"),
    )
    for j, name in enumerate(("sensitivity", "specificity")):
        med, lo, hi = _interval(flat[..., j], ci)
        df[name] = med
        df[f"{name}_lower"] = lo
        df[f"{name}_upper"] = hi
    df["observed_sensitivity"] = data.tp / data.n_diseased
    df["observed_specificity"] = data.tn / data.n_nondiseased
    df.attrs["ci"] = ci
    return df


def posterior_predictive(
    fit: DTAFit, *, seed: int | np.random.Generator | None = 0, mixed: bool = False
) -> xr.Dataset:
    """Replicated TP and TN of every row from the posterior predictive distribution.

    ``TP_rep ~ Binomial(n1_r, F(theta_r1))`` and ``TN_rep ~ Binomial(n0_r, F(theta_r2))``
    (``F`` the inverse link), one replicate per posterior draw. With ``mixed=True`` the row
    parameters are redrawn from their random-effects distribution given the hyperparameters
    (new study effects, and new row effects for three levels) before the binomial draw: a
    "mixed" predictive check of the random-effects distribution, which the conditional check
    (that re-uses each row's own ``theta``) is too lenient to test (Marshall & Spiegelhalter
    2003).

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    seed : int, Generator or None
        Random seed.
    mixed : bool
        Redraw the random effects.

    Returns
    -------
    xarray.Dataset
        ``TP`` and ``TN`` with dims (chain, draw, row), integer counts in ``[0, n1]`` and
        ``[0, n0]``.

    References
    ----------
    Gelman A, Meng XL, Stern H. Posterior predictive assessment of model fitness via realized
    discrepancies. Stat Sin 1996;6:733-807.
    Marshall EC, Spiegelhalter DJ. Approximate cross-validatory predictive checks in disease
    mapping models. Stat Med 2003;22:1649-1660.
    """
    rng = np.random.default_rng(seed)
    data = fit.data
    if mixed:
        theta = _mixed_theta(fit, rng)
    else:
        theta = _cd(fit.posterior["theta"])
    p = lk.inverse(theta, fit.spec.link)
    tp = rng.binomial(data.n_diseased, p[..., 0])
    tn = rng.binomial(data.n_nondiseased, p[..., 1])
    post = fit.posterior
    coords = {"chain": post.chain.values, "draw": post.draw.values, "row": data.row_labels}
    ds = xr.Dataset(
        {"TP": (("chain", "draw", "row"), tp), "TN": (("chain", "draw", "row"), tn)},
        coords=coords,
    )
    ds.attrs["mixed"] = int(mixed)
    return ds


def _mixed_theta(fit: DTAFit, rng: np.random.Generator) -> np.ndarray:
    """Row parameters (chain, draw, row, 2) redrawn from the random-effects distribution."""
    data = fit.data
    lp_se, lp_sp = _row_linear_predictor(fit)
    theta = np.stack([lp_se, lp_sp], axis=-1)
    levels = _row_tau_level(fit)
    if fit.levels == 2:
        # one effect per row (rows are the groups of a two-level fit)
        nu = nu_draws(fit)
        for lv in sorted(set(levels), key=str):
            rows = np.array([i for i, x in enumerate(levels) if x == lv])
            at = {fit.spec.tau_by: lv} if lv is not None else {}
            L = _chol2(*_covariance(fit, "between", at))  # (c, d, 2, 2)
            z = rng.standard_normal((*theta.shape[:2], rows.size, 2))
            if nu is not None:  # Student-t effects: new weights lambda ~ Gamma(nu/2, nu/2)
                lam = rng.gamma(nu[..., None] / 2.0, 2.0 / nu[..., None], size=z.shape[:3])
                z = z / np.sqrt(lam)[..., None]
            theta[:, :, rows, :] += np.einsum("cdij,cdrj->cdri", L, z)
        return theta
    lw = _chol2(*_covariance(fit, "within"))
    z = rng.standard_normal(theta.shape)
    theta += np.einsum("cdij,cdrj->cdri", lw, z)
    nu = nu_draws(fit)
    for s in range(data.n_studies):
        rows = np.flatnonzero(data.study_index == s)
        lv = levels[rows[0]]
        at = {fit.spec.tau_by: lv} if lv is not None else {}
        L = _chol2(*_covariance(fit, "between", at))
        zs = rng.standard_normal((*theta.shape[:2], 2))
        if nu is not None:  # Student-t study effects: a new weight per study
            zs = zs / np.sqrt(rng.gamma(nu / 2.0, 2.0 / nu))[..., None]
        u = np.einsum("cdij,cdj->cdi", L, zs)
        theta[:, :, rows, :] += u[:, :, None, :]
    return theta


# DTAFit's convenience methods (fit.sroc(), ...) find these here, without importing this module
_registry.QUANTITIES.update(
    sroc=sroc,
    auc=auc,
    hsroc_parameters=hsroc_parameters,
    regions=regions,
    predictive=predictive,
    heterogeneity=heterogeneity,
    fagan=fagan,
    deeks=deeks,
    influence=influence,
    study_log_likelihood=study_log_likelihood,
    loo_integrated=loo_integrated,
    shrunken=shrunken,
    observed=observed,
    posterior_predictive=posterior_predictive,
    fpr_support=fpr_support,
    study_weights=study_weights,
)
# tables of an analysis spec (bayesdta.reporting.spec.TABLES names them and their captions)
_registry.TABLES.update(
    heterogeneity=heterogeneity,
    predictive=predictive,
    hsroc=hsroc_parameters,
    auc=auc,
    fagan=fagan,
    deeks=deeks,
    influence=influence,
    observed=observed,
    shrunken=shrunken,
)
