"""Compile the later fits' models of a run in a second process, while the first fit runs.

Compiling a model structure (numba) takes 10-25 s on one core; ``bayesdta run`` fits several
structures one after the other (the main fit, each meta-regression). With the disk cache of
compiled models (:mod:`bayesdta.inference.compile_cache`) on, :func:`start` launches a helper
process that builds the models of the spec's other fits and compiles the ones that are not
on disk yet, while this process compiles and samples the first one. When this process reaches
such a fit it finds the compiled model on disk (or waits on the entry's lock for the helper
to finish it) instead of compiling it. The draws are the same as without the helper (the
disk cache gives the same draws for the same seed). Nothing is started when the disk cache
is off, with the PyMC backend, when the spec has a single fit, or when every later fit is a
logit-normal model (hand-written, nothing to compile: :mod:`bayesdta.inference.native`).

The helper writes nothing but cache entries, ends with the process that started it and is
stopped when the run ends (:meth:`Precompiler.stop`). It runs at normal priority: the run
waits for it (on the entry's lock) when it reaches a fit whose model the helper is still
compiling, so a starved helper would only delay the run.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["Precompiler", "start", "main"]


class Precompiler:
    """Handle of the helper process (``None`` process: nothing was started)."""

    def __init__(self, process: subprocess.Popen | None, payload: Path | None) -> None:
        self.process = process
        self.payload = payload

    def stop(self) -> None:
        """Stop the helper if it still runs and remove its input file."""
        p = self.process
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                p.kill()
                p.wait()
        if self.payload is not None:
            try:
                self.payload.unlink()
            except OSError:  # pragma: no cover
                pass


def start(spec: Any, data: Any) -> Precompiler:
    """Start the helper for the fits of ``spec`` after the first one (see the module doc).

    Only the models whose compiled code is not in the disk cache yet are handed to the
    helper; when there are none (a warm cache), no process is started.

    Parameters
    ----------
    spec : AnalysisSpec
        The analysis.
    data : DTAData
        Its data, as the fits see them.

    Returns
    -------
    Precompiler
        Call :meth:`Precompiler.stop` when the run ends.
    """
    from ..inference import compile_cache as cc
    from ..inference.native import native_kind

    directory = cc.cache_dir()
    if directory is None or len(spec.fits) < 2:
        return Precompiler(None, None)
    try:
        first = _build(data, spec.fits[0].model_spec())
        seen = {first.structure_key} if first is not None else set()
        missing = []
        for fs in spec.fits[1:]:
            if _mirror_blocked(spec, fs):
                continue
            ms = fs.model_spec()
            built = _build(data, ms)
            if built is None or built.structure_key in seen or native_kind(built) is not None:
                continue  # (a hand-written model compiles nothing: inference/native.py)
            seen.add(built.structure_key)
            if not _on_disk(cc, built):
                missing.append(ms)
        if not missing:
            return Precompiler(None, None)
        fd, name = tempfile.mkstemp(prefix="bayesdta-precompile-", suffix=".pkl")
        with os.fdopen(fd, "wb") as fh:
            pickle.dump({"data": data, "specs": missing}, fh)
        env = dict(os.environ)
        env["BAYESDTA_CACHE_DIR"] = str(directory)
        # the helper imports this very package (its source is part of the cache key)
        root = str(Path(__file__).resolve().parent.parent.parent)
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
        proc = subprocess.Popen(
            [sys.executable, "-m", "bayesdta.reporting.precompile", name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
    except Exception:  # noqa: BLE001 - a helper that cannot start changes nothing but time
        return Precompiler(None, None)
    return Precompiler(proc, Path(name))


def _mirror_blocked(spec: Any, fs: Any) -> bool:
    """True when the helper could not build the fit's model, or its code cannot be stored.

    Another backend, a subset or weights; a random-effects family other than the normal one
    (the Student-t family's code calls functions by address: not storable, see
    :func:`bayesdta.inference.compile_cache.not_storable`).
    """
    s = spec.sampler_settings(fs)
    if s.get("backend", "nutpie") != "nutpie" or s.get("subset") or s.get("weights"):
        return True
    return fs.model_spec().random_effects != "normal"


def _build(data: Any, ms: Any) -> Any:
    """The built model of the first attempt of a fit (as :func:`bayesdta.fit` builds it)."""
    import warnings

    from .._quiet import quiet
    from ..families.base import get_family
    from ..families.bivariate import make_design

    try:
        with warnings.catch_warnings(), quiet():
            warnings.simplefilter("ignore")
            design = make_design(data, ms)
            return get_family(ms.random_effects).build(
                data, ms, weights=None, design=design, centering=ms.parameterization
            )
    except Exception:  # noqa: BLE001 - the fit itself reports what is wrong
        return None


def _on_disk(cc: Any, built: Any) -> bool:
    try:
        key, _ = cc.entry_key(built)
        return cc.read(key) is not None
    except Exception:  # noqa: BLE001 - unreadable: the helper recompiles it
        return False


def main(argv: list[str] | None = None) -> int:
    """Helper process: build each model of the payload and compile it into the disk cache."""
    argv = sys.argv[1:] if argv is None else argv
    _exit_with_parent()
    with open(argv[0], "rb") as fh:
        payload = pickle.load(fh)
    from ..inference import compile_cache as cc
    from ..inference.sampling import precompile

    data = payload["data"]
    for ms in payload["specs"]:
        try:
            built = _build(data, ms)
            if built is not None and not _on_disk(cc, built):
                precompile(built)
        except Exception:  # noqa: BLE001 - the run compiles what the helper could not
            continue
    return 0


def _exit_with_parent() -> None:
    """End this helper as soon as the process that started it is gone (crash, Ctrl-C)."""
    import threading
    import time

    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":  # pragma: no cover - the helper process
    sys.exit(main())
