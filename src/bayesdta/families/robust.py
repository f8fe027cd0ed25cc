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

How it is sampled (``docs/robust_effects.md``):

* Two levels: the weights are integrated out. Sampled weights leave a funnel between ``nu``
  and every ``log lambda_s`` (divergences, low E-BFMI, chains disagreeing on ``nu``); instead
  the marginal bivariate t is sampled as ``u_1 ~ t_nu(0, tau_1)`` and
  ``u_2 | u_1 ~ t_{nu+1}(rho tau_2 / tau_1 u_1, tau_2 sqrt(1 - rho^2)
  sqrt((nu + z_1^2) / (nu + 1)))`` (``z_1 = u_1 / tau_1``; Ding 2016), partially centered
  like the normal family's effects. The model stores the conditional posterior mean of each
  weight, ``lambda_study_mean = (nu + 2) / (nu + d_s^2)`` (``d_s^2 = u_s' Sigma^-1 u_s``),
  from which :func:`~bayesdta.posterior.quantities.study_weights` recovers the weights.
* Three levels: one weight per study (``lambda_study``, sampled), scaling the between-study
  SDs of that study; the tables' deviations within a study stay normal. Given the weights
  the study means and deviations of the three-level model are normal and independent, so its
  exact reparameterization still applies.

``tau_by`` is not supported with t effects (a :class:`~bayesdta.SpecError`).
"""

from __future__ import annotations

import numpy as np

from ..data.tables import DTAData
from ..exceptions import SpecError
from .base import Family, register_family
from .bivariate import NORMAL_FAMILY, BuiltModel, Design, EffectLaw, ModelSpec, build_model
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


def _nu(pm, data_, priors):
    prior = priors["nu"]
    if prior.dist == "Fixed":
        return data_("prior__nu__value", prior.kwargs["value"])
    kw = {p: data_(f"prior__nu__{p}", v) for p, v in prior.params}
    return getattr(pm, prior.dist)("nu", **kw)


def _t_law(pm, pt, data_, priors, size, levels) -> EffectLaw:
    """Student-t study effects (see the module docstring for both representations)."""
    nu = _nu(pm, data_, priors)
    if levels == 3:
        # explicit weights: given lambda_s the study means of the three-level model are normal
        lam = pm.Gamma("lambda_study", alpha=nu / 2.0, beta=nu / 2.0, dims="group")
        return EffectLaw(scale=1.0 / pt.sqrt(lam))

    def first(name, mu, sd, dims):
        return pm.StudentT(name, nu=nu, mu=mu, sigma=sd, dims=dims)

    def second(name, mu, sd, dims):
        return pm.StudentT(name, nu=nu + 1.0, mu=mu, sigma=sd, dims=dims)

    def factor(z1):
        return pt.sqrt((nu + z1**2) / (nu + 1.0))

    def done(z1, z2):
        # E[lambda_s | u_s, nu, Sigma] = (nu + 2) / (nu + d_s^2), d_s^2 = u_s' Sigma^-1 u_s
        pm.Deterministic("lambda_study_mean", (nu + 2.0) / (nu + z1**2 + z2**2), dims="row")

    return EffectLaw(first=first, second=second, second_factor=factor, done=done)


def build_t_model(
    data: DTAData,
    spec: ModelSpec,
    *,
    weights: np.ndarray | None = None,
    design: Design | None = None,
    centering: str | None = None,
) -> BuiltModel:
    """Build the bivariate binomial model with Student-t study effects.

    Same arguments as :func:`bayesdta.families.bivariate.build_model`; the effects are the
    normal family's (same design, links, priors and parameterization) with the bivariate t law
    (two levels: the marginal t, weights integrated out; three levels: explicit weights
    ``lambda_s`` per study scaling the between-study SDs, normal deviations of the rows).
    """
    if spec.tau_by:
        raise SpecError("random_effects='t' does not support tau_by yet")
    # the gradient of the Gamma / t log-densities calls special functions by a process-specific
    # address: the disk cache does not store such code (inference.compile_cache.not_storable)
    return build_model(
        data, spec, weights=weights, design=design, centering=centering, effect_law=_t_law
    )


#: The bivariate binomial family with bivariate Student-t study effects.
T_FAMILY = register_family(
    Family(
        name="t",
        parameters=(*NORMAL_FAMILY.parameters, "nu"),
        default_priors=T_PRIORS,
        prior_rationale=T_PRIOR_RATIONALE,
        build=build_t_model,
        quantities=(*NORMAL_FAMILY.quantities, "nu"),
        description="bivariate binomial model, bivariate Student-t study effects",
    )
)
