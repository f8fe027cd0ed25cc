"""Saved latent-class and comparative fits round-trip without loss (``save`` -> ``bd.load``).

Every reported table of the loaded fit, in this process and in a fresh Python process, equals
the table of the fit that was saved (exactly: ``pd.testing.assert_frame_equal``).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import bayesdta as bd
from bayesdta.data.datasets.simulate_comparative import simulate_osteoporosis_comparative
from bayesdta.families.comparative import ComparativeSpec

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"draws": 150, "tune": 150, "chains": 2, "cores": 1, "escalate": False, "verbose": False}
# unusual prior numbers: a save that rounds them (e.g. "Beta(15.3333, ...)") changes prior_sd
PRIORS = {
    "DXA": {"sensitivity": "Beta(15.333333333333334, 5)", "specificity": "Beta(45, 5.1234567891)"},
    "CT": "perfect",
}


def _latent_tables(fit, *, refit: bool = True) -> dict[str, pd.DataFrame]:
    out = {
        "summary": fit.summary(),
        "reference_accuracy": fit.reference_accuracy(),
        "prevalence": fit.prevalence(),
        "identifiability": fit.identifiability(),
        "sroc": fit.sroc(),
    }
    if refit:  # the bivariate fit from the stored tables, weights and seed
        kw = {"draws": 100, "tune": 100, "chains": 2, "cores": 1}
        out["compare_perfect_reference"] = fit.compare_perfect_reference(**kw)
    return out


def _comparative_tables(fit) -> dict[str, pd.DataFrame]:
    return {
        "summary": fit.summary(),
        "relative": fit.relative(),
        "ranking": fit.ranking(),
        "sroc": fit.sroc(),
        "parameters": fit.parameters(),
        "design_table": fit.design_table(),
    }


def _tables_in_fresh_process(path: Path, which: str, tmp: Path) -> dict[str, pd.DataFrame]:
    """Load ``path`` in a new interpreter and return the tables it computes (pickled)."""
    out = tmp / f"{which}_tables.pkl"
    code = (
        "import pickle, sys, warnings; warnings.simplefilter('ignore'); "
        "sys.path.insert(0, sys.argv[4]); import bayesdta as bd; "
        "import test_roundtrip_families as t; "
        "fit = bd.load(sys.argv[1]); "
        f"tabs = t._{which}_tables(fit{', refit=False' if which == 'latent' else ''}); "
        "tabs['_class'] = type(fit).__name__; "
        "tabs['_text'] = fit.format_summary() if hasattr(fit, 'format_summary') "
        "else fit.describe(); "
        "pickle.dump(tabs, open(sys.argv[2], 'wb'))"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    res = subprocess.run(
        [sys.executable, "-c", code, str(path), str(out), "x", str(ROOT / "tests")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    with open(out, "rb") as fh:
        return pickle.load(fh)


def _assert_same(a: dict[str, pd.DataFrame], b: dict[str, Any], *, ulps: bool = False) -> None:
    """Every table of ``b`` (the loaded fit) equals the one of ``a`` exactly, attrs too.

    ``ulps=True`` (tables recomputed in another process): equal to 1e-13 relative. The draws
    are the same bits, but NumPy's SIMD pairwise sums depend on the arrays' memory alignment,
    which differs between processes, so a standard deviation may differ in its last bit.
    """
    names = [n for n in b if not n.startswith("_")]
    assert len(names) >= 4 and set(names) <= set(a)
    for name in names:
        if ulps:
            pd.testing.assert_frame_equal(a[name], b[name], rtol=1e-13, atol=0, obj=name)
        else:
            pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)
        assert a[name].attrs == b[name].attrs, name


@pytest.fixture(scope="module")
def latent_fit():
    frame = bd.load_example("osteoporosis_latent_class").frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.fit_latent_class(
            frame, study="study", model="model", reference_priors=PRIORS, seed=11, **SMALL
        )


@pytest.fixture(scope="module")
def comparative_fit():
    df, _ = simulate_osteoporosis_comparative(seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bd.compare_tests(df, reference="Radiologist", seed=4, **SMALL)


def test_latent_class_fit_round_trips(latent_fit, tmp_path):
    path = latent_fit.save(tmp_path / "lc.nc")
    loaded = bd.load(path)
    assert isinstance(loaded, bd.LatentClassFit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        before = _latent_tables(latent_fit)
        _assert_same(before, _latent_tables(loaded))
    assert loaded.format_summary() == latent_fit.format_summary()
    assert loaded.latent_spec == latent_fit.latent_spec
    assert loaded.sampler == latent_fit.sampler
    assert loaded.diagnostics() == latent_fit.diagnostics()
    fresh = _tables_in_fresh_process(path, "latent", tmp_path)
    assert fresh["_class"] == "LatentClassFit"
    assert fresh["_text"] == latent_fit.format_summary()
    _assert_same(before, fresh, ulps=True)


def test_latent_class_prior_objects_saved_at_full_precision(latent_fit, tmp_path):
    """Reference priors given as Prior objects (not JSON) come back as the same priors."""
    spec = latent_fit.latent_spec.replace(
        reference_priors={
            "DXA": {"sensitivity": bd.Beta(15.123456789012, 5), "specificity": (45.5, 5.25)},
            "CT": "perfect",
        }
    )
    fit = bd.LatentClassFit(latent_fit.idata, latent_fit.data, spec, latent_fit.sampler)
    loaded = bd.load(fit.save(tmp_path / "p.nc"))
    data = latent_fit.data
    assert loaded.latent_spec.resolved_reference_priors(data) == spec.resolved_reference_priors(
        data
    )
    pd.testing.assert_frame_equal(
        loaded.reference_accuracy(), fit.reference_accuracy(), check_exact=True
    )


def test_comparative_fit_round_trips(comparative_fit, tmp_path):
    path = comparative_fit.save(tmp_path / "cmp.nc")
    loaded = bd.load(path)
    assert isinstance(loaded, bd.ComparativeFit)
    before = _comparative_tables(comparative_fit)
    _assert_same(before, _comparative_tables(loaded))
    assert loaded.describe() == comparative_fit.describe()
    assert loaded.spec == comparative_fit.spec
    assert loaded.sampler == comparative_fit.sampler
    assert loaded.diagnostics() == comparative_fit.diagnostics()
    assert loaded.tests == comparative_fit.tests
    fresh = _tables_in_fresh_process(path, "comparative", tmp_path)
    assert fresh["_class"] == "ComparativeFit"
    assert fresh["_text"] == comparative_fit.describe()
    _assert_same(before, fresh, ulps=True)


def test_comparative_priors_saved_at_full_precision(comparative_fit, tmp_path):
    """A user prior with many digits comes back as the same prior (not a rounded string)."""
    fit = bd.ComparativeFit(
        comparative_fit.comparative,
        ComparativeSpec(
            model=comparative_fit.spec.model, priors={"tau": "HalfNormal(1.2345678912345)"}
        ),
        comparative_fit.idata,
        comparative_fit.sampler,
    )
    loaded = bd.load(fit.save(tmp_path / "p.nc"))
    assert loaded.spec.model_spec().priors == fit.spec.model_spec().priors


def test_load_of_unknown_kind_is_one_line_error(comparative_fit, tmp_path):
    path = comparative_fit.save(tmp_path / "k.nc")
    import arviz as az

    idata = az.from_netcdf(path)
    idata.posterior.attrs["bayesdta_kind"] = "future_family"
    other = tmp_path / "other.nc"
    idata.to_netcdf(str(other))
    with pytest.raises(bd.SpecError) as e:
        bd.load(other)
    assert "\n" not in str(e.value) and "future_family" in str(e.value)
