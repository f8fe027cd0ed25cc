"""Data layer: 2x2 tables read, checked and held as :class:`DTAData`; packaged datasets.

* :mod:`bayesdta.data.tables`: reading (CSV dialects, id detection, column maps), checks,
  :class:`DTAData`, KxK -> one-vs-rest (:func:`split_confusion`), counts from reported metrics.
* :mod:`bayesdta.data.datasets`: the packaged example datasets and their simulator.

Everything public in :mod:`bayesdta.data.tables` is importable from ``bayesdta.data``.
"""

from __future__ import annotations

from .tables import *  # noqa: F403
from .tables import __all__ as _tables_all

__all__ = list(_tables_all)
