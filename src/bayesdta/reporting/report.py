"""Scripted analyses and their reports: :func:`run_analysis` and :func:`build_report`.

:func:`run_analysis` carries out an :class:`~bayesdta.spec.AnalysisSpec`: it fits the main model
and the meta-regressions, writes the posteriors (``posterior.nc``, ``posterior_<fit>.nc``),
tables (``tables/*.csv`` and ``.tex``), figures (``figures/*.png`` and ``.pdf``/``.svg``), the
data used (``data.csv``), the spec (``spec.toml``) and a record of the run (``run.json``), then
builds the report.

:func:`build_report` (re)builds ``report.md`` and a self-contained ``report.html`` (figures
embedded as base64 PNG) from a run folder alone, without refitting: a methods paragraph generated
from the spec (the model in words, priors, sampler settings, software versions, seed), the
results tables, the figures with captions, a diagnostics section (divergences, R-hat, ESS,
E-BFMI, Pareto k) with sampler warnings shown on top, the sweep of ``bayesdta sensitivity`` when
its output is in ``<run>/sensitivity``, and the spec itself.

Figures and tables come from :mod:`bayesdta.plots`, :mod:`bayesdta.quantities` and
:mod:`bayesdta.regression`. A function that is missing or fails is skipped with a note in the
report; the rest of the run goes on.
"""

from __future__ import annotations

import base64
import html
import inspect
import json
import math
import platform
import re
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import registry as _registry
from ..exceptions import BayesDTAError, SamplerWarning
from ..inference.labels import QUANTITY_LABELS as _LABELS
from . import precompile as _precompile
from .formats import fmt, html_table, to_latex, to_markdown, write_table
from .spec import DATA_TABLES, FIGURES, REGRESSION_TABLES, TABLES, AnalysisSpec, derive_seed

__all__ = [
    "run_analysis",
    "build_report",
    "write_table",
    "to_latex",
    "to_markdown",
    "software_versions",
    "methods_text",
]

RUN_RECORD = "run.json"
#: Longer tables (e.g. one row per 2x2 table) are linked from the report, not shown inline.
_MAX_INLINE_ROWS = 25
_SOFTWARE = (
    "bayesdta",
    "pymc",
    "pytensor",
    "nutpie",
    "arviz",
    "numpy",
    "scipy",
    "pandas",
    "xarray",
    "matplotlib",
    "formulaic",
)

#: Readable names of the summary quantities (report tables); see :mod:`bayesdta.labels`.
QUANTITY_LABELS = _LABELS


# ------------------------------------------------------------------------------ table output
def software_versions() -> dict[str, str]:
    """Versions of Python and the packages an analysis depends on."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in _SOFTWARE:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _call(fn, first: Any, options: Mapping[str, Any], **defaults: Any):
    """Call ``fn(first, **kw)``: the defaults it names as parameters, then the user's options."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    named = {k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    kw = {k: v for k, v in defaults.items() if k in named}
    kw.update(options)
    return fn(first, **kw)


def _table_function(name: str, *, regression: bool = False):
    """The registered function of table ``name`` (None and why when none is registered)."""
    fn = (_registry.REGRESSION_TABLES if regression else _registry.TABLES).get(name)
    if fn is None:
        return None, f"no table function {name!r} is registered (bayesdta.registry)"
    return fn, ""


def _as_frame(result: Any) -> pd.DataFrame:
    if isinstance(result, pd.DataFrame):
        return result
    if isinstance(result, pd.Series):
        return result.to_frame()
    if isinstance(result, Mapping):
        flat = {
            k: v
            for k, v in result.items()
            if isinstance(v, (int, float, str, bool, np.integer, np.floating, np.bool_))
        }
        return pd.DataFrame([flat])
    raise TypeError(f"expected a table, got {type(result).__name__}")


def _error_note(what: str, exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{what} skipped: {type(exc).__name__}{': ' + msg if msg else ''}"


def _fit_file(fit_name: str, is_main: bool) -> str:
    return "posterior.nc" if is_main else f"posterior_{fit_name}.nc"


def _suffix(fit_name: str, is_main: bool) -> str:
    return "" if is_main else f"_{fit_name}"


# ------------------------------------------------------------------------------ captions
#: Captions of the tables, naming what the table shows and its interval level ({ci}).
_TABLE_CAPTIONS: dict[str, str] = {
    "summary": (
        "Summary estimates: posterior median and {ci} equal-tailed credible interval (lower, "
        "upper), bulk ESS and R-hat (mean, SD and tail ESS in the CSV)."
    ),
    "heterogeneity": (
        "Heterogeneity on the {link} scale: between-study SDs and correlation (for three levels "
        "also within-study and total), the share of the variance between studies and I2 "
        "statistics: posterior mean, median, SD, {ci} credible interval (lower, upper), ESS "
        "and R-hat."
    ),
    "predictive": (
        "Predicted sensitivity and specificity of a new study (three levels: also of a new "
        "model in a typical study): posterior predictive mean, median and {ci} prediction "
        "interval (lower, upper)."
    ),
    "hsroc": (
        "HSROC (Rutter-Gatsonis) parameters implied by the bivariate parameters: posterior "
        "mean, median, SD and {ci} credible interval (lower, upper), ESS and R-hat."
    ),
    "auc": (
        "Area under the SROC curve over FPR in [0, 1] and over the FPR range of the tables: "
        "posterior mean, median, SD and {ci} credible interval (lower, upper)."
    ),
    "fagan": (
        "Post-test probabilities after a positive and after a negative result at each pre-test "
        "probability (Fagan), from the LR+ and LR- of the summary point: posterior median and "
        "{ci} credible interval."
    ),
    "deeks": (
        "Deeks' funnel-plot asymmetry test (classical): weighted regression of the log DOR of "
        "each table on 1/sqrt(effective sample size); slope, intercept, their SEs, t, degrees "
        "of freedom and the P-value of the slope (P < 0.10 suggests small-study effects)."
    ),
    "influence": (
        "Study influence: leave-one-study-out PSIS-LOO by study with the study's random "
        "effects integrated out (Pareto k and elpd_loo, the same k as in the diagnostics), and "
        "exact refits of the studies with k > 0.7 (posterior medians of the summary point "
        "without the study and their change)."
    ),
    "observed": (
        "Observed sensitivity and specificity of every table, with {ci} exact "
        "(Clopper-Pearson) confidence intervals."
    ),
    "shrunken": (
        "Posterior (shrunken) sensitivity and specificity of every table: posterior median "
        "and {ci} credible interval."
    ),
    "subgroups": (
        "Subgroup estimates from the meta-regression: sensitivity, specificity, LR+, LR- and "
        "DOR at each covariate level, the other covariates {where_others}; posterior median "
        "and {ci} credible interval. Last row (pooled): the summary point "
        "over the observed covariate mix."
    ),
    "contrasts": (
        "Contrasts of each level with the reference level: log odds ratios, differences and "
        "ratios (posterior median and {ci} credible interval) and the posterior probability "
        "that the level is better."
    ),
    "heterogeneity_explained": (
        "Residual heterogeneity and the proportion of the heterogeneity variance explained by "
        "the covariates, relative to the main model: posterior medians and {ci} credible "
        "intervals."
    ),
    "ml_summary": (
        "Maximum-likelihood companion (frequentist): the same bivariate GLMM (two levels, "
        "logit link, exact binomial likelihood) fitted by ML with adaptive Gauss-Hermite "
        "quadrature (docs/ml_companion.md); ML estimate with {ci} Wald confidence interval "
        "(delta method), beside the posterior median and {ci} credible interval."
    ),
    "ml_subgroups": (
        "Maximum-likelihood subgroup analyses (MIDAS style): per covariate, likelihood-ratio "
        "tests (chi2, df, p) of the meta-regression against the model without covariates "
        "(joint; sensitivity only; specificity only), and the ML pooled sensitivity and "
        "specificity of every level with {ci} Wald confidence intervals."
    ),
    # outputs reviewers look for (issue 13; docs/review_outputs.md)
    "summary_of_findings": (
        "Summary of findings (GRADE): true and false positives and negatives per 1000 people "
        "tested at each prevalence; posterior median ({ci} credible interval) of each count, "
        "from the joint posterior draws of the summary sensitivity and specificity."
    ),
    "threshold_effect": (
        "Threshold effect: Spearman correlation of the observed sensitivity and false-positive "
        "rate of the tables ({ci} confidence interval, P-value), beside the bivariate model's "
        "correlation (posterior median, {ci} credible interval); a positive correlation of "
        "sensitivity and FPR suggests different positivity thresholds."
    ),
    "study_ratios": (
        "Diagnostic odds ratio, LR+ and LR- of every table (observed, {ci} log-method "
        "confidence intervals; 0.5 added to every cell of tables with a zero cell) and pooled "
        "(posterior median, {ci} credible interval)."
    ),
    "quadas": "QUADAS-2 risk of bias and applicability concerns of every study.",
    "quadas_summary": (
        "QUADAS-2 summary: number and percentage of studies judged low, unclear and high in "
        "each domain."
    ),
    "pca": (
        "Study-characteristics explorer: variance explained and loadings of the leading "
        "principal components of the study covariates (one-hot coded, standardized), and the "
        "correlation of each component with the shrunken {link} sensitivity and specificity "
        "(* covariates of the meta-regression formula)."
    ),
}


def _ci_text(ci: float) -> str:
    return f"{ci:.0%}" if round(ci * 100, 6) == round(ci * 100) else f"{ci:.1%}"


def _where_text(f) -> str:
    """Where a meta-regression's summary point sits ("" without covariates)."""
    from ..inference.labels import reference_text

    return reference_text(f.design)


def _table_caption(name: str, default: str, *, ci: float, f=None, data=None) -> str:
    """The caption of a table: what it shows, its interval level, where the summary point sits."""
    text = _TABLE_CAPTIONS.get(name)
    where = _where_text(f) if f is not None else ""
    link = f.spec.link if f is not None else "logit"
    if text is None:
        text = default.rstrip(".") + f" ({_ci_text(ci)} credible intervals)."
    others = "at their reference level"
    if where.startswith("at reference levels ("):
        others = "at their reference level (" + where[len("at reference levels (") :]
    text = text.format(ci=_ci_text(ci), link=link, where_others=others)
    if name == "summary" and where:
        n_in = int((f.weights > 0).sum())
        text += (
            f" Sensitivity, specificity, LR+, LR-, DOR, the mean {link}s and the AUCs are the "
            f"summary point {where}; sensitivity_pooled and specificity_pooled are the summary "
            f"point over the observed covariate mix of the {n_in} tables (inverse {link} of the "
            "mean linear predictor); coefficients are differences on the "
            f"{link} scale against the reference level."
        )
    if name == "fagan" and where:
        text += f" Summary point {where}."
    if name == "deeks" and data is not None and data.has_clusters:
        text += (
            f" The {data.n_rows} tables come from {data.n_studies} studies: tables of the same "
            "study are not independent, so the P-value is too small (optimistic)."
        )
    return text


#: Figure captions, naming the interval levels ({ci}).
_FIGURE_CAPTIONS: dict[str, str] = {
    "forest": (
        "Forest plot: observed sensitivity and specificity of every table ({ci} exact "
        "intervals, squares) and its posterior (shrunken) estimate ({ci} credible interval, "
        "circles), the summary point ({ci} credible interval, diamond) and the {ci} prediction "
        "interval of a new study."
    ),
    "sroc": (
        "Summary ROC (HSROC) curve implied by the bivariate model with its {ci} pointwise "
        "credible band, drawn over the FPR range of the tables (a table with no false "
        "positives at its posterior FPR); the summary point with its {ci} credible region "
        "(solid) and the {ci} prediction region of a new study (dashed); circles are the "
        "tables (area proportional to size)."
    ),
    "fagan": (
        "Fagan nomogram: post-test probability after a positive and after a negative result, "
        "from the LR+ and LR- of the summary point (lines: posterior medians; wedges: {ci} "
        "credible intervals)."
    ),
    "lr_scatter": (
        "Likelihood-ratio scatter plot: observed LR+ against LR- of every table (0.5 added to "
        "the cells of tables with a zero cell) and the summary LRs with {ci} credible "
        "intervals, with the quadrants of clinical utility (LR+ > 10, LR- < 0.1)."
    ),
    "deeks": (
        "Deeks' funnel plot: diagnostic odds ratio of every table against 1/sqrt(effective "
        "sample size), with the regression line of the asymmetry test."
    ),
    "influence": (
        "Study influence: Pareto k of leave-one-study-out PSIS-LOO per study (the k of the "
        "tables; 0.7 marked) and the change in the summary point when a study with k > 0.7 is "
        "left out (exact refit), else each study's elpd_loo."
    ),
    "ppc": (
        "Posterior predictive check: observed true positives and true negatives of every table "
        "against the median of their replicates, with {ci} predictive intervals."
    ),
    "prior_posterior": (
        "Prior (line) and posterior (histogram) densities of the hyperparameters, on the "
        "scale on which each prior is set."
    ),
}


def _figure_caption(name: str, default: str, *, ci: float, f=None) -> str:
    text = _FIGURE_CAPTIONS.get(name, default).format(ci=_ci_text(ci))
    where = _where_text(f) if f is not None else ""
    if where and name in ("forest", "fagan", "lr_scatter", "sroc"):
        text += f" Summary point {where}."
    if name == "deeks" and f is not None and f.data.has_clusters:
        text += (
            f" The {f.data.n_rows} tables come from {f.data.n_studies} studies; tables of the "
            "same study are not independent (the test's P-value is optimistic)."
        )
    return text


# ------------------------------------------------------------------------------ running
@dataclass
class _Run:
    out: Path
    spec: AnalysisSpec
    record: dict[str, Any] = field(default_factory=dict)
    influence: dict[str, Any] = field(default_factory=dict)
    log: Any = lambda msg: None
    stages: Any = None
    progress: bool = False

    def note(self, text: str) -> None:
        self.record.setdefault("notes", []).append(text)

    def add_table(
        self, df: pd.DataFrame, name: str, *, fit: str, caption: str, index: bool | None = None
    ):
        if index is None:
            if isinstance(df.index, pd.MultiIndex):
                df = df.reset_index()
                index = False
            else:
                index = not isinstance(df.index, pd.RangeIndex)
        o = self.spec.outputs
        digits = self.spec.report["round_to"]
        formats = o["table_formats"] + (["csv"] if "csv" not in o["table_formats"] else [])
        stem = self.out / "tables" / name
        if "description" in df.columns:
            # the long descriptions stay in the CSV (and the report); the LaTeX table keeps
            # the numbers, its caption says where a meta-regression's summary point sits
            files = write_table(df, stem, formats=["csv"], index=index, digits=digits)
            rest = [x for x in formats if x != "csv"]
            files += write_table(
                df.drop(columns="description"),
                stem,
                formats=rest,
                index=index,
                digits=digits,
                caption=caption,
            )
        else:
            files = write_table(
                df, stem, formats=formats, index=index, digits=digits, caption=caption
            )
        entry: dict[str, Any] = {
            "name": name,
            "fit": fit,
            "caption": caption,
            "index": index,
            "files": [str(p.relative_to(self.out)) for p in files],
        }
        if "elpd_reliable" in df.columns:
            bad = df["elpd_reliable"].astype(str).str.startswith("no").to_numpy()
            labels = (
                df.loc[bad].iloc[:, 0].astype(str)
                if not index
                else df.index[bad].astype(str).to_series()
            )
            entry["columns"] = [str(c) for c in df.columns]
            entry["elpd_unreliable"] = list(dict.fromkeys(labels))
        self.record.setdefault("tables", []).append(entry)


class RunProgress:
    """Stage k of n, elapsed time and an estimate of the time left, as one-line messages.

    The stages of a run are its fits (each with its LOO, tables and figures), the tables that
    fit further models (``subgroup_table``, ``clustering``) and the report. Each stage has a
    weight (its expected cost in fits: 1 per fit, one per model of a table that fits several,
    little for the report); the estimate is the elapsed time per finished weight times the
    weight left, leaving out the time spent compiling models (:meth:`one_off`). A stage
    made of several fits reports each of them with :meth:`step`.
    """

    def __init__(self, n_stages: int, say: Any, *, weights: Sequence[float] | None = None) -> None:
        self.n = int(n_stages)
        self.k = 0
        self.say = say
        self.t0 = time.perf_counter()
        w = [float(x) for x in weights] if weights is not None else [1.0] * self.n
        self.weights = (w + [1.0] * self.n)[: self.n]
        self.done = 0.0  # finished weight, including the finished steps of the current stage
        self.once = 0.0  # seconds spent on one-off work (compiling models), not extrapolated

    def one_off(self, seconds: float) -> None:
        """Leave ``seconds`` of finished work (e.g. compiling a model) out of the estimate."""
        self.once += max(float(seconds), 0.0)

    def _left(self, elapsed: float) -> str:
        busy = elapsed - self.once
        if self.done <= 0 or busy <= 0:
            return ""
        left = busy / self.done * max(sum(self.weights) - self.done, 0.0)
        return f", about {left:.0f} s left"

    def start(self, what: str) -> None:
        """Announce the next stage."""
        self.done = float(sum(self.weights[: self.k]))
        self.k += 1
        elapsed = time.perf_counter() - self.t0
        self.say(f"[stage {self.k}/{self.n}, {elapsed:.0f} s elapsed{self._left(elapsed)}] {what}")

    def step(self, what: str, j: int, m: int) -> None:
        """Announce step ``j`` of ``m`` (1-based) of the current stage, e.g. one of its fits."""
        if self.k < 1:
            return
        w = self.weights[self.k - 1]
        self.done = float(sum(self.weights[: self.k - 1])) + w * (j - 1) / max(m, 1)
        elapsed = time.perf_counter() - self.t0
        self.say(
            f"  [{j}/{m} of stage {self.k}/{self.n}, {elapsed:.0f} s elapsed"
            f"{self._left(elapsed)}] {what}"
        )


def run_analysis(
    spec: AnalysisSpec,
    out: str | Path,
    *,
    progress: bool = False,
    log: Any = None,
    command: str | None = None,
    precompile: bool = True,
) -> dict[str, Path]:
    """Carry out an analysis spec: fits, tables, figures, run record and report.

    Parameters
    ----------
    spec : AnalysisSpec
        The validated spec (:func:`bayesdta.spec.load_spec`).
    out : path
        Output folder (created; files of an earlier run are overwritten).
    progress : bool
        Show the sampler's progress bars.
    log : callable, optional
        Called with one-line progress messages (the CLI prints them).
    command : str, optional
        The command line recorded in the report.
    precompile : bool
        Compile the models of the later fits in a helper process while the first fit runs
        (:mod:`bayesdta.reporting.precompile`; only with the disk cache of compiled models
        on). The numbers do not depend on it.

    Returns
    -------
    dict
        Paths of the written reports (``"md"``, ``"html"``) and of ``"record"`` (run.json).

    Notes
    -----
    The main fit uses the spec seed, every meta-regression the seed derived from the spec seed
    and its name (:func:`bayesdta.spec.derive_seed`); with the same spec and seed the tables are
    identical, byte for byte.
    """
    from .. import __version__
    from ..inference.fit import fit as fit_model
    from .sensitivity import check_complete, interrupt_guard

    say = log or (lambda msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "tables").mkdir(exist_ok=True)
    (out / "figures").mkdir(exist_ok=True)
    t_start = time.perf_counter()
    run = _Run(out, spec, log=say, progress=bool(progress))
    run.record.update(
        {
            "bayesdta": __version__,
            "created": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": command or f"bayesdta run {spec.source} --out {out}",
            "spec": spec.to_dict(),
            "software": software_versions(),
            "platform": f"{platform.system()} {platform.machine()}",
            "fits": [],
            "tables": [],
            "figures": [],
            "notes": [],
        }
    )
    (out / "spec.toml").write_text(spec.text)
    if spec.extends:
        (out / "spec.resolved.toml").write_text(spec.resolved_toml())

    data = spec.load_data()
    spec.check_data(data)
    data.frame.to_csv(out / "data.csv", index=False, lineterminator="\n")
    run.record["data"] = {
        "source": data.source,
        "n_rows": data.n_rows,
        "n_studies": data.n_studies,
        "has_clusters": data.has_clusters,
        "max_rows_per_study": int(data.rows_per_study.max()),
        "n_diseased": int(data.n_diseased.sum()),
        "n_nondiseased": int(data.n_nondiseased.sum()),
        "covariates": data.covariates,
        "simulated": spec.is_simulated(),
        "filters": {k: spec.data[k] for k in ("include", "exclude") if spec.data.get(k)},
    }
    say(
        f"data: {data.n_rows} tables from {data.n_studies} studies ({data.source})"
        + (" — SIMULATED counts" if spec.is_simulated() else "")
    )
    fits: dict[str, Any] = {}
    # the later fits' models compile in a helper process while the first fit runs
    helper = _precompile.start(spec, data) if precompile else None
    n_data = len([t for t in spec.outputs["tables"] if t in DATA_TABLES])
    stages = RunProgress(
        len(spec.fits) + n_data + 1 + (spec.comparison is not None) + (spec.multiclass is not None),
        say,
        weights=_stage_weights(spec, data),
    )
    run.stages = stages
    pointwise: dict[str, pd.DataFrame] = {}
    for fs in spec.fits:
        settings = spec.sampler_settings(fs)
        if progress:
            settings["progress"] = True
        seed = spec.fit_seed(fs)
        stages.start(f"fitting {fs.name}: {fs.title} (seed {seed}) ...")
        t0 = time.perf_counter()
        with warnings.catch_warnings(), interrupt_guard() as interrupted:
            warnings.simplefilter("ignore", SamplerWarning)
            f = fit_model(data, spec=fs.model_spec(), seed=seed, **settings)
            if interrupted():
                raise KeyboardInterrupt
        check_complete(f)
        elapsed = time.perf_counter() - t0
        stages.one_off(float(f.timing.get("compile_s", 0.0)))
        if progress:
            say("")  # the sampler's progress display leaves the cursor at the end of its line
        fits[fs.name] = f
        diag = f.diagnostics()
        entry: dict[str, Any] = {
            "name": fs.name,
            "title": fs.title,
            "is_main": fs.is_main,
            "levels": f.levels,
            "link": fs.link,
            "model": f.spec.to_dict(),
            "sampler": dict(f.sampler),
            "seed": int(f.sampler["seed"]),
            "columns": {k: list(v) for k, v in f.design.columns.items()},
            "factor_levels": {k: list(v) for k, v in f.design.levels.items()},
            "scaling": {k: list(v) for k, v in f.design.scaling.items()},
            "parameterization": {
                "used": f.sampler.get("parameterization", f.spec.parameterization),
                "reason": f.sampler.get("parameterization_reason", ""),
                "note": f.sampling_note(),
            },
            "diagnostics": {k: v for k, v in diag.items()},
            "elapsed_s": round(elapsed, 2),
            "compile_s": round(float(f.timing.get("compile_s", 0.0)), 2),
        }
        say(
            f"  done in {elapsed:.1f} s; divergences {diag['divergences']}, max R-hat "
            f"{diag['max_r_hat']:.3f}, min bulk ESS {diag['min_ess_bulk']:.0f}"
            + (f"; WARNINGS: {'; '.join(diag['warnings'])}" if diag["warnings"] else "")
        )
        if spec.outputs["save_posterior"]:
            f.save(out / _fit_file(fs.name, fs.is_main))
            entry["posterior"] = _fit_file(fs.name, fs.is_main)
        if spec.outputs["loo"]:
            entry["loo"] = _loo(run, f, fs)
            if "_pointwise" in entry["loo"]:
                pointwise[fs.name] = entry["loo"].pop("_pointwise")
        run.record["fits"].append(entry)
        _fit_tables(run, f, fs, fits[spec.main.name])
        _fit_figures(run, f, fs)
    _family_comparison(run, fits, pointwise)
    if spec.latent_class:  # imperfect reference standard (bayesdta.reporting.latent_class)
        from .latent_class import run_latent_class

        run_latent_class(run, data, fits[spec.main.name], progress=progress)
    _data_tables(run, data, fits)
    if spec.comparison is not None:  # comparative accuracy of the tests (issue 12)
        from .comparative import run_comparison
        from .spec import derive_seed

        stages.start("comparing the tests ...")
        comp_settings = spec.sampler_settings(spec.main)
        comp_settings.pop("escalate", None)
        options = {"ci": spec.outputs["ci"], **spec.comparison}
        seed = derive_seed(spec.seed, "comparison")
        run.record["comparison"] = run_comparison(
            data, options, out, settings=comp_settings, seed=seed, say=say
        )
    if spec.multiclass is not None:  # joint model of the KxK matrices (issue 13)
        from .multiclass import run_multiclass

        stages.start(f"fitting the joint multiclass model: {spec.multiclass['title']} ...")
        run_multiclass(run, spec, progress=progress)

    if helper is not None:
        helper.stop()
    run.record["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    (out / RUN_RECORD).write_text(json.dumps(_jsonable(run.record), indent=1))
    stages.start("writing the report")
    paths = build_report(out)
    paths["record"] = out / RUN_RECORD
    say(f"finished in {run.record['elapsed_s']:.0f} s")
    return paths


def _loo(run: _Run, f, fs) -> dict[str, Any]:
    try:
        integrated = "integrated" in inspect.signature(f.loo).parameters
    except (TypeError, ValueError):  # pragma: no cover
        integrated = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = f.loo(by="study", integrated=True) if integrated else f.loo(by="study")
    except Exception as exc:
        run.note(_error_note(f"PSIS-LOO of {fs.name}", exc))
        return {}
    k = np.asarray(res["pareto_k"], dtype=float)
    labels = [str(x) for x in res["labels"]]
    table = pd.DataFrame(
        {"study": labels, "pareto_k": k, "elpd_loo": np.asarray(res["loo_i"], dtype=float)}
    )
    run.add_table(
        table,
        f"pareto_k{_suffix(fs.name, fs.is_main)}",
        fit=fs.name,
        caption=(
            f"PSIS-LOO by study ({fs.title}), the study's random effects integrated out: "
            "Pareto k (the k used everywhere in this report) and pointwise elpd."
        ),
        index=False,
    )
    return {
        "_pointwise": table,
        "method": "integrated" if integrated else "conditional",
        "elpd_loo": float(res["elpd_loo"]),
        "se": float(res["se"]),
        "p_loo": float(res["p_loo"]),
        "max_k": float(np.max(k)),
        "n_k_above_0.7": int(np.sum(k > 0.7)),
        "high_k_studies": [s for s, kk in zip(labels, k, strict=True) if kk > 0.7],
    }


def _family_comparison(run: _Run, fits: Mapping[str, Any], pointwise) -> None:
    """PSIS-LOO of fits whose random-effects family differs from the main fit's, vs the main.

    Table ``model_comparison``: per such fit, elpd_loo of both, the difference (variant minus
    main; positive favours the variant) with its standard error from the paired per-study
    differences (``sqrt(K var(d_i))``, Vehtari, Gelman & Gabry 2017), and Pareto k flags.
    """
    main = run.spec.main.name
    if main not in pointwise:
        return
    m = pointwise[main].set_index("study")
    rows = []
    for fs in run.spec.fits:
        f = fits.get(fs.name)
        if fs.is_main or f is None or fs.name not in pointwise:
            continue
        if f.spec.random_effects == fits[main].spec.random_effects:
            continue
        v = pointwise[fs.name].set_index("study")
        common = m.index.intersection(v.index)
        if len(common) != len(m.index) or len(common) != len(v.index):
            continue  # different studies: elpd not comparable
        d = v.loc[common, "elpd_loo"].to_numpy() - m.loc[common, "elpd_loo"].to_numpy()
        k_max = max(float(v["pareto_k"].max()), float(m["pareto_k"].max()))
        rows.append(
            {
                "fit": fs.name,
                "random_effects": f.spec.random_effects,
                "main_random_effects": fits[main].spec.random_effects,
                "elpd_loo": float(v["elpd_loo"].sum()),
                "elpd_loo_main": float(m["elpd_loo"].sum()),
                "elpd_diff": float(d.sum()),
                "se_diff": float(np.sqrt(len(d) * np.var(d, ddof=1))) if len(d) > 1 else np.nan,
                "max_pareto_k": k_max,
                "n_k_above_0.7": int((v["pareto_k"] > 0.7).sum() + (m["pareto_k"] > 0.7).sum()),
            }
        )
    if not rows:
        return
    df, caption = _flag_elpd(
        pd.DataFrame(rows),
        "PSIS-LOO by study of the random-effects families: elpd_diff = variant minus main fit "
        "(positive favours the variant), se_diff from the paired per-study differences",
    )
    run.add_table(df, "model_comparison", fit="", caption=caption, index=False)


def _fit_tables(run: _Run, f, fs, main_fit) -> None:
    spec = run.spec
    ci = float(spec.outputs["ci"])
    suffix = _suffix(fs.name, fs.is_main)
    if fs.is_main:
        names = [t for t in spec.outputs["tables"] if t not in DATA_TABLES]
        registry = TABLES
    else:
        names, registry = list(fs.tables), REGRESSION_TABLES
    for name in names:
        _, default_caption = registry[name]
        caption = _table_caption(name, default_caption, ci=ci, f=f, data=f.data)
        if not fs.is_main:
            caption = f"{fs.title}: {caption[0].lower()}{caption[1:]}"
        if name == "summary":
            qs = spec.quantities(f.quantity_names()) if fs.is_main else f.quantity_names()
            qs += [
                q
                for q in ("sensitivity_pooled", "specificity_pooled")
                if q in f.quantity_names() and q not in qs
            ]
            df = f.summary(ci, quantities=qs)
            run.add_table(df, f"summary{suffix}", fit=fs.name, caption=caption)
            continue
        fn, why = _table_function(name, regression=not fs.is_main)
        if fn is None:
            run.note(f"table '{name}' of {fs.name} skipped: {why}")
            continue
        opts = dict(spec.outputs["table_options"].get(name, {})) if fs.is_main else {}
        defaults: dict[str, Any] = {"ci": ci}
        if name == "fagan":
            defaults["pretest"] = [0.1, 0.2, 0.3, 0.5]
        if name == "influence":
            defaults["refit"] = "high_k"
        if name == "summary_of_findings":
            defaults["layout"] = "grade"
        groups = [g for g in fs.subgroups if g in f.data.covariates]
        if name == "subgroups" and groups:
            defaults["by"] = groups
        if name == "subgroups":
            defaults["pooled"] = True
        if name == "contrasts" and groups:
            defaults["covariate"] = groups
        if name == "heterogeneity_explained":
            defaults["base_fit"] = main_fit
        if name == "ml_subgroups" and "covariates" not in opts:
            # the ML companion's subgroup table: the covariates of the spec's meta-regressions
            covs = [c for r in spec.regressions for c in r.subgroups if c in f.data.covariates]
            if not covs:
                run.note(
                    "table 'ml_subgroups' skipped: name the covariates in "
                    "outputs.table_options.ml_subgroups.covariates"
                )
                continue
            defaults["covariates"] = list(dict.fromkeys(covs))
            reference: dict[str, str] = {}
            for r in spec.regressions:
                reference.update(r.model.get("reference", {}))
            reference = {k: v for k, v in reference.items() if k in covs}
            if reference and "reference" not in opts:
                defaults["reference"] = reference
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SamplerWarning)
                res = _call(fn, f, opts, **defaults)
            df = _as_frame(res)
        except Exception as exc:
            run.note(_error_note(f"table '{name}' of {fs.name}", exc))
            continue
        if name == "influence":
            run.influence[fs.name] = res
            df, caption = _influence_table(df, caption)
        caption = _review_caption(name, df, caption)
        run.add_table(df, f"{name}{suffix}", fit=fs.name, caption=caption)


def _review_caption(name: str, df: pd.DataFrame, caption: str) -> str:
    """Review outputs (issue 13): what was read or chosen goes into the caption."""
    extra = ""
    if name == "summary_of_findings" and "per" in df.attrs:
        extra = (
            f"Per {df.attrs['per']} people tested; prevalences: {df.attrs['prevalence_source']}."
        )
    elif name == "threshold_effect" and "correction" in df.attrs:
        extra = (
            f"{df.attrs['n_corrected']} tables with a zero cell had {df.attrs['correction']:g} "
            "added to every cell."
        )
    elif df.attrs.get("note") and name in ("quadas", "quadas_summary", "pca"):
        extra = str(df.attrs["note"]) + "."
    return caption.rstrip(".") + ". " + extra if extra else caption


def _influence_table(df: pd.DataFrame, caption: str) -> tuple[pd.DataFrame, str]:
    """The influence table as reported: one Pareto k per study, refit columns if any refit.

    The k is the integrated PSIS-LOO's, as in the Pareto k table.
    """
    df = df.drop(columns=["pareto_k_conditional", "elpd_loo_conditional"], errors="ignore")
    if "refitted" in df and not df["refitted"].astype(bool).any():
        refit_cols = [
            "refitted",
            "sensitivity_without",
            "specificity_without",
            "delta_sensitivity",
            "delta_specificity",
            "elpd_exact",
            "refit_warnings",
        ]
        df = df.drop(columns=[c for c in refit_cols if c in df])
        caption = caption.rstrip(".") + "; no study had k > 0.7, so none was refitted."
    return df, caption


def _flag_elpd(df: pd.DataFrame, caption: str) -> tuple[pd.DataFrame, str]:
    """Flag ELPD differences whose PSIS-LOO has a Pareto k > 0.7 (column ``elpd_reliable``)."""
    if "elpd_diff" not in df or "max_pareto_k" not in df:
        return df, caption
    df = df.copy()
    k = pd.to_numeric(df["max_pareto_k"], errors="coerce")
    df["elpd_reliable"] = np.where(k > 0.7, "no: Pareto k > 0.7", "yes")
    caption = caption.rstrip(".") + (
        ". elpd_reliable: 'no' where a study's Pareto k exceeds 0.7, so that ELPD difference "
        "is unreliable (refit without the study, or use K-fold cross-validation)."
    )
    return df, caption


def _stage_weights(spec: AnalysisSpec, data) -> list[float]:
    """Expected cost of each stage of :func:`run_analysis`, in fits (for the time estimate).

    A fit with its LOO, tables and figures: 1; a table that fits further models: 0.7 per fit
    (LOO, no figures); the report: 0.05. In the order of the stages.
    """
    w = [1.0] * len(spec.fits)
    for name in [t for t in spec.outputs["tables"] if t in DATA_TABLES]:
        if name == "subgroup_table":
            covs = spec.outputs["table_options"].get(name, {}).get("covariates")
            if covs is None:
                covs = {c for r in spec.regressions for c in r.subgroups if c in data.covariates}
            w.append(0.7 * max(len(covs), 1))
        else:  # clustering: the three-level fit and one or two two-level fits
            w.append(0.7 * 2)
    w += [1.0] * ((spec.comparison is not None) + (spec.multiclass is not None))
    return w + [0.05]


def _shared_columns(fits: Mapping[str, Any], main_fit: Any) -> int | None:
    """Coefficients per outcome of a meta-regression that another fit could pad up to.

    The largest design of the spec's fits whose model differs from the main fit's only in its
    covariates (same levels, priors, link, ...): padding the subgroup table's designs to it
    lets them re-use that fit's compiled model instead of compiling another one.
    """
    import dataclasses

    best = None
    for f in fits.values():
        if f is main_fit or not f.design.has_covariates:
            continue
        n = {len(c) for c in f.design.columns.values()}
        if len(n) != 1 or not np.all(np.asarray(f.weights, dtype=float) == 1.0):
            continue
        same = (
            all(
                getattr(f.spec, x.name) == getattr(main_fit.spec, x.name)
                for x in dataclasses.fields(f.spec)
                if not x.name.startswith("formula") and x.name not in ("reference", "levels")
            )
            and f.levels == main_fit.levels
        )
        if same:
            best = max(best or 0, n.pop())
    return best


def _data_tables(run: _Run, data, fits: Mapping[str, Any] | None = None) -> None:
    """Tables that fit further models to the data (``subgroup_table``, ``clustering``)."""
    spec = run.spec
    main = spec.main
    ci = float(spec.outputs["ci"])
    for name in [t for t in spec.outputs["tables"] if t in DATA_TABLES]:
        if run.stages is not None:
            run.stages.start(f"table {name} (fits further models)")
        _, caption = TABLES[name]
        caption = _table_caption(name, caption, ci=ci)
        fn, why = _table_function(name)
        if fn is None:
            run.note(f"table '{name}' skipped: {why}")
            continue
        opts = dict(spec.outputs["table_options"].get(name, {}))
        fit_kw: dict[str, Any] = spec.sampler_settings(main)
        fit_kw.pop("progress", None)
        if run.progress:
            fit_kw["progress"] = True
        for k in ("priors", "parameterization", "link"):
            if main.model.get(k):
                fit_kw[k] = main.model[k]
        defaults: dict[str, Any] = {"ci": ci, "seed": derive_seed(spec.seed, f"table:{name}")}
        if name == "subgroup_table":
            covs: list[str] = []
            reference: dict[str, str] = {}
            for r in spec.regressions:
                covs += [c for c in r.subgroups if c not in covs and c in data.covariates]
                reference.update(r.model.get("reference", {}))
            defaults["covariates"] = covs
            defaults["levels"] = main.model.get("levels")
            main_fit = (fits or {}).get(main.name)
            if main_fit is not None:
                # the main fit is the table's model without covariates when it matches (the
                # table checks), and the table's fits share a meta-regression's compiled model
                defaults["base_fit"] = main_fit
                defaults["pad_columns"] = _shared_columns(fits, main_fit)
            if run.stages is not None:

                def on_fit(label: str, j: int, m: int, table: str = name) -> None:
                    if run.progress and j > 1:
                        run.log("")  # end the line of the previous fit's progress display
                    what = "model without covariates" if label == "overall" else label
                    run.stages.step(f"{table}: {what}", j, m)

                defaults["on_fit"] = on_fit
            if reference and "reference" not in opts:
                fit_kw["reference"] = reference
            if "covariates" not in opts and not covs:
                run.note(
                    "table 'subgroup_table' skipped: name the covariates in "
                    "outputs.table_options.subgroup_table.covariates"
                )
                continue
        run.log(f"table {name}: fitting further models ...")
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SamplerWarning)
                try:
                    res = _call(fn, data, {**fit_kw, **opts}, **defaults)
                except BayesDTAError as exc:
                    if "base_fit" not in str(exc) or "base_fit" not in defaults:
                        raise
                    # the main fit is not this table's model without covariates: fit it here
                    defaults.pop("base_fit")
                    res = _call(fn, data, {**fit_kw, **opts}, **defaults)
            df = _as_frame(res)
        except Exception as exc:
            run.note(_error_note(f"table '{name}'", exc))
            continue
        if run.progress:
            run.log("")
        run.log(f"  done in {time.perf_counter() - t0:.1f} s")
        df, caption = _flag_elpd(df, caption)
        run.add_table(df, name, fit="", caption=caption)


def _fit_figures(run: _Run, f, fs) -> None:
    spec = run.spec
    names = spec.outputs["figures"] if fs.is_main else list(fs.figures)
    options = spec.outputs["figure_options"] if fs.is_main else fs.figure_options
    if not names:
        return
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..plots import figures as plots
    except Exception as exc:
        run.note(_error_note("all figures", exc))
        return
    save = plots.save_figure
    formats = spec.outputs["figure_formats"]
    dpi = spec.outputs["figure_dpi"]
    ci = float(spec.outputs["ci"])
    suffix = _suffix(fs.name, fs.is_main)
    for name in names:
        _, default_caption = FIGURES[name]
        built = _figure_caption(name, default_caption, ci=ci, f=f)
        caption = (
            spec.outputs["captions"].get(name, built)
            if fs.is_main
            else (f"{fs.title}: {built[0].lower()}{built[1:]}")
        )
        fn = _registry.FIGURES.get(name)
        entry = {"name": f"{name}{suffix}", "figure": name, "fit": fs.name, "caption": caption}
        if fn is None:
            entry["status"] = "missing"
            entry["note"] = f"figure '{name}' skipped: no figure {name!r} is registered"
            run.record["figures"].append(entry)
            run.note(entry["note"])
            continue
        opts = dict(options.get(name, {}))
        defaults: dict[str, Any] = {"ci": ci}
        if name == "influence" and fs.name in run.influence:
            defaults["result"] = run.influence[fs.name]
        if name == "influence":
            defaults["refit"] = "high_k"
        if name == "sroc":
            defaults["levels"] = [ci]
        fig = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = _call(fn, f, opts, **defaults)
            stem = run.out / "figures" / f"{name}{suffix}"
            if save is not None:
                files = save(fig, stem, formats, dpi=dpi)
            else:
                files = []
                for fmt in formats:
                    p = stem.with_name(f"{stem.name}.{fmt}")
                    fig.savefig(p, format=fmt, dpi=dpi, bbox_inches="tight")
                    files.append(p)
            entry["status"] = "ok"
            entry["files"] = [str(Path(p).relative_to(run.out)) for p in files]
        except Exception as exc:
            entry["status"] = "failed"
            entry["note"] = _error_note(f"figure '{name}' of {fs.name}", exc)
            entry["traceback"] = traceback.format_exc(limit=3)
            run.note(entry["note"])
        finally:
            if fig is not None:
                plt.close(fig)
        run.record["figures"].append(entry)


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items() if not str(k).startswith("_")}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, Path):
        return str(x)
    return x


# ------------------------------------------------------------------------------ methods text
def _prior_text(priors: Mapping[str, Any], levels: int, has_cov: bool) -> list[str]:
    from ..families.priors import Prior

    def show(name: str) -> str:
        p = priors[name]
        if isinstance(p, Mapping):
            d = dict(p)
            fam = d.pop("dist")
            return str(Prior.make(fam, **d))
        return str(p)

    items = [
        f"intercepts mu_sensitivity ~ {show('mu_sensitivity')} and mu_specificity ~ "
        f"{show('mu_specificity')} (logit scale)",
    ]
    if has_cov:
        items.append(
            f"regression coefficients ~ {show('beta_sensitivity')} (sensitivity) and "
            f"{show('beta_specificity')} (specificity)"
        )
    items.append(
        f"between-study SDs tau_sensitivity ~ {show('tau_sensitivity')} and tau_specificity ~ "
        f"{show('tau_specificity')}"
    )
    items.append(f"between-study correlation rho ~ {show('rho')} (LKJ; (rho+1)/2 ~ Beta(eta, eta))")
    if levels == 3:
        items.append(
            f"within-study SDs tau_within_sensitivity ~ {show('tau_within_sensitivity')} and "
            f"tau_within_specificity ~ {show('tau_within_specificity')}, within-study "
            f"correlation rho_within ~ {show('rho_within')}"
        )
    return items


def _join(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def methods_text(record: Mapping[str, Any]) -> list[str]:
    """Methods paragraphs generated from a run record (data, model in words, priors, sampler).

    Parameters
    ----------
    record : mapping
        The content of ``run.json``.

    Returns
    -------
    list of str
        One string per paragraph.
    """
    d = record["data"]
    spec = record["spec"]
    fits = record["fits"]
    main = fits[0]
    paras = []
    src = d["source"]
    filt = ""
    if d.get("filters"):
        parts = []
        for kind, cols in d["filters"].items():
            for col, vals in cols.items():
                verb = "keeping" if kind == "include" else "excluding"
                parts.append(f"{verb} rows with {col} in {vals}")
        filt = f" after {_join(parts)}"
    sim = (
        " The 2x2 counts are SIMULATED on the design of a published review (see the data "
        "description); they are not study results."
        if d.get("simulated")
        else ""
    )
    clusters = (
        f"some studies contributed several tables (up to {d['max_rows_per_study']} per study)"
        if d["has_clusters"]
        else "each study contributed one table"
    )
    paras.append(
        f"Data. We analysed {d['n_rows']} 2x2 tables from {d['n_studies']} studies ({src}"
        f"{filt}), with {d['n_diseased']} diseased and {d['n_nondiseased']} non-diseased "
        f"participants in total; {clusters}." + sim
    )
    lv = main["levels"]
    model = (
        "For table r of study s, the number of true positives was modelled as binomial with the "
        "number of diseased participants and the table's sensitivity, and the number of true "
        "negatives as binomial with the number of non-diseased participants and its "
        "specificity (exact binomial likelihood, no continuity correction). The logits of "
        "sensitivity and specificity were modelled jointly (bivariate random-effects model; "
        "Reitsma et al. 2005, Chu & Cole 2006): each equals a mean logit plus a study effect, "
        "the pair of study effects being bivariate normal with between-study SDs "
        "tau_sensitivity and tau_specificity and correlation rho."
    )
    link = main.get("link") or main.get("model", {}).get("link", "logit")
    if link != "logit":
        model += (
            f" A {link} link was used instead of the logit: 'logit' in this description reads "
            f"'{link}' (for probit, the standard normal quantile of the proportion)."
        )
    if lv == 3:
        model += (
            " Because some studies contributed several tables (several models or test sets), a "
            "third level added a bivariate normal effect of each table within its study "
            "(within-study SDs tau_within_sensitivity and tau_within_specificity, correlation "
            "rho_within), so that tables of the same study are correlated rather than treated "
            "as independent."
        )
    elif d["has_clusters"]:
        model += (
            " Tables of the same study were treated as independent (two-level model, each "
            "table its own study), as in the original review."
        )
    model += (
        " The summary point is the inverse logit of the mean logits; likelihood ratios "
        "(LR+ = se/(1-sp), LR- = (1-se)/sp), the diagnostic odds ratio, the HSROC curve "
        "(Harbord et al. 2007) and its AUC, and I2 statistics were computed per posterior draw."
    )
    paras.append("Model. " + model)
    if len(fits) > 1:
        regs = []
        for r in fits[1:]:
            cols = r["columns"]
            f_se = r["model"].get("formula_sensitivity") or r["model"].get("formula") or "~ 1"
            f_sp = r["model"].get("formula_specificity") or r["model"].get("formula") or "~ 1"
            refs = [f"{k} = {v[0]}" for k, v in r["factor_levels"].items()]
            form = (
                f"'{f_se}' for both outcomes"
                if f_se == f_sp
                else f"'{f_se}' for sensitivity and '{f_sp}' for specificity"
            )
            regs.append(
                f"{r['title']} ({r['levels']} levels): formula {form}, "
                f"{len(cols['sensitivity']) - 1} + {len(cols['specificity']) - 1} coefficients"
                + (f", reference levels {_join(refs)}" if refs else "")
            )
        paras.append(
            "Meta-regression. Covariates entered the mean logit sensitivity and the mean logit "
            "specificity with separate coefficients (treatment coding; continuous covariates "
            "centred and scaled; coefficients are logit odds ratios): "
            + "; ".join(regs)
            + ". In a meta-regression, sensitivity, specificity, LR+, LR-, DOR and the AUC "
            "are the summary point at the reference levels of the covariates (and the means of "
            "continuous ones), not a pooled estimate; beside them, sensitivity_pooled and "
            "specificity_pooled give the summary point over the observed covariate mix (per "
            "draw, the inverse logit of the mean linear predictor of the tables in the fit). "
            "Subgroup estimates are the summary points at each covariate level, the other "
            "covariates at their reference level."
        )
    has_cov = any(len(f["columns"]["sensitivity"]) > 1 for f in fits)
    pri = _prior_text(main["model"]["priors"], max(f["levels"] for f in fits), has_cov)
    user = [k for f in spec["fits"] for k in f["model"].get("priors", {})]
    paras.append(
        "Priors. "
        + "; ".join(pri)
        + "."
        + (
            f" Priors set in the spec: {', '.join(sorted(set(user)))}; the others are the "
            "package defaults."
            if user
            else " All priors are the package defaults (weakly informative, documented in "
            "bayesdta.priors)."
        )
    )
    s = main["sampler"]
    sw = record["software"]
    backend = (
        f"nutpie {sw.get('nutpie', '')} (NUTS, model compiled with numba)"
        if s.get("backend") == "nutpie"
        else f"PyMC {sw.get('pymc', '')} NUTS"
    )
    seeds = (
        _join([f"{f['name']} {f['seed']}" for f in fits]) if len(fits) > 1 else str(main["seed"])
    )
    paras.append(
        f"Sampling. Posteriors were sampled with {backend}: {s.get('chains')} chains of "
        f"{s.get('draws')} draws after {s.get('tune')} warm-up iterations, target acceptance "
        f"{s.get('target_accept')}, random seed{'s' if len(fits) > 1 else ''} {seeds} (spec "
        f"seed {spec['seed']}). Convergence was checked with R-hat (threshold 1.01), bulk and "
        "tail effective sample sizes (threshold 400), divergent transitions and E-BFMI; "
        "predictive accuracy and study influence with PSIS-LOO by study (Vehtari et al. 2017"
        + (
            "; the left-out study's random effects integrated out per draw, i.e. the predictive "
            "density of a new study"
            if (main.get("loo") or {}).get("method") == "integrated"
            else ""
        )
        + "; Pareto k > 0.7 flags studies where the approximation is unreliable)."
        + " Random effects were sampled in a parameterization chosen from the data (each study"
        " effect partially centered by its informativeness, Papaspiliopoulos et al. 2007), and"
        " a run that was not clean was repeated with adjusted settings: "
        + _join([f"{f['name']}: {(f.get('parameterization') or {}).get('note', '')}" for f in fits])
        + "."
    )
    soft = ", ".join(f"{k} {v}" for k, v in sw.items() if k != "python" and v != "not installed")
    paras.append(f"Software. Python {sw.get('python')}; {soft}.")
    return paras


# ------------------------------------------------------------------------------ report
class _Doc:
    """A report as a list of blocks, rendered to Markdown and to HTML."""

    def __init__(self, out: Path, digits: int) -> None:
        self.out = out
        self.digits = digits
        self.blocks: list[tuple[str, Any]] = []

    def h(self, level: int, text: str, anchor: str | None = None) -> None:
        self.blocks.append(("h", (level, text, anchor)))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def bullets(self, items: Sequence[str]) -> None:
        if items:
            self.blocks.append(("ul", list(items)))

    def warn(self, title: str, items: Sequence[str]) -> None:
        self.blocks.append(("warn", (title, list(items))))

    def table(self, df: pd.DataFrame, caption: str, *, index: bool, files: Sequence[str] = ()):
        self.blocks.append(("table", (df, caption, index, list(files))))

    def figure(self, png: str | None, caption: str, files: Sequence[str] = ()) -> None:
        self.blocks.append(("fig", (png, caption, list(files))))

    def code(self, text: str, lang: str = "") -> None:
        self.blocks.append(("code", (text, lang)))

    # ---------------------------------------------------------------- markdown
    def markdown(self) -> str:
        md: list[str] = []
        for kind, b in self.blocks:
            if kind == "h":
                level, text, _ = b
                md.append(f"{'#' * level} {text}\n")
            elif kind == "p":
                md.append(b + "\n")
            elif kind == "ul":
                md.append("\n".join(f"- {x}" for x in b) + "\n")
            elif kind == "warn":
                title, items = b
                md.append(f"> **{title}**\n>\n" + "\n".join(f"> - {x}" for x in items) + "\n")
            elif kind == "table":
                df, caption, index, files = b
                links = " ".join(f"[{Path(f).suffix[1:]}]({f})" for f in files)
                md.append(f"**{caption}**" + (f" ({links})" if links else "") + "\n")
                md.append(to_markdown(df, index=index, digits=self.digits))
            elif kind == "fig":
                png, caption, files = b
                links = " ".join(f"[{Path(f).suffix[1:]}]({f})" for f in files)
                if png:
                    md.append(f"![{caption}]({png})\n")
                md.append(f"*{caption}*" + (f" ({links})" if links else "") + "\n")
            elif kind == "code":
                text, lang = b
                md.append(f"```{lang}\n{text.rstrip()}\n```\n")
        return "\n".join(md)

    # ---------------------------------------------------------------- html
    @staticmethod
    def _inline(text: str) -> str:
        s = html.escape(text, quote=False)
        s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
        s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
        return s

    def html(self, title: str) -> str:
        parts: list[str] = []
        toc: list[tuple[str, str]] = []
        for kind, b in self.blocks:
            if kind == "h":
                level, text, anchor = b
                aid = anchor or re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
                if level == 2:
                    toc.append((aid, text))
                parts.append(f'<h{level} id="{aid}">{html.escape(text)}</h{level}>')
            elif kind == "p":
                parts.append(f"<p>{self._inline(b)}</p>")
            elif kind == "ul":
                parts.append("<ul>" + "".join(f"<li>{self._inline(x)}</li>" for x in b) + "</ul>")
            elif kind == "warn":
                t, items = b
                lis = "".join(f"<li>{self._inline(x)}</li>" for x in items)
                parts.append(
                    f'<div class="warn"><strong>{html.escape(t)}</strong><ul>{lis}</ul></div>'
                )
            elif kind == "table":
                df, caption, index, files = b
                links = " ".join(f"<code>{html.escape(f)}</code>" for f in files)
                parts.append(
                    f'<figure class="tbl"><figcaption>{self._inline(caption)}'
                    f"{' <span class=files>' + links + '</span>' if links else ''}</figcaption>"
                    f"{html_table(df, index=index, digits=self.digits)}</figure>"
                )
            elif kind == "fig":
                png, caption, files = b
                img = ""
                if png and (self.out / png).exists():
                    data = base64.b64encode((self.out / png).read_bytes()).decode()
                    img = f'<img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                links = " ".join(f"<code>{html.escape(f)}</code>" for f in files)
                parts.append(
                    f'<figure class="fig">{img}<figcaption>{self._inline(caption)}'
                    f"{' <span class=files>' + links + '</span>' if links else ''}"
                    "</figcaption></figure>"
                )
            elif kind == "code":
                text, _ = b
                parts.append(f"<pre><code>{html.escape(text, quote=False)}</code></pre>")
        nav = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in toc)
        return (
            '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
            f"<nav><ul>{nav}</ul></nav>\n<main>\n"
            + "\n".join(parts)
            + "\n</main>\n</body>\n</html>\n"
        )


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;line-height:1.45;margin:0;
color:#222;background:#fff}
main{max-width:980px;margin:0 auto;padding:1.5em 2em 4em}
nav{background:#f5f5f5;border-bottom:1px solid #ddd;padding:.4em 2em;font-size:.9em}
nav ul{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:1.2em}
nav a{color:#0072B2;text-decoration:none}
h1{font-size:1.6em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.3em 0 1.2em}
th,td{padding:.25em .6em;border-bottom:1px solid #e5e5e5}th{border-bottom:2px solid #999;
text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:1em 0}figure.tbl{overflow-x:auto}
figure.fig img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:.9em;color:#444;margin:.3em 0}.files{color:#888;font-size:.85em}
.warn{background:#fff4e5;border:2px solid #D55E00;padding:.6em 1em;margin:1em 0;
border-radius:4px}.warn ul{margin:.3em 0 0}
pre{background:#f7f7f7;border:1px solid #e5e5e5;padding:.8em;overflow-x:auto;font-size:.85em}
code{font-family:SFMono-Regular,Consolas,Menlo,monospace;font-size:.92em}
"""


def _read_table(out: Path, entry: Mapping[str, Any]) -> pd.DataFrame | None:
    csv = next((f for f in entry["files"] if f.endswith(".csv")), None)
    if csv is None or not (out / csv).exists():
        return None
    df = pd.read_csv(out / csv)
    if entry.get("index"):
        df = df.set_index(df.columns[0])
    return df


def _report_summary(df: pd.DataFrame) -> pd.DataFrame:
    """The summary table as shown in reports: label, median and interval, ESS and R-hat."""
    cols = [c for c in ("median", "lower", "upper", "ess_bulk", "r_hat") if c in df.columns]
    out = df[cols].copy()
    if "description" in df.columns:  # written by DTAFit.summary (bayesdta.labels)
        desc = [str(x) if isinstance(x, str) else "" for x in df["description"]]
    else:
        desc = [QUANTITY_LABELS.get(str(q), "") for q in df.index]
    out.insert(0, "description", desc)
    return out


def _compact_intervals(df: pd.DataFrame, digits: int) -> pd.DataFrame:
    """Display form of a table: ``x``, ``x_lower``, ``x_upper`` become one column.

    The column ``x (interval)`` holds "median (lower to upper)"; the CSV keeps all three.
    """
    cols = [str(c) for c in df.columns]
    trios = [c for c in cols if f"{c}_lower" in cols and f"{c}_upper" in cols]
    if not trios:
        return df
    out = df.copy()
    out.columns = cols
    for c in trios:
        cells = []
        for m, lo, hi in zip(out[c], out[f"{c}_lower"], out[f"{c}_upper"], strict=True):
            if any(isinstance(v, float) and math.isnan(v) for v in (m, lo, hi)):
                cells.append("")
            else:
                cells.append(f"{fmt(m, digits)} ({fmt(lo, digits)} to {fmt(hi, digits)})")
        pos = list(out.columns).index(c)
        out = out.drop(columns=[c, f"{c}_lower", f"{c}_upper"])
        out.insert(pos, f"{c} (interval)", cells)
    return out


def build_report(out: str | Path) -> dict[str, Path]:
    """(Re)build ``report.md`` and ``report.html`` from a finished run folder.

    Parameters
    ----------
    out : path
        A folder written by :func:`run_analysis` (it reads ``run.json``, the tables and the
        figures; nothing is refitted). A folder written only by
        :func:`bayesdta.sensitivity.run_sweep` gets a report of the sweep.

    Returns
    -------
    dict
        ``{"md": path, "html": path}`` (formats as in ``report.formats`` of the spec).
    """
    out = Path(out)
    rec_path = out / RUN_RECORD
    if not rec_path.exists():
        if (out / "sweep.json").exists():
            return _build_sweep_report(out)
        raise BayesDTAError(
            f"{str(out)!r} is not a bayesdta run folder: no {RUN_RECORD} (run `bayesdta run "
            "SPEC --out DIR` first)"
        )
    try:
        record = json.loads(rec_path.read_text())
    except json.JSONDecodeError as exc:
        raise BayesDTAError(f"{rec_path}: damaged run record: {exc}") from None
    spec = record["spec"]
    rep = spec["report"]
    doc = _Doc(out, int(rep.get("round_to", 3)))
    title = rep.get("title") or spec["title"]
    doc.h(1, title, "top")
    byline = [f"Generated by bayesdta {record['bayesdta']} on {record['created']}"]
    if rep.get("authors"):
        byline.insert(0, rep["authors"])
    doc.p(" · ".join(byline))
    if spec.get("description"):
        doc.p(spec["description"].strip())
    if record["data"].get("simulated"):
        doc.warn(
            "SIMULATED DATA",
            [
                "The 2x2 counts of this analysis are simulated on the design of a published "
                "review; they are not study results and must not be cited as such."
            ],
        )
    all_warn = [
        f"{f['title']} ({f['name']}): {w}"
        for f in record["fits"]
        for w in f["diagnostics"]["warnings"]
    ]
    table_names = {t["name"]: t for t in record.get("tables", [])}
    for f in record["fits"]:
        loo = f.get("loo") or {}
        if loo.get("n_k_above_0.7"):
            sfx = "" if f["is_main"] else f"_{f['name']}"
            where = [f"the Pareto k table of this fit in Diagnostics (tables/pareto_k{sfx}.csv)"]
            if f"influence{sfx}" in table_names:
                where.append(f"the influence table (exact refits, tables/influence{sfx}.csv)")
            all_warn.append(
                f"{f['title']} ({f['name']}): Pareto k > 0.7 for {loo['n_k_above_0.7']} "
                f"stud{'ies' if loo['n_k_above_0.7'] > 1 else 'y'} "
                f"({', '.join(loo['high_k_studies'])}): PSIS-LOO is unreliable there; see "
                + " and ".join(where)
            )
    for t in record.get("tables", []):
        if "elpd_reliable" in (t.get("columns") or []) and t.get("elpd_unreliable"):
            all_warn.append(
                f"ELPD differences with Pareto k > 0.7 in the table '{t['name']}' "
                f"({', '.join(t['elpd_unreliable'])}): column elpd_reliable = 'no'"
            )
    all_warn += [
        f"{record['latent_class']['title']}: {w}"
        for w in (record.get("latent_class") or {}).get("warnings", [])
    ]
    if all_warn:
        doc.warn("Sampler and diagnostic warnings — resolve before reporting", all_warn)
    if rep.get("notes"):
        doc.p(rep["notes"].strip())

    doc.h(2, "Methods", "methods")
    for para in methods_text(record):
        doc.p(para)

    doc.h(2, "Results", "results")
    tables = record.get("tables", [])
    for f in record["fits"]:
        doc.h(3, f"{f['title']}" + ("" if f["is_main"] else f" ({f['name']})"))
        for t in tables:
            if t["fit"] != f["name"] or t["name"].startswith("pareto_k"):
                continue
            df = _read_table(out, t)
            if df is None:
                continue
            is_summary = t["name"].startswith("summary")
            is_summary &= not t["name"].startswith("summary_of_findings")  # GRADE (issue 13)
            shown = _report_summary(df) if is_summary else _compact_intervals(df, doc.digits)
            if len(shown) > _MAX_INLINE_ROWS and not is_summary:
                doc.p(f"{t['caption']} ({len(shown)} rows; full table in {', '.join(t['files'])})")
                continue
            doc.table(shown, t["caption"], index=t.get("index", True), files=t["files"])

    if record.get("latent_class"):  # bayesdta.reporting.latent_class
        from .latent_class import report_section

        report_section(doc, out, record)
    if record.get("multiclass"):  # joint model of the KxK matrices (issue 13)
        from .multiclass import multiclass_section

        multiclass_section(doc, record, out, _read_table)

    extra = [t for t in tables if t["fit"] == ""]
    if extra:
        doc.h(3, "Further analyses")
        for t in extra:
            df = _read_table(out, t)
            if df is None:
                continue
            doc.table(
                _compact_intervals(df, doc.digits),
                t["caption"],
                index=t.get("index", True),
                files=t["files"],
            )

    figs = record.get("figures", [])
    if figs:
        doc.h(2, "Figures", "figures")
        n = 0
        for g in figs:
            if g.get("status") != "ok":
                continue
            n += 1
            png = next((x for x in g["files"] if x.endswith(".png")), None)
            others = [x for x in g["files"] if not x.endswith(".png")]
            doc.figure(png, f"Figure {n}. {g['caption']}", others)

    _sweep_section(doc, out / "sensitivity", heading=2)
    from .comparative import comparative_section

    comparative_section(doc, out, heading=2)
    if record.get("latent_class"):  # reference-prior sweep of the latent-class fit
        from .latent_class import sweep_section

        sweep_section(doc, out / "sensitivity")

    doc.h(2, "Diagnostics", "diagnostics")
    rows = []
    for f in record["fits"]:
        dg = f["diagnostics"]
        loo = f.get("loo") or {}
        rows.append(
            {
                "fit": f["name"],
                "levels": f["levels"],
                "divergences": dg["divergences"],
                "max_r_hat": dg["max_r_hat"],
                "min_ess_bulk": dg["min_ess_bulk"],
                "min_ess_tail": dg["min_ess_tail"],
                "min_bfmi": dg["min_bfmi"],
                "elpd_loo": loo.get("elpd_loo", np.nan),
                "elpd_se": loo.get("se", np.nan),
                "p_loo": loo.get("p_loo", np.nan),
                "max_pareto_k": loo.get("max_k", np.nan),
                "k_above_0.7": loo.get("n_k_above_0.7", np.nan),
                "seconds": f.get("elapsed_s", np.nan),
            }
        )
    doc.table(
        pd.DataFrame(rows),
        "Sampler diagnostics per fit: divergent transitions, worst R-hat and smallest bulk/tail "
        "ESS over the hyperparameters and coefficients, smallest E-BFMI over chains, PSIS-LOO "
        "by study (elpd, its SE, effective number of parameters, largest Pareto k, studies "
        "with k > 0.7) and wall time (including compilation).",
        index=False,
    )
    doc.p(
        "Thresholds: R-hat <= 1.01, bulk and tail ESS >= 400, no divergent transitions, "
        "E-BFMI >= 0.3, Pareto k <= 0.7."
        + (" All fits pass." if not all_warn else " See the warnings at the top.")
    )
    for f in record["fits"]:
        sfx = "" if f["is_main"] else f"_{f['name']}"
        kt = next((t for t in tables if t["name"] == f"pareto_k{sfx}"), None)
        if kt is None:
            continue
        dfk = _read_table(out, kt)
        if dfk is not None and len(dfk):
            top = dfk.sort_values("pareto_k", ascending=False).head(5)
            doc.table(
                top,
                f"Largest Pareto k by study ({f['title']}): PSIS-LOO by study with the study's "
                "random effects integrated out, the k used everywhere in this report; all "
                f"studies in {', '.join(kt['files'])}.",
                index=False,
                files=kt["files"],
            )
    notes = record.get("notes", [])
    if notes:
        doc.h(2, "Notes", "notes")
        doc.bullets(notes)

    doc.h(2, "Reproducibility", "reproducibility")
    doc.p(f"Command: `{record['command']}`")
    files = ["posterior.nc"] + [
        f.get("posterior") for f in record["fits"][1:] if f.get("posterior")
    ]
    doc.p(
        "Re-running the same spec with the same seed gives identical tables. Posterior draws: "
        + ", ".join(f"`{x}`" for x in files)
        + "; data used: `data.csv`; run record: `run.json`."
    )
    doc.table(
        pd.DataFrame(
            {"package": list(record["software"]), "version": list(record["software"].values())}
        ),
        "Software versions.",
        index=False,
    )
    if rep.get("include_spec", True):
        doc.h(3, "Analysis spec")
        spec_text = (out / "spec.toml").read_text() if (out / "spec.toml").exists() else ""
        doc.code(spec_text, "toml")
        if (out / "spec.resolved.toml").exists():
            doc.p("The spec extends another spec; the merged spec is:")
            doc.code((out / "spec.resolved.toml").read_text(), "toml")
    return _write_report(doc, out, title, rep.get("formats", ["html", "md"]))


def _write_report(doc: _Doc, out: Path, title: str, formats: Sequence[str]) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    if "md" in formats:
        paths["md"] = out / "report.md"
        paths["md"].write_text(doc.markdown())
    if "html" in formats:
        paths["html"] = out / "report.html"
        paths["html"].write_text(doc.html(title))
    return paths


def _sweep_section(doc: _Doc, folder: Path, *, heading: int) -> bool:
    rec = folder / "sweep.json"
    csv = folder / "sweep.csv"
    if not rec.exists() or not csv.exists():
        return False
    record = json.loads(rec.read_text())
    table = pd.read_csv(csv)
    rel = folder.relative_to(doc.out) if folder != doc.out else Path(".")
    doc.h(heading, "Sensitivity analysis", "sensitivity")
    kinds = table["kind"].value_counts().to_dict()
    doc.p(
        f"{record['n_variants']} variants of the fit '{record['fit']}' "
        f"({', '.join(f'{k}: {v}' for k, v in kinds.items())}); {record['n_fitted']} fitted, "
        f"{record['n_cached']} taken from the cache; executor: {record['executor']}. Left-out "
        "studies and excluded rows get likelihood weight 0 (same compiled model); every variant "
        "has its own seed derived from the spec seed and the variant name."
    )
    bad = table[table["status"] != "ok"]
    if len(bad):
        doc.warn(
            "Variants not fitted",
            [f"{r.variant}: {r.status} — {r.note}" for r in bad.itertuples()],
        )
    from .sensitivity import compact_table

    shown = compact_table(table, record["quantities"][:4], digits=doc.digits)
    files = [str(rel / f"sweep.{x}") for x in ("csv", "tex") if (folder / f"sweep.{x}").exists()]
    doc.table(
        shown,
        f"Pooled estimates across the sweep (median and {record['ci']:.0%} interval).",
        index=False,
        files=files,
    )
    if (folder / "sweep.png").exists():
        doc.figure(
            str(rel / "sweep.png"),
            "Sensitivity analysis: posterior median and interval of each quantity per variant; "
            "the dashed line and band are the baseline.",
            [str(rel / "sweep.pdf")] if (folder / "sweep.pdf").exists() else [],
        )
    return True


def _build_sweep_report(out: Path) -> dict[str, Path]:
    record = json.loads((out / "sweep.json").read_text())
    spec = record["spec"]
    title = f"{spec['title']}: sensitivity analysis"
    doc = _Doc(out, int(spec["report"].get("round_to", 3)))
    doc.h(1, title, "top")
    doc.p(f"Generated by bayesdta {record['bayesdta']}.")
    _sweep_section(doc, out, heading=2)
    from .comparative import comparative_section

    comparative_section(doc, out, heading=2)
    doc.h(2, "Analysis spec", "spec")
    doc.code(record.get("spec_text", ""), "toml")
    return _write_report(doc, out, title, spec["report"].get("formats", ["html", "md"]))
