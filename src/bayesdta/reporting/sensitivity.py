"""Sensitivity sweeps: prior grids, leave-one-study-out, exclusions, model variants.

:func:`run_sweep` fits every variant declared in a spec's ``[sensitivity]`` table and writes one
comparison table and one plot of how the pooled quantities move across the sweep.

* **Shapes are kept.** Leaving out a study or excluding rows by a covariate gives those rows
  likelihood weight 0 (:func:`bayesdta.fit` ``weights=``), so every such variant re-uses the
  compiled model of the baseline; a prior grid that keeps the prior families only changes model
  data. Only other structures (two vs three levels, other prior families) compile again, once
  per process.
* **Seeds are deterministic.** The baseline uses the seed of the fit it varies (it reproduces
  ``bayesdta run``); every other variant the seed ``derive_seed(spec seed, "sweep:" + name)``,
  so a variant gives the same numbers in any process, on any worker, in any order.
* **Finished variants are cached** in ``OUT/cache/<hash>.json`` (hash of data, model, weights,
  sampler settings and seed); an interrupted sweep resumes where it stopped.
* **Execution.** ``workers=1`` runs the variants in this process (one compilation per structure);
  ``workers>1`` in a pool of local processes (each compiles once per structure); ``scheduler=``
  on a Dask distributed cluster. ``workers="auto"`` (default) uses ``cpu_count // chains``
  processes: nutpie already runs the chains of one fit in parallel, so extra processes pay
  off only when there are more cores than chains (measured on 2 cores: ``models/README.md``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import BayesDTAError, DTADataError, SamplerWarning, SpecError
from ..families.bivariate import PARAMETER_NAMES
from .spec import LINKS, AnalysisSpec, derive_seed, grid_product, spec_hash

__all__ = [
    "Variant",
    "build_variants",
    "run_sweep",
    "comparison_table",
    "plot_sweep",
    "default_workers",
    "compact_table",
    "KNOWN_QUANTITIES",
]

#: Pooled quantities a sweep can compare (plus ``beta_*[...]`` and ``tau_*[...]`` names).
KNOWN_QUANTITIES = (
    "sensitivity",
    "specificity",
    "lr_positive",
    "lr_negative",
    "dor",
    *PARAMETER_NAMES,
    "auc",
    "auc_partial",
    "i2_sensitivity",
    "i2_specificity",
    "i2_bivariate",
    "i2_sensitivity_zd",
    "i2_specificity_zd",
    "i2_bivariate_zd",
)
#: 2: weight-0 rows no longer enter I2, partial AUC or the design (issue 10).
_CACHE_VERSION = 2


@dataclass(frozen=True)
class Variant:
    """One fit of a sweep.

    Attributes
    ----------
    name : str
        Unique within the sweep (``baseline``, ``loso:<study>``, ``prior:<...>``, ...).
    kind : str
        ``baseline``, ``prior``, ``loso``, ``exclude``, ``levels`` or ``link``.
    description : str
        One line for tables and reports.
    model : dict
        :class:`~bayesdta.model.ModelSpec` keyword arguments.
    excluded_rows : tuple of int
        Rows given likelihood weight 0.
    seed : int
        Sampler seed.
    sampler : dict
        Sampler settings.
    implemented : bool
        False for variants the package cannot fit yet (alternative links); they are reported,
        not skipped silently.
    note : str
        Why a variant is not implemented, or other remarks.
    """

    name: str
    kind: str
    description: str
    model: dict[str, Any]
    excluded_rows: tuple[int, ...] = ()
    seed: int = 0
    sampler: dict[str, Any] = field(default_factory=dict)
    implemented: bool = True
    note: str = ""

    def weights(self, n_rows: int) -> np.ndarray | None:
        """Per-row likelihood weights (None when no row is excluded)."""
        if not self.excluded_rows:
            return None
        w = np.ones(n_rows)
        w[list(self.excluded_rows)] = 0.0
        return w

    def key(self, data_hash: str, extra: Mapping[str, Any] | None = None) -> str:
        """Cache key: a hash of everything that determines the variant's numbers."""
        from .. import __version__

        return spec_hash(
            {
                "cache_version": _CACHE_VERSION,
                "bayesdta": __version__,
                "data": data_hash,
                "model": self.model,
                "excluded_rows": list(self.excluded_rows),
                "seed": self.seed,
                "sampler": self.sampler,
                **dict(extra or {}),
            },
            length=20,
        )

    def to_dict(self) -> dict[str, Any]:
        """Serializable form (what is sent to a worker)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "model": self.model,
            "excluded_rows": list(self.excluded_rows),
            "seed": self.seed,
            "sampler": self.sampler,
            "implemented": self.implemented,
            "note": self.note,
        }


def _check_quantities(spec: AnalysisSpec, quantities: Sequence[str]) -> None:
    for i, q in enumerate(quantities):
        if q in KNOWN_QUANTITIES or q.startswith(("beta_", "tau_")):
            continue
        import difflib

        close = difflib.get_close_matches(q, KNOWN_QUANTITIES, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SpecError(
            f"{spec.source}: sensitivity.quantities[{i}]: unknown quantity {q!r}{hint}; "
            f"known: {', '.join(KNOWN_QUANTITIES)} and beta_*[...] coefficients"
        )


#: Link names that are recognised but not offered (listed as "not implemented" variants).
UNAVAILABLE_LINKS = ("cloglog", "loglog", "cauchit", "log")


def _check_links(spec: AnalysisSpec, links: Sequence[str]) -> None:
    """Reject unknown link names (typos) before anything is fitted."""
    known = (*LINKS, *UNAVAILABLE_LINKS)
    for i, link in enumerate(links):
        if link not in known:
            import difflib

            close = difflib.get_close_matches(str(link), known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SpecError(
                f"{spec.source}: sensitivity.links[{i}]: unknown link {link!r}{hint}; "
                f"available: {', '.join(LINKS)}"
            )
    dup = sorted({x for x in links if list(links).count(x) > 1})
    if dup:
        raise SpecError(f"{spec.source}: sensitivity.links: {dup[0]!r} is listed twice")


def build_variants(spec: AnalysisSpec, data) -> list[Variant]:
    """The variants declared in ``spec.sensitivity`` for ``data``, in a stable order.

    Order: baseline, prior grid, named prior sets, leave-one-study-out (in study order),
    exclusions, levels, links.
    """
    sw = spec.sensitivity
    if sw is None:
        raise SpecError(
            f"{spec.source}: sensitivity: the spec declares no sweeps; add a [sensitivity] table "
            "(see models/README.md)"
        )
    _check_quantities(spec, sw.quantities)
    fit = spec.fit_spec(sw.fit)
    base = dict(fit.model)
    sampler = spec.sampler_settings(fit, **sw.sampler)
    sampler.pop("progress", None)
    out: list[Variant] = []

    def add(name: str, kind: str, description: str, model=None, rows=(), **kw) -> None:
        seed = spec.fit_seed(fit) if kind == "baseline" else derive_seed(spec.seed, f"sweep:{name}")
        out.append(
            Variant(
                name=name,
                kind=kind,
                description=description,
                model=dict(model if model is not None else base),
                excluded_rows=tuple(int(r) for r in rows),
                seed=seed,
                sampler=dict(sampler),
                **kw,
            )
        )

    def with_priors(priors: Mapping[str, str]) -> dict[str, Any]:
        m = dict(base)
        merged = dict(base.get("priors", {}))
        merged.update(priors)
        m["priors"] = merged
        return m

    if sw.baseline:
        add("baseline", "baseline", f"{fit.title} as specified")
    for combo in grid_product(sw.prior_grid):
        label = "; ".join(f"{k} ~ {v}" for k, v in combo.items())
        add(f"prior:{label}", "prior", f"priors {label}", with_priors(combo))
    for s in sw.priors:
        label = "; ".join(f"{k} ~ {v}" for k, v in s["priors"].items())
        add(
            f"prior:{s['name']}",
            "prior",
            f"priors '{s['name']}': {label}",
            with_priors(s["priors"]),
        )
    if sw.leave_one_study_out:
        idx = data.study_index
        chosen = (
            set(sw.leave_one_study_out)
            if isinstance(sw.leave_one_study_out, tuple)
            else set(data.studies)
        )
        for i, study in enumerate(data.studies):
            if study not in chosen:
                continue
            rows = np.flatnonzero(idx == i)
            add(
                f"loso:{study}",
                "loso",
                f"without study {study} ({len(rows)} row{'s' if len(rows) > 1 else ''})",
                rows=rows,
            )
    frame = data.frame
    for e in sw.exclude:
        if "column" in e:
            from .spec import matches

            rows = np.flatnonzero(matches(frame[e["column"]], e["values"]))
            what = f"{e['column']} in {e['values']}"
        else:
            rows = np.flatnonzero(frame["study"].isin(e["studies"]).to_numpy())
            what = f"studies {e['studies']}"
        add(
            f"exclude:{e['name']}",
            "exclude",
            f"without rows with {what} ({len(rows)} rows)",
            rows=rows,
        )
    if sw.low_risk_only:  # QUADAS-2 sensitivity analysis (issue 13)
        from ..data.quadas import low_risk_rows

        try:
            low, note = low_risk_rows(data)
        except DTADataError as exc:
            raise SpecError(f"{spec.source}: sensitivity.low_risk_only: {exc}") from None
        if len(set(np.asarray(frame["study"], dtype=object)[low])) < 2:
            raise SpecError(
                f"{spec.source}: sensitivity.low_risk_only refused: {note}; at least 2 studies "
                "are needed"
            )
        add("low_risk_only", "exclude", f"only tables at {note}", rows=np.flatnonzero(~low))
    resolved = fit.model_spec().resolved_levels(data)
    for lv in sw.levels:
        m = dict(base)
        m["levels"] = lv
        extra = " (as baseline)" if lv == resolved else ""
        text = (
            "three levels (study + row within study)"
            if lv == 3
            else "two levels (every row its own study)"
            if data.has_clusters
            else "two levels"
        )
        add(f"levels:{lv}", "levels", text + extra, m)
    _check_links(spec, sw.links)
    for link in sw.links:
        if link in LINKS:
            m = dict(base)
            if link == "logit":
                m.pop("link", None)
            else:
                m["link"] = link
            extra = " (as baseline)" if link == fit.link else ""
            add(f"link:{link}", "link", f"{link} link{extra}", m)
        else:
            add(
                f"link:{link}",
                "link",
                f"{link} link",
                implemented=False,
                note=f"link {link!r} is not available (only {', '.join(LINKS)}; asymmetric "
                "links such as cloglog are not offered: the SROC curves use "
                "link(fpr) = -link(sp)); not fitted",
            )
    names = [v.name for v in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SpecError(f"{spec.source}: sensitivity: duplicated variant names {dup}")
    return out


# ------------------------------------------------------------------------------ worker
_DATA_CACHE: dict[str, Any] = {}


def _run_variant(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Fit one variant (runs in this process, a pool worker or a Dask worker).

    Only plain data cross the process boundary: the data as JSON, the variant as a dict; the
    compiled model is cached per process by :mod:`bayesdta.sampling`.
    """
    from ..data.tables import DTAData
    from ..families.bivariate import ModelSpec
    from ..inference import sampling
    from ..inference.fit import fit as fit_model

    data = _DATA_CACHE.get(payload["data_hash"])
    if data is None:
        data = DTAData.from_json(payload["data"])
        _DATA_CACHE.clear()
        _DATA_CACHE[payload["data_hash"]] = data
    v = payload["variant"]
    sampler = dict(v["sampler"])
    if payload.get("cores") and "cores" not in sampler:
        sampler["cores"] = payload["cores"]
    w = None
    if v["excluded_rows"]:
        w = np.ones(data.n_rows)
        w[v["excluded_rows"]] = 0.0
    compiles_before = sampling.cache_info()["compiles"]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        f = fit_model(data, spec=ModelSpec(**v["model"]), weights=w, seed=v["seed"], **sampler)
    elapsed = time.perf_counter() - t0
    check_complete(f)
    names = f.quantity_names()
    wanted = [q for q in payload["quantities"] if q in names]
    table = f.summary(payload["ci"], quantities=wanted) if wanted else pd.DataFrame()
    summary = {
        q: {c: float(table.loc[q, c]) for c in ("mean", "median", "sd", "lower", "upper")}
        for q in wanted
    }
    diag = f.diagnostics()
    kept = np.ones(data.n_rows, dtype=bool)
    kept[v["excluded_rows"]] = False
    result: dict[str, Any] = {
        "name": v["name"],
        "key": payload["key"],
        "status": "ok",
        "seed": int(f.sampler["seed"]),
        "levels": f.levels,
        "n_rows": int(kept.sum()),
        "n_studies": int(len(np.unique(data.study_index[kept]))),
        "summary": summary,
        "diagnostics": {
            "divergences": int(diag["divergences"]),
            "max_r_hat": float(diag["max_r_hat"]),
            "min_ess_bulk": float(diag["min_ess_bulk"]),
            "min_ess_tail": float(diag["min_ess_tail"]),
            "warnings": list(diag["warnings"]),
        },
        "sampler": {
            k: f.sampler[k] for k in ("backend", "draws", "tune", "chains") if k in f.sampler
        },
        "elapsed_s": elapsed,
        "compiled": sampling.cache_info()["compiles"] > compiles_before,
        "pid": os.getpid(),
    }
    if payload.get("save_fit"):
        with tempfile.TemporaryDirectory() as tmp:
            p = f.save(Path(tmp) / "fit.nc")
            result["netcdf"] = p.read_bytes()
    return result


def _worker_init() -> None:  # pragma: no cover - runs in worker processes
    import matplotlib

    matplotlib.use("Agg")
    warnings.simplefilter("ignore", SamplerWarning)


# ------------------------------------------------------------------------------ runner
@contextlib.contextmanager
def interrupt_guard():
    """Remember Ctrl-C even when a library swallows the KeyboardInterrupt.

    nutpie answers Ctrl-C by returning the draws sampled so far instead of raising; a sweep or
    a run would then take a truncated fit for a result. Inside this context SIGINT also sets a
    flag; the yielded function tells whether it was pressed. Outside the main thread (where
    signal handlers cannot be set) the flag stays False.
    """
    import signal
    import threading

    pressed = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield pressed.is_set
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        pressed.set()
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield pressed.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


def check_complete(fit) -> None:
    """Raise KeyboardInterrupt when a fit has fewer draws than requested (sampling was aborted)."""
    want = fit.sampler.get("draws")
    got = int(fit.posterior.sizes.get("draw", 0))
    if want is not None and got < int(want):
        raise KeyboardInterrupt(f"sampling interrupted: {got} of {want} draws")


def default_workers(chains: int, n_tasks: int) -> int:
    """Worker processes for ``workers="auto"``: ``cpu_count // chains``, at least 1.

    nutpie runs the chains of one fit in parallel threads, so with as many chains as cores a
    second process only competes for the same cores and pays a second compilation.
    """
    cpus = os.cpu_count() or 1
    return max(1, min(cpus // max(int(chains), 1), max(n_tasks, 1)))


def _cache_paths(cache: Path, key: str) -> tuple[Path, Path]:
    return cache / f"{key}.json", cache / f"{key}.nc"


def _load_cached(cache: Path, key: str, save_fit: bool) -> dict[str, Any] | None:
    pj, pn = _cache_paths(cache, key)
    if not pj.exists() or (save_fit and not pn.exists()):
        return None
    try:
        res = json.loads(pj.read_text())
    except (json.JSONDecodeError, OSError):
        return None  # a damaged entry is recomputed
    if res.get("key") != key or res.get("status") != "ok":
        return None
    res["cached"] = True
    return res


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _store(cache: Path, result: dict[str, Any]) -> None:
    pj, pn = _cache_paths(cache, result["key"])
    nc = result.pop("netcdf", None)
    if nc is not None:
        _atomic_write(pn, nc)
    _atomic_write(pj, json.dumps(result, indent=1, sort_keys=True).encode())


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        initial=initial,
        desc="sweep",
        unit="fit",
        disable=not enabled,
        dynamic_ncols=True,
        leave=True,
    )


def _execute(
    tasks: list[dict[str, Any]],
    *,
    workers: int,
    scheduler: Any,
    on_result: Callable[[dict[str, Any]], None],
    on_error: Callable[[dict[str, Any], BaseException], None],
) -> str:
    """Run the payloads; returns a description of the executor used."""
    if not tasks:
        return "none (all cached)"
    if scheduler is not None:
        return _execute_dask(tasks, scheduler, on_result, on_error)
    if workers <= 1:
        with interrupt_guard() as interrupted:
            for t in tasks:
                try:
                    res = _run_variant(t)
                except Exception as exc:  # a failed variant is reported, the sweep goes on
                    if interrupted():
                        raise KeyboardInterrupt from None
                    on_error(t, exc)
                    continue
                if interrupted():  # nutpie returns the draws so far on Ctrl-C: not a result
                    raise KeyboardInterrupt
                on_result(res)
        return "sequential (this process)"
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    cpus = os.cpu_count() or 1
    cores = max(1, cpus // workers)
    for t in tasks:
        t["cores"] = cores
    ex = ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init
    )
    try:
        futs = {ex.submit(_run_variant, t): t for t in tasks}
        for fut in as_completed(futs):
            exc = fut.exception()
            if exc is not None:
                on_error(futs[fut], exc)
            else:
                on_result(fut.result())
    except BaseException:
        procs = list(getattr(ex, "_processes", {}).values())
        ex.shutdown(wait=False, cancel_futures=True)
        for p in procs:
            p.terminate()
        raise
    ex.shutdown(wait=True)
    return f"{workers} local processes"


def _execute_dask(tasks, scheduler, on_result, on_error) -> str:
    try:
        from distributed import Client, as_completed
    except ImportError:  # pragma: no cover - depends on the environment
        raise BayesDTAError(
            "--scheduler needs dask.distributed: pip install 'bayesdta[dask]'"
        ) from None
    own = not isinstance(scheduler, Client)
    try:
        client = Client(scheduler) if own else scheduler
    except OSError as exc:
        raise BayesDTAError(f"cannot connect to the Dask scheduler {scheduler!r}: {exc}") from None
    futs = []
    try:
        futs = client.map(_run_variant, tasks, pure=False)
        index = {f.key: t for f, t in zip(futs, tasks, strict=True)}
        for fut in as_completed(futs):
            if fut.status == "error":
                on_error(index[fut.key], fut.exception())
            else:
                on_result(fut.result())
            fut.release()
    except BaseException:
        client.cancel(futs)
        raise
    finally:
        address = client.scheduler.address if client.scheduler else scheduler
        if own:
            client.close()
    return f"Dask scheduler {address}"


def run_sweep(
    spec: AnalysisSpec,
    out: str | Path,
    *,
    workers: int | str | None = None,
    scheduler: Any = None,
    progress: bool = True,
    write_outputs: bool = True,
) -> pd.DataFrame:
    """Run the sweeps declared in ``spec.sensitivity`` and write the comparison.

    Parameters
    ----------
    spec : AnalysisSpec
        A spec with a ``[sensitivity]`` table.
    out : path
        Output folder: ``sweep.csv``, ``sweep.tex``, ``sweep.md``, ``sweep.png`` / ``.pdf``,
        ``sweep.json`` and the cache ``cache/``.
    workers : int or "auto", optional
        Local worker processes (default: ``sensitivity.workers`` of the spec, else ``"auto"``,
        see :func:`default_workers`); 1 runs in this process.
    scheduler : str or distributed.Client, optional
        Address of a Dask scheduler (or a client): run the fits on that cluster instead.
    progress : bool
        Show a progress bar (stderr).
    write_outputs : bool
        Write the table, plot and record (the cache is always written).

    Returns
    -------
    pandas.DataFrame
        The comparison table (one row per variant, in declaration order), as in ``sweep.csv``.
    """
    from .. import __version__

    out = Path(out)
    if spec.latent_class and spec.latent_class["sweep"]:
        # sweep axis over the latent-class fit's reference-accuracy priors (written beside)
        from .latent_class import run_latent_class_sweep

        lc_table = run_latent_class_sweep(spec, out, progress=progress)
        if spec.sensitivity is None:
            return lc_table
    cache = out / "cache"
    data = spec.load_data()
    spec.check_data(data)
    variants = build_variants(spec, data)
    cache.mkdir(parents=True, exist_ok=True)
    sw = spec.sensitivity
    assert sw is not None
    ci = float(spec.outputs["ci"])
    quantities = list(sw.quantities)
    data_json = data.to_json()
    data_hash = spec_hash(data_json)
    extra = {"quantities": quantities, "ci": ci}

    results: dict[str, dict[str, Any]] = {}
    tasks: list[dict[str, Any]] = []
    for v in variants:
        if not v.implemented:
            results[v.name] = {"name": v.name, "status": "not implemented", "note": v.note}
            continue
        key = v.key(data_hash, extra)
        hit = _load_cached(cache, key, sw.save_fits)
        if hit is not None:
            results[v.name] = hit
            continue
        tasks.append(
            {
                "variant": v.to_dict(),
                "key": key,
                "data": data_json,
                "data_hash": data_hash,
                "quantities": quantities,
                "ci": ci,
                "save_fit": sw.save_fits,
            }
        )
    n_cached = sum(1 for r in results.values() if r.get("cached"))
    n_fit = len(tasks)
    if workers is None:
        workers = sw.workers
    chains = int(spec.sampler_settings(spec.fit_spec(sw.fit), **sw.sampler).get("chains", 4))
    if workers == "auto":
        workers = default_workers(chains, n_fit)
    workers = int(workers)
    if workers < 1:
        raise SpecError(f"workers must be a positive integer or 'auto', got {workers}")

    bar = _progress_bar(total=n_fit + n_cached, initial=n_cached, enabled=progress)
    if n_cached:
        bar.set_postfix_str(f"{n_cached} cached")
    t0 = time.perf_counter()

    def on_result(res: dict[str, Any]) -> None:
        _store(cache, res)
        results[res["name"]] = res
        bar.update(1)

    def on_error(task: dict[str, Any], exc: BaseException) -> None:
        name = task["variant"]["name"]
        results[name] = {"name": name, "status": "failed", "note": f"{type(exc).__name__}: {exc}"}
        bar.update(1)

    try:
        executor = _execute(
            tasks, workers=workers, scheduler=scheduler, on_result=on_result, on_error=on_error
        )
    finally:
        bar.close()
    if sw.comparison_models and spec.comparison is not None:  # comparison-model axis
        from .comparative import comparison_sweep

        settings = spec.sampler_settings(spec.main, **sw.sampler)
        options = {"ci": spec.outputs["ci"], **spec.comparison}
        seed = derive_seed(spec.seed, "comparison")
        comparison_sweep(data, options, out, sw.comparison_models, settings=settings, seed=seed)
    elapsed = time.perf_counter() - t0
    if not variants and sw.comparison_models:  # only the comparison-model axis was asked for
        table = pd.DataFrame(columns=["variant", "kind", "status"])
    else:
        table = comparison_table(variants, results, quantities)
    if write_outputs and len(table):
        from .formats import write_table

        write_table(table, out / "sweep", formats=("csv",), index=False)
        write_table(
            compact_table(table, quantities),
            out / "sweep",
            formats=("latex", "md"),
            index=False,
            caption=f"Sensitivity analysis: posterior median [{ci:.0%} interval] per variant.",
        )
        fig = plot_sweep(table, quantities=quantities[:3], ci=ci)
        for fmt in ("png", "pdf"):
            fig.savefig(out / f"sweep.{fmt}", dpi=150, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
    if write_outputs:
        record = {
            "bayesdta": __version__,
            "spec": spec.to_dict(),
            "spec_text": spec.text,
            "fit": sw.fit,
            "quantities": quantities,
            "ci": ci,
            "executor": executor,
            "workers": workers,
            "n_variants": len(variants),
            "n_fitted": n_fit,
            "n_cached": n_cached,
            "elapsed_s": elapsed,
            "variants": [
                {**v.to_dict(), "status": results.get(v.name, {}).get("status", "missing")}
                for v in variants
            ],
        }
        (out / "sweep.json").write_text(json.dumps(record, indent=1, default=str))
    table.attrs.update(
        {"executor": executor, "n_fitted": n_fit, "n_cached": n_cached, "elapsed_s": elapsed}
    )
    return table


def comparison_table(
    variants: Sequence[Variant], results: Mapping[str, Mapping[str, Any]], quantities: Sequence[str]
) -> pd.DataFrame:
    """The comparison table of a sweep, one row per variant.

    Columns: status, rows and studies used, posterior median and interval of each quantity,
    the change of the median from the baseline (``<q>_change``) and sampler diagnostics.
    """
    base = results.get("baseline") if any(v.kind == "baseline" for v in variants) else None
    rows = []
    for v in variants:
        r = results.get(v.name, {"status": "missing"})
        row: dict[str, Any] = {
            "variant": v.name,
            "kind": v.kind,
            "description": v.description,
            "status": r.get("status", "missing"),
            "n_rows": r.get("n_rows", np.nan),
            "n_studies": r.get("n_studies", np.nan),
            "levels": r.get("levels", np.nan),
            "seed": v.seed,
        }
        summ = r.get("summary", {})
        for q in quantities:
            s = summ.get(q, {})
            row[f"{q}_median"] = s.get("median", np.nan)
            row[f"{q}_lower"] = s.get("lower", np.nan)
            row[f"{q}_upper"] = s.get("upper", np.nan)
            if base is not None and base.get("status") == "ok":
                b = base.get("summary", {}).get(q, {}).get("median", np.nan)
                row[f"{q}_change"] = row[f"{q}_median"] - b
        d = r.get("diagnostics", {})
        row["divergences"] = d.get("divergences", np.nan)
        row["max_r_hat"] = d.get("max_r_hat", np.nan)
        row["min_ess_bulk"] = d.get("min_ess_bulk", np.nan)
        row["note"] = r.get("note") or "; ".join(d.get("warnings", []))
        rows.append(row)
    df = pd.DataFrame(rows)
    for c in ("n_rows", "n_studies", "levels", "divergences"):
        df[c] = df[c].astype("Int64")
    return df


def compact_table(table: pd.DataFrame, quantities: Sequence[str], *, digits: int = 3):
    """The comparison table for reading: ``median [lower, upper]`` per quantity."""
    out = table[["variant", "status"]].copy()
    for q in quantities:
        if f"{q}_median" not in table:
            continue
        out[q] = [
            "" if pd.isna(m) else f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"
            for m, lo, hi in zip(
                table[f"{q}_median"], table[f"{q}_lower"], table[f"{q}_upper"], strict=True
            )
        ]
    for c in ("divergences", "max_r_hat", "min_ess_bulk"):
        out[c] = table[c]
    return out


_KIND_COLORS = {
    "baseline": "black",
    "prior": "tab:blue",
    "loso": "tab:gray",
    "exclude": "tab:red",
    "levels": "tab:green",
    "link": "tab:purple",
}
_LABELS = {
    "sensitivity": "Pooled sensitivity",
    "specificity": "Pooled specificity",
    "auc": "SROC AUC",
    "dor": "Diagnostic odds ratio",
}


def plot_sweep(
    table: pd.DataFrame,
    *,
    quantities: Sequence[str] = ("sensitivity", "specificity", "auc"),
    ci: float = 0.95,
):
    """How the pooled quantities move across a sweep: one panel per quantity.

    Each variant is a point (posterior median) with its credible interval; the baseline's
    median is a dashed line and its interval a shaded band. Variants that were not fitted
    (e.g. alternative links not implemented yet) are listed with a note.

    Parameters
    ----------
    table : pandas.DataFrame
        The output of :func:`comparison_table` / :func:`run_sweep`.
    quantities : sequence of str
        Quantities to show (columns ``<q>_median``, ``<q>_lower``, ``<q>_upper``).
    ci : float
        Interval probability (for the axis label).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    qs = [q for q in quantities if f"{q}_median" in table.columns]
    n = len(table)
    fig, axes = plt.subplots(
        1,
        max(len(qs), 1),
        figsize=(3.6 * max(len(qs), 1) + 2.2, 0.9 + 0.24 * max(n, 4)),
        sharey=True,
        squeeze=False,
    )
    y = np.arange(n)[::-1]
    base = table[table["kind"] == "baseline"]
    for ax, q in zip(axes[0], qs, strict=False):
        med = table[f"{q}_median"].to_numpy(float)
        lo = table[f"{q}_lower"].to_numpy(float)
        hi = table[f"{q}_upper"].to_numpy(float)
        if len(base) and np.isfinite(base[f"{q}_median"].iloc[0]):
            ax.axvspan(
                base[f"{q}_lower"].iloc[0], base[f"{q}_upper"].iloc[0], color="0.9", zorder=0
            )
            ax.axvline(base[f"{q}_median"].iloc[0], color="0.4", ls="--", lw=1, zorder=1)
        for i, kind in enumerate(table["kind"]):
            c = _KIND_COLORS.get(kind, "tab:orange")
            if np.isfinite(med[i]):
                ax.plot([lo[i], hi[i]], [y[i], y[i]], color=c, lw=1.2)
                ax.plot(med[i], y[i], "o", color=c, ms=4)
            else:
                ax.text(
                    0.02,
                    y[i],
                    table["status"].iloc[i],
                    transform=ax.get_yaxis_transform(),
                    va="center",
                    fontsize=7,
                    color="0.4",
                )
        ax.set_xlabel(f"{_LABELS.get(q, q)}\n(median, {ci:.0%} interval)")
        ax.grid(axis="x", color="0.92")
    ax0 = axes[0][0]
    ax0.set_yticks(y)
    ax0.set_yticklabels([_short(s) for s in table["variant"]], fontsize=7)
    ax0.set_ylim(-0.7, n - 0.3)
    fig.suptitle("Sensitivity analysis: pooled estimates across the sweep", fontsize=10)
    fig.tight_layout()
    return fig


def _short(name: str, width: int = 48) -> str:
    name = re.sub(r"\(sigma=|\(eta=|\(beta=|\(lam=", "(", name)
    return name if len(name) <= width else name[: width - 1] + "\u2026"
