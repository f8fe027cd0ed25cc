"""Targeted silencing of third-party noise that users of bayesdta cannot act on.

Installed when this module is first imported (by :mod:`bayesdta`'s ``__init__``). Each
filter matches one exact message of one library, so every other warning (including all of
bayesdta's own, e.g. :class:`~bayesdta.SamplerWarning`) is shown as before:

* ArviZ 0.x ``FutureWarning`` "ArviZ is undergoing a major refactor ..." (emitted when ArviZ is
  first imported, e.g. by PyMC): bayesdta keeps every ArviZ call in :mod:`bayesdta._arviz`;
* PyTensor ``UserWarning`` "PyTensor could not link to a BLAS installation ..." and its log
  record "Using NumPy C-API based implementation for BLAS functions." (logger
  ``pytensor.tensor.blas``): bayesdta samples with nutpie's numba backend by default, which does
  not use PyTensor's C BLAS, so the message is about code paths a fit does not rely on.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

__all__ = ["install", "quiet", "ARVIZ_REFACTOR", "PYTENSOR_NO_BLAS", "PYTENSOR_NUMPY_BLAS"]

ARVIZ_REFACTOR = r"\s*ArviZ is undergoing a major refactor"
PYTENSOR_NO_BLAS = r"PyTensor could not link to a BLAS installation"
PYTENSOR_NUMPY_BLAS = "Using NumPy C-API based implementation for BLAS functions"


class _DropMessage(logging.Filter):
    """Drops the log records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.prefix)


def install() -> None:
    """Install the filters (idempotent)."""
    warnings.filterwarnings(
        "ignore", message=ARVIZ_REFACTOR, category=FutureWarning, module=r"arviz(\.|$)"
    )
    warnings.filterwarnings(
        "ignore", message=PYTENSOR_NO_BLAS, category=UserWarning, module=r"pytensor(\.|$)"
    )
    logger = logging.getLogger("pytensor.tensor.blas")
    if not any(
        isinstance(f, _DropMessage) and f.prefix == PYTENSOR_NUMPY_BLAS for f in logger.filters
    ):
        logger.addFilter(_DropMessage(PYTENSOR_NUMPY_BLAS))


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The same filters for a block of code (model building and sampling).

    Also effective where a framework has reset the process-wide filters (e.g. pytest).
    """
    with warnings.catch_warnings():
        install()
        yield


install()
