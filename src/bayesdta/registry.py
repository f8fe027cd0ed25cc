"""Registries of posterior quantities, figures and report tables (a bottom module).

:class:`~bayesdta.inference.fit.DTAFit` offers convenience methods (``fit.sroc()``,
``fit.plot("forest")``, ...) whose code lives in higher layers (:mod:`bayesdta.posterior`,
:mod:`bayesdta.plots`), and the report (:mod:`bayesdta.reporting.report`) writes the tables a
spec names. The modules that define those functions register them here when they are imported
(``import bayesdta`` imports them all): figures with ``@register_figure("sroc")`` next to the
function, tables with ``@register_table("subgroups", regression=True)`` or a registration block
at the end of the module. Every import points downward and nothing is looked up by module path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .exceptions import SpecError

__all__ = [
    "QUANTITIES",
    "FIGURES",
    "TABLES",
    "REGRESSION_TABLES",
    "register_quantity",
    "register_figure",
    "register_table",
    "quantity",
    "figure",
    "LOADERS",
    "register_loader",
    "loader",
]

#: name -> function(fit, **options) of :mod:`bayesdta.posterior`.
QUANTITIES: dict[str, Callable[..., Any]] = {}
#: kind -> function(fit, **options) -> matplotlib Figure of :mod:`bayesdta.plots`.
FIGURES: dict[str, Callable[..., Any]] = {}
#: report table name -> function(fit, **options) returning a table (main fit of a spec).
TABLES: dict[str, Callable[..., Any]] = {}
#: report table name -> function(fit, **options) of a meta-regression fit.
REGRESSION_TABLES: dict[str, Callable[..., Any]] = {}


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


def register_table(
    name: str, *, regression: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register a report table of the main fit (or of meta-regression fits)."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        (REGRESSION_TABLES if regression else TABLES)[name] = func
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


#: saved-fit kind -> function(idata, path) rebuilding a fit read by ``bayesdta.load``
#: (the kind is the ``bayesdta_kind`` attribute a fit's ``save`` writes; none: a DTAFit).
LOADERS: dict[str, Callable[..., Any]] = {}


def register_loader(kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register the loader of saved fits of ``kind`` (``bayesdta.load``)."""

    def deco(func: Callable[..., Any]) -> Callable[..., Any]:
        LOADERS[kind] = func
        return func

    return deco


def loader(kind: str) -> Callable[..., Any]:
    """The registered loader of saved fits of ``kind``."""
    func = LOADERS.get(kind)
    if func is None:
        raise SpecError(
            f"saved fit of kind {kind!r} cannot be read by this version of bayesdta "
            f"(known kinds: {', '.join(sorted(LOADERS)) or 'none'}; import bayesdta)"
        )
    return func
