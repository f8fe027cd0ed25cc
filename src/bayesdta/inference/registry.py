"""Registries that let the fit object reach the layers above it without importing them.

:class:`~bayesdta.inference.fit.DTAFit` offers convenience methods (``fit.sroc()``,
``fit.plot("forest")``, ...) whose code lives in higher layers (:mod:`bayesdta.posterior`,
:mod:`bayesdta.plots`). Those modules register their functions here when they are imported
(``import bayesdta`` imports them all), so every import points downward and there is no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..exceptions import SpecError

__all__ = [
    "QUANTITIES",
    "FIGURES",
    "register_quantity",
    "register_figure",
    "quantity",
    "figure",
]

#: name -> function(fit, **options) of :mod:`bayesdta.posterior`.
QUANTITIES: dict[str, Callable[..., Any]] = {}
#: kind -> function(fit, **options) -> matplotlib Figure of :mod:`bayesdta.plots`.
FIGURES: dict[str, Callable[..., Any]] = {}


def register_quantity(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a posterior function of a fit under ``name``."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        QUANTITIES[name] = func
        return func

    return deco


def register_figure(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a figure function of a fit under ``kind`` (``fit.plot(kind)``)."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        FIGURES[kind] = func
        return func

    return deco


def quantity(name: str) -> Callable[..., Any]:
    """The registered posterior function ``name``."""
    try:
        return QUANTITIES[name]
    except KeyError:
        raise SpecError(
            f"posterior quantity {name!r} is not registered (import bayesdta to load them)"
        ) from None


def figure(kind: str) -> Callable[..., Any]:
    """The registered figure function ``kind``."""
    func = FIGURES.get(kind)
    if func is None:
        raise SpecError(f"unknown plot kind {kind!r}")
    return func
