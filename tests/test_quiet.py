"""Third-party noise (ArviZ FutureWarning, PyTensor BLAS messages) is not shown to users."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")

# import bayesdta, then what a fit does: import PyMC (which imports ArviZ) and touch PyTensor's
# BLAS configuration and its C BLAS header (the two BLAS messages)
SCRIPT = """
import bayesdta
import pymc, pytensor
pytensor.config.blas__ldflags
from pytensor.tensor.blas_headers import blas_header_text
blas_header_text()
import warnings
warnings.warn("a user warning still shows", UserWarning)
"""


def test_no_arviz_or_blas_noise_after_importing_bayesdta(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["XDG_CACHE_HOME"] = str(tmp_path)  # ArviZ warns once a day per cache folder
    env.pop("PYTHONWARNINGS", None)
    res = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert res.returncode == 0, res.stderr
    err = res.stderr
    assert "ArviZ is undergoing a major refactor" not in err
    assert "could not link to a BLAS installation" not in err
    assert "Using NumPy C-API based implementation for BLAS" not in err
    assert "a user warning still shows" in err  # other warnings are untouched
