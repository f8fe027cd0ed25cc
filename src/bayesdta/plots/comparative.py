"""Figures of a comparison of tests (:class:`bayesdta.workflows.comparative.ComparativeFit`)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..registry import register_figure

__all__ = ["plot_comparative_sroc"]


@register_figure("comparative_sroc")
def plot_comparative_sroc(
    cfit: Any,
    *,
    ci: float = 0.95,
    extrapolate: bool = False,
    show_points: bool = True,
    show_band: bool = True,
    ax: Any = None,
    figsize: tuple[float, float] = (5.2, 5.2),
    title: str | None = None,
) -> Figure:
    """Per-test SROC curves in one figure.

    For every test: its tables at ``(1 - specificity, sensitivity)`` (area proportional to
    the table's size; tables of one study joined by a thin grey line when the study evaluated
    several tests), its summary point (posterior median) with ``ci`` intervals of sensitivity
    and 1 - specificity, and its SROC curve (HSROC line of the test's mean and between-study
    covariance, :meth:`ComparativeFit.sroc`) with the pointwise credible band, drawn over the
    test's observed FPR range unless ``extrapolate``.

    Parameters
    ----------
    cfit : ComparativeFit
        The fitted comparison.
    ci : float
        Credible level of the intervals and bands.
    extrapolate : bool
        Draw every curve over the whole FPR range.
    show_points, show_band : bool
        Draw the tables / the credible bands.
    ax : matplotlib Axes, optional
        Draw into this axes.
    figsize : tuple
        Size of a new figure.
    title : str, optional
        Axes title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
    else:
        fig = ax.figure
    data = cfit.data
    tests = cfit.tests
    idx = cfit.comparative.test_index
    fpr_obs = data.fp / data.n_nondiseased
    se_obs = data.tp / data.n_diseased
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if show_points:
        study = np.asarray(data.study_index)
        for s in np.unique(study):
            rows = np.flatnonzero(study == s)
            if len(rows) > 1:
                ax.plot(fpr_obs[rows], se_obs[rows], color="0.8", lw=0.6, zorder=1)
    curves = cfit.sroc(ci=ci)
    summ = cfit.summary(ci=ci).set_index(["test", "quantity"])
    for j, t in enumerate(tests):
        c = colors[j % len(colors)]
        rows = idx == j
        if show_points:
            size = (data.n_diseased + data.n_nondiseased)[rows]
            ax.scatter(
                fpr_obs[rows],
                se_obs[rows],
                s=12 + 60 * size / size.max(),
                facecolors="none",
                edgecolors=c,
                alpha=0.7,
                zorder=2,
            )
        cur = curves[curves["test"] == t]
        if not extrapolate:
            # observed range, a zero FP count entering as 0.5 / (n0 + 1) (no run down to 0)
            f_ = (data.fp[rows] + 0.5) / (data.n_nondiseased[rows] + 1.0)
            lo, hi = float(f_.min()), float(f_.max())
            cur = cur[(cur["fpr"] >= min(lo, 0.99)) & (cur["fpr"] <= max(hi, 0.01))]
        se, sp = summ.loc[(t, "sensitivity")], summ.loc[(t, "specificity")]
        label = f"{t}: se {se['median']:.2f}, sp {sp['median']:.2f}"
        ax.plot(cur["fpr"], cur["median"], color=c, lw=1.6, label=label, zorder=3)
        if show_band:
            ax.fill_between(cur["fpr"], cur["lower"], cur["upper"], color=c, alpha=0.12, lw=0)
        x, y = 1 - sp["median"], se["median"]
        ax.errorbar(
            [x],
            [y],
            xerr=[[x - (1 - sp["upper"])], [(1 - sp["lower"]) - x]],
            yerr=[[y - se["lower"]], [se["upper"] - y]],
            fmt="o",
            color=c,
            mec="black",
            ms=7,
            zorder=4,
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("sensitivity")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(title or f"SROC by test ({cfit.spec.model} model)", fontsize=10)
    fig.tight_layout()
    return fig
