"""Sensitivity sweeps: variants, weights, cache and resume, Dask gives the local numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesdta as bd
from bayesdta.inference import sampling
from bayesdta.reporting import sensitivity as sens
from bayesdta.reporting.spec import derive_seed, load_spec

# Dementia (33 studies, two levels, default priors): the same compiled structure as the
# session fixture of conftest.py, so in a full run nothing is compiled here.
SPEC = """
[analysis]
name = "tiny"
seed = 11

[data]
file = "dementia.csv"

[model]
levels = 2

[sampler]
chains = 2
draws = 150
tune = 200

[sensitivity]
leave_one_study_out = ["S01", "S02"]
links = ["cloglog"]
quantities = ["sensitivity", "specificity", "auc"]

[sensitivity.prior_grid]
tau = ["HalfNormal(0.5)", "HalfNormal(2)"]

[[sensitivity.exclude]]
name = "setting_A_only"
column = "setting"
values = ["B"]
"""
NUMBERS = ["variant", "status", "n_rows", "n_studies", "seed"] + [
    f"{q}_{s}" for q in ("sensitivity", "specificity", "auc") for s in ("median", "lower", "upper")
]


def make_spec(folder: Path, text: str = SPEC):
    frame = bd.load_example("dementia").frame.drop(columns=["model"])
    frame["study"] = [f"S{i + 1:02d}" for i in range(len(frame))]
    frame["setting"] = np.where(np.arange(len(frame)) % 3 == 0, "B", "A")
    frame.to_csv(folder / "dementia.csv", index=False)
    (folder / "spec.toml").write_text(text)
    return load_spec(folder / "spec.toml")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep")
    spec = make_spec(folder)
    before = sampling.cache_info()["compiles"]
    table = sens.run_sweep(spec, folder / "out", workers=1, progress=False)
    return spec, folder, table, sampling.cache_info()["compiles"] - before


def spec_with_links(folder: Path, links: str):
    sub = folder / "links"
    sub.mkdir(exist_ok=True)
    return make_spec(sub, SPEC.replace('links = ["cloglog"]', f"links = {links}"))


def test_variants_are_built_in_a_stable_order(tmp_path):
    spec = make_spec(tmp_path, SPEC.replace('["S01", "S02"]', "true"))
    data = spec.load_data()
    v = sens.build_variants(spec, data)
    names = [x.name for x in v]
    assert names[:3] == [
        "baseline",
        "prior:tau ~ HalfNormal(sigma=0.5)",
        "prior:tau ~ HalfNormal(sigma=2)",
    ]
    assert names[3:36] == [f"loso:S{i:02d}" for i in range(1, 34)]
    assert names[36:] == ["exclude:setting_A_only", "link:cloglog"]
    assert v[0].seed == 11 and v[3].seed == derive_seed(11, "sweep:loso:S01")
    assert v[1].model["priors"] == {"tau": "HalfNormal(sigma=0.5)"}
    assert v[3].excluded_rows == (0,) and v[3].weights(33)[0] == 0 and v[0].weights(33) is None
    assert v[36].excluded_rows == tuple(range(0, 33, 3))
    assert not v[-1].implemented and "not available" in v[-1].note and "cloglog" in v[-1].note
    # probit is implemented: its variant is fitted with the link in the model settings
    probit = sens.build_variants(spec_with_links(tmp_path, '["logit", "probit"]'), data)[-2:]
    assert [x.name for x in probit] == ["link:logit", "link:probit"]
    assert all(x.implemented for x in probit)
    assert "link" not in probit[0].model and probit[0].description.endswith("(as baseline)")
    assert probit[1].model["link"] == "probit" and probit[1].description == "probit link"
    # keys: stable, and different whenever something that changes the numbers differs
    keys = {x.key("d") for x in v}
    assert len(keys) == len(v) and v[5].key("d") == sens.build_variants(spec, data)[5].key("d")


def test_sweep_table_and_outputs(sweep):
    spec, folder, table, compiles = sweep
    out = folder / "out"
    assert list(table["variant"]) == [
        "baseline",
        "prior:tau ~ HalfNormal(sigma=0.5)",
        "prior:tau ~ HalfNormal(sigma=2)",
        "loso:S01",
        "loso:S02",
        "exclude:setting_A_only",
        "link:cloglog",
    ]
    ok = table[table.status == "ok"]
    assert len(ok) == 6
    assert table.set_index("variant").loc["link:cloglog", "status"] == "not implemented"
    assert "not available" in table.set_index("variant").loc["link:cloglog", "note"]
    rows = table.set_index("variant")
    assert rows.loc["loso:S01", "n_rows"] == 32 and rows.loc["loso:S01", "n_studies"] == 32
    assert rows.loc["exclude:setting_A_only", "n_rows"] == 22
    assert np.all((ok.sensitivity_lower < ok.sensitivity_median) & (ok.sensitivity_median < 1))
    assert np.allclose(
        ok.sensitivity_change, ok.sensitivity_median - rows.loc["baseline", "sensitivity_median"]
    )
    # the compiled model is re-used: left-out studies are weights, the prior grid is data
    assert compiles <= 1
    for name in ("sweep.csv", "sweep.tex", "sweep.md", "sweep.png", "sweep.pdf", "sweep.json"):
        assert (out / name).exists(), name
    assert len(list((out / "cache").glob("*.json"))) == 6
    pd.testing.assert_frame_equal(
        pd.read_csv(out / "sweep.csv")[NUMBERS], table[NUMBERS], check_dtype=False
    )
    rec = json.loads((out / "sweep.json").read_text())
    assert rec["executor"] == "sequential (this process)" and rec["n_fitted"] == 6
    # the baseline is the fit `bayesdta run` makes with the same spec
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        f = bd.fit(
            spec.load_data(), spec=spec.main.model_spec(), seed=11, chains=2, draws=150, tune=200
        )
    assert f.summary().loc["sensitivity", "median"] == rows.loc["baseline", "sensitivity_median"]


def test_interrupted_sweep_resumes_where_it_stopped(sweep, tmp_path, monkeypatch):
    spec, _, full, _ = sweep
    real = sens._run_variant
    calls: list[str] = []

    def interrupted(payload):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(payload["variant"]["name"])
        return real(payload)

    monkeypatch.setattr(sens, "_run_variant", interrupted)
    with pytest.raises(KeyboardInterrupt):
        sens.run_sweep(spec, tmp_path, workers=1, progress=False)
    cached = sorted((tmp_path / "cache").glob("*.json"))
    assert len(cached) == 3 and not (tmp_path / "sweep.csv").exists()
    mtimes = {p: p.stat().st_mtime_ns for p in cached}

    calls.clear()
    monkeypatch.setattr(
        sens, "_run_variant", lambda p: calls.append(p["variant"]["name"]) or real(p)
    )
    table = sens.run_sweep(spec, tmp_path, workers=1, progress=False)
    assert calls == ["loso:S01", "loso:S02", "exclude:setting_A_only"]
    assert table.attrs["n_cached"] == 3 and table.attrs["n_fitted"] == 3
    assert {p: p.stat().st_mtime_ns for p in cached} == mtimes
    pd.testing.assert_frame_equal(table[NUMBERS], full[NUMBERS])

    # a third run fits nothing
    calls.clear()
    table = sens.run_sweep(spec, tmp_path, workers=1, progress=False)
    assert calls == [] and table.attrs["n_cached"] == 6
    pd.testing.assert_frame_equal(table[NUMBERS], full[NUMBERS])


def test_dask_local_cluster_gives_the_local_numbers(sweep, tmp_path):
    distributed = pytest.importorskip("distributed")
    spec, _, full, _ = sweep
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        table = sens.run_sweep(spec, tmp_path, scheduler=cluster.scheduler_address, progress=False)
    assert table.attrs["executor"].startswith("Dask scheduler tcp://")
    assert table.attrs["n_fitted"] == 6
    pd.testing.assert_frame_equal(table[NUMBERS], full[NUMBERS])


def fake_worker(payload):
    """Stands in for sensitivity._run_variant in spawned workers (picklable by reference)."""
    v = payload["variant"]
    if v["name"] == "loso:S02":
        raise ValueError("bad variant")
    q = {"median": v["seed"] % 997 / 997, "lower": 0.0, "upper": 1.0, "mean": 0.5, "sd": 0.1}
    return {
        "name": v["name"],
        "key": payload["key"],
        "status": "ok",
        "levels": 2,
        "n_rows": 33 - len(v["excluded_rows"]),
        "n_studies": 33 - len(v["excluded_rows"]),
        "summary": {"sensitivity": q},
        "diagnostics": {"divergences": 0, "max_r_hat": 1.0, "min_ess_bulk": 999.0},
        "pid": os.getpid(),
        "cores": payload.get("cores"),
    }


def test_local_worker_processes(sweep, tmp_path, monkeypatch):
    # The pool mechanics with a stand-in worker (the real worker runs in other processes in
    # the Dask test; here a real one would compile the model once per process, ~20 s each).
    spec = sweep[0]
    monkeypatch.setattr(sens, "_run_variant", fake_worker)
    table = sens.run_sweep(spec, tmp_path, workers=2, progress=False)
    assert table.attrs["executor"] == "2 local processes"
    rows = table.set_index("variant")
    assert rows.loc["loso:S02", "status"] == "failed"
    assert rows.loc["loso:S02", "note"] == "ValueError: bad variant"
    assert rows.loc["baseline", "sensitivity_median"] == 11 / 997
    assert list(table["status"]).count("ok") == 5
    cached = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*.json")]
    assert len(cached) == 5  # failures are not cached: a rerun retries them
    assert os.getpid() not in {c["pid"] for c in cached} and {c["cores"] for c in cached} == {
        max(1, (os.cpu_count() or 1) // 2)
    }
    table = sens.run_sweep(spec, tmp_path, workers=2, progress=False)
    assert table.attrs["n_cached"] == 5 and table.attrs["n_fitted"] == 1


def test_default_workers_and_quantity_check(tmp_path, monkeypatch):
    monkeypatch.setattr(sens.os, "cpu_count", lambda: 2)
    assert sens.default_workers(chains=2, n_tasks=10) == 1
    assert sens.default_workers(chains=4, n_tasks=10) == 1
    monkeypatch.setattr(sens.os, "cpu_count", lambda: 16)
    assert sens.default_workers(chains=4, n_tasks=10) == 4
    assert sens.default_workers(chains=4, n_tasks=2) == 2
    spec = make_spec(tmp_path, SPEC.replace('"auc"]', '"acu"]'))
    with pytest.raises(bd.SpecError, match=r"sensitivity.quantities\[2\]: unknown quantity 'acu'"):
        sens.build_variants(spec, spec.load_data())
    spec = make_spec(tmp_path, SPEC.split("[sensitivity]")[0])
    with pytest.raises(bd.SpecError, match="declares no sweeps"):
        sens.run_sweep(spec, tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()
