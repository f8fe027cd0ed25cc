"""Fitting the joint multiclass model: :func:`fit_multiclass` returns a :class:`MulticlassFit`.

The model (:mod:`bayesdta.families.multiclass`) is built by the ``"multiclass"`` family and
sampled by :func:`bayesdta.inference.sampling.sample`, so one compiled model serves every fit of
the same structure (K, padded number of studies, parameterization, prior families) in a
process. The fit owns its labels (classes, effects, studies) from its own data.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import registry
from ..data.tables import ConfusionData, read_confusion
from ..exceptions import SamplerWarning, SpecError
from ..families.base import get_family
from ..families.multiclass import (
    MulticlassSpec,
    choose_parameterization,
    effect_labels,
    softmax_rows,
)
from . import _arviz
from .diagnostics import ESS_MIN, RHAT_MAX, OptionHints, chain_stats, diagnostic_record
from .sampling import SamplerSettings, sample

__all__ = ["fit_multiclass", "MulticlassFit", "load_multiclass", "MULTICLASS_DEFAULTS"]

#: First-run sampler settings of the multiclass model (draws, tune, target_accept per chain).
MULTICLASS_DEFAULTS = {"draws": 1000, "tune": 1000, "target_accept": 0.9}
_MAX_ATTEMPTS = 3
#: Draws of new-study effects per posterior draw for the predictive confusion matrix.
_PREDICTIVE_SEED_OFFSET = 7919


def _as_confusion(table: Any, **kw: Any) -> ConfusionData:
    return read_confusion(table, **kw)


def fit_multiclass(
    table: Any,
    *,
    classes: Sequence[str] | None = None,
    study: str | None = "study",
    true: str | None = None,
    predicted: str | None = None,
    count: str | None = None,
    priors: Mapping[str, Any] | None = None,
    parameterization: str = "auto",
    prevalence: Sequence[float] | Mapping[str, float] | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
    backend: str = "nutpie",
    draws: int | None = None,
    tune: int | None = None,
    chains: int = 4,
    target_accept: float | None = None,
    seed: int | None = None,
    cores: int | None = None,
    progress: bool = False,
    verbose: bool = True,
    escalate: bool = True,
) -> MulticlassFit:
    """Fit the joint multiclass model to KxK confusion matrices of several studies.

    For every study and true class the predicted classes are multinomial; the ``K (K - 1)``
    log-odds of each wrong prediction against the correct one have correlated study effects
    (see :mod:`bayesdta.families.multiclass` and ``docs/multiclass.md``).

    Parameters
    ----------
    table : DataFrame, CSV path, ConfusionData or array (n_studies, K, K)
        Long format (``study``, true class, predicted class, count) or one row per study with
        K*K cell columns ``"<true>-><predicted>"``; read by
        :func:`bayesdta.data.tables.read_confusion`.
    classes : sequence of str, optional
        Class labels and their order (default: order of first appearance of the true classes).
    study, true, predicted, count : str, optional
        Column names (default: ``"study"`` and the recognised headers).
    priors : mapping, optional
        ``mu`` (mean log-odds, default ``Normal(0, 2)``), ``tau`` (between-study SDs,
        ``HalfNormal(1.5)``), ``rho`` (correlation matrix, ``LKJ(2)``).
    parameterization : {"auto", "noncentered", "centered"}
        How the study effects are sampled (the same model). ``"auto"`` chooses by the studies'
        informativeness (:func:`bayesdta.families.multiclass.choose_parameterization`:
        centered when the counts pin the study effects down, else non-centered) and switches
        from centered to non-centered when the first run has divergences or chains far apart.
    prevalence : sequence or mapping, optional
        Class prevalences used for the one-vs-rest specificities, LRs and the overall
        accuracy (specificity of class k averages the other classes' correct-rejection
        probabilities with these weights). Default: the pooled observed prevalences (all
        studies' participants of each true class over all participants).
    weights : array, optional
        Per-study likelihood weights (0 leaves a study out, same compiled model).
    backend, draws, tune, chains, target_accept, seed, cores, progress
        Sampler settings (:class:`~bayesdta.inference.sampling.SamplerSettings`); defaults
        ``draws=1000``, ``tune=1000``, ``target_accept=0.9`` (:data:`MULTICLASS_DEFAULTS`).
    verbose : bool
        Print what was read to standard error.
    escalate : bool
        Re-run at most twice when the first run is not clean (other parameterization with
        ``"auto"``, higher ``target_accept``, longer warm-up, more draws -- only options left
        at their defaults).

    Returns
    -------
    MulticlassFit
    """
    data = _as_confusion(
        table, classes=classes, study=study, true=true, predicted=predicted, count=count
    )
    if parameterization not in ("auto", "noncentered", "centered"):
        raise SpecError(
            "parameterization must be 'auto', 'noncentered' or 'centered', "
            f"got {parameterization!r}"
        )
    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and (
        w.shape != (data.n_studies,) or np.any(w < 0) or not np.all(np.isfinite(w))
    ):
        raise SpecError(
            f"weights must be {data.n_studies} finite non-negative numbers, one per study"
        )
    if w is not None and not np.any(w > 0):
        raise SpecError(
            "weights are all 0: no study enters the fit (give at least one a positive weight)"
        )
    if parameterization == "auto":
        first, reason = choose_parameterization(data, weights)
    else:
        first, reason = parameterization, f"parameterization={parameterization!r} requested"
    spec = MulticlassSpec(priors=priors, parameterization=first)
    prev = _resolve_prevalence(prevalence, data)
    if data.n_studies < 2:
        raise SpecError(
            "the multiclass model needs at least 2 studies to estimate between-study effects"
        )
    if verbose:
        print(f"multiclass: {data.describe()}", file=sys.stderr, flush=True)
    requested = SamplerSettings(
        backend=backend,  # type: ignore[arg-type]
        draws=draws,
        tune=tune,
        chains=chains,
        target_accept=target_accept,
        seed=seed,
        cores=cores,
        progress=progress,
    )
    seed_ = int(seed) if seed is not None else int(np.random.SeedSequence().entropy % 2**31)
    plan = {
        "parameterization": first,
        "draws": draws or MULTICLASS_DEFAULTS["draws"],
        "tune": tune if tune is not None else MULTICLASS_DEFAULTS["tune"],
        "target_accept": target_accept or MULTICLASS_DEFAULTS["target_accept"],
        "changed": [],
    }
    family = get_family("multiclass")
    history: list[dict[str, Any]] = []
    fits: list[MulticlassFit] = []
    built_by: dict[str, Any] = {}
    from dataclasses import replace

    from .._quiet import quiet

    for k in range(_MAX_ATTEMPTS if escalate else 1):
        mode = plan["parameterization"]
        run = replace(
            requested,
            seed=seed_ if k == 0 else int(np.random.SeedSequence([seed_, k]).generate_state(1)[0]),
            draws=plan["draws"],
            tune=plan["tune"],
            target_accept=plan["target_accept"],
            low_rank=False,
        )
        run = replace(run, seed=int(run.seed) % 2**31)
        with quiet():
            if mode not in built_by:
                built_by[mode] = family.build(data, spec, weights=w, centering=mode)
            raw, timing, run = sample(built_by[mode], run)
        idata = _postprocess(raw, data, w)
        sampler = run.to_dict()
        sampler["seed"] = seed_
        sampler["parameterization"] = mode
        sampler["parameterization_reason"] = (
            reason if mode == first else f"{reason}; escalation switched to {mode}"
        )
        f = MulticlassFit(
            idata,
            data,
            spec.replace(parameterization=mode),
            sampler,
            timing=timing,
            prevalence=prev,
        )
        diag = f.diagnostics()
        history.append(
            {
                "attempt": k + 1,
                "parameterization": mode,
                "draws": int(run.draws),
                "tune": int(run.tune),
                "target_accept": float(run.target_accept),
                "changed": list(plan["changed"]),
                "diagnostics": {
                    key: diag[key]
                    for key in ("divergences", "max_r_hat", "min_ess_bulk", "min_ess_tail")
                },
                "clean": not diag["warnings"],
            }
        )
        fits.append(f)
        if not diag["warnings"] or not escalate:
            break
        nxt = dict(plan)
        changed = []
        geometry = diag["divergences"] > 0 or diag["max_r_hat"] > 1.05
        if geometry and parameterization == "auto" and k == 0 and mode == "centered":
            # centered with trouble: the studies inform their effects less than estimated. The
            # other way round is not tried: with few or small studies the centered form has a
            # funnel (5 simulated 3x3 studies: 414 divergences centered, 6 non-centered)
            nxt["parameterization"] = "noncentered"
            changed.append("parameterization noncentered")
        if geometry and target_accept is None and plan["target_accept"] < 0.99:
            nxt["target_accept"] = 0.95 if plan["target_accept"] < 0.95 else 0.99
            changed.append(f"target_accept {nxt['target_accept']}")
        if (geometry or diag["max_r_hat"] > RHAT_MAX) and tune is None:
            nxt["tune"] = 2 * plan["tune"]
            changed.append(f"tune {nxt['tune']}")
        low = min(diag["min_ess_bulk"], diag["min_ess_tail"])
        if draws is None and (low < ESS_MIN or diag["max_r_hat"] > RHAT_MAX):
            factor = min(max(1.3 * ESS_MIN / max(low, 1.0), 1.5), 4.0)
            nxt["draws"] = int(np.ceil(plan["draws"] * factor / 100.0) * 100)
            changed.append(f"draws {nxt['draws']}")
        if not changed:
            break
        nxt["changed"] = changed
        plan = nxt
    best = next(
        (i for i, h in enumerate(history) if h["clean"]),
        min(
            range(len(history)),
            key=lambda i: (
                history[i]["diagnostics"]["divergences"] > 0,
                history[i]["diagnostics"]["max_r_hat"],
            ),
        ),
    )
    result = fits[best]
    result.sampler.update(
        {
            "requested": {
                **requested.to_dict(),
                "seed": seed_,
                "parameterization": parameterization,
            },
            "attempts": history,
            "selected_attempt": best + 1,
            "escalate": bool(escalate),
        }
    )
    msgs = result.diagnostics()["warnings"]
    if msgs:
        warnings.warn("; ".join(msgs), SamplerWarning, stacklevel=2)
    return result


def _resolve_prevalence(prevalence: Any, data: ConfusionData) -> np.ndarray | None:
    if prevalence is None:
        return None
    if isinstance(prevalence, Mapping):
        missing = [c for c in data.classes if c not in prevalence]
        extra = [c for c in prevalence if c not in data.classes]
        if missing or extra:
            raise SpecError(
                f"prevalence: give one value per class {list(data.classes)}; missing {missing}, "
                f"unknown {extra}"
            )
        p = np.array([float(prevalence[c]) for c in data.classes])
    else:
        p = np.asarray(prevalence, dtype=float)
    if p.shape != (data.n_classes,) or np.any(~np.isfinite(p)) or np.any(p <= 0):
        raise SpecError(
            f"prevalence must be {data.n_classes} positive numbers (classes "
            f"{list(data.classes)}), got {list(np.ravel(p))}"
        )
    return p / p.sum()


def _postprocess(raw: Any, data: ConfusionData, weights: np.ndarray | None):
    post = raw.posterior
    k, s = data.n_classes, data.n_studies
    d = k * (k - 1)
    labels = effect_labels(data.classes)
    mu = post["mu"].values
    tau = post["tau"].values
    L = post["chol_corr"].values
    corr = L @ np.swapaxes(L, -1, -2)
    theta = post["theta"].values[:, :, :s, :]
    coords = {
        "chain": post.chain.values,
        "draw": post.draw.values,
        "effect": labels,
        "effect2": labels,
        "study": list(data.studies),
    }
    ds = xr.Dataset(
        {
            "mu": (("chain", "draw", "effect"), mu.astype(float)),
            "tau": (("chain", "draw", "effect"), tau.astype(float)),
            "corr": (("chain", "draw", "effect", "effect2"), corr.astype(float)),
            "chol_corr": (("chain", "draw", "effect", "effect2"), L.astype(float)),
            "theta": (("chain", "draw", "study", "effect"), theta.astype(float)),
        },
        coords=coords,
        attrs={"created_by": "bayesdta", "model": "multiclass"},
    )
    w = np.ones(s) if weights is None else weights
    const = xr.Dataset(
        {
            "counts": (("study", "true", "predicted"), np.asarray(data.counts)),
            "weight": ("study", w),
        },
        coords={
            "study": list(data.studies),
            "true": list(data.classes),
            "predicted": list(data.classes),
        },
    )
    keep = [
        v for v in ("diverging", "energy", "step_size", "n_steps", "depth") if v in raw.sample_stats
    ]
    sstats = raw.sample_stats[keep].load()
    del d
    return _arviz.make_idata({"posterior": ds, "constant_data": const, "sample_stats": sstats})


def _interval(x: np.ndarray, ci: float) -> tuple[float, float, float, float]:
    lo, hi = np.quantile(x, [(1 - ci) / 2, (1 + ci) / 2])
    return float(np.mean(x)), float(np.median(x)), float(lo), float(hi)


class MulticlassFit:
    """A fitted joint multiclass model: posterior draws, the matrices and the settings.

    Attributes
    ----------
    idata : arviz.InferenceData
        ``posterior``: ``mu``, ``tau`` (dims effect), ``corr`` (effect, effect2), ``theta``
        (study, effect); ``constant_data``: the counts and weights.
    data : ConfusionData
        The matrices fitted (classes, studies: the fit's labels).
    spec : MulticlassSpec
        Priors and the parameterization used.
    sampler : dict
        Settings used (seed, draws, ...), the attempts of the escalation.
    prevalence : numpy.ndarray
        Class prevalences of the one-vs-rest summaries (user-given, else pooled observed).
    prevalence_source : str
        ``"given"`` or ``"pooled observed"``.
    """

    def __init__(
        self,
        idata: Any,
        data: ConfusionData,
        spec: MulticlassSpec,
        sampler: dict[str, Any],
        *,
        timing: dict[str, Any] | None = None,
        prevalence: np.ndarray | None = None,
    ) -> None:
        self.idata = idata
        self.data = data
        self.spec = spec
        self.sampler = dict(sampler)
        self.timing = dict(timing or {})
        if prevalence is None:
            self.prevalence = data.observed_prevalence()
            self.prevalence_source = "pooled observed"
        else:
            self.prevalence = np.asarray(prevalence, dtype=float)
            self.prevalence_source = "given"
        self._diag_cache: dict[str, Any] | None = None

    # ------------------------------------------------------------------ labels and draws
    @property
    def classes(self) -> tuple[str, ...]:
        """Class labels (order of the matrices)."""
        return self.data.classes

    @property
    def studies(self) -> tuple[str, ...]:
        """Study labels."""
        return self.data.studies

    @property
    def effects(self) -> list[str]:
        """Labels of the ``K (K - 1)`` log-odds (``"<true> -> <predicted>"``)."""
        return effect_labels(self.classes)

    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group."""
        return self.idata.posterior

    @property
    def n_draws(self) -> int:
        """Total number of kept draws."""
        p = self.posterior
        return int(p.sizes["chain"] * p.sizes["draw"])

    def confusion_draws(self, kind: str = "pooled", *, seed: int | None = None) -> np.ndarray:
        """Draws of the row-normalised confusion matrix ``P(pred j | true k)``.

        Parameters
        ----------
        kind : {"pooled", "predictive"}
            ``"pooled"``: inverse link (softmax) of the mean log-odds ``mu``; ``"predictive"``:
            of the log-odds of a new study, ``mu + u`` with ``u ~ MVN(0, Sigma)`` drawn once
            per posterior draw (seeded by the fit's seed, or ``seed``).

        Returns
        -------
        numpy.ndarray, shape (chain, draw, K, K)
        """
        k = self.data.n_classes
        mu = self.posterior["mu"].values
        if kind == "pooled":
            return softmax_rows(mu, k)
        if kind != "predictive":
            raise SpecError(f"kind must be 'pooled' or 'predictive', got {kind!r}")
        rng = np.random.default_rng(
            int(self.sampler.get("seed", 0)) + _PREDICTIVE_SEED_OFFSET if seed is None else seed
        )
        tau = self.posterior["tau"].values
        L = self.posterior["chol_corr"].values
        z = rng.standard_normal(mu.shape)
        u = np.einsum("cdij,cdj->cdi", L, z) * tau
        return softmax_rows(mu + u, k)

    def one_vs_rest_draws(
        self, kind: str = "pooled", *, prevalence: Sequence[float] | None = None
    ) -> dict[str, np.ndarray]:
        """Draws (chain, draw, K) of the one-vs-rest accuracy of every class.

        ``sensitivity_k = P(pred k | true k)``; ``specificity_k = sum_{i != k} pi_i (1 -
        P(pred k | true i)) / sum_{i != k} pi_i`` with the prevalences ``pi`` (default: the
        fit's, :attr:`prevalence`); ``lr_positive``, ``lr_negative``, ``dor`` from them;
        ``accuracy`` (chain, draw): ``sum_k pi_k P(pred k | true k)``.
        """
        c = self.confusion_draws(kind)
        pi = self.prevalence if prevalence is None else np.asarray(prevalence, dtype=float)
        pi = pi / pi.sum()
        k = self.data.n_classes
        se = np.stack([c[..., i, i] for i in range(k)], axis=-1)
        sp = []
        for i in range(k):
            others = [j for j in range(k) if j != i]
            wts = pi[others] / pi[others].sum()
            sp.append(sum(wt * (1.0 - c[..., j, i]) for wt, j in zip(wts, others, strict=True)))
        sp = np.stack(sp, axis=-1)
        with np.errstate(divide="ignore"):
            lrp = se / (1.0 - sp)
            lrn = (1.0 - se) / sp
            dor = lrp / lrn
        acc = np.sum(pi * se, axis=-1)
        return {
            "sensitivity": se,
            "specificity": sp,
            "lr_positive": lrp,
            "lr_negative": lrn,
            "dor": dor,
            "accuracy": acc,
        }

    # ------------------------------------------------------------------ tables
    def confusion(self, ci: float = 0.95, *, kind: str = "pooled") -> pd.DataFrame:
        """The pooled (or predictive) confusion matrix with credible intervals, long format.

        Columns ``true``, ``predicted``, ``mean``, ``median``, ``lower``, ``upper``: the
        posterior of ``P(pred | true)`` (rows of the matrix sum to 1).
        """
        c = self.confusion_draws(kind)
        rows = []
        for i, a in enumerate(self.classes):
            for j, b in enumerate(self.classes):
                m, med, lo, hi = _interval(c[..., i, j].ravel(), ci)
                rows.append(
                    {"true": a, "predicted": b, "mean": m, "median": med, "lower": lo, "upper": hi}
                )
        df = pd.DataFrame(rows)
        df.attrs["kind"] = kind
        return df

    def confusion_matrix(self, ci: float = 0.95, *, kind: str = "pooled", digits: int = 2):
        """The matrix as text cells ``"0.85 [0.80, 0.89]"`` (rows true, columns predicted)."""
        df = self.confusion(ci, kind=kind)
        out = pd.DataFrame(index=list(self.classes), columns=list(self.classes), dtype=object)
        for r in df.itertuples():
            out.loc[r.true, r.predicted] = (
                f"{r.median:.{digits}f} [{r.lower:.{digits}f}, {r.upper:.{digits}f}]"
            )
        out.index.name = "true \\ predicted"
        return out

    def class_summary(
        self,
        ci: float = 0.95,
        *,
        kind: str = "pooled",
        prevalence: Sequence[float] | None = None,
    ) -> pd.DataFrame:
        """Per-class one-vs-rest sensitivity, specificity, LR+, LR-, DOR (joint posterior).

        One row per (class, quantity): ``class``, ``quantity``, ``mean``, ``median``,
        ``lower``, ``upper``, plus the overall ``accuracy`` (class ``"all"``). The prevalences
        used for the specificities are in ``df.attrs["prevalence"]``.
        """
        dr = self.one_vs_rest_draws(kind, prevalence=prevalence)
        rows = []
        for i, a in enumerate(self.classes):
            for q in ("sensitivity", "specificity", "lr_positive", "lr_negative", "dor"):
                m, med, lo, hi = _interval(dr[q][..., i].ravel(), ci)
                rows.append(
                    {"class": a, "quantity": q, "mean": m, "median": med, "lower": lo, "upper": hi}
                )
        m, med, lo, hi = _interval(dr["accuracy"].ravel(), ci)
        rows.append(
            {
                "class": "all",
                "quantity": "accuracy",
                "mean": m,
                "median": med,
                "lower": lo,
                "upper": hi,
            }
        )
        df = pd.DataFrame(rows)
        pi = self.prevalence if prevalence is None else np.asarray(prevalence) / np.sum(prevalence)
        df.attrs["prevalence"] = dict(zip(self.classes, map(float, pi), strict=True))
        df.attrs["prevalence_source"] = (
            "given" if prevalence is not None else self.prevalence_source
        )
        return df

    def heterogeneity(self, ci: float = 0.95) -> pd.DataFrame:
        """Between-study SDs of the log-odds and their correlations, with intervals."""
        rows = []
        p = self.posterior
        for e in self.effects:
            m, med, lo, hi = _interval(p["tau"].sel(effect=e).values.ravel(), ci)
            rows.append(
                {"parameter": f"tau[{e}]", "mean": m, "median": med, "lower": lo, "upper": hi}
            )
        eff = self.effects
        for i in range(len(eff)):
            for j in range(i + 1, len(eff)):
                x = p["corr"].values[..., i, j].ravel()
                m, med, lo, hi = _interval(x, ci)
                rows.append(
                    {
                        "parameter": f"rho[{eff[i]}, {eff[j]}]",
                        "mean": m,
                        "median": med,
                        "lower": lo,
                        "upper": hi,
                    }
                )
        return pd.DataFrame(rows)

    def _named_draws(self) -> dict[str, np.ndarray]:
        """(chain, draw) draws of every summary quantity, by name."""
        out: dict[str, np.ndarray] = {}
        p = self.posterior
        for n, e in enumerate(self.effects):
            out[f"mu[{e}]"] = p["mu"].values[..., n]
        for n, e in enumerate(self.effects):
            out[f"tau[{e}]"] = p["tau"].values[..., n]
        eff = self.effects
        for i in range(len(eff)):
            for j in range(i + 1, len(eff)):
                out[f"rho[{eff[i]}, {eff[j]}]"] = p["corr"].values[..., i, j]
        c = self.confusion_draws("pooled")
        for i, a in enumerate(self.classes):
            for j, b in enumerate(self.classes):
                out[f"P({b} | {a})"] = c[..., i, j]
        dr = self.one_vs_rest_draws("pooled")
        for i, a in enumerate(self.classes):
            for q in ("sensitivity", "specificity", "lr_positive", "lr_negative", "dor"):
                out[f"{q}[{a}]"] = dr[q][..., i]
        out["accuracy"] = dr["accuracy"]
        return out

    def summary(self, ci: float = 0.95) -> pd.DataFrame:
        """Every summary quantity with mean, median, SD, interval, bulk/tail ESS and R-hat.

        Rows: ``mu[<true> -> <pred>]`` (mean log-odds), ``tau[...]``, ``rho[..., ...]``,
        ``P(<pred> | <true>)`` (pooled confusion matrix), ``sensitivity[<class>]``,
        ``specificity[<class>]``, ``lr_positive[...]``, ``lr_negative[...]``, ``dor[...]``,
        ``accuracy``. ``df.attrs``: ``warnings``, ``prevalence``.
        """
        rows = {}
        for name, x in self._named_draws().items():
            flat = x.ravel()
            m, med, lo, hi = _interval(flat, ci)
            ok = np.all(np.isfinite(x)) and np.ptp(x) > 0 and x.shape[0] > 1
            rows[name] = {
                "mean": m,
                "median": med,
                "sd": float(np.std(flat)),
                "lower": lo,
                "upper": hi,
                "ess_bulk": _arviz.ess_bulk(x) if ok else np.nan,
                "ess_tail": _arviz.ess_tail(x) if ok else np.nan,
                "r_hat": _arviz.rhat(x) if ok else np.nan,
            }
        df = pd.DataFrame.from_dict(rows, orient="index")
        df.index.name = "quantity"
        df.attrs["warnings"] = self.diagnostics()["warnings"]
        df.attrs["prevalence"] = dict(zip(self.classes, map(float, self.prevalence), strict=True))
        return df

    # ------------------------------------------------------------------ diagnostics
    def diagnostics(self) -> dict[str, Any]:
        """Sampler diagnostics of the fit.

        Divergences, worst R-hat, smallest bulk/tail ESS (over ``mu``, ``tau``, ``rho``, the
        pooled confusion matrix and the per-class summaries), smallest E-BFMI, and
        ``warnings`` (each naming the option that fixes it).
        """
        if self._diag_cache is not None:
            return self._diag_cache
        # a quantity constant or with one chain carries no diagnostic: left out
        named = (
            (name, x)
            for name, x in self._named_draws().items()
            if np.all(np.isfinite(x)) and np.ptp(x) > 0 and x.shape[0] >= 2
        )
        s = self.sampler
        out = diagnostic_record(
            chain_stats(named, self.idata.sample_stats),
            draws=int(s.get("draws") or 1000),
            tune=int(s.get("tune") or 1000),
            target_accept=float(s.get("target_accept") or 0.9),
            parameterization=s.get("parameterization", self.spec.parameterization),
            hints=OptionHints(call="bd.fit_multiclass", cli=False),
        )
        self._diag_cache = out
        return out

    def sampling_note(self) -> str:
        """One line: parameterization, settings and the escalation's attempts."""
        s = self.sampler
        att = s.get("attempts") or []
        why = s.get("parameterization_reason")
        head = (
            f"{s.get('parameterization')} study effects"
            + (f" ({why})" if why else "")
            + f"; {s.get('draws')} draws + "
            f"{s.get('tune')} warm-up x {s.get('chains')} chains, target_accept "
            f"{s.get('target_accept')}"
        )
        if len(att) > 1:
            parts = [", ".join(a["changed"]) or "defaults" for a in att]
            head += (
                f"; {len(att)} attempts ({' -> '.join(parts)}; kept {s.get('selected_attempt')})"
            )
        return head

    def format_summary(self, ci: float = 0.95, *, round_to: int = 3) -> str:
        """The pooled confusion matrix and per-class summaries as text, warnings first."""
        lines = []
        warn = self.diagnostics()["warnings"]
        if warn:
            lines.append("SAMPLER WARNINGS — do not report these results before resolving them:")
            lines += [f"  * {m}" for m in warn]
        lines.append(f"bayesdta multiclass fit: {self.data.describe()}")
        lines.append(f"sampling: {self.sampling_note()}")
        lines.append("pooled confusion matrix P(predicted | true), median [interval]:")
        lines.append(self.confusion_matrix(ci, digits=round_to).to_string())
        pi = ", ".join(f"{c} {p:.3f}" for c, p in zip(self.classes, self.prevalence, strict=True))
        lines.append(f"one-vs-rest (prevalences, {self.prevalence_source}: {pi}):")
        cs = self.class_summary(ci)
        lines.append(cs.round(round_to).to_string(index=False))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.format_summary()

    def plot(self, kind: str = "confusion", **kwargs: Any):
        """A figure of the fit (``"confusion"``: heatmap; ``"multiclass_roc"``)."""
        from .. import registry

        name = {"confusion": "confusion_heatmap", "roc": "multiclass_roc"}.get(kind, kind)
        return registry.figure(name)(self, **kwargs)

    def compare_one_vs_rest(self, **kwargs: Any) -> pd.DataFrame:
        """Joint model against separate bivariate one-vs-rest fits.

        See :func:`bayesdta.workflows.multiclass.compare_one_vs_rest`.
        """
        return registry.quantity("compare_one_vs_rest")(self, **kwargs)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Save to netCDF (posterior, matrices, settings).

        :func:`bayesdta.load` and :func:`load_multiclass` read it.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        idata = self.idata.copy()
        attrs = dict(idata.constant_data.attrs)
        attrs["bayesdta_kind"] = "multiclass"
        attrs["bayesdta_confusion"] = self.data.to_json()
        attrs["bayesdta_multiclass_spec"] = json.dumps(self.spec.to_dict())
        attrs["bayesdta_sampler"] = json.dumps(self.sampler, default=str)
        attrs["bayesdta_timing"] = json.dumps(self.timing, default=str)
        attrs["bayesdta_prevalence"] = json.dumps(
            None if self.prevalence_source != "given" else self.prevalence.tolist()
        )
        idata.constant_data.attrs = attrs
        _arviz.to_netcdf(idata, path)
        return path


def load_multiclass(path: str | Path) -> MulticlassFit:
    """Load a fit written by :meth:`MulticlassFit.save` (as :func:`bayesdta.load` does)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved fit at {str(path)!r}")
    return _load_multiclass(_arviz.from_netcdf(path), path)


@registry.register_loader("multiclass")
def _load_multiclass(idata: Any, path: str | Path) -> MulticlassFit:
    """Rebuild a :class:`MulticlassFit` from the netCDF of :meth:`MulticlassFit.save`.

    Called by :func:`bayesdta.load` for ``bayesdta_kind = "multiclass"``.
    """
    attrs = dict(idata.constant_data.attrs)
    attrs.pop("bayesdta_kind", None)
    try:
        data = ConfusionData.from_json(attrs.pop("bayesdta_confusion"))
        spec = MulticlassSpec.from_dict(json.loads(attrs.pop("bayesdta_multiclass_spec")))
        sampler = json.loads(attrs.pop("bayesdta_sampler"))
        timing = json.loads(attrs.pop("bayesdta_timing", "{}"))
        prev = json.loads(attrs.pop("bayesdta_prevalence", "null"))
    except KeyError:
        raise SpecError(f"{str(path)!r} was not written by bayesdta (MulticlassFit.save)") from None
    idata.constant_data.attrs = attrs
    return MulticlassFit(
        idata,
        data,
        spec,
        sampler,
        timing=timing,
        prevalence=None if prev is None else np.asarray(prev, dtype=float),
    )
