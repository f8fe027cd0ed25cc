"""Figures: every function takes a fit (or data) and returns a matplotlib Figure, never shows it.

The figure functions live in :mod:`bayesdta.plots.figures` and register under their kind
(``@register_figure("sroc")``) for :meth:`bayesdta.DTAFit.plot`.
"""

from __future__ import annotations

from .comparative import plot_comparative_sroc  # noqa: E402  (registers "comparative_sroc")
from .figures import *  # noqa: F403
from .figures import __all__ as _figures_all
from .multiclass import plot_confusion_heatmap, plot_multiclass_roc
from .review_figures import *  # noqa: F403
from .review_figures import __all__ as _review_all

__all__ = list(_figures_all) + list(_review_all)
__all__ += ["plot_comparative_sroc", "plot_confusion_heatmap", "plot_multiclass_roc"]
