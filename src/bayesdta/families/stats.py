"""Summary statistics of diagnostic test accuracy computed on posterior draws.

Every function here is pure: numpy arrays in, numpy arrays (or small named tuples / dicts of
arrays) out. Parameter arguments are arrays of posterior draws of any shape, for example
``(n_draws,)`` or ``(chain, draw)``, and the functions broadcast over them.

Naming convention of the package (bivariate model of Reitsma et al. 2005 / Chu & Cole 2006):

* ``mu_se``, ``mu_sp``: mean logit sensitivity and mean logit specificity;
* ``tau_se``, ``tau_sp``: between-study standard deviations on the logit scale;
* ``rho``: between-study correlation of logit sensitivity and logit specificity.

Sensitivity is ``invlogit(mu_se)`` and the false-positive rate is ``fpr = 1 - sp``, so
``logit(fpr) = -logit(sp)``.

Functions that map between the linear-predictor scale and probabilities take a keyword-only
``link`` (``"logit"``, the default, or ``"probit"``; :mod:`bayesdta.links`). With the probit
link every "logit" above reads "probit" (``Phi^{-1}``); both links are symmetric, so
``link(fpr) = -link(sp)`` holds for both and the SROC lines are straight lines in the
``(link fpr, link se)`` plane.

Only numpy and scipy are used (no pymc, arviz, xarray or pandas).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike
from scipy import special
from scipy import stats as sps

from ..exceptions import DTADataError, SpecError
from . import links as lk

__all__ = [
    "SROC_METHODS",
    "LogitVariances",
    "logit",
    "invlogit",
    "likelihood_ratios",
    "hsroc_from_bivariate",
    "bivariate_from_hsroc",
    "sroc_coefficients",
    "sroc_curve",
    "auc_sroc",
    "partial_auc",
    "ellipse_points",
    "confidence_region",
    "predictive_draws",
    "prediction_region",
    "continuity_correction",
    "logit_variances",
    "link_variances",
    "typical_within_variance",
    "expected_within_variance",
    "i2_univariate",
    "i2_bivariate",
    "posttest_probability",
    "fagan",
    "deeks_test",
    "total_covariance",
    "sroc_areas",
    "i2_statistics",
]

#: Names accepted by the ``method`` argument of :func:`sroc_curve` and :func:`auc_sroc`.
SROC_METHODS: tuple[str, ...] = (
    "hsroc",
    "regression_se_on_sp",
    "regression_sp_on_se",
    "major_axis",
)

# Integration in t = logit(fpr) is truncated at |t| = _LOGIT_TAIL; the neglected area is below
# expit(-_LOGIT_TAIL) ~ 4e-17.
_LOGIT_TAIL = 37.0
# For the probit link the truncation is at |t| = _PROBIT_TAIL: Phi(-9) ~ 1e-19.
_PROBIT_TAIL = 9.0
_GL_ORDER = 10  # Gauss-Legendre order of each panel of the composite rule
_CHUNK_ELEMENTS = 2**22  # cap on the size of temporary (draws x nodes) arrays


# --------------------------------------------------------------------------------------------
# Basic transforms
# --------------------------------------------------------------------------------------------
def logit(p: ArrayLike) -> np.ndarray:
    """Compute the log-odds ``log(p / (1 - p))``.

    Parameters
    ----------
    p : array_like
        Probabilities in [0, 1]; 0 and 1 map to -inf and +inf.

    Returns
    -------
    numpy.ndarray
        ``scipy.special.logit(p)``, same shape as ``p``.
    """
    return np.asarray(special.logit(np.asarray(p, dtype=float)))


def invlogit(x: ArrayLike) -> np.ndarray:
    """Compute the inverse logit (logistic function) ``1 / (1 + exp(-x))``.

    Parameters
    ----------
    x : array_like
        Log-odds.

    Returns
    -------
    numpy.ndarray
        ``scipy.special.expit(x)``, same shape as ``x``.
    """
    return np.asarray(special.expit(np.asarray(x, dtype=float)))


def _asfloat(*arrays: ArrayLike) -> list[np.ndarray]:
    """Convert to float arrays and broadcast them to a common shape."""
    return [np.asarray(a, dtype=float) for a in np.broadcast_arrays(*arrays)]


def _check_level(level: float) -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise SpecError(f"level must lie strictly between 0 and 1, got {level!r}")
    return level


# --------------------------------------------------------------------------------------------
# Likelihood ratios
# --------------------------------------------------------------------------------------------
def likelihood_ratios(se: ArrayLike, sp: ArrayLike) -> dict[str, np.ndarray]:
    """Compute the positive and negative likelihood ratios and the diagnostic odds ratio.

    ``LR+ = se / (1 - sp)``, ``LR- = (1 - se) / sp`` and
    ``DOR = LR+ / LR- = se * sp / ((1 - se) * (1 - sp))``.

    Computing these per posterior draw (from draws of ``se`` and ``sp``) gives their posterior
    distributions, as recommended by Zwinderman & Bossuyt (2008).

    Parameters
    ----------
    se, sp : array_like
        Sensitivity and specificity (probabilities), broadcast against each other.

    Returns
    -------
    dict of numpy.ndarray
        Keys ``lr_positive``, ``lr_negative`` and ``dor``.

    References
    ----------
    Deeks JJ, Altman DG. Diagnostic tests 4: likelihood ratios. BMJ 2004;329:168-169.
    Zwinderman AH, Bossuyt PM. We should not pool diagnostic likelihood ratios in systematic
    reviews. Stat Med 2008;27:687-697.
    """
    se, sp = _asfloat(se, sp)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr_pos = se / (1.0 - sp)
        lr_neg = (1.0 - se) / sp
        dor = lr_pos / lr_neg
    return {"lr_positive": lr_pos, "lr_negative": lr_neg, "dor": dor}


# --------------------------------------------------------------------------------------------
# HSROC <-> bivariate
# --------------------------------------------------------------------------------------------
def hsroc_from_bivariate(
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
) -> dict[str, np.ndarray]:
    r"""Convert bivariate-model parameters to Rutter-Gatsonis HSROC parameters.

    The HSROC model (Rutter & Gatsonis 2001) for study *i* is
    ``logit(pi_ij) = (theta_i + alpha_i * X_ij) * exp(-beta * X_ij)`` with ``X = +1/2`` for the
    diseased (``pi = se``) and ``X = -1/2`` for the non-diseased (``pi = fpr``),
    ``theta_i ~ N(Theta, sigma2_theta)`` and ``alpha_i ~ N(Lambda, sigma2_alpha)`` independent.
    Without covariates it is the same model as the bivariate model on
    ``(logit se, logit sp)`` (Harbord et al. 2007). With
    :math:`\mu_A` = ``mu_se``, :math:`\mu_B` = ``mu_sp``, :math:`\sigma_A` = ``tau_se``,
    :math:`\sigma_B` = ``tau_sp`` and :math:`\sigma_{AB} = \rho\sigma_A\sigma_B`:

    .. math::

        \beta &= \log(\sigma_B / \sigma_A) \\
        \Theta &= \tfrac12\left[(\sigma_B/\sigma_A)^{1/2}\mu_A
                  - (\sigma_A/\sigma_B)^{1/2}\mu_B\right] \\
        \Lambda &= (\sigma_B/\sigma_A)^{1/2}\mu_A + (\sigma_A/\sigma_B)^{1/2}\mu_B \\
        \sigma^2_\theta &= \tfrac12(\sigma_A\sigma_B - \sigma_{AB}) \\
        \sigma^2_\alpha &= 2(\sigma_A\sigma_B + \sigma_{AB})

    These follow from ``theta = (e^{beta/2} logit se + e^{-beta/2} logit fpr) / 2`` and
    ``alpha = e^{beta/2} logit se - e^{-beta/2} logit fpr`` and agree with
    ``mada:::calc_hsroc_coef`` (which works on ``(logit se, logit fpr)``, i.e. with the sign of
    ``mu_B`` and ``sigma_AB`` flipped). Note the square-root ratio multiplying ``mu_A`` in
    ``Theta`` is ``(sigma_B/sigma_A)^{1/2}``, the same as in ``Lambda``.

    Parameters
    ----------
    mu_se, mu_sp, tau_se, tau_sp, rho : array_like
        Bivariate parameters (draws), broadcast against each other.

    Returns
    -------
    dict of numpy.ndarray
        Keys ``Lambda`` (accuracy), ``Theta`` (threshold), ``beta`` (shape/asymmetry),
        ``sigma2_alpha`` and ``sigma2_theta``.

    References
    ----------
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    Rutter CM, Gatsonis CA. A hierarchical regression approach to meta-analysis of diagnostic
    test accuracy evaluations. Stat Med 2001;20:2865-2884.
    """
    mu_a, mu_b, s_a, s_b, r = _asfloat(mu_se, mu_sp, tau_se, tau_sp, rho)
    s_ab = r * s_a * s_b
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = s_b / s_a
        beta = np.log(ratio)
        sq = np.sqrt(ratio)
        theta = 0.5 * (sq * mu_a - mu_b / sq)
        lam = sq * mu_a + mu_b / sq
    return {
        "Lambda": lam,
        "Theta": theta,
        "beta": beta,
        "sigma2_alpha": 2.0 * (s_a * s_b + s_ab),
        "sigma2_theta": 0.5 * (s_a * s_b - s_ab),
    }


def bivariate_from_hsroc(
    Lambda: ArrayLike,  # noqa: N803 (the paper's notation)
    Theta: ArrayLike,  # noqa: N803
    beta: ArrayLike,
    sigma2_alpha: ArrayLike,
    sigma2_theta: ArrayLike,
) -> dict[str, np.ndarray]:
    r"""Convert Rutter-Gatsonis HSROC parameters to bivariate-model parameters.

    Inverse of :func:`hsroc_from_bivariate` (Harbord et al. 2007):

    .. math::

        \mu_A &= e^{-\beta/2}(\Theta + \Lambda/2), \quad
        \mu_B = -e^{\beta/2}(\Theta - \Lambda/2) \\
        \sigma^2_A &= e^{-\beta}(\sigma^2_\theta + \sigma^2_\alpha/4), \quad
        \sigma^2_B = e^{\beta}(\sigma^2_\theta + \sigma^2_\alpha/4) \\
        \sigma_{AB} &= \sigma^2_\alpha/4 - \sigma^2_\theta

    Parameters
    ----------
    Lambda, Theta, beta, sigma2_alpha, sigma2_theta : array_like
        HSROC parameters (draws), broadcast against each other.

    Returns
    -------
    dict of numpy.ndarray
        Keys ``mu_se``, ``mu_sp``, ``tau_se``, ``tau_sp`` and ``rho``.

    References
    ----------
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    """
    lam, th, b, s2a, s2t = _asfloat(Lambda, Theta, beta, sigma2_alpha, sigma2_theta)
    total = s2t + 0.25 * s2a
    tau_se = np.sqrt(np.exp(-b) * total)
    tau_sp = np.sqrt(np.exp(b) * total)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (0.25 * s2a - s2t) / total
    return {
        "mu_se": np.exp(-b / 2.0) * (th + 0.5 * lam),
        "mu_sp": -np.exp(b / 2.0) * (th - 0.5 * lam),
        "tau_se": tau_se,
        "tau_sp": tau_sp,
        "rho": rho,
    }


# --------------------------------------------------------------------------------------------
# SROC curves
# --------------------------------------------------------------------------------------------
def _check_method(method: str) -> str:
    if method not in SROC_METHODS:
        raise SpecError(f"method must be one of {SROC_METHODS}, got {method!r}")
    return method


def sroc_coefficients(
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    *,
    method: str = "hsroc",
) -> dict[str, np.ndarray]:
    r"""Compute intercept and slope of an SROC line on the logit scale.

    Every SROC curve offered here is a straight line in logit space,
    ``logit(se) = intercept + slope * logit(fpr)``, that passes through the summary point
    ``(logit fpr, logit se) = (-mu_sp, mu_se)``; hence ``intercept = mu_se + slope * mu_sp``.
    The slopes (with respect to ``logit fpr = -logit sp``) are:

    ``"hsroc"``
        Rutter-Gatsonis HSROC curve (Harbord et al. 2007):
        ``logit(se) = Lambda * exp(-beta/2) + exp(-beta) * logit(fpr)``, i.e.
        ``slope = exp(-beta) = tau_se / tau_sp``, whatever the sign of ``rho``. This is the
        curve obtained by fixing the accuracy ``alpha`` at ``Lambda`` and letting the threshold
        ``theta`` vary; in bivariate terms it is the "geometric mean" line through the summary
        point. It is the default of ``mada::sroc`` (``type = "ruttergatsonis"``) and the curve
        of Stata's ``metandi``.
    ``"regression_se_on_sp"``
        Conditional mean ``E[logit se | logit sp]`` under the between-study normal
        distribution: ``slope = -rho * tau_se / tau_sp`` (``mada``'s ``type = "naive"``).
        Increasing in ``fpr`` only if ``rho < 0``.
    ``"regression_sp_on_se"``
        The conditional mean ``E[logit sp | logit se] = mu_sp + rho tau_sp / tau_se
        (logit se - mu_se)`` solved for ``logit se``: ``slope = -tau_se / (rho * tau_sp)``;
        ``nan`` when ``rho == 0`` (a vertical line).
    ``"major_axis"``
        Major axis of the between-study covariance ellipse in the
        ``(logit fpr, logit se)`` plane, whose covariance is
        ``[[tau_sp**2, -rho tau_se tau_sp], [-rho tau_se tau_sp, tau_se**2]]``; the axis
        angle is ``phi = atan2(2 s_xy, s_xx - s_yy) / 2`` and ``slope = tan(phi)``
        (``nan`` for a vertical axis). Unlike the others, this line is not invariant to
        rescaling the axes.

    Parameters
    ----------
    mu_se, mu_sp, tau_se, tau_sp, rho : array_like
        Bivariate parameters (draws), broadcast against each other.
    method : {"hsroc", "regression_se_on_sp", "regression_sp_on_se", "major_axis"}
        Which line.

    Returns
    -------
    dict of numpy.ndarray
        Keys ``intercept`` and ``slope``, each of the broadcast parameter shape.

    References
    ----------
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    Arends LR, Hamza TH, van Houwelingen JC, Heijenbrok-Kal MH, Hunink MGM, Stijnen T.
    Bivariate random effects meta-analysis of ROC curves. Med Decis Making 2008;28:621-638.
    Doebler P, Holling H. Meta-analysis of diagnostic accuracy with mada. R package vignette.
    """
    _check_method(method)
    mu_a, mu_b, s_a, s_b, r = _asfloat(mu_se, mu_sp, tau_se, tau_sp, rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "hsroc":
            h = hsroc_from_bivariate(mu_a, mu_b, s_a, s_b, r)
            slope = np.exp(-h["beta"])
            intercept = h["Lambda"] * np.exp(-h["beta"] / 2.0)
            return {"intercept": intercept, "slope": slope}
        if method == "regression_se_on_sp":
            slope = -r * s_a / s_b
        elif method == "regression_sp_on_se":
            slope = np.where(r == 0.0, np.nan, -s_a / (r * s_b))
        else:  # major_axis
            s_xx, s_yy, s_xy = s_b**2, s_a**2, -r * s_a * s_b
            phi = 0.5 * np.arctan2(2.0 * s_xy, s_xx - s_yy)
            cos = np.cos(phi)
            slope = np.where(np.abs(cos) < 1e-12, np.nan, np.sin(phi) / cos)
        intercept = mu_a + slope * mu_b
    return {"intercept": np.asarray(intercept), "slope": np.asarray(slope)}


def sroc_curve(
    fpr: ArrayLike,
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    *,
    method: str = "hsroc",
    link: str = "logit",
) -> np.ndarray:
    """Compute the expected sensitivity on an SROC curve at each false-positive rate.

    ``se(fpr) = invlogit(intercept + slope * logit(fpr))`` with the line of
    :func:`sroc_coefficients` (see there for the definition of each ``method``). For
    ``method="hsroc"`` this is the Rutter-Gatsonis curve
    ``logit(se) = Lambda * exp(-beta/2) + exp(-beta) * logit(fpr)`` (Harbord et al. 2007).
    With ``link="probit"``: ``se(fpr) = Phi(intercept + slope * Phi^{-1}(fpr))``, the
    parameters being those of a probit model.

    Parameters
    ----------
    fpr : array_like
        1-D grid of false-positive rates in [0, 1].
    mu_se, mu_sp, tau_se, tau_sp, rho : array_like
        Bivariate parameters (draws), broadcast against each other to shape ``P``.
    method : {"hsroc", "regression_se_on_sp", "regression_sp_on_se", "major_axis"}
        Which SROC line.
    link : {"logit", "probit"}
        Link function of the model the parameters come from.

    Returns
    -------
    numpy.ndarray
        Sensitivities of shape ``P + (len(fpr),)``.

    References
    ----------
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    """
    grid = np.asarray(fpr, dtype=float)
    if grid.ndim != 1:
        raise SpecError(f"fpr must be a 1-D grid, got shape {grid.shape}")
    if np.any((grid < 0.0) | (grid > 1.0)):
        raise SpecError("fpr values must lie in [0, 1]")
    lk.check_link(link)
    coef = sroc_coefficients(mu_se, mu_sp, tau_se, tau_sp, rho, method=method)
    with np.errstate(invalid="ignore", divide="ignore"):
        eta = coef["intercept"][..., None] + coef["slope"][..., None] * lk.forward(grid, link)
    return lk.inverse(eta, link)


# --------------------------------------------------------------------------------------------
# Area under the SROC curve
# --------------------------------------------------------------------------------------------
def _link_quadrature(
    lo: float, hi: float, n_grid: int, link: str = "logit"
) -> tuple[np.ndarray, np.ndarray]:
    """Build nodes ``t`` and weights for integrating ``f(fpr) dfpr`` over ``[lo, hi]``.

    Substituting ``fpr = F(t)`` (``F`` the inverse link) gives ``dfpr = F'(t) dt``, for logit
    ``expit(t) (1 - expit(t)) dt``; the t-interval (truncated at +-_LOGIT_TAIL, or
    +-_PROBIT_TAIL for probit) is split into equal panels, each integrated with a
    Gauss-Legendre rule, and the weights include the Jacobian.
    """
    tail = _LOGIT_TAIL if link == "logit" else _PROBIT_TAIL
    t_lo = max(float(lk.forward(lo, link)), -tail) if lo > 0.0 else -tail
    t_hi = min(float(lk.forward(hi, link)), tail) if hi < 1.0 else tail
    n_panels = max(1, int(np.ceil(n_grid / _GL_ORDER)))
    x, w = np.polynomial.legendre.leggauss(_GL_ORDER)
    edges = np.linspace(t_lo, t_hi, n_panels + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[:-1] + edges[1:])
    t = (mid[:, None] + half[:, None] * x[None, :]).ravel()
    wt = (half[:, None] * w[None, :]).ravel()
    return t, wt * lk.density(t, link)


def _integrate_sroc(
    params: tuple[ArrayLike, ...],
    method: str,
    lo: float,
    hi: float,
    n_grid: int,
    link: str = "logit",
) -> np.ndarray:
    coef = sroc_coefficients(*params, method=method)
    a, b = np.broadcast_arrays(coef["intercept"], coef["slope"])
    shape = a.shape
    a, b = a.ravel(), b.ravel()
    t, w = _link_quadrature(lo, hi, n_grid, link)
    out = np.empty(a.size)
    step = max(1, _CHUNK_ELEMENTS // t.size)
    for start in range(0, a.size, step):
        sl = slice(start, start + step)
        vals = lk.inverse(a[sl, None] + b[sl, None] * t[None, :], link)
        out[sl] = vals @ w
    return out.reshape(shape)


def _check_range(fpr_range: tuple[float, float]) -> tuple[float, float]:
    lo, hi = (float(v) for v in fpr_range)
    if not 0.0 <= lo < hi <= 1.0:
        raise SpecError(f"fpr_range must satisfy 0 <= lo < hi <= 1, got {fpr_range!r}")
    return lo, hi


def auc_sroc(
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    *,
    method: str = "hsroc",
    fpr_range: tuple[float, float] = (0.0, 1.0),
    n_grid: int = 2000,
    link: str = "logit",
) -> np.ndarray:
    r"""Compute the area under the SROC curve for each draw.

    .. math:: \mathrm{AUC} = \int_{lo}^{hi} \mathrm{se}(x)\,dx
              = \int_{\mathrm{logit}(lo)}^{\mathrm{logit}(hi)}
                \mathrm{expit}(a + b t)\,\mathrm{expit}(t)\{1 - \mathrm{expit}(t)\}\,dt

    where ``logit(se) = a + b logit(fpr)`` is the SROC line of :func:`sroc_coefficients`.
    The t-integral is truncated at ``|t| = 37`` (neglected area < 1e-16) and computed with a
    composite Gauss-Legendre rule of ``n_grid`` nodes (order-10 panels); the default is accurate
    to better than 1e-8 for slopes up to about 20. Unlike ``mada::AUC`` (trapezoid over
    ``fpr = 0.01, ..., 0.99``), the tails near 0 and 1 are included. With ``link="probit"``
    the substitution is ``t = Phi^{-1}(fpr)`` (integrand ``Phi(a + b t) phi(t)``, the line
    being ``Phi^{-1}(se) = a + b Phi^{-1}(fpr)``), truncated at ``|t| = 9`` (neglected area
    < 1e-18).

    Parameters
    ----------
    mu_se, mu_sp, tau_se, tau_sp, rho : array_like
        Bivariate parameters (draws), broadcast against each other to shape ``P``.
    method : {"hsroc", "regression_se_on_sp", "regression_sp_on_se", "major_axis"}
        Which SROC line (see :func:`sroc_coefficients`).
    fpr_range : tuple of float
        Integration range ``(lo, hi)`` of the false-positive rate, ``0 <= lo < hi <= 1``.
    n_grid : int
        Number of quadrature nodes.
    link : {"logit", "probit"}
        Link function of the model the parameters come from.

    Returns
    -------
    numpy.ndarray
        AUC per draw, shape ``P``.

    References
    ----------
    Walter SD. Properties of the summary receiver operating characteristic (SROC) curve for
    diagnostic test data. Stat Med 2002;21:1237-1256.
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    """
    _check_method(method)
    lk.check_link(link)
    lo, hi = _check_range(fpr_range)
    if int(n_grid) < _GL_ORDER:
        raise SpecError(f"n_grid must be at least {_GL_ORDER}, got {n_grid!r}")
    return _integrate_sroc((mu_se, mu_sp, tau_se, tau_sp, rho), method, lo, hi, int(n_grid), link)


def partial_auc(
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    *,
    fpr_range: tuple[float, float],
    normalize: bool = False,
    method: str = "hsroc",
    n_grid: int = 2000,
    link: str = "logit",
) -> np.ndarray:
    r"""Compute the partial area under the SROC curve over a false-positive-rate range.

    ``pAUC = integral_{lo}^{hi} se(x) dx`` (see :func:`auc_sroc` for the integration), and with
    ``normalize=True`` ``pAUC / (hi - lo)``, the mean sensitivity over the range (0.5 * (lo + hi)
    for the chance diagonal).

    Parameters
    ----------
    mu_se, mu_sp, tau_se, tau_sp, rho : array_like
        Bivariate parameters (draws), broadcast against each other to shape ``P``.
    fpr_range : tuple of float
        ``(lo, hi)`` with ``0 <= lo < hi <= 1``; ``mada`` uses the range of the observed FPRs.
    normalize : bool
        Divide by ``hi - lo``.
    method : {"hsroc", "regression_se_on_sp", "regression_sp_on_se", "major_axis"}
        Which SROC line (see :func:`sroc_coefficients`).
    n_grid : int
        Number of quadrature nodes.
    link : {"logit", "probit"}
        Link function of the model the parameters come from.

    Returns
    -------
    numpy.ndarray
        Partial AUC per draw, shape ``P``.

    References
    ----------
    McClish DK. Analyzing a portion of the ROC curve. Med Decis Making 1989;9:190-195.
    Doebler P, Holling H. Meta-analysis of diagnostic accuracy with mada. R package vignette.
    """
    lo, hi = _check_range(fpr_range)
    out = auc_sroc(
        mu_se,
        mu_sp,
        tau_se,
        tau_sp,
        rho,
        method=method,
        fpr_range=(lo, hi),
        n_grid=n_grid,
        link=link,
    )
    return out / (hi - lo) if normalize else out


# --------------------------------------------------------------------------------------------
# Confidence and prediction regions
# --------------------------------------------------------------------------------------------
def ellipse_points(
    mean: ArrayLike,
    cov: ArrayLike,
    *,
    level: float = 0.95,
    n_points: int = 200,
) -> np.ndarray:
    r"""Compute points on the boundary of a normal-theory ellipse.

    The ellipse is :math:`\{x : (x - m)^\top S^{-1} (x - m) \le \chi^2_{2}(\text{level})\}`;
    its boundary is ``m + r A u(phi)`` with ``r = sqrt(chi2_2(level))``, ``A A' = S`` (from the
    eigen-decomposition, so singular ``S`` is allowed) and ``u`` the unit circle. The first and
    last points coincide so the curve is closed.

    Parameters
    ----------
    mean : array_like
        Centre, shape ``(..., 2)``.
    cov : array_like
        Covariance matrix, shape ``(..., 2, 2)``, symmetric positive semi-definite.
    level : float
        Coverage probability of the ellipse under normality.
    n_points : int
        Number of boundary points.

    Returns
    -------
    numpy.ndarray
        Boundary points, shape ``(..., n_points, 2)``; columns follow the order of ``mean``.

    References
    ----------
    Johnson RA, Wichern DW. Applied Multivariate Statistical Analysis, 6th ed., section 4.2.
    """
    level = _check_level(level)
    m = np.asarray(mean, dtype=float)
    s = np.asarray(cov, dtype=float)
    if m.shape[-1:] != (2,) or s.shape[-2:] != (2, 2):
        raise SpecError(f"mean must end in (2,) and cov in (2, 2); got {m.shape}, {s.shape}")
    if int(n_points) < 3:
        raise SpecError(f"n_points must be at least 3, got {n_points!r}")
    s = 0.5 * (s + np.swapaxes(s, -1, -2))
    w, v = np.linalg.eigh(s)
    a = v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]  # A = V diag(sqrt(w))
    r = np.sqrt(sps.chi2.ppf(level, df=2))
    phi = np.linspace(0.0, 2.0 * np.pi, int(n_points))
    circle = np.stack([np.cos(phi), np.sin(phi)], axis=-1)  # (n, 2)
    pts = np.einsum("nj,...ij->...ni", circle, a)
    return m[..., None, :] + r * pts


def _to_fpr_se(points_se_sp: np.ndarray, scale: str, link: str = "logit") -> np.ndarray:
    """Map points (link se, link sp) to (fpr, se) or (link fpr, link se).

    ``scale="link"`` returns the link scale; ``"logit"`` is its name for the logit link and is
    refused for other links (use ``"link"``). ``link(fpr) = -link(sp)`` (symmetric links).
    """
    lk.check_link(link)
    l_se = points_se_sp[..., 0]
    l_fpr = -points_se_sp[..., 1]
    if scale == "logit" and link != "logit":
        raise SpecError(f"scale='logit' is not available for the {link} link; use scale='link'")
    if scale in ("logit", "link"):
        return np.stack([l_fpr, l_se], axis=-1)
    if scale == "probability":
        return np.stack([lk.inverse(l_fpr, link), lk.inverse(l_se, link)], axis=-1)
    raise SpecError(f"scale must be 'probability', 'link' or 'logit', got {scale!r}")


def confidence_region(
    draws_mu_se: ArrayLike,
    draws_mu_sp: ArrayLike,
    *,
    level: float = 0.95,
    n_points: int = 200,
    scale: str = "probability",
    link: str = "logit",
) -> np.ndarray:
    """Compute the credible (confidence) region of the summary point.

    Normal approximation to the joint posterior of ``(mu_se, mu_sp)``: the ellipse of
    :func:`ellipse_points` with the posterior mean and covariance of the draws (all draws
    pooled, whatever their shape), mapped to the ROC plane.

    Parameters
    ----------
    draws_mu_se, draws_mu_sp : array_like
        Posterior draws of the mean logit sensitivity and specificity (same shape).
    level : float
        Credible level.
    n_points : int
        Number of boundary points.
    scale : {"probability", "link", "logit"}
        Return ``(fpr, se)`` or ``(link fpr, link se)`` (``"logit"``: the link scale of the
        logit link).
    link : {"logit", "probit"}
        Link function of the model; the ellipse is built on its scale and mapped back with
        its inverse.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_points, 2)``, columns (false-positive rate, sensitivity).

    References
    ----------
    Reitsma JB, Glas AS, Rutjes AWS, Scholten RJPM, Bossuyt PM, Zwinderman AH. Bivariate
    analysis of sensitivity and specificity produces informative summary measures in
    diagnostic reviews. J Clin Epidemiol 2005;58:982-990.
    """
    x, y = np.broadcast_arrays(np.asarray(draws_mu_se, float), np.asarray(draws_mu_sp, float))
    data = np.stack([x.ravel(), y.ravel()])
    if data.shape[1] < 3:
        raise SpecError("confidence_region needs at least 3 draws")
    pts = ellipse_points(data.mean(axis=1), np.cov(data), level=level, n_points=n_points)
    return _to_fpr_se(pts, scale, link)


def predictive_draws(
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    *,
    seed: int | np.random.Generator | None = None,
    logit_scale: bool = False,
    link: str = "logit",
) -> tuple[np.ndarray, np.ndarray]:
    """Draw a new study's sensitivity and specificity from the posterior predictive distribution.

    For every posterior draw, ``(logit se_new, logit sp_new) ~ N(mu, Sigma)`` with
    ``mu = (mu_se, mu_sp)`` and
    ``Sigma = [[tau_se**2, rho tau_se tau_sp], [rho tau_se tau_sp, tau_sp**2]]``, simulated as
    ``logit se = mu_se + tau_se z1`` and
    ``logit sp = mu_sp + tau_sp (rho z1 + sqrt(1 - rho**2) z2)``.

    Parameters
    ----------
    mu_se, mu_sp, tau_se, tau_sp, rho : array_like
        Bivariate parameters (draws), broadcast against each other to shape ``P``.
    seed : int, numpy.random.Generator or None
        Seed or generator passed to :func:`numpy.random.default_rng`.
    logit_scale : bool
        Return the linear predictors (logits for the logit link) instead of probabilities.
    link : {"logit", "probit"}
        Link function of the model (inverse applied to the simulated linear predictors).

    Returns
    -------
    tuple of numpy.ndarray
        ``(se_new, sp_new)``, each of shape ``P``.

    References
    ----------
    Riley RD, Higgins JPT, Deeks JJ. Interpretation of random effects meta-analyses. BMJ
    2011;342:d549.
    """
    mu_a, mu_b, s_a, s_b, r = _asfloat(mu_se, mu_sp, tau_se, tau_sp, rho)
    rng = np.random.default_rng(seed)
    z1 = rng.standard_normal(mu_a.shape)
    z2 = rng.standard_normal(mu_a.shape)
    l_se = mu_a + s_a * z1
    l_sp = mu_b + s_b * (r * z1 + np.sqrt(np.clip(1.0 - r**2, 0.0, None)) * z2)
    lk.check_link(link)
    if logit_scale:
        return l_se, l_sp
    return lk.inverse(l_se, link), lk.inverse(l_sp, link)


def prediction_region(
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    *,
    level: float = 0.95,
    n_points: int = 200,
    seed: int | np.random.Generator | None = None,
    n_per_draw: int = 1,
    method: str = "simulate",
    scale: str = "probability",
    link: str = "logit",
) -> np.ndarray:
    r"""Compute the prediction region for the (se, sp) of a new study.

    Normal approximation to the posterior predictive distribution of a new study's
    ``theta_new = (logit se, logit sp)``, where ``theta_new | mu, Sigma ~ N(mu, Sigma)`` and
    ``(mu, Sigma)`` runs over the posterior draws. With ``method="simulate"`` (default),
    ``n_per_draw`` predictive draws are simulated per posterior draw
    (:func:`predictive_draws`) and the ellipse of :func:`ellipse_points` is built from their
    mean and covariance. With ``method="moments"`` the same mean and covariance are computed
    exactly by the law of total covariance,
    :math:`E[\theta_{new}] = E[\mu]` and
    :math:`\mathrm{Cov}[\theta_{new}] = \mathrm{Cov}[\mu] + E[\Sigma]` (no Monte Carlo error).
    Both account for posterior uncertainty in ``mu`` and ``Sigma`` (the Bayesian analogue of
    the ``Sigma + Var(mu_hat)`` region of Harbord et al. 2007).

    Parameters
    ----------
    mu_se, mu_sp, tau_se, tau_sp, rho : array_like
        Bivariate parameters (draws), broadcast against each other; all draws are pooled.
    level : float
        Predictive level.
    n_points : int
        Number of boundary points.
    seed : int, numpy.random.Generator or None
        Random seed for ``method="simulate"``.
    n_per_draw : int
        Predictive draws per posterior draw for ``method="simulate"``.
    method : {"simulate", "moments"}
        How the predictive mean and covariance are obtained.
    scale : {"probability", "link", "logit"}
        Return ``(fpr, se)`` or ``(link fpr, link se)`` (``"logit"``: the link scale of the
        logit link).
    link : {"logit", "probit"}
        Link function of the model (the ellipse is mapped back with its inverse).

    Returns
    -------
    numpy.ndarray
        Shape ``(n_points, 2)``, columns (false-positive rate, sensitivity).

    References
    ----------
    Harbord RM, Deeks JJ, Egger M, Whiting P, Sterne JAC. A unification of models for
    meta-analysis of diagnostic accuracy studies. Biostatistics 2007;8:239-251.
    Riley RD, Higgins JPT, Deeks JJ. Interpretation of random effects meta-analyses. BMJ
    2011;342:d549.
    """
    mu_a, mu_b, s_a, s_b, r = (a.ravel() for a in _asfloat(mu_se, mu_sp, tau_se, tau_sp, rho))
    if method == "simulate":
        k = int(n_per_draw)
        if k < 1:
            raise SpecError(f"n_per_draw must be >= 1, got {n_per_draw!r}")
        rep = [np.repeat(a, k) for a in (mu_a, mu_b, s_a, s_b, r)]
        l_se, l_sp = predictive_draws(*rep, seed=seed, logit_scale=True)
        data = np.stack([l_se, l_sp])
        if data.shape[1] < 3:
            raise SpecError("prediction_region needs at least 3 predictive draws")
        mean, cov = data.mean(axis=1), np.cov(data)
    elif method == "moments":
        mus = np.stack([mu_a, mu_b])
        mean = mus.mean(axis=1)
        cov_mu = np.cov(mus) if mus.shape[1] > 1 else np.zeros((2, 2))
        c = np.mean(r * s_a * s_b)
        cov = cov_mu + np.array([[np.mean(s_a**2), c], [c, np.mean(s_b**2)]])
    else:
        raise SpecError(f"method must be 'simulate' or 'moments', got {method!r}")
    pts = ellipse_points(mean, cov, level=level, n_points=n_points)
    return _to_fpr_se(pts, scale, link)


# --------------------------------------------------------------------------------------------
# Count data helpers (classical statistics)
# --------------------------------------------------------------------------------------------
def _counts(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike, tn: ArrayLike) -> list[np.ndarray]:
    names = ("tp", "fp", "fn", "tn")
    arrays = [np.atleast_1d(np.asarray(a, dtype=float)) for a in (tp, fp, fn, tn)]
    shape = arrays[0].shape
    for name, a in zip(names, arrays, strict=True):
        if a.ndim != 1 or a.shape != shape:
            raise DTADataError(
                f"column {name}: counts must be 1-D arrays of equal length, got shape {a.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(a) | (a < 0))
        if bad.size:
            raise DTADataError(f"row {int(bad[0])}, column {name}: counts must be finite and >= 0")
    return arrays


def continuity_correction(
    tp: ArrayLike,
    fp: ArrayLike,
    fn: ArrayLike,
    tn: ArrayLike,
    *,
    value: float = 0.5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Add ``value`` to all four cells of the studies that have a zero cell.

    Used only for the descriptive, classical statistics of this module (study-level logit
    variances for I^2 and Deeks' test), never in a model likelihood: the binomial likelihood
    handles zero cells exactly.

    Parameters
    ----------
    tp, fp, fn, tn : array_like
        Per-study 2x2 counts, 1-D arrays of equal length.
    value : float
        Amount added to each cell of an affected study.

    Returns
    -------
    tuple of numpy.ndarray
        ``(tp, fp, fn, tn, corrected)``: float counts and the boolean mask of corrected studies.
    """
    tp_, fp_, fn_, tn_ = _counts(tp, fp, fn, tn)
    zero = (tp_ == 0) | (fp_ == 0) | (fn_ == 0) | (tn_ == 0)
    add = np.where(zero, float(value), 0.0)
    return tp_ + add, fp_ + add, fn_ + add, tn_ + add, zero


class LogitVariances(NamedTuple):
    """Per-study within-study variances of logit sensitivity and logit specificity."""

    se: np.ndarray
    sp: np.ndarray


def logit_variances(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike, tn: ArrayLike) -> LogitVariances:
    """Compute the per-study (delta-method) variances of logit sensitivity and specificity.

    ``Var(logit se_i) = 1/TP_i + 1/FN_i`` and ``Var(logit sp_i) = 1/TN_i + 1/FP_i``, with 0.5
    added to all four cells of a study only when one of its cells is zero
    (:func:`continuity_correction`). These are for the heterogeneity statistics
    (:func:`typical_within_variance`, :func:`i2_univariate`) only, never the model likelihood.

    Parameters
    ----------
    tp, fp, fn, tn : array_like
        Per-study 2x2 counts, 1-D arrays of equal length.

    Returns
    -------
    LogitVariances
        Named tuple ``(se, sp)`` of arrays of shape ``(k,)``.

    References
    ----------
    Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med
    2002;21:1539-1558.
    """
    tp_, fp_, fn_, tn_, _ = continuity_correction(tp, fp, fn, tn)
    return LogitVariances(se=1.0 / tp_ + 1.0 / fn_, sp=1.0 / tn_ + 1.0 / fp_)


def link_variances(
    tp: ArrayLike, fp: ArrayLike, fn: ArrayLike, tn: ArrayLike, *, link: str = "logit"
) -> LogitVariances:
    """Compute the per-study (delta-method) within-study variances on the link scale.

    For a proportion ``p = k / n`` the delta method gives
    ``Var(link(p)) = p (1 - p) / (n f(link(p))^2)`` with ``f = F'`` the density of the inverse
    link. For the logit link this is ``1 / (n p (1 - p))``, i.e. :func:`logit_variances`
    (returned exactly); for the probit link ``f`` is the standard normal density at
    ``Phi^{-1}(p)``. The same continuity correction is used (0.5 added to all four cells of a
    study with a zero cell). For the heterogeneity statistics only.

    Parameters
    ----------
    tp, fp, fn, tn : array_like
        Per-study 2x2 counts, 1-D arrays of equal length.
    link : {"logit", "probit"}
        Link function of the model.

    Returns
    -------
    LogitVariances
        Named tuple ``(se, sp)`` of arrays of shape ``(k,)`` (variances of link se, link sp).
    """
    lk.check_link(link)
    if link == "logit":
        return logit_variances(tp, fp, fn, tn)
    tp_, fp_, fn_, tn_, _ = continuity_correction(tp, fp, fn, tn)

    def var(k: np.ndarray, m: np.ndarray) -> np.ndarray:
        n = k + m
        p = k / n
        return p * (1.0 - p) / (n * lk.density(lk.forward(p, link), link) ** 2)

    return LogitVariances(se=var(tp_, fn_), sp=var(tn_, fp_))


def typical_within_variance(v: ArrayLike, *, axis: int = -1) -> np.ndarray:
    r"""Compute the Higgins-Thompson "typical" within-study variance.

    .. math:: s^2 = \frac{(k - 1)\sum_i w_i}{(\sum_i w_i)^2 - \sum_i w_i^2},
              \qquad w_i = 1 / v_i

    Parameters
    ----------
    v : array_like
        Within-study variances of the ``k >= 2`` studies along ``axis``.
    axis : int
        Axis indexing the studies.

    Returns
    -------
    numpy.ndarray
        ``s^2`` with ``axis`` removed (a 0-d array for 1-D input).

    References
    ----------
    Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med
    2002;21:1539-1558, equation (9).
    """
    v = np.asarray(v, dtype=float)
    k = v.shape[axis]
    if k < 2:
        raise SpecError("typical_within_variance needs at least 2 studies")
    if np.any(v <= 0):
        raise SpecError("within-study variances must be positive")
    w = 1.0 / v
    sw = w.sum(axis=axis)
    return np.asarray((k - 1) * sw / (sw**2 - (w**2).sum(axis=axis)))


def expected_within_variance(
    mu: ArrayLike, tau2: ArrayLike, n: ArrayLike, *, link: str = "logit"
) -> np.ndarray:
    r"""Compute the model-based typical within-study variance of a logit proportion.

    Zhou & Dendukuri (2014) replace the Higgins-Thompson typical variance by its expectation
    under the binomial-normal model: with ``logit p_i ~ N(mu, tau2)`` and the
    within-study variance ``1 / (n_i p_i (1 - p_i))``,

    .. math:: E[\sigma^2] = \left(e^{\mu + \tau^2/2} + e^{-\mu + \tau^2/2} + 2\right)
              \frac{1}{k}\sum_{i=1}^{k} \frac{1}{n_i}

    (as implemented in Stata's ``metadta``/``metapreg``). Use ``n = TP + FN`` with
    ``(mu_se, tau_se**2)`` and ``n = TN + FP`` with ``(mu_sp, tau_sp**2)``.

    Parameters
    ----------
    mu, tau2 : array_like
        Mean and between-study variance of the logit proportion (draws), broadcast.
    n : array_like
        1-D array of per-study denominators.
    link : {"logit"}
        Only the logit link is supported: on the probit scale the within-study variance
        ``p (1 - p) / (n phi(Phi^{-1} p)^2)`` grows like ``exp(z^2 / 2)`` and its expectation
        over ``z ~ N(mu, tau2)`` is infinite for ``tau2 >= 1``; other links raise
        :class:`SpecError`.

    Returns
    -------
    numpy.ndarray
        Expected within-study variance, shape of the broadcast ``mu`` and ``tau2``.

    References
    ----------
    Zhou Y, Dendukuri N. Statistics for quantifying heterogeneity in univariate and bivariate
    meta-analyses of binary data: the case of meta-analyses of diagnostic accuracy. Stat Med
    2014;33:2701-2717.
    """
    mu_, t2 = _asfloat(mu, tau2)
    if link != "logit":
        raise SpecError(
            f"the Zhou-Dendukuri expected within-study variance is defined for the logit link "
            f"only, not {link!r} (for probit it is infinite once tau >= 1); use "
            "typical_within_variance(link_variances(..., link=...)) instead"
        )
    n_ = np.asarray(n, dtype=float)
    if n_.ndim != 1 or n_.size == 0 or np.any(n_ <= 0):
        raise SpecError("n must be a non-empty 1-D array of positive study sizes")
    mean_inv_n = float(np.mean(1.0 / n_))
    return (np.exp(mu_ + t2 / 2.0) + np.exp(-mu_ + t2 / 2.0) + 2.0) * mean_inv_n


def i2_univariate(tau2: ArrayLike, within_var: ArrayLike) -> np.ndarray:
    r"""Compute the univariate I^2 = tau^2 / (tau^2 + s^2).

    The proportion of the total variance of a logit proportion that is between-study
    variance, with ``s^2`` a typical within-study variance: Higgins & Thompson's
    (:func:`typical_within_variance`) or Zhou & Dendukuri's model-based one
    (:func:`expected_within_variance`). Evaluated per posterior draw of ``tau2``.

    Parameters
    ----------
    tau2 : array_like
        Between-study variance (draws), e.g. ``tau_se**2``.
    within_var : array_like
        Typical within-study variance (scalar or broadcastable to ``tau2``).

    Returns
    -------
    numpy.ndarray
        I^2 in [0, 1].

    References
    ----------
    Higgins JPT, Thompson SG. Quantifying heterogeneity in a meta-analysis. Stat Med
    2002;21:1539-1558.
    Zhou Y, Dendukuri N. Statistics for quantifying heterogeneity in univariate and bivariate
    meta-analyses of binary data: the case of meta-analyses of diagnostic accuracy. Stat Med
    2014;33:2701-2717.
    """
    t2, s2 = _asfloat(tau2, within_var)
    with np.errstate(divide="ignore", invalid="ignore"):
        return t2 / (t2 + s2)


def i2_bivariate(
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    s2_se: ArrayLike,
    s2_sp: ArrayLike,
    s_cov: ArrayLike = 0.0,
) -> np.ndarray:
    r"""Compute the bivariate I^2 of Zhou & Dendukuri (2014).

    The univariate ``tau^2 / (tau^2 + s^2)`` generalised with generalised variances
    (determinants): with between-study covariance
    ``Sigma = [[tau_se**2, rho tau_se tau_sp], [., tau_sp**2]]`` and typical within-study
    covariance ``S = [[s2_se, s_cov], [s_cov, s2_sp]]``,

    .. math:: I^2_{ZD} = \frac{|\Sigma|^{1/2}}{|\Sigma|^{1/2} + |S|^{1/2}}

    (as implemented in Stata's ``metadta``). It is 0 when ``Sigma`` is singular
    (``tau = 0`` or ``|rho| = 1``), tends to 1 as the between-study variances grow, and
    reduces to the univariate ``tau^2 / (tau^2 + s^2)`` when ``rho = s_cov = 0``,
    ``tau_se = tau_sp = tau`` and ``s2_se = s2_sp = s^2``. The within-study covariance is
    zero in DTA data (sensitivity and specificity come from different participants).

    Parameters
    ----------
    tau_se, tau_sp, rho : array_like
        Between-study parameters (draws), broadcast against each other.
    s2_se, s2_sp : array_like
        Typical within-study variances of logit se and logit sp
        (:func:`typical_within_variance` or :func:`expected_within_variance`).
    s_cov : array_like
        Typical within-study covariance, 0 by default.

    Returns
    -------
    numpy.ndarray
        Bivariate I^2 in [0, 1].

    References
    ----------
    Zhou Y, Dendukuri N. Statistics for quantifying heterogeneity in univariate and bivariate
    meta-analyses of binary data: the case of meta-analyses of diagnostic accuracy. Stat Med
    2014;33:2701-2717.
    Nyaga VN, Arbyn M. Metadta: a Stata command for meta-analysis and meta-regression of
    diagnostic test accuracy data - a tutorial. Arch Public Health 2022;80:95.
    """
    t_a, t_b, r, s_a, s_b, s_ab = _asfloat(tau_se, tau_sp, rho, s2_se, s2_sp, s_cov)
    det_between = np.clip(t_a**2 * t_b**2 * (1.0 - r**2), 0.0, None)
    det_within = s_a * s_b - s_ab**2
    if np.any(det_within <= 0):
        raise SpecError("the typical within-study covariance matrix must be positive definite")
    root_b = np.sqrt(det_between)
    return root_b / (root_b + np.sqrt(det_within))


# --------------------------------------------------------------------------------------------
# Post-test probabilities
# --------------------------------------------------------------------------------------------
def posttest_probability(pretest: ArrayLike, lr: ArrayLike) -> np.ndarray:
    r"""Compute post-test probabilities by Bayes' theorem in odds form.

    ``post-test odds = pre-test odds * LR``, computed in probability form as
    ``p' = LR p / (LR p + 1 - p)`` so that ``p = 0`` and ``p = 1`` are handled.

    The result is the outer combination of the two inputs: shape ``lr.shape + pretest.shape``
    (for example draws x pre-test grid); a scalar ``pretest`` gives ``lr.shape``.

    Parameters
    ----------
    pretest : array_like
        Pre-test probabilities (e.g. a grid of prevalences) in [0, 1].
    lr : array_like
        Likelihood ratios (draws).

    Returns
    -------
    numpy.ndarray
        Post-test probabilities of shape ``lr.shape + pretest.shape``.

    References
    ----------
    Fagan TJ. Nomogram for Bayes's theorem. N Engl J Med 1975;293:257.
    """
    p = np.asarray(pretest, dtype=float)
    if np.any((p < 0.0) | (p > 1.0)):
        raise SpecError("pretest probabilities must lie in [0, 1]")
    lr_ = np.asarray(lr, dtype=float)
    lr_ = lr_.reshape(lr_.shape + (1,) * p.ndim)
    with np.errstate(divide="ignore", invalid="ignore"):
        num = lr_ * p
        return num / (num + (1.0 - p))


def fagan(pretest: ArrayLike, se: ArrayLike, sp: ArrayLike) -> dict[str, np.ndarray]:
    """Compute the post-test probabilities after a positive and a negative test (Fagan nomogram).

    ``positive = posttest_probability(pretest, se / (1 - sp))`` and
    ``negative = posttest_probability(pretest, (1 - se) / sp)``.

    Parameters
    ----------
    pretest : array_like
        Pre-test probabilities in [0, 1].
    se, sp : array_like
        Sensitivity and specificity (draws), broadcast against each other to shape ``P``.

    Returns
    -------
    dict of numpy.ndarray
        Keys ``positive`` and ``negative`` (shape ``P + pretest.shape``) and
        ``lr_positive`` and ``lr_negative`` (shape ``P``).

    References
    ----------
    Fagan TJ. Nomogram for Bayes's theorem. N Engl J Med 1975;293:257.
    """
    lrs = likelihood_ratios(se, sp)
    return {
        "positive": posttest_probability(pretest, lrs["lr_positive"]),
        "negative": posttest_probability(pretest, lrs["lr_negative"]),
        "lr_positive": lrs["lr_positive"],
        "lr_negative": lrs["lr_negative"],
    }


# --------------------------------------------------------------------------------------------
# Deeks' funnel-plot asymmetry test
# --------------------------------------------------------------------------------------------
def deeks_test(
    tp: ArrayLike,
    fp: ArrayLike,
    fn: ArrayLike,
    tn: ArrayLike,
) -> dict[str, float | int | np.ndarray]:
    r"""Run Deeks' funnel-plot asymmetry test for small-study effects (classical, not Bayesian).

    Weighted least-squares regression of the log diagnostic odds ratio on
    ``1 / sqrt(ESS)`` with weights ``ESS``, where the effective sample size is
    ``ESS_i = 4 n1_i n0_i / (n1_i + n0_i)``, ``n1 = TP + FN`` (diseased) and
    ``n0 = FP + TN`` (non-diseased), both from the raw counts, and
    ``lnDOR_i = log(TP TN / (FP FN))`` with 0.5 added to all four cells of a study only when it
    has a zero cell. The slope is tested with a two-sided t test on ``k - 2`` degrees of
    freedom using the usual WLS standard error
    ``se(b) = sqrt(sigma2 [(X'WX)^{-1}]_{22})``, ``sigma2 = sum w_i e_i^2 / (k - 2)``
    (equivalent to Stata's ``regress lndor x [aweight = ess]``). Deeks et al. regard
    ``p < 0.10`` as evidence of asymmetry.

    Parameters
    ----------
    tp, fp, fn, tn : array_like
        Per-study 2x2 counts, 1-D arrays of equal length ``k >= 3``.

    Returns
    -------
    dict
        ``slope``, ``intercept``, ``se_slope``, ``se_intercept``, ``t``, ``df`` (``k - 2``),
        ``p_value`` (floats; ``df`` int) and for plotting the arrays ``x``
        (``1 / sqrt(ESS)``), ``y`` (lnDOR) and ``weights`` (ESS).

    References
    ----------
    Deeks JJ, Macaskill P, Irwig L. The performance of tests of publication bias and other
    sample size effects in systematic reviews of diagnostic test accuracy was assessed.
    J Clin Epidemiol 2005;58:882-893.
    """
    tp_raw, fp_raw, fn_raw, tn_raw = _counts(tp, fp, fn, tn)
    k = tp_raw.size
    if k < 3:
        raise SpecError(f"Deeks' test needs at least 3 studies, got {k}")
    n1 = tp_raw + fn_raw
    n0 = fp_raw + tn_raw
    if np.any(n1 <= 0) or np.any(n0 <= 0):
        row = int(np.flatnonzero((n1 <= 0) | (n0 <= 0))[0])
        raise DTADataError(
            f"row {row}, column tp/fn/fp/tn: a study has no diseased or no "
            "non-diseased participants"
        )
    ess = 4.0 * n1 * n0 / (n1 + n0)
    a, b, c, d, _ = continuity_correction(tp_raw, fp_raw, fn_raw, tn_raw)
    y = np.log(a) + np.log(d) - np.log(b) - np.log(c)
    x = 1.0 / np.sqrt(ess)
    fit = _weighted_line(x, y, ess)
    return {**fit, "x": x, "y": y, "weights": ess}


def _weighted_line(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, float | int]:
    """Fit ``y = intercept + slope * x`` by weighted least squares (closed form).

    Standard errors use the residual variance ``sum w e^2 / (k - 2)`` (weights known only up to
    a constant, as with analytic weights); the slope is tested with a two-sided t test.
    """
    k = x.size
    sw = w.sum()
    xbar = (w * x).sum() / sw
    ybar = (w * y).sum() / sw
    sxx = (w * (x - xbar) ** 2).sum()
    if not sxx > 0 or np.allclose(x, x[0], rtol=1e-12, atol=0.0):
        raise SpecError("the regression is undefined when all x values are equal")
    slope = (w * (x - xbar) * (y - ybar)).sum() / sxx
    intercept = ybar - slope * xbar
    resid = y - intercept - slope * x
    df = k - 2
    sigma2 = (w * resid**2).sum() / df
    se_slope = np.sqrt(sigma2 / sxx)
    se_intercept = np.sqrt(sigma2 * (1.0 / sw + xbar**2 / sxx))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = slope / se_slope
    return {
        "slope": float(slope),
        "intercept": float(intercept),
        "se_slope": float(se_slope),
        "se_intercept": float(se_intercept),
        "t": float(t),
        "df": int(df),
        "p_value": float(2.0 * sps.t.sf(np.abs(t), df)),
    }


# --------------------------------------------------------------------------------------------
# The summary quantities of the bivariate family, shared by DTAFit.summary and
# bayesdta.posterior.quantities (one code path)
# --------------------------------------------------------------------------------------------
def total_covariance(tau_se, tau_sp, rho, tau_within_se, tau_within_sp, rho_within):
    """SDs and correlation of a new row in a new study: between + within study (three levels).

    Parameters
    ----------
    tau_se, tau_sp, rho : array_like
        Between-study SDs and correlation (per draw).
    tau_within_se, tau_within_sp, rho_within : array_like
        Within-study SDs and correlation (per draw).

    Returns
    -------
    tuple
        ``(sd_se, sd_sp, rho_total)``, of the type of the arguments (numpy or xarray).
    """
    v_se = tau_se**2 + tau_within_se**2
    v_sp = tau_sp**2 + tau_within_sp**2
    cov = rho * tau_se * tau_sp + rho_within * tau_within_se * tau_within_sp
    return np.sqrt(v_se), np.sqrt(v_sp), cov / np.sqrt(v_se * v_sp)


def sroc_areas(
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    *,
    fpr_range: tuple[float, float] | None,
    method: str = "hsroc",
    link: str = "logit",
) -> dict[str, np.ndarray]:
    """``auc`` (:func:`auc_sroc`) and, with an FPR range, ``auc_partial`` (:func:`partial_auc`).

    Parameters
    ----------
    mu_se, mu_sp, tau_se, tau_sp, rho : array_like
        Bivariate parameters on the link scale (per draw).
    fpr_range : tuple of float or None
        Range of the partial AUC (None: no partial AUC).
    method : str
        SROC definition (:data:`SROC_METHODS`).
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    dict of numpy.ndarray
    """
    args = (mu_se, mu_sp, tau_se, tau_sp, rho)
    out = {"auc": auc_sroc(*args, method=method, link=link)}
    if fpr_range is not None:
        out["auc_partial"] = partial_auc(*args, fpr_range=fpr_range, method=method, link=link)
    return out


def i2_statistics(
    tau_se: ArrayLike,
    tau_sp: ArrayLike,
    rho: ArrayLike,
    mu_se: ArrayLike,
    mu_sp: ArrayLike,
    *,
    tp: ArrayLike,
    fp: ArrayLike,
    fn: ArrayLike,
    tn: ArrayLike,
    link: str = "logit",
) -> tuple[dict[str, np.ndarray], tuple[float, float]]:
    """The I2 statistics of a fit (the ``i2_*`` of the summary and of the heterogeneity table).

    ``i2_sensitivity``, ``i2_specificity``, ``i2_bivariate`` use the Higgins-Thompson typical
    within-study variance of the tables given (:func:`typical_within_variance` of
    :func:`link_variances`); for the logit link ``i2_*_zd`` use Zhou & Dendukuri's expected
    within-study variance (:func:`expected_within_variance`). Pass only the tables in the fit
    (weight > 0).

    Parameters
    ----------
    tau_se, tau_sp, rho : array_like
        SDs and correlation of the random effects (per draw).
    mu_se, mu_sp : array_like
        Means on the link scale (per draw), for the ``*_zd`` statistics.
    tp, fp, fn, tn : array_like
        Counts of the tables in the fit.
    link : {"logit", "probit"}
        Link name.

    Returns
    -------
    tuple
        ``(draws, (s2_se, s2_sp))``: the statistics per draw and the typical within-study
        variances.
    """
    lv = link_variances(tp, fp, fn, tn, link=link)
    s2_se = float(typical_within_variance(lv.se))
    s2_sp = float(typical_within_variance(lv.sp))
    t2_se, t2_sp = tau_se**2, tau_sp**2
    out = {
        "i2_sensitivity": i2_univariate(t2_se, s2_se),
        "i2_specificity": i2_univariate(t2_sp, s2_sp),
        "i2_bivariate": i2_bivariate(tau_se, tau_sp, rho, s2_se, s2_sp),
    }
    if link == "logit":
        n1 = np.asarray(tp) + np.asarray(fn)
        n0 = np.asarray(tn) + np.asarray(fp)
        e_se = expected_within_variance(mu_se, t2_se, n1)
        e_sp = expected_within_variance(mu_sp, t2_sp, n0)
        out["i2_sensitivity_zd"] = i2_univariate(t2_se, e_se)
        out["i2_specificity_zd"] = i2_univariate(t2_sp, e_sp)
        out["i2_bivariate_zd"] = i2_bivariate(tau_se, tau_sp, rho, e_se, e_sp)
    return out, (s2_se, s2_sp)
