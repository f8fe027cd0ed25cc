"""Fitting and results: :func:`fit` returns a :class:`DTAFit`."""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import registry as _registry
from ..data.quadas import low_risk_subset
from ..data.tables import DTAData, check_learnable, fit_note
from ..exceptions import DTADataError, IdentifiabilityWarning, SamplerWarning, SpecError
from ..families import links as lk
from ..families import stats as st
from ..families.base import get_family
from ..families.bivariate import (
    OUTCOMES,
    SCALE_PARAMETERS,
    BuiltModel,
    Design,
    ModelSpec,
    make_design,
)
from . import _arviz
from . import diagnostics as dg
from .diagnostics import (
    ESS_MIN,
    RHAT_MAX,
    ChainStats,
    OptionHints,
    chain_stats,
    diagnostic_record,
    draws_for_ess,
)
from .sampling import SamplerSettings, sample

__all__ = ["fit", "DTAFit", "load", "ESS_MIN", "RHAT_MAX"]

#: R-hat above which the escalation treats the chains as stuck (geometry), not just short.
RHAT_FAR = 1.05
#: Posterior variables kept in a fit: coefficients, SDs and correlations, row parameters.
_KEEP = ("beta_sensitivity", "beta_specificity", *SCALE_PARAMETERS, "nu", "lambda_study", "theta")
_KEEP += ("lambda_study_mean",)  # t effects, two levels (families/robust.py)


def as_data(
    data: DTAData | pd.DataFrame, study: str | None, model: str | None, clustered: bool = False
) -> DTAData:
    if isinstance(data, DTAData):
        return data
    if isinstance(data, pd.DataFrame):
        return DTAData.from_frame(data, study=study, model=model, clustered=clustered)
    if isinstance(data, (str, Path)):
        return DTAData.from_csv(data, study=study, model=model, clustered=clustered)
    raise DTADataError(
        f"data must be a DTAData, a DataFrame or a CSV path, got {type(data).__name__}"
    )


def fit(
    data: DTAData | pd.DataFrame | str | Path,
    *,
    formula: str | None = None,
    formula_sensitivity: str | None = None,
    formula_specificity: str | None = None,
    reference: Mapping[str, str] | None = None,
    levels: int | None = None,
    priors: Mapping[str, Any] | None = None,
    tau_by: str | None = None,
    parameterization: str | None = None,
    link: str | None = None,
    random_effects: str | None = None,
    spec: ModelSpec | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    subset: str | None = None,
    backend: str = "nutpie",
    draws: int | None = None,
    tune: int | None = None,
    chains: int = 4,
    target_accept: float | None = None,
    seed: int | None = None,
    cores: int | None = None,
    progress: bool = False,
    study: str | None = None,
    model: str | None = None,
    clustered: bool = False,
    verbose: bool = True,
    escalate: bool = True,
) -> DTAFit:
    """Fit the hierarchical bivariate binomial model (optionally three-level, with covariates).

    Parameters
    ----------
    data : DTAData, DataFrame or path
        The 2x2 tables. DataFrames and CSV paths are validated with :class:`DTAData`
        (``study=`` and ``model=`` name the id columns).
    formula, formula_sensitivity, formula_specificity, reference, levels, priors, tau_by
        Model settings, see :class:`~bayesdta.model.ModelSpec`.
    parameterization, link
        Model settings, see :class:`~bayesdta.model.ModelSpec` (``parameterization``:
        ``"auto"``, the default, ``"centered"`` or ``"noncentered"``; ``link``: ``"logit"``, the
        default, or ``"probit"``). Alternatively pass ``spec``.
    random_effects : {"normal", "t"}
        Distribution of the study effects (default ``"normal"``); ``"t"``: bivariate
        Student-t effects with degrees of freedom ``nu`` (prior ``Gamma(2, 0.1)``; fix with
        ``priors={"nu": 4}``), robust to outlying studies, see
        :mod:`bayesdta.families.robust` and :meth:`DTAFit.study_weights`.
    spec : ModelSpec, optional
        A complete model specification. The other model settings must then be left unset,
        except ``parameterization``, which changes only how the same model is sampled and is
        applied to ``spec``.
    weights : array, optional
        Per-row likelihood weights (0 drops a row but keeps the compiled model's shapes).
    subset : {None, "low_risk"}
        ``"low_risk"``: fit only the tables at low risk of bias in every QUADAS-2 risk-of-bias
        domain given as columns of the data (the sensitivity analysis of a review; see
        :mod:`bayesdta.data.quadas`). Says how many studies remain (standard error, and
        ``fit.sampler["subset"]``); refuses with fewer than two studies.
    backend : {"nutpie", "pymc"}
        NUTS implementation (nutpie compiles once per model structure and re-uses it).
    draws, tune, chains, target_accept, seed, cores, progress
        Sampler settings, see :class:`~bayesdta.sampling.SamplerSettings`.
    study, model : str, optional
        Id columns when ``data`` is a DataFrame or path.
    clustered : bool
        When ``data`` is a DataFrame or path: confirms that a study id repeating with no model
        column means several tables of one study (see :meth:`DTAData.from_frame`; an explicit
        ``levels`` confirms it too).
    verbose : bool
        Print the one-line announcement of what was read and which model was chosen
        (:attr:`DTAFit.data_note`) to standard error before sampling (default True).
    escalate : bool
        When the first run is not clean (divergences, R-hat > 1.01, bulk or tail ESS < 400 on a
        reported quantity, E-BFMI < 0.3), re-run at most twice with settings that address the
        problem: the other parameterization (only with ``parameterization="auto"``), longer
        warm-up, higher ``target_accept``, more draws -- each only where the option was left
        at its default. A run without divergences or stuck chains that is only short (ESS
        below 400, R-hat up to 1.05) is kept and extended by more chains of the same settings
        (pooled: the ESS adds up and R-hat is judged over all chains) when ``draws`` was left
        at its default. Deterministic given ``seed``. ``fit.sampler["attempts"]`` and
        :meth:`DTAFit.sampling_note` record what was done. ``False``: one run.

    Returns
    -------
    DTAFit

    Warns
    -----
    IdentifiabilityWarning
        For every parameter the data cannot inform (see :func:`bayesdta.data.check_learnable`).
    """
    confirmed = levels is not None or (spec is not None and spec.levels is not None)
    data = as_data(data, study, model, clustered or confirmed)
    subset_note = None
    if subset is not None:  # QUADAS-2 low-risk-of-bias sensitivity analysis
        if subset != "low_risk":
            raise SpecError(f"subset must be None or 'low_risk', got {subset!r}")
        if weights is not None:
            raise SpecError("give either subset= or weights=, not both")
        data, subset_note = low_risk_subset(data)
        if verbose:
            print(f"subset='low_risk': {subset_note}", file=sys.stderr, flush=True)
    if spec is None:
        spec = ModelSpec(
            levels=levels,
            formula=formula,
            formula_sensitivity=formula_sensitivity,
            formula_specificity=formula_specificity,
            reference=reference or {},
            priors=priors or {},
            tau_by=tau_by,
            parameterization=parameterization or "auto",  # type: ignore[arg-type]
            link="logit" if link is None else link,
            random_effects="normal" if random_effects is None else random_effects,
        )
    elif any(
        v is not None
        for v in (
            formula,
            formula_sensitivity,
            formula_specificity,
            reference,
            levels,
            priors,
            tau_by,
            link,
            random_effects,
        )
    ):
        raise SpecError("give either spec= or individual model settings, not both")
    elif parameterization is not None:
        spec = spec.replace(parameterization=parameterization)
    settings = SamplerSettings(
        backend=backend,  # type: ignore[arg-type]
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
        seed=seed,
        cores=cores,
        progress=progress,
    )
    check_learnable(data, levels=spec.levels)  # one study: an error before anything else
    design = make_design(data, spec)
    for msg in check_learnable(data, levels=spec.levels, design=design, tau_by=spec.tau_by):
        warnings.warn(msg, IdentifiabilityWarning, stacklevel=2)
    if verbose:
        print(fit_note(data, spec.levels), file=sys.stderr, flush=True)
    result = fit_design(data, spec, settings, weights=weights, design=design, escalate=escalate)
    if subset_note is not None:
        result.sampler["subset"] = f"low_risk: {subset_note}"
    return result


#: Most runs one fit makes (the first plus at most two escalations).
MAX_ATTEMPTS = 3
_SETTINGS_KEYS = ("backend", "draws", "tune", "chains", "target_accept", "seed", "cores")
_SETTINGS_KEYS += ("progress", "low_rank")


def _problems(diag: Mapping[str, Any]) -> dict[str, bool]:
    """Which clean-fit criteria a run fails: geometry (divergences, R-hat, E-BFMI) or ESS."""
    bf = diag.get("min_bfmi", float("nan"))
    return {
        "divergences": diag["divergences"] > 0,
        "r_hat": diag["max_r_hat"] > dg.RHAT_MAX,
        "bfmi": bool(np.isfinite(bf) and bf < dg.BFMI_MIN),
        "ess": min(diag["min_ess_bulk"], diag["min_ess_tail"]) < dg.ESS_MIN,
    }


def _score(diag: Mapping[str, Any]) -> tuple:
    """Smaller is better: failed criteria first, then their size."""
    p = _problems(diag)
    return (
        p["divergences"] + p["r_hat"] + p["bfmi"],
        p["ess"],
        diag["divergences"],
        diag["max_r_hat"],
        -min(diag["min_ess_bulk"], diag["min_ess_tail"]),
    )


def _extra_chains(last: Mapping[str, Any], requested: SamplerSettings) -> int:
    """Chains to add to a run that was clean but short on ESS (or R-hat slightly high).

    ESS grows with the number of chains of the same length: enough chains for 1.3 times the
    ESS target, at least as many as there are cores (they run in parallel) and at most three
    times the chains of the run. An R-hat a little above its limit with enough ESS: as many
    chains again.
    """
    chains = int(last.get("chains", requested.chains))
    d = last["diagnostics"]
    min_ess = min(d["min_ess_bulk"], d["min_ess_tail"])
    if np.isfinite(min_ess) and min_ess >= dg.ESS_MIN:
        return chains
    cores = int(requested.cores or min(requested.chains, os.cpu_count() or 1))
    factor = 1.3 * dg.ESS_MIN / max(min_ess, 1.0) if np.isfinite(min_ess) else 2.0
    extra = int(np.ceil(chains * (factor - 1.0)))
    extra = int(np.ceil(max(extra, 1) / cores) * cores)
    return int(min(extra, 3 * chains))


def _pool_chains(first: Any, second: Any) -> Any:
    """The draws of two runs of the same model and settings as one run of all their chains."""
    groups = {}
    for group in ("posterior", "sample_stats"):
        a, b = first[group], second[group]
        # statistics both runs have with the same shape apart from the chain dimension
        common = [
            v
            for v in a.data_vars
            if v in b.data_vars and a[v].shape[1:] == b[v].shape[1:] and a[v].dims == b[v].dims
        ]
        a, b = a[common], b[common]
        b = b.assign_coords(chain=np.arange(a.sizes["chain"], a.sizes["chain"] + b.sizes["chain"]))
        groups[group] = xr.concat([a, b], dim="chain")
    return _arviz.make_idata(groups)


def _attempt_seed(seed: int, k: int) -> int:
    """Seed of attempt ``k`` (0 = the user's seed), a fixed function of the seed."""
    if k == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), k]).generate_state(1)[0] % 2**31)


def _next_attempt(
    history: list[dict[str, Any]],
    requested: SamplerSettings,
    spec: ModelSpec,
    auto_is_noncentered: bool,
) -> dict[str, Any] | None:
    """Settings of the next run from the diagnostics so far, or None when nothing is left.

    Only options the user left at their defaults change: the parameterization (``"auto"``
    only), ``tune``, ``target_accept`` and ``draws``.
    """
    last = history[-1]
    base = history[0]
    p = _problems(last["diagnostics"])
    # divergences, low E-BFMI or chains far apart: the geometry (parameterization, step size);
    # an R-hat a little above 1.01 without those, or a low ESS: too short chains
    far = last["diagnostics"]["max_r_hat"] > RHAT_FAR
    geometry = p["divergences"] or p["bfmi"] or (p["r_hat"] and far)
    final = len(history) == MAX_ATTEMPTS - 1
    nxt = {k: last[k] for k in ("centering", "draws", "tune", "target_accept")}
    changed = []
    longer_tune = requested.tune is None and last["tune"] < 4 * base["tune"]
    if geometry:
        if spec.parameterization == "auto" and len(history) == 1:
            # the non-centered form has no funnel at small SDs, the usual cause of divergences
            nxt["centering"] = "noncentered"
            if not auto_is_noncentered:
                changed.append("parameterization noncentered")
        elif spec.parameterization == "auto":
            # non-centered did not help: the studies pin their effects down (huge studies,
            # few of them), where the centered form is the one without a funnel
            best = min(history, key=lambda h: _score(h["diagnostics"]))
            choice = best["centering"]
            if choice == "auto" and history[0]["parameterization"] != "centered":
                choice = "centered"
            if choice != nxt["centering"]:
                nxt["centering"] = choice
                changed.append(f"parameterization {choice}")
        if requested.target_accept is None and last["target_accept"] < 0.99:
            nxt["target_accept"] = 0.95 if last["target_accept"] < 0.95 else 0.99
            changed.append(f"target_accept {nxt['target_accept']}")
    if (geometry or p["r_hat"]) and longer_tune:
        nxt["tune"] = 2 * last["tune"]
        changed.append(f"tune {nxt['tune']}")
    short = p["ess"] or (p["r_hat"] and not far)
    if short and not geometry and requested.draws is None and not last.get("pooled"):
        # the chains are fine but too short: keep them and add chains of the same settings
        # (pooled: ESS adds up, R-hat is judged over all chains), instead of a new, longer run
        # that would throw the first one away
        nxt["extra_chains"] = _extra_chains(last, requested)
        nxt["changed"] = [f"chains +{nxt['extra_chains']} (pooled with attempt {len(history)})"]
        return nxt
    if (short or (geometry and final)) and requested.draws is None:
        # the last run also gets more draws when the geometry was the trouble: a higher
        # target_accept lowers the ESS per draw
        min_ess = min(last["diagnostics"]["min_ess_bulk"], last["diagnostics"]["min_ess_tail"])
        # ESS of a pooled run per the chains of a new run
        min_ess *= requested.chains / last.get("chains", requested.chains)
        if p["ess"]:
            d = draws_for_ess(last["draws"], min_ess, cap=4 * base["draws"])
        else:
            d = min(2 * last["draws"], 4 * base["draws"])
        if d > last["draws"]:
            nxt["draws"] = d
            changed.append(f"draws {d}")
    if not changed:
        return None
    nxt["changed"] = changed
    return nxt


def fit_design(
    data: DTAData,
    spec: ModelSpec,
    settings: SamplerSettings,
    *,
    weights: Sequence[float] | np.ndarray | None = None,
    design: Design | None = None,
    escalate: bool = True,
    centering: str | None = None,
) -> DTAFit:
    from dataclasses import replace as _replace

    from .._quiet import quiet  # third-party noise users cannot act on (bayesdta._quiet)
    from ..families.bivariate import (
        centering_weights,
        choose_parameterization,
        numba_logp_kind,
        parameterization_label,
    )
    from .sampling import FEW_STUDIES, WEAK_DATA_WEIGHT, resolve_defaults

    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and w.size and not np.any(w > 0):
        raise SpecError(
            "weights are all 0: no table enters the fit (give at least one table a positive weight)"
        )
    design = design or make_design(data, spec)
    levels = spec.resolved_levels(data)
    seed = (
        int(settings.seed)
        if settings.seed is not None
        else int(np.random.SeedSequence().entropy % 2**31)
    )
    n_effects = data.n_rows if levels == 2 else data.n_studies
    if w is not None:
        n_effects = int(np.sum(w > 0)) if levels == 2 else n_effects
    first_mode = centering or spec.parameterization
    # weakly informative studies (every effect non-centered by "auto"): the few-studies
    # settings whatever the number of studies (sampling.WEAK_DATA_WEIGHT)
    w_auto, _ = centering_weights(data, spec, levels=levels, weights=w, design=design, mode="auto")
    if w is not None and levels == 2:
        w_auto = w_auto[np.asarray(w) > 0]  # the effects of the rows that are in the fit
    mean_w = float(np.mean(w_auto)) if w_auto.size else 1.0
    weak = levels == 2 and mean_w < WEAK_DATA_WEIGHT
    resolved = resolve_defaults(
        settings,
        levels,
        n_effects,
        numba_logp=numba_logp_kind(spec, levels) is not None,
        weak_data=weak,
    )
    defaults_reason = None
    left = settings.draws is None and settings.tune is None and settings.target_accept is None
    if left and levels == 2 and (n_effects < FEW_STUDIES or weak):
        why = (
            f"fewer than {FEW_STUDIES} studies"
            if n_effects < FEW_STUDIES
            else f"weakly informative studies: mean automatic centering weight {mean_w:.2f}"
        )
        defaults_reason = (
            f"{resolved.draws} + {resolved.tune} draws at target_accept "
            f"{resolved.target_accept:g} ({why})"
        )
    choice = choose_parameterization(
        data, spec.replace(parameterization=first_mode), levels=levels, weights=w, design=design
    )
    w_first, _ = centering_weights(
        data, spec, levels=levels, weights=w, design=design, mode=first_mode
    )
    auto_is_noncentered = bool(np.all(w_first == 0))
    reason = choice["reason"] if centering is None else "as in the fit being refitted"
    plan: dict[str, Any] = {
        "centering": first_mode,
        "draws": resolved.draws,
        "tune": resolved.tune,
        "target_accept": resolved.target_accept,
        "changed": [],
    }
    history: list[dict[str, Any]] = []
    fits: list[DTAFit] = []
    built_by_mode: dict[str, BuiltModel] = {}
    total = {"compile_s": 0.0, "sample_s": 0.0}
    raw_last = None
    for k in range(MAX_ATTEMPTS if escalate else 1):
        mode = plan["centering"]
        pooled = plan.get("extra_chains") is not None
        run = _replace(
            resolved,
            seed=_attempt_seed(seed, k),
            draws=plan["draws"],
            tune=plan["tune"],
            target_accept=plan["target_accept"],
        )
        if pooled:
            run = _replace(run, chains=plan["extra_chains"])
        with quiet():
            if mode not in built_by_mode:
                built_by_mode[mode] = get_family(spec.random_effects).build(
                    data, spec, weights=w, design=design, centering=mode
                )
            built = built_by_mode[mode]
            raw, timing, run = sample(built, run)
        if pooled:
            raw = _pool_chains(raw_last, raw)
            run = _replace(run, chains=int(raw.posterior.sizes["chain"]))
        raw_last = raw
        total["compile_s"] += timing["compile_s"]
        total["sample_s"] += timing["sample_s"]
        idata = _postprocess(raw, built, data, w, link=spec.link)
        settings_d = run.to_dict()
        settings_d["seed"] = seed
        f = DTAFit(idata, data, spec, settings_d, design=built.design, timing=dict(timing))
        diag = f.diagnostics()
        cw, _ = centering_weights(data, spec, levels=levels, weights=w, design=design, mode=mode)
        history.append(
            {
                "attempt": k + 1,
                "centering": mode,
                "parameterization": parameterization_label(cw),
                "draws": int(run.draws),
                "tune": int(run.tune),
                "target_accept": float(run.target_accept),
                "chains": int(run.chains),
                "pooled": bool(pooled),
                "seed": int(run.seed),
                "changed": list(plan["changed"]),
                "sample_s": round(float(timing["sample_s"]), 3),
                "diagnostics": {
                    "divergences": int(diag["divergences"]),
                    "max_r_hat": float(diag["max_r_hat"]),
                    "min_ess_bulk": float(diag["min_ess_bulk"]),
                    "min_ess_tail": float(diag["min_ess_tail"]),
                    "min_bfmi": float(diag["min_bfmi"]),
                    "clean": not diag["warnings"],
                },
            }
        )
        fits.append(f)
        if not diag["warnings"] or not escalate:
            break
        nxt = _next_attempt(history, settings, spec, auto_is_noncentered)
        if nxt is None:
            break
        plan = nxt
    best = next(
        (i for i, h in enumerate(history) if h["diagnostics"]["clean"]),
        min(range(len(history)), key=lambda i: _score(history[i]["diagnostics"])),
    )
    result = fits[best]
    h = history[best]
    result.sampler.update(
        {
            "parameterization": h["parameterization"],
            "centering": h["centering"],
            "parameterization_reason": reason
            + (
                ""
                if h["centering"] == first_mode
                or (auto_is_noncentered and h["centering"] == "noncentered")
                else f"; escalation switched to {h['centering']}"
            ),
            "defaults_reason": defaults_reason,
            "escalate": bool(escalate),
            "requested": {**settings.to_dict(), "seed": seed},
            "attempts": history,
            "selected_attempt": best + 1,
        }
    )
    result.timing.update({k: v for k, v in total.items()})
    result.timing["seed"] = seed
    stats = result._diag_stats
    result._diag = None  # the messages name the final settings; the numbers stay
    result._diag_stats = stats
    msgs = result.diagnostics()["warnings"]
    if msgs:
        warnings.warn("; ".join(msgs), SamplerWarning, stacklevel=3)
    return result


def _postprocess(
    raw: Any,
    built: BuiltModel,
    data: DTAData,
    weights: np.ndarray | None,
    *,
    link: str = "logit",
):
    post = raw.posterior
    n, g = built.n_rows, built.n_groups
    keep = [v for v in _KEEP if v in post]
    ds = post[keep].isel(row=slice(0, n))
    if "group" in ds.dims:
        ds = ds.isel(group=slice(0, g))
    # Labels come from this fit's own design and data, never from the compiled model: a
    # compiled model is re-used by every fit of the same structure (same numbers of rows,
    # coefficients and tau_by levels), and its coordinates are those of the first such fit.
    coords: dict[str, Any] = {"row": data.row_labels, "outcome": list(OUTCOMES)}
    for o in OUTCOMES:
        coords[f"coef_{o}"] = list(built.design.columns[o])
    if "tau_level" in ds.dims:
        coords["tau_level"] = list(built.tau_levels)
    if "group" in ds.dims:
        coords["group"] = list(built.group_labels)
    ds = ds.assign_coords(coords)
    ds = xr.Dataset({k: ds[k].astype(float) for k in ds.data_vars}, attrs={})
    ds.attrs = {"created_by": "bayesdta"}
    theta = ds["theta"].values
    tp, tn = data.tp, data.tn
    n1, n0 = data.n_diseased, data.n_nondiseased
    ll = lk.binomial_logpmf(tp, n1, theta[..., 0], link=link) + lk.binomial_logpmf(
        tn, n0, theta[..., 1], link=link
    )
    sidx = data.study_index
    w = np.ones(n) if weights is None else weights
    # a study's log-likelihood sums its rows in the fit (weight > 0)
    ll_study = np.stack(
        [ll[..., (sidx == s) & (w > 0)].sum(axis=-1) for s in range(data.n_studies)], axis=-1
    )
    log_lik = xr.Dataset(
        {
            "dta": (("chain", "draw", "row"), ll),
            "dta_study": (("chain", "draw", "study"), ll_study),
        },
        coords={
            "chain": ds.chain,
            "draw": ds.draw,
            "row": data.row_labels,
            "study": data.studies,
        },
    )
    observed = xr.Dataset({"TP": ("row", tp), "TN": ("row", tn)}, coords={"row": data.row_labels})
    const = xr.Dataset(
        {
            "FN": ("row", data.fn),
            "FP": ("row", data.fp),
            "n_diseased": ("row", n1),
            "n_nondiseased": ("row", n0),
            "study": ("row", np.asarray(data.frame["study"], dtype=str)),
            "weight": ("row", w),
        },
        coords={"row": data.row_labels},
    )
    stats_keep = [
        v for v in ("diverging", "energy", "depth", "step_size", "n_steps") if v in raw.sample_stats
    ]
    sstats = raw.sample_stats[stats_keep]
    if "diverging" not in sstats:
        sstats = sstats.assign(diverging=raw.sample_stats["diverging"])
    return _arviz.make_idata(
        {
            "posterior": ds,
            "log_likelihood": log_lik,
            "observed_data": observed,
            "constant_data": const,
            "sample_stats": sstats.load(),
        }
    )


class DTAFit:
    """A fitted DTA meta-analysis: posterior draws, the data, and the model settings.

    Attributes
    ----------
    idata : arviz.InferenceData
        ``posterior`` (coefficients, SDs, correlations, per-row linear predictors ``theta``),
        ``log_likelihood`` (``dta``: per-row log-likelihood of TP and TN), ``observed_data``,
        ``constant_data`` and ``sample_stats``.
    data : DTAData
        The validated data.
    spec : ModelSpec
        The model settings.
    sampler : dict
        Sampler settings, including the seed actually used.
    """

    #: How the diagnostics' warnings name the options (a subclass fitted by another
    #: function names that function's options).
    _option_hints = OptionHints()
    #: Whether a parameterization switch is a remedy the warnings may suggest.
    _offers_parameterization = True

    def __init__(
        self,
        idata: Any,
        data: DTAData,
        spec: ModelSpec,
        sampler: Mapping[str, Any],
        *,
        design: Design | None = None,
        timing: Mapping[str, float] | None = None,
    ) -> None:
        self.idata = idata
        self.data = data
        self.spec = spec
        self.sampler = dict(sampler)
        self.design = design or make_design(data, spec, weights=self.weights)
        self.timing = dict(timing or {})
        self._draw_cache: dict[str, xr.DataArray] = {}
        self._diag_stats: ChainStats | None = None
        self._diag = None

    @property
    def _diag(self) -> dict[str, Any] | None:
        """Cached diagnostics; setting None also forgets the R-hat/ESS numbers."""
        return self._diag_cache

    @_diag.setter
    def _diag(self, value: dict[str, Any] | None) -> None:
        self._diag_cache = value
        if value is None:
            self._diag_stats = None

    # ---------------------------------------------------------------- basic properties
    @property
    def levels(self) -> int:
        """Number of random-effect levels fitted (2 or 3)."""
        return 3 if "tau_within_sensitivity" in self.idata.posterior else 2

    @property
    def data_note(self) -> str:
        """One line: what was read (ids, counts, covariates) and how many levels, and why."""
        return fit_note(self.data, self.spec.levels)

    @property
    def weights(self) -> np.ndarray:
        """Per-row likelihood weights used in this fit (1 = in, 0 = left out)."""
        return np.asarray(self.idata.constant_data["weight"].values, dtype=float)

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group."""
        return self.idata.posterior

    @property
    def n_draws(self) -> int:
        """Total number of kept draws."""
        p = self.posterior
        return int(p.sizes["chain"] * p.sizes["draw"])

    def _coef(self, outcome: str) -> xr.DataArray:
        return self.posterior[f"beta_{outcome}"]

    def _between(self) -> dict[str, xr.DataArray]:
        p = self.posterior
        tau_se, tau_sp = p["tau_sensitivity"], p["tau_specificity"]
        if "tau_level" in tau_se.dims:
            # covariate-specific SDs: summaries use the reference level's SDs
            tau_se, tau_sp = (
                tau_se.isel(tau_level=0, drop=True),
                tau_sp.isel(tau_level=0, drop=True),
            )
        return {"tau_se": tau_se, "tau_sp": tau_sp, "rho": p["rho"]}

    def _total_heterogeneity(self) -> dict[str, xr.DataArray]:
        """SDs and correlation of a new row in a new study: between + within (three levels)."""
        b = self._between()
        if self.levels == 2:
            return b
        p = self.posterior
        tw_se, tw_sp, rw = p["tau_within_sensitivity"], p["tau_within_specificity"], p["rho_within"]
        t_se, t_sp, r = st.total_covariance(b["tau_se"], b["tau_sp"], b["rho"], tw_se, tw_sp, rw)
        return {"tau_se": t_se, "tau_sp": t_sp, "rho": r}

    # ---------------------------------------------------------------- derived draws
    def draws(self, name: str) -> xr.DataArray:
        """Posterior draws (dims chain, draw) of a named summary quantity.

        Names are those of :meth:`summary` (``sensitivity``, ``specificity``, ``lr_positive``,
        ``lr_negative``, ``dor``, ``mu_sensitivity``, ``tau_sensitivity``, ``rho``, ``auc``,
        ``i2_sensitivity``, ...).
        """
        if name not in self._draw_cache:
            self._draw_cache.update(self._derived())
        if name not in self._draw_cache:
            raise KeyError(f"unknown quantity {name!r}; known: {list(self._draw_cache)}")
        return self._draw_cache[name]

    def _derived(self) -> dict[str, xr.DataArray]:
        p = self.posterior
        out: dict[str, xr.DataArray] = {}
        mu_se = self._coef("sensitivity").sel(coef_sensitivity="Intercept", drop=True)
        mu_sp = self._coef("specificity").sel(coef_specificity="Intercept", drop=True)
        link = self.spec.link
        se = xr.apply_ufunc(lk.inverse, mu_se, kwargs={"link": link})
        sp = xr.apply_ufunc(lk.inverse, mu_sp, kwargs={"link": link})
        out["sensitivity"] = se
        out["specificity"] = sp
        lr = st.likelihood_ratios(se.values, sp.values)
        for k in ("lr_positive", "lr_negative", "dor"):
            out[k] = se.copy(data=lr[k])
        out["mu_sensitivity"] = mu_se
        out["mu_specificity"] = mu_sp
        b = self._between()
        out["tau_sensitivity"] = b["tau_se"]
        out["tau_specificity"] = b["tau_sp"]
        out["rho"] = b["rho"]
        if "nu" in p:
            out["nu"] = p["nu"]
        if "tau_level" in p["tau_sensitivity"].dims:
            for lv in p["tau_sensitivity"].coords["tau_level"].values:
                for o in OUTCOMES:
                    out[f"tau_{o}[{lv}]"] = p[f"tau_{o}"].sel(tau_level=lv, drop=True)
        if self.levels == 3:
            for k in ("tau_within_sensitivity", "tau_within_specificity", "rho_within"):
                out[k] = p[k]
        for outcome in OUTCOMES:
            # per unit of each model-matrix column, with this fit's own design (Design.units)
            coef = self._coef(outcome)
            scale = self.design.column_scale(outcome)
            for c in self.design.columns[outcome]:
                if c == "Intercept":
                    continue
                v = coef.sel({f"coef_{outcome}": c}, drop=True)
                out[f"beta_{outcome}[{c}]"] = v / scale[c]
        # SROC, AUC and heterogeneity (from the SDs of a new row: between + within for 3 levels)
        h = self._total_heterogeneity()
        args = (mu_se.values, mu_sp.values, h["tau_se"].values, h["tau_sp"].values, h["rho"].values)
        # data-derived statistics use only the rows in the fit (weight > 0), so that a fit with
        # weight-0 rows reports what a fit of the subset reports; the same functions of
        # bayesdta.families.stats compute the tables of bayesdta.posterior (one code path)
        fpr_support = _registry.quantity("fpr_support")  # FP = 0 tables: posterior FPR
        d, act = self.data, self.weights > 0
        areas = st.sroc_areas(*args, fpr_range=fpr_support(self), link=link)
        i2, _ = st.i2_statistics(
            h["tau_se"].values,
            h["tau_sp"].values,
            h["rho"].values,
            mu_se.values,
            mu_sp.values,
            tp=d.tp[act],
            fp=d.fp[act],
            fn=d.fn[act],
            tn=d.tn[act],
            link=link,
        )
        for k, v in {**areas, **i2}.items():
            out[k] = se.copy(data=v)
        out.update(self._pooled_over_mix(se.dims))
        return out

    def _pooled_over_mix(self, dims: tuple[str, ...]) -> dict[str, xr.DataArray]:
        """Meta-regressions: ``sensitivity_pooled`` / ``specificity_pooled`` (bayesdta.labels).

        The inverse link of the mean over the included rows (weight > 0) of the linear
        predictor ``x_r beta``, per draw: the summary point over the observed covariate mix,
        as the summary point without covariates is the inverse link of the mean logit.
        """
        if not self.design.has_covariates:
            return {}
        keep = self.weights > 0
        out = {}
        for o in OUTCOMES:
            xbar = np.asarray(self.design.X[o], dtype=float)[keep].mean(axis=0)
            beta = self._coef(o).transpose(*dims, f"coef_{o}")
            eta = np.asarray(beta.values, dtype=float) @ xbar
            da = beta.isel({f"coef_{o}": 0}, drop=True).copy(data=eta)
            out[f"{o}_pooled"] = xr.apply_ufunc(lk.inverse, da, kwargs={"link": self.spec.link})
        return out

    def quantity_names(self) -> list[str]:
        """Names accepted by :meth:`draws` and shown by :meth:`summary`."""
        if not self._draw_cache:
            self._draw_cache.update(self._derived())
        return list(self._draw_cache)

    # ---------------------------------------------------------------- summaries
    def summary(self, ci: float = 0.95, *, quantities: Sequence[str] | None = None) -> pd.DataFrame:
        """Posterior summary of the pooled quantities.

        Parameters
        ----------
        ci : float
            Probability of the equal-tailed credible interval.
        quantities : sequence of str, optional
            Which quantities, by name or glob pattern (``["sensitivity", "lr_*", "tau_*"]``),
            in that order (default: all of :meth:`quantity_names`). A name or pattern that
            matches nothing raises :class:`~bayesdta.SpecError` listing the known names.

        Returns
        -------
        pandas.DataFrame
            Indexed by quantity; columns ``mean``, ``median``, ``sd``, ``lower``, ``upper``,
            ``ess_bulk``, ``r_hat``, ``ess_tail`` and ``description`` (what the row is, e.g.
            ``"Sensitivity at reference levels (backbone=ResNet, validation=internal)"``,
            :func:`bayesdta.labels.quantity_descriptions`). ``df.attrs["warnings"]`` lists
            sampler trouble (divergences, R-hat > 1.01, bulk or tail ESS < 400, E-BFMI < 0.3;
            each naming the option to change), also shown when the fit is printed;
            ``df.attrs["reference"]`` says where a meta-regression's summary point sits
            (``""`` without covariates); ``df.attrs["units"]`` states the unit of every
            ``beta_*`` coefficient (per unit of its model-matrix column, or a level
            against the reference level; see :meth:`bayesdta.model.Design.units`).

        Notes
        -----
        ``sensitivity`` and ``specificity`` are the summary point: the inverse link of the mean
        linear predictor, e.g. invlogit of the mean logit. **In a meta-regression they are the
        summary point at the reference levels** of the categorical covariates (and the means
        of the continuous ones), and so are ``lr_positive``, ``lr_negative``, ``dor``,
        ``mu_*``, ``auc`` and ``auc_partial``; ``tau_*`` and ``rho`` are then residual SDs and
        correlation. Beside them, ``sensitivity_pooled`` and ``specificity_pooled`` are the
        summary point over the observed covariate mix: per draw, the inverse link of the mean
        over the included rows (weight > 0) of the linear predictor ``x_r beta`` (without
        covariates they would equal ``sensitivity`` / ``specificity`` and are not listed).
        ``lr_positive`` =
        se / (1 - sp), ``lr_negative`` = (1 - se) / sp, ``dor`` = LR+ / LR-, per draw.
        ``tau_*`` and ``rho`` are between-study; ``*_within`` are between rows of a study.
        ``auc`` is the area under the HSROC curve (Harbord et al. 2007) over FPR in [0, 1];
        ``auc_partial`` over the FPR range the tables in the fit support
        (:func:`bayesdta.quantities.fpr_support`). I2 statistics
        (for three levels all use the total, between + within, SDs; rows with weight 0 are
        not used):

        * ``i2_sensitivity``, ``i2_specificity``: Higgins & Thompson's (2002) I2,
          ``tau^2 / (tau^2 + s^2)`` with their "typical" within-study variance ``s^2`` of the
          observed logits (probits for ``link="probit"``, see
          :func:`bayesdta.stats.link_variances` and
          :func:`bayesdta.stats.typical_within_variance`).
        * ``i2_bivariate``: Zhou & Dendukuri's (2014) bivariate formula
          ``|Sigma|^{1/2} / (|Sigma|^{1/2} + |S|^{1/2})`` evaluated with the same
          Higgins-Thompson typical variances in ``S`` (not with Zhou & Dendukuri's expected
          within-study variance).
        * ``i2_sensitivity_zd``, ``i2_specificity_zd``, ``i2_bivariate_zd`` (logit fits):
          Zhou & Dendukuri's (2014) model-based statistics, with the expected within-study
          variance under the binomial-normal model
          (:func:`bayesdta.stats.expected_within_variance`), which avoid the underestimate
          of the typical variance (and overestimate of I2) when ``tau`` is large.
        """
        from .labels import expand_names, quantity_descriptions, reference_text

        if not 0 < ci < 1:
            raise SpecError(f"ci must lie in (0, 1), got {ci}")
        known = self.quantity_names()
        names = expand_names(quantities, known) if quantities is not None else known
        df = _arviz.summary_table(
            {n: self.draws(n).transpose("chain", "draw").values for n in names}, ci
        )
        desc = quantity_descriptions(self, names)
        df["description"] = [desc[n] for n in df.index]
        df.attrs["warnings"] = self.diagnostics()["warnings"]
        df.attrs["ci"] = ci
        df.attrs["reference"] = reference_text(self.design)
        df.attrs["units"] = {k: u for k, u in self.design.units().items() if k in df.index}
        return df

    def diagnostics(self) -> dict[str, Any]:
        """Sampler diagnostics of every reported quantity.

        Checked on the model's hyperparameters, the coefficients and every quantity of
        :meth:`summary`: R-hat, bulk and tail ESS; plus divergences and E-BFMI.

        Returns
        -------
        dict
            ``divergences``, ``max_r_hat``, ``min_ess_bulk``, ``min_ess_tail``,
            ``min_bfmi``, ``worst`` (the quantity of each extreme) and ``warnings`` (list of
            messages, each naming the option to change; empty when all is well).
        """
        if self._diag is not None:
            return self._diag
        if self._diag_stats is None:
            self._diag_stats = self._diagnostic_stats()
        return self._diagnostic_messages(self._diag_stats)

    def _diagnostic_stats(self) -> ChainStats:
        q = self.quantity_names()
        names = [n for n in get_family(self.spec.random_effects).parameters if n in q]
        names += [n for n in q if n not in names]
        named = ((n, self.draws(n).transpose("chain", "draw").values) for n in names)
        return chain_stats(named, self.idata.sample_stats)

    def _diagnostic_messages(self, stats: ChainStats) -> dict[str, Any]:
        s = self.sampler
        out = diagnostic_record(
            stats,
            draws=int(s.get("draws") or 0),
            tune=int(s.get("tune") or 0),
            target_accept=float(s.get("target_accept") or 0.8),
            parameterization=(
                s.get("parameterization", self.spec.parameterization)
                if self._offers_parameterization
                else None
            ),
            hints=self._option_hints,
        )
        self._diag = out
        return out

    def sampling_note(self) -> str:
        """One line: the parameterization used, why, and what the automatic escalation did.

        E.g. ``"auto: noncentered (studies weakly informative relative to the between-study
        SD ...); 1 attempt, clean"``.
        """
        s = self.sampler
        mode = self.spec.parameterization
        label = s.get("parameterization", mode)
        reason = s.get("parameterization_reason")
        head = f"{mode}: {label}" + (f" ({reason})" if reason else "")
        if s.get("defaults_reason"):
            head += f"; {s['defaults_reason']}"
        attempts = s.get("attempts") or []
        if not attempts:
            return head
        parts = []
        for a in attempts:
            d = a["diagnostics"]
            issues = []
            if d["divergences"]:
                issues.append(f"{d['divergences']} divergences")
            if d["max_r_hat"] > dg.RHAT_MAX:
                issues.append(f"R-hat {d['max_r_hat']:.3f}")
            ess = min(d["min_ess_bulk"], d["min_ess_tail"])
            if ess < dg.ESS_MIN:
                issues.append(f"ESS {ess:.0f}")
            if np.isfinite(d.get("min_bfmi", np.nan)) and d["min_bfmi"] < dg.BFMI_MIN:
                issues.append(f"E-BFMI {d['min_bfmi']:.2f}")
            what = ", ".join(a["changed"]) if a["changed"] else "defaults"
            parts.append(f"{what}: " + ("; ".join(issues) if issues else "clean"))
        n = len(attempts)
        tail = f"{n} attempt" + ("s" if n > 1 else "")
        if n > 1:
            tail += f" ({' -> '.join(parts)}; kept attempt {s.get('selected_attempt', n)})"
        else:
            tail += ", " + parts[0].split(": ", 1)[1]
        return f"{head}; {tail}"

    def format_summary(self, ci: float = 0.95, *, round_to: int = 3) -> str:
        """The summary as text, headed by any sampler warnings (what the CLI prints)."""
        df = self.summary(ci)
        lines = []
        if df.attrs["warnings"]:
            lines.append("!" * 78)
            lines.append("SAMPLER WARNINGS — do not report these results before resolving them:")
            lines += [f"  * {m}" for m in df.attrs["warnings"]]
            lines.append("!" * 78)
        lines.append(
            f"bayesdta fit: {self.data.n_rows} rows, {self.data.n_studies} studies, "
            f"{self.levels} levels, {self.n_draws} draws ({self.sampler['backend']}, seed "
            f"{self.sampler['seed']})"
        )
        lines.append(f"sampling: {self.sampling_note()}")
        lines += _summary_notes(self, df)
        with pd.option_context("display.width", 120, "display.max_columns", 20):
            lines.append(df.drop(columns="description").round(round_to).to_string())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.format_summary()

    # ---------------------------------------------------------------- model comparison
    def loo(
        self, *, by: str = "study", integrated: bool = True, n_inner: int = 64, seed: int = 0
    ) -> dict[str, Any]:
        """PSIS-LOO cross-validation (Vehtari et al. 2017), grouped by study or by row.

        Parameters
        ----------
        by : {"study", "row"}
            ``"study"``: the expected log predictive density of a whole left-out study.
        integrated : bool
            For ``by="study"`` (default True): PSIS on each study's likelihood with its random
            effects integrated out per draw (:func:`bayesdta.quantities.loo_integrated`). The
            conditional version (False) uses the likelihood given the study's own effects,
            which is far too optimistic for informative studies and is kept for comparison.
        n_inner, seed : int
            Importance draws per study and draw for the integration, and their seed.

        Returns
        -------
        dict
            ``elpd_loo``, ``se``, ``p_loo``, ``loo_i``, ``pareto_k``, ``warning`` and ``labels``.
            Rows with weight 0 (left out of the fit) are excluded, and so are studies whose
            rows all have weight 0.
        """
        if by == "study" and integrated:
            loo_integrated = _registry.quantity("loo_integrated")

            return loo_integrated(self, n_inner=n_inner, seed=seed)
        ll = self.idata.log_likelihood["dta"]
        if by == "row":
            keep = self.weights > 0
            ll = ll.isel(row=np.flatnonzero(keep))
            res = _arviz.loo_pointwise(ll, dim="row")
            res["labels"] = list(ll.coords["row"].values)
        elif by == "study":
            # studies with every row at weight 0 are not in the fit
            in_fit = np.bincount(
                self.data.study_index, weights=self.weights > 0, minlength=self.data.n_studies
            )
            keep = np.flatnonzero(in_fit > 0)
            grouped = self.idata.log_likelihood["dta_study"].isel(study=keep)
            res = _arviz.loo_pointwise(grouped.transpose("chain", "draw", "study"), dim="study")
            res["labels"] = [self.data.studies[i] for i in keep]
        else:
            raise SpecError(f"by must be 'study' or 'row', got {by!r}")
        return res

    # ---------------------------------------------------------------- quantities and figures
    def sroc(self, **kwargs: Any) -> pd.DataFrame:
        """Posterior SROC curve with credible band (:func:`bayesdta.quantities.sroc`)."""
        return _registry.quantity("sroc")(self, **kwargs)

    def auc(self, **kwargs: Any) -> pd.DataFrame:
        """AUC and partial AUC (:func:`bayesdta.quantities.auc`)."""
        return _registry.quantity("auc")(self, **kwargs)

    def hsroc_parameters(self, *, ci: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """Rutter-Gatsonis parameters (:func:`bayesdta.quantities.hsroc_parameters`)."""
        return _registry.quantity("hsroc_parameters")(self, ci=ci, **kwargs)

    def regions(self, **kwargs: Any) -> dict[str, Any]:
        """Credible and prediction regions (:func:`bayesdta.quantities.regions`)."""
        return _registry.quantity("regions")(self, **kwargs)

    def predictive(self, **kwargs: Any) -> pd.DataFrame:
        """Predictive se/sp of a new study or model (:func:`bayesdta.quantities.predictive`)."""
        return _registry.quantity("predictive")(self, **kwargs)

    def heterogeneity(self, *, ci: float = 0.95, **kwargs: Any) -> pd.DataFrame:
        """SDs, correlations and I2 (:func:`bayesdta.quantities.heterogeneity`)."""
        return _registry.quantity("heterogeneity")(self, ci=ci, **kwargs)

    def fagan(self, **kwargs: Any) -> pd.DataFrame:
        """Post-test probabilities (:func:`bayesdta.quantities.fagan`)."""
        return _registry.quantity("fagan")(self, **kwargs)

    def deeks(self) -> dict[str, Any]:
        """Deeks' funnel-plot asymmetry test (:func:`bayesdta.quantities.deeks`)."""
        return _registry.quantity("deeks")(self)

    def influence(self, **kwargs: Any) -> pd.DataFrame:
        """Study influence with exact refits (:func:`bayesdta.quantities.influence`)."""
        return _registry.quantity("influence")(self, **kwargs)

    def study_weights(self, *, ci: float = 0.95) -> pd.DataFrame:
        """Per-study posterior weights of t effects (:func:`bayesdta.quantities.study_weights`).

        Only for ``random_effects="t"``: the posterior mean of each study's weight
        ``lambda_s`` (low = outlying) with a ``ci`` credible interval.
        """
        return _registry.quantity("study_weights")(self, ci=ci)

    def shrunken(self, *, ci: float = 0.95) -> pd.DataFrame:
        """Posterior per-row se/sp (:func:`bayesdta.quantities.shrunken`)."""
        return _registry.quantity("shrunken")(self, ci=ci)

    def posterior_predictive(self, **kwargs: Any) -> xr.Dataset:
        """Replicated TP/TN (:func:`bayesdta.quantities.posterior_predictive`)."""
        return _registry.quantity("posterior_predictive")(self, **kwargs)

    # ---------------------------------------------------------------- review outputs (issue 13)
    def summary_of_findings(self, **kwargs: Any) -> pd.DataFrame:
        """Natural frequencies per 1000 tested (:func:`bayesdta.posterior.review_outputs.summary_of_findings`)."""  # noqa: E501
        return _registry.quantity("summary_of_findings")(self, **kwargs)

    def threshold_effect(self, **kwargs: Any) -> pd.DataFrame:
        """Spearman r of se and FPR beside rho (:func:`~bayesdta.posterior.review_outputs.threshold_effect`)."""  # noqa: E501
        return _registry.quantity("threshold_effect")(self, **kwargs)

    def study_ratios(self, **kwargs: Any) -> pd.DataFrame:
        """DOR, LR+ and LR- per table and pooled (:func:`~bayesdta.posterior.review_outputs.study_ratios`)."""  # noqa: E501
        return _registry.quantity("study_ratios")(self, **kwargs)

    def quadas(self) -> pd.DataFrame:
        """QUADAS-2 judgements per study (:func:`bayesdta.posterior.review_outputs.quadas`)."""
        return _registry.quantity("quadas")(self)

    def quadas_summary(self) -> pd.DataFrame:
        """QUADAS-2 counts per domain (:func:`~bayesdta.posterior.review_outputs.quadas_summary`)."""  # noqa: E501
        return _registry.quantity("quadas_summary")(self)

    def study_pca(self, **kwargs: Any) -> dict[str, Any]:
        """Study-characteristics PCA (:func:`bayesdta.posterior.review_outputs.study_pca`)."""
        return _registry.quantity("study_pca")(self, **kwargs)

    def plot(self, kind: str = "sroc", **kwargs: Any):
        """Draw one figure of :mod:`bayesdta.plots` and return it.

        ``kind`` is one of forest, sroc, fagan, lr_scatter, deeks, influence, ppc,
        prior_posterior, forest_ratios, quadas, pca_biplot; keyword arguments go to the
        ``plot_<kind>`` function.
        """
        return _registry.figure(kind)(self, **kwargs)

    # ---------------------------------------------------------------- refits
    def refit(
        self,
        *,
        data: DTAData | None = None,
        weights: Sequence[float] | np.ndarray | None = None,
        priors: Mapping[str, Any] | None = None,
        seed: int | None = None,
        **sampler: Any,
    ) -> DTAFit:
        """Refit with new data, weights, priors or sampler settings (re-using the compiled model).

        Parameters
        ----------
        data : DTAData, optional
            New data (default: the same).
        weights : array, optional
            Per-row weights (0 leaves a row out while keeping shapes). Default: this fit's
            weights (when the data are unchanged), else all ones.
        priors : mapping, optional
            Prior overrides merged over the current ones.
        seed : int, optional
            Seed (default: the current fit's seed).
        **sampler
            Sampler settings to change (``draws``, ``tune``, ..., ``escalate``). The others are
            those this fit was *asked* for (before defaults and escalation), so ``refit()``
            with nothing changed repeats the same runs and gives the same draws.
        """
        spec = self.spec if priors is None else self.spec.replace(priors=priors)
        if weights is None and data is None:
            weights = self.weights
        # the options this fit was asked for (before defaults and escalation), so that the same
        # options and seed repeat the same runs; fits saved before escalation: the settings used
        requested = self.sampler.get("requested") or self.sampler
        s = {k: v for k, v in requested.items() if k in _SETTINGS_KEYS}
        escalate = sampler.pop("escalate", self.sampler.get("escalate", True))
        s.update(sampler)
        s["seed"] = self.sampler["seed"] if seed is None else seed
        return fit_design(
            data or self.data, spec, SamplerSettings(**s), weights=weights, escalate=escalate
        )

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Save to netCDF (posterior, data, model settings); :func:`bayesdta.load` reads it back."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        idata = self.idata.copy()
        attrs = dict(idata.constant_data.attrs)
        attrs["bayesdta_data"] = self.data.to_json()
        attrs["bayesdta_spec"] = json.dumps(self.spec.to_dict())
        attrs["bayesdta_sampler"] = json.dumps(self.sampler)
        attrs["bayesdta_timing"] = json.dumps(self.timing)
        idata.constant_data.attrs = attrs
        _arviz.to_netcdf(idata, path)
        return path


def load(path: str | Path) -> Any:
    """Load a fit written by :meth:`DTAFit.save` (or by the ``save`` of another fit class).

    Fits of other families store a ``bayesdta_kind`` attribute; their loaders are registered
    in :data:`bayesdta.registry.LOADERS` (``"latent_class"``: :class:`LatentClassFit`,
    ``"comparative"``: :class:`~bayesdta.ComparativeFit`).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved fit at {str(path)!r}")
    idata = _arviz.from_netcdf(path)
    # fits of other families (latent class, comparison of tests) say what they are
    for group in ("constant_data", "posterior"):
        if group in idata.groups():
            kind = idata[group].attrs.get("bayesdta_kind")
            if kind:
                return _registry.loader(str(kind))(idata, path)
    attrs = dict(idata.constant_data.attrs)
    try:
        data = DTAData.from_json(attrs.pop("bayesdta_data"))
        spec = ModelSpec.from_dict(json.loads(attrs.pop("bayesdta_spec")))
        sampler = json.loads(attrs.pop("bayesdta_sampler"))
        timing = json.loads(attrs.pop("bayesdta_timing", "{}"))
    except KeyError:
        raise SpecError(f"{str(path)!r} was not written by bayesdta (DTAFit.save)") from None
    idata.constant_data.attrs = attrs
    return DTAFit(idata, data, spec, sampler, timing=timing)


def _summary_notes(fit: DTAFit, df: pd.DataFrame) -> list[str]:
    """Lines under the header of :meth:`DTAFit.format_summary` saying where the summary point is."""
    from .labels import AT_SUMMARY_POINT, POOLED_QUANTITIES, pooled_definition

    ref = df.attrs.get("reference", "")
    if not ref:
        return []
    at_ref = [n for n in df.index if n in AT_SUMMARY_POINT]
    lines = []
    if at_ref:
        lines.append(f"{', '.join(at_ref)}: {ref}")
    pooled = [n for n in df.index if n in POOLED_QUANTITIES]
    if pooled:
        n_in = int((fit.weights > 0).sum())
        lines.append(
            f"{', '.join(pooled)}: over the observed covariate mix "
            f"({pooled_definition(fit.spec.link, n_in)})"
        )
    return lines
