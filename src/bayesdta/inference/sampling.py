"""Sampler dispatch: nutpie (compiled once per structure, refit with new data) or PyMC NUTS.

Compiled models are also kept on disk (:mod:`bayesdta.compile_cache`): a new process that fits
a structure compiled earlier on this machine loads the machine code instead of compiling.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..exceptions import SpecError
from ..families.bivariate import BuiltModel
from . import compile_cache as _compile_cache

__all__ = ["SamplerSettings", "sample", "clear_cache", "cache_info"]

# the disk cache's key names the package source as imported now, not as edited later
_compile_cache.source_hash()

_COMPILED: dict[str, Any] = {}
_LOCK = threading.Lock()
_STATS = {
    "compiles": 0,
    "reuses": 0,
    "disk_hits": 0,
    "disk_writes": 0,
    "disk_errors": 0,
    "disk_not_stored": 0,
    "native": 0,
}


@dataclass(frozen=True)
class SamplerSettings:
    """NUTS settings.

    Parameters
    ----------
    backend : {"nutpie", "pymc"}
        ``nutpie`` (default): the model is compiled once per structure with numba and re-used
        for refits with new data of the same shape, also by later processes through the disk
        cache (:mod:`bayesdta.compile_cache`); ``pymc``: PyMC's own NUTS.
    draws, tune, chains : int
        Kept draws and warm-up iterations per chain, number of chains. Default draws/tune
        (None): 400/400 for two-level models (measured min bulk ESS 600-2400 over 4 chains on
        the packaged data and 40-study simulations), 1000/1000 for two-level models of fewer
        than 10 studies or of weakly informative studies (:data:`WEAK_DATA_WEIGHT`: small
        studies, often with zero cells, relative to the between-study spread), 800/300 for
        three-level models (bulk ESS per kept draw 0.14-0.28 on
        the osteoporosis meta-regression, its simulated replicates, smoking and ascus: min bulk
        ESS 457-901, tail 440-1093 over 4 chains; nutpie's adaptation needs no longer warm-up
        here; benchmarks/README.md), 1500/300 for three-level models whose gradient is the
        hand-written numba one (logit link, normal effects, no ``tau_by``: ~5x cheaper per
        gradient, so the first run affords the draws that make it clean without escalation on
        24 of 24 osteoporosis replicates). :func:`bayesdta.fit` raises them automatically when
        the first run is not clean (``escalate``).
    target_accept : float or None
        Target acceptance rate of the step-size adaptation. Default (None): 0.8 for two-level
        models, 0.95 for two-level models of fewer than 10 studies or of weakly informative
        studies, 0.9 for three-level models
        (no divergences in 8 fits of smoking, ascus and the osteoporosis meta-regression at
        800 + 300 draws; one at 0.85; the escalation raises it to 0.95 and 0.99 on
        divergences).
    seed : int or None
        Random seed; the same seed gives the same draws.
    cores : int or None
        Chains run in parallel on this many cores (default: all, at most ``chains``).
    progress : bool
        Show the sampler's progress bar.
    low_rank : bool or None
        nutpie's low-rank modified mass matrix. Default (None): on for two-level models, where
        with centered effects it gave 3-10x the ESS per second; off for three-level models,
        where it lowered ESS per second (benchmarks/README.md).
    """

    backend: Literal["nutpie", "pymc"] = "nutpie"
    draws: int | None = None
    tune: int | None = None
    chains: int = 4
    target_accept: float | None = None
    seed: int | None = None
    cores: int | None = None
    progress: bool = False
    low_rank: bool | None = None

    def __post_init__(self) -> None:
        if self.backend not in ("nutpie", "pymc"):
            raise SpecError(f"backend must be 'nutpie' or 'pymc', got {self.backend!r}")
        for name in ("draws", "tune", "chains"):
            v = getattr(self, name)
            if v is None and name != "chains":
                continue
            if not isinstance(v, (int, np.integer)) or v < (1 if name != "tune" else 0):
                raise SpecError(f"{name} must be a positive integer, got {v!r}")
        if self.target_accept is not None and not 0 < self.target_accept < 1:
            raise SpecError(f"target_accept must lie in (0, 1), got {self.target_accept}")

    def to_dict(self) -> dict[str, Any]:
        """Serializable form."""
        return {
            "backend": self.backend,
            "draws": self.draws,
            "tune": self.tune,
            "chains": int(self.chains),
            "target_accept": self.target_accept,
            "low_rank": self.low_rank,
            "seed": self.seed,
            "cores": self.cores,
        }


def clear_cache() -> None:
    """Forget the compiled models held by this process.

    The disk cache stays (see :func:`bayesdta.compile_cache.clear`).
    """
    with _LOCK:
        _COMPILED.clear()


def cache_info() -> dict[str, int]:
    """Number of compiled models held, compilations and re-uses so far.

    ``disk_hits``: compiled models loaded from the disk cache (:mod:`bayesdta.compile_cache`)
    instead of compiled; ``disk_writes``: models stored there; ``disk_errors``: unusable
    entries recompiled and failed writes; ``disk_not_stored``: compilations of structures
    whose machine code another process cannot reuse (kept in this process only,
    :func:`bayesdta.inference.compile_cache.not_storable`); ``native``: models given the
    hand-written log density of :mod:`bayesdta.inference.native` (nothing compiled).
    """
    return {"cached": len(_COMPILED), **_STATS}


def _neutral_initial_points(
    model, shapes: dict[str, tuple[int, ...]] | None = None
) -> dict[str, np.ndarray]:
    """Data-free starting values (before nutpie's jitter) for every free variable.

    PyMC's default start is the "support point" of each variable, which for centered effects
    is their mean, a function of the covariates: a compiled model would then start refits from
    points that depend on the data it was first compiled with, and the same data and seed
    would give different draws in a fresh process. Constants remove that dependence: 0 for
    coefficients and standardized or centered effects, 1 for SDs, 0.5 for the Beta behind
    each correlation. ``shapes`` (by variable name, e.g. from the disk cache) saves
    evaluating the model's initial point to find them.
    """
    point = model.initial_point() if shapes is None else None
    out = {}
    for rv in model.free_RVs:
        if shapes is None:
            shape = np.shape(point[model.rvs_to_values[rv].name])
        else:
            shape = tuple(shapes[rv.name])
        op = type(rv.owner.op).__name__
        positive = op.startswith("Half") or op in ("GammaRV", "ExponentialRV")
        value = 1.0 if positive else 0.5 if op == "BetaRV" else 0.0
        out[rv.name] = np.full(shape, value)
    return out


def _compiled_for(built: BuiltModel):
    with _LOCK:
        key = _process_key(built)
        compiled = _COMPILED.get(key)
        if compiled is None:
            compiled = _load_or_compile(built)
            _COMPILED[key] = compiled
        else:
            _STATS["reuses"] += 1
    # the compiled graph keeps only the data it uses (e.g. no group index in two-level models)
    return compiled.with_data(
        **{k: v for k, v in built.data_values.items() if k in compiled.shared_data}
    )


def _process_key(built: BuiltModel) -> str:
    """Key of the in-process cache: the structure, and whether its numba logp is switched off."""
    off = not USE_NUMBA_LOGP and getattr(built, "numba_logp", None) is not None
    return built.structure_key + ("/graph" if off else "")


def precompile(built: BuiltModel) -> None:
    """Compile the model of ``built`` now (or load it from the disk cache) and keep it.

    What :func:`sample` would do first, without sampling: a helper process uses it to fill
    the disk cache ahead of a run's later fits (:mod:`bayesdta.reporting.precompile`).
    """
    with _LOCK:
        key = _process_key(built)
        if key not in _COMPILED:
            _COMPILED[key] = _load_or_compile(built)


def _load_or_compile(built: BuiltModel):
    """The compiled model from the disk cache, else compiled now (and stored on disk)."""
    import nutpie

    from . import compile_cache as cc
    from .native import compile_native, free_shapes, native_kind

    if USE_NUMBA_LOGP and native_kind(built) is not None:
        # a hand-written density: nothing to compile per structure (inference/native.py)
        _STATS["native"] += 1
        return compile_native(built, _neutral_initial_points(built.model, free_shapes(built)))
    key = None
    if cc.cache_dir() is not None and getattr(built, "disk_cache", True):
        try:
            key, key_payload = cc.entry_key(built)
        except Exception as exc:  # noqa: BLE001 - the cache must never stop a fit
            cc.warn(f"compiled-model cache off for this model: {type(exc).__name__}: {exc}")
    if key is None:
        return _compile(nutpie, built, _neutral_initial_points(built.model))
    with cc.lock(key):
        try:
            entry = cc.read(key)
            if entry is not None and entry.get("not_stored"):
                # a structure whose code cannot be reused by another process: compile here
                _STATS["disk_not_stored"] += 1
                return _compile(nutpie, built, _neutral_initial_points(built.model))
            if entry is not None:
                initial_points = _neutral_initial_points(built.model, entry["rv_shapes"])
                compiled = cc.import_compiled(entry, built, initial_points)
                _STATS["disk_hits"] += 1
                return compiled
        except Exception as exc:  # noqa: BLE001 - corrupt or unusable entry: recompile
            cc.discard(key)
            _STATS["disk_errors"] += 1
            cc.warn(
                f"compiled-model cache entry {key} could not be used and was recompiled "
                f"({type(exc).__name__}: {exc})"
            )
        initial_points = _neutral_initial_points(built.model)
        compiled = _compile(nutpie, built, initial_points)
        try:
            reason = cc.not_storable(compiled)
            if reason is not None:
                # honest miss: a marker (no code) says so to `bayesdta cache info`
                _STATS["disk_not_stored"] += 1
                cc.write(key, cc.marker(key_payload, reason))
                return compiled
            entry = cc.export_compiled(compiled, built, key_payload)
            entry["rv_shapes"] = {k: tuple(np.shape(v)) for k, v in initial_points.items()}
            cc.write(key, entry)
            _STATS["disk_writes"] += 1
        except Exception as exc:  # noqa: BLE001
            _STATS["disk_errors"] += 1
            cc.warn(f"could not store the compiled model in the cache: {exc}")
    return compiled


def _compile(nutpie, built: BuiltModel, initial_points):
    _STATS["compiles"] += 1
    t0 = time.perf_counter()
    compiled = nutpie.compile_pymc_model(built.model, initial_points=initial_points)
    _log_compile(built, time.perf_counter() - t0)
    return compiled


#: Set to False to sample every model with the log density compiled from its PyMC graph
#: (the hand-written numba densities of :mod:`bayesdta.inference.native` are the same
#: density; a reference for tests and benchmarks).
USE_NUMBA_LOGP = True


def _log_compile(built: BuiltModel, seconds: float) -> None:
    """Append one line per compilation to ``$BAYESDTA_LOG_COMPILES`` (when set).

    A development aid (e.g. counting the distinct structures a test session compiles):
    ``seconds<TAB>levels<TAB>structure key<TAB>calling test<TAB>data shapes``.
    """
    path = os.environ.get("BAYESDTA_LOG_COMPILES")
    if not path:
        return
    caller = os.environ.get("PYTEST_CURRENT_TEST", "")
    shapes = ",".join(
        f"{k}{list(np.shape(v))}" for k, v in sorted(built.data_values.items()) if np.ndim(v)
    )
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{seconds:.1f}\t{built.levels}\t{built.structure_key}\t{caller}\t{shapes}\n")
    except OSError:  # pragma: no cover - a log must never stop a fit
        pass


#: Two-level fits of fewer effects (studies) than this start with the settings of
#: :data:`FEW_STUDIES_DEFAULTS`: their posteriors of the SDs and the correlation stay wide (small
#: SDs plausible: funnel geometry), and their sampling costs little.
FEW_STUDIES = 10
FEW_STUDIES_DEFAULTS = {"draws": 1000, "tune": 1000, "target_accept": 0.95}
#: Two-level fits whose automatic centering weights (the share of each study effect's
#: precision that comes from the study's own data, :func:`bayesdta.families.bivariate.
#: centering_weights`) average below this also start with :data:`FEW_STUDIES_DEFAULTS`,
#: whatever the number of studies: every effect is then sampled non-centered and the SDs are
#: barely informed (small studies, sensitivities near 1, zero cells). At 400 + 400 draws such
#: reviews of 10-30 studies were clean at the first run for 2 of 18 tables (13 of 18 after the
#: escalation, 1.4-1.8 s per fit); at 1000 + 1000 and 0.95 for 17 of 18 (0.9 s)
#: (benchmarks/README.md, "Weakly informative studies").
WEAK_DATA_WEIGHT = 0.1
#: Three-level first-run settings (measured ESS per draw, benchmarks/README.md).
THREE_LEVEL_DEFAULTS = {"draws": 800, "tune": 300, "target_accept": 0.9}
#: Three-level first-run settings when the density is the hand-written numba one
#: (:mod:`bayesdta.inference.native`, ~5x cheaper per gradient): enough draws that the first
#: run rarely needs the escalation (24 of 24 osteoporosis replicates clean at the first run;
#: benchmarks/README.md, "A log density written for the three-level model").
THREE_LEVEL_NUMBA_DEFAULTS = {"draws": 1500, "tune": 300, "target_accept": 0.9}


def resolve_defaults(
    settings: SamplerSettings,
    levels: int,
    n_effects: int | None = None,
    *,
    numba_logp: bool = False,
    weak_data: bool = False,
) -> SamplerSettings:
    """Fill in the structure-dependent defaults (draws, tune, ``target_accept``, ``low_rank``).

    Two levels: 400 + 400 draws, target_accept 0.8, low-rank mass matrix; with fewer than
    :data:`FEW_STUDIES` studies (``n_effects``) or weakly informative studies (``weak_data``,
    :data:`WEAK_DATA_WEIGHT`) 1000 + 1000 draws and target_accept 0.95.
    Three levels: 800 + 300 draws, target_accept 0.9, diagonal mass matrix (chosen by the
    measured ESS per draw, ``benchmarks/bench_three_level_draws.py``; the escalation of
    :func:`bayesdta.fit` adds draws when a data set needs more); 1500 + 300 when the model's
    gradient is the hand-written numba one (``numba_logp``, :data:`THREE_LEVEL_NUMBA_DEFAULTS`).
    """
    from dataclasses import replace

    few = levels == 2 and ((n_effects is not None and n_effects < FEW_STUDIES) or weak_data)
    if levels == 3:
        three = (
            THREE_LEVEL_NUMBA_DEFAULTS if numba_logp and USE_NUMBA_LOGP else THREE_LEVEL_DEFAULTS
        )
        draws, tune, ta = (three[k] for k in ("draws", "tune", "target_accept"))
    elif few:
        draws, tune, ta = (FEW_STUDIES_DEFAULTS[k] for k in ("draws", "tune", "target_accept"))
    else:
        draws, tune, ta = 400, 400, 0.8
    return replace(
        settings,
        draws=settings.draws or draws,
        tune=settings.tune if settings.tune is not None else tune,
        target_accept=settings.target_accept or ta,
        low_rank=settings.low_rank if settings.low_rank is not None else levels == 2,
    )


def sample(built: BuiltModel, settings: SamplerSettings) -> tuple[Any, dict[str, float]]:
    """Draw from the posterior of ``built``.

    Returns
    -------
    idata : arviz.InferenceData
        With ``posterior`` and ``sample_stats`` groups.
    timing : dict
        ``compile_s`` and ``sample_s`` wall times.
    """
    cores = settings.cores or min(settings.chains, os.cpu_count() or 1)
    settings = resolve_defaults(
        settings, built.levels, numba_logp=getattr(built, "numba_logp", None) is not None
    )
    seed = (
        settings.seed
        if settings.seed is not None
        else int(np.random.SeedSequence().entropy % 2**31)
    )
    t0 = time.perf_counter()
    if settings.backend == "nutpie":
        import nutpie

        compiled = _compiled_for(built)
        t1 = time.perf_counter()
        idata = nutpie.sample(
            compiled,
            draws=settings.draws,
            tune=settings.tune,
            chains=settings.chains,
            cores=cores,
            seed=seed,
            target_accept=settings.target_accept,
            progress_bar=settings.progress,
            save_warmup=False,
            low_rank_modified_mass_matrix=settings.low_rank,
        )
    else:
        import pymc as pm

        t1 = time.perf_counter()
        with built.model:
            idata = pm.sample(
                draws=settings.draws,
                tune=settings.tune,
                chains=settings.chains,
                cores=cores,
                random_seed=seed,
                target_accept=settings.target_accept,
                progressbar=settings.progress,
                compute_convergence_checks=False,
            )
    t2 = time.perf_counter()
    timing = {"compile_s": t1 - t0, "sample_s": t2 - t1, "seed": seed}
    return idata, timing, settings
