"""Exceptions and warnings raised by bayesdta."""

from __future__ import annotations

__all__ = ["BayesDTAError", "DTADataError", "SpecError", "BayesDTAWarning", "SamplerWarning"]


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
