r"""Comparative accuracy of several tests: the three-level model with the test as the row level.

Row r is the 2x2 table of test t(r) in study s(r) (see ``docs/comparative.md``):

.. math::

    \theta_r = (\mu^{se}_{t(r)}, \mu^{sp}_{t(r)}) + u_{s(r)} + v_r, \quad
    u_s \sim MVN_2(0, \Sigma_{between}), \quad v_r \sim MVN_2(0, \Sigma_{within, t(r)})

with test-specific mean logits (no-intercept coding: one coefficient per test, each with the
prior of the summary point ``mu_<outcome>``), study effects ``u_s`` shared by the tests of a
study, and test-by-study deviations ``v_r``. Comparison models (:data:`COMPARISON_MODELS`):

``"deviations"`` (default)
    One within-study (test-by-study) covariance for every test: exactly the three-level model
    of :func:`bayesdta.families.bivariate.build_model` (``levels=3``) with the per-test
    design, built by that function.
``"deviations_by_test"``
    Test-specific test-by-study SDs ``tau_within_<outcome>[t]`` (one correlation
    ``rho_within``): test t's between-study SD is ``sqrt(tau^2 + tau_within[t]^2)``.
``"shared"``
    No deviations (``v_r = 0``): the study effect is common to the tests of a study, the
    comparative model of Stata's ``metadta`` (Nyaga & Arbyn 2022); tests differ by their means
    only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..exceptions import SpecError
from .bivariate import (
    OUTCOMES,
    BuiltModel,
    Design,
    ModelSpec,
    bivariate_effects,
    build_model,
    centering_weights,
)
from .links import pt_log_inverse

__all__ = ["COMPARISON_MODELS", "ComparativeSpec", "test_design", "build_comparative"]

#: The comparison models (a sweep axis of analysis specs).
COMPARISON_MODELS = ("shared", "deviations", "deviations_by_test")


@dataclass(frozen=True)
class ComparativeSpec:
    """What to fit in a comparison of tests.

    Parameters
    ----------
    model : {"deviations", "deviations_by_test", "shared"}
        The comparison model (see the module docstring). ``tau_by_test=True`` with
        ``"deviations"`` is ``"deviations_by_test"``.
    priors : mapping
        Overrides of the normal family's priors (``mu_*`` is the prior of every test's mean
        logit; ``tau_*`` of the shared study effects; ``tau_within_*`` of the test-by-study
        deviations, per test in ``"deviations_by_test"``).
    link : {"logit", "probit"}
        Link function.
    parameterization : {"auto", "noncentered", "centered"}
        How the study effects are sampled (as :class:`ModelSpec`).
    """

    model: str = "deviations"
    priors: Mapping[str, Any] = field(default_factory=dict)
    link: str = "logit"
    parameterization: str = "auto"

    def __post_init__(self) -> None:
        if self.model not in COMPARISON_MODELS:
            raise SpecError(
                f"comparison model must be one of {list(COMPARISON_MODELS)}, got {self.model!r}"
            )

    def model_spec(self) -> ModelSpec:
        """The normal family's three-level :class:`ModelSpec` with these priors and link."""
        return ModelSpec(
            levels=3,
            priors=dict(self.priors),
            link=self.link,
            parameterization=self.parameterization,  # type: ignore[arg-type]
        )

    def to_dict(self) -> dict[str, Any]:
        """Serializable form."""
        spec = self.model_spec()
        return {
            "model": self.model,
            "priors": {k: p.to_dict() for k, p in spec.priors.items()},
            "link": self.link,
            "parameterization": self.parameterization,
        }


def test_design(test_index: np.ndarray, tests: list[str], test_column: str) -> Design:
    """The no-intercept per-test design: column ``<test>[<name>]`` is 1 on that test's rows.

    Every column is an "intercept" (:attr:`Design.intercepts`): its coefficient is the mean
    logit of one test and takes the prior ``mu_<outcome>``.
    """
    idx = np.asarray(test_index, dtype=np.int64)
    X = np.zeros((len(idx), len(tests)))
    X[np.arange(len(idx)), idx] = 1.0
    cols = [f"{test_column}[{t}]" for t in tests]
    return Design(
        X={o: X.copy() for o in OUTCOMES},
        columns={o: list(cols) for o in OUTCOMES},
        scaling={},
        levels={test_column: list(tests)},
        formulas={o: f"~ 0 + {test_column}" for o in OUTCOMES},
        variables=[test_column],
        center={o: np.zeros(len(tests)) for o in OUTCOMES},
        scale={o: np.ones(len(tests)) for o in OUTCOMES},
        intercepts=tuple(cols),
    )


def build_comparative(
    data: Any,
    spec: ComparativeSpec,
    design: Design,
    test_index: np.ndarray,
    *,
    weights: np.ndarray | None = None,
) -> BuiltModel:
    """Build the PyMC model of a comparison of tests.

    ``"deviations"`` is :func:`bayesdta.families.bivariate.build_model` with ``levels=3`` and
    the per-test ``design`` (study means and centred deviations, partially centered study
    effects). ``"shared"`` and ``"deviations_by_test"`` are written here with the same
    variable names (``beta_<outcome>`` per test, ``tau_<outcome>``, ``rho``,
    ``tau_within_<outcome>`` (per test: dim ``test``), ``rho_within``, ``theta``): the study
    mean ``m_s = lpbar_s + u_s`` partially centered with the normal family's per-study weights
    (:func:`centering_weights`), plus, for ``"deviations_by_test"``, non-centered deviations
    ``v_r = L_{within, t(r)} z_r``.
    """
    import pymc as pm
    import pytensor.tensor as pt

    mspec = spec.model_spec()
    if spec.model == "deviations":
        return build_model(data, mspec, weights=weights, design=design)

    n = data.n_rows
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    gidx_np = np.asarray(data.study_index, dtype=np.int64)
    n_groups = int(gidx_np.max()) + 1
    n_tests = design.X["sensitivity"].shape[1]
    n_pad = -(-n // 16) * 16
    g_pad = -(-n_groups // 16) * 16
    pad = n_pad - n
    gidx_p = np.concatenate([gidx_np, n_groups + np.arange(pad) % max(g_pad - n_groups, 1)])
    gidx_p = np.minimum(gidx_p, g_pad - 1)
    tix_p = np.concatenate([np.asarray(test_index, dtype=np.int64), np.zeros(pad, np.int64)])

    def padrows(a):
        a = np.asarray(a)
        return np.concatenate([a, np.zeros((pad, *a.shape[1:]), dtype=a.dtype)])

    # "auto" weights come from the spread of whole study means (study effect plus the mean
    # deviation); in "deviations_by_test" the study-mean parameter carries the study effect
    # only, often much smaller (ascus: divergences centered, none non-centered): non-centered
    mode = "noncentered" if spec.model == "deviations_by_test" else None
    if spec.parameterization != "auto":
        mode = spec.parameterization
    w_c, _ = centering_weights(data, mspec, levels=3, weights=weights, design=design, mode=mode)
    w_c = np.concatenate([w_c, np.zeros((g_pad - len(w_c), 2))])
    priors = mspec.priors
    by_test = spec.model == "deviations_by_test"
    coords = {
        "row": np.arange(n_pad),
        "group": np.arange(g_pad),
        "outcome": list(OUTCOMES),
        "coef_sensitivity": design.columns["sensitivity"],
        "coef_specificity": design.columns["specificity"],
        "test": list(design.levels[design.variables[0]]),
    }
    dv: dict[str, np.ndarray] = {}
    with pm.Model(coords=coords) as model:

        def data_(name, value, dtype=float):
            dv[name] = np.asarray(value, dtype=dtype)
            return pm.Data(name, dv[name])

        def prior_rv(name, prior, dims=None):
            kw = {}
            for p, v in prior.params:
                kw[p] = data_(f"prior__{name}__{p}", v)
            return getattr(pm, prior.dist)(name, **kw, dims=dims)

        def corr_rv(name, prior):
            eta = data_(f"prior__{name}__eta", prior.kwargs["eta"])
            b = pm.Beta(f"{name}_beta", alpha=eta, beta=eta)
            return pm.Deterministic(name, 2.0 * b - 1.0)

        tp = data_("tp", padrows(data.tp))
        tn = data_("tn", padrows(data.tn))
        n1 = data_("n1", padrows(data.n_diseased))
        n0 = data_("n0", padrows(data.n_nondiseased))
        w = data_("weight", padrows(weights))
        gidx = data_("group_index", gidx_p, dtype=np.int64)
        tix = data_("test_index", tix_p, dtype=np.int64)
        cw = data_("centering", w_c)
        sizes = np.bincount(gidx_p, minlength=g_pad).astype(float)
        gsize = data_("group_size", np.maximum(sizes, 1.0))
        lp = {}
        for o in OUTCOMES:
            X = data_(f"X_{o}", padrows(design.X[o]))
            pr = priors[f"mu_{o}"].kwargs
            m_t = data_(f"prior__beta_{o}__mu", np.full(n_tests, pr["mu"]))
            s_t = data_(f"prior__beta_{o}__sigma", np.full(n_tests, pr["sigma"]))
            beta = pm.Normal(f"beta_{o}", m_t, s_t, dims=f"coef_{o}")
            lp[o] = pt.dot(X, beta)
        tau_se = prior_rv("tau_sensitivity", priors["tau_sensitivity"])
        tau_sp = prior_rv("tau_specificity", priors["tau_specificity"])
        rho = corr_rv("rho", priors["rho"])

        def group_mean(x):
            return pt.inc_subtensor(pt.zeros(g_pad)[gidx], x) / gsize

        lpbar_se, lpbar_sp = group_mean(lp["sensitivity"]), group_mean(lp["specificity"])
        m_se, m_sp = bivariate_effects(
            pm, pt, "study", "group", lpbar_se, lpbar_sp, tau_se, tau_sp, rho, cw
        )
        theta_se = m_se[gidx] + lp["sensitivity"] - lpbar_se[gidx]
        theta_sp = m_sp[gidx] + lp["specificity"] - lpbar_sp[gidx]
        if by_test:
            tw_se = prior_rv(
                "tau_within_sensitivity", priors["tau_within_sensitivity"], dims="test"
            )
            tw_sp = prior_rv(
                "tau_within_specificity", priors["tau_within_specificity"], dims="test"
            )
            rho_w = corr_rv("rho_within", priors["rho_within"])
            z = pm.Normal("z_row", 0.0, 1.0, dims=("row", "outcome"))
            theta_se = theta_se + tw_se[tix] * z[:, 0]
            theta_sp = theta_sp + tw_sp[tix] * (rho_w * z[:, 0] + pt.sqrt(1.0 - rho_w**2) * z[:, 1])
        pm.Deterministic("theta", pt.stack([theta_se, theta_sp], axis=1), dims=("row", "outcome"))
        ll = (
            tp * pt_log_inverse(theta_se, spec.link)
            + (n1 - tp) * pt_log_inverse(-theta_se, spec.link)
            + tn * pt_log_inverse(theta_sp, spec.link)
            + (n0 - tn) * pt_log_inverse(-theta_sp, spec.link)
        )
        pm.Potential("likelihood", pt.sum(w * ll))

    key_payload = {
        "family": "comparative",
        "model": spec.model,
        "n_rows": n_pad,
        "n_groups": g_pad,
        "n_tests": n_tests,
        "families": {k: p.dist for k, p in priors.items()},
        "link": spec.link,
    }
    key = hashlib.sha1(json.dumps(key_payload, sort_keys=True).encode()).hexdigest()[:16]
    built = BuiltModel(model, dv, key, 3, design, list(data.studies), n, n_groups, [])
    if spec.model == "shared" and spec.link == "logit":
        # the three-level density without its within-study level, written for numba
        # (bivariate_logp; the sampler uses it when inference.native accepts the model)
        built.numba_logp = {
            "kind": "shared_normal_logit",
            "families": {k: p.dist for k, p in priors.items()},
        }
    return built
