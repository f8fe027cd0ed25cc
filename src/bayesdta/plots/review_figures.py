"""Figures reviewers look for: forest plots of DOR / LR+ / LR-, QUADAS-2 summary, PCA biplot.

Each function takes a fit (``plot_quadas`` also the data), keyword-only options, and returns
the matplotlib Figure. The numbers come from :mod:`bayesdta.posterior.review_outputs`; how to
read each figure: ``docs/review_outputs.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon

from ..data.tables import DTAData
from ..exceptions import SpecError
from ..posterior import review_outputs as R
from ..registry import register_figure
from .figures import PALETTE, draw_count_columns

if TYPE_CHECKING:
    from ..inference.fit import DTAFit

__all__ = ["plot_forest_ratios", "plot_quadas", "plot_pca_biplot", "QUADAS_COLOURS"]

#: Cochrane colours of the QUADAS-2 judgements.
QUADAS_COLOURS: dict[str, str] = {"low": "#2CA02C", "unclear": "#F2C500", "high": "#D62728"}

_RC_LOCAL = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
}


def _rc():
    return mpl.rc_context(_RC_LOCAL)


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "NA"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _names(data: DTAData, labels: str | Mapping[str, str] | None) -> dict[str, str]:
    studies = list(data.studies)
    if labels is None:
        return {s: s for s in studies}
    if isinstance(labels, Mapping):
        return {s: str(labels.get(s, s)) for s in studies}
    if labels not in data.frame.columns:
        raise SpecError(f"labels= {labels!r} is not a column of the data")
    first = data.frame.groupby("study", sort=False)[labels].first()
    return {s: str(first[s]) for s in studies}


@register_figure("forest_ratios")
def plot_forest_ratios(
    fit: DTAFit,
    *,
    ci: float = 0.95,
    by: str | None = None,
    sort_by: str | None = None,
    labels: str | Mapping[str, str] | None = None,
    show_counts: bool = True,
    correction: float = 0.5,
    interval: str = "log",
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """Forest plots of the diagnostic odds ratio, LR+ and LR- of every table (log scale).

    Each row shows the observed ratio (black square) with its log-method interval
    (:func:`bayesdta.posterior.review_outputs.study_ratios`; 0.5 added to the cells of tables
    with a zero cell, marked ``†``), the counts TP, FP, FN, TN in columns at the left, and at
    the bottom the pooled posterior ratio (diamond: median and credible interval). With ``by``
    (a categorical covariate of a meta-regression fit) the rows are grouped by its levels, each
    group closed by its own diamond (the meta-regression's summary point at that level).

    Parameters
    ----------
    fit : DTAFit
        The fitted model (a meta-regression with ``by`` in its formula for subgroup diamonds).
    ci : float
        Level of the intervals.
    by : str, optional
        Categorical covariate: rows grouped by level, with a diamond per level.
    sort_by : {None, "dor", "lr_positive", "lr_negative", "study"}
        Order of the rows within a group (default: data order).
    labels : str or mapping, optional
        Column with display names of the studies, or a mapping study -> name.
    show_counts : bool
        Show the TP, FP, FN, TN columns.
    correction : float
        Continuity correction of tables with a zero cell.
    interval : {"log", "exact"}
        Intervals of the tables: log method, or exact conditional (DOR) and Koopman score
        (LRs) (see :func:`~bayesdta.posterior.review_outputs.study_ratios`); a bound at 0 or
        infinity is drawn to the edge of the panel.
    figsize : tuple of float, optional
        Figure size (default grows with the rows).
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        Three axes (DOR, LR+, LR-); the observed points are a scatter collection labelled
        ``"Observed"``, diamonds are patches labelled ``"Summary"``.
    """
    tab = R.study_ratios(fit, ci=ci, correction=correction, by=by, interval=interval)
    obs = tab[tab["kind"] == "observed"]
    pooled = tab[tab["kind"] == "pooled"]
    data = fit.data
    names = _names(data, labels)
    multi = np.bincount(data.study_index) > 1
    frame = data.frame
    if sort_by not in (None, "dor", "lr_positive", "lr_negative", "study"):
        raise SpecError(
            f"sort_by must be None, 'dor', 'lr_positive', 'lr_negative' or 'study', got {sort_by!r}"
        )

    def order(idx: np.ndarray) -> np.ndarray:
        if sort_by is None:
            return idx
        if sort_by == "study":
            key = np.asarray(obs["study"].astype(str))[idx]
        else:
            key = obs[sort_by].to_numpy()[idx]
        return idx[np.argsort(key, kind="stable")]

    entries: list[tuple[str, Any, str]] = []  # (kind, row index or pooled label, text)
    all_rows = np.arange(data.n_rows)
    if by is None:
        entries += [("row", int(r), "") for r in order(all_rows)]
        entries.append(("pooled", "Summary", "Summary"))
    else:
        values = frame[by].astype(str).to_numpy()
        for lv in fit.design.levels[by]:
            entries.append(("header", lv, f"{by} = {lv}"))
            entries += [("row", int(r), "") for r in order(all_rows[values == lv])]
            entries.append(("pooled", f"Summary: {by}={lv}", f"Summary ({lv})"))
    ylabels = []
    y = 0.0
    ys: dict[int, float] = {}
    ypool: list[tuple[str, float]] = []
    for kind, val, text in entries:
        if kind == "row":
            s = data.study_index[val]
            name = names[data.studies[s]]
            model = str(frame["model"].iloc[val])
            label = f"{name} | {model}" if multi[s] else name
            if obs["corrected"].iloc[val]:
                label += " \u2020"
            ylabels.append((y, label, False))
            ys[val] = y
        elif kind == "header":
            ylabels.append((y, text, True))
        else:
            ylabels.append((y, text, True))
            ypool.append((val, y))
        y -= 1.0
    n_lines = len(ylabels)
    if figsize is None:
        figsize = (10.0 if show_counts else 8.5, 1.4 + 0.17 * n_lines)
    rows = np.array(sorted(ys))
    yrow = np.array([ys[r] for r in rows])
    with _rc():
        fig, axes = plt.subplots(1, 3, figsize=figsize, sharey=True, gridspec_kw={"wspace": 0.1})
        for ax, (key, disp) in zip(axes, R.RATIOS.items(), strict=True):
            v = obs[key].to_numpy(dtype=float)[rows]
            lo = obs[f"{key}_lower"].to_numpy(dtype=float)[rows]
            hi = obs[f"{key}_upper"].to_numpy(dtype=float)[rows]
            finite = np.concatenate(
                [v, lo, hi, pooled[[f"{key}_lower", f"{key}_upper"]].to_numpy(float).ravel()]
            )
            finite = finite[np.isfinite(finite) & (finite > 0)]
            x_lo, x_hi = (finite.min() / 1.5, finite.max() * 1.5) if finite.size else (0.1, 10)
            # exact / score intervals of zero counts reach 0 or infinity: drawn to the edge
            ax.hlines(
                yrow,
                np.where(lo > 0, lo, x_lo),
                np.where(np.isfinite(hi), hi, x_hi),
                color="black",
                lw=0.8,
            )
            ax.scatter(v, yrow, s=14, marker="s", color="black", zorder=3, label="Observed")
            for label, yy in ypool:
                med = float(pooled.loc[label, key])
                plo = float(pooled.loc[label, f"{key}_lower"])
                phi = float(pooled.loc[label, f"{key}_upper"])
                colour = PALETTE[1] if label == "Summary" else PALETTE[0]
                ax.add_patch(
                    Polygon(
                        [[plo, yy], [med, yy + 0.35], [phi, yy], [med, yy - 0.35]],
                        closed=True,
                        facecolor=colour,
                        edgecolor=colour,
                        label="Summary",
                        zorder=3,
                    )
                )
                if label == "Summary":
                    ax.axvline(med, color=colour, lw=0.7, ls=":", zorder=1)
            ax.set_xscale("log")
            ax.axvline(1.0, color="0.6", lw=0.6, zorder=0)
            ax.set_xlabel(f"{disp} (log scale)")
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="y", length=0)
            ax.set_xlim(x_lo, x_hi)
        ax0 = axes[0]
        ax0.set_yticks([t[0] for t in ylabels])
        ax0.set_yticklabels([t[1] for t in ylabels])
        for tick, (_, _, bold) in zip(ax0.get_yticklabels(), ylabels, strict=True):
            if bold:
                tick.set_fontweight("bold")
        ax0.set_ylim(y + 0.4, 0.6 if not show_counts else 1.4)
        if show_counts:
            draw_count_columns(fig, ax0, obs, rows, yrow)
        handles = [
            Line2D(
                [], [], marker="s", color="black", lw=0.8, ms=4, label=f"Observed ({ci:.0%} CI)"
            ),
        ]
        if by is None:
            handles.append(
                Line2D([], [], marker="D", color=PALETTE[1], ls="none", ms=5, label="Summary")
            )
        else:
            handles.append(
                Line2D(
                    [], [], marker="D", color=PALETTE[0], ls="none", ms=5, label=f"Summary by {by}"
                )
            )
        fig.legend(handles=handles, loc="lower center", ncol=len(handles))
        foot = "\u2020 0.5 added to every cell (a zero cell)" if obs["corrected"].any() else ""
        if foot:
            fig.text(0.99, 0.01, foot, ha="right", va="bottom", fontsize=6)
        left = (1.6 + (1.45 if show_counts else 0.0)) / figsize[0]
        fig.subplots_adjust(
            left=min(0.5, left),
            right=0.98,
            bottom=min(0.4, 0.7 / figsize[1]),
            top=1.0 - 0.3 / figsize[1],
        )
        if title:
            fig.suptitle(title)
    return fig


@register_figure("quadas")
def plot_quadas(
    fit: DTAFit | DTAData,
    *,
    figsize: tuple[float, float] | None = None,
    title: str | None = None,
) -> Figure:
    """QUADAS-2 summary plot (Cochrane style): stacked bars per domain.

    One horizontal bar per domain, split into the percentages of studies judged at low
    (green), unclear (yellow) and high (red) risk of bias -- and, in a second panel, of
    applicability concerns -- as in Cochrane reviews (:func:`quadas_summary`).

    Parameters
    ----------
    fit : DTAFit or DTAData
        A fit or data with QUADAS-2 columns.
    figsize : tuple of float, optional
        Figure size.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per judgement type present; bars are patches labelled low / unclear / high.
    """
    summ = R.quadas_summary(fit)
    kinds = [k for k in ("risk of bias", "applicability") if k in summ.index.get_level_values(0)]
    if figsize is None:
        figsize = (7.0, 0.9 + 0.35 * len(summ) + 0.3 * len(kinds))
    with _rc():
        fig, axes = plt.subplots(
            1,
            len(kinds),
            figsize=figsize,
            squeeze=False,
            gridspec_kw={"width_ratios": [4 if k == "risk of bias" else 3 for k in kinds]},
        )
        for ax, kind in zip(axes[0], kinds, strict=True):
            part = summ.loc[kind]
            ypos = np.arange(len(part))[::-1]
            left = np.zeros(len(part))
            for j in R.QUADAS_JUDGEMENTS:
                w = part[f"{j}_pct"].to_numpy(dtype=float)
                ax.barh(ypos, w, left=left, color=QUADAS_COLOURS[j], label=j, height=0.7)
                for yy, ll, ww, nn in zip(ypos, left, w, part[j].to_numpy(), strict=True):
                    if ww >= 8:
                        ax.text(
                            ll + ww / 2, yy, str(int(nn)), ha="center", va="center", fontsize=6.5
                        )
                left += w
            ax.set_yticks(ypos)
            ax.set_yticklabels(list(part.index))
            ax.set_xlim(0, 100)
            ax.set_xlabel("% of studies")
            ax.set_title("Risk of bias" if kind == "risk of bias" else "Applicability concerns")
            ax.spines["left"].set_visible(False)
            ax.tick_params(axis="y", length=0)
        handles = [
            Patch(color=QUADAS_COLOURS[j], label=j.capitalize()) for j in R.QUADAS_JUDGEMENTS
        ]
        fig.legend(handles=handles, loc="lower center", ncol=3)
        fig.subplots_adjust(bottom=min(0.45, 0.75 / figsize[1]), wspace=0.6)
        if title:
            fig.suptitle(title)
    return fig


@register_figure("pca_biplot")
def plot_pca_biplot(
    fit: DTAFit,
    *,
    components: Sequence[int] = (1, 2),
    covariates: Sequence[str] | None = None,
    include_performance: bool = False,
    colour_by: str = "sensitivity",
    max_arrows: int = 12,
    figsize: tuple[float, float] = (6.5, 5.2),
    title: str | None = None,
) -> Figure:
    """Biplot of the study-characteristics PCA (:func:`study_pca`).

    Points: the tables' scores on two components, coloured by their shrunken logit
    sensitivity (or specificity). Grey arrows: the covariates' correlations with the components
    (the ``max_arrows`` longest); coloured arrows: the correlations of the shrunken logit
    sensitivity and specificity with the components (supplementary unless
    ``include_performance``). A covariate arrow pointing along an accuracy arrow is a candidate
    for the meta-regression.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    components : pair of int
        The components on the axes (1-based).
    covariates, include_performance
        See :func:`bayesdta.posterior.review_outputs.study_pca`.
    colour_by : {"sensitivity", "specificity"}
        Colour of the points.
    max_arrows : int
        Most covariate arrows drawn (the longest).
    figsize : tuple of float
        Figure size.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if colour_by not in ("sensitivity", "specificity"):
        raise SpecError(f"colour_by must be 'sensitivity' or 'specificity', got {colour_by!r}")
    res = R.study_pca(fit, covariates=covariates, include_performance=include_performance)
    n_comp = res["scores"].shape[1]
    if n_comp < 2:
        raise SpecError(
            f"the PCA biplot needs two components, and the PCA has {n_comp} (one usable "
            f"variable: {', '.join(map(str, res['loadings'].index))}); use pca_table, or add "
            "covariates (covariates=[...])"
        )
    comps = [f"PC{int(c)}" for c in components]
    if len(comps) != 2 or any(c not in res["scores"].columns for c in comps):
        raise SpecError(
            f"components must be two of 1..{res['scores'].shape[1]}, got {list(components)}"
        )
    scores = res["scores"][comps].to_numpy()
    expl = res["explained"][comps].to_numpy()
    perf = res["performance_values"]
    col = perf[[c for c in perf.columns if c.endswith(colour_by)][0]].to_numpy()
    # covariate arrows as correlations of each variable with the component scores
    n = scores.shape[0]
    # correlation of a standardized variable with a component = loading x SD(scores)
    corr_load = res["loadings"][comps].to_numpy() * scores.std(axis=0, ddof=1)
    length = np.hypot(corr_load[:, 0], corr_load[:, 1])
    keep = np.argsort(-length)[: max(1, int(max_arrows))]
    radius = np.max(np.abs(scores)) if n else 1.0
    with _rc():
        fig, ax = plt.subplots(figsize=figsize)
        sc = ax.scatter(scores[:, 0], scores[:, 1], c=col, cmap="viridis", s=22, zorder=3)
        cb = fig.colorbar(sc, ax=ax, shrink=0.8)
        cb.set_label(f"Shrunken {perf.columns[0].split('_')[0]} {colour_by}")
        for i in keep:
            dx, dy = corr_load[i] * radius
            ax.annotate(
                "",
                xy=(dx, dy),
                xytext=(0, 0),
                arrowprops={"arrowstyle": "->", "color": "0.45", "lw": 0.8},
            )
            name = res["loadings"].index[i]
            star = "*" if res["source"][name] in set(res["in_formula"]) else ""
            ax.text(dx * 1.07, dy * 1.07, f"{name}{star}", fontsize=6, color="0.3")
        for j, (name, colour) in enumerate(
            zip(res["performance"].index, (PALETTE[1], PALETTE[0]), strict=True)
        ):
            r = res["performance"].loc[name, comps].to_numpy() * radius
            ax.annotate(
                "",
                xy=(r[0], r[1]),
                xytext=(0, 0),
                arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 1.6},
            )
            ax.text(r[0] * 1.1, r[1] * 1.1 + 0.04 * radius * j, name, fontsize=7, color=colour)
        ax.axhline(0, color="0.85", lw=0.6, zorder=0)
        ax.axvline(0, color="0.85", lw=0.6, zorder=0)
        ax.set_xlabel(f"{comps[0]} ({expl[0]:.0%} of variance)")
        ax.set_ylabel(f"{comps[1]} ({expl[1]:.0%} of variance)")
        lim = 1.35 * radius
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal", adjustable="box")
        import textwrap

        note = res["note"] + ("; * in the meta-regression formula" if res["in_formula"] else "")
        ax.text(
            0.0,
            -0.12,
            textwrap.fill(note, 110),
            transform=ax.transAxes,
            fontsize=5.5,
            va="top",
            wrap=True,
        )
        if title:
            ax.set_title(title)
    return fig
