"""Figures of a DTA meta-analysis: forest, SROC, Fagan, LR scatter, Deeks, influence, PPC, priors.

One function per figure. Each takes a fitted :class:`~bayesdta.fit.DTAFit` (``plot_deeks`` also
takes the data), keyword-only options, and returns the :class:`matplotlib.figure.Figure`, so the
caller can restyle it; :func:`save_figure` writes PNG and vector formats. Quantities come from
:mod:`bayesdta.quantities` (posterior draws summarized, never plug-in estimates).

Defaults aim at a journal page: 7-9 pt text, no top/right spines, a colour-blind-safe palette
(Okabe & Ito), TrueType fonts embedded in PDF, 300 dpi PNG.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon
from scipy import special
from scipy import stats as sps

from ..data.tables import DTAData
from ..exceptions import SpecError
from ..families import links as lk
from ..families import stats as st
from ..posterior import quantities as Q
from ..registry import register_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from ..inference.fit import DTAFit

__all__ = [
    "PALETTE",
    "plot_forest",
    "plot_sroc",
    "plot_fagan",
    "plot_lr_scatter",
    "plot_deeks",
    "plot_influence",
    "plot_ppc",
    "plot_prior_posterior",
    "save_figure",
    "draw_count_columns",
]

#: Okabe-Ito colour-blind-safe palette (blue, vermillion, green, purple, orange, sky, yellow).
PALETTE: tuple[str, ...] = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)

_RC: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.linewidth": 0.8,
    "xtick.major.width": 0.8,
    "ytick.major.width": 0.8,
    "lines.linewidth": 1.2,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "axes.prop_cycle": mpl.cycler(color=list(PALETTE)),
}
_GREY = "0.45"


def _style():
    return mpl.rc_context(_RC)


def _figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def _pct(x: float) -> str:
    """Format a probability as a percentage with sensible precision."""
    v = 100.0 * x
    if v < 1 or v > 99:
        return f"{v:.1f}%"
    return f"{v:.0f}%"


def _ci_text(med: float, lo: float, hi: float, fmt: str = ".2f") -> str:
    return f"{med:{fmt}} ({lo:{fmt}}\u2013{hi:{fmt}})"


def save_figure(
    fig: Figure,
    path_stem: str | Path,
    formats: Sequence[str] = ("png", "pdf", "svg"),
    *,
    dpi: int = 300,
) -> list[Path]:
    """Save a figure in several formats (PNG for screens, PDF / SVG vector for print).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    path_stem : str or Path
        Path without extension; ``.png``, ``.pdf``, ... are appended. Parent folders are made.
    formats : sequence of str
        Formats understood by :meth:`matplotlib.figure.Figure.savefig`.
    dpi : int
        Resolution of raster formats.

    Returns
    -------
    list of Path
        The files written.
    """
    stem = Path(path_stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        fmt = fmt.lstrip(".").lower()
        path = stem.with_name(f"{stem.name}.{fmt}")
        with mpl.rc_context({k: v for k, v in _RC.items() if k.endswith("fonttype")}):
            fig.savefig(path, format=fmt, dpi=dpi, bbox_inches="tight")
        out.append(path)
    return out


# --------------------------------------------------------------------------------------------
# Forest plot
# --------------------------------------------------------------------------------------------
def _row_order(
    fit: DTAFit, obs: pd.DataFrame, sort_by: str | None, grouped: bool
) -> list[tuple[str, Any]]:
    """Entries ("header", study) / ("row", position) from top to bottom."""
    n = len(obs)
    if sort_by is None:
        key = np.arange(n, dtype=float)
    elif sort_by in ("sensitivity", "specificity"):
        key = obs[sort_by].to_numpy(dtype=float)
    elif sort_by == "n":
        key = (obs["n_diseased"] + obs["n_nondiseased"]).to_numpy(dtype=float)
    elif sort_by == "study":
        key = np.argsort(np.argsort(obs["study"].astype(str).to_numpy(), kind="stable"))
        key = key.astype(float)
    elif sort_by in fit.data.covariates:
        col = fit.data.frame[sort_by]
        text = not pd.api.types.is_numeric_dtype(col)  # object or (arrow) string columns
        key = pd.factorize(col, sort=True)[0].astype(float) if text else col
        key = np.asarray(key, dtype=float)
    else:
        raise SpecError(
            "sort_by must be None, 'sensitivity', 'specificity', 'n', 'study' or a covariate, "
            f"got {sort_by!r}"
        )
    study_idx = fit.data.study_index
    if not grouped:
        return [("row", int(i)) for i in np.argsort(key, kind="stable")]
    entries: list[tuple[str, Any]] = []
    group_key = [(float(np.mean(key[study_idx == s])), s) for s in range(fit.data.n_studies)]
    for _, s in sorted(group_key):
        rows = np.flatnonzero(study_idx == s)
        rows = rows[np.argsort(key[rows], kind="stable")]
        if rows.size > 1:
            entries.append(("header", s))
        entries += [("row", int(r)) for r in rows]
    return entries


def _study_names(fit: DTAFit, labels: str | Mapping[str, str] | None) -> list[str]:
    """Display name of every study (in the order of ``fit.data.studies``)."""
    studies = list(fit.data.studies)
    if labels is None:
        return studies
    if isinstance(labels, Mapping):
        return [str(labels.get(s, s)) for s in studies]
    frame = fit.data.frame
    if labels not in frame.columns:
        raise SpecError(f"labels= {labels!r} is not a column of the data")
    first = frame.groupby("study", sort=False)[labels].first()
    return [str(first[s]) for s in studies]


def _at_text(fit: DTAFit, at: Mapping[str, Any] | None) -> str:
    """Short description of the covariate values of a meta-regression's summary point."""
    if not fit.design.variables:
        return ""
    if not at:
        return " (reference levels)"
    return " (" + ", ".join(f"{k}={v}" for k, v in at.items()) + ")"


def _where(fit: DTAFit, at: Mapping[str, Any] | None = None) -> str:
    """Where the summary point of a meta-regression sits (:func:`bayesdta.labels.reference_text`).

    ``"at reference levels (backbone=ResNet, validation=internal)"``; ``""`` without covariates.
    """
    from ..inference.labels import reference_text

    return reference_text(fit.design, at=at)


def _wrap(text: str, width: int = 60) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width=width, break_long_words=False)) or text


@register_figure("forest")
def plot_forest(
    fit: DTAFit,
    *,
    ci: float = 0.95,
    sort_by: str | None = None,
    labels: str | Mapping[str, str] | None = None,
    group_by_study: bool | None = None,
    show_shrunken: bool = True,
    show_pooled: bool = True,
    show_predictive: bool = True,
    annotate: bool = True,
    at: Mapping[str, Any] | None = None,
    xlim: tuple[float, float] = (0.0, 1.0),
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
    show_counts: bool = True,
    by: str | None = None,
) -> Figure:
    """Paired forest plot of sensitivity and specificity.

    Each row (2x2 table) shows the observed proportion with its exact Clopper-Pearson interval
    (black squares, area proportional to the group size) and, below it, the posterior
    (shrunken) estimate ``F(theta_r)`` (inverse link, invlogit by default) with its credible
    interval (open circles). The bottom rows show the summary point (diamond, credible
    interval) and the prediction interval of a new study. For three-level fits the rows are
    grouped under their study.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    ci : float
        Level of all intervals.
    sort_by : {None, "sensitivity", "specificity", "n", "study"} or str
        Order of the rows (and of the studies when grouped, by their mean), or a covariate
        column; None keeps the data order.
    labels : str or mapping, optional
        Column of the data holding display names of the studies (e.g. ``"author"``), or a
        mapping from study id to name. Default: the study ids.
    group_by_study : bool, optional
        Group rows under a study heading (default: for three-level fits).
    show_shrunken, show_pooled, show_predictive : bool
        Which estimates to draw.
    annotate : bool
        Print the observed value and interval of every row at the right of each panel.
    at : mapping, optional
        Covariate values of a meta-regression for the pooled and predictive rows.
    xlim : tuple of float
        Horizontal limits.
    figsize : tuple of float, optional
        Figure size in inches (default: grows with the number of rows).
    title : str, optional
        Figure title.
    show_counts : bool
        Show the counts TP, FP, FN, TN of every table in columns left of the panels.
    by : str, optional
        A categorical covariate of a meta-regression fit: rows sorted by its levels (unless
        ``sort_by`` is given) and a summary diamond per level (the summary point at that
        level, other covariates at their reference level) under the overall summary.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes (sensitivity, specificity). The observed points form a scatter collection
        labelled ``"Observed"`` with one point per row.
    """
    obs = Q.observed(fit, ci=ci)
    if by is not None:  # per-subgroup diamonds (issue 13)
        if by not in fit.design.levels:
            raise SpecError(
                f"by= {by!r} must be a categorical covariate of the fit's formula (fit a "
                f"meta-regression with formula='~ {by}'); categorical covariates are "
                f"{list(fit.design.levels) or 'none'}"
            )
        sort_by = by if sort_by is None else sort_by
    grouped = fit.levels == 3 if group_by_study is None else bool(group_by_study)
    entries = _row_order(fit, obs, sort_by, grouped)
    names = _study_names(fit, labels)
    models = obs["model"].astype(str).to_numpy()
    study_idx = fit.data.study_index
    multi = np.bincount(study_idx) > 1
    ylabels, ypos_row = [], {}
    y = 0.0
    ys_header = []
    for kind, val in entries:
        if kind == "header":
            ylabels.append((y, names[val], True))
            ys_header.append(y)
        else:
            s = study_idx[val]
            if grouped and multi[s]:
                text = f"   {models[val]}"
            elif multi[s]:
                text = f"{names[s]} | {models[val]}"
            else:
                text = names[s]
            # in grouped mode a single-row study is its own group: bold, with a separator
            single = grouped and not multi[s]
            if single:
                ys_header.append(y)
            ylabels.append((y, text, single))
            ypos_row[val] = y
        y -= 1.0
    pooled_rows = []
    if show_pooled or show_predictive:
        y -= 0.5
        mu_se, mu_sp = Q._linear_predictor(fit, at)
        pooled = {
            "sensitivity": Q._interval(lk.inverse(mu_se, fit.spec.link).ravel(), ci),
            "specificity": Q._interval(lk.inverse(mu_sp, fit.spec.link).ravel(), ci),
        }
        if show_pooled:
            pooled_rows.append(("pooled", y))
            ylabels.append((y, f"Summary{_at_text(fit, at)}", True))
            y -= 1.0
        for lv in fit.design.levels[by] if by is not None and show_pooled else []:
            l_se, l_sp = Q._linear_predictor(fit, {**(at or {}), by: lv})
            pooled[f"by:{lv}"] = {
                "sensitivity": Q._interval(lk.inverse(l_se, fit.spec.link).ravel(), ci),
                "specificity": Q._interval(lk.inverse(l_sp, fit.spec.link).ravel(), ci),
            }
            pooled_rows.append((f"by:{lv}", y))
            ylabels.append((y, f"Summary ({by}={lv})", True))
            y -= 1.0
        if show_predictive:
            pr = Q.predictive(fit, ci=ci, at=at).loc["new study"]
            pred = {
                q: (pr.loc[q, "median"], pr.loc[q, "lower"], pr.loc[q, "upper"])
                for q in ("sensitivity", "specificity")
            }
            pooled_rows.append(("predictive", y))
            ylabels.append((y, "Prediction (new study)", True))
            y -= 1.0
    n_lines = len(ylabels)
    if figsize is None:
        figsize = (7.2 if annotate else 6.0, 1.3 + 0.17 * n_lines)
    shr = Q.shrunken(fit, ci=ci) if show_shrunken else None
    rows = np.array(sorted(ypos_row))
    yrow = np.array([ypos_row[r] for r in rows])
    nsize = (obs["n_diseased"], obs["n_nondiseased"])
    with _style():
        fig, axes = plt.subplots(
            1, 2, figsize=figsize, sharey=True, gridspec_kw={"wspace": 0.55 if annotate else 0.08}
        )
        off = 0.22 if show_shrunken else 0.0
        for j, (ax, q) in enumerate(zip(axes, ("sensitivity", "specificity"), strict=True)):
            n = nsize[j].to_numpy(dtype=float)[rows]
            area = 6.0 + 40.0 * np.sqrt(n / n.max())
            ax.hlines(
                yrow + off,
                obs[f"{q}_lower"].to_numpy()[rows],
                obs[f"{q}_upper"].to_numpy()[rows],
                color="black",
                lw=0.8,
            )
            ax.scatter(
                obs[q].to_numpy()[rows],
                yrow + off,
                s=area,
                marker="s",
                color="black",
                zorder=3,
                label="Observed",
                linewidths=0,
            )
            if shr is not None:
                ax.hlines(
                    yrow - off,
                    shr[f"{q}_lower"].to_numpy()[rows],
                    shr[f"{q}_upper"].to_numpy()[rows],
                    color=PALETTE[0],
                    lw=0.8,
                )
                ax.scatter(
                    shr[q].to_numpy()[rows],
                    yrow - off,
                    s=12,
                    marker="o",
                    facecolor="white",
                    edgecolor=PALETTE[0],
                    linewidths=0.9,
                    zorder=3,
                    label="Posterior (shrunken)",
                )
            for kind, yy in pooled_rows:
                if kind.startswith("by:"):
                    med, lo, hi = pooled[kind][q]
                    ax.add_patch(
                        Polygon(
                            [[lo, yy], [med, yy + 0.35], [hi, yy], [med, yy - 0.35]],
                            closed=True,
                            facecolor=PALETTE[0],
                            edgecolor=PALETTE[0],
                            label="Summary",
                            zorder=3,
                        )
                    )
                elif kind == "pooled":
                    med, lo, hi = pooled[q]
                    ax.add_patch(
                        Polygon(
                            [[lo, yy], [med, yy + 0.35], [hi, yy], [med, yy - 0.35]],
                            closed=True,
                            facecolor=PALETTE[1],
                            edgecolor=PALETTE[1],
                            label="Summary",
                            zorder=3,
                        )
                    )
                    ax.axvline(med, color=PALETTE[1], lw=0.7, ls=":", zorder=1)
                else:
                    med, lo, hi = pred[q]
                    ax.hlines(yy, lo, hi, color=PALETTE[2], lw=2.0, label="Prediction interval")
                    ax.plot([med], [yy], "|", color=PALETTE[2], ms=8, mew=1.5)
            ax.set_xlim(*xlim)
            ax.set_xlabel(q.capitalize())
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="y", length=0)
            for yh in ys_header[1:]:
                ax.axhline(yh + 0.5, color="0.85", lw=0.5, zorder=0)
            if annotate:
                tr = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
                vals = obs[[q, f"{q}_lower", f"{q}_upper"]].to_numpy()
                for r, yy in zip(rows, yrow, strict=True):
                    ax.text(1.03, yy, _ci_text(*vals[r]), transform=tr, va="center", fontsize=6.5)
                for kind, yy in pooled_rows:
                    if kind.startswith("by:"):
                        v = pooled[kind][q]
                    else:
                        v = pooled[q] if kind == "pooled" else pred[q]
                    ax.text(
                        1.03,
                        yy,
                        _ci_text(*v),
                        transform=tr,
                        va="center",
                        fontsize=6.5,
                        fontweight="bold",
                    )
                ax.text(
                    1.03,
                    1.0,
                    f"{q[:4].capitalize()}. ({ci:.0%} CI)",
                    transform=ax.transAxes,
                    va="bottom",
                    fontsize=6.5,
                    fontweight="bold",
                )
        ax0 = axes[0]
        ax0.set_yticks([t[0] for t in ylabels])
        ax0.set_yticklabels([t[1] for t in ylabels])
        for tick, (_, _, bold) in zip(ax0.get_yticklabels(), ylabels, strict=True):
            if bold:
                tick.set_fontweight("bold")
        ax0.set_ylim(y + 0.4, 0.6)
        if show_counts:
            ax0.set_ylim(y + 0.4, 1.4)
            draw_count_columns(fig, ax0, obs, rows, yrow)
        handles = [
            Line2D(
                [],
                [],
                marker="s",
                color="black",
                ls="-",
                lw=0.8,
                ms=4,
                label=f"Observed ({ci:.0%} exact CI)",
            ),
        ]
        if show_shrunken:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    color=PALETTE[0],
                    mfc="white",
                    lw=0.8,
                    ms=4,
                    label=f"Posterior, shrunken ({ci:.0%} CrI)",
                )
            )
        if show_pooled:
            handles.append(
                Line2D([], [], marker="D", color=PALETTE[1], ls="none", ms=5, label="Summary")
            )
        if show_predictive:
            handles.append(
                Line2D([], [], color=PALETTE[2], lw=2.0, label=f"{ci:.0%} prediction interval")
            )
        where = _where(fit, at) if (show_pooled or show_predictive) else ""
        foot = 0.22 if where else 0.0  # inches for the footnote line
        fig.legend(
            handles=handles,
            loc="lower center",
            ncol=len(handles),
            bbox_to_anchor=(0.5, foot / figsize[1]),
        )
        if where:
            fig.text(
                0.5,
                0.04 / figsize[1],
                f"Summary and prediction {where}",
                ha="center",
                va="bottom",
                fontsize=6.5,
            )
        fig.subplots_adjust(
            bottom=min(0.45, (0.72 + foot) / figsize[1]), top=1.0 - 0.3 / figsize[1]
        )
        if title:
            fig.suptitle(title)
    return fig


def draw_count_columns(
    fig: Figure, ax: Axes, counts: pd.DataFrame, rows: np.ndarray, yrow: np.ndarray
) -> None:
    """Write the counts TP, FP, FN, TN of ``rows`` as text columns left of ``ax``.

    ``counts`` has the columns ``TP``, ``FP``, ``FN``, ``TN`` (one row per table); the row
    ``rows[i]`` is written at height ``yrow[i]`` (data coordinates) and the headers at the top
    of the axes. The y tick labels move left to make room.
    """
    width = 24.0  # points per column
    cols = ("TP", "FP", "FN", "TN")
    ax.tick_params(axis="y", pad=width * len(cols) + 6)
    base = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transData)
    top = mpl.transforms.blended_transform_factory(ax.transAxes, ax.transAxes)
    for j, c in enumerate(cols):
        dx = -(len(cols) - j) * width / 72.0 + 0.02
        shift = mpl.transforms.ScaledTranslation(dx, 0, fig.dpi_scale_trans)
        vals = counts[c].to_numpy()[rows]
        for v, yy in zip(vals, yrow, strict=True):
            ax.text(0, yy, f"{int(v)}", transform=base + shift, va="center", fontsize=6.5)
        ax.text(0, 0.995, c, transform=top + shift, va="top", fontsize=6.5, fontweight="bold")


# --------------------------------------------------------------------------------------------
# SROC plot
# --------------------------------------------------------------------------------------------
def _sroc_groups(
    fit: DTAFit | Sequence[DTAFit],
    labels: Sequence[str] | None,
    by: str | None,
    at: Mapping[str, Any] | None,
) -> list[tuple[str | None, DTAFit, dict[str, Any], np.ndarray]]:
    if isinstance(fit, Sequence) and not isinstance(fit, (str, bytes)):
        fits = list(fit)
        if by is not None:
            raise SpecError("give either several fits or by=, not both")
        if labels is None:
            labels = [f"Fit {i + 1}" for i in range(len(fits))]
        if len(labels) != len(fits):
            raise SpecError(f"{len(labels)} labels for {len(fits)} fits")
        return [
            (str(lb), f, dict(at or {}), np.ones(f.data.n_rows, dtype=bool))
            for lb, f in zip(labels, fits, strict=True)
        ]
    groups = Q._groups(fit, at, by)
    if by is not None and labels is not None:
        if len(labels) != len(groups):
            raise SpecError(f"{len(labels)} labels for {len(groups)} levels of {by}")
        return [(str(lb), fit, a, m) for lb, (_, a, m) in zip(labels, groups, strict=True)]
    if by is None and labels is not None:
        return [(str(labels[0]), fit, groups[0][1], groups[0][2])]
    return [(lb, fit, a, m) for lb, a, m in groups]


@register_figure("sroc")
def plot_sroc(
    fit: DTAFit | Sequence[DTAFit],
    *,
    labels: Sequence[str] | None = None,
    by: str | None = None,
    at: Mapping[str, Any] | None = None,
    method: str = "hsroc",
    ci: float = 0.95,
    levels: Sequence[float] = (0.95,),
    extrapolate: bool = False,
    show_points: bool = True,
    show_band: bool = True,
    show_confidence: bool = True,
    show_prediction: bool = True,
    show_diagonal: bool = False,
    colors: Sequence[str] | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (4.6, 4.6),
    legend: bool = True,
    title: str | None = None,
) -> Figure:
    """SROC plot: study points, summary point, credible and prediction regions, curve and band.

    Study points (one per 2x2 table, area proportional to its size) are drawn at
    ``(1 - specificity, sensitivity)``; the summary point is the posterior median, with the
    credible region of the summary point (solid) and the prediction region of a new study
    (dashed) from :func:`bayesdta.quantities.regions`; the SROC curve (default: HSROC,
    Harbord et al. 2007) with its pointwise credible band from
    :func:`bayesdta.quantities.sroc`, over the FPR range of the tables unless ``extrapolate``
    (:func:`bayesdta.quantities.fpr_support`: a table with FP = 0 enters with its posterior
    FPR, so the curve does not run down the y-axis to (0, 0)); the legend gives the AUC with
    its credible interval and, for a meta-regression, where the summary point sits ("at
    reference levels (...)").

    Parameters
    ----------
    fit : DTAFit or sequence of DTAFit
        One fit, or several (e.g. subgroup fits or targets) drawn in one plot.
    labels : sequence of str, optional
        Names of the fits, or of the levels of ``by``.
    by : str, optional
        Categorical covariate of a meta-regression: one curve, summary point and regions per
        level (points coloured by level).
    at : mapping, optional
        Other covariate values (see :mod:`bayesdta.quantities`).
    method : str
        SROC definition (see :func:`bayesdta.quantities.sroc`).
    ci : float
        Level of the curve's band and of the AUC interval.
    levels : sequence of float
        Levels of the credible and prediction regions.
    extrapolate : bool
        Draw the curve over FPR in [0, 1] instead of the FPR range of the tables.
    show_points, show_band, show_confidence, show_prediction, show_diagonal : bool
        Which elements to draw.
    colors : sequence of str, optional
        One colour per group (default: :data:`PALETTE`).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes.
    figsize : tuple of float
        Figure size when ``ax`` is not given.
    legend : bool
        Draw the legend.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    groups = _sroc_groups(fit, labels, by, at)
    colors = list(colors) if colors is not None else list(PALETTE)
    levels = [float(v) for v in np.atleast_1d(levels)]
    n_max = max(
        float(np.max((f.data.n_diseased + f.data.n_nondiseased)[m])) for _, f, _, m in groups
    )
    styles = ["--", ":", "-."]
    with _style():
        fig, ax = _figure(ax, figsize)
        handles: list[Any] = []
        for i, (label, f, a, mask) in enumerate(groups):
            c = colors[i % len(colors)]
            prefix = f"{label}: " if label is not None else ""
            d = f.data
            if show_points:
                n = (d.n_diseased + d.n_nondiseased)[mask].astype(float)
                ax.scatter(
                    (d.fp / d.n_nondiseased)[mask],
                    (d.tp / d.n_diseased)[mask],
                    s=8.0 + 120.0 * n / n_max,
                    facecolor="none",
                    edgecolor=c,
                    linewidths=0.8,
                    alpha=0.8,
                    zorder=2,
                    label=f"{prefix}Studies",
                )
            curve = Q.sroc(f, method=method, ci=ci, at=a, extrapolate=extrapolate)
            auc = Q.auc(f, ci=ci, method=method, at=a).loc["auc"]
            auc_txt = _ci_text(auc["median"], auc["lower"], auc["upper"])
            (line,) = ax.plot(
                curve["fpr"],
                curve["median"],
                color=c,
                lw=1.4,
                zorder=4,
                label=f"{prefix}SROC curve, AUC {auc_txt}",
            )
            handles.append(line)
            if show_band:
                ax.fill_between(
                    curve["fpr"],
                    curve["lower"],
                    curve["upper"],
                    color=c,
                    alpha=0.15,
                    lw=0,
                    zorder=1,
                    label=f"{prefix}{ci:.0%} credible band",
                )
            reg = Q.regions(f, levels=levels, at=a)
            for k, lv in enumerate(levels):
                if show_confidence:
                    pts = reg["confidence"][lv]
                    ax.plot(
                        pts[:, 0],
                        pts[:, 1],
                        color=c,
                        lw=1.0,
                        ls="-",
                        zorder=5,
                        label=f"{prefix}{lv:.0%} credible region",
                    )
                if show_prediction:
                    pts = reg["prediction"][lv]
                    ax.plot(
                        pts[:, 0],
                        pts[:, 1],
                        color=c,
                        lw=1.0,
                        ls=styles[k % len(styles)],
                        zorder=5,
                        label=f"{prefix}{lv:.0%} prediction region",
                    )
            sx, sy = reg["summary"]
            ax.scatter(
                [sx],
                [sy],
                s=40,
                marker="o",
                color=c,
                edgecolor="black",
                linewidths=0.8,
                zorder=6,
                label=f"{prefix}Summary point",
            )
        # style proxies shared by all groups
        neutral = colors[0] if len(groups) == 1 else "0.3"
        summary_label = "Summary point"
        if not (isinstance(fit, Sequence) and not isinstance(fit, (str, bytes))):
            where = _where(fit, {**dict(at or {}), by: "x"} if by else at)
            if where and by:
                _, _, rest = where.partition(" (other covariates: ")
                where = f"per {by} level" + (
                    f" (other covariates at {rest.rstrip(')')})" if rest else ""
                )
            if where:
                summary_label = _wrap(f"Summary point {where}", 48)
        proxies = [
            Line2D(
                [], [], marker="o", ls="none", mfc=neutral, mec="black", ms=6, label=summary_label
            ),
        ]
        if show_confidence:
            proxies += [
                Line2D([], [], color=neutral, lw=1.0, ls="-", label=f"{lv:.0%} credible region")
                for lv in levels
            ]
        if show_prediction:
            proxies += [
                Line2D(
                    [],
                    [],
                    color=neutral,
                    lw=1.0,
                    ls=styles[k % len(styles)],
                    label=f"{lv:.0%} prediction region",
                )
                for k, lv in enumerate(levels)
            ]
        if show_band:
            proxies.append(Patch(facecolor=neutral, alpha=0.15, label=f"{ci:.0%} credible band"))
        if show_points:
            proxies.append(
                Line2D(
                    [],
                    [],
                    marker="o",
                    ls="none",
                    mfc="none",
                    mec=neutral,
                    ms=6,
                    label="Studies (area \u221d n)",
                )
            )
        if show_diagonal:
            ax.plot([0, 1], [0, 1], color="0.8", lw=0.6, ls=":", zorder=0)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("1 \u2212 specificity (false-positive rate)")
        ax.set_ylabel("Sensitivity")
        if legend:
            ax.legend(handles=handles + proxies, loc="lower right", fontsize=6.5)
        if title:
            ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# Fagan nomogram
# --------------------------------------------------------------------------------------------
_PROB_TICKS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99, 99.5, 99.9)
_LR_TICKS = (
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    20,
    50,
    100,
    200,
    500,
    1000,
)


def _clip_logit(p: float | np.ndarray) -> np.ndarray:
    return special.logit(np.clip(p, 1e-3, 1 - 1e-3))


@register_figure("fagan")
def plot_fagan(
    fit: DTAFit,
    *,
    pretest: float | Sequence[float] = 0.2,
    ci: float = 0.95,
    at: Mapping[str, Any] | None = None,
    predictive: bool = False,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (4.2, 5.0),
    title: str | None = None,
) -> Figure:
    """Fagan nomogram with credible intervals of the likelihood ratios and post-test probabilities.

    The three scales are pre-test probability (left, ``-logit(p)``), likelihood ratio (middle,
    ``log(LR) / 2``) and post-test probability (right, ``logit(p')``), so that a straight line
    from the pre-test probability through the LR meets the post-test probability
    (``logit p' = logit p + log LR``). The lines use the posterior median LR+ (positive result)
    and LR- (negative result) of the summary point; the shaded wedges span their credible
    intervals. Values from :func:`bayesdta.quantities.fagan`.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    pretest : float or sequence of float
        Pre-test probabilities (prevalences) in (0, 1): one pair of lines (positive and
        negative result) per value, e.g. ``[0.1, 0.2, 0.5]``.
    ci : float
        Level of the intervals.
    at : mapping, optional
        Covariate values of a meta-regression (default: the reference levels).
    predictive : bool
        Use a new study's se/sp (wider intervals) instead of the summary point.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes.
    figsize : tuple of float
        Figure size when ``ax`` is not given.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
        One line per pre-test probability and result (labelled ``"LR+ ..."`` / ``"LR- ..."``
        in the legend), one marker per pre-test probability on the left scale.
    """
    values = np.atleast_1d(np.asarray(pretest, dtype=float)).ravel()
    if values.size == 0:
        raise SpecError("pretest must name at least one probability")
    for v in values:
        if not 0.0 < float(v) < 1.0:
            raise SpecError(f"pretest must lie strictly between 0 and 1, got {float(v):g}")
    table = Q.fagan(fit, pretest=values, ci=ci, at=at, predictive=predictive)
    attrs = table.attrs
    lrp, lrn = attrs["lr_positive"], attrs["lr_negative"]
    several = values.size > 1
    with _style():
        fig, ax = _figure(ax, figsize)
        lr_end = math.log(_LR_TICKS[-1]) / 2.0
        for x, end in ((-1.0, 6.95), (0.0, lr_end + 0.1), (1.0, 6.95)):
            ax.plot([x, x], [-end, end], color="black", lw=0.9, zorder=1)
        for t in _PROB_TICKS:
            p = t / 100.0
            for x, yy, ha, dx in (
                (-1.0, -special.logit(p), "right", -0.04),
                (1.0, special.logit(p), "left", 0.04),
            ):
                ax.plot([x, x + (0.03 if ha == "left" else -0.03)], [yy, yy], color="black", lw=0.7)
                ax.text(
                    x + dx + (0.02 if ha == "left" else -0.02),
                    yy,
                    f"{t:g}",
                    ha=ha,
                    va="center",
                    fontsize=6.5,
                )
        for t in _LR_TICKS:
            yy = math.log(t) / 2.0
            ax.plot([-0.03, 0.03], [yy, yy], color="black", lw=0.7)
            ax.text(0.06, yy, f"{t:g}", ha="left", va="center", fontsize=6.5)
        top = 7.4
        ax.text(-1.0, top, "Pre-test\nprobability (%)", ha="center", va="bottom", fontsize=7.5)
        ax.text(0.0, top, "Likelihood\nratio", ha="center", va="bottom", fontsize=7.5)
        ax.text(1.0, top, "Post-test\nprobability (%)", ha="center", va="bottom", fontsize=7.5)
        handles: list[Any] = []
        styles = ["-", "--", ":", "-."]
        for i, res in enumerate(table.itertuples(index=False)):
            p0 = float(res.pretest)
            y0 = -float(_clip_logit(p0))
            ls = styles[i % len(styles)] if several else "-"
            for sign, lr, post, color in (
                ("+", lrp, (res.positive, res.positive_lower, res.positive_upper), PALETTE[1]),
                (
                    "\u2212",
                    lrn,
                    (res.negative, res.negative_lower, res.negative_upper),
                    PALETTE[0],
                ),
            ):
                y_med, y_lo, y_hi = (float(_clip_logit(v)) for v in post)
                ax.fill(
                    [-1.0, 1.0, 1.0],
                    [y0, y_lo, y_hi],
                    color=color,
                    alpha=0.18 if not several else 0.08,
                    lw=0,
                    zorder=2,
                )
                head = f"Pre-test {_pct(p0)}, " if several else ""
                (line,) = ax.plot(
                    [-1.0, 1.0],
                    [y0, y_med],
                    color=color,
                    lw=1.4 if not several else 1.1,
                    ls=ls,
                    zorder=3,
                    label=(
                        f"{head}LR{sign} {_ci_text(*lr, fmt='.2f' if lr[0] < 10 else '.1f')}; "
                        f"post-test {_pct(post[0])} ({_pct(post[1])}\u2013{_pct(post[2])})"
                    ),
                )
                handles.append(line)
            ax.plot([-1.0], [y0], "o", color="black", ms=4, zorder=4)
        if not several:
            handles.insert(
                0,
                Line2D(
                    [],
                    [],
                    marker="o",
                    color="black",
                    ls="none",
                    ms=4,
                    label=f"Pre-test probability {_pct(float(values[0]))}",
                ),
            )
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-7.2, 8.6)
        ax.axis("off")
        where = _where(fit, at)
        legend_title = f"{ci:.0%} credible intervals" + (", new study" if predictive else "")
        if where:
            legend_title += "; " + ("new study " if predictive else "summary point ") + where
        ax.legend(
            handles=handles,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            fontsize=6.5,
            title=_wrap(legend_title, 70),
            title_fontsize=6.5,
        )
        if title:
            ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# LR scatter
# --------------------------------------------------------------------------------------------
@register_figure("lr_scatter")
def plot_lr_scatter(
    fit: DTAFit,
    *,
    ci: float = 0.95,
    at: Mapping[str, Any] | None = None,
    show_rows: bool = True,
    lr_positive_threshold: float = 10.0,
    lr_negative_threshold: float = 0.1,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (4.6, 4.2),
    title: str | None = None,
) -> Figure:
    """Likelihood-ratio scatter plot (LR+ against LR-) with the MIDAS quadrants.

    The quadrants follow the convention of Stata's MIDAS (Dwamena 2007): LR+ > 10 and
    LR- < 0.1, "exclusion and confirmation" (left upper); LR+ > 10 only, "confirmation"
    (right upper); LR- < 0.1 only, "exclusion" (left lower); neither (right lower). The rows'
    observed LRs (0.5 added to every cell of a table with a zero cell) are drawn with the
    summary LRs and their credible intervals (per-draw ``se / (1 - sp)`` and ``(1 - se) / sp``;
    for a meta-regression at the reference levels, as the legend says). The axes span whole
    decades with every quadrant at least a decade wide, so each quadrant label sits inside its
    quadrant even when all the LRs fall on one side of a threshold.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    ci : float
        Level of the summary intervals.
    at : mapping, optional
        Covariate values of a meta-regression.
    show_rows : bool
        Draw the rows' observed LRs.
    lr_positive_threshold, lr_negative_threshold : float
        Quadrant boundaries (10 and 0.1).
    ax : matplotlib.axes.Axes, optional
        Draw into these axes.
    figsize : tuple of float
        Figure size when ``ax`` is not given.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    d = fit.data
    tp, fp, fn, tn, _ = st.continuity_correction(d.tp, d.fp, d.fn, d.tn)
    obs = st.likelihood_ratios(tp / (tp + fn), tn / (tn + fp))
    mu_se, mu_sp = Q._linear_predictor(fit, at)
    pooled_se = lk.inverse(mu_se, fit.spec.link).ravel()
    lrs = st.likelihood_ratios(pooled_se, lk.inverse(mu_sp, fit.spec.link).ravel())
    pos = Q._interval(lrs["lr_positive"], ci)
    neg = Q._interval(lrs["lr_negative"], ci)
    xs = np.concatenate([obs["lr_negative"], [neg[1], neg[2]]])
    ys = np.concatenate([obs["lr_positive"], [pos[1], pos[2]]])
    # whole decades, with every quadrant at least one decade wide (the quadrant labels sit
    # inside their quadrant even when all the LRs fall on one side of a threshold)
    tx, ty = math.log10(lr_negative_threshold), math.log10(lr_positive_threshold)

    def decades(lo: float, hi: float, t: float, share: float) -> tuple[float, float]:
        a = min(math.floor(math.log10(lo)), math.floor(t) - 1)
        b = max(math.ceil(math.log10(hi)), math.ceil(t) + 1)
        # widen the smaller side until it holds ``share`` of the axis (room for the labels)
        while min(t - a, b - t) < share * (b - a):
            if t - a < b - t:
                a -= 1
            else:
                b += 1
        return 10.0**a, 10.0**b

    xlim = decades(max(xs.min(), 1e-6) / 1.5, xs.max() * 1.5, tx, 0.4)
    ylim = decades(max(ys.min(), 1e-3) / 1.5, ys.max() * 1.5, ty, 0.25)
    with _style():
        fig, ax = _figure(ax, figsize)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.axvline(lr_negative_threshold, color=_GREY, lw=0.7, ls="--", zorder=0)
        ax.axhline(lr_positive_threshold, color=_GREY, lw=0.7, ls="--", zorder=0)
        if show_rows:
            ax.scatter(
                obs["lr_negative"],
                obs["lr_positive"],
                s=14,
                facecolor="none",
                edgecolor=PALETTE[0],
                linewidths=0.8,
                zorder=2,
                label="Studies (observed)",
            )
        ax.errorbar(
            [neg[0]],
            [pos[0]],
            xerr=[[neg[0] - neg[1]], [neg[2] - neg[0]]],
            yerr=[[pos[0] - pos[1]], [pos[2] - pos[0]]],
            fmt="D",
            color=PALETTE[1],
            ms=6,
            mec="black",
            lw=1.2,
            capsize=2.5,
            zorder=4,
            label=_wrap(
                f"Summary{' ' + _where(fit, at) if _where(fit, at) else ''}: "
                f"LR+ {_ci_text(*pos, fmt='.1f')}, LR\u2212 {_ci_text(*neg, fmt='.2f')} "
                f"({ci:.0%} credible intervals)",
                70,
            ),
        )
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        # quadrant labels in data coordinates: the outer corners of each quadrant
        kw = {"fontsize": 6, "color": "0.3", "zorder": 1}
        pad = 10**0.08
        x_lo, x_hi = xlim[0] * pad, xlim[1] / pad
        y_lo, y_hi = ylim[0] * pad, ylim[1] / pad
        for x, y, ha, va, text in (
            (x_lo, y_hi, "left", "top", "Left upper quadrant\nexclusion & confirmation"),
            (x_hi, y_hi, "right", "top", "Right upper quadrant\nconfirmation only"),
            (x_lo, y_lo, "left", "bottom", "Left lower quadrant\nexclusion only"),
            (x_hi, y_lo, "right", "bottom", "Right lower quadrant\nno exclusion or\nconfirmation"),
        ):
            ax.text(x, y, text, ha=ha, va=va, **kw)
        ax.set_xlabel("Negative likelihood ratio (LR\u2212)")
        ax.set_ylabel("Positive likelihood ratio (LR+)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), fontsize=6.5)
        if title:
            ax.set_title(title)
    return fig


# --------------------------------------------------------------------------------------------
# Deeks' funnel plot
# --------------------------------------------------------------------------------------------
@register_figure("deeks")
def plot_deeks(
    fit_or_data: DTAFit | DTAData,
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (4.6, 4.0),
    title: str | None = None,
) -> Figure:
    """Deeks' funnel plot: diagnostic odds ratio against 1/sqrt(effective sample size).

    One point per 2x2 table (area proportional to the effective sample size), the fitted WLS
    regression line of :func:`bayesdta.quantities.deeks` and its slope P-value, as in MIDAS
    (``midas ..., pubbias``). Asymmetry (a slope far from 0, ``P < 0.10``) suggests small-study
    effects.

    Parameters
    ----------
    fit_or_data : DTAFit or DTAData
        A fit or the data.
    ax : matplotlib.axes.Axes, optional
        Draw into these axes.
    figsize : tuple of float
        Figure size when ``ax`` is not given.
    title : str, optional
        Axes title (default: "Deeks' funnel plot asymmetry test").

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = Q.deeks(fit_or_data)
    x, y, w = res["x"], res["y"], res["weights"]
    yy = np.linspace(0.0, float(x.max()) * 1.05, 100)
    with _style():
        fig, ax = _figure(ax, figsize)
        ax.scatter(
            np.exp(y),
            x,
            s=8.0 + 60.0 * w / w.max(),
            facecolor="none",
            edgecolor=PALETTE[0],
            linewidths=0.8,
            zorder=3,
            label="Studies",
        )
        ax.plot(
            np.exp(res["intercept"] + res["slope"] * yy),
            yy,
            color=PALETTE[1],
            lw=1.2,
            label="Regression line",
        )
        ax.set_xscale("log")
        ax.set_ylim(bottom=0.0)
        ax.set_xlabel("Diagnostic odds ratio")
        ax.set_ylabel("1 / \u221a(effective sample size)")
        p = res["p_value"]
        ptxt = "P < .001" if p < 0.001 else f"P = {p:.2f}"
        ax.legend(
            title=f"Slope {res['slope']:.2f} (SE {res['se_slope']:.2f}), {ptxt}",
            loc="upper right",
            title_fontsize=6.5,
        )
        ax.set_title(title or "Deeks' funnel plot asymmetry test")
    return fig


# --------------------------------------------------------------------------------------------
# Influence
# --------------------------------------------------------------------------------------------
@register_figure("influence")
def plot_influence(
    fit: DTAFit,
    *,
    result: pd.DataFrame | None = None,
    k_threshold: float = 0.7,
    labels: str | Mapping[str, str] | None = None,
    show_conditional: bool = False,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
    **influence_kwargs: Any,
) -> Figure:
    """Study influence: Pareto k of PSIS-LOO by study and the change in the summary point.

    Left: Pareto k of each study's leave-one-study-out PSIS-LOO (Vehtari et al. 2017) on the
    integrated study likelihood (:func:`bayesdta.quantities.loo_integrated`, the same k as
    :meth:`DTAFit.loo` and the report's tables), with 0.7 (unreliable importance sampling)
    marked. Right: for refitted studies, the change of the posterior median summary
    sensitivity and specificity when the study is left out (exact refits of
    :func:`bayesdta.quantities.influence`); without refits, each study's ``elpd_loo``. One
    legend below both panels.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    result : pandas.DataFrame, optional
        Output of :func:`bayesdta.quantities.influence` (computed if not given, with
        ``influence_kwargs``; the default ``refit="none"`` here keeps the plot cheap).
    k_threshold : float
        Pareto k marked as the reliability threshold.
    labels : str or mapping, optional
        Study display names (see :func:`plot_forest`).
    show_conditional : bool
        Also draw (crosses) the Pareto k of the PSIS-LOO conditional on each study's own
        parameters (``DTAFit.loo(integrated=False)``), a diagnostic of that approximation only.
    figsize : tuple of float, optional
        Figure size.
    title : str, optional
        Figure title.
    **influence_kwargs
        Passed to :func:`bayesdta.quantities.influence` when ``result`` is None.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if result is None:
        influence_kwargs.setdefault("refit", "none")
        result = Q.influence(fit, k_threshold=k_threshold, **influence_kwargs)
    names = dict(zip(fit.data.studies, _study_names(fit, labels), strict=True))
    ylab = [names.get(s, s) for s in result.index]
    yy = -np.arange(len(result), dtype=float)
    k = result["pareto_k"].to_numpy(dtype=float)
    refitted = result["refitted"].to_numpy(dtype=bool)
    if figsize is None:
        figsize = (6.4, 1.5 + 0.16 * len(result))
    with _style():
        fig, (a1, a2) = plt.subplots(
            1, 2, figsize=figsize, sharey=True, gridspec_kw={"wspace": 0.08}
        )
        high = k > k_threshold
        a1.hlines(yy, np.minimum(k, 0.0), k, color="0.75", lw=0.8)
        if show_conditional and "pareto_k_conditional" in result:
            a1.scatter(
                result["pareto_k_conditional"].to_numpy(dtype=float),
                yy,
                s=12,
                marker="x",
                color="0.55",
                linewidths=0.8,
                zorder=2,
                label="conditional on \u03b8 (DTAFit.loo)",
            )
        a1.scatter(
            k[~high], yy[~high], s=14, color=PALETTE[0], zorder=3, label=f"k \u2264 {k_threshold:g}"
        )
        a1.scatter(
            k[high], yy[high], s=14, color=PALETTE[1], zorder=3, label=f"k > {k_threshold:g}"
        )
        a1.axvline(k_threshold, color=PALETTE[1], ls="--", lw=0.8)
        a1.axvline(0.5, color=_GREY, ls=":", lw=0.8)
        a1.set_xlabel("Pareto k (leave-one-study-out PSIS-LOO)")
        a1.set_yticks(yy)
        a1.set_yticklabels(ylab)
        a1.tick_params(axis="y", length=0)
        if refitted.any():
            ds = result["delta_sensitivity"].to_numpy(dtype=float)
            dp = result["delta_specificity"].to_numpy(dtype=float)
            a2.axvline(0.0, color=_GREY, lw=0.8)
            a2.scatter(
                ds[refitted],
                yy[refitted] + 0.15,
                s=16,
                marker="o",
                color=PALETTE[0],
                zorder=3,
                label="Sensitivity",
            )
            a2.scatter(
                dp[refitted],
                yy[refitted] - 0.15,
                s=16,
                marker="s",
                color=PALETTE[2],
                zorder=3,
                label="Specificity",
            )
            a2.set_xlabel("Change in summary when left out (without \u2212 with)")
        else:
            e = result["elpd_loo"].to_numpy(dtype=float)
            a2.hlines(yy, e.min(), e, color="0.75", lw=0.8)
            a2.scatter(e, yy, s=14, color=PALETTE[0], zorder=3)
            a2.set_xlabel("elpd_loo of the study (integrated PSIS-LOO)")
        a2.tick_params(axis="y", length=0)
        a1.set_ylim(yy.min() - 0.7, 0.7)
        # one legend below both panels (legends above the panels overprinted each other)
        handles, texts = [], []
        for ax in (a1, a2):
            h, t = ax.get_legend_handles_labels()
            handles += h
            texts += t
        h_in = figsize[1]
        fig.legend(handles, texts, loc="lower center", ncol=min(len(handles), 4), fontsize=6.5)
        fig.subplots_adjust(
            bottom=min(0.5, 0.78 / h_in), top=1.0 - (0.45 if title else 0.12) / h_in
        )
        if title:
            fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------
# Posterior predictive check
# --------------------------------------------------------------------------------------------
@register_figure("ppc")
def plot_ppc(
    fit: DTAFit,
    *,
    seed: int | None = 0,
    ci: float = 0.95,
    mixed: bool = False,
    scale: str = "count",
    figsize: tuple[float, float] = (6.6, 3.4),
    title: str | None = None,
) -> Figure:
    """Posterior predictive check: observed against replicated TP and TN of every row.

    For each 2x2 table the observed count (x) is plotted against the median of its replicates
    (y) with the ``ci`` predictive interval; tables whose observed count falls outside are
    highlighted and counted in the panel title. Replicates come from
    :func:`bayesdta.quantities.posterior_predictive` (``mixed=True`` redraws the random effects,
    a stricter check of the random-effects distribution).

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    seed : int, optional
        Seed of the replicates.
    ci : float
        Level of the predictive intervals.
    mixed : bool
        Mixed (random effects redrawn) instead of conditional replicates.
    scale : {"count", "proportion"}
        Plot counts (log axes) or proportions TP/n1 and TN/n0.
    figsize : tuple of float
        Figure size.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes (TP, TN), each with one scatter point per row.
    """
    if scale not in ("count", "proportion"):
        raise SpecError(f"scale must be 'count' or 'proportion', got {scale!r}")
    rep = Q.posterior_predictive(fit, seed=seed, mixed=mixed)
    d = fit.data
    with _style():
        fig, axes = plt.subplots(1, 2, figsize=figsize)
        for ax, name, observed, n in (
            (axes[0], "TP", d.tp, d.n_diseased),
            (axes[1], "TN", d.tn, d.n_nondiseased),
        ):
            r = rep[name].values.reshape(-1, d.n_rows).astype(float)
            o = np.asarray(observed, dtype=float)
            if scale == "proportion":
                r, o = r / n, o / n
            med, lo, hi = Q._interval(r, ci)
            out = (o < lo) | (o > hi)
            ax.vlines(o, lo, hi, color="0.7", lw=0.8, zorder=1)
            ax.scatter(
                o[~out],
                med[~out],
                s=12,
                color=PALETTE[0],
                zorder=3,
                label=f"within {ci:.0%} interval",
            )
            ax.scatter(
                o[out],
                med[out],
                s=14,
                color=PALETTE[1],
                marker="D",
                zorder=3,
                label=f"outside {ci:.0%} interval",
            )
            lim = [min(o.min(), lo.min()), max(o.max(), hi.max())]
            ax.plot(lim, lim, color="black", lw=0.7, ls="--", zorder=0)
            if scale == "count":
                ax.set_xscale("symlog", linthresh=1.0)
                ax.set_yscale("symlog", linthresh=1.0)
            what = (
                "count" if scale == "count" else ("sensitivity" if name == "TP" else "specificity")
            )
            ax.set_xlabel(f"Observed {name} {what}")
            ax.set_ylabel(f"Replicated {name} {what} (median, {ci:.0%} PI)")
            ax.set_title(f"{name}: {int((~out).sum())}/{d.n_rows} tables within the interval")
            ax.legend(loc="upper left")
        fig.tight_layout()
        if title:
            fig.suptitle(title)
            fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------
# Prior vs posterior
# --------------------------------------------------------------------------------------------
def _prior_pdf(prior: Any, x: np.ndarray) -> np.ndarray:
    """Density of a :class:`~bayesdta.priors.Prior` on the parameter's own scale."""
    kw = prior.kwargs
    if prior.dist == "Normal":
        return sps.norm.pdf(x, kw["mu"], kw["sigma"])
    if prior.dist == "HalfNormal":
        return sps.halfnorm.pdf(x, scale=kw["sigma"])
    if prior.dist == "HalfStudentT":
        return np.where(x >= 0, 2.0 * sps.t.pdf(x / kw["sigma"], kw["nu"]) / kw["sigma"], 0.0)
    if prior.dist == "HalfCauchy":
        return sps.halfcauchy.pdf(x, scale=kw["beta"])
    if prior.dist == "Exponential":
        return sps.expon.pdf(x, scale=1.0 / kw["lam"])
    if prior.dist == "LKJ":
        # 2x2 LKJ(eta): (rho + 1) / 2 ~ Beta(eta, eta)
        return 0.5 * sps.beta.pdf((x + 1.0) / 2.0, kw["eta"], kw["eta"])
    raise SpecError(f"no density for prior family {prior.dist!r}")


def _prior_range(prior: Any) -> tuple[float, float]:
    kw = prior.kwargs
    if prior.dist == "Normal":
        return kw["mu"] - 2.6 * kw["sigma"], kw["mu"] + 2.6 * kw["sigma"]
    if prior.dist == "LKJ":
        return -1.0, 1.0
    hi = {
        "HalfNormal": lambda: sps.halfnorm.ppf(0.99, scale=kw["sigma"]),
        "HalfStudentT": lambda: kw["sigma"] * sps.t.ppf(0.995, kw["nu"]),
        "HalfCauchy": lambda: sps.halfcauchy.ppf(0.95, scale=kw["beta"]),
        "Exponential": lambda: sps.expon.ppf(0.99, scale=1.0 / kw["lam"]),
    }[prior.dist]()
    return 0.0, float(hi)


def _hyperparameters(fit: DTAFit) -> list[tuple[str, np.ndarray, Any]]:
    """(panel label, posterior draws, prior) of every hyperparameter (internal scale)."""
    p = fit.posterior
    priors = fit.spec.priors
    out = []
    for o, short in (("sensitivity", "se"), ("specificity", "sp")):
        coef = p[f"beta_{o}"]
        for c in coef.coords[f"coef_{o}"].values:
            v = Q._cd(coef.sel({f"coef_{o}": c}))
            if c == "Intercept":
                out.append((f"mu_{o}", v, priors[f"mu_{o}"]))
            else:
                unit = " (per SD)" if str(c) in fit.design.scaling else ""
                out.append((f"beta_{short}[{c}]{unit}", v, priors[f"beta_{o}"]))
    names = ["tau_sensitivity", "tau_specificity", "rho"]
    if fit.levels == 3:
        names += ["tau_within_sensitivity", "tau_within_specificity", "rho_within"]
    for name in names:
        da = p[name]
        if "tau_level" in da.dims:
            for lv in da.coords["tau_level"].values:
                out.append((f"{name}[{lv}]", Q._cd(da.sel(tau_level=lv)), priors[name]))
        else:
            out.append((name, Q._cd(da), priors[name]))
    return out


def _hyper_axis_label(name: str, link: str, covariates: bool = False) -> str:
    """x-axis label of a prior-posterior panel: what the parameter is and its scale."""
    if name.startswith("mu_"):
        return f"mean {link} {name[3:]}" + (" (reference levels)" if covariates else "")
    if name.startswith("beta_"):
        return f"coefficient, {link} scale"
    if name.startswith("rho"):
        return "correlation" + (" within studies" if "within" in name else " between studies")
    if name.startswith("tau_within"):
        return f"SD within studies, {link} scale"
    if name.startswith("tau"):
        return f"SD between studies, {link} scale"
    return name


@register_figure("prior_posterior")
def plot_prior_posterior(
    fit: DTAFit,
    *,
    var_names: Sequence[str] | None = None,
    bins: int = 40,
    ncols: int = 3,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Prior and posterior densities of every hyperparameter, one panel each.

    The posterior is a density histogram of the draws, the prior the density of the family in
    ``fit.spec.priors`` (for correlations, the LKJ(eta) marginal ``(rho + 1)/2 ~ Beta(eta,
    eta)``). Coefficients of continuous covariates are shown per SD of the covariate, the scale
    on which their prior is set. A posterior that looks like its prior means the data say
    little about that parameter.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    var_names : sequence of str, optional
        Panels to show (names as in the panel titles, e.g. ``"tau_sensitivity"``); default all.
    bins : int
        Histogram bins.
    ncols : int
        Panels per row.
    figsize : tuple of float, optional
        Figure size (default: 2.2 x 1.8 inches per panel).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per parameter, each with a prior line (label ``"Prior"``) and a posterior
        histogram (label ``"Posterior"``).
    """
    panels = _hyperparameters(fit)
    if var_names is not None:
        known = [p[0] for p in panels]
        unknown = [v for v in var_names if v not in known]
        if unknown:
            raise SpecError(f"var_names {unknown} unknown; known: {known}")
        panels = [p for p in panels if p[0] in var_names]
    n = len(panels)
    ncols = max(1, min(int(ncols), n))
    nrows = math.ceil(n / ncols)
    if figsize is None:
        figsize = (2.2 * ncols, 1.8 * nrows + 0.3)
    with _style():
        fig, axes = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False)
        flat = axes.ravel()
        for ax, (name, draws, prior) in zip(flat, panels, strict=False):
            x = draws.ravel()
            lo_p, hi_p = _prior_range(prior)
            lo = min(lo_p, float(np.min(x)))
            hi = max(hi_p, float(np.max(x)))
            ax.hist(
                x, bins=bins, density=True, color=PALETTE[0], alpha=0.45, lw=0, label="Posterior"
            )
            grid = np.linspace(lo, hi, 400)
            if prior.dist == "LKJ":
                grid = np.linspace(-0.999, 0.999, 400)
            ax.plot(grid, _prior_pdf(prior, grid), color=PALETTE[1], lw=1.2, label="Prior")
            ax.set_title(f"{name}\nprior {prior}", fontsize=7)
            ax.set_xlabel(
                _hyper_axis_label(name, fit.spec.link, fit.design.has_covariates), fontsize=7
            )
            ax.set_ylabel("Density", fontsize=7)
            ax.tick_params(axis="y", labelsize=6)
        for ax in flat[n:]:
            ax.set_visible(False)
        flat[0].legend(loc="upper left", fontsize=6)
        fig.tight_layout()
        if title:
            fig.suptitle(title)
            fig.tight_layout()
    return fig
