"""The logit-normal models' log density, analytic gradient and stored draws, written for numba.

The same densities as the PyMC graphs of :func:`bayesdta.families.bivariate.build_model` with
two and three levels (logit link, normal study effects, no ``tau_by``; every prior family of
the SDs in :data:`SCALE_CODES`, LKJ correlations, normal coefficients), on the same
unconstrained parameters in the same order (log SDs, log-odds of ``(rho + 1) / 2``,
partially centered study effects or means, standard-normal row deviations), including every
normalizing constant of the priors, so that the sampler sees the same numbers as from the
graph. The sizes are read from the data, so each function is compiled once (kept in numba's
on-disk cache) and serves every model of its kind: :mod:`bayesdta.inference.native` builds
the sampler's model on the C callbacks of :func:`c_functions` when the model is one of these
(anything else is compiled from its graph). The PyMC graph stays the reference:
``tests/test_native_models.py`` checks the density, gradient and stored draws against it at
random points.

Why: the graph's compiled gradient costs ~50 us for the 39-row osteoporosis meta-regression
(every intermediate an allocated array, scatter-adds for the study means); the arithmetic
needs a few hundred nanoseconds (benchmarks/README.md, "A log density written for the
three-level model").

Notation (see :func:`bayesdta.families.bivariate._three_level_effects`): for study ``g`` with
``n_g`` rows, ``s11 = tau_se^2 + tw_se^2 / n_g``, ``s22`` likewise, ``s12 = rho tau_se tau_sp +
rho_w tw_se tw_sp / n_g`` (the covariance of the study mean); the first component
``p1 ~ N(w1 lbar1, s11^(w1/2))``, ``a1 = s11^((1 - w1)/2) (p1 - w1 lbar1)`` (study mean minus
the mean linear predictor), the conditional second ``cm = lbar2 + (s12 / s11) a1``,
``c2 = s22 - s12^2 / s11``, ``p2 ~ N(w2 cm, c2^(w2/2))``, ``a2 = (s12 / s11) a1 +
c2^((1 - w2)/2) (p2 - w2 cm)``; row ``r`` of study ``g``: ``theta1 = x1 beta1 + a1 + tw_se dz1``,
``theta2 = x2 beta2 + a2 + tw_sp (rho_w dz1 + sqrt(1 - rho_w^2) dz2)`` with ``dz = z -
mean_g(z)``. The gradient is the reverse pass of these lines, written by hand.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numba
import numpy as np

__all__ = [
    "SCALE_CODES",
    "three_level_kernel",
    "two_level_kernel",
    "c_functions",
    "pack",
    "record",
    "cache_files",
]

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)

#: Prior families of the SDs the numba log density knows (code, parameter names in order).
SCALE_CODES: dict[str, tuple[int, tuple[str, ...]]] = {
    "HalfNormal": (0, ("sigma",)),
    "HalfCauchy": (1, ("beta",)),
    "Exponential": (2, ("lam",)),
    "HalfStudentT": (3, ("nu", "sigma")),
}
_SCALES = (
    "tau_sensitivity",
    "tau_specificity",
    "tau_within_sensitivity",
    "tau_within_specificity",
)
#: Free variables of the three-level graph, in the graph's order (value-variable names).
_FREE = (
    "beta_sensitivity",
    "beta_specificity",
    "tau_sensitivity_log__",
    "tau_specificity_log__",
    "rho_beta_logodds__",
    "tau_within_sensitivity_log__",
    "tau_within_specificity_log__",
    "rho_within_beta_logodds__",
    "study_sensitivity",
    "study_specificity",
    "z_row",
)


@numba.njit(inline="always", cache=True, error_model="numpy")
def scale_lp(t, code, a, b):
    # log prior density of an SD t > 0 and its derivative with respect to log t
    if code == 0:  # HalfNormal(sigma=a)
        return (
            0.5 * math.log(2.0 / math.pi) - math.log(a) - 0.5 * (t / a) ** 2,
            -((t / a) ** 2),
        )
    if code == 1:  # HalfCauchy(beta=a)
        return (
            math.log(2.0 / math.pi) - math.log(a) - math.log1p((t / a) ** 2),
            -2.0 * t * t / (a * a + t * t),
        )
    if code == 2:  # Exponential(lam=a)
        return math.log(a) - a * t, -a * t
    # HalfStudentT(nu=a, sigma=b)
    c = (
        math.log(2.0)
        + math.lgamma(0.5 * (a + 1.0))
        - math.lgamma(0.5 * a)
        - 0.5 * math.log(math.pi * a)
        - math.log(b)
    )
    return (
        c - 0.5 * (a + 1.0) * math.log1p(t * t / (a * b * b)),
        -(a + 1.0) * t * t / (a * b * b + t * t),
    )


@numba.njit(inline="always", cache=True, error_model="numpy")
def log_sigmoid(u):
    if u >= 0.0:
        return -math.log1p(math.exp(-u))
    return u - math.log1p(math.exp(u))


@numba.njit(inline="always", cache=True, error_model="numpy")
def log_sigmoid_and_sigmoid(u):
    e = math.exp(-abs(u))
    if u >= 0.0:
        return -math.log1p(e), 1.0 / (1.0 + e)
    return u - math.log1p(e), e / (1.0 + e)


@numba.njit(inline="always", cache=True, error_model="numpy")
def corr_lp(u, eta):
    # Beta(eta, eta) on b = sigmoid(u), rho = 2 b - 1, with the log-odds Jacobian:
    # value, d/du, rho, d rho / du
    lb, l1b = log_sigmoid(u), log_sigmoid(-u)
    b = math.exp(lb)
    betaln = 2.0 * math.lgamma(eta) - math.lgamma(2.0 * eta)
    return eta * (lb + l1b) - betaln, eta * (1.0 - 2.0 * b), 2.0 * b - 1.0, 2.0 * b * (1.0 - b)


@numba.njit(cache=True, error_model="numpy")
def three_level_kernel(
    x,
    offsets,
    codes,
    n_dim,
    tp,
    tn,
    n1,
    n0,
    wt,
    gidx,
    cw,
    gsize,
    X1,
    X2,
    bm1,
    bs1,
    bm2,
    bs2,
    eta,
    eta_w,
    pa_t1,
    pb_t1,
    pa_t2,
    pb_t2,
    pa_w1,
    pb_w1,
    pa_w2,
    pb_w2,
    within=True,
    theta_out=None,
):
    """Log density and gradient of the three-level model at the flat parameter vector ``x``.

    ``offsets``: start of each free variable of :data:`_FREE` in ``x``
    (:func:`three_level_offsets`); ``codes``: the :data:`SCALE_CODES` of the four SD priors;
    then the model's data (the arrays of :data:`NATIVE_FIELDS`) and prior numbers. The
    formulas are in the module docstring. ``within=False``: the model without the within-study
    level (the comparative "shared" model, :func:`shared_offsets`: no within-study SDs,
    correlation or row deviations, whose offsets and prior numbers are then ignored).
    ``theta_out`` (optional, 2 x rows): receives the row parameters ``theta`` (row-major).
    """
    (o_b1, o_b2, o_t1, o_t2, o_r, o_w1, o_w2, o_rw, o_p1, o_p2, o_z) = offsets
    c_t1, c_t2, c_w1, c_w2 = codes
    grad = np.zeros(n_dim)
    n_rows, k1 = X1.shape
    k2 = X2.shape[1]
    n_groups = gsize.shape[0]
    lp = 0.0
    # hyperparameters and their priors (with Jacobians)
    t1, t2 = math.exp(x[o_t1]), math.exp(x[o_t2])
    v, d = scale_lp(t1, c_t1, pa_t1, pb_t1)
    lp += v + x[o_t1]
    grad[o_t1] += d + 1.0
    v, d = scale_lp(t2, c_t2, pa_t2, pb_t2)
    lp += v + x[o_t2]
    grad[o_t2] += d + 1.0
    v, d, rho, drho = corr_lp(x[o_r], eta)
    lp += v
    grad[o_r] += d
    w1 = 0.0
    w2 = 0.0
    rw = 0.0
    drw = 0.0
    if within:
        w1, w2 = math.exp(x[o_w1]), math.exp(x[o_w2])
        v, d = scale_lp(w1, c_w1, pa_w1, pb_w1)
        lp += v + x[o_w1]
        grad[o_w1] += d + 1.0
        v, d = scale_lp(w2, c_w2, pa_w2, pb_w2)
        lp += v + x[o_w2]
        grad[o_w2] += d + 1.0
        v, d, rw, drw = corr_lp(x[o_rw], eta_w)
        lp += v
        grad[o_rw] += d
    sw = math.sqrt(1.0 - rw * rw)
    # coefficients
    for j in range(k1):
        b = x[o_b1 + j]
        u = (b - bm1[j]) / bs1[j]
        lp += -0.5 * u * u - math.log(bs1[j]) - _HALF_LOG_2PI
        grad[o_b1 + j] += -u / bs1[j]
    for j in range(k2):
        b = x[o_b2 + j]
        u = (b - bm2[j]) / bs2[j]
        lp += -0.5 * u * u - math.log(bs2[j]) - _HALF_LOG_2PI
        grad[o_b2 + j] += -u / bs2[j]
    # linear predictors, their study means, study means of z
    lp1 = np.empty(n_rows)
    lp2 = np.empty(n_rows)
    lb1 = np.zeros(n_groups)
    lb2 = np.zeros(n_groups)
    zb1 = np.zeros(n_groups)
    zb2 = np.zeros(n_groups)
    for r in range(n_rows):
        s = 0.0
        for j in range(k1):
            s += X1[r, j] * x[o_b1 + j]
        lp1[r] = s
        s = 0.0
        for j in range(k2):
            s += X2[r, j] * x[o_b2 + j]
        lp2[r] = s
        g = gidx[r]
        lb1[g] += lp1[r]
        lb2[g] += lp2[r]
        if within:
            zb1[g] += x[o_z + 2 * r]
            zb2[g] += x[o_z + 2 * r + 1]
    # study means (forward); keep what the reverse pass needs
    a1 = np.empty(n_groups)
    a2 = np.empty(n_groups)
    gs = np.empty((n_groups, 12))
    for g in range(n_groups):
        ng = gsize[g]
        lb1[g] /= ng
        lb2[g] /= ng
        zb1[g] /= ng
        zb2[g] /= ng
        s11 = t1 * t1 + w1 * w1 / ng
        s22 = t2 * t2 + w2 * w2 / ng
        s12 = rho * t1 * t2 + rw * w1 * w2 / ng
        c1 = cw[g, 0]
        c2w = cw[g, 1]
        d1 = x[o_p1 + g] - c1 * lb1[g]
        ls11 = math.log(s11)
        var1 = math.exp(c1 * ls11)  # sd^(2 w)
        q1 = math.sqrt(s11 / var1)  # sd^(1 - w)
        a1[g] = q1 * d1
        k = s12 / s11
        cv = s22 - s12 * k
        cm = lb2[g] + k * a1[g]
        d2 = x[o_p2 + g] - c2w * cm
        lcv = math.log(cv)
        var2 = math.exp(c2w * lcv)
        q2 = math.sqrt(cv / var2)
        a2[g] = k * a1[g] + q2 * d2
        lp += -0.5 * d1 * d1 / var1 - 0.5 * c1 * ls11 - _HALF_LOG_2PI
        lp += -0.5 * d2 * d2 / var2 - 0.5 * c2w * lcv - _HALF_LOG_2PI
        gs[g, 0] = s11
        gs[g, 1] = s22
        gs[g, 2] = s12
        gs[g, 3] = d1
        gs[g, 4] = var1
        gs[g, 5] = q1
        gs[g, 6] = k
        gs[g, 7] = cv
        gs[g, 8] = d2
        gs[g, 9] = var2
        gs[g, 10] = q2
    # rows: likelihood and the adjoints of theta
    A1 = np.zeros(n_groups)
    A2 = np.zeros(n_groups)
    S1 = np.zeros(n_groups)
    S2 = np.zeros(n_groups)
    g_lp1 = np.empty(n_rows)
    g_lp2 = np.empty(n_rows)
    g_dz1 = np.empty(n_rows)
    g_dz2 = np.empty(n_rows)
    adj_w1 = 0.0
    adj_w2 = 0.0
    adj_rw = 0.0
    for r in range(n_rows):
        g = gidx[r]
        z1 = 0.0
        z2 = 0.0
        if within:
            z1 = x[o_z + 2 * r]
            z2 = x[o_z + 2 * r + 1]
            lp += -0.5 * (z1 * z1 + z2 * z2) - 2.0 * _HALF_LOG_2PI
        dz1 = z1 - zb1[g]
        dz2 = z2 - zb2[g]
        th1 = lp1[r] + a1[g] + w1 * dz1
        e2 = rw * dz1 + sw * dz2
        th2 = lp2[r] + a2[g] + w2 * e2
        if theta_out is not None:
            theta_out[2 * r] = th1
            theta_out[2 * r + 1] = th2
        wr = wt[r]
        if wr != 0.0:
            # tp log F(th) + (n - tp) log F(-th), log F(-th) = log F(th) - th: one exp
            # and one log1p per outcome
            ls1, sg1 = log_sigmoid_and_sigmoid(th1)
            ls2, sg2 = log_sigmoid_and_sigmoid(th2)
            lp += wr * (n1[r] * ls1 - (n1[r] - tp[r]) * th1 + n0[r] * ls2 - (n0[r] - tn[r]) * th2)
            gt1 = wr * (tp[r] - n1[r] * sg1)
            gt2 = wr * (tn[r] - n0[r] * sg2)
        else:
            gt1 = 0.0
            gt2 = 0.0
        g_lp1[r] = gt1
        g_lp2[r] = gt2
        A1[g] += gt1
        A2[g] += gt2
        adj_w1 += gt1 * dz1
        adj_w2 += gt2 * e2
        adj_rw += gt2 * w2 * (dz1 - rw / sw * dz2)
        gd1 = gt1 * w1 + gt2 * w2 * rw
        gd2 = gt2 * w2 * sw
        g_dz1[r] = gd1
        g_dz2[r] = gd2
        S1[g] += gd1
        S2[g] += gd2
    # study means (reverse)
    adj_t1 = 0.0
    adj_t2 = 0.0
    adj_rho = 0.0
    for g in range(n_groups):
        ng = gsize[g]
        s11 = gs[g, 0]
        s12 = gs[g, 2]
        d1 = gs[g, 3]
        var1 = gs[g, 4]
        q1 = gs[g, 5]
        k = gs[g, 6]
        cv = gs[g, 7]
        d2 = gs[g, 8]
        var2 = gs[g, 9]
        q2 = gs[g, 10]
        c1 = cw[g, 0]
        c2w = cw[g, 1]
        # a2 = k a1 + q2 d2
        adj_k = A2[g] * a1[g]
        adj_a1 = A1[g] + A2[g] * k
        adj_q2 = A2[g] * d2
        adj_d2 = A2[g] * q2 - d2 / var2
        adj_cv = 0.5 * c2w / cv * (d2 * d2 / var2 - 1.0) + adj_q2 * 0.5 * (1.0 - c2w) * q2 / cv
        grad[o_p2 + g] += adj_d2
        adj_cm = -c2w * adj_d2
        adj_lb2 = adj_cm
        adj_k += adj_cm * a1[g]
        adj_a1 += adj_cm * k
        # a1 = q1 d1
        adj_q1 = adj_a1 * d1
        adj_d1 = adj_a1 * q1 - d1 / var1
        adj_s11 = 0.5 * c1 / s11 * (d1 * d1 / var1 - 1.0) + adj_q1 * 0.5 * (1.0 - c1) * q1 / s11
        grad[o_p1 + g] += adj_d1
        adj_lb1 = -c1 * adj_d1
        # k = s12 / s11, cv = s22 - s12^2 / s11
        adj_s12 = adj_k / s11 - 2.0 * k * adj_cv
        adj_s11 += -adj_k * k / s11 + k * k * adj_cv
        adj_s22 = adj_cv
        adj_t1 += 2.0 * t1 * adj_s11 + rho * t2 * adj_s12
        adj_t2 += 2.0 * t2 * adj_s22 + rho * t1 * adj_s12
        adj_w1 += 2.0 * w1 / ng * adj_s11 + rw * w2 / ng * adj_s12
        adj_w2 += 2.0 * w2 / ng * adj_s22 + rw * w1 / ng * adj_s12
        adj_rho += t1 * t2 * adj_s12
        adj_rw += w1 * w2 / ng * adj_s12
        # the study means' adjoints, spread over the rows below
        lb1[g] = adj_lb1 / ng
        lb2[g] = adj_lb2 / ng
        S1[g] /= ng
        S2[g] /= ng
    for r in range(n_rows):
        g = gidx[r]
        a = g_lp1[r] + lb1[g]
        for j in range(k1):
            grad[o_b1 + j] += X1[r, j] * a
        a = g_lp2[r] + lb2[g]
        for j in range(k2):
            grad[o_b2 + j] += X2[r, j] * a
        if within:
            grad[o_z + 2 * r] += g_dz1[r] - S1[g] - x[o_z + 2 * r]
            grad[o_z + 2 * r + 1] += g_dz2[r] - S2[g] - x[o_z + 2 * r + 1]
    grad[o_t1] += adj_t1 * t1
    grad[o_t2] += adj_t2 * t2
    grad[o_r] += adj_rho * drho
    if within:
        grad[o_w1] += adj_w1 * w1
        grad[o_w2] += adj_w2 * w2
        grad[o_rw] += adj_rw * drw
    return lp, grad


# --------------------------------------------------------------------------------------------
# Two levels: one effect per row (the rows are the "groups"), no within-study level.
# --------------------------------------------------------------------------------------------

#: Free variables of the two-level graph, in the graph's order (value-variable names).
FREE_TWO_LEVEL = (
    "beta_sensitivity",
    "beta_specificity",
    "tau_sensitivity_log__",
    "tau_specificity_log__",
    "rho_beta_logodds__",
    "study_sensitivity",
    "study_specificity",
)
#: Free variables of the three-level graph (public name of :data:`_FREE`).
FREE_THREE_LEVEL = _FREE
#: What the sampler stores besides the free variables, in the graph's order (the names of
#: ``model.unobserved_value_vars`` that are not free): the constrained SDs and correlations
#: and the row parameters ``theta`` (rows x 2).
EXPANDED_TWO_LEVEL = ("tau_sensitivity", "tau_specificity", "rho_beta", "rho", "theta")
EXPANDED_THREE_LEVEL = (
    "tau_sensitivity",
    "tau_specificity",
    "rho_beta",
    "tau_within_sensitivity",
    "tau_within_specificity",
    "rho_within_beta",
    "rho",
    "rho_within",
    "theta",
)


@numba.njit(inline="always", cache=True)
def two_level_offsets(k1, k2, n_rows):
    """Start of each free variable of :data:`FREE_TWO_LEVEL` in ``x``, and the length of ``x``."""
    o_t1 = k1 + k2
    o_p1 = o_t1 + 3
    o_p2 = o_p1 + n_rows
    return (0, k1, o_t1, o_t1 + 1, o_t1 + 2, o_p1, o_p2), o_p2 + n_rows


@numba.njit(inline="always", cache=True)
def three_level_offsets(k1, k2, n_groups, n_rows):
    """Start of each free variable of :data:`FREE_THREE_LEVEL` in ``x``, and the length of ``x``."""
    o_t1 = k1 + k2
    o_p1 = o_t1 + 6
    o_p2 = o_p1 + n_groups
    o_z = o_p2 + n_groups
    return (
        (0, k1, o_t1, o_t1 + 1, o_t1 + 2, o_t1 + 3, o_t1 + 4, o_t1 + 5, o_p1, o_p2, o_z),
        o_z + 2 * n_rows,
    )


@numba.njit(inline="always", cache=True)
def shared_offsets(k1, k2, n_groups):
    """Offsets and length of ``x`` of the model without the within-study level.

    As :func:`three_level_offsets` (-1: absent): :data:`FREE_TWO_LEVEL` with one effect per
    study (the comparative "shared" model).
    """
    o_t1 = k1 + k2
    o_p1 = o_t1 + 3
    o_p2 = o_p1 + n_groups
    return (0, k1, o_t1, o_t1 + 1, o_t1 + 2, -1, -1, -1, o_p1, o_p2, -1), o_p2 + n_groups


@numba.njit(cache=True, error_model="numpy")
def two_level_kernel(
    x,
    codes,
    tp,
    tn,
    n1,
    n0,
    wt,
    cw,
    X1,
    X2,
    bm1,
    bs1,
    bm2,
    bs2,
    eta,
    pa_t1,
    pb_t1,
    pa_t2,
    pb_t2,
    theta_out=None,
):
    """Log density and gradient of the two-level model at the flat parameter vector ``x``.

    The same density as :func:`bayesdta.families.bivariate.build_model` with two levels (logit
    link, normal effects, no ``tau_by``): for row ``r`` with linear predictors ``m1, m2`` and
    centering weights ``w1, w2`` (``cw[r]``), ``p1 ~ N(w1 m1, t1^w1)``, ``a1 = t1^(1 - w1) (p1 -
    w1 m1)``, ``cm = m2 + rho (t2 / t1) a1``, ``c = t2 sqrt(1 - rho^2)``, ``p2 ~ N(w2 cm, c^w2)``,
    ``theta = (m1 + a1, cm + c^(1 - w2) (p2 - w2 cm))`` (the three-level study block of the
    module docstring with ``s11 = t1^2``, ``s22 = t2^2``, ``s12 = rho t1 t2`` and one row per
    group). ``codes``: the :data:`SCALE_CODES` of the two SD priors. ``theta_out``
    (optional, 2 x rows): receives ``theta`` (row-major).
    """
    n_rows, k1 = X1.shape
    k2 = X2.shape[1]
    offs, n_dim = two_level_offsets(k1, k2, n_rows)
    o_b1, o_b2, o_t1, o_t2, o_r, o_p1, o_p2 = offs
    c_t1, c_t2 = codes
    grad = np.zeros(n_dim)
    lp = 0.0
    t1, t2 = math.exp(x[o_t1]), math.exp(x[o_t2])
    v, d = scale_lp(t1, c_t1, pa_t1, pb_t1)
    lp += v + x[o_t1]
    grad[o_t1] += d + 1.0
    v, d = scale_lp(t2, c_t2, pa_t2, pb_t2)
    lp += v + x[o_t2]
    grad[o_t2] += d + 1.0
    v, d, rho, drho = corr_lp(x[o_r], eta)
    lp += v
    grad[o_r] += d
    for j in range(k1):
        u = (x[o_b1 + j] - bm1[j]) / bs1[j]
        lp += -0.5 * u * u - math.log(bs1[j]) - _HALF_LOG_2PI
        grad[o_b1 + j] += -u / bs1[j]
    for j in range(k2):
        u = (x[o_b2 + j] - bm2[j]) / bs2[j]
        lp += -0.5 * u * u - math.log(bs2[j]) - _HALF_LOG_2PI
        grad[o_b2 + j] += -u / bs2[j]
    s11 = t1 * t1
    s22 = t2 * t2
    s12 = rho * t1 * t2
    ls11 = math.log(s11)
    k = s12 / s11
    cv = s22 - s12 * k
    lcv = math.log(cv)
    adj_t1 = 0.0
    adj_t2 = 0.0
    adj_rho = 0.0
    for r in range(n_rows):
        m1 = 0.0
        for j in range(k1):
            m1 += X1[r, j] * x[o_b1 + j]
        m2 = 0.0
        for j in range(k2):
            m2 += X2[r, j] * x[o_b2 + j]
        c1 = cw[r, 0]
        c2w = cw[r, 1]
        d1 = x[o_p1 + r] - c1 * m1
        var1 = math.exp(c1 * ls11)
        q1 = math.sqrt(s11 / var1)
        a1 = q1 * d1
        cm = m2 + k * a1
        d2 = x[o_p2 + r] - c2w * cm
        var2 = math.exp(c2w * lcv)
        q2 = math.sqrt(cv / var2)
        a2 = k * a1 + q2 * d2
        lp += -0.5 * d1 * d1 / var1 - 0.5 * c1 * ls11 - _HALF_LOG_2PI
        lp += -0.5 * d2 * d2 / var2 - 0.5 * c2w * lcv - _HALF_LOG_2PI
        th1 = m1 + a1
        th2 = m2 + a2
        if theta_out is not None:
            theta_out[2 * r] = th1
            theta_out[2 * r + 1] = th2
        wr = wt[r]
        if wr != 0.0:
            ls1, sg1 = log_sigmoid_and_sigmoid(th1)
            ls2, sg2 = log_sigmoid_and_sigmoid(th2)
            lp += wr * (n1[r] * ls1 - (n1[r] - tp[r]) * th1 + n0[r] * ls2 - (n0[r] - tn[r]) * th2)
            A1 = wr * (tp[r] - n1[r] * sg1)
            A2 = wr * (tn[r] - n0[r] * sg2)
        else:
            A1 = 0.0
            A2 = 0.0
        # reverse pass of the lines above (the three-level study block with n_g = 1)
        adj_k = A2 * a1
        adj_a1 = A1 + A2 * k
        adj_q2 = A2 * d2
        adj_d2 = A2 * q2 - d2 / var2
        adj_cv = 0.5 * c2w / cv * (d2 * d2 / var2 - 1.0) + adj_q2 * 0.5 * (1.0 - c2w) * q2 / cv
        grad[o_p2 + r] += adj_d2
        adj_cm = -c2w * adj_d2
        adj_m2 = A2 + adj_cm
        adj_k += adj_cm * a1
        adj_a1 += adj_cm * k
        adj_q1 = adj_a1 * d1
        adj_d1 = adj_a1 * q1 - d1 / var1
        adj_s11 = 0.5 * c1 / s11 * (d1 * d1 / var1 - 1.0) + adj_q1 * 0.5 * (1.0 - c1) * q1 / s11
        grad[o_p1 + r] += adj_d1
        adj_m1 = A1 - c1 * adj_d1
        adj_s12 = adj_k / s11 - 2.0 * k * adj_cv
        adj_s11 += -adj_k * k / s11 + k * k * adj_cv
        adj_s22 = adj_cv
        adj_t1 += 2.0 * t1 * adj_s11 + rho * t2 * adj_s12
        adj_t2 += 2.0 * t2 * adj_s22 + rho * t1 * adj_s12
        adj_rho += t1 * t2 * adj_s12
        for j in range(k1):
            grad[o_b1 + j] += X1[r, j] * adj_m1
        for j in range(k2):
            grad[o_b2 + j] += X2[r, j] * adj_m2
    grad[o_t1] += adj_t1 * t1
    grad[o_t2] += adj_t2 * t2
    grad[o_r] += adj_rho * drho
    return lp, grad


@numba.njit(inline="always", cache=True, error_model="numpy")
def expanded_scalars(x, o_t1, out, n_dim, within):
    """Write the constrained SDs and correlations after ``x`` in ``out``.

    In the order of :data:`EXPANDED_THREE_LEVEL` (``within``) or :data:`EXPANDED_TWO_LEVEL`
    (``o_t1``: offset of the first log SD in ``x``); returns the offset of ``theta``.
    """
    b = math.exp(log_sigmoid(x[o_t1 + 2]))
    out[n_dim] = math.exp(x[o_t1])
    out[n_dim + 1] = math.exp(x[o_t1 + 1])
    out[n_dim + 2] = b
    if within:
        bw = math.exp(log_sigmoid(x[o_t1 + 5]))
        out[n_dim + 3] = math.exp(x[o_t1 + 3])
        out[n_dim + 4] = math.exp(x[o_t1 + 4])
        out[n_dim + 5] = bw
        out[n_dim + 6] = 2.0 * b - 1.0
        out[n_dim + 7] = 2.0 * bw - 1.0
        return n_dim + 8
    out[n_dim + 3] = 2.0 * b - 1.0
    return n_dim + 4


# --------------------------------------------------------------------------------------------
# The sampler's C entry points, one per kind for every size: the sizes are read from the data,
# so numba compiles each once per machine (kept in its on-disk cache next to this file) and no
# model structure needs compiling at all.
# --------------------------------------------------------------------------------------------

#: The arrays of a native model, in the order of its user-data record (see :func:`pack`).
#: Two-level models carry placeholders for the three-level fields they do not use.
NATIVE_FIELDS = (
    "tp",
    "tn",
    "n1",
    "n0",
    "weight",
    "group_index",
    "centering",
    "group_size",
    "X_sensitivity",
    "X_specificity",
    "prior__beta_sensitivity__mu",
    "prior__beta_sensitivity__sigma",
    "prior__beta_specificity__mu",
    "prior__beta_specificity__sigma",
    "native__eta",
    "native__scale_params",
    "native__scale_codes",
)
_INT_FIELDS = ("group_index", "native__scale_codes")
_N_FIELDS = len(NATIVE_FIELDS)


def pack(kind: str, families: dict[str, str], values: dict[str, Any]) -> dict[str, np.ndarray]:
    """The arrays of :data:`NATIVE_FIELDS` for a model of ``kind`` with data ``values``.

    ``values``: the model's data by name (``BuiltModel.data_values``); ``families``: the
    prior family of each SD by parameter name. The prior numbers of the SDs and correlations
    are gathered into ``native__eta`` (2), ``native__scale_params`` (4 x 2) and
    ``native__scale_codes`` (4; :data:`SCALE_CODES`).
    """
    three = kind == "three_level_normal_logit"
    scales = _SCALES if three else _SCALES[:2]
    codes = np.zeros(4, dtype=np.int64)
    params = np.ones((4, 2))
    for i, s in enumerate(scales):
        code, names = SCALE_CODES[families[s]]
        codes[i] = code
        for j, p in enumerate(names):
            params[i, j] = float(values[f"prior__{s}__{p}"])
    eta = float(values["prior__rho__eta"])
    eta_w = float(values["prior__rho_within__eta"]) if three else eta
    n_rows = len(values["tp"])
    out = {name: values[name] for name in NATIVE_FIELDS[:14] if name in values}
    if kind == "two_level_normal_logit":  # every row its own group
        out["group_index"] = np.arange(n_rows)
        out["group_size"] = np.ones(n_rows)
    out["native__eta"] = np.array([eta, eta_w])
    out["native__scale_params"] = params
    out["native__scale_codes"] = codes
    arrays = {}
    for name in NATIVE_FIELDS:
        dtype = np.int64 if name in _INT_FIELDS else np.float64
        a = np.array(out[name], dtype=dtype, order="C", copy=True)
        a.flags.writeable = False
        arrays[name] = a
    return arrays


def record(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The user-data record of :func:`pack`'s arrays: address and two extents per field.

    The arrays must stay alive as long as the record is used (the compiled model keeps them).
    """
    rec = np.zeros(3 * _N_FIELDS, dtype=np.uint64)
    for i, name in enumerate(NATIVE_FIELDS):
        a = arrays[name]
        if a.ndim not in (1, 2) or not a.flags.c_contiguous:
            raise ValueError(f"{name}: a C-contiguous array of one or two dimensions is needed")
        rec[3 * i] = a.ctypes.data
        rec[3 * i + 1] = a.shape[0]
        rec[3 * i + 2] = a.shape[1] if a.ndim == 2 else 1
    return rec


@numba.extending.intrinsic
def _void_ptr(typingctx, src):
    # an address (uint64) as a void pointer
    from numba.core import cgutils, types

    sig = types.voidptr(src)

    def codegen(cgctx, builder, sig, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return sig, codegen


@numba.njit(inline="always", cache=True)
def _vec(u, i):
    return numba.carray(_void_ptr(u[3 * i]), (np.intp(u[3 * i + 1]),), np.float64)


@numba.njit(inline="always", cache=True)
def _ivec(u, i):
    return numba.carray(_void_ptr(u[3 * i]), (np.intp(u[3 * i + 1]),), np.int64)


@numba.njit(inline="always", cache=True)
def _mat(u, i):
    return numba.carray(
        _void_ptr(u[3 * i]), (np.intp(u[3 * i + 1]), np.intp(u[3 * i + 2])), np.float64
    )


@numba.njit(inline="always", cache=True)
def _finish(lp, grad, n_dim, out_, logp_):
    out = numba.carray(out_, (n_dim,))
    logp_[0] = lp
    finite = True
    for i in range(n_dim):
        out[i] = grad[i]
        if not np.isfinite(grad[i]):
            finite = False
    if not finite:
        return 3
    if not np.isfinite(lp):
        return 4
    return 0


@numba.njit(inline="always", cache=True)
def _two_level_eval(u, x, theta_out):
    sp = _mat(u, 15)
    codes = _ivec(u, 16)
    return two_level_kernel(
        x,
        (codes[0], codes[1]),
        _vec(u, 0),
        _vec(u, 1),
        _vec(u, 2),
        _vec(u, 3),
        _vec(u, 4),
        _mat(u, 6),
        _mat(u, 8),
        _mat(u, 9),
        _vec(u, 10),
        _vec(u, 11),
        _vec(u, 12),
        _vec(u, 13),
        _vec(u, 14)[0],
        sp[0, 0],
        sp[0, 1],
        sp[1, 0],
        sp[1, 1],
        theta_out,
    )


@numba.njit(inline="always", cache=True)
def _grouped_dims(u, within):
    # offsets and length of x of the three-level (within) or the "shared" model
    X1 = _mat(u, 8)
    k2 = _mat(u, 9).shape[1]
    n_groups = _vec(u, 7).shape[0]
    if within:
        return three_level_offsets(X1.shape[1], k2, n_groups, X1.shape[0])
    return shared_offsets(X1.shape[1], k2, n_groups)


@numba.njit(inline="always", cache=True)
def _grouped_eval(u, x, within, theta_out):
    offsets, n_dim = _grouped_dims(u, within)
    sp = _mat(u, 15)
    codes = _ivec(u, 16)
    eta = _vec(u, 14)
    return three_level_kernel(
        x,
        offsets,
        (codes[0], codes[1], codes[2], codes[3]),
        n_dim,
        _vec(u, 0),
        _vec(u, 1),
        _vec(u, 2),
        _vec(u, 3),
        _vec(u, 4),
        _ivec(u, 5),
        _mat(u, 6),
        _vec(u, 7),
        _mat(u, 8),
        _mat(u, 9),
        _vec(u, 10),
        _vec(u, 11),
        _vec(u, 12),
        _vec(u, 13),
        eta[0],
        eta[1],
        sp[0, 0],
        sp[0, 1],
        sp[1, 0],
        sp[1, 1],
        sp[2, 0],
        sp[2, 1],
        sp[3, 0],
        sp[3, 1],
        within,
        theta_out,
    )


def _c_logp_two(dim, x_, out_, logp_, user_data_):
    u = numba.carray(user_data_, (3 * _N_FIELDS,), np.uint64)
    X1 = _mat(u, 8)
    _, n_dim = two_level_offsets(X1.shape[1], _mat(u, 9).shape[1], X1.shape[0])
    if dim != n_dim:
        return -1
    lp, grad = _two_level_eval(u, numba.carray(x_, (n_dim,)), None)
    return _finish(lp, grad, n_dim, out_, logp_)


def _c_expand_two(dim, expanded, x_, out_, user_data_):
    u = numba.carray(user_data_, (3 * _N_FIELDS,), np.uint64)
    X1 = _mat(u, 8)
    k1, k2, n_rows = X1.shape[1], _mat(u, 9).shape[1], X1.shape[0]
    _, n_dim = two_level_offsets(k1, k2, n_rows)
    if dim != n_dim or expanded != n_dim + 4 + 2 * n_rows:
        return -1
    x = numba.carray(x_, (n_dim,))
    out = numba.carray(out_, (expanded,))
    for i in range(n_dim):
        out[i] = x[i]
    o = expanded_scalars(x, k1 + k2, out, n_dim, False)
    _two_level_eval(u, x, out[o:])
    return 0


@numba.njit(inline="always", cache=True)
def _grouped_logp(dim, x_, out_, logp_, user_data_, within):
    u = numba.carray(user_data_, (3 * _N_FIELDS,), np.uint64)
    _, n_dim = _grouped_dims(u, within)
    if dim != n_dim:
        return -1
    lp, grad = _grouped_eval(u, numba.carray(x_, (n_dim,)), within, None)
    return _finish(lp, grad, n_dim, out_, logp_)


@numba.njit(inline="always", cache=True)
def _grouped_expand(dim, expanded, x_, out_, user_data_, within):
    u = numba.carray(user_data_, (3 * _N_FIELDS,), np.uint64)
    offsets, n_dim = _grouped_dims(u, within)
    n_rows = _mat(u, 8).shape[0]
    if dim != n_dim or expanded != n_dim + (8 if within else 4) + 2 * n_rows:
        return -1
    x = numba.carray(x_, (n_dim,))
    out = numba.carray(out_, (expanded,))
    for i in range(n_dim):
        out[i] = x[i]
    o = expanded_scalars(x, offsets[2], out, n_dim, within)
    _grouped_eval(u, x, within, out[o:])
    return 0


def _c_logp_three(dim, x_, out_, logp_, user_data_):
    return _grouped_logp(dim, x_, out_, logp_, user_data_, True)


def _c_expand_three(dim, expanded, x_, out_, user_data_):
    return _grouped_expand(dim, expanded, x_, out_, user_data_, True)


def _c_logp_shared(dim, x_, out_, logp_, user_data_):
    return _grouped_logp(dim, x_, out_, logp_, user_data_, False)


def _c_expand_shared(dim, expanded, x_, out_, user_data_):
    return _grouped_expand(dim, expanded, x_, out_, user_data_, False)


_C_FUNCS: dict[str, tuple[Any, Any]] = {}
_PYFUNCS = {
    "two_level_normal_logit": (_c_logp_two, _c_expand_two),
    "three_level_normal_logit": (_c_logp_three, _c_expand_three),
    "shared_normal_logit": (_c_logp_shared, _c_expand_shared),
}


def c_functions(kind: str) -> tuple[Any, Any]:
    """The C log-density and expansion callbacks of nutpie for models of ``kind``.

    Compiled on first use in a process (loaded from numba's on-disk cache when this machine
    compiled them before: well under a second; else 10-20 s, once per machine and version).
    Signatures: ``logp(dim, x, grad, logp, user_data) -> int`` and ``expand(dim, n_expanded,
    x, out, user_data) -> int``, with ``user_data`` the address of :func:`record`'s array.
    """
    if kind not in _C_FUNCS:
        t = numba.types
        sig_logp = t.int64(
            t.uint64, t.CPointer(t.double), t.CPointer(t.double), t.CPointer(t.double), t.voidptr
        )
        sig_expand = t.int64(
            t.uint64, t.uint64, t.CPointer(t.double), t.CPointer(t.double), t.voidptr
        )
        logp, expand = _PYFUNCS[kind]
        _C_FUNCS[kind] = (
            numba.cfunc(sig_logp, cache=True, error_model="numpy")(logp),
            numba.cfunc(sig_expand, cache=True, error_model="numpy")(expand),
        )
    return _C_FUNCS[kind]


def cache_files() -> tuple[str | None, list[Path]]:
    """Numba's on-disk cache of this module's compiled functions: its directory and files.

    numba keeps them next to this file (``__pycache__``) or, where that is not writable, in
    its user-wide cache directory; they are checked against this file's time stamp, so an
    edited or upgraded module is compiled afresh.
    """
    try:
        d = Path(two_level_kernel._cache._cache_path)
    except AttributeError:  # pragma: no cover - numba without the attribute
        return None, []
    stem = Path(__file__).stem
    files = sorted(p for p in d.glob(f"{stem}.*") if p.suffix in (".nbi", ".nbc"))
    return str(d), files
