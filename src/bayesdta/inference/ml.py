r"""Maximum-likelihood companion: the same bivariate binomial GLMM fitted by ML (no sampling).

Row i is one 2x2 table (two levels: every row is its own study); ``n1 = TP + FN``,
``n0 = FP + TN``:

.. math::

    TP_i &\sim \mathrm{Binomial}(n1_i, \mathrm{logit}^{-1}(x_i^{se}\beta^{se} + u_{i1})), \quad
    TN_i \sim \mathrm{Binomial}(n0_i, \mathrm{logit}^{-1}(x_i^{sp}\beta^{sp} + u_{i2})) \\
    u_i &\sim \mathrm{MVN}_2(0, \Sigma), \quad
    \Sigma = \begin{pmatrix}\tau_{se}^2 & \rho\tau_{se}\tau_{sp}\\
             \rho\tau_{se}\tau_{sp} & \tau_{sp}^2\end{pmatrix}

(Chu & Cole 2006; Reitsma et al. 2005 with the exact binomial likelihood): the model of
:func:`bayesdta.fit` with ``levels=2`` and the logit link, with the covariates of the same
formula design (:func:`bayesdta.families.bivariate.make_design`), so the coefficients have the
same names and units.

The marginal likelihood of a study is a 2-D integral over its random effects, computed by
adaptive Gauss-Hermite quadrature (AGHQ; Liu & Pierce 1994, Pinheiro & Bates 1995, as in
Stata's ``metandi`` / ``gllamm``): writing ``u = L b`` with ``L`` the Cholesky factor of
``Sigma`` and ``b ~ N(0, I)``, the mode ``b_hat`` of each study's integrand and the Hessian ``H``
there are found by Newton's method; an ``n_quad x n_quad`` product Gauss-Hermite grid is centred
at ``b_hat`` and scaled by ``H^{-1/2}``. ``n_quad=1`` is exactly the Laplace approximation that
``lme4::glmer`` uses for vector-valued random effects (``nAGQ = 1``).

The optimiser (L-BFGS-B, central-difference gradients, several starts) works on
``(beta, tau_se >= 0, tau_sp >= 0, alpha in [0, pi])`` with ``Sigma``'s Cholesky factor
``L = [[tau_se, 0], [tau_sp cos(alpha), tau_sp sin(alpha)]]`` (so ``rho = cos(alpha)``): the
likelihood is smooth in these coordinates up to and including the boundary (``tau = 0``,
``rho = +-1``), which the optimiser can therefore reach exactly, as lme4 does with its Cholesky
parameters. Standard errors come from the numerical Hessian in ``(beta, log tau_se, log tau_sp,
atanh rho)`` at the optimum (the boundary parameters held fixed when the fit is on the
boundary). See ``docs/ml_companion.md``.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats
from scipy.special import expit, gammaln

from ..data.tables import DTAData
from ..exceptions import BayesDTAWarning, SpecError
from ..families import stats as st
from ..families.bivariate import OUTCOMES, Design, ModelSpec, make_design
from .fit import as_data

__all__ = ["fit_ml", "MLFit", "LRTest", "lrt", "MLWarning", "ml_loglik"]

#: Default number of Gauss-Hermite points per dimension (n_quad x n_quad nodes per study).
DEFAULT_N_QUAD = 15
#: A between-study SD below this (logit scale) is reported as 0; |rho| within this of 1 as +-1
#: (lme4's ``isSingular`` uses the same 1e-4 on its Cholesky parameters).
BOUNDARY_TOL = 1e-4
_TAU_MAX = 20.0


def _one_blas_thread():
    """Single-threaded BLAS for the tiny L-BFGS-B problems (threads only add contention)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only speed depends on it
        return contextlib.nullcontext()
    return threadpool_limits(1)


class MLWarning(BayesDTAWarning):
    """Maximum-likelihood trouble: a boundary estimate (tau = 0, rho = +-1) or no convergence."""


# ------------------------------------------------------------------------------ likelihood
def _gh_rule(n_quad: int) -> tuple[np.ndarray, np.ndarray]:
    """Product Gauss-Hermite rule in 2-D: nodes z (m, 2), log weights incl. exp(|z|^2)."""
    if not isinstance(n_quad, (int, np.integer)) or isinstance(n_quad, bool) or n_quad < 1:
        raise SpecError(f"n_quad must be a positive integer, got {n_quad!r}")
    if n_quad > 60:
        raise SpecError(f"n_quad must be at most 60 (60 x 60 nodes per study), got {n_quad}")
    z, w = np.polynomial.hermite.hermgauss(int(n_quad))
    lw = np.log(w) + z**2
    zz = np.stack(np.meshgrid(z, z, indexing="ij"), axis=-1).reshape(-1, 2)
    lww = (lw[:, None] + lw[None, :]).reshape(-1)
    return zz, lww


def _cholesky(tau_se: float, tau_sp: float, alpha: float) -> tuple[float, float, float]:
    """(l11, l21, l22) of L with L L' = Sigma, rho = cos(alpha)."""
    return tau_se, tau_sp * math.cos(alpha), tau_sp * math.sin(alpha)


class _Likelihood:
    """The AGHQ marginal log-likelihood of the two-level model for one data set and design."""

    def __init__(self, data: DTAData, design: Design, n_quad: int) -> None:
        self.y1 = np.asarray(data.tp, dtype=float)
        self.n1 = np.asarray(data.n_diseased, dtype=float)
        self.y2 = np.asarray(data.tn, dtype=float)
        self.n0 = np.asarray(data.n_nondiseased, dtype=float)
        self.X1 = np.asarray(design.X["sensitivity"], dtype=float)
        self.X2 = np.asarray(design.X["specificity"], dtype=float)
        self.p1, self.p2 = self.X1.shape[1], self.X2.shape[1]
        self.k = self.y1.size
        self.logc = float(
            np.sum(
                gammaln(self.n1 + 1)
                - gammaln(self.y1 + 1)
                - gammaln(self.n1 - self.y1 + 1)
                + gammaln(self.n0 + 1)
                - gammaln(self.y2 + 1)
                - gammaln(self.n0 - self.y2 + 1)
            )
        )
        self.z, self.lw = _gh_rule(n_quad)
        self.n_quad = int(n_quad)
        self._b = np.zeros((self.k, 2))
        self.n_evals = 0

    # -- per-study integrand in b (u = L b, b ~ N(0, I)), up to the binomial coefficients
    def _h(self, b1, b2, eta1, eta2, l11, l21, l22):
        e1 = eta1 + l11 * b1
        e2 = eta2 + l21 * b1 + l22 * b2
        if b1.ndim == 2:
            ll = (
                self.y1[:, None] * e1
                - self.n1[:, None] * np.logaddexp(0.0, e1)
                + self.y2[:, None] * e2
                - self.n0[:, None] * np.logaddexp(0.0, e2)
            )
        else:
            ll = (
                self.y1 * e1
                - self.n1 * np.logaddexp(0.0, e1)
                + self.y2 * e2
                - self.n0 * np.logaddexp(0.0, e2)
            )
        return ll - 0.5 * (b1 * b1 + b2 * b2) - math.log(2.0 * math.pi)

    def _modes(self, eta1, eta2, l11, l21, l22):
        """Newton's method for the mode of every study's (strictly concave) log integrand."""
        b1, b2 = self._b[:, 0].copy(), self._b[:, 1].copy()
        if not (np.all(np.isfinite(b1)) and np.all(np.isfinite(b2))):
            b1, b2 = np.zeros(self.k), np.zeros(self.k)
        f = self._h(b1, b2, eta1, eta2, l11, l21, l22)
        done = False
        for _ in range(200):
            p1 = expit(eta1 + l11 * b1)
            p2 = expit(eta2 + l21 * b1 + l22 * b2)
            r1 = self.y1 - self.n1 * p1
            r2 = self.y2 - self.n0 * p2
            w1 = self.n1 * p1 * (1.0 - p1)
            w2 = self.n0 * p2 * (1.0 - p2)
            g1 = l11 * r1 + l21 * r2 - b1
            g2 = l22 * r2 - b2
            h11 = l11 * l11 * w1 + l21 * l21 * w2 + 1.0
            h12 = l21 * l22 * w2
            h22 = l22 * l22 * w2 + 1.0
            det = h11 * h22 - h12 * h12
            d1 = (h22 * g1 - h12 * g2) / det
            d2 = (h11 * g2 - h12 * g1) / det
            if done:
                # one more full Newton step after convergence: quadratic convergence takes the
                # modes to machine precision, so the likelihood does not depend on the start
                b1, b2 = b1 + d1, b2 + d2
                break
            step = np.ones(self.k)
            for _ in range(60):
                fn = self._h(b1 + step * d1, b2 + step * d2, eta1, eta2, l11, l21, l22)
                bad = ~(fn >= f - 1e-13 * np.abs(f))
                if not bad.any():
                    break
                step = np.where(bad, 0.5 * step, step)
            b1, b2 = b1 + step * d1, b2 + step * d2
            f = fn
            if np.max(np.abs(step * d1) + np.abs(step * d2)) < 1e-9:
                done = True
        p1 = expit(eta1 + l11 * b1)
        p2 = expit(eta2 + l21 * b1 + l22 * b2)
        w1 = self.n1 * p1 * (1.0 - p1)
        w2 = self.n0 * p2 * (1.0 - p2)
        h11 = l11 * l11 * w1 + l21 * l21 * w2 + 1.0
        h12 = l21 * l22 * w2
        h22 = l22 * l22 * w2 + 1.0
        self._b = np.stack([b1, b2], axis=1)
        return b1, b2, h11, h12, h22

    def loglik(self, beta1, beta2, tau_se, tau_sp, alpha, *, per_study: bool = False):
        """Marginal log-likelihood (with the binomial coefficients, as lme4's ``logLik``)."""
        self.n_evals += 1
        l11, l21, l22 = _cholesky(tau_se, tau_sp, alpha)
        eta1 = self.X1 @ beta1
        eta2 = self.X2 @ beta2
        b1, b2, h11, h12, h22 = self._modes(eta1, eta2, l11, l21, l22)
        # R R' = H (lower Cholesky); A = R^{-T} gives A A' = H^{-1}; nodes b_hat + sqrt(2) A z
        r11 = np.sqrt(h11)
        r21 = h12 / r11
        r22 = np.sqrt(h22 - r21 * r21)
        # A = R^{-T} = [[1/r11, -r21/(r11 r22)], [0, 1/r22]]
        a11, a12, a22 = 1.0 / r11, -r21 / (r11 * r22), 1.0 / r22
        s = math.sqrt(2.0)
        z1, z2 = self.z[:, 0][None, :], self.z[:, 1][None, :]
        nb1 = b1[:, None] + s * (a11[:, None] * z1 + a12[:, None] * z2)
        nb2 = b2[:, None] + s * (a22[:, None] * z2)
        h = self._h(nb1, nb2, eta1[:, None], eta2[:, None], l11, l21, l22)
        x = h + self.lw[None, :]
        mx = x.max(axis=1)
        lse = mx + np.log(np.exp(x - mx[:, None]).sum(axis=1))
        # integral = 2 |det A| sum_k w_k e^{|z_k|^2} exp(h(b_k)); |det A| = 1 / (r11 r22)
        ll = lse + math.log(2.0) - np.log(r11 * r22)
        if per_study:
            return ll
        return float(ll.sum() + self.logc)


def ml_loglik(
    data: DTAData | pd.DataFrame | str | Path,
    *,
    mu_sensitivity: float,
    mu_specificity: float,
    tau_sensitivity: float,
    tau_specificity: float,
    rho: float,
    n_quad: int = DEFAULT_N_QUAD,
) -> float:
    """AGHQ marginal log-likelihood of the two-level model without covariates at given values.

    A low-level function for checks (it is what :func:`fit_ml` maximizes): includes the
    binomial coefficients, so it is on the scale of ``lme4``'s ``logLik``.
    """
    d = as_data(data, None, None)
    design = make_design(d, ModelSpec(levels=2))
    lik = _Likelihood(d, design, n_quad)
    if not -1.0 <= rho <= 1.0 or tau_sensitivity < 0 or tau_specificity < 0:
        raise SpecError("tau_* must be >= 0 and rho in [-1, 1]")
    return lik.loglik(
        np.array([mu_sensitivity]),
        np.array([mu_specificity]),
        float(tau_sensitivity),
        float(tau_specificity),
        math.acos(float(rho)),
    )


# ------------------------------------------------------------------------------ the optimiser
class _Problem:
    """Objective on phi = (beta_se, beta_sp, tau_se, tau_sp, alpha) with some coordinates fixed."""

    def __init__(self, lik: _Likelihood) -> None:
        self.lik = lik
        self.p1, self.p2 = lik.p1, lik.p2
        self.dim = self.p1 + self.p2 + 3
        self.i_tau_se = self.p1 + self.p2
        self.i_tau_sp = self.i_tau_se + 1
        self.i_alpha = self.i_tau_se + 2
        lo = [-np.inf] * (self.p1 + self.p2) + [0.0, 0.0, 0.0]
        hi = [np.inf] * (self.p1 + self.p2) + [_TAU_MAX, _TAU_MAX, math.pi]
        self.bounds = list(zip(lo, hi, strict=True))

    def loglik(self, phi: np.ndarray) -> float:
        b1 = phi[: self.p1]
        b2 = phi[self.p1 : self.p1 + self.p2]
        return self.lik.loglik(b1, b2, phi[self.i_tau_se], phi[self.i_tau_sp], phi[self.i_alpha])

    def maximize(
        self,
        start: np.ndarray,
        fixed: Mapping[int, float] | None = None,
        maxiter: int = 2000,
        *,
        precise: bool = True,
    ) -> tuple[np.ndarray, float, bool, str]:
        """L-BFGS-B with central-difference gradients; ``fixed``: coordinate -> value.

        ``precise=False`` (profile points): looser tolerances, no restart.
        """
        fixed = dict(fixed or {})
        free = [i for i in range(self.dim) if i not in fixed]
        base = np.array(start, dtype=float)
        for i, v in fixed.items():
            base[i] = v

        def full(x: np.ndarray) -> np.ndarray:
            phi = base.copy()
            phi[free] = x
            return phi

        def fg(x: np.ndarray) -> tuple[float, np.ndarray]:
            f0 = -self.loglik(full(x))
            g = np.empty(x.size)
            for j in range(x.size):
                h = 1e-6 * max(1.0, abs(x[j]))
                xp, xm = x.copy(), x.copy()
                xp[j] += h
                xm[j] -= h
                g[j] = (-self.loglik(full(xp)) + self.loglik(full(xm))) / (2 * h)
            if not np.isfinite(f0):
                return 1e300, np.zeros(x.size)
            return f0, g

        lo = np.array([self.bounds[i][0] for i in free])
        hi = np.array([self.bounds[i][1] for i in free])
        x0 = np.clip(base[free], lo, hi)
        tol = {"ftol": 1e-15, "gtol": 1e-7} if precise else {"ftol": 1e-11, "gtol": 1e-5}

        def run(x):
            return optimize.minimize(
                fg,
                x,
                jac=True,
                method="L-BFGS-B",
                bounds=list(zip(lo, hi, strict=True)),
                options={"maxiter": maxiter, "maxcor": 20, **tol},
            )

        def projected(res) -> float:
            x, g = res.x, np.asarray(res.jac, dtype=float)
            pg = np.where((x <= lo) & (g > 0), 0.0, g)
            pg = np.where((x >= hi) & (pg < 0), 0.0, pg)
            return float(np.max(np.abs(pg), initial=0.0))

        with _one_blas_thread():
            best = run(x0)
            if precise and projected(best) > 1e-5:
                # restart from the solution: L-BFGS-B's curvature memory can stop it early
                res2 = run(best.x)
                if res2.fun <= best.fun:
                    best = res2
        # converged: the projected gradient (per unit of the coordinates) is small
        ok = bool(np.all(np.isfinite(best.x))) and projected(best) < 1e-3
        return full(best.x), -float(best.fun), ok, str(best.message)


def _starts(lik: _Likelihood, n_starts: int) -> list[np.ndarray]:
    """Starting values: weighted least squares on empirical logits (0.5-corrected), moments."""
    out = []
    cols = []
    resid = []
    for X, y, n in ((lik.X1, lik.y1, lik.n1), (lik.X2, lik.y2, lik.n0)):
        lg = np.log((y + 0.5) / (n - y + 0.5))
        v = 1.0 / (y + 0.5) + 1.0 / (n - y + 0.5)
        w = 1.0 / v
        coef, *_ = np.linalg.lstsq(X * np.sqrt(w)[:, None], lg * np.sqrt(w), rcond=None)
        r = lg - X @ coef
        tau2 = max(0.0, float(np.mean(r * r) - np.mean(v)))
        cols.append((coef, max(math.sqrt(tau2), 0.3)))
        resid.append(r)
    r0 = float(np.corrcoef(resid[0], resid[1])[0, 1]) if lik.k > 2 else 0.0
    r0 = float(np.clip(np.nan_to_num(r0), -0.8, 0.8))
    (b1, t1), (b2, t2) = cols
    candidates = [
        (t1, t2, r0),
        (1.0, 1.0, -0.5),
        (0.5 * t1 + 0.1, 0.5 * t2 + 0.1, 0.5),
        (2.0 * t1, 2.0 * t2, 0.0),
        (0.2, 0.2, -0.9),
    ]
    for ts, tp_, r in candidates[: max(1, n_starts)]:
        out.append(np.concatenate([b1, b2, [min(ts, 5.0), min(tp_, 5.0), math.acos(r)]]))
    return out


# ------------------------------------------------------------------------------ results
_PSI_NAMES = ("log_tau_sensitivity", "log_tau_specificity", "atanh_rho")


@dataclass(frozen=True)
class LRTest:
    """A likelihood-ratio test of nested ML fits (:func:`lrt`).

    Attributes
    ----------
    statistic : float
        ``2 (loglik_full - loglik_reduced)`` (chi-square statistic).
    df : int
        Difference in the number of parameters.
    p_value : float
        Upper tail of chi-square(df) at the statistic.
    loglik_reduced, loglik_full : float
        The two maximized log-likelihoods.
    tested : list of str
        The coefficients in the full model and not in the reduced one.
    note : str
        Caveats: a fit on the boundary of the parameter space (then the chi-square reference
        is approximate, see ``docs/ml_companion.md``), a full fit worse than the reduced one.
    """

    statistic: float
    df: int
    p_value: float
    loglik_reduced: float
    loglik_full: float
    tested: list[str] = field(default_factory=list)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for tables)."""
        return {
            "chi2": self.statistic,
            "df": self.df,
            "p_value": self.p_value,
            "loglik_reduced": self.loglik_reduced,
            "loglik_full": self.loglik_full,
            "tested": ", ".join(self.tested),
            "note": self.note,
        }

    def __str__(self) -> str:
        s = f"LR test: chi2 = {self.statistic:.3f}, df = {self.df}, p = {self.p_value:.4g}"
        return s + (f" ({self.note})" if self.note else "")


class MLFit:
    """A maximum-likelihood fit of the two-level bivariate binomial GLMM (:func:`fit_ml`).

    Attributes
    ----------
    data : DTAData
        The validated data.
    spec : ModelSpec
        Formulas and reference levels (``levels=2``, logit link).
    design : Design
        The formula design, the same as a Bayesian fit's (names and units of coefficients).
    n_quad : int
        Gauss-Hermite points per dimension (1 = Laplace).
    loglik : float
        Maximized log-likelihood (with the binomial coefficients, as ``lme4``'s ``logLik``).
    n_params : int
        Number of parameters: coefficients + 3 variance parameters (the boundary values count,
        as in lme4).
    converged : bool
        Whether the optimiser's projected gradient vanished (and the starts agreed).
    boundary : list of str
        What lies on the boundary, e.g. ``["rho = -1"]`` or ``["tau_specificity = 0"]``;
        empty for an interior fit.
    estimates : dict
        ``mu_sensitivity``, ``mu_specificity``, ``tau_sensitivity``, ``tau_specificity``,
        ``rho`` and ``beta_<outcome>[<column>]`` (per unit of the column).
    notes : list of str
        What happened: boundary, starts that disagreed, non-convergence.
    """

    def __init__(
        self,
        *,
        data: DTAData,
        spec: ModelSpec,
        design: Design,
        n_quad: int,
        phi: np.ndarray,
        loglik: float,
        converged: bool,
        boundary: list[str],
        starts: pd.DataFrame,
        notes: list[str],
        timing: dict[str, float],
        lik: _Likelihood,
        fixed: dict[int, float],
    ) -> None:
        self.data = data
        self.spec = spec
        self.design = design
        self.n_quad = int(n_quad)
        self.phi = np.asarray(phi, dtype=float)
        self.loglik = float(loglik)
        self.converged = bool(converged)
        self.boundary = list(boundary)
        self.starts = starts
        self.notes = list(notes)
        self.timing = dict(timing)
        self._lik = lik
        self._problem = _Problem(lik)
        self._fixed = dict(fixed)
        self._cov: np.ndarray | None = None
        self._free: list[int] = []
        self._profiles: dict[tuple[str, float], tuple[float, float]] = {}

    # ---------------------------------------------------------------- basic numbers
    @property
    def p(self) -> tuple[int, int]:
        """Numbers of coefficients of sensitivity and specificity."""
        return self._problem.p1, self._problem.p2

    @property
    def n_params(self) -> int:
        """Coefficients plus the three variance parameters."""
        return self._problem.dim

    @property
    def n_studies(self) -> int:
        """Number of tables (each its own study)."""
        return self.data.n_rows

    @property
    def aic(self) -> float:
        """``-2 loglik + 2 n_params``."""
        return -2.0 * self.loglik + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """``-2 loglik + log(n_studies) n_params`` (lme4 uses the 2 k binomial responses)."""
        return -2.0 * self.loglik + math.log(self.n_studies) * self.n_params

    @property
    def at_boundary(self) -> bool:
        """True when some variance parameter is on the boundary (tau = 0 or rho = +-1)."""
        return bool(self.boundary)

    @property
    def tau_sensitivity(self) -> float:
        """Between-study SD of logit sensitivity (residual SD with covariates)."""
        return float(self.phi[self._problem.i_tau_se])

    @property
    def tau_specificity(self) -> float:
        """Between-study SD of logit specificity (residual SD with covariates)."""
        return float(self.phi[self._problem.i_tau_sp])

    @property
    def rho(self) -> float:
        """Between-study correlation (NaN when a tau is 0: then rho is not identified)."""
        if self.tau_sensitivity < BOUNDARY_TOL or self.tau_specificity < BOUNDARY_TOL:
            return float("nan")
        return float(np.clip(math.cos(self.phi[self._problem.i_alpha]), -1.0, 1.0))

    def _beta_internal(self, outcome: str) -> np.ndarray:
        p1, p2 = self.p
        return self.phi[:p1] if outcome == "sensitivity" else self.phi[p1 : p1 + p2]

    @property
    def estimates(self) -> dict[str, float]:
        """ML estimates; coefficients per unit of their column (as :meth:`DTAFit.summary`)."""
        out = {
            "mu_sensitivity": float(self._beta_internal("sensitivity")[0]),
            "mu_specificity": float(self._beta_internal("specificity")[0]),
            "tau_sensitivity": self.tau_sensitivity,
            "tau_specificity": self.tau_specificity,
            "rho": self.rho,
        }
        for o in OUTCOMES:
            scale = self.design.column_scale(o)
            for c, v in zip(self.design.columns[o], self._beta_internal(o), strict=True):
                if c != "Intercept":
                    out[f"beta_{o}[{c}]"] = float(v) / scale[c]
        return out

    # ---------------------------------------------------------------- covariance (psi scale)
    def _psi_to_phi(self, psi: np.ndarray) -> np.ndarray:
        """Map psi: phi's coefficients + (log tau_se, log tau_sp, atanh rho) of the free ones."""
        phi = self.phi.copy()
        pr = self._problem
        j = 0
        for i in self._free:
            v = psi[j]
            if i == pr.i_tau_se or i == pr.i_tau_sp:
                v = math.exp(v)
            elif i == pr.i_alpha:
                v = math.acos(math.tanh(v))
            phi[i] = v
            j += 1
        return phi

    def _psi_hat(self) -> np.ndarray:
        pr = self._problem
        out = []
        for i in self._free:
            v = self.phi[i]
            if i == pr.i_tau_se or i == pr.i_tau_sp:
                v = math.log(v)
            elif i == pr.i_alpha:
                v = math.atanh(math.cos(v))
            out.append(v)
        return np.array(out)

    def _covariance(self) -> tuple[np.ndarray, list[int]]:
        """Inverse negative Hessian over the free parameters in the psi scale."""
        if self._cov is None:
            pr = self._problem
            # coefficients of a diverging outcome are held at their stop (no Wald interval)
            gone = {i for d in _diverging(self) for i in d["indices"]}
            self._free = [i for i in range(pr.dim) if i not in self._fixed and i not in gone]
            psi = self._psi_hat()
            H = _hessian(lambda x: pr.loglik(self._psi_to_phi(x)), psi)
            try:
                cov = np.linalg.inv(-H)
                if not np.all(np.isfinite(cov)) or np.any(np.diag(cov) <= 0):
                    raise np.linalg.LinAlgError
            except np.linalg.LinAlgError:
                cov = np.full_like(H, np.nan)
                self.notes.append(
                    "the Hessian of the log-likelihood is not negative definite at the "
                    "estimate: Wald standard errors are not available (use profile=True)"
                )
            self._cov = cov
        return self._cov, self._free

    def coefficient_covariance(self) -> np.ndarray:
        """Covariance of the coefficients on the design's internal scale.

        Order: sensitivity's columns, then specificity's (``design.X``: centred at the
        reference point and divided by ``design.scale``); from the inverse negative Hessian of
        the log-likelihood over all free parameters.

        Returns
        -------
        numpy.ndarray
            ``(p, p)`` covariance; NaN rows and columns for a coefficient held fixed (a
            diverging estimate, see ``notes``).
        """
        cov, free = self._covariance()
        n = self._problem.p1 + self._problem.p2
        out = np.full((n, n), np.nan)
        kept = [i for i in range(n) if i in free]
        idx = [free.index(i) for i in kept]
        out[np.ix_(kept, kept)] = cov[np.ix_(idx, idx)]
        return out

    # ---------------------------------------------------------------- summary
    def summary(self, ci: float = 0.95, *, profile: bool | Sequence[str] = False) -> pd.DataFrame:
        """Estimates with Wald intervals (delta method), optionally profile-likelihood ones.

        Parameters
        ----------
        ci : float
            Confidence level.
        profile : bool or list of str
            Also compute profile-likelihood intervals (re-maximizing the other parameters):
            ``True`` for ``mu_*``, ``tau_*``, ``rho`` and the coefficients, or a list of those
            names. Sensitivity and specificity get the inverse logit of ``mu_*``'s interval.

        Returns
        -------
        pandas.DataFrame
            Index: ``sensitivity``, ``specificity`` (inverse logit of ``mu_*``: the summary
            point; with covariates at the reference point, as the Bayesian summary),
            ``lr_positive``, ``lr_negative``, ``dor``, ``mu_sensitivity``, ``mu_specificity``,
            ``tau_sensitivity``, ``tau_specificity``, ``rho``, ``beta_*[...]`` per unit of
            their column and, with covariates, ``sensitivity_pooled`` /
            ``specificity_pooled`` (inverse logit of the mean linear predictor over the rows).
            Columns: ``estimate``, ``std_error`` (delta method, on the estimate's own scale),
            ``lower`` / ``upper`` (Wald interval computed on the ``wald_scale``: logit for
            probabilities, log for SDs and ratios, Fisher z for rho) and, with ``profile``,
            ``profile_lower`` / ``profile_upper``. NaN where an interval does not exist (a
            parameter on the boundary has no Wald interval: use ``profile=True``). ``attrs``:
            ``loglik``, ``aic``, ``bic``, ``n_quad``, ``converged``, ``boundary``, ``notes``.
        """
        if not 0 < ci < 1:
            raise SpecError(f"ci must lie strictly between 0 and 1, got {ci}")
        zq = float(stats.norm.ppf(0.5 + ci / 2))
        pr = self._problem
        cov, free = self._covariance()
        p1, p2 = self.p

        def var(i: int) -> float:
            j = free.index(i) if i in free else None
            return float(cov[j, j]) if j is not None else float("nan")

        def cov2(i: int, k: int) -> float:
            if i not in free or k not in free:
                return float("nan")
            return float(cov[free.index(i), free.index(k)])

        rows: dict[str, dict[str, Any]] = {}

        def put(name, est, se_scale, tr, inv, dtr, scale):
            """Add a row: ``est`` on its own scale, ``se_scale`` the SE of ``tr(est)``."""
            t = tr(est)
            try:
                lo, hi = (inv(t - zq * se_scale), inv(t + zq * se_scale))
            except OverflowError:  # a diverging estimate (see fit.notes): no interval
                lo = hi = float("nan")
            se_nat = se_scale / dtr(est) if dtr(est) != 0 else float("nan")
            rows[name] = {
                "estimate": est,
                "std_error": abs(se_nat),
                "lower": lo,
                "upper": hi,
                "wald_scale": scale,
            }

        def ident(x):
            return x

        def one(x):
            return 1.0

        mu1, mu2 = float(self.phi[0]), float(self.phi[p1])
        v1, v2, c12 = var(0), var(p1), cov2(0, p1)
        se1, se2 = math.sqrt(v1), math.sqrt(v2)
        sens, spec = float(expit(mu1)), float(expit(mu2))
        put("sensitivity", sens, se1, _logit, expit, lambda p: 1 / (p * (1 - p)), "logit")
        put("specificity", spec, se2, _logit, expit, lambda p: 1 / (p * (1 - p)), "logit")
        # likelihood ratios and DOR on the log scale, delta method with cov(mu_se, mu_sp)
        lr = st.likelihood_ratios(np.array([sens]), np.array([spec]))
        grads = {
            "lr_positive": (1 - sens, spec),
            "lr_negative": (-sens, -(1 - spec)),
            "dor": (1.0, 1.0),
        }
        for k, (g1, g2) in grads.items():
            sd = math.sqrt(max(g1 * g1 * v1 + g2 * g2 * v2 + 2 * g1 * g2 * c12, 0.0))
            put(k, float(lr[k][0]), sd, math.log, math.exp, lambda x: 1 / x, "log")
        put("mu_sensitivity", mu1, se1, ident, ident, one, "identity")
        put("mu_specificity", mu2, se2, ident, ident, one, "identity")
        for name, i in (("tau_sensitivity", pr.i_tau_se), ("tau_specificity", pr.i_tau_sp)):
            tau = float(self.phi[i])
            if i in free:
                put(name, tau, math.sqrt(var(i)), math.log, math.exp, lambda x: 1 / x, "log")
            else:
                rows[name] = {
                    "estimate": tau,
                    "std_error": np.nan,
                    "lower": np.nan,
                    "upper": np.nan,
                    "wald_scale": "log (boundary: none)",
                }
        r = self.rho
        if pr.i_alpha in free and np.isfinite(r):
            put(
                "rho",
                r,
                math.sqrt(var(pr.i_alpha)),
                math.atanh,
                math.tanh,
                lambda x: 1 / (1 - x * x),
                "Fisher z",
            )
        else:
            rows["rho"] = {
                "estimate": r,
                "std_error": np.nan,
                "lower": np.nan,
                "upper": np.nan,
                "wald_scale": "Fisher z (boundary: none)",
            }
        offsets = {"sensitivity": 0, "specificity": p1}
        for o in OUTCOMES:
            scale = self.design.column_scale(o)
            for j, c in enumerate(self.design.columns[o]):
                if c == "Intercept":
                    continue
                i = offsets[o] + j
                b = float(self.phi[i]) / scale[c]
                put(
                    f"beta_{o}[{c}]", b, math.sqrt(var(i)) / scale[c], ident, ident, one, "identity"
                )
        if self.design.has_covariates:
            for o, X, off, p in (
                ("sensitivity", self._lik.X1, 0, p1),
                ("specificity", self._lik.X2, p1, p2),
            ):
                xbar = X.mean(axis=0)
                idx = list(range(off, off + p))
                eta = float(xbar @ self.phi[idx])
                sub = np.array([[cov2(a, b) for b in idx] for a in idx])
                sd = math.sqrt(max(float(xbar @ sub @ xbar), 0.0))
                put(
                    f"{o}_pooled",
                    float(expit(eta)),
                    sd,
                    _logit,
                    expit,
                    lambda p: 1 / (p * (1 - p)),
                    "logit",
                )
        df = pd.DataFrame.from_dict(rows, orient="index")
        df.index.name = "quantity"
        for d in _diverging(self):  # no Wald interval at a diverging estimate
            gone = [r for r in d["rows"] if r in df.index]
            df.loc[gone, ["std_error", "lower", "upper"]] = np.nan
            df.loc[gone, "wald_scale"] = df.loc[gone, "wald_scale"] + " (diverges: none)"
        if profile:
            names = (
                [n for n in df.index if n.startswith(("mu_", "tau_", "rho", "beta_"))]
                if profile is True
                else list(profile)
            )
            df["profile_lower"] = np.nan
            df["profile_upper"] = np.nan
            for n in names:
                lo, hi = self.profile_interval(n, ci=ci)
                df.loc[n, ["profile_lower", "profile_upper"]] = lo, hi
                if n in ("mu_sensitivity", "mu_specificity"):
                    q = "sensitivity" if n.endswith("sensitivity") else "specificity"
                    df.loc[q, ["profile_lower", "profile_upper"]] = expit(lo), expit(hi)
        df.attrs.update(
            {
                "ci": ci,
                "loglik": self.loglik,
                "aic": self.aic,
                "bic": self.bic,
                "n_params": self.n_params,
                "n_quad": self.n_quad,
                "converged": self.converged,
                "boundary": list(self.boundary),
                "notes": list(self.notes),
            }
        )
        return df

    # ---------------------------------------------------------------- profile likelihood
    def _coordinate(self, name: str) -> tuple[int, Any, Any]:
        """Coordinate of phi for a named parameter, with maps value <-> coordinate."""
        pr = self._problem
        p1, _ = self.p
        if name == "mu_sensitivity":
            return 0, _identity, _identity
        if name == "mu_specificity":
            return p1, _identity, _identity
        if name == "tau_sensitivity":
            return pr.i_tau_se, _identity, _identity
        if name == "tau_specificity":
            return pr.i_tau_sp, _identity, _identity
        if name == "rho":
            return pr.i_alpha, math.cos, lambda r: math.acos(float(np.clip(r, -1, 1)))
        for o, off in (("sensitivity", 0), ("specificity", p1)):
            scale = self.design.column_scale(o)
            for j, c in enumerate(self.design.columns[o]):
                if name == f"beta_{o}[{c}]" and c != "Intercept":
                    s = scale[c]
                    return off + j, (lambda v, s=s: v / s), (lambda v, s=s: v * s)
        raise SpecError(
            f"no profile interval for {name!r}: mu_*, tau_*, rho or a beta_* coefficient"
        )

    def profile_loglik(self, name: str, value: float) -> float:
        """Profile log-likelihood: maximum over the other parameters with ``name`` fixed.

        Parameters
        ----------
        name : str
            ``mu_sensitivity``, ``mu_specificity``, ``tau_sensitivity``, ``tau_specificity``,
            ``rho`` or a coefficient ``beta_*[...]`` (per unit of its column).
        value : float
            The value at which ``name`` is held.

        Returns
        -------
        float
            The maximized log-likelihood with ``name`` fixed at ``value``.
        """
        i, _, to_coord = self._coordinate(name)
        fixed = {i: float(to_coord(value))}
        _, ll, _, _ = self._problem.maximize(self.phi.copy(), fixed=fixed, precise=False)
        return ll

    def profile_interval(self, name: str, *, ci: float = 0.95) -> tuple[float, float]:
        """Profile-likelihood interval: where ``2 (loglik - profile) = chi2_1(ci)``.

        SDs stop at 0 and rho at -1 / 1 when the profile stays above the cut there.

        Parameters
        ----------
        name : str
            A parameter name, as in :meth:`profile_loglik`.
        ci : float
            Confidence level.

        Returns
        -------
        tuple of float
            ``(lower, upper)``; NaN for rho when a tau is 0 (rho not identified).
        """
        key = (name, ci)
        if key in self._profiles:
            return self._profiles[key]
        crit = float(stats.chi2.ppf(ci, 1))
        i, from_coord, _ = self._coordinate(name)
        est = float(from_coord(self.phi[i]))
        if name == "rho" and not np.isfinite(self.rho):
            self._profiles[key] = (float("nan"), float("nan"))
            return self._profiles[key]
        lo_lim, hi_lim = {
            "tau_sensitivity": (0.0, _TAU_MAX),
            "tau_specificity": (0.0, _TAU_MAX),
            "rho": (-1.0, 1.0),
        }.get(name, (-np.inf, np.inf))
        table = self.summary(ci)
        se = float(table.loc[name, "std_error"]) if name in table.index else float("nan")
        step0 = float(se) if np.isfinite(se) and se > 0 else 0.25
        if name == "rho":
            step0 = min(step0, 0.2)

        def g(v: float) -> float:
            return 2.0 * (self.loglik - self.profile_loglik(name, v)) - crit

        out = []
        for sign in (-1.0, 1.0):
            lim = lo_lim if sign < 0 else hi_lim
            a, step = est, step0
            b = est + sign * step
            found = None
            for _ in range(30):
                if (sign < 0 and b <= lim) or (sign > 0 and b >= lim):
                    b = lim
                    if g(b) <= 0:
                        found = lim
                        break
                    break
                if g(b) > 0:
                    break
                a, step = b, step * 1.6
                b = est + sign * (abs(a - est) + step)
            else:
                found = np.nan
            if found is None:
                try:
                    found = optimize.brentq(g, min(a, b), max(a, b), xtol=1e-4)
                except ValueError:
                    found = np.nan
            out.append(float(found))
        self._profiles[key] = (out[0], out[1])
        return self._profiles[key]

    # ---------------------------------------------------------------- tests
    def lrt(self, other: MLFit) -> LRTest:
        """Likelihood-ratio test against another fit, see :func:`lrt`.

        The fit with fewer parameters is the reduced model.

        Parameters
        ----------
        other : MLFit
            A nested fit of the same tables with the same ``n_quad``.

        Returns
        -------
        LRTest
            Statistic, df, P-value and note.
        """
        a, b = (self, other) if self.n_params <= other.n_params else (other, self)
        return lrt(a, b)

    # ---------------------------------------------------------------- display
    def format_summary(self, ci: float = 0.95, *, round_to: int = 3) -> str:
        """Summary table as text, with the log-likelihood, AIC, BIC and notes.

        Parameters
        ----------
        ci : float
            Confidence level of the Wald intervals.
        round_to : int
            Decimals shown.

        Returns
        -------
        str
            The formatted table.
        """
        df = self.summary(ci)
        show = df[["estimate", "std_error", "lower", "upper"]].round(round_to)
        f = self.spec.formulas()
        rule = "Laplace" if self.n_quad == 1 else f"AGHQ {self.n_quad}x{self.n_quad}"
        lines = [
            "Bivariate binomial GLMM, maximum likelihood (logit link, exact binomial "
            f"likelihood, {rule})",
            f"  {self.data.n_rows} studies; sensitivity {f[0]}, specificity {f[1]}",
            f"  log-likelihood {self.loglik:.4f}, AIC {self.aic:.2f}, BIC {self.bic:.2f}, "
            f"{self.n_params} parameters; {'converged' if self.converged else 'NOT CONVERGED'}",
            f"  Wald {ci:.0%} intervals (delta method)",
            show.to_string(),
        ]
        for n in self.notes:
            lines.append(f"note: {n}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        e = self.estimates
        return (
            f"MLFit(n_quad={self.n_quad}, loglik={self.loglik:.4f}, "
            f"sensitivity={expit(e['mu_sensitivity']):.3f}, "
            f"specificity={expit(e['mu_specificity']):.3f}, boundary={self.boundary})"
        )


def _identity(x: float) -> float:
    return x


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function."""
    n = x.size
    H = np.empty((n, n))
    f0 = f(x)
    hs = h * np.maximum(1.0, np.abs(x))
    for i in range(n):
        ei = np.zeros(n)
        ei[i] = hs[i]
        H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / hs[i] ** 2
        for j in range(i):
            ej = np.zeros(n)
            ej[j] = hs[j]
            H[i, j] = H[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * hs[i] * hs[j])
    return H


# ------------------------------------------------------------------------------ fit_ml
def fit_ml(
    data: DTAData | pd.DataFrame | str | Path,
    *,
    formula: str | None = None,
    formula_sensitivity: str | None = None,
    formula_specificity: str | None = None,
    reference: Mapping[str, str] | None = None,
    levels: int | None = None,
    n_quad: int = DEFAULT_N_QUAD,
    n_starts: int = 3,
    study: str | None = None,
    model: str | None = None,
    verbose: bool = True,
) -> MLFit:
    """Maximum-likelihood fit of the bivariate binomial GLMM (the frequentist companion).

    The same model as :func:`bayesdta.fit` with two levels and the logit link (study effects
    bivariate normal, exact binomial likelihood, covariates through the same formula design),
    fitted by maximizing the marginal likelihood computed by adaptive Gauss-Hermite quadrature
    (as Stata's ``metandi``; ``n_quad=1`` is the Laplace approximation of ``lme4::glmer``).
    The package never needs R: agreement with ``glmer`` is checked in ``validation/``.

    Parameters
    ----------
    data : DTAData, DataFrame or path
        The 2x2 tables (one per study).
    formula, formula_sensitivity, formula_specificity, reference
        Meta-regression formulas and reference levels, as in :func:`bayesdta.fit`.
    levels : {2} or None
        Only two levels (one table per study) are fitted by ML. ``None``: two, and an error
        when a study has several tables (the three-level model is not offered by ML: use
        :func:`bayesdta.fit`, or ``levels=2`` to treat every table as its own study).
    n_quad : int
        Gauss-Hermite points per dimension (``n_quad**2`` nodes per study; default 15). ``1``
        is the Laplace approximation (``glmer``'s ``nAGQ = 1``); metandi's default is 5.
    n_starts : int
        Starting points of the optimiser (1-5); the best maximum is kept and starts that end at
        a different maximum are reported in ``notes``.
    study, model : str, optional
        Id columns when ``data`` is a DataFrame or path.
    verbose : bool
        Warn (:class:`MLWarning`) on a boundary estimate or non-convergence.

    Returns
    -------
    MLFit
        Estimates, log-likelihood, AIC / BIC, Wald and profile intervals
        (:meth:`MLFit.summary`), likelihood-ratio tests (:meth:`MLFit.lrt`).

    Raises
    ------
    SpecError
        Three levels, ``tau_by``, non-logit links or a bad ``n_quad`` (one-line messages).
    """
    t0 = time.perf_counter()
    d = as_data(data, study, model, clustered=levels is not None)
    if levels not in (None, 2):
        raise SpecError(
            f"fit_ml fits two levels only (levels={levels!r}): the three-level model is fitted "
            "by bayesdta.fit; levels=2 treats every table as its own study"
        )
    if levels is None and d.has_clusters:
        multi = int((d.rows_per_study > 1).sum())
        raise SpecError(
            f"fit_ml fits two levels only, and {multi} of {d.n_studies} studies have several "
            "tables: fit the three-level model with bayesdta.fit, or pass levels=2 to treat "
            "every table as its own study"
        )
    if not isinstance(n_starts, int) or not 1 <= n_starts <= 5:
        raise SpecError(f"n_starts must be an integer from 1 to 5, got {n_starts!r}")
    spec = ModelSpec(
        levels=2,
        formula=formula,
        formula_sensitivity=formula_sensitivity,
        formula_specificity=formula_specificity,
        reference=dict(reference or {}),
    )
    design = make_design(d, spec)
    lik = _Likelihood(d, design, n_quad)
    if lik.k < 2:
        raise SpecError(f"fit_ml needs at least 2 studies, got {lik.k}")
    pr = _Problem(lik)
    results = []
    for s in _starts(lik, n_starts):
        phi, ll, ok, msg = pr.maximize(s)
        results.append((ll, phi, ok, msg))
    order = sorted(range(len(results)), key=lambda j: -results[j][0])
    ll, phi, ok, msg = results[order[0]]
    notes: list[str] = []
    starts = pd.DataFrame(
        {
            "loglik": [r[0] for r in results],
            "converged": [r[2] for r in results],
            "tau_sensitivity": [r[1][pr.i_tau_se] for r in results],
            "tau_specificity": [r[1][pr.i_tau_sp] for r in results],
            "rho": [math.cos(r[1][pr.i_alpha]) for r in results],
        }
    )
    worse = [j for j in order[1:] if results[j][0] < ll - 1e-3]
    if worse:
        notes.append(
            f"{len(worse)} of {len(results)} starting points ended at a lower maximum "
            f"(log-likelihood {min(results[j][0] for j in worse):.4f} vs {ll:.4f}); the "
            "highest is reported"
        )
    # boundary: try each near-boundary variance parameter exactly on the boundary
    fixed: dict[int, float] = {}
    cand = []
    if phi[pr.i_tau_se] < 1e-2:
        cand.append((pr.i_tau_se, 0.0))
    if phi[pr.i_tau_sp] < 1e-2:
        cand.append((pr.i_tau_sp, 0.0))
    for i, v in cand:
        trial = {**fixed, i: v}
        phi_b, ll_b, ok_b, _ = pr.maximize(phi, fixed=trial)
        if ll_b >= ll - 1e-6:
            fixed, phi, ok = trial, phi_b, ok_b
            ll = max(ll, ll_b)
    # rho on its bound: tried whenever no SD was fixed at 0 (a small but non-zero SD can come
    # with rho = +-1 to machine precision, which has no Wald scale: atanh(+-1))
    if pr.i_tau_se not in fixed and pr.i_tau_sp not in fixed:
        for v in (0.0, math.pi):
            if abs(phi[pr.i_alpha] - v) < 0.05:
                trial = {**fixed, pr.i_alpha: v}
                phi_b, ll_b, ok_b, _ = pr.maximize(phi, fixed=trial)
                if ll_b >= ll - 1e-6 or abs(math.cos(phi[pr.i_alpha])) >= 1.0 - 1e-12:
                    fixed, phi, ok = trial, phi_b, ok_b
                    ll = max(ll, ll_b)
    if pr.i_tau_se in fixed or pr.i_tau_sp in fixed:
        fixed.setdefault(pr.i_alpha, float(phi[pr.i_alpha]))  # rho is not identified
    # polish the interior coordinates by Newton steps in the psi scale
    fit = MLFit(
        data=d,
        spec=spec,
        design=design,
        n_quad=n_quad,
        phi=phi,
        loglik=ll,
        converged=ok,
        boundary=[],
        starts=starts,
        notes=notes,
        timing={},
        lik=lik,
        fixed=fixed,
    )
    _polish(fit)
    boundary = []
    if pr.i_tau_se in fixed:
        boundary.append("tau_sensitivity = 0")
    if pr.i_tau_sp in fixed:
        boundary.append("tau_specificity = 0")
    if pr.i_alpha in fixed and not boundary:
        boundary.append(f"rho = {'+1' if fixed[pr.i_alpha] == 0.0 else '-1'}")
    diverged = _diverging(fit)
    boundary += [d["boundary"] for d in diverged]
    fit.boundary = boundary
    if boundary:
        what = " and ".join(boundary)
        fit.notes.append(
            f"the ML estimate is on the boundary of the parameter space ({what}): "
            + (
                "rho is not identified and is not reported; "
                if any(b.startswith("tau") for b in boundary)
                else ""
            )
            + "Wald intervals of the boundary parameters do not exist (profile intervals do), "
            "and likelihood-ratio tests of variance parameters use chi-bar-square mixtures "
            "(Self & Liang 1987); the Bayesian fit keeps them inside"
        )
    fit.notes.extend(d["note"] for d in diverged)
    if not fit.converged:
        fit.notes.append(
            f"the optimiser did not converge ({msg}); the estimates may not be the maximum: "
            "try n_starts=5 or n_quad=1 to compare"
        )
    fit.timing["fit_s"] = round(time.perf_counter() - t0, 3)
    fit.timing["likelihood_evaluations"] = lik.n_evals
    if verbose:
        if boundary:
            warnings.warn(
                f"fit_ml: ML estimate on the boundary ({', '.join(boundary)}); see fit.notes",
                MLWarning,
                stacklevel=2,
            )
        if not fit.converged:
            warnings.warn(
                f"fit_ml: the optimiser did NOT converge ({msg}); try n_starts=5",
                MLWarning,
                stacklevel=2,
            )
    return fit


#: |coefficient| on the logit scale beyond which an ML estimate is taken to run off to infinity
_DIVERGES = 15.0


def _diverging(fit: MLFit) -> list[dict[str, Any]]:
    """ML estimates that run off to +-infinity (separation), with what they make undefined.

    Every table of an outcome at 100% (or 0%) sends ``mu`` to infinity; a level of a covariate
    (or an end of a continuous one) where it happens sends that coefficient there. Detected
    from the data (all tables) or from a coefficient beyond ``_DIVERGES`` on the logit scale.
    """
    lik, pr = fit._lik, fit._problem
    out: list[dict[str, Any]] = []
    for o, y, n, miss, hit, off, p in (
        ("sensitivity", lik.y1, lik.n1, "FN", "TP", 0, pr.p1),
        ("specificity", lik.y2, lik.n0, "FP", "TN", pr.p1, pr.p2),
    ):
        betas = [f"beta_{o}[{c}]" for c in fit.design.columns[o] if c != "Intercept"]
        summary_rows = [o, f"mu_{o}", "lr_positive", "lr_negative", "dor", f"{o}_pooled"]
        if np.all(y == n) or np.all(y == 0):
            v, cell = (1, miss) if np.all(y == n) else (0, hit)
            out.append(
                {
                    "indices": list(range(off, off + p)),
                    "rows": summary_rows + betas,
                    "boundary": f"{o} = {v}",
                    "note": f"the ML estimate of mu_{o} diverges ({cell} = 0 in all {lik.k} "
                    f"tables): the ML {o} is {v} at the limit, without a Wald interval, and the "
                    "coefficients at the optimiser's stop are arbitrarily large; use "
                    "bayesdta.fit (its prior keeps the estimate finite)",
                }
            )
            continue
        for j, c in enumerate(fit.design.columns[o]):
            b = float(fit.phi[off + j])
            if abs(b) < _DIVERGES:
                continue
            name = f"mu_{o}" if c == "Intercept" else f"beta_{o}[{c}]"
            out.append(
                {
                    "indices": [off + j],
                    "rows": (summary_rows if c == "Intercept" else [name, f"{o}_pooled"]),
                    "boundary": f"{name} = {'+' if b > 0 else '-'}inf",
                    "note": f"the ML estimate of {name} diverges ({b:.1f} on the logit scale at "
                    f"the optimiser's stop: tables with {miss} = 0 or {hit} = 0 throughout a "
                    "level or range of the covariates, i.e. separation); it has no Wald "
                    "interval and likelihood-ratio tests involving it are unreliable; use "
                    "bayesdta.fit (its prior keeps the estimate finite)",
                }
            )
    return out


def _polish(fit: MLFit) -> None:
    """A few Newton steps on the free parameters (psi scale) from the L-BFGS-B solution."""
    pr = fit._problem
    fit._free = [i for i in range(pr.dim) if i not in fit._fixed]
    if any(
        (i in (pr.i_tau_se, pr.i_tau_sp) and fit.phi[i] <= 0)
        or (i == pr.i_alpha and not 0 < fit.phi[i] < math.pi)
        for i in fit._free
    ):
        return
    for _ in range(4):
        psi = fit._psi_hat()

        def f(x):
            try:
                return pr.loglik(fit._psi_to_phi(x))
            except (ValueError, OverflowError):
                return -np.inf

        H = _hessian(f, psi)
        g = np.array(
            [
                (f(psi + e) - f(psi - e)) / (2 * e[j])
                for j, e in enumerate(np.diag(1e-6 * np.maximum(1.0, np.abs(psi))))
            ]
        )
        try:
            step = np.linalg.solve(-H, g)
        except np.linalg.LinAlgError:
            return
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 1.0:
            return
        new = psi + step
        ll_new = f(new)
        if not ll_new >= fit.loglik - 1e-12:
            return
        fit.phi = fit._psi_to_phi(new)
        gain = ll_new - fit.loglik
        fit.loglik = ll_new
        fit._cov = None
        if np.max(np.abs(step)) < 1e-9 or gain < 1e-12:
            return


# ------------------------------------------------------------------------------ LRT
def lrt(reduced: MLFit, full: MLFit) -> LRTest:
    """Likelihood-ratio test of a reduced against a full nested ML fit (e.g. a covariate).

    The fits must use the same data and ``n_quad``, and every coefficient of the reduced model
    must be in the full one. The statistic ``2 (loglik_full - loglik_reduced)`` is referred to
    chi-square with df = the number of extra coefficients. When a fit is on the boundary
    (tau = 0, rho = +-1) the chi-square reference for the fixed effects is kept but
    ``note`` says that it is approximate (a nuisance variance parameter on the boundary;
    see ``docs/ml_companion.md``).

    Parameters
    ----------
    reduced, full : MLFit
        The nested fits (same tables and ``n_quad``).

    Returns
    -------
    LRTest
        ``statistic``, ``df``, ``p_value`` and ``note``.

    Raises
    ------
    SpecError
        Fits that are not nested, or differ in data or ``n_quad`` (one-line message).
    """
    for f, what in ((reduced, "reduced"), (full, "full")):
        if not isinstance(f, MLFit):
            raise SpecError(
                f"lrt: {what} must be an MLFit (bayesdta.fit_ml), got {type(f).__name__}"
            )
    a, b = reduced.data, full.data
    same = a.n_rows == b.n_rows and all(
        np.array_equal(getattr(a, k), getattr(b, k)) for k in ("tp", "fp", "fn", "tn")
    )
    if not same:
        raise SpecError(
            "lrt: the two fits use different data; a likelihood-ratio test needs the same tables"
        )
    if reduced.n_quad != full.n_quad:
        raise SpecError(
            f"lrt: the fits use different quadratures (n_quad {reduced.n_quad} and "
            f"{full.n_quad}); refit with the same n_quad"
        )
    tested = []
    for o in OUTCOMES:
        rc, fc = reduced.design.columns[o], full.design.columns[o]
        missing = [c for c in rc if c not in fc]
        if missing:
            raise SpecError(
                f"lrt: the models are not nested: {o} coefficient {missing[0]!r} of the reduced "
                "model is not in the full model"
            )
        tested += [f"beta_{o}[{c}]" for c in fc if c not in rc]
    for v, lv in reduced.design.levels.items():
        if v in full.design.levels and full.design.levels[v][0] != lv[0]:
            raise SpecError(
                f"lrt: covariate {v} has reference level {lv[0]!r} in one fit and "
                f"{full.design.levels[v][0]!r} in the other"
            )
    df = full.n_params - reduced.n_params
    if df <= 0:
        raise SpecError("lrt: the full model must have more parameters than the reduced one")
    stat = 2.0 * (full.loglik - reduced.loglik)
    notes = []
    if stat < -1e-4:
        notes.append(
            f"the full model's log-likelihood is lower than the reduced model's by {-stat / 2:.2g}:"
            " the full fit did not reach its maximum"
        )
    stat = max(stat, 0.0)
    bnd = [
        f"{n} fit: {', '.join(f.boundary)}"
        for n, f in (("reduced", reduced), ("full", full))
        if f.boundary
    ]
    if bnd:
        notes.append(
            "a fit is on the boundary (" + "; ".join(bnd) + "): the chi-square reference for the "
            "coefficients is approximate (tests of variance parameters would need chi-bar-square "
            "mixtures, Self & Liang 1987)"
        )
    if not (reduced.converged and full.converged):
        notes.append("a fit did not converge: the test is not reliable")
    return LRTest(
        statistic=float(stat),
        df=int(df),
        p_value=float(stats.chi2.sf(stat, df)),
        loglik_reduced=reduced.loglik,
        loglik_full=full.loglik,
        tested=tested,
        note="; ".join(notes),
    )
