"""Command line ``bayesdta``: argument parsing only; the work lives in the layers above.

Importing the package registers every sub-command (:mod:`bayesdta.cli.commands`): ``fit`` and
``example`` (:mod:`bayesdta.cli.main`), ``run``, ``sensitivity``, ``report``
(:mod:`bayesdta.cli.analysis`), ``cache`` (:mod:`bayesdta.cli.cache`) and ``compare``
(:mod:`bayesdta.cli.compare`).
"""

from __future__ import annotations

from .main import build_parser, main

__all__ = ["main", "build_parser"]
