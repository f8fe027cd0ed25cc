"""Sub-command ``bayesdta cache info | clear``: the disk cache of compiled models.

Registered in :mod:`bayesdta.cli.commands`; the cache is :mod:`bayesdta.inference.compile_cache`.
"""

from __future__ import annotations

import argparse

from .commands import register_command as _register


def _configure_cache(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "action",
        choices=("info", "clear"),
        help="info: where the cache is and what it holds; clear: delete every entry",
    )
    p.add_argument(
        "--stale",
        action="store_true",
        help="clear: delete only entries the installed versions cannot use",
    )
    p.add_argument(
        "--native",
        action="store_true",
        help="clear: also delete numba's cached code of the hand-written models (logit link, "
        "normal effects), kept next to the package; the next fit compiles it again (10-20 s)",
    )
    p.add_argument(
        "--cache-dir",
        default=None,
        help="cache directory (default: $BAYESDTA_CACHE_DIR, else the user's cache directory)",
    )


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _run_cache(args: argparse.Namespace) -> int:
    from ..inference import compile_cache as cc

    if args.cache_dir is not None:
        cc.configure(directory=args.cache_dir, enabled=True)
    if args.action == "clear":
        where = cc.cache_dir()
        n = cc.clear(stale_only=args.stale)
        what = "stale compiled model(s)" if args.stale else "compiled model(s)"
        print(f"removed {n} {what} from {where}" if where else "disk cache is off")
        if args.native:
            print(f"removed {cc.clear_native()} numba cache file(s) of the hand-written models")
        return 0
    info = cc.info()
    nat = info["native"]
    native_line = (
        "hand-written models (logit link, normal effects, no tau_by; nothing compiled per "
        f"structure): numba cache {nat['directory']}, {nat['files']} file(s) "
        f"({_size(nat['bytes'])})"
        + ("" if nat["files"] else ", compiled on the next fit (10-20 s, once)")
    )
    if info["directory"] is None:
        print("disk cache is off (BAYESDTA_CACHE_DIR is set to turn it off)")
        print(native_line)
        return 0
    print(f"directory: {info['directory']}")
    print(f"entries: {info['entries']} ({_size(info['bytes'])})")
    for item in info["items"]:
        if item.get("corrupt"):
            state = "unreadable (will be recompiled)"
        elif item.get("not_stored"):
            state = "no code stored, compiled in each process: " + item["not_stored"]
        else:
            state = "current" if item.get("current") else "stale (other versions)"
        print(
            f"  {item['key']}  levels={item.get('levels')}  "
            f"structure={item.get('structure_key')}  {_size(item['bytes'])}  "
            f"{item.get('created') or ''}  {state}"
        )
    print(native_line)
    return 0


_register(
    "cache",
    (_configure_cache, _run_cache, "show or clear the disk cache of compiled models"),
)
