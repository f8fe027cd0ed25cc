"""The disk cache of compiled models (bayesdta.compile_cache).

The subprocess tests share one sequence of real processes on a fresh cache directory (one
compilation in all, ~25-40 s of wall time on 2 busy cores):

1. a corrupt entry is planted under the key of the test model;
2. two processes fit the model at once: one takes the entry's lock, finds the entry corrupt,
   recompiles and stores it; the other waits for the lock and loads the stored code;
3. a third process loads it again.

All three must give the same draws for the same seed (with and without the cache). The model
is a probit one, compiled from its PyMC graph: logit-normal models have a hand-written density
and compile nothing per structure (tests/test_native_models.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import bayesdta as bd
from bayesdta.families.bivariate import ModelSpec, build_model
from bayesdta.inference import compile_cache as cc

SRC = str(Path(bd.__file__).resolve().parent.parent)

FIT_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, warnings
    t0 = time.perf_counter()
    import numpy as np
    import bayesdta as bd
    from bayesdta.inference import sampling
    from bayesdta.inference.compile_cache import CacheWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CacheWarning)
        warnings.simplefilter("ignore", bd.SamplerWarning)
        f = bd.fit(
            bd.load_example("skin_tests"), seed=5, draws=60, tune=60, chains=2, cores=1,
            escalate=False, link="probit",
        )
    post = f.idata.posterior
    np.savez(sys.argv[1], **{k: post[k].values for k in post.data_vars})
    print(json.dumps({
        "stats": sampling.cache_info(),
        "compile_s": f.timing["compile_s"],
        "wall_s": time.perf_counter() - t0,
        "warnings": [str(w.message) for w in caught if issubclass(w.category, CacheWarning)],
    }))
    """
)


@pytest.fixture(autouse=True)
def _no_leftover_override():
    """Tests that point the cache somewhere else leave the process's setting as it was."""
    yield
    cc._override.clear()


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["BAYESDTA_CACHE_DIR"] = str(cache)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _start(cache: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", FIT_SCRIPT, str(out)],
        env=_env(cache),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen) -> dict:
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])


def _test_model():
    # a model compiled from its graph (logit-normal models have a hand-written density and
    # compile nothing per structure: tests/test_native_models.py)
    return build_model(bd.load_example("skin_tests"), ModelSpec(link="probit"))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Steps 1-3 of the module docstring; returns the cache dir, the key and each run."""
    cache = tmp_path_factory.mktemp("compile_cache")
    cc.configure(directory=cache)
    try:
        key, _ = cc.entry_key(_test_model())
    finally:
        cc._override.clear()
    entries = cache / "compiled"
    entries.mkdir()
    (entries / f"{key}.nutpie").write_bytes(b"BAYESDTA-COMPILED-MODEL\n" + b"\x00" * 64)
    out = [cache.parent / f"draws{i}_{cache.name}.npz" for i in range(3)]
    pair = [_start(cache, out[0]), _start(cache, out[1])]
    results = [_finish(p) for p in pair]
    results.append(_finish(_start(cache, out[2])))
    draws = [dict(np.load(p)) for p in out]
    return {"cache": cache, "key": key, "results": results, "draws": draws}


def test_concurrent_processes_compile_once_and_share_the_entry(runs):
    first, second = runs["results"][:2]
    # both succeeded (checked in _finish); the lock made one wait for the other's compilation
    assert sorted([first["stats"]["compiles"], second["stats"]["compiles"]]) == [0, 1]
    assert sorted([first["stats"]["disk_hits"], second["stats"]["disk_hits"]]) == [0, 1]
    assert first["stats"]["disk_writes"] + second["stats"]["disk_writes"] == 1
    cc.configure(directory=runs["cache"])
    try:
        entry = cc.read(runs["key"])  # checksum verified
    finally:
        cc._override.clear()
    assert entry is not None and entry["key"] == runs["key"]
    assert not list((runs["cache"] / "compiled").glob("*.tmp"))


def test_corrupt_entry_is_recompiled_with_a_warning(runs):
    first, second = runs["results"][:2]
    compiler = first if first["stats"]["compiles"] else second
    assert compiler["stats"]["disk_errors"] == 1
    assert len(compiler["warnings"]) == 1
    assert "could not be used and was recompiled" in compiler["warnings"][0]
    loader = second if compiler is first else first
    assert loader["warnings"] == [] and loader["stats"]["disk_errors"] == 0


def test_second_process_loads_from_disk_with_the_same_draws(runs):
    first, second, third = runs["results"]
    assert third["stats"] == {
        "cached": 1,
        "compiles": 0,
        "reuses": 0,
        "disk_hits": 1,
        "disk_writes": 0,
        "disk_errors": 0,
        "disk_not_stored": 0,
        "native": 0,
    }
    compiler = first if first["stats"]["compiles"] else second
    # loading the code is much cheaper than compiling it (~15 s on 2 cores vs < 2 s)
    assert third["compile_s"] < compiler["compile_s"] / 3
    # the same seed gives the same draws with and without the cache
    d0, d1, d2 = runs["draws"]
    # free parameters and the deterministic effects (the cached expand function)
    assert d0.keys() == d1.keys() == d2.keys() >= {"beta_sensitivity", "rho", "theta"}
    for k in d0:
        np.testing.assert_array_equal(d0[k], d1[k], err_msg=k)
        np.testing.assert_array_equal(d0[k], d2[k], err_msg=k)


def test_cli_cache_info_and_clear(runs, tmp_path, capsys):
    from bayesdta.cli import main

    cache = tmp_path / "copy"
    shutil.copytree(runs["cache"], cache)
    assert main(["cache", "info", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert f"directory: {cache}" in out
    assert "entries: 1 " in out and runs["key"] in out and "current" in out
    # numba's cache of the hand-written models is reported too (it lives with the package)
    assert "hand-written models" in out and "numba cache" in out
    # an entry made by other versions is stale: --stale removes it and keeps the current one
    cc.write("old", {"key_payload": {"model": {}, "versions": {"numba": "0.1"}}})
    assert main(["cache", "info", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "entries: 2 " in out and "stale (other versions)" in out
    assert main(["cache", "clear", "--stale", "--cache-dir", str(cache)]) == 0
    assert "removed 1 stale compiled model(s)" in capsys.readouterr().out
    assert [p.name for p in (cache / "compiled").glob("*.nutpie")] == [f"{runs['key']}.nutpie"]
    assert main(["cache", "clear", "--cache-dir", str(cache)]) == 0
    assert "removed 1 compiled model(s)" in capsys.readouterr().out
    assert not list((cache / "compiled").iterdir())
    assert main(["cache", "info", "--cache-dir", str(cache)]) == 0
    assert "entries: 0 " in capsys.readouterr().out
    cc._override.clear()


def test_clear_native_removes_numbas_files_of_the_hand_written_models(
    monkeypatch, tmp_path, capsys
):
    from bayesdta.cli import main
    from bayesdta.families import bivariate_logp

    files = [tmp_path / f"bivariate_logp.f-{i}.py311.nbi" for i in range(3)]
    for f in files:
        f.write_bytes(b"x" * 10)
    monkeypatch.setattr(
        bivariate_logp, "cache_files", lambda: (str(tmp_path), [p for p in files if p.exists()])
    )
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "c")]) == 0
    assert f"numba cache {tmp_path}, 3 file(s)" in capsys.readouterr().out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path / "c")]) == 0
    assert all(f.exists() for f in files)  # only with --native
    assert main(["cache", "clear", "--native", "--cache-dir", str(tmp_path / "c")]) == 0
    assert "removed 3 numba cache file(s)" in capsys.readouterr().out
    assert not any(f.exists() for f in files)
    cc._override.clear()


# ------------------------------------------------------------------------------ in-process
def test_key_changes_with_structure_and_versions(monkeypatch):
    built = _test_model()
    key, payload = cc.entry_key(built)
    assert cc.entry_key(_test_model())[0] == key  # deterministic
    other = build_model(bd.load_example("skin_tests"), ModelSpec())
    assert cc.entry_key(other)[0] != key
    three = build_model(bd.load_example("smoking"), ModelSpec(levels=3))
    assert cc.entry_key(three)[0] != key
    assert payload["versions"]["numba"] and payload["versions"]["nutpie"]

    import importlib.metadata as md

    real = md.version
    for pkg in ("numba", "nutpie", "pymc", "pytensor", "llvmlite", "numpy"):
        monkeypatch.setattr(md, "version", lambda name, p=pkg: "0.0" if name == p else real(name))
        assert cc.entry_key(built)[0] != key, pkg
    monkeypatch.setattr(md, "version", real)
    monkeypatch.setattr(sys, "version", sys.version + " other build")
    assert cc.entry_key(built)[0] != key
    monkeypatch.undo()
    monkeypatch.setattr(cc, "_SOURCE_HASH", ["edited source"])
    assert cc.entry_key(built)[0] != key


def test_read_rejects_damaged_entries(tmp_path):
    cc.configure(directory=tmp_path)
    try:
        assert cc.read("k") is None
        path = cc.write("k", {"payload": list(range(100))})
        assert cc.read("k")["payload"] == list(range(100))
        blob = path.read_bytes()
        for damaged in (blob[:-10], blob[:-1] + bytes([blob[-1] ^ 1]), b"garbage"):
            path.write_bytes(damaged)
            with pytest.raises(cc.CorruptEntry):
                cc.read("k")
        # an intact entry stored under another key is not accepted either
        cc.write("k2", {"payload": 1})
        os.replace(path.with_name("k2.nutpie"), path)
        with pytest.raises(cc.CorruptEntry, match="another key"):
            cc.read("k")
        info = cc.info()
        assert info["entries"] == 1 and info["items"][0]["corrupt"]
        assert cc.clear() == 1 and cc.info()["entries"] == 0
    finally:
        cc._override.clear()


def test_cache_directory_choice(monkeypatch, tmp_path):
    monkeypatch.setenv("BAYESDTA_CACHE_DIR", str(tmp_path / "env"))
    assert cc.cache_dir() == tmp_path / "env"
    for off in ("off", "0", "none", "OFF"):
        monkeypatch.setenv("BAYESDTA_CACHE_DIR", off)
        assert cc.cache_dir() is None
    monkeypatch.setenv("BAYESDTA_CACHE_DIR", "")  # empty: as if unset
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cc.cache_dir() == tmp_path / "xdg" / "bayesdta"
    try:
        cc.configure(directory=tmp_path / "opt")
        assert cc.cache_dir() == tmp_path / "opt"
        cc.configure(enabled=False)
        assert cc.cache_dir() is None
    finally:
        cc._override.clear()


# ------------------------------------------------------------------------------ code by address
SPECIAL_SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    import bayesdta as bd
    from bayesdta.inference import sampling
    warnings.simplefilter("ignore", bd.SamplerWarning)
    sys.path.insert(0, sys.argv[3])
    from test_compile_cache import special_fit
    out = {}
    for name in sys.argv[2].split(","):
        post = special_fit(name).idata.posterior
        out.update({f"{name}:{k}": post[k].values for k in post.data_vars})
    np.savez(sys.argv[1], **out)
    print(json.dumps({"stats": sampling.cache_info()}))
    """
)


def special_fit(name: str):
    """The fits of the cross-process test: a probit model, or t effects (22 studies).

    The t fit has the structure of tests/test_robust.py's outlier fits (2 levels, 17-32
    studies, default priors), so in a full session the in-process refit compiles nothing new.
    """
    if name == "probit":  # the fit of FIT_SCRIPT
        return bd.fit(
            bd.load_example("skin_tests"),
            seed=5,
            draws=60,
            tune=60,
            chains=2,
            cores=1,
            escalate=False,
            link="probit",
            verbose=False,
        )
    d = bd.load_example("dementia")
    data, kw = d.subset(np.arange(d.n_rows) < 22), {"random_effects": "t"}
    return bd.fit(
        data, seed=9, draws=40, tune=60, chains=2, cores=1, escalate=False, verbose=False, **kw
    )


def _special_process(cache: Path, out: Path, names: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SPECIAL_SCRIPT, str(out), names, str(Path(__file__).parent)],
        env=_env(cache),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"stats": json.loads(proc.stdout.strip().splitlines()[-1])["stats"]} | {
        "draws": dict(np.load(out))
    }


@pytest.fixture(scope="module")
def special_runs(runs, tmp_path_factory):
    """A new process fits the probit model of ``runs`` (on a copy of its cache, where it is
    stored) and a t model; then the t fit again in this process (after everything else the
    session fitted)."""
    cache = tmp_path_factory.mktemp("special_cache") / "cache"
    shutil.copytree(runs["cache"], cache)
    first = _special_process(cache, cache.parent / "s1.npz", "probit,t")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bd.SamplerWarning)
        post = special_fit("t").idata.posterior
    here = {f"t:{k}": post[k].values for k in post.data_vars}
    return {"cache": cache, "first": first, "here": here, "probit": runs["draws"][0]}


def test_code_calling_by_address_is_not_stored_and_refits_agree(special_runs, capsys):
    """Machine code holding addresses of its process is never reloaded by another process.

    The t family's gradient calls digamma through a scipy function pointer (a numba dynamic
    global): its code is not stored, and `bayesdta cache info` says so. The probit link is
    written with erfc only, so its code is stored and reloaded by another process. Either
    way the other process does not crash and gives the same draws for the same seed.
    """
    first = special_runs["first"]
    assert first["stats"]["compiles"] == 1  # t
    assert first["stats"]["disk_hits"] == 1  # probit: loaded
    assert first["stats"]["disk_not_stored"] == 1
    assert first["stats"]["disk_writes"] == 0 and first["stats"]["disk_errors"] == 0
    d1, here, probit = first["draws"], special_runs["here"], special_runs["probit"]
    assert {f"probit:{k}" for k in probit} == {k for k in d1 if k.startswith("probit:")}
    for k in probit:
        np.testing.assert_array_equal(d1[f"probit:{k}"], probit[k], err_msg=k)
    t_keys = [k for k in d1 if k.startswith("t:")]
    assert set(t_keys) == set(here) >= {"t:nu", "t:theta"}
    for k in t_keys:
        np.testing.assert_array_equal(d1[k], here[k], err_msg=k)

    from bayesdta.cli import main

    assert main(["cache", "info", "--cache-dir", str(special_runs["cache"])]) == 0
    out = capsys.readouterr().out
    cc._override.clear()
    assert "entries: 2 " in out
    lines = [ln for ln in out.splitlines() if "structure=" in ln]
    assert sum("no code stored, compiled in each process" in ln for ln in lines) == 1
    assert sum(ln.rstrip().endswith("current") for ln in lines) == 1


def test_not_storable_follows_numbas_dynamic_globals():
    """The rule reads numba's own list of process addresses in the linked code library."""
    import numba

    @numba.cfunc("float64(float64)")
    def plain(x):
        return x * 2.0

    class Compiled:
        compiled_logp_func = plain
        compiled_expand_func = plain

    assert cc.not_storable(Compiled()) is None
    # a C function reached through a pointer of this process (as PyTensor calls scipy.special)
    import ctypes

    from numba.core.extending import get_cython_function_address

    erfcx = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_double, ctypes.c_int)(
        get_cython_function_address("scipy.special.cython_special", "__pyx_fuse_1erfcx")
    )

    @numba.cfunc("float64(float64)")
    def by_address(x):
        return erfcx(x, 1)

    class Special(Compiled):
        compiled_logp_func = by_address

    assert cc.not_storable(Special()) == cc.PROCESS_SPECIFIC
