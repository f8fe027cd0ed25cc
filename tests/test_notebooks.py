"""The notebooks of notebooks/ are stored executed: outputs present, figures inline, no warning.

Executing them (real sampling, about a minute each) is a separate CI step,
``python tools/run_notebooks.py`` (``.ci/run``); this test reads the stored files only, so the
main suite stays fast. It fails when a notebook is committed without outputs, with an error or
a sampler warning in its outputs, or without a figure.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXPECTED = ("01_", "02_", "03_", "04_", "05_", "06_")


def _runner():
    spec = importlib.util.spec_from_file_location(
        "run_notebooks", ROOT / "tools" / "run_notebooks.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


RUNNER = _runner()


def test_the_teaching_notebooks_exist():
    names = [p.name for p in NOTEBOOKS]
    for prefix in EXPECTED:
        assert any(n.startswith(prefix) for n in names), (prefix, names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_executed_and_clean(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    assert code, "no code cells"
    assert all(c.get("outputs") is not None for c in code)
    assert sum(bool(c.get("outputs")) for c in code) >= len(code) // 2, "stored without outputs"
    assert RUNNER.problems(nb) == []


def test_problems_flags_a_sampler_warning_and_a_missing_figure():
    cell = {
        "cell_type": "code",
        "metadata": {},
        "execution_count": 1,
        "source": "fit = bd.fit(data)",
        "outputs": [
            {
                "output_type": "stream",
                "name": "stderr",
                "text": "SamplerWarning: R-hat 1.05 > 1.01 for rho",
            }
        ],
    }
    found = RUNNER.problems({"cells": [cell]})
    assert any("warning" in f for f in found)
    assert any("no figure" in f for f in found)
