"""validation/sbc.py replaces only the rows of the cases it ran, in place.

Two branches that re-run different SBC cases must change disjoint blocks of
``validation/results/sbc_coverage.csv`` (and ``sbc_runs.csv``), so the rows of the cases not
run keep their content and their position.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def _sbc():
    spec = importlib.util.spec_from_file_location("sbc", ROOT / "validation" / "sbc.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["sbc"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_rows_of_other_cases_keep_content_and_position():
    sbc = _sbc()
    old = pd.DataFrame(
        {
            "parameter": ["mu", "tau", "mu", "rho", "nu", "mu"],
            "case": ["a", "a", "b", "b", "c", "c"],
            "n": [100, 100, 20, 20, 20, 20],
        }
    )
    new = pd.DataFrame({"parameter": ["mu", "rho", "mu"], "case": ["b", "b", "d"], "n": 60})
    out = sbc._replace_case_rows(old, new)
    assert out["case"].tolist() == ["a", "a", "b", "b", "c", "c", "d"]
    assert out[out["case"] == "b"]["n"].tolist() == [60, 60]
    pd.testing.assert_frame_equal(
        out[out["case"].isin(["a", "c"])].reset_index(drop=True),
        old[old["case"].isin(["a", "c"])].reset_index(drop=True),
    )
    # a first run writes the new rows as they are
    pd.testing.assert_frame_equal(sbc._replace_case_rows(pd.DataFrame(), new), new)


def test_replicates_with_refused_tables_are_skipped_and_recorded():
    """A simulated table the reader refuses skips its replicate (recorded) instead of crashing."""
    import numpy as np

    import bayesdta as bd

    sbc = _sbc()
    base = sbc.CASES["two_level"]
    calls = {"n": 0}

    def fitter(frame, priors, seed, settings):  # no sampling: a plumbing test
        calls["n"] += 1
        if calls["n"] % 2:
            bad = frame.copy()
            bad.loc[0, ["TP", "FN"]] = 0
            bd.DTAData.from_frame(bad, study="study")  # raises DTADataError
        rng = np.random.default_rng(seed)
        return {p: rng.normal(size=(2, 50)) for p in base.parameters}, 1

    case = sbc.Case(
        "refused", base.family, base.design, base.parameters, base.simulate, fitter=fitter
    )
    res = sbc.run_sbc(case, n_replicates=4, seed=1)
    assert len(res.ranks) == 2 and res.coverage["n"].iloc[0] == 2
    assert len(res.skipped) == 2 and "TP + FN = 0" in res.skipped[0]


def test_notebook_06_shows_the_stored_sbc_results():
    """Notebook 06's stored outputs show every case of sbc_coverage.csv with its current size.

    The notebook reads validation/results/ when it runs; this fails when the results changed and
    the notebook was not re-executed (``python tools/run_notebooks.py 06 --write``).
    """
    import json
    import re

    cov = pd.read_csv(ROOT / "validation" / "results" / "sbc_coverage.csv")
    nb = json.loads((ROOT / "notebooks" / "06_validation.ipynb").read_text())
    texts = [
        "".join(o.get("data", {}).get("text/plain", ""))
        for c in nb["cells"]
        if c["cell_type"] == "code"
        for o in c.get("outputs", [])
    ]
    stale = []
    for case, rows in cov.groupby("case", sort=False):
        line = re.compile(rf"^{re.escape(case)}\s+{len(rows)}\s+{int(rows['n'].iloc[0])}\s", re.M)
        if not any(line.search(t) for t in texts):
            stale.append(f"{case} ({len(rows)} parameters, n = {int(rows['n'].iloc[0])})")
    assert not stale, (
        f"notebook 06 does not show {stale}: run python tools/run_notebooks.py 06 --write"
    )
