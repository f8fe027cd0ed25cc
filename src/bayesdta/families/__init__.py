"""Model families: parameters, priors, builder and the closed forms each family supports.

* :mod:`bayesdta.families.bivariate`: the bivariate binomial family (two and three levels,
  meta-regression): :class:`ModelSpec`, :func:`make_design`, :func:`build_model`,
  :func:`prior_predictive`.
* :mod:`bayesdta.families.priors`: :class:`Prior`, the defaults and their rationale.
* :mod:`bayesdta.families.links`: logit / probit / cloglog links.
* :mod:`bayesdta.families.stats`: closed forms on the family's parameters (SROC, AUC, I2,
  regions, likelihood ratios) and classical statistics of the counts (Deeks' test).
* :mod:`bayesdta.families.robust`: the ``"t"`` family (bivariate Student-t study effects).
* :mod:`bayesdta.families.latent_class`: the ``"latent_class"`` family (imperfect reference
  standard; fitted by :func:`bayesdta.fit_latent_class`).

Importing the package registers the families (:func:`bayesdta.families.base.get_family`).
"""

# register the "normal", "t" and "latent_class" families
from . import bivariate, latent_class, robust  # noqa: F401
