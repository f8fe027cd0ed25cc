"""Exceptions and warnings raised by bayesdta."""

from __future__ import annotations

__all__ = [
    "BayesDTAError",
    "DTADataError",
    "SpecError",
    "BayesDTAWarning",
    "SamplerWarning",
    "IdentifiabilityWarning",
]


class BayesDTAError(Exception):
    """Base class of bayesdta errors: a clear, one-line message meant for the user."""


class DTADataError(BayesDTAError, ValueError):
    """Invalid input table: the message names the row and the column at fault."""


class SpecError(BayesDTAError, ValueError):
    """Invalid model or analysis specification: the message names the key at fault."""


class BayesDTAWarning(UserWarning):
    """Base class of bayesdta warnings."""


class SamplerWarning(BayesDTAWarning):
    """Sampler trouble: divergences, R-hat above 1.01 or effective sample size below 400."""


class IdentifiabilityWarning(BayesDTAWarning):
    """The data cannot inform a parameter (its posterior is essentially the prior).

    The message names the parameter and why, e.g. ``tau_within_*`` when every study has one row,
    or a covariate level that occurs in one study only.
    """
