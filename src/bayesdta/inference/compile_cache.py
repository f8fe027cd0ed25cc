r"""Disk cache of compiled models: a new process re-uses the machine code of an earlier one.

``nutpie.compile_pymc_model`` spends 10-25 s per model structure in numba (type inference and
LLVM code generation of the log-density, its gradient and the function that expands draws).
numba cannot cache nutpie's C callbacks itself (they close over generated functions), but the
finished code needs nothing from the process that made it: the object code of the two C
callbacks is stored here with the small amount of metadata nutpie needs (parameter shapes, the
layout of the shared-data record), and a later process loads it with numba's own code loader
(the mechanism behind ``numba.njit(cache=True)``): no numba compilation and no PyTensor graph
work for the log-density (PyMC only builds the small start-value function). Same seed, same
draws, with or without the cache.

Entries are keyed by everything that changes the compiled code: the model structure (the
built model's structure key and a fingerprint of its variables and data shapes), the source of
the bayesdta package, the versions of Python, numpy, nutpie, PyMC, PyTensor, numba and llvmlite,
and the host CPU (the code is compiled for it). Writers take a per-entry file lock (a second
process waits for the first one's compilation instead of repeating it) and publish entries by
atomic rename; entries carry a checksum, and an unreadable entry is deleted and recompiled.

Location: ``BAYESDTA_CACHE_DIR`` if set (``off``, ``0``, ``no``, ``false`` or ``none`` turn the
cache off), else the user's cache directory (``$XDG_CACHE_HOME/bayesdta`` or
``~/.cache/bayesdta`` on Linux, ``~/Library/Caches/bayesdta`` on macOS,
``%LOCALAPPDATA%\bayesdta\Cache`` on Windows); :func:`configure` overrides both for the current
process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["cache_dir", "configure", "info", "clear", "CacheWarning"]

#: Bump when the layout of an entry changes.
FORMAT = 1
_MAGIC = b"BAYESDTA-COMPILED-MODEL\n"
_SUFFIX = ".nutpie"
_SUBDIR = "compiled"
_OFF = {"0", "off", "none", "false", "no"}
_LOCK_TIMEOUT_S = 300.0

_override: dict[str, Any] = {}


class CacheWarning(RuntimeWarning):
    """A compiled-model cache entry could not be used or written (the model was recompiled)."""


def configure(*, directory: str | os.PathLike | None = None, enabled: bool | None = None) -> None:
    """Set the compiled-model cache for this process (overrides ``BAYESDTA_CACHE_DIR``).

    Parameters
    ----------
    directory : path, optional
        Cache directory (entries go into its ``compiled`` sub-directory). ``None`` leaves the
        current choice.
    enabled : bool, optional
        ``False`` turns the disk cache off (models are still compiled once per process);
        ``True`` turns it back on. ``None`` leaves the current choice.
    """
    if directory is not None:
        _override["directory"] = Path(directory).expanduser()
    if enabled is not None:
        _override["enabled"] = bool(enabled)


def _default_dir() -> Path:
    try:
        import platformdirs

        return Path(platformdirs.user_cache_dir("bayesdta", appauthor=False))
    except ImportError:  # pragma: no cover - platformdirs is a dependency of our dependencies
        pass
    if sys.platform == "win32":  # pragma: no cover
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "bayesdta" / "Cache"
    if sys.platform == "darwin":  # pragma: no cover
        return Path.home() / "Library" / "Caches" / "bayesdta"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "bayesdta"


def cache_dir() -> Path | None:
    """The cache directory in use, or ``None`` when the disk cache is off."""
    if _override.get("enabled") is False:
        return None
    if "directory" in _override:
        return _override["directory"]
    env = os.environ.get("BAYESDTA_CACHE_DIR")
    if env is not None and env.strip():
        if env.strip().lower() in _OFF:
            return None
        return Path(env).expanduser()
    return _default_dir()


def _entries_dir() -> Path | None:
    root = cache_dir()
    return None if root is None else root / _SUBDIR


# ------------------------------------------------------------------------------ keys
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": sys.version, "platform": platform.platform(), "format": str(FORMAT)}
    for pkg in ("numpy", "nutpie", "pymc", "pytensor", "numba", "llvmlite"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:  # pragma: no cover
            out[pkg] = "?"
    try:  # NUMBA_OPT changes the machine code (and its speed)
        from numba.core import config as numba_config

        out["numba_opt"] = str(numba_config.OPT)
    except Exception:  # noqa: BLE001  # pragma: no cover
        pass
    try:
        import llvmlite.binding as ll

        out["cpu"] = ll.get_host_cpu_name()
        out["cpu_features"] = ll.get_host_cpu_features().flatten()
    except Exception:  # noqa: BLE001  # pragma: no cover
        out["cpu"] = platform.processor()
    out["bayesdta_source"] = source_hash()
    return out


_SOURCE_HASH: list[str] = []


def source_hash() -> str:
    """Hash of the bayesdta package source (any edit invalidates the cache).

    Every module of the package counts (the model builders in ``families/`` write the graph
    that is compiled), not only this sub-package. Computed once per process, when the package
    is imported (:mod:`bayesdta.inference.sampling` calls it), so that it describes the code
    the process runs even if the files are edited later.
    """
    if not _SOURCE_HASH:
        h = hashlib.sha256()
        pkg = Path(__file__).resolve().parent.parent
        for path in sorted(pkg.rglob("*.py")):
            h.update(path.relative_to(pkg).as_posix().encode())
            h.update(path.read_bytes())
        _SOURCE_HASH.append(h.hexdigest())
    return _SOURCE_HASH[0]


def _model_fingerprint(built) -> dict[str, Any]:
    """Names, types and shapes of the model's variables and data (cheap, no compilation)."""
    model = built.model
    return {
        "structure_key": built.structure_key,
        "levels": built.levels,
        "free": [(rv.name, type(rv.owner.op).__name__, str(rv.type)) for rv in model.free_RVs],
        "deterministics": [(v.name, str(v.type)) for v in model.deterministics],
        "potentials": [v.name for v in model.potentials],
        "data": sorted((k, str(v.dtype), list(v.shape)) for k, v in built.data_values.items()),
        "coords": {k: len(v) for k, v in model.coords.items()},
    }


def entry_key(built) -> tuple[str, dict[str, Any]]:
    """The cache key of a built model and what it was computed from."""
    payload = {"model": _model_fingerprint(built), "versions": _versions()}
    blob = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32], payload


# ------------------------------------------------------------------------------ storage
def _entry_path(key: str) -> Path | None:
    d = _entries_dir()
    return None if d is None else d / f"{key}{_SUFFIX}"


@contextlib.contextmanager
def lock(key: str) -> Iterator[bool]:
    """Hold the per-entry file lock (yields ``False`` when it could not be taken).

    A process compiling a structure holds it, so that a concurrent process asking for the same
    structure waits and then loads the entry instead of compiling it a second time. Without
    ``fcntl`` (Windows) or after a timeout the caller proceeds unlocked; atomic renames keep
    entries whole either way.
    """
    d = _entries_dir()
    try:
        import fcntl
    except ImportError:  # pragma: no cover
        yield False
        return
    if d is None:
        yield False
        return
    try:
        d.mkdir(parents=True, exist_ok=True)
        fh = open(d / f"{key}.lock", "a+b")  # noqa: SIM115
    except OSError:
        yield False
        return
    got = False
    try:
        deadline = time.monotonic() + _LOCK_TIMEOUT_S
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                got = True
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        yield got
    finally:
        if got:
            with contextlib.suppress(OSError):
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        fh.close()


class CorruptEntry(Exception):
    """An entry that exists but cannot be read."""


def read(key: str) -> dict[str, Any] | None:
    """The entry stored under ``key``, ``None`` when absent; raises :class:`CorruptEntry`."""
    path = _entry_path(key)
    if path is None:
        return None
    try:
        blob = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptEntry(f"cannot read {path}: {exc}") from exc
    head = len(_MAGIC)
    if not blob.startswith(_MAGIC) or len(blob) < head + 32:
        raise CorruptEntry(f"{path} is not a bayesdta compiled-model entry")
    digest, body = blob[head : head + 32], blob[head + 32 :]
    if hashlib.sha256(body).digest() != digest:
        raise CorruptEntry(f"{path} fails its checksum (truncated or damaged)")
    try:
        entry = pickle.loads(body)
    except Exception as exc:  # noqa: BLE001
        raise CorruptEntry(f"{path} cannot be unpickled: {exc}") from exc
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != key:
        raise CorruptEntry(f"{path} belongs to another key or format")
    return entry


def write(key: str, entry: dict[str, Any]) -> Path | None:
    """Publish ``entry`` under ``key`` atomically; returns its path (``None`` if not written)."""
    path = _entry_path(key)
    if path is None:
        return None
    body = pickle.dumps({**entry, "format": FORMAT, "key": key}, protocol=5)
    blob = _MAGIC + hashlib.sha256(body).digest() + body
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def discard(key: str) -> None:
    """Delete the entry stored under ``key`` (if any)."""
    path = _entry_path(key)
    if path is not None:
        with contextlib.suppress(OSError):
            path.unlink()


def info() -> dict[str, Any]:
    """Where the cache is and what it holds.

    Returns
    -------
    dict
        ``directory`` (None when off), ``entries`` (count), ``bytes`` (total size) and
        ``items``: one dict per entry (``key``, ``structure_key``, ``levels``, ``bytes``,
        ``created`` as an ISO time stamp, ``current``: whether it matches the installed
        versions; ``not_stored``: why a structure's code is not kept, for structures
        compiled in every process, see :func:`not_storable`).
    """
    d = _entries_dir()
    out: dict[str, Any] = {"directory": None if d is None else str(d.parent)}
    items = []
    if d is not None and d.is_dir():
        now_versions = _versions()
        for path in sorted(d.glob(f"*{_SUFFIX}")):
            key = path.name[: -len(_SUFFIX)]
            item: dict[str, Any] = {"key": key, "bytes": path.stat().st_size}
            try:
                entry = read(key)
            except CorruptEntry:
                entry = None
                item["corrupt"] = True
            if entry is not None:
                model = entry.get("key_payload", {}).get("model", {})
                item["structure_key"] = model.get("structure_key")
                item["levels"] = model.get("levels")
                item["created"] = entry.get("created")
                item["current"] = entry.get("key_payload", {}).get("versions") == now_versions
                if entry.get("not_stored"):
                    item["not_stored"] = entry["not_stored"]
            items.append(item)
    out["entries"] = len(items)
    out["bytes"] = int(sum(i["bytes"] for i in items))
    out["items"] = items
    out["native"] = native_info()
    return out


def native_info() -> dict[str, Any]:
    """Numba's on-disk cache of the hand-written models (:mod:`bayesdta.inference.native`).

    Those models (logit link, normal effects, no ``tau_by``) compile nothing per structure and
    have no entries here: numba compiles their callbacks once per machine and keeps them in
    its own cache. Returns its ``directory``, ``files`` (count) and ``bytes``.
    """
    from ..families.bivariate_logp import cache_files

    directory, files = cache_files()
    return {
        "directory": directory,
        "files": len(files),
        "bytes": int(sum(p.stat().st_size for p in files if p.exists())),
    }


def clear_native() -> int:
    """Delete numba's cached code of the hand-written models; returns the files removed.

    The next process compiles them again (10-20 s, once).
    """
    from ..families.bivariate_logp import cache_files

    n = 0
    for path in cache_files()[1]:
        with contextlib.suppress(OSError):
            path.unlink()
            n += 1
    return n


def clear(*, stale_only: bool = False) -> int:
    """Delete entries (and stale lock and temporary files); returns the entries removed.

    Parameters
    ----------
    stale_only : bool
        Delete only the entries that the installed versions can no longer use (other package
        versions or bayesdta source) and unreadable ones.
    """
    d = _entries_dir()
    if d is None or not d.is_dir():
        return 0
    keep: set[str] = set()
    if stale_only:
        keep = {i["key"] for i in info()["items"] if i.get("current")}
    n = 0
    for path in d.iterdir():
        if path.suffix in (_SUFFIX, ".lock", ".tmp") and path.stem not in keep:
            with contextlib.suppress(OSError):
                path.unlink()
                n += path.suffix == _SUFFIX
    return n


# ------------------------------------------------------------------------------ nutpie glue
#: Why an entry holds no code (see :func:`not_storable`).
PROCESS_SPECIFIC = (
    "its machine code calls functions at addresses of the process that compiled it "
    "(numba dynamic globals, e.g. scipy.special functions such as erfcx or digamma)"
)


def not_storable(compiled) -> str | None:
    """Why the machine code of ``compiled`` cannot be reused by another process, or ``None``.

    The rule is numba's own for ``njit(cache=True)``: code that embeds an address of the
    running process (a *dynamic global*: a C function reached through a pointer, such as the
    ``scipy.special.cython_special`` functions PyTensor calls for ``erfcx`` and ``psi``, a
    Python object, a large constant array) points to nothing, or to something else, in another
    process. numba's code library lists these globals after linking (``has_dynamic_globals``,
    which covers the inlined inner functions); such models are compiled in every process.
    """
    for name in ("compiled_logp_func", "compiled_expand_func"):
        library = getattr(getattr(compiled, name), "_library", None)
        if library is None:
            return f"{name} has no numba code library"
        if library.has_dynamic_globals:
            return PROCESS_SPECIFIC
    return None


def marker(key_payload: dict[str, Any], reason: str) -> dict[str, Any]:
    """An entry without code: the structure is compiled in each process (``reason``).

    It lets :func:`info` (``bayesdta cache info``) report the miss and spares later processes
    the attempt to store the code.
    """
    return {
        "key_payload": key_payload,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "not_stored": reason,
    }


def export_compiled(compiled, built, key_payload: dict[str, Any]) -> dict[str, Any]:
    """The storable part of a ``nutpie`` compiled PyMC model (object code and metadata)."""

    def lib(cfunc):
        return (cfunc._library.serialize_using_object_code(), cfunc._wrapper_name)

    return {
        "key_payload": key_payload,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "logp": lib(compiled.compiled_logp_func),
        "expand": lib(compiled.compiled_expand_func),
        "n_dim": int(compiled.n_dim),
        "n_expanded": int(compiled.n_expanded),
        "shape_info": compiled.shape_info,
        "shared": [
            (name, val.dtype.str, int(val.ndim)) for name, val in compiled.shared_data.items()
        ],
        "user_data_dtype": compiled.user_data.dtype,
    }


class _LoadedCFunc:
    """Stands in for a ``numba`` C callback: nutpie only reads ``address``."""

    def __init__(self, library, name: str):
        self._library = library  # keeps the code alive
        self.address = library.get_pointer_to_function(name)
        if not self.address:
            raise CorruptEntry(f"symbol {name} missing from the cached object code")


def assemble(
    cls: Any,
    model: Any,
    initial_points: dict[str, Any],
    shape_info: Any,
    *,
    n_dim: int,
    n_expanded: int,
    logp: Any,
    expand: Any,
    shared_data: dict[str, Any],
    user_data: Any,
    **extra: Any,
) -> Any:
    """Nutpie's compiled-model object (``cls``) from callbacks compiled without nutpie.

    The start values are made as :func:`nutpie.compile_pymc_model` makes them: every free
    variable jittered around ``initial_points``, flattened in the order of ``shape_info``
    (names, slices, shapes of the stored draw, free variables first). Used for models loaded
    from the disk cache (:func:`import_compiled`) and for the hand-written models
    (:mod:`bayesdta.inference.native`, whose ``cls`` takes ``extra`` fields).
    """
    from nutpie import compile_pymc as cp
    from pymc.initial_point import make_initial_point_fn

    names, _, shapes = shape_info
    n_free = len(model.free_RVs)
    ip = make_initial_point_fn(
        model=model,
        overrides=initial_points,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )
    ip = cp._wrap_with_lock(ip)
    initial_point_func = cp._rv_dict_to_flat_array_wrapper(
        ip, names=list(names[:n_free]), shapes=[tuple(s) for s in shapes[:n_free]]
    )
    dims, coords = cp._prepare_dims_and_coords(model, shape_info)
    return cls(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=logp,
        compiled_expand_func=expand,
        initial_point_func=initial_point_func,
        shared_data=shared_data,
        user_data=user_data,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=None,
        expand_func=None,
        **extra,
    )


def import_compiled(entry: dict[str, Any], built, initial_points: dict[str, Any]):
    """Rebuild a ``nutpie`` compiled PyMC model from a cache entry (no PyTensor, no numba)."""
    import numpy as np
    from numba.core.registry import cpu_target
    from nutpie import compile_pymc as cp

    model = built.model
    codegen = cpu_target.target_context.codegen()
    logp = _LoadedCFunc(codegen.unserialize_library(entry["logp"][0]), entry["logp"][1])
    expand = _LoadedCFunc(codegen.unserialize_library(entry["expand"][0]), entry["expand"][1])

    shared_data = {}
    for name, dtype, ndim in entry["shared"]:
        val = np.array(built.data_values[name], dtype=np.dtype(dtype), order="C", copy=True)
        if val.ndim != ndim:
            raise CorruptEntry(f"shared variable {name} has rank {val.ndim}, entry says {ndim}")
        val.flags.writeable = False
        shared_data[name] = val
    user_data = np.zeros((), dtype=entry["user_data_dtype"])
    cp.update_user_data(user_data, shared_data)

    shape_info = entry["shape_info"]
    names, _, shapes = shape_info
    n_free = len(model.free_RVs)
    free_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]
    if list(names[:n_free]) != free_names:
        raise CorruptEntry("the entry's parameters do not match the model's")
    return assemble(
        cp.CompiledPyMCModel,
        model,
        initial_points,
        shape_info,
        n_dim=entry["n_dim"],
        n_expanded=entry["n_expanded"],
        logp=logp,
        expand=expand,
        shared_data=shared_data,
        user_data=user_data,
    )


def warn(message: str) -> None:
    """One-line warning about the cache (the fit goes on)."""
    warnings.warn(message, CacheWarning, stacklevel=3)
