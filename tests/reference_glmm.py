"""Independent maximum-likelihood reference for the bivariate binomial GLMM.

This is a *test helper* (not a test module).  It implements, with numpy/scipy
only, the two-level bivariate binomial random-effects model of Chu & Cole
(2006) for meta-analysis of diagnostic test accuracy:

    TP_i ~ Binomial(n1_i, invlogit(mu_se + u_i1)),   n1_i = TP_i + FN_i
    TN_i ~ Binomial(n0_i, invlogit(mu_sp + u_i2)),   n0_i = TN_i + FP_i
    u_i  ~ MVN2(0, Sigma),
    Sigma = [[tau_se^2, rho tau_se tau_sp], [rho tau_se tau_sp, tau_sp^2]].

The marginal likelihood of each study is a 2-D integral over u_i that is
evaluated by *adaptive* Gauss-Hermite quadrature (Liu & Pierce 1994;
Pinheiro & Bates 1995): for every study the mode u_hat of the integrand and
the Hessian there are found by (vectorised, damped) Newton iterations; the
tensor-product Gauss-Hermite grid is then centred at u_hat and
rotated/scaled by the Cholesky factor of the inverse negative Hessian.
With ``n_quad=1`` the rule reduces exactly to the Laplace approximation
(what ``lme4::glmer(..., nAGQ = 1)`` computes).

The log-likelihood *includes* the binomial coefficients log C(n, y), so it is
on the same scale as ``logLik()`` of a binomial ``glmer`` fit with
``cbind(successes, failures)`` responses.

Public API: :func:`fit_bivariate_ml`, plus the lower-level
:func:`marginal_loglik` (useful for checks).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy import optimize
from scipy.special import gammaln, logsumexp

__all__ = ["fit_bivariate_ml", "marginal_loglik", "unpack_params"]

_LOG_TAU_MIN, _LOG_TAU_MAX = -12.0, 5.0
_ATANH_RHO_MAX = 8.0  # |rho| < 1 - 2e-7


# ----------------------------------------------------------------------------
# parameter handling
# ----------------------------------------------------------------------------
def unpack_params(theta: np.ndarray) -> tuple[float, float, float, float, float]:
    """Map unconstrained (mu_se, mu_sp, log tau_se, log tau_sp, atanh rho)."""
    mu_se, mu_sp, lt_se, lt_sp, z = (float(v) for v in theta)
    return mu_se, mu_sp, float(np.exp(lt_se)), float(np.exp(lt_sp)), float(np.tanh(z))


def _as_counts(tp, fp, fn, tn):
    arrs = [np.asarray(a, dtype=float).ravel() for a in (tp, fp, fn, tn)]
    k = arrs[0].size
    if any(a.size != k for a in arrs):
        raise ValueError("tp, fp, fn, tn must have the same length")
    if k < 2:
        raise ValueError("need at least two studies")
    for a in arrs:
        if np.any(~np.isfinite(a)) or np.any(a < 0) or np.any(a != np.round(a)):
            raise ValueError("counts must be finite non-negative integers")
    tp, fp, fn, tn = arrs
    n1, n0 = tp + fn, tn + fp
    if np.any(n1 == 0) or np.any(n0 == 0):
        raise ValueError("every study needs n1 = TP+FN > 0 and n0 = TN+FP > 0")
    return tp, fp, fn, tn, n1, n0


def _log_choose(n, y):
    return gammaln(n + 1.0) - gammaln(y + 1.0) - gammaln(n - y + 1.0)


def _gh_grid(n_quad: int):
    """Tensor-product Gauss-Hermite grid for weight exp(-|z|^2) in 2-D.

    Returns nodes Z (m, 2) and log weights *including* the exp(|z|^2) factor,
    i.e. integral g(z) dz ~= sum exp(logw) g(Z).
    """
    if n_quad < 1:
        raise ValueError("n_quad must be >= 1")
    z, w = np.polynomial.hermite.hermgauss(n_quad)
    lw = np.log(w) + z**2
    Z = np.stack(np.meshgrid(z, z, indexing="ij"), axis=-1).reshape(-1, 2)
    LW = (lw[:, None] + lw[None, :]).reshape(-1)
    return Z, LW


# ----------------------------------------------------------------------------
# marginal likelihood
# ----------------------------------------------------------------------------
def _log_integrand(u1, u2, mu_se, mu_sp, tp, n1, tn, n0, s11, s12, s22, log_norm):
    """log [ p(TP|u) p(TN|u) N(u; 0, Sigma) ] without binomial coefficients.

    u1, u2 broadcast against the per-study arrays. (s11, s12, s22) is the
    precision matrix Sigma^{-1}; log_norm = -log(2 pi) - 0.5 log det Sigma.
    """
    e1 = mu_se + u1
    e2 = mu_sp + u2
    ll = tp * e1 - n1 * np.logaddexp(0.0, e1) + tn * e2 - n0 * np.logaddexp(0.0, e2)
    quad = s11 * u1 * u1 + 2.0 * s12 * u1 * u2 + s22 * u2 * u2
    return ll - 0.5 * quad + log_norm


def _study_loglik(theta, data, n_quad, grid=None, return_modes=False, u0=None):
    tp, n1, tn, n0, logc = data
    mu_se, mu_sp, tau_se, tau_sp, rho = unpack_params(theta)
    det = (tau_se * tau_sp) ** 2 * (1.0 - rho * rho)
    if not np.isfinite(det) or det <= 0.0:
        return np.full(tp.shape, -np.inf)
    # precision matrix
    s11 = tau_sp**2 / det
    s22 = tau_se**2 / det
    s12 = -rho * tau_se * tau_sp / det
    log_norm = -np.log(2.0 * np.pi) - 0.5 * np.log(det)
    args = (mu_se, mu_sp, tp, n1, tn, n0, s11, s12, s22, log_norm)

    # --- mode of the (strictly concave) log integrand: damped Newton --------
    # (u0: optional warm start; the result does not depend on it because the
    #  log integrand is strictly concave and Newton is run to ~1e-11)
    if u0 is None:
        u1 = np.zeros_like(tp)
        u2 = np.zeros_like(tp)
    else:
        u1 = np.array(u0[:, 0], dtype=float)
        u2 = np.array(u0[:, 1], dtype=float)
    f = _log_integrand(u1, u2, *args)
    for _ in range(200):
        p1 = 0.5 * (1.0 + np.tanh(0.5 * (mu_se + u1)))  # stable invlogit
        p2 = 0.5 * (1.0 + np.tanh(0.5 * (mu_sp + u2)))
        g1 = tp - n1 * p1 - (s11 * u1 + s12 * u2)
        g2 = tn - n0 * p2 - (s12 * u1 + s22 * u2)
        a11 = n1 * p1 * (1.0 - p1) + s11
        a22 = n0 * p2 * (1.0 - p2) + s22
        a12 = np.full_like(tp, s12)
        da = a11 * a22 - a12 * a12
        d1 = (a22 * g1 - a12 * g2) / da
        d2 = (a11 * g2 - a12 * g1) / da
        step = np.ones_like(tp)
        # backtracking per study (needed for very large precisions / counts)
        for _ in range(60):
            fn_ = _log_integrand(u1 + step * d1, u2 + step * d2, *args)
            bad = ~(fn_ >= f - 1e-12 * np.abs(f))
            if not bad.any():
                break
            step = np.where(bad, 0.5 * step, step)
        u1 = u1 + step * d1
        u2 = u2 + step * d2
        f = fn_
        if np.max(np.abs(step * d1) + np.abs(step * d2)) < 1e-11:
            break
    # negative Hessian at the mode and its inverse
    p1 = 0.5 * (1.0 + np.tanh(0.5 * (mu_se + u1)))
    p2 = 0.5 * (1.0 + np.tanh(0.5 * (mu_sp + u2)))
    a11 = n1 * p1 * (1.0 - p1) + s11
    a22 = n0 * p2 * (1.0 - p2) + s22
    a12 = s12
    da = a11 * a22 - a12 * a12
    b11, b22, b12 = a22 / da, a11 / da, -a12 / da  # inverse (posterior cov.)
    # Cholesky of B = A^{-1}
    l11 = np.sqrt(b11)
    l21 = b12 / l11
    l22 = np.sqrt(np.maximum(b22 - l21 * l21, 0.0))
    log_det_l = np.log(l11) + np.log(l22)

    Z, LW = grid if grid is not None else _gh_grid(n_quad)
    r2 = np.sqrt(2.0)
    z1 = Z[:, 0][None, :]
    z2 = Z[:, 1][None, :]
    U1 = u1[:, None] + r2 * l11[:, None] * z1
    U2 = u2[:, None] + r2 * (l21[:, None] * z1 + l22[:, None] * z2)
    bargs = tuple(a[:, None] if isinstance(a, np.ndarray) else a for a in args)
    lf = _log_integrand(U1, U2, *bargs)
    ll = logsumexp(lf + LW[None, :], axis=1) + np.log(2.0) + log_det_l + logc
    if return_modes:
        return ll, np.column_stack([u1, u2])
    return ll


def marginal_loglik(theta, tp, fp, fn, tn, *, n_quad: int = 15) -> float:
    """Marginal log-likelihood at unconstrained theta.

    theta = (mu_se, mu_sp, log tau_se, log tau_sp, atanh rho).  Includes the
    binomial coefficients.  ``n_quad=1`` gives the Laplace approximation.
    """
    tp, fp, fn, tn, n1, n0 = _as_counts(tp, fp, fn, tn)
    logc = _log_choose(n1, tp) + _log_choose(n0, tn)
    return float(np.sum(_study_loglik(np.asarray(theta, float), (tp, n1, tn, n0, logc), n_quad)))


# ----------------------------------------------------------------------------
# numerical derivatives
# ----------------------------------------------------------------------------
def _grad_central(f, x, h):
    g = np.empty_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e[j] = h[j]
        g[j] = (f(x + e) - f(x - e)) / (2.0 * h[j])
    return g


def _hessian_central(f, x, h):
    """Central-difference Hessian (4 evaluations per off-diagonal element)."""
    p = x.size
    H = np.empty((p, p))
    f0 = f(x)
    for i in range(p):
        ei = np.zeros(p)
        ei[i] = h[i]
        H[i, i] = (f(x + ei) - 2.0 * f0 + f(x - ei)) / h[i] ** 2
        for j in range(i):
            ej = np.zeros(p)
            ej[j] = h[j]
            H[i, j] = H[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4.0 * h[i] * h[j])
    return H


def _start_values(tp, fp, fn, tn):
    lse = np.log((tp + 0.5) / (fn + 0.5))
    lsp = np.log((tn + 0.5) / (fp + 0.5))
    tau_se = max(np.std(lse, ddof=1), 0.1)
    tau_sp = max(np.std(lsp, ddof=1), 0.1)
    r = np.corrcoef(lse, lsp)[0, 1] if np.std(lse) > 0 and np.std(lsp) > 0 else 0.0
    r = float(np.clip(np.nan_to_num(r), -0.9, 0.9))
    return np.array([lse.mean(), lsp.mean(), np.log(tau_se), np.log(tau_sp), np.arctanh(r)])


# ----------------------------------------------------------------------------
# main entry point
# ----------------------------------------------------------------------------
def fit_bivariate_ml(tp, fp, fn, tn, *, n_quad: int = 15) -> dict[str, Any]:
    """Maximum-likelihood fit of the bivariate binomial GLMM by AGHQ.

    Parameters
    ----------
    tp, fp, fn, tn : array-like of non-negative integers (one entry per study)
    n_quad : Gauss-Hermite nodes per dimension (n_quad**2 nodes per study);
        ``n_quad=1`` is the Laplace approximation (= lme4 ``nAGQ = 1``).

    Returns
    -------
    dict with keys
        mu_se, mu_sp     : pooled logit sensitivity / specificity
        tau_se, tau_sp   : between-study SDs on the logit scale
        rho              : between-study correlation of the logits
        loglik           : maximised marginal log-likelihood (incl. log C(n, y))
        se               : dict {"mu_se": ..., "mu_sp": ...} of standard errors
                           from the inverse numerical Hessian of -loglik in the
                           unconstrained parameterisation (mu_se, mu_sp,
                           log tau_se, log tau_sp, atanh rho)
        se_mu_se, se_mu_sp : the same two numbers, flat
        converged        : bool (optimiser success or |grad| small on the free
                           parameters, and positive-definite Hessian there)
        boundary         : bool, True if a tau is ~0 (< 1e-4) or
                           |rho| > 0.9999.  Then the SEs come from the Hessian of
                           the remaining free parameters (tau at the bound
                           and -- if a tau is ~0 -- rho are held fixed).
        theta            : unconstrained MLE (np.ndarray, length 5)
        cov_theta        : inverse Hessian in the unconstrained scale (5x5)
        grad_norm, n_quad, n_iter, message, time_sec : diagnostics
    """
    t0 = time.perf_counter()
    tp, fp, fn, tn, n1, n0 = _as_counts(tp, fp, fn, tn)
    logc = _log_choose(n1, tp) + _log_choose(n0, tn)
    data = (tp, n1, tn, n0, logc)
    grid = _gh_grid(int(n_quad))

    lo = np.array([-np.inf, -np.inf, _LOG_TAU_MIN, _LOG_TAU_MIN, -_ATANH_RHO_MAX])
    hi = np.array([np.inf, np.inf, _LOG_TAU_MAX, _LOG_TAU_MAX, _ATANH_RHO_MAX])

    warm = {"u": None}

    def nll(theta):
        theta = np.clip(theta, lo, hi)
        ll, modes = _study_loglik(theta, data, n_quad, grid, return_modes=True, u0=warm["u"])
        v = -np.sum(ll)
        if np.isfinite(v):
            if np.all(np.isfinite(modes)):
                warm["u"] = modes
            return v
        warm["u"] = None
        return 1e300

    hgrad = np.full(5, 1e-5)

    def nll_grad(theta):
        return _grad_central(nll, theta, hgrad)

    x0 = _start_values(tp, fp, fn, tn)
    best = None
    # L-BFGS-B with central-difference gradients, restarted from its own
    # optimum until it stops moving (it occasionally stops early "ABNORMAL").
    x = x0
    n_iter = 0
    message = ""
    for _ in range(3):
        res = optimize.minimize(
            nll,
            x,
            jac=nll_grad,
            method="L-BFGS-B",
            bounds=list(zip(lo, hi, strict=True)),
            options={"maxiter": 2000, "ftol": 1e-15, "gtol": 1e-8, "maxcor": 20},
        )
        n_iter += int(res.nit)
        message = str(res.message)
        if best is None or res.fun <= best.fun:
            best = res
        if np.allclose(res.x, x, atol=1e-9, rtol=0):
            break
        x = res.x
    theta = np.asarray(best.x, float)

    # Newton polishing with a (fixed) numerical Hessian; then the Hessian is
    # recomputed at the final point for the standard errors.
    hh = np.full(5, 1e-4)
    H = _hessian_central(nll, theta, hh)
    moved = False
    for _ in range(5):
        g = nll_grad(theta)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(step)) > 0.1:
            break
        cand = np.clip(theta - step, lo, hi)
        if nll(cand) <= nll(theta) + 1e-12:
            theta = cand
            moved = True
        else:
            break
        if np.max(np.abs(step)) < 1e-9:
            break
    if moved:
        H = _hessian_central(nll, theta, hh)

    # boundary handling: tau -> 0 (log tau at its lower bound) or |rho| -> 1.
    # If a tau is on the boundary, rho is not identified and is dropped too.
    # (the likelihood is flat there, so the optimiser may stop short of the
    # hard bounds: use tau < 1e-4 and |rho| > 0.9999 as "on the boundary")
    tau_lo = theta[2:4] < np.log(1e-4)
    tau_hi = np.isclose(theta[2:4], hi[2:4], atol=1e-2)
    rho_b = abs(theta[4]) > np.arctanh(0.9999)
    fixed = np.zeros(5, bool)
    fixed[2:4] = tau_lo | tau_hi
    fixed[4] = rho_b or bool(np.any(tau_lo))
    boundary = bool(fixed.any())
    free = np.flatnonzero(~fixed)

    g = nll_grad(theta)
    grad_norm = float(np.max(np.abs(g[free])))
    loglik = -float(nll(theta))
    if boundary:  # Hessian of the profile on the free coordinates only

        def nll_free(xf):
            x = theta.copy()
            x[free] = xf
            return nll(x)

        Hf = _hessian_central(nll_free, theta[free], hh[free])
    else:
        Hf = H
    cov = np.full((5, 5), np.nan)
    try:
        pd = bool(np.all(np.linalg.eigvalsh(Hf) > 0))
        cov[np.ix_(free, free)] = np.linalg.inv(Hf)
    except np.linalg.LinAlgError:
        pd = False
    se_mu = np.sqrt(np.diag(cov)[:2]) if pd else np.full(2, np.nan)
    converged = bool((best.success or grad_norm < 1e-3) and grad_norm < 1e-2 and pd)

    mu_se, mu_sp, tau_se, tau_sp, rho = unpack_params(theta)
    return {
        "mu_se": mu_se,
        "mu_sp": mu_sp,
        "tau_se": tau_se,
        "tau_sp": tau_sp,
        "rho": rho,
        "loglik": loglik,
        "se": {"mu_se": float(se_mu[0]), "mu_sp": float(se_mu[1])},
        "se_mu_se": float(se_mu[0]),
        "se_mu_sp": float(se_mu[1]),
        "converged": converged,
        "boundary": boundary,
        "theta": theta,
        "cov_theta": cov,
        "grad_norm": grad_norm,
        "n_quad": int(n_quad),
        "n_iter": n_iter,
        "message": message,
        "time_sec": time.perf_counter() - t0,
    }
