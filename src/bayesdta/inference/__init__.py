"""Inference: sampling, the compiled-model cache, and the fit object.

* :mod:`bayesdta.inference.sampling`: :class:`SamplerSettings`, the nutpie / PyMC backends and
  the in-process cache of compiled models.
* :mod:`bayesdta.inference.native`: the nutpie model of logit-normal fits on hand-written
  numba callbacks (nothing compiled per structure).
* :mod:`bayesdta.inference.compile_cache`: the on-disk cache of graph-compiled models.
* :mod:`bayesdta.inference.fit`: :func:`fit`, :class:`DTAFit` (owns its data, design, labels
  and draws; save / load), refits with weights or priors.
* :mod:`bayesdta.inference.labels`: names and descriptions of the summary quantities.
* :mod:`bayesdta.inference.registry`: where the posterior quantities and figures register, so
  that :class:`DTAFit`'s convenience methods need no upward import.
* ``bayesdta.inference._arviz``: every ArviZ call of the package.
"""
