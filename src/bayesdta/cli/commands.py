"""Registry of the ``bayesdta`` sub-commands.

Each command module registers ``name -> (configure(subparser), run(args) -> int, help)`` at
import; :func:`bayesdta.cli.main.build_parser` reads the registry. One module object holds it,
so ``bayesdta ...`` and ``python -m bayesdta.cli ...`` see the same commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["COMMANDS", "register_command"]

Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[..., int], str]

#: name -> (configure(subparser), run(args) -> int, help), in registration order.
COMMANDS: dict[str, Command] = {}


def register_command(name: str, entry: Command) -> None:
    """Register sub-command ``name`` as ``(configure, run, help)``."""
    COMMANDS[name] = entry
