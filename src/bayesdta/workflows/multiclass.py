"""The joint multiclass model beside the separate one-vs-rest bivariate analyses.

:func:`compare_one_vs_rest` splits every study's KxK matrix into K one-vs-rest 2x2 tables
(:func:`bayesdta.data.tables.split_confusion` with a study column), fits the bivariate model
(:func:`bayesdta.fit`) to each class's tables, and tabulates its pooled sensitivity and
specificity beside those of the joint model. The separate analyses ignore that the K tables of
a study share participants (the dependence the joint model keeps), and their specificity of
class k is pooled over the studies' own class mixes (logit-scale average), whereas the joint
model's is a prevalence-weighted average of the other classes' rows (the fit's prevalences).
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from ..data.tables import DTAData, split_confusion
from ..exceptions import SamplerWarning
from ..inference.fit import fit as fit_bivariate
from ..registry import register_quantity

__all__ = ["compare_one_vs_rest", "one_vs_rest_tables", "multiclass_tables"]


def one_vs_rest_tables(mfit: Any, target: str) -> DTAData:
    """The studies' one-vs-rest 2x2 tables of class ``target`` as :class:`DTAData`."""
    long = split_confusion(mfit.data, study="study")
    part = long[long["target"] == target].drop(columns="target").reset_index(drop=True)
    if part.empty:
        raise ValueError(f"no class {target!r}; classes are {list(mfit.classes)}")
    return DTAData.from_frame(part, study="study", source=f"one-vs-rest split ({target})")


@register_quantity("compare_one_vs_rest")
def compare_one_vs_rest(
    mfit: Any,
    *,
    ci: float = 0.95,
    seed: int | None = None,
    fits: dict[str, Any] | None = None,
    **fit_options: Any,
) -> pd.DataFrame:
    """Joint-model against separate bivariate one-vs-rest estimates, per class.

    Parameters
    ----------
    mfit : MulticlassFit
        The joint fit.
    ci : float
        Credible-interval probability.
    seed : int, optional
        Seed of the bivariate fits (default: the joint fit's seed plus the class index).
    fits : dict, optional
        Filled with the bivariate fits by class (for figures or further tables).
    **fit_options
        Passed to :func:`bayesdta.fit` (e.g. ``draws``, ``chains``, ``cores``).

    Returns
    -------
    DataFrame
        One row per (class, quantity in sensitivity / specificity): ``joint`` (median),
        ``joint_lower``, ``joint_upper``, ``separate``, ``separate_lower``,
        ``separate_upper``, ``difference`` (joint - separate medians) and
        ``width_ratio`` (joint interval width / separate interval width).
    """
    base = int(mfit.sampler.get("seed", 0)) if seed is None else int(seed)
    joint = mfit.class_summary(ci)
    rows = []
    for i, c in enumerate(mfit.classes):
        data = one_vs_rest_tables(mfit, c)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SamplerWarning)
            f = fit_bivariate(data, levels=2, seed=base + 101 + i, verbose=False, **fit_options)
        if fits is not None:
            fits[c] = f
        s = f.summary(ci)
        lower_col, upper_col = _interval_columns(s)
        warn = "; ".join(f.diagnostics()["warnings"])
        for q in ("sensitivity", "specificity"):
            j = joint[(joint["class"] == c) & (joint["quantity"] == q)].iloc[0]
            sep_med = float(s.loc[q, "median"])
            sep_lo, sep_hi = float(s.loc[q, lower_col]), float(s.loc[q, upper_col])
            rows.append(
                {
                    "class": c,
                    "quantity": q,
                    "joint": float(j["median"]),
                    "joint_lower": float(j["lower"]),
                    "joint_upper": float(j["upper"]),
                    "separate": sep_med,
                    "separate_lower": sep_lo,
                    "separate_upper": sep_hi,
                    "difference": float(j["median"]) - sep_med,
                    "width_ratio": (float(j["upper"]) - float(j["lower"])) / (sep_hi - sep_lo),
                    "separate_warnings": warn,
                }
            )
    df = pd.DataFrame(rows)
    df.attrs["prevalence"] = dict(zip(mfit.classes, map(float, mfit.prevalence), strict=True))
    return df


def _interval_columns(summary: pd.DataFrame) -> tuple[str, str]:
    """Names of the lower and upper interval columns of :meth:`DTAFit.summary`."""
    return "lower", "upper"


def multiclass_tables(mfit: Any, *, ci: float = 0.95) -> dict[str, pd.DataFrame]:
    """The report tables of a multiclass fit, by name (see ``MULTICLASS_TABLES``)."""
    conf = mfit.confusion(ci)
    pred = mfit.confusion(ci, kind="predictive")
    classes = mfit.class_summary(ci)
    het = mfit.heterogeneity(ci)
    return {
        "multiclass_confusion": conf,
        "multiclass_confusion_predictive": pred,
        "multiclass_classes": classes,
        "multiclass_heterogeneity": het,
    }
