"""The model-family interface and its registry.

A model family (today the bivariate binomial-normal family of
:mod:`bayesdta.families.bivariate`, in two and three levels) declares, in one object:

* its scalar hyperparameters (reporting order; diagnostics are computed on them),
* its default priors and the rationale of each,
* its builder ``build(data, spec, *, weights=None, design=None) -> BuiltModel`` whose
  ``structure_key`` names everything that changes the compiled graph (the compiled-model cache
  keys on it),
* the summary quantities it supports.

Families register under a name with :func:`register_family`; :func:`get_family` looks them up,
with an error that lists the registered names. New families (robust t effects, imperfect
reference standard, ...) are new modules of :mod:`bayesdta.families` that register here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..exceptions import SpecError

__all__ = ["Family", "FAMILIES", "register_family", "get_family", "family_names"]


@dataclass(frozen=True)
class Family:
    """What a model family provides to the generic layers.

    Parameters
    ----------
    name : str
        Registry name (e.g. ``"normal"``: bivariate normal random effects).
    parameters : tuple of str
        Scalar hyperparameters, in reporting order.
    default_priors : mapping
        Parameter -> default :class:`~bayesdta.families.priors.Prior`.
    prior_rationale : mapping
        Parameter -> why the default prior is what it is.
    build : callable
        ``build(data, spec, *, weights=None, design=None) -> BuiltModel``.
    quantities : tuple of str
        Summary quantities the family supports (names of :meth:`DTAFit.summary`).
    description : str
        One line for users.
    data_kind : str
        The data the family models: ``"2x2"`` (tables of TP, FP, FN, TN: :class:`DTAData`,
        fitted by :func:`bayesdta.fit`) or ``"confusion"`` (KxK matrices:
        :class:`~bayesdta.data.tables.ConfusionData`, fitted by
        :func:`bayesdta.fit_multiclass`).
    """

    name: str
    parameters: tuple[str, ...]
    default_priors: Mapping[str, Any]
    prior_rationale: Mapping[str, str]
    build: Callable[..., Any]
    quantities: tuple[str, ...]
    description: str = ""
    data_kind: str = "2x2"


#: name -> Family, filled by the family modules at import.
FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Register ``family`` under ``family.name`` and return it."""
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    """The registered family ``name``."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise SpecError(f"unknown model family {name!r}; registered: {sorted(FAMILIES)}") from None


def family_names(data_kind: str = "2x2") -> list[str]:
    """Sorted names of the registered families of one data kind (``"2x2"``, ``"confusion"``)."""
    return sorted(n for n, f in FAMILIES.items() if f.data_kind == data_kind)
