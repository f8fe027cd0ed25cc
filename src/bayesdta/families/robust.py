r"""Robust random effects: bivariate Student-t study effects (the ``"t"`` family).

The model is the bivariate binomial model of :mod:`bayesdta.families.bivariate` with the
bivariate normal study effects replaced by bivariate Student-t effects, written as a normal
scale mixture with one weight per study (as in bamdit's scale mixtures, Verde 2010, 2018):

.. math::

    \theta_s = x_s \beta + u_s, \quad u_s \mid \lambda_s \sim N(0, \Sigma / \lambda_s),
    \quad \lambda_s \sim \mathrm{Gamma}(\nu / 2, \nu / 2),

so that marginally ``u_s`` is bivariate t with ``nu`` degrees of freedom and scale matrix
``Sigma`` (SDs ``tau_sensitivity``, ``tau_specificity``, correlation ``rho``). A study whose
effect lies far from the others gets a small weight ``lambda_s`` (its effect is allowed a
larger spread), so it pulls the summary point less: the posterior mean of ``lambda_s`` is the
conflict diagnostic of :func:`bayesdta.posterior.quantities.study_weights`.

The degrees of freedom ``nu`` are estimated under the prior ``nu ~ Gamma(2, 0.1)`` (Juarez &
Steel 2010; mean 20, mode 10, 95% between 2.4 and 56: from heavy tails to nearly normal) or
fixed with ``priors={"nu": 4}`` (or ``nu=Fixed(4)``). ``tau_*`` and ``rho`` are the scale
matrix, not the SDs of the effects (those are ``tau * sqrt(nu / (nu - 2))`` for ``nu > 2``).

Two levels only for now (one table per study, or rows treated as studies with ``levels=2``);
three levels raise a :class:`~bayesdta.SpecError`.
"""

from __future__ import annotations

import numpy as np

from ..data.tables import DTAData
from ..exceptions import SpecError
from .base import Family, register_family
from .bivariate import NORMAL_FAMILY, BuiltModel, Design, ModelSpec, build_model
from .priors import DEFAULT_PRIORS, PRIOR_RATIONALE, Prior

__all__ = ["T_FAMILY", "build_t_model", "T_PRIORS", "T_PRIOR_RATIONALE"]

#: Default priors of the t family: those of the normal family plus ``nu``.
T_PRIORS: dict[str, Prior] = {**DEFAULT_PRIORS, "nu": Prior.make("Gamma", alpha=2.0, beta=0.1)}
T_PRIOR_RATIONALE: dict[str, str] = {
    **PRIOR_RATIONALE,
    "nu": "degrees of freedom of the Student-t study effects; Gamma(2, 0.1) (Juarez & Steel "
    "2010, as in bamdit): mean 20, 95% between 2.4 and 56, so both heavy tails (outlying "
    "studies) and near-normal effects stay plausible, with little mass below 1 where the "
    "scale matrix is poorly identified; fix it with nu=<number>",
}


def _t_scale(pm, pt, data_, priors, size):
    """Per-effect SD multipliers ``1 / sqrt(lambda)``, ``lambda ~ Gamma(nu / 2, nu / 2)``."""
    prior = priors["nu"]
    if prior.dist == "Fixed":
        nu = data_("prior__nu__value", prior.kwargs["value"])
    else:
        kw = {}
        for p, v in prior.params:
            kw[p] = data_(f"prior__nu__{p}", v)
        nu = getattr(pm, prior.dist)("nu", **kw)
    lam = pm.Gamma("lambda_study", alpha=nu / 2.0, beta=nu / 2.0, dims="row")
    return 1.0 / pt.sqrt(lam)


def build_t_model(
    data: DTAData,
    spec: ModelSpec,
    *,
    weights: np.ndarray | None = None,
    design: Design | None = None,
    centering: str | None = None,
) -> BuiltModel:
    """Build the bivariate binomial model with Student-t study effects (two levels).

    Same arguments as :func:`bayesdta.families.bivariate.build_model`; the effects are the
    normal family's (same design, links, priors and parameterization), with each study's SDs
    scaled by ``1 / sqrt(lambda_s)``.
    """
    if spec.resolved_levels(data) != 2:
        raise SpecError(
            "random_effects='t' supports two levels (one table per study) for now; "
            "use levels=2 to treat every row as its own study, or random_effects='normal'"
        )
    if spec.tau_by:
        raise SpecError("random_effects='t' does not support tau_by yet")
    # the gradient of the Gamma log-densities calls digamma by a process-specific address:
    # the disk cache does not store such code (inference.compile_cache.not_storable)
    return build_model(
        data, spec, weights=weights, design=design, centering=centering, effect_scale=_t_scale
    )


#: The bivariate binomial family with bivariate Student-t study effects (two levels).
T_FAMILY = register_family(
    Family(
        name="t",
        parameters=(*NORMAL_FAMILY.parameters, "nu"),
        default_priors=T_PRIORS,
        prior_rationale=T_PRIOR_RATIONALE,
        build=build_t_model,
        quantities=(*NORMAL_FAMILY.quantities, "nu"),
        description="bivariate binomial model, bivariate Student-t study effects (2 levels)",
    )
)
