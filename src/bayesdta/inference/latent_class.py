"""Fitting the latent-class family (imperfect reference standard): :func:`fit_latent_class`.

The model is documented in :mod:`bayesdta.families.latent_class` and ``docs/latent_class.md``.
The fit is a :class:`LatentClassFit`, a :class:`~bayesdta.DTAFit` whose summary adds the
reference tests' accuracy and the prevalence, whose ``sensitivity`` / ``specificity`` are the
index test's accuracy against the latent true status (inverse logit of the mean logits), and
which checks whether the data informed the reference accuracy at all
(:meth:`LatentClassFit.identifiability`).
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace as _replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .. import registry as _registry
from ..data.tables import DTAData, fit_note
from ..exceptions import IdentifiabilityWarning, SamplerWarning, SpecError
from ..families import links as lk
from ..families import stats as st
from ..families.latent_class import (
    LatentClassSpec,
    build_latent_class_model,
    cell_probabilities,
    multinomial_loglik,
    parse_reference_priors,
)
from . import _arviz
from .diagnostics import OptionHints
from .fit import DTAFit, as_data
from .sampling import SamplerSettings, sample

__all__ = ["fit_latent_class", "LatentClassFit", "LATENT_CLASS_SAMPLER_DEFAULTS", "PRIOR_SD_RATIO"]

#: First-run sampler settings of latent-class fits: the between-table correlation rho mixes
#: slowest (bulk ESS ~0.1 per draw on the worked example, 394 from 4 x 1000 draws).
LATENT_CLASS_SAMPLER_DEFAULTS = {"draws": 1500, "tune": 1000, "target_accept": 0.9}
#: Posterior SD / prior SD of a reference accuracy above which the data are said not to
#: inform it (the posterior is ~ the prior): an :class:`IdentifiabilityWarning`.
PRIOR_SD_RATIO = 0.9
_KEEP = (
    "mu_sensitivity",
    "mu_specificity",
    "tau_sensitivity",
    "tau_specificity",
    "rho",
    "theta",
    "prevalence",
    "reference_sensitivity",
    "reference_specificity",
    "dependence_diseased",
    "dependence_nondiseased",
)


def fit_latent_class(
    data: DTAData | pd.DataFrame | str | Path,
    *,
    reference_standard: str = "reference_standard",
    reference_priors: Mapping[str, Any] | None = None,
    conditional_dependence: bool = False,
    priors: Mapping[str, Any] | None = None,
    spec: LatentClassSpec | None = None,
    weights: Sequence[float] | np.ndarray | None = None,
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
) -> LatentClassFit:
    """Fit the bivariate latent-class model: index test accuracy with an imperfect reference.

    Parameters
    ----------
    data : DTAData, DataFrame or path
        The 2x2 tables of the index test against each table's reference standard, with a
        column naming the reference standard (``reference_standard``).
    reference_standard : str
        Column naming each table's reference standard (default ``"reference_standard"``).
    reference_priors : mapping
        **Required.** For every reference type in that column, Beta priors of its
        sensitivity and specificity, or ``"perfect"``, e.g.
        ``{"DXA": {"sensitivity": bd.Beta(40, 10), "specificity": "Beta(95, 5)"},
        "CT": "perfect"}``. There are no defaults: the model is not identifiable without
        informative priors or several reference types (:class:`~bayesdta.SpecError`).
    conditional_dependence : bool
        Allow positive conditional dependence between index and reference among the
        diseased and the non-diseased, per reference type (default False).
    priors : mapping, optional
        Overrides of the index test's and prevalence priors
        (:data:`bayesdta.families.latent_class.LATENT_CLASS_PRIORS`: ``mu_sensitivity``,
        ``tau``, ``rho``, ``prevalence``, ``dependence_diseased``, ...).
    spec : LatentClassSpec, optional
        All of the above at once (then leave them unset).
    weights : array, optional
        Per-row likelihood weights (0 leaves a table out, keeping the compiled model).
    backend, draws, tune, chains, target_accept, seed, cores, progress
        Sampler settings (:class:`~bayesdta.sampling.SamplerSettings`). Defaults:
        :data:`LATENT_CLASS_SAMPLER_DEFAULTS` (1500 draws after 1000 warm-up, target_accept 0.9).
    study, model, clustered
        Id columns when ``data`` is a DataFrame or path (:meth:`DTAData.from_frame`).
        Every table is its own unit of the random effects and has its own prevalence
        (several tables of one study are treated as independent test sets).
    verbose : bool
        Print what was read and the model to standard error.
    escalate : bool
        When the first run is not clean, run once more with twice the warm-up and draws and
        target_accept 0.97 (only the settings left at their defaults).

    Returns
    -------
    LatentClassFit

    Warns
    -----
    IdentifiabilityWarning
        For every reference accuracy whose posterior SD is more than
        :data:`PRIOR_SD_RATIO` times its prior SD (the data did not inform it).
    """
    if spec is None:
        spec = LatentClassSpec(
            reference_standard=reference_standard,
            reference_priors=reference_priors or {},
            conditional_dependence=conditional_dependence,
            priors=priors or {},
        )
    elif reference_priors is not None or priors is not None or conditional_dependence:
        raise SpecError("give either spec= or individual model settings, not both")
    data = as_data(data, study, model, clustered)
    spec.resolved_reference_priors(data)  # errors before anything else
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
    if verbose:
        print(
            fit_note(data, 2) + f"; latent-class model, reference standard from column "
            f"{spec.reference_standard!r} ({', '.join(spec.levels(data))})",
            file=sys.stderr,
            flush=True,
        )
    return _fit(data, spec, settings, weights=weights, escalate=escalate)


def _fit(
    data: DTAData,
    spec: LatentClassSpec,
    settings: SamplerSettings,
    *,
    weights: Any = None,
    escalate: bool = True,
) -> LatentClassFit:
    from .._quiet import quiet

    w = None if weights is None else np.asarray(weights, dtype=float)
    if w is not None and w.size and not np.any(w > 0):
        raise SpecError(
            "weights are all 0: no table enters the fit (give at least one table a positive weight)"
        )
    seed = (
        int(settings.seed)
        if settings.seed is not None
        else int(np.random.SeedSequence().entropy % 2**31)
    )
    d = LATENT_CLASS_SAMPLER_DEFAULTS
    run = _replace(
        settings,
        seed=seed,
        draws=settings.draws or d["draws"],
        tune=settings.tune if settings.tune is not None else d["tune"],
        target_accept=settings.target_accept or d["target_accept"],
        low_rank=settings.low_rank if settings.low_rank is not None else True,
    )
    with quiet():
        built = build_latent_class_model(data, spec, weights=w)
    attempts = []
    total = {"compile_s": 0.0, "sample_s": 0.0}
    result = None
    for k in range(2 if escalate else 1):
        with quiet():
            raw, timing, used = sample(built, run)
        total["compile_s"] += timing["compile_s"]
        total["sample_s"] += timing["sample_s"]
        idata = _postprocess(raw, built, data, w, spec)
        sampler = {**used.to_dict(), "seed": seed}
        f = LatentClassFit(idata, data, spec, sampler, design=built.design, timing=dict(timing))
        diag = f.diagnostics()
        attempts.append(
            {
                "attempt": k + 1,
                "draws": int(used.draws),
                "tune": int(used.tune),
                "target_accept": float(used.target_accept),
                "seed": int(used.seed),
                "changed": [] if k == 0 else ["tune, draws x2; target_accept 0.97"],
                "diagnostics": {
                    key: (float(diag[key]) if key != "divergences" else int(diag[key]))
                    for key in (
                        "divergences",
                        "max_r_hat",
                        "min_ess_bulk",
                        "min_ess_tail",
                        "min_bfmi",
                    )
                }
                | {"clean": not diag["warnings"]},
            }
        )
        better = result is None or len(diag["warnings"]) < len(result.diagnostics()["warnings"])
        if better:
            result = f
        if not diag["warnings"]:
            break
        changes = {}
        if settings.tune is None:
            changes["tune"] = 2 * run.tune
        if settings.draws is None:
            changes["draws"] = 2 * run.draws
        if settings.target_accept is None:
            changes["target_accept"] = 0.97
        if not changes:
            break
        run = _replace(
            run,
            seed=int(np.random.SeedSequence([seed, k + 1]).generate_state(1)[0] % 2**31),
            **changes,
        )
    assert result is not None
    result.sampler.update(
        {
            "parameterization": "noncentered",
            "parameterization_reason": "latent-class family: non-centered table effects",
            "requested": {**settings.to_dict(), "seed": seed},
            "escalate": bool(escalate),
            "attempts": attempts,
        }
    )
    result.timing.update(total)
    msgs = result.diagnostics()["warnings"]
    if msgs:
        warnings.warn("; ".join(msgs), SamplerWarning, stacklevel=3)
    for msg in result.identifiability()["warning"].dropna():
        warnings.warn(msg, IdentifiabilityWarning, stacklevel=3)
    return result


def _postprocess(raw: Any, built: Any, data: DTAData, weights: Any, spec: LatentClassSpec):
    post = raw.posterior
    n = built.n_rows
    keep = [v for v in _KEEP if v in post]
    ds = post[keep].isel(row=slice(0, n))
    # labels from this fit's data, never from the compiled model (re-used by every fit of
    # the same structure, its coordinates are those of the first such fit)
    ridx, levels = spec.reference_index(data)
    ds = ds.assign_coords(
        {"row": data.row_labels, "outcome": ["sensitivity", "specificity"], "reference": levels}
    )
    ds = xr.Dataset({k: ds[k].astype(float) for k in ds.data_vars})
    # the generic DTAFit code reads the intercepts as beta_*[Intercept]
    for o in ("sensitivity", "specificity"):
        ds[f"beta_{o}"] = ds[f"mu_{o}"].expand_dims({f"coef_{o}": ["Intercept"]}, axis=-1)
    ds.attrs = {"created_by": "bayesdta", "family": "latent_class"}
    theta = ds["theta"].values
    se1, sp1 = lk.inverse(theta[..., 0], "logit"), lk.inverse(theta[..., 1], "logit")
    se2 = ds["reference_sensitivity"].values[..., ridx]
    sp2 = ds["reference_specificity"].values[..., ridx]
    prev = ds["prevalence"].values
    if "dependence_diseased" in ds:
        c1 = ds["dependence_diseased"].values[..., ridx] * (np.minimum(se1, se2) - se1 * se2)
        c0 = ds["dependence_nondiseased"].values[..., ridx] * (np.minimum(sp1, sp2) - sp1 * sp2)
    else:
        c1 = c0 = 0.0
    probs = cell_probabilities(se1, sp1, se2, sp2, prev, c1, c0)
    counts = np.stack([data.tp, data.fp, data.fn, data.tn], axis=1)
    ll = multinomial_loglik(counts, probs)
    sidx = data.study_index
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    ll_study = np.stack(
        [ll[..., (sidx == s) & (w > 0)].sum(axis=-1) for s in range(data.n_studies)], axis=-1
    )
    log_lik = xr.Dataset(
        {
            "dta": (("chain", "draw", "row"), ll),
            "dta_study": (("chain", "draw", "study"), ll_study),
        },
        coords={"chain": ds.chain, "draw": ds.draw, "row": data.row_labels, "study": data.studies},
    )
    observed = xr.Dataset(
        {"TP": ("row", data.tp), "TN": ("row", data.tn)}, coords={"row": data.row_labels}
    )
    col = data.frame[spec.reference_standard].astype(str).str.strip().to_numpy()
    const = xr.Dataset(
        {
            "FN": ("row", data.fn),
            "FP": ("row", data.fp),
            "n_diseased": ("row", data.n_diseased),
            "n_nondiseased": ("row", data.n_nondiseased),
            "study": ("row", np.asarray(data.frame["study"], dtype=str)),
            "weight": ("row", w),
            "reference_standard": ("row", col.astype(str)),
        },
        coords={"row": data.row_labels},
    )
    stats_keep = [
        v for v in ("diverging", "energy", "depth", "step_size", "n_steps") if v in raw.sample_stats
    ]
    return _arviz.make_idata(
        {
            "posterior": ds,
            "log_likelihood": log_lik,
            "observed_data": observed,
            "constant_data": const,
            "sample_stats": raw.sample_stats[stats_keep].load(),
        }
    )


def _beta_sd(a: float, b: float) -> float:
    return float(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))))


class LatentClassFit(DTAFit):
    """A fitted latent-class model (imperfect reference standard).

    As :class:`~bayesdta.DTAFit`; ``sensitivity`` and ``specificity`` of :meth:`summary`
    are the index test's summary point against the latent true status (inverse logit of the
    mean logits), ``tau_*`` and ``rho`` its between-table SDs and correlation. The summary
    adds ``reference_sensitivity[<type>]``, ``reference_specificity[<type>]`` (1 for types
    marked perfect), ``prevalence_mean`` (mean over the tables in the fit of the per-table
    prevalence) and, with conditional dependence, ``dependence_diseased[<type>]`` /
    ``dependence_nondiseased[<type>]`` (fractions of the largest admissible covariance).

    Attributes
    ----------
    latent_spec : LatentClassSpec
        The reference standard column, reference priors and conditional dependence.
    """

    def __init__(
        self,
        idata: Any,
        data: DTAData,
        latent_spec: LatentClassSpec,
        sampler: Mapping[str, Any],
        *,
        design: Any = None,
        timing: Mapping[str, float] | None = None,
    ) -> None:
        self.latent_spec = latent_spec
        super().__init__(
            idata, data, latent_spec.model_spec(), sampler, design=design, timing=timing
        )

    # ---------------------------------------------------------------- derived draws
    def _posterior_fpr_range(self) -> tuple[float, float] | None:
        """FPR range of the tables in the fit: posterior medians of the index test's FPRs."""
        keep = self.weights > 0
        theta_sp = self.posterior["theta"].sel(outcome="specificity").values[..., keep]
        fpr = np.median(lk.inverse(-theta_sp, "logit"), axis=(0, 1))
        lo, hi = float(fpr.min()), float(fpr.max())
        return (lo, hi) if hi > lo else None

    def _derived(self) -> dict[str, xr.DataArray]:
        p = self.posterior
        out: dict[str, xr.DataArray] = {}
        mu_se, mu_sp = p["mu_sensitivity"], p["mu_specificity"]
        se = xr.apply_ufunc(lk.inverse, mu_se, kwargs={"link": "logit"})
        sp = xr.apply_ufunc(lk.inverse, mu_sp, kwargs={"link": "logit"})
        out["sensitivity"], out["specificity"] = se, sp
        lr = st.likelihood_ratios(se.values, sp.values)
        for k in ("lr_positive", "lr_negative", "dor"):
            out[k] = se.copy(data=lr[k])
        out["mu_sensitivity"], out["mu_specificity"] = mu_se, mu_sp
        for k in ("tau_sensitivity", "tau_specificity", "rho"):
            out[k] = p[k]
        args = (mu_se.values, mu_sp.values, p["tau_sensitivity"].values)
        args += (p["tau_specificity"].values, p["rho"].values)
        areas = st.sroc_areas(*args, fpr_range=self._posterior_fpr_range(), link="logit")
        for k, v in areas.items():
            out[k] = se.copy(data=v)
        keep = self.weights > 0
        out["prevalence_mean"] = p["prevalence"].isel(row=np.flatnonzero(keep)).mean("row")
        used = set(np.asarray(self.idata.constant_data["reference_standard"].values)[keep])
        names = ["reference_sensitivity", "reference_specificity"]
        names += [n for n in ("dependence_diseased", "dependence_nondiseased") if n in p]
        for name in names:
            for lv in p.coords["reference"].values:
                if lv in used:
                    out[f"{name}[{lv}]"] = p[name].sel(reference=lv, drop=True)
        return out

    #: Diagnostics name the options of :func:`fit_latent_class` (and ``[latent_class.sampler]``
    #: of a spec); the table effects are always non-centered, so no parameterization switch.
    _option_hints = OptionHints(
        call="bd.fit_latent_class",
        cli=False,
        elsewhere=", or in [latent_class.sampler]",
        no_geometry_fix="use more informative reference priors",
    )
    _offers_parameterization = False

    # ---------------------------------------------------------------- latent-class tables
    def reference_accuracy(self, *, ci: float = 0.95) -> pd.DataFrame:
        """Sensitivity and specificity of each reference type: prior and posterior.

        Returns
        -------
        pandas.DataFrame
            One row per reference type and measure: ``reference``, ``measure``, ``perfect``,
            ``prior`` (text), ``prior_mean``, ``prior_sd``, posterior ``mean``, ``sd``,
            ``lower``, ``upper`` and ``sd_ratio`` (posterior SD / prior SD; near 1: the data
            did not inform it).
        """
        refs = self.latent_spec.resolved_reference_priors(self.data)
        a = (1 - ci) / 2
        rows = []
        for lv, r in refs.items():
            for m in ("sensitivity", "specificity"):
                x = self.posterior[f"reference_{m}"].sel(reference=lv).values.ravel()
                pa, pb = r[m].kwargs["alpha"], r[m].kwargs["beta"]
                prior_sd = np.nan if r["perfect"] else _beta_sd(pa, pb)
                rows.append(
                    {
                        "reference": lv,
                        "measure": m,
                        "perfect": r["perfect"],
                        "prior": "perfect" if r["perfect"] else str(r[m]),
                        "prior_mean": 1.0 if r["perfect"] else pa / (pa + pb),
                        "prior_sd": prior_sd,
                        "mean": float(x.mean()),
                        "sd": float(x.std()),
                        "lower": float(np.quantile(x, a)),
                        "upper": float(np.quantile(x, 1 - a)),
                        "sd_ratio": float(x.std() / prior_sd) if not r["perfect"] else np.nan,
                    }
                )
        return pd.DataFrame(rows)

    def identifiability(self, *, threshold: float = PRIOR_SD_RATIO) -> pd.DataFrame:
        """Which reference accuracies the data informed (posterior SD / prior SD).

        Returns
        -------
        pandas.DataFrame
            :meth:`reference_accuracy` rows of the imperfect types with ``informed``
            (``sd_ratio <= threshold``) and ``warning`` (None when informed), which names
            what would help.
        """
        df = self.reference_accuracy()
        df = df[~df["perfect"]].reset_index(drop=True)
        df["informed"] = df["sd_ratio"] <= threshold
        perfect = [
            lv
            for lv, r in self.latent_spec.resolved_reference_priors(self.data).items()
            if r["perfect"]
        ]
        msgs = []
        for _, r in df.iterrows():
            if r["informed"]:
                msgs.append(None)
                continue
            msgs.append(
                f"reference_{r['measure']}[{r['reference']}]: the posterior is ~ its prior "
                f"{r['prior']} (posterior SD / prior SD = {r['sd_ratio']:.2f} > {threshold}): "
                "the data do not identify it and the corrected index accuracy rests on this "
                "prior; check the answer over other reference_priors (sweep axis "
                "reference_priors)"
                + (
                    ", or add tables with another reference type and mark a trusted one "
                    "'perfect' in reference_priors"
                    if not perfect
                    else ""
                )
            )
        df["warning"] = msgs
        return df

    def prevalence(self, *, ci: float = 0.95) -> pd.DataFrame:
        """Posterior prevalence of the latent condition per table.

        Beside it the observed reference-positive share, for comparison.
        """
        a = (1 - ci) / 2
        x = self.posterior["prevalence"].values.reshape(-1, self.data.n_rows)
        d = self.data
        return pd.DataFrame(
            {
                "row": d.row_labels,
                "reference_standard": self.idata.constant_data["reference_standard"].values,
                "observed_reference_positive": d.n_diseased / (d.n_diseased + d.n_nondiseased),
                "mean": x.mean(axis=0),
                "lower": np.quantile(x, a, axis=0),
                "upper": np.quantile(x, 1 - a, axis=0),
                "weight": self.weights,
            }
        )

    def compare_perfect_reference(
        self, perfect_fit: DTAFit | None = None, *, ci: float = 0.95, **fit_kwargs: Any
    ) -> pd.DataFrame:
        """Side by side: the index test assuming a perfect reference, and corrected.

        The bivariate model (perfect reference) against this fit (imperfect reference).

        Parameters
        ----------
        perfect_fit : DTAFit, optional
            The bivariate fit to compare with; default: ``bayesdta.fit`` of the same tables
            with two levels (every table its own unit, as here), this fit's seed and
            ``fit_kwargs``.

        Returns
        -------
        pandas.DataFrame
            Rows ``sensitivity``, ``specificity``, ``dor``, ``auc``; columns
            ``perfect_reference_*`` and ``latent_class_*`` (mean, lower, upper) and
            ``difference`` (latent class minus perfect reference, posterior means).
        """
        from .fit import fit as _bivariate_fit

        if perfect_fit is None:
            kw = {"levels": 2, "seed": self.sampler.get("seed"), "verbose": False}
            kw.update(fit_kwargs)
            perfect_fit = _bivariate_fit(self.data, weights=self.weights, **kw)
        names = ["sensitivity", "specificity", "dor", "auc"]
        a = perfect_fit.summary(ci, quantities=names)
        b = self.summary(ci, quantities=names)
        out = pd.DataFrame(index=names)
        for tag, df in (("perfect_reference", a), ("latent_class", b)):
            for c in ("mean", "lower", "upper"):
                out[f"{tag}_{c}"] = df.loc[names, c].to_numpy()
        out["difference"] = out["latent_class_mean"] - out["perfect_reference_mean"]
        out.index.name = "quantity"
        out.attrs["ci"] = ci
        return out

    def sroc(self, **kwargs: Any) -> pd.DataFrame:
        """Posterior SROC curve of the index test (:func:`bayesdta.quantities.sroc`).

        Default grid: the range of the tables' posterior FPRs of the index test (the
        observed FPRs are against an imperfect reference).
        """
        if kwargs.get("fpr") is None and not kwargs.get("extrapolate"):
            rng = self._posterior_fpr_range() or (0.01, 0.99)
            kwargs["fpr"] = np.linspace(rng[0], rng[1], int(kwargs.pop("n_points", 101)))
        return super().sroc(**kwargs)

    def refit(
        self,
        *,
        data: DTAData | None = None,
        weights: Sequence[float] | np.ndarray | None = None,
        priors: Mapping[str, Any] | None = None,
        reference_priors: Mapping[str, Any] | None = None,
        seed: int | None = None,
        **sampler: Any,
    ) -> LatentClassFit:
        """Refit with new data, weights, priors, reference priors or sampler settings."""
        spec = self.latent_spec
        if priors is not None:
            spec = spec.replace(priors=priors)
        if reference_priors is not None:
            spec = spec.replace(reference_priors=reference_priors)
        if weights is None and data is None:
            weights = self.weights
        requested = dict(self.sampler.get("requested") or {})
        escalate = sampler.pop("escalate", self.sampler.get("escalate", True))
        s = {k: v for k, v in requested.items() if k in SamplerSettings.__dataclass_fields__}
        s.update(sampler)
        s["seed"] = self.sampler["seed"] if seed is None else seed
        return _fit(
            data or self.data, spec, SamplerSettings(**s), weights=weights, escalate=escalate
        )

    def format_summary(self, ci: float = 0.95, *, round_to: int = 3) -> str:
        """The summary as text, with the model and the identifiability checks."""
        text = super().format_summary(ci, round_to=round_to)
        ident = self.identifiability()
        lines = [text, "", self.latent_spec.describe(self.data)]
        for msg in ident["warning"].dropna():
            lines.append(f"IDENTIFIABILITY: {msg}")
        return "\n".join(lines)

    # ---------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Save to netCDF (posterior, data, model, settings); :func:`bayesdta.load` reads it.

        The file is a :meth:`DTAFit.save` file with ``bayesdta_kind = "latent_class"`` and
        the latent-class settings (reference column, reference priors, conditional
        dependence, priors; numbers at full precision), so that every table of the loaded
        fit equals this fit's.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        idata = self.idata.copy()
        attrs = dict(idata.constant_data.attrs)
        attrs["bayesdta_kind"] = "latent_class"
        attrs["bayesdta_data"] = self.data.to_json()
        attrs["bayesdta_latent_spec"] = json.dumps(_latent_spec_to_json(self.latent_spec))
        attrs["bayesdta_sampler"] = json.dumps(self.sampler, default=str)
        attrs["bayesdta_timing"] = json.dumps(self.timing, default=str)
        idata.constant_data.attrs = attrs
        _arviz.to_netcdf(idata, path)
        return path


def _latent_spec_to_json(spec: LatentClassSpec) -> dict[str, Any]:
    """Lossless JSON form of a :class:`LatentClassSpec` (priors as ``{"dist": ..., ...}``).

    The reference priors are kept as the user wrote them when that is plain JSON (strings,
    numbers, mappings, pairs), else as their resolved Beta priors.
    """
    try:
        refs = json.loads(json.dumps(dict(spec.reference_priors)))
    except (TypeError, ValueError):
        resolved = parse_reference_priors(
            spec.reference_priors,
            [str(k) for k in spec.reference_priors],
            spec.reference_standard,
        )
        refs = {
            lv: "perfect"
            if r["perfect"]
            else {m: r[m].to_dict() for m in ("sensitivity", "specificity")}
            for lv, r in resolved.items()
        }
    return {
        "reference_standard": spec.reference_standard,
        "reference_priors": refs,
        "conditional_dependence": spec.conditional_dependence,
        "priors": {k: p.to_dict() for k, p in spec.priors.items()},
    }


@_registry.register_loader("latent_class")
def _load_latent_class(idata: Any, path: str | Path) -> LatentClassFit:
    """Rebuild a :class:`LatentClassFit` from a file of :meth:`LatentClassFit.save`.

    Called by :func:`bayesdta.load` (which reads the file) for ``bayesdta_kind =
    "latent_class"``.
    """
    attrs = dict(idata.constant_data.attrs)
    try:
        attrs.pop("bayesdta_kind")
        data = DTAData.from_json(attrs.pop("bayesdta_data"))
        spec = LatentClassSpec(**json.loads(attrs.pop("bayesdta_latent_spec")))
        sampler = json.loads(attrs.pop("bayesdta_sampler"))
        timing = json.loads(attrs.pop("bayesdta_timing", "{}"))
    except KeyError:
        raise SpecError(
            f"{str(path)!r} was not written by bayesdta (LatentClassFit.save)"
        ) from None
    idata.constant_data.attrs = attrs
    return LatentClassFit(idata, data, spec, sampler, timing=timing)
