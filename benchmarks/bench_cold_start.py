"""Benchmark: a fresh process that compiles vs a second process that loads the disk cache.

Run: python benchmarks/bench_cold_start.py [--three-level] [--keep-cache DIR]

For each model (40-study bivariate fit at the package defaults; with ``--three-level`` also
the osteoporosis meta-regression, 39 tables in 20 studies, at PLUMBING-sized draws) it starts
three processes one after the other on a fresh cache directory (``BAYESDTA_CACHE_DIR``):

* ``off``: the disk cache turned off (what every process paid before the cache existed);
* ``cold``: an empty cache: compiles and stores the compiled model;
* ``second``: loads the compiled model stored by ``cold``.

Each prints: the process wall and CPU time (measured by the parent; they include interpreter
start and imports), the time from the start of the script to the moment the sampler starts
(compiled model ready; its first draw follows within microseconds), the process's CPU time at
that moment (everything before it is single-threaded, so this is the wall time to the first
draw on an idle machine), the ``bd.fit`` call, and a digest of the draws (the same seed must
give the same draws in all three). The bivariate ``second`` run also times the log-density
gradient (the loaded C callback called through ctypes).
Results are recorded in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import hashlib
import numpy as np
import bayesdta as bd
from bayesdta import sampling
t_import = time.perf_counter() - t0
cpu_import = time.process_time()
warnings.simplefilter("ignore")
import nutpie
_real = nutpie.sample
marks = {}
def _sample(*a, **k):
    marks["sampler_start"] = time.perf_counter() - t0
    marks["cpu"] = time.process_time()
    return _real(*a, **k)
nutpie.sample = _sample
which, grad = sys.argv[1], sys.argv[2] == "1"
t = time.perf_counter()
if which == "bivariate":
    sys.path.insert(0, sys.argv[3])
    from bench_fit import simulate
    f = bd.fit(simulate(0), seed=1)
else:
    truth = bd.load_truth("osteoporosis_dl")
    f = bd.fit(bd.load_example("osteoporosis_dl"), seed=1, draws=300, tune=400, chains=2,
               **truth["model_spec"])
fit_s = time.perf_counter() - t
post = f.idata.posterior
h = hashlib.sha256()
for k in sorted(post.data_vars):
    h.update(np.ascontiguousarray(post[k].values).tobytes())
out = {"import_s": t_import, "cpu_import_s": cpu_import, "to_sampler_s": marks["sampler_start"],
       "cpu_to_sampler_s": marks["cpu"], "fit_s": fit_s, "cpu_at_fit_end_s": time.process_time(),
       "compile_or_load_s": f.timing["compile_s"], "sample_s": f.timing["sample_s"],
       "min_ess_bulk": float(f.diagnostics()["min_ess_bulk"]),
       "draws_digest": h.hexdigest()[:16], "stats": sampling.cache_info()}
if grad:
    import ctypes
    compiled = next(iter(sampling._COMPILED.values()))
    n = compiled.n_dim
    fn = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_uint64, ctypes.POINTER(ctypes.c_double),
                          ctypes.POINTER(ctypes.c_double), ctypes.POINTER(ctypes.c_double),
                          ctypes.c_void_p)(compiled.compiled_logp_func.address)
    ud = compiled.user_data  # the compiled model's own data (the first fit's)
    x = np.zeros(n); g = np.zeros(n); lp = np.zeros(())
    args = (n, x.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            g.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
            lp.ctypes.data_as(ctypes.POINTER(ctypes.c_double)), ud.ctypes.data)
    assert fn(*args) == 0
    reps = 20000
    t = time.perf_counter()
    for _ in range(reps):
        fn(*args)
    out["grad_us"] = (time.perf_counter() - t) / reps * 1e6
    out["n_dim"] = n
    t = time.perf_counter()
    for _ in range(reps):
        pass
    out["loop_us"] = (time.perf_counter() - t) / reps * 1e6
print(json.dumps(out))
"""


def run(which: str, cache: str, grad: bool) -> dict:
    env = dict(os.environ, BAYESDTA_CACHE_DIR=cache)
    env["PYTHONPATH"] = str(SRC) + os.pathsep + env.get("PYTHONPATH", "")
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, which, "1" if grad else "0", str(HERE)],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = wall
    out["process_cpu_s"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--three-level", action="store_true", help="also the osteoporosis model")
    p.add_argument("--skip-off", action="store_true", help="skip the cache-off process")
    p.add_argument("--keep-cache", default=None, help="use (and keep) this cache directory")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cache = args.keep_cache or tmp
        try:
            load = os.getloadavg()[0]
        except OSError:  # pragma: no cover
            load = float("nan")
        print(json.dumps({"cpus": os.cpu_count(), "loadavg_1min": load}))
        models = ["bivariate"] + (["three-level"] if args.three_level else [])
        for which in models:
            results = {}
            kinds = [
                ("off", "off", False),
                ("cold", cache, False),
                ("second", cache, which == "bivariate"),
            ]
            for kind, dir_, grad in kinds[args.skip_off :]:
                results[kind] = run(which, dir_, grad)
                print(json.dumps({"model": which, "kind": kind, **results[kind]}))
            digests = {r["draws_digest"] for r in results.values()}
            print(json.dumps({"model": which, "same_draws": len(digests) == 1}))


if __name__ == "__main__":
    main()
