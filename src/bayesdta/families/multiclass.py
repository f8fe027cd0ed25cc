r"""Joint multiclass model: KxK confusion matrices with correlated study effects (``"multiclass"``).

For study ``s`` and true class ``k`` the predicted classes of the ``n_sk`` participants are
multinomial,

.. math::

    (y_{sk1}, \dots, y_{skK}) \sim \mathrm{Multinomial}(n_{sk}, \pi_{sk\cdot}), \qquad
    \pi_{skj} = \frac{\exp \eta_{skj}}{\sum_{l} \exp \eta_{skl}}, \qquad \eta_{skk} = 0,

so the baseline of every row is the correct prediction and ``eta_skj`` (j != k) is the
log-odds of predicting ``j`` rather than ``k`` for a participant of true class ``k``. The
``D = K (K - 1)`` log-odds of a study are

.. math::

    \eta_s = \mu + u_s, \qquad u_s \sim \mathrm{MVN}_D(0, \Sigma), \qquad
    \Sigma = \mathrm{diag}(\tau)\, R\, \mathrm{diag}(\tau),

with priors ``mu_d ~ Normal(0, 2)``, ``tau_d ~ HalfNormal(1.5)`` and ``R ~ LKJ(2)``. The LKJ
correlation matrix is built from its canonical partial correlations (the C-vine of
Lewandowski, Kurowicka & Joe 2009): the partial correlation of effects ``i < j`` given effects
``0 .. i-1`` is ``2 b - 1`` with ``b ~ Beta(a_i, a_i)``, ``a_i = eta + (D - 2 - i) / 2``; this
is exactly LKJ(eta) and for ``D = 2`` it is the bivariate model's ``(rho + 1) / 2 ~
Beta(eta, eta)``. For ``K = 2`` the model *is* the bivariate binomial model of
:mod:`bayesdta.families.bivariate` with ``eta_{s,1,2} = -logit(se_s)`` and ``eta_{s,2,1} =
-logit(sp_s)`` (the priors are symmetric about 0, so they match too).

``parameterization="noncentered"`` samples ``u_s = diag(tau) L z_s``, ``z_s ~ N(0, I)``, the
form without a funnel when studies are small or agree; ``"centered"`` samples ``eta_s`` with
the MVN(mu, Sigma) density written out by forward substitution (better when every study has
hundreds of participants per class; :func:`choose_parameterization` picks one). Every number
of the priors enters as data, so a prior change re-uses the compiled model; the study
dimension is padded to a multiple of 16 (padded studies have weight 0 and no counts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..data.tables import ConfusionData
from ..exceptions import SpecError
from .base import Family, register_family
from .bivariate import BuiltModel
from .priors import CORRELATION_FAMILIES, LOCATION_FAMILIES, SCALE_FAMILIES, Prior, parse_prior

__all__ = [
    "MULTICLASS_FAMILY",
    "MULTICLASS_PRIORS",
    "MULTICLASS_PRIOR_RATIONALE",
    "MulticlassSpec",
    "build_multiclass_model",
    "choose_parameterization",
    "effect_index",
    "effect_labels",
    "cpc_shapes",
    "resolve_multiclass_priors",
    "softmax_rows",
]

#: Default priors of the multiclass family (the bivariate family's, per log-odds).
MULTICLASS_PRIORS: dict[str, Prior] = {
    "mu": Prior.make("Normal", mu=0.0, sigma=2.0),
    "tau": Prior.make("HalfNormal", sigma=1.5),
    "rho": Prior.make("LKJ", eta=2.0),
}
MULTICLASS_PRIOR_RATIONALE: dict[str, str] = {
    "mu": "mean log-odds of each wrong prediction against the correct one, per true class; "
    "Normal(0, 2) as the bivariate model's logit intercepts (for K = 2 it is that prior): "
    "95% of the mass puts the odds of a given error between 1/50 and 50",
    "tau": "between-study SD of each log-odds; half-normal(1.5) as the bivariate model's "
    "tau: 95% below 2.9, covering the large heterogeneity common in accuracy reviews",
    "rho": "LKJ(2) on the DxD correlation matrix of the study effects (D = K(K-1)): mild "
    "regularization towards independence, which few studies cannot inform; for K = 2 it is "
    "the bivariate model's (rho+1)/2 ~ Beta(2, 2)",
}
_ALLOWED = {"mu": LOCATION_FAMILIES, "tau": SCALE_FAMILIES, "rho": CORRELATION_FAMILIES}
PARAMETERIZATIONS = ("noncentered", "centered")


def resolve_multiclass_priors(overrides: Mapping[str, Any] | None = None) -> dict[str, Prior]:
    """The default priors with ``overrides`` (``mu``, ``tau``, ``rho``) applied.

    Values are :class:`Prior` objects, strings such as ``"HalfCauchy(1)"`` or dicts.
    """
    out = dict(MULTICLASS_PRIORS)
    for name, value in (overrides or {}).items():
        if name not in MULTICLASS_PRIORS:
            raise SpecError(
                f"unknown prior name {name!r} of the multiclass model; known: "
                f"{', '.join(MULTICLASS_PRIORS)}"
            )
        p = parse_prior(value)
        if p.dist not in _ALLOWED[name]:
            raise SpecError(f"prior for {name} must be one of {_ALLOWED[name]}, got {p}")
        out[name] = p
    return out


class MulticlassSpec:
    """What multiclass model to fit: priors and parameterization.

    Parameters
    ----------
    priors : mapping, optional
        Overrides of :data:`MULTICLASS_PRIORS` (``mu``, ``tau``, ``rho``).
    parameterization : {"noncentered", "centered"}
        How the study effects are sampled (same model).
    """

    def __init__(
        self, *, priors: Mapping[str, Any] | None = None, parameterization: str = "noncentered"
    ) -> None:
        if parameterization not in PARAMETERIZATIONS:
            raise SpecError(
                f"parameterization must be one of {PARAMETERIZATIONS}, got {parameterization!r}"
            )
        self.priors = resolve_multiclass_priors(priors)
        self.parameterization = parameterization

    def replace(self, **kw: Any) -> MulticlassSpec:
        """A copy with some settings changed."""
        d = {"priors": self.priors, "parameterization": self.parameterization}
        d.update(kw)
        return MulticlassSpec(**d)

    def to_dict(self) -> dict[str, Any]:
        """Serializable form."""
        return {
            "priors": {k: str(v) for k, v in self.priors.items()},
            "parameterization": self.parameterization,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> MulticlassSpec:
        """Inverse of :meth:`to_dict`."""
        return cls(
            priors=d.get("priors"), parameterization=d.get("parameterization", "noncentered")
        )

    def __repr__(self) -> str:
        pr = ", ".join(f"{k}={v}" for k, v in self.priors.items())
        return f"MulticlassSpec({pr}; {self.parameterization})"


def effect_index(k: int) -> list[tuple[int, int]]:
    """(true, predicted) cell of each of the ``K (K - 1)`` log-odds, in model order."""
    return [(a, b) for a in range(k) for b in range(k) if a != b]


def effect_labels(classes: tuple[str, ...] | list[str]) -> list[str]:
    """Names of the log-odds ``log(P(pred | true) / P(true | true))``: ``"<true> -> <pred>"``."""
    return [f"{classes[a]} -> {classes[b]}" for a, b in effect_index(len(classes))]


def cpc_shapes(d: int) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Pairs ``(i, j)``, ``i < j``, of the canonical partial correlations and their Beta offsets.

    The partial correlation of effects ``i`` and ``j`` given effects ``0 .. i-1`` is
    ``2 b - 1`` with ``b ~ Beta(eta + off, eta + off)``, ``off = (d - 2 - i) / 2``.
    """
    pairs = [(i, j) for i in range(d - 1) for j in range(i + 1, d)]
    off = np.array([(d - 2 - i) / 2.0 for i, _ in pairs], dtype=float)
    return pairs, off


def cholesky_from_cpc(z: Any, d: int, xp: Any) -> Any:
    """Cholesky factor of the correlation matrix with canonical partial correlations ``z``.

    ``L[i, 0] = z_{0i}``; ``L[i, j] = z_{ji} sqrt(1 - sum_{m<j} L[i, m]^2)`` for ``0 < j < i``;
    ``L[i, i] = sqrt(1 - sum_{m<i} L[i, m]^2)`` (as Stan's ``cholesky_corr``). ``xp`` is
    ``pytensor.tensor`` (model) or ``numpy`` (post-processing; ``z`` then has leading draw
    dimensions).
    """
    pairs, _ = cpc_shapes(d)
    pos = {p: n for n, p in enumerate(pairs)}
    rows = []
    for i in range(d):
        row = []
        acc = 0.0
        for j in range(d):
            if j > i:
                row.append(xp.zeros_like(z[..., 0]))
            elif j == i:
                row.append(xp.sqrt(1.0 - acc) if i else xp.ones_like(z[..., 0]))
            else:
                zz = z[..., pos[(j, i)]]
                val = zz * (xp.sqrt(1.0 - acc) if j else 1.0)
                acc = acc + val**2
                row.append(val)
        rows.append(xp.stack(row, axis=-1))
    return xp.stack(rows, axis=-2)


def softmax_rows(eta_offdiag: np.ndarray, k: int) -> np.ndarray:
    """Row-normalised confusion probabilities from the ``K (K - 1)`` log-odds (last axis).

    Returns an array of shape ``(..., K, K)``: ``P(pred j | true k)``.
    """
    full = np.zeros((*eta_offdiag.shape[:-1], k, k))
    for n, (a, b) in enumerate(effect_index(k)):
        full[..., a, b] = eta_offdiag[..., n]
    full = full - full.max(axis=-1, keepdims=True)
    e = np.exp(full)
    return e / e.sum(axis=-1, keepdims=True)


#: ``"auto"`` samples the study effects centered when the studies' average informativeness
#: (share of a study effect's precision that comes from its own counts) is at least this.
AUTO_CENTERED_CUT = 0.5


def choose_parameterization(
    data: ConfusionData, weights: np.ndarray | None = None
) -> tuple[str, str]:
    """The parameterization ``"auto"`` starts with, and why.

    Per study ``s`` and log-odds ``k -> j``: the empirical log-odds
    ``y = log((c_kj + 0.5) / (c_kk + 0.5))`` with variance ``v = 1 / (c_kj + 0.5) + 1 / (c_kk +
    0.5)``; per log-odds the DerSimonian-Laird moment estimate ``t2`` of the between-study
    variance (at least 0.01); the study's informativeness ``t2 / (t2 + v)``. Centered when the
    mean informativeness over studies (weight > 0) and log-odds is at least
    :data:`AUTO_CENTERED_CUT` (studies pin their effects down: the non-centered form would
    have a funnel), else non-centered (studies small or alike).
    """
    c = np.asarray(data.counts, dtype=float)
    keep = np.ones(c.shape[0], bool) if weights is None else np.asarray(weights) > 0
    c = c[keep]
    info = []
    for a, b in effect_index(data.n_classes):
        y = np.log((c[:, a, b] + 0.5) / (c[:, a, a] + 0.5))
        v = 1.0 / (c[:, a, b] + 0.5) + 1.0 / (c[:, a, a] + 0.5)
        w = 1.0 / v
        if len(y) > 1:
            ybar = np.sum(w * y) / np.sum(w)
            q = float(np.sum(w * (y - ybar) ** 2))
            denom = float(np.sum(w) - np.sum(w**2) / np.sum(w))
            t2 = max((q - (len(y) - 1)) / denom, 0.01) if denom > 0 else 0.01
        else:
            t2 = 0.01
        info.append(t2 / (t2 + v))
    mean_info = float(np.mean(info)) if info else 0.0
    mode = "centered" if mean_info >= AUTO_CENTERED_CUT else "noncentered"
    return mode, (
        f"mean study informativeness {mean_info:.2f} "
        f"({'>=' if mode == 'centered' else '<'} {AUTO_CENTERED_CUT})"
    )


def _bucket(n: int, step: int = 16) -> int:
    return int(-(-n // step) * step)


def build_multiclass_model(
    data: ConfusionData,
    spec: MulticlassSpec,
    *,
    weights: np.ndarray | None = None,
    design: Any = None,
    centering: str | None = None,
) -> BuiltModel:
    """Build the joint multiclass model of ``data`` (see the module docstring).

    Parameters
    ----------
    data : ConfusionData
        The studies' KxK matrices.
    spec : MulticlassSpec
        Priors and parameterization.
    weights : array, optional
        Per-study likelihood weights (0 leaves a study out and keeps the compiled model).
    design : ignored
        Accepted for the family interface.
    centering : {"noncentered", "centered"}, optional
        Overrides ``spec.parameterization``.

    Returns
    -------
    BuiltModel
        ``structure_key`` names K, the levels (2: one matrix per study), the padded number of
        studies, the parameterization and the prior families.
    """
    import pymc as pm
    import pytensor.tensor as pt

    mode = centering or spec.parameterization
    if mode not in PARAMETERIZATIONS:
        raise SpecError(f"parameterization must be one of {PARAMETERIZATIONS}, got {mode!r}")
    k = data.n_classes
    d = k * (k - 1)
    n_s = data.n_studies
    s_pad = _bucket(n_s)
    counts = np.zeros((s_pad, k, k))
    counts[:n_s] = data.counts
    w = np.zeros(s_pad)
    w[:n_s] = 1.0 if weights is None else np.asarray(weights, dtype=float)
    pairs, off = cpc_shapes(d)
    pri = spec.priors
    values: dict[str, np.ndarray] = {}

    def data_(name: str, value: Any):
        arr = np.asarray(value, dtype=float)
        values[name] = arr
        return pm.Data(name, arr)

    idx = effect_index(k)
    rows_i = np.array([a for a, _ in idx])
    cols_i = np.array([b for _, b in idx])
    with pm.Model() as model:
        y = data_("counts", counts)
        wt = data_("weight", w)
        mu_kw = {p: data_(f"prior__mu__{p}", np.full(d, v)) for p, v in pri["mu"].params}
        mu = getattr(pm, pri["mu"].dist)("mu", **mu_kw, shape=d)
        tau_kw = {p: data_(f"prior__tau__{p}", np.full(d, v)) for p, v in pri["tau"].params}
        tau = getattr(pm, pri["tau"].dist)("tau", **tau_kw, shape=d)
        eta_lkj = data_("prior__rho__eta", pri["rho"].kwargs["eta"])
        a = eta_lkj + pt.as_tensor_variable(off)
        b = pm.Beta("cpc_beta", alpha=a, beta=a, shape=len(pairs))
        z = 2.0 * b - 1.0
        chol_corr = cholesky_from_cpc(z, d, pt)
        pm.Deterministic("chol_corr", chol_corr)
        if mode == "noncentered":
            zs = pm.Normal("z_study", 0.0, 1.0, shape=(s_pad, d))
            theta = mu + (zs @ chol_corr.T) * tau
        else:
            # eta_s ~ MVN(mu, diag(tau) R diag(tau)) written out (forward substitution with the
            # Cholesky factor, elementwise ops only): PyMC's MvNormal calls LAPACK, which was
            # 20x slower per gradient here and cannot be reloaded from the disk cache
            theta = pm.Flat("theta_study", shape=(s_pad, d))
            x = (theta - mu) / tau
            zcols = []
            for i in range(d):
                acc = x[:, i]
                for j in range(i):
                    acc = acc - chol_corr[i, j] * zcols[j]
                zcols.append(acc / chol_corr[i, i])
            z = pt.stack(zcols, axis=1)
            logdet = pt.sum(pt.log(tau)) + pt.sum(
                pt.log(pt.stack([chol_corr[i, i] for i in range(d)]))
            )
            pm.Potential("theta_prior", -0.5 * pt.sum(z**2) - s_pad * logdet)
        theta = pm.Deterministic("theta", theta)
        eta = pt.zeros((s_pad, k, k))
        eta = pt.set_subtensor(eta[:, rows_i, cols_i], theta)
        logp = eta - pt.logsumexp(eta, axis=2, keepdims=True)
        pm.Potential("loglik", pt.sum(wt[:, None, None] * y * logp))
    key = "|".join(
        [
            "multiclass",
            f"K={k}",
            "levels=2",
            f"S={s_pad}",
            f"param={mode}",
            "priors=" + ",".join(f"{n}:{p.dist}" for n, p in pri.items()),
        ]
    )
    built = BuiltModel(
        model=model,
        data_values=values,
        structure_key=key,
        levels=2,
        design=None,
        n_rows=n_s,
        n_groups=0,
    )
    # both graphs reload from the on-disk cache with identical draws (checked in two
    # processes; no special function or LAPACK call in the object code)
    built.disk_cache = True
    return built


#: The joint multiclass family (KxK confusion matrices; one matrix per study).
MULTICLASS_FAMILY = register_family(
    Family(
        name="multiclass",
        parameters=("mu", "tau", "rho"),
        default_priors=MULTICLASS_PRIORS,
        prior_rationale=MULTICLASS_PRIOR_RATIONALE,
        build=build_multiclass_model,
        quantities=(
            "confusion",
            "confusion_predictive",
            "sensitivity",
            "specificity",
            "lr_positive",
            "lr_negative",
            "dor",
            "accuracy",
        ),
        description="joint multinomial model of KxK confusion matrices, correlated study "
        "effects on the class-specific log-odds (LKJ)",
        data_kind="confusion",
    )
)
