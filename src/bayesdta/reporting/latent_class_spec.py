"""Parsing of the ``[latent_class]`` table of an analysis spec (imperfect reference standard).

Kept apart from :mod:`bayesdta.reporting.latent_class` (which fits and reports it) so that
:mod:`bayesdta.reporting.spec` can validate the table without importing the runner.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..exceptions import SpecError
from ..families.latent_class import LatentClassSpec, parse_reference_priors

__all__ = ["LATENT_CLASS_KEYS", "parse_latent_class", "latent_class_spec"]

LATENT_CLASS_KEYS = (
    "name",
    "title",
    "reference_standard",
    "reference_priors",
    "conditional_dependence",
    "priors",
    "sampler",
    "sweep",
)
_SAMPLER_KEYS = ("backend", "draws", "tune", "chains", "target_accept", "cores", "progress")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _err(source: str, key: str, msg: str) -> SpecError:
    return SpecError(f"{source}: {key}: {msg}")


def latent_class_spec(
    lc: Mapping[str, Any], reference_priors: Mapping[str, Any] | None = None
) -> LatentClassSpec:
    """The :class:`LatentClassSpec` of a parsed ``[latent_class]`` table."""
    return LatentClassSpec(
        reference_standard=lc["reference_standard"],
        reference_priors=dict(reference_priors or lc["reference_priors"]),
        conditional_dependence=lc["conditional_dependence"],
        priors=dict(lc["priors"]),
    )


def _merge_reference(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: (v if isinstance(v, str) else dict(v)) for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = {**out[k], **dict(v)}
        else:
            out[k] = v if isinstance(v, str) else dict(v)
    return out


def _check_reference(lc: Mapping[str, Any], rp: Mapping[str, Any]) -> None:
    """Validate reference priors and priors (the column's values are checked when fitting)."""
    latent_class_spec(lc, rp)
    parse_reference_priors(rp, list(rp), lc["reference_standard"])


def parse_latent_class(value: Any, source: str = "spec") -> dict[str, Any] | None:
    """Validate the ``[latent_class]`` table; None when the spec has none."""
    if value is None:
        return None
    key = "latent_class"
    if not isinstance(value, Mapping):
        raise _err(source, key, "must be a table ([latent_class])")
    unknown = [k for k in value if k not in LATENT_CLASS_KEYS]
    if unknown:
        raise _err(source, f"{key}.{unknown[0]}", f"unknown key; allowed: {LATENT_CLASS_KEYS}")
    lc: dict[str, Any] = {
        "name": str(value.get("name", "latent_class")),
        "title": str(value.get("title", "Latent-class model (imperfect reference standard)")),
        "reference_standard": value.get("reference_standard", "reference_standard"),
        "conditional_dependence": value.get("conditional_dependence", False),
        "reference_priors": value.get("reference_priors"),
        "priors": dict(value.get("priors") or {}),
        "sampler": dict(value.get("sampler") or {}),
        "sweep": [],
    }
    if not _NAME_RE.match(lc["name"]):
        raise _err(source, f"{key}.name", f"letters, digits and _-. only, got {lc['name']!r}")
    if not isinstance(lc["reference_standard"], str):
        raise _err(source, f"{key}.reference_standard", "must be a column name")
    if not isinstance(lc["conditional_dependence"], bool):
        raise _err(source, f"{key}.conditional_dependence", "must be true or false")
    bad = [k for k in lc["sampler"] if k not in _SAMPLER_KEYS]
    if bad:
        raise _err(source, f"{key}.sampler.{bad[0]}", f"unknown key; allowed: {_SAMPLER_KEYS}")
    rp = lc["reference_priors"]
    if not isinstance(rp, Mapping) or not rp:
        try:
            LatentClassSpec(reference_priors={})
        except SpecError as exc:
            raise _err(source, f"{key}.reference_priors", str(exc)) from None
    lc["reference_priors"] = {str(k): v for k, v in rp.items()}
    try:
        _check_reference(lc, lc["reference_priors"])
    except SpecError as exc:
        raise _err(source, f"{key}.reference_priors", str(exc)) from None
    sweep = value.get("sweep", [])
    if not isinstance(sweep, list):
        raise _err(source, f"{key}.sweep", "must be an array of tables ([[latent_class.sweep]])")
    names = set()
    for i, s in enumerate(sweep):
        full = f"{key}.sweep[{i}]"
        if not isinstance(s, Mapping) or set(s) - {"name", "reference_priors"}:
            raise _err(source, full, "give name and reference_priors only")
        nm = str(s.get("name", ""))
        if not _NAME_RE.match(nm) or nm in names or nm == "baseline":
            raise _err(source, f"{full}.name", f"missing, invalid or duplicated name {nm!r}")
        names.add(nm)
        over = s.get("reference_priors")
        if not isinstance(over, Mapping) or not over:
            raise _err(source, f"{full}.reference_priors", "must give at least one type")
        merged = _merge_reference(lc["reference_priors"], over)
        try:
            _check_reference(lc, merged)
        except SpecError as exc:
            raise _err(source, f"{full}.reference_priors", str(exc)) from None
        lc["sweep"].append({"name": nm, "reference_priors": merged})
    return lc
