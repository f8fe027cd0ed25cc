"""Figures of the joint multiclass model (:class:`~bayesdta.inference.multiclass.MulticlassFit`).

* ``confusion_heatmap``: the pooled (or predictive) confusion matrix ``P(pred | true)`` as a
  heatmap, each cell annotated with its posterior median and credible interval;
* ``multiclass_roc``: per class, the one-vs-rest operating point in ROC space (pooled, with
  its credible region and the prediction region for a new study) and the studies' observed
  one-vs-rest points. No SROC curve is drawn: a classifier that outputs one of K classes has
  no threshold to vary along one direction per class, and the one-vs-rest specificity of a
  class mixes the other classes' rows, so the bivariate model's HSROC curve has no analogue
  here (``docs/multiclass.md``).
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from scipy import stats as sps
from scipy.special import expit, logit

from ..registry import register_figure
from .figures import save_figure

__all__ = ["plot_confusion_heatmap", "plot_multiclass_roc", "save_figure"]

_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442")


@register_figure("confusion_heatmap")
def plot_confusion_heatmap(
    fit: Any,
    *,
    ci: float = 0.95,
    kind: str = "pooled",
    ax: Any = None,
    cmap: str = "Blues",
    digits: int = 2,
) -> Figure:
    """Heatmap of the pooled confusion matrix with credible intervals.

    Parameters
    ----------
    fit : MulticlassFit
    ci : float
        Credible-interval probability.
    kind : {"pooled", "predictive"}
        Pooled (inverse link of the mean log-odds) or predictive (a new study).
    ax : matplotlib Axes, optional
    cmap : str
        Colour map of the posterior medians.
    digits : int
        Decimals of the annotations.
    """
    df = fit.confusion(ci, kind=kind)
    classes = list(fit.classes)
    k = len(classes)
    med = df["median"].to_numpy().reshape(k, k)
    lo = df["lower"].to_numpy().reshape(k, k)
    hi = df["upper"].to_numpy().reshape(k, k)
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.6 + 1.35 * k, 1.2 + 1.1 * k))
    else:
        fig = ax.figure
    im = ax.imshow(med, cmap=cmap, vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            color = "white" if med[i, j] > 0.6 else "black"
            ax.text(
                j,
                i,
                f"{med[i, j]:.{digits}f}\n[{lo[i, j]:.{digits}f}, {hi[i, j]:.{digits}f}]",
                ha="center",
                va="center",
                fontsize=7,
                color=color,
            )
    ax.set_xticks(range(k), classes, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(k), classes, fontsize=8)
    ax.set_xlabel("predicted class", fontsize=8)
    ax.set_ylabel("true class", fontsize=8)
    what = "pooled" if kind == "pooled" else "new study (predictive)"
    ax.set_title(f"P(predicted | true), {what}: median [{ci:.0%} interval]", fontsize=8)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def _ellipse(points: np.ndarray, level: float, n: int = 100) -> np.ndarray:
    """Normal-theory region of 2-d points (logit scale) at ``level``, as a closed curve."""
    m = points.mean(axis=0)
    cov = np.cov(points.T)
    r = np.sqrt(sps.chi2.ppf(level, 2))
    t = np.linspace(0, 2 * np.pi, n)
    L = np.linalg.cholesky(cov + 1e-12 * np.eye(2))
    return m + r * (np.column_stack([np.cos(t), np.sin(t)]) @ L.T)


@register_figure("multiclass_roc")
def plot_multiclass_roc(fit: Any, *, ci: float = 0.95, ax: Any = None) -> Figure:
    """One-vs-rest operating points of every class in ROC space.

    For each class: the studies' observed (1 - specificity, sensitivity) of the one-vs-rest
    split (open circles; specificity with each study's own class mix), the pooled point of the
    joint model (filled), its credible region and the prediction region of a new study
    (dashed), both as normal-theory regions of the posterior draws on the logit scale.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4.2))
    else:
        fig = ax.figure
    pooled = fit.one_vs_rest_draws("pooled")
    pred = fit.one_vs_rest_draws("predictive")
    counts = np.asarray(fit.data.counts, dtype=float)
    for i, c in enumerate(fit.classes):
        col = _PALETTE[i % len(_PALETTE)]
        tp = counts[:, i, i]
        fn = counts[:, i, :].sum(axis=1) - tp
        fp = counts[:, :, i].sum(axis=1) - tp
        tn = counts.sum(axis=(1, 2)) - tp - fn - fp
        with np.errstate(invalid="ignore", divide="ignore"):
            se_obs = tp / (tp + fn)
            fpr_obs = fp / (fp + tn)
        ax.scatter(fpr_obs, se_obs, s=14, facecolors="none", edgecolors=col, linewidths=0.7)
        for draws, style in ((pooled, "-"), (pred, "--")):
            se = np.clip(draws["sensitivity"][..., i].ravel(), 1e-9, 1 - 1e-9)
            sp = np.clip(draws["specificity"][..., i].ravel(), 1e-9, 1 - 1e-9)
            pts = np.column_stack([logit(1 - sp), logit(se)])
            e = _ellipse(pts, ci)
            ax.plot(expit(e[:, 0]), expit(e[:, 1]), style, color=col, lw=0.9)
        se_m = np.median(pooled["sensitivity"][..., i])
        sp_m = np.median(pooled["specificity"][..., i])
        ax.plot(1 - sp_m, se_m, "o", color=col, ms=6, label=f"{c}")
    ax.plot([0, 1], [0, 1], ":", color="0.6", lw=0.6)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("1 - specificity (one vs rest)", fontsize=8)
    ax.set_ylabel("sensitivity (one vs rest)", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False, loc="lower right", title="class", title_fontsize=7)
    ax.set_title(
        f"pooled point, {ci:.0%} credible (solid) and prediction (dashed) regions", fontsize=8
    )
    fig.tight_layout()
    return fig
