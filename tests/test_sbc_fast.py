"""Fast simulation-based calibration (Talts et al. 2018) of the two-level model.

A small subset of ``validation/sbc.py`` (the full study: ``docs/validation.md``): 20 simulated
reviews of 12 studies with parameters drawn from the prior the fit uses, one fit each. It fails
only on *gross* miscalibration; the thresholds are set for a low false-failure rate:

* pooled coverage of the 50% intervals (5 parameters x 20 replicates = 100 checks, expected 50,
  binomial SD 5): fail outside [25, 75], i.e. 5 binomial SDs (about 3 SDs if the five
  parameters of a replicate were strongly correlated);
* pooled coverage of the 90% intervals (expected 90, SD 3): fail below 72 (6 SDs);
* per parameter, the mean normalised rank over the 20 replicates (expected 0.5, SD 0.065 under
  uniform ranks): fail beyond 0.5 +- 0.25 (3.9 SDs; with 5 parameters a false failure has
  probability about 5e-4).

Power (``python validation/sbc.py --power 2``, docs/validation.md): with the correct simulator
0 of 2 runs failed; simulating between-study SDs twice those the truth reports failed 2 of 2
(90% coverage 58 and 66 of 100, mean ranks of the taus 0.03-0.10), and swapping sensitivity and
specificity in the data failed 2 of 2 (50% coverage 21 and 22 of 100).

The Student-t family (``random_effects="t"``, issue 10) has its own subset: 16 replicates of
the ``t`` case (14 studies, nu ~ Gamma(2, 0.1)), the same checks over its 6 parameters (96
pooled checks; a mean rank beyond 0.5 +- 0.25 is 3.5 SDs with 16 replicates). On this design
the posterior of nu is close to its prior, so the ranks of nu test first of all that the
simulator draws nu from the prior the model uses (``python validation/sbc.py --power 2
--power-case t``: see validation/README.md for which wrong simulators it catches).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sbc():
    spec = importlib.util.spec_from_file_location("sbc", ROOT / "validation" / "sbc.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["sbc"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_two_level_sbc_is_not_grossly_miscalibrated(sbc):
    res = sbc.run_sbc(
        "two_level",
        n_replicates=20,
        seed=7,
        n_draws=49,
        sampler={"chains": 2, "draws": 300, "tune": 300},
    )
    assert res.covered.shape == (20, 15)
    failures = sbc.fast_check(res)
    assert not failures, failures
    # the ranks are not degenerate (e.g. all 0 or all L from a constant posterior)
    assert np.unique(res.ranks.to_numpy()).size > 20


def test_t_family_sbc_is_not_grossly_miscalibrated(sbc):
    fast = sbc.FAST_SETTINGS["t"]
    res = sbc.run_sbc("t", seed=7, n_draws=49, **fast)
    assert res.covered.shape == (16, 18)
    failures = sbc.fast_check(res)
    assert not failures, failures
    assert np.unique(res.ranks["nu"].to_numpy()).size > 8
