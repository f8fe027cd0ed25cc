"""Benchmark: cost of one log density + gradient of the three-level meta-regression.

Run: python benchmarks/bench_gradient.py [--rows 39 400 4000] [--calls 20000]

For each size (39 = the packaged osteoporosis example; larger sizes stack simulated replicates
of its design, ``simulate_osteoporosis(seed=100 + r)``, as new studies), with the truth's model
specification:

* ``graph``: nutpie's compiled log density of the PyMC graph (numba), called at a random point
  through its C address with ``ctypes``;
* ``numba``: the hand-written log density (``bayesdta.families.bivariate_logp``) through the
  same C interface (the native model of ``inference.native.compile_native``, which the
  sampler uses);
* ``noop``: a C callback that does nothing (the ``ctypes`` call overhead, subtracted in the
  ``net`` columns);
* ``kernel``: the numba kernel alone, called in a numba loop (no Python).

Also checks that both give the same log density and gradient at the point. Prints one JSON line
per size: CPU time (``time.process_time``, less sensitive to other processes on the cores than
wall time) and wall time per call in microseconds, and the load average.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import time
import warnings

import numpy as np


def _data(rows: int):
    import pandas as pd
    from bayesdta.datasets.simulate_osteoporosis import simulate_osteoporosis

    import bayesdta as bd

    if rows == 39:
        return bd.load_example("osteoporosis_dl")
    tabs = []
    for r in range(rows // 39 + 1):
        t = simulate_osteoporosis(seed=100 + r)[0]
        t["study"] = t["study"].astype(str) + f"_{r}"
        tabs.append(t)
    return bd.DTAData.from_frame(pd.concat(tabs).iloc[:rows])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, nargs="+", default=[39])
    ap.add_argument("--calls", type=int, default=20000)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    import numba
    import nutpie

    import bayesdta as bd
    from bayesdta.families import bivariate_logp as bl
    from bayesdta.families.bivariate import ModelSpec, build_model
    from bayesdta.inference import native, sampling

    proto = ctypes.CFUNCTYPE(
        ctypes.c_int64,
        ctypes.c_uint64,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
    )

    @numba.cfunc("int64(uint64, CPointer(double), CPointer(double), CPointer(double), voidptr)")
    def noop(d, a, b, c, u):
        return 0

    truth = bd.load_truth("osteoporosis_dl")
    for rows in args.rows:
        built = build_model(_data(rows), ModelSpec(**truth["model_spec"]))
        t0 = time.perf_counter()
        graph = nutpie.compile_pymc_model(
            built.model, initial_points=sampling._neutral_initial_points(built.model)
        )
        compile_graph = time.perf_counter() - t0
        t0 = time.perf_counter()
        fast = native.compile_native(
            built, sampling._neutral_initial_points(built.model, native.free_shapes(built))
        )
        compile_numba = time.perf_counter() - t0
        n = graph.n_dim
        x = np.random.default_rng(0).normal(size=n) * 0.3
        calls = max(50, args.calls * 39 // rows)

        def timed(cfunc, user_data, x=x, n=n, calls=calls):
            f = proto(cfunc.address)
            g, lp = np.zeros(n), np.zeros(1)
            ptrs = (x.ctypes.data, g.ctypes.data, lp.ctypes.data, user_data.ctypes.data)
            rc = f(n, *ptrs)
            best = (np.inf, np.inf)
            for _ in range(3):
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(calls):
                    f(n, *ptrs)
                c, w = time.process_time() - c0, time.perf_counter() - w0
                best = min(best, (c / calls * 1e6, w / calls * 1e6))
            return rc, float(lp[0]), g.copy(), best

        rc_g, lp_g, g_g, t_g = timed(graph.compiled_logp_func, graph.user_data)
        rc_f, lp_f, g_f, t_f = timed(fast.compiled_logp_func, fast.user_data)
        _, _, _, t_0 = timed(noop, graph.user_data)
        a = fast.native_arrays
        data = tuple(a[nm] for nm in bl.NATIVE_FIELDS)

        @numba.njit
        def loop(x, m, data):
            (tp, tn, n1, n0, wt, gidx, cw, gsize, X1, X2, bm1, bs1, bm2, bs2, eta, sp, codes) = data
            offsets, n_dim = bl.three_level_offsets(X1.shape[1], X2.shape[1], gsize.shape[0], X1.shape[0])
            c = (codes[0], codes[1], codes[2], codes[3])
            s = 0.0
            for _ in range(m):
                v, g = bl.three_level_kernel(
                    x, offsets, c, n_dim, tp, tn, n1, n0, wt, gidx, cw, gsize, X1, X2,
                    bm1, bs1, bm2, bs2, eta[0], eta[1], sp[0, 0], sp[0, 1], sp[1, 0],
                    sp[1, 1], sp[2, 0], sp[2, 1], sp[3, 0], sp[3, 1],
                )
                s += v + g[0]
            return s

        loop(x, 1, data)
        c0 = time.process_time()
        loop(x, calls, data)
        kernel = (time.process_time() - c0) / calls * 1e6
        print(
            json.dumps(
                {
                    "rows": rows,
                    "padded_rows": int(built.data_values["tp"].shape[0]),
                    "parameters": int(n),
                    "graph_us_cpu_wall": [round(v, 2) for v in t_g],
                    "numba_us_cpu_wall": [round(v, 2) for v in t_f],
                    "ctypes_noop_us_cpu_wall": [round(v, 2) for v in t_0],
                    "graph_net_us_cpu": round(t_g[0] - t_0[0], 2),
                    "numba_net_us_cpu": round(t_f[0] - t_0[0], 2),
                    "numba_kernel_us_cpu": round(kernel, 2),
                    "ratio_net_cpu": round((t_g[0] - t_0[0]) / max(t_f[0] - t_0[0], 1e-9), 1),
                    "same_logp": bool(rc_g == rc_f == 0 and np.isclose(lp_g, lp_f, rtol=1e-10)),
                    "max_abs_grad_diff": float(np.max(np.abs(g_g - g_f))),
                    "compile_graph_s": round(compile_graph, 1),
                    "compile_numba_callback_s": round(compile_numba, 2),
                    "load_avg": [round(v, 2) for v in os.getloadavg()],
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
