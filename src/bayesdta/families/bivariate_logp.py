"""The three-level model's log density with its analytic gradient, written for numba.

The same density as the PyMC graph of :func:`bayesdta.families.bivariate.build_model` (three
levels, logit link, normal study effects, no ``tau_by``; every prior family of the SDs that
:mod:`bayesdta.families.priors` allows, LKJ correlations, normal coefficients), on the same
unconstrained parameters in the same order (log SDs, log-odds of ``(rho + 1) / 2``,
partially centered study means, standard-normal row deviations), including every
normalizing constant of the priors, so that the sampler sees the same numbers whether the
gradient comes from the graph or from here. The PyMC graph stays the reference: the sampler
module swaps this function in for the graph's compiled log density only when
:func:`three_level_layout` accepts the model (anything else keeps the graph), and
``tests/test_fast_logp.py`` checks the log density and gradient against the graph at random
points.

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
from typing import Any

import numba
import numpy as np

__all__ = [
    "SCALE_CODES",
    "three_level_layout",
    "make_three_level_logp",
    "three_level_kernel",
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


def three_level_layout(
    built: Any, names: list[str], shapes: list[tuple[int, ...]]
) -> dict[str, Any] | None:
    """What the numba log density needs to stand in for ``built``'s graph, or ``None``.

    ``names`` and ``shapes``: the free (value) variables of the compiled model in the order
    of its flat parameter vector. ``None`` (keep the graph) unless the model is the
    three-level bivariate binomial with the logit link, normal study effects, no ``tau_by``,
    SD priors of :data:`SCALE_CODES`, and exactly the free variables of :data:`_FREE`.
    """
    info = getattr(built, "numba_logp", None)
    dv = built.data_values
    if not info or info.get("kind") != "three_level_normal_logit" or built.tau_levels:
        return None
    if tuple(names) != _FREE:
        return None
    offsets, start = {}, 0
    for name, shape in zip(names, shapes, strict=True):
        size = int(np.prod(shape)) if len(shape) else 1
        offsets[name] = (start, size)
        start += size
    codes, data_names = [], []
    for s in _SCALES:
        fam = info["families"].get(s)
        if fam not in SCALE_CODES:
            return None
        code, params = SCALE_CODES[fam]
        codes.append(code)
        keys = [f"prior__{s}__{p}" for p in params]
        data_names += keys if len(keys) == 2 else keys * 2
        if any(k not in dv for k in keys):
            return None
    needed = [
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
        "prior__rho__eta",
        "prior__rho_within__eta",
    ]
    if any(k not in dv for k in needed):
        return None
    n_rows, n_groups = dv["tp"].shape[0], dv["group_size"].shape[0]
    if offsets["z_row"][1] != 2 * n_rows or offsets["study_sensitivity"][1] != n_groups:
        return None
    return {
        "n_dim": start,
        "offsets": tuple(offsets[n][0] for n in _FREE),
        "scale_codes": tuple(codes),
        "data_names": needed + data_names,
    }


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
):
    """Log density and gradient of the three-level model at the flat parameter vector ``x``.

    ``offsets``: start of each free variable of :data:`_FREE` in ``x``; ``codes``: the
    :data:`SCALE_CODES` of the four SD priors; then the model's data and prior numbers in the
    order of :func:`three_level_layout`'s ``data_names``. The formulas are in the module
    docstring.
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
    w1, w2 = math.exp(x[o_w1]), math.exp(x[o_w2])
    v, d = scale_lp(t1, c_t1, pa_t1, pb_t1)
    lp += v + x[o_t1]
    grad[o_t1] += d + 1.0
    v, d = scale_lp(t2, c_t2, pa_t2, pb_t2)
    lp += v + x[o_t2]
    grad[o_t2] += d + 1.0
    v, d = scale_lp(w1, c_w1, pa_w1, pb_w1)
    lp += v + x[o_w1]
    grad[o_w1] += d + 1.0
    v, d = scale_lp(w2, c_w2, pa_w2, pb_w2)
    lp += v + x[o_w2]
    grad[o_w2] += d + 1.0
    v, d, rho, drho = corr_lp(x[o_r], eta)
    lp += v
    grad[o_r] += d
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
        z1 = x[o_z + 2 * r]
        z2 = x[o_z + 2 * r + 1]
        lp += -0.5 * (z1 * z1 + z2 * z2) - 2.0 * _HALF_LOG_2PI
        dz1 = z1 - zb1[g]
        dz2 = z2 - zb2[g]
        th1 = lp1[r] + a1[g] + w1 * dz1
        e2 = rw * dz1 + sw * dz2
        th2 = lp2[r] + a2[g] + w2 * e2
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
        grad[o_z + 2 * r] += g_dz1[r] - S1[g] - x[o_z + 2 * r]
        grad[o_z + 2 * r + 1] += g_dz2[r] - S2[g] - x[o_z + 2 * r + 1]
    grad[o_t1] += adj_t1 * t1
    grad[o_t2] += adj_t2 * t2
    grad[o_w1] += adj_w1 * w1
    grad[o_w2] += adj_w2 * w2
    grad[o_r] += adj_rho * drho
    grad[o_rw] += adj_rw * drw
    return lp, grad


def make_three_level_logp(layout: dict[str, Any]):
    """The numba function ``logp(x, *data) -> (logp, grad)`` for ``layout``.

    ``data`` are the arrays named by ``layout["data_names"]``, in that order (0-d arrays for
    the prior numbers of the SDs and correlations). The work is
    done by :func:`three_level_kernel` (compiled once and kept in numba's on-disk cache); this
    thin wrapper only fixes the layout's offsets and prior families.
    """
    offsets = tuple(int(o) for o in layout["offsets"])
    codes = tuple(int(c) for c in layout["scale_codes"])
    n_dim = int(layout["n_dim"])

    @numba.njit(error_model="numpy")
    def logp(
        x,
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
    ):
        return three_level_kernel(
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
            eta[()],
            eta_w[()],
            pa_t1[()],
            pb_t1[()],
            pa_t2[()],
            pb_t2[()],
            pa_w1[()],
            pb_w1[()],
            pa_w2[()],
            pb_w2[()],
        )

    return logp
