"""The generated reference pages of docs/ equal what the code generates (they cannot drift).

Regenerate with ``python tools/gen_docs.py`` after changing spec keys, CLI options, priors or
summary quantities.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _gen():
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "tools" / "gen_docs.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


GEN = _gen()


@pytest.mark.parametrize("page", sorted(GEN.PAGES))
def test_generated_page_is_current(page):
    path = ROOT / page
    assert path.exists(), f"{page} missing: run python tools/gen_docs.py"
    assert path.read_text() == GEN.PAGES[page](), f"{page} is stale: run python tools/gen_docs.py"


def test_every_spec_key_is_documented():
    # the page names every key the parser accepts, section by section
    from bayesdta.reporting.spec import SPEC_KEYS

    text = (ROOT / "docs" / "spec_reference.md").read_text()
    for section, keys in SPEC_KEYS.items():
        for k in keys:
            assert f"| `{k}` |" in text, (section, k)


def test_every_cli_option_is_documented():
    import argparse

    from bayesdta.cli import build_parser

    text = (ROOT / "docs" / "cli_reference.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sp in sub.choices.items():
        assert f"## `bayesdta {name}`" in text
        for a in sp._actions:
            for opt in a.option_strings:
                if opt not in ("-h", "--help"):
                    assert f"`{opt}`" in text, (name, opt)
