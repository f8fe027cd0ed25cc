"""``python -m bayesdta.cli``: the same entry point as the ``bayesdta`` command."""

import sys

from .main import main

sys.exit(main())
