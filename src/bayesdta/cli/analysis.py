"""Sub-commands ``bayesdta run | sensitivity | report`` (see :mod:`bayesdta.cli.commands`).

* ``bayesdta run SPEC --out DIR``: fit the spec's models, write tables, figures and the report.
* ``bayesdta sensitivity SPEC --out DIR``: run the spec's sweeps (resumable, local processes or
  ``--scheduler ADDRESS`` of a Dask cluster).
* ``bayesdta report DIR``: rebuild the report of a finished run folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
from pathlib import Path

from .commands import register_command as _register

__all__: list[str] = []


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _add_overrides(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("overrides of the spec (recorded in the report)")
    g.add_argument("--seed", type=int, default=None, help="replace analysis.seed")
    g.add_argument("--draws", type=int, default=None, help="replace sampler.draws")
    g.add_argument("--tune", type=int, default=None, help="replace sampler.tune")
    g.add_argument("--chains", type=int, default=None, help="replace sampler.chains")


def _load(args: argparse.Namespace):
    from ..exceptions import SpecError
    from ..reporting.spec import load_spec

    spec = load_spec(args.spec)
    changes = {}
    if args.seed is not None:
        if not 0 <= args.seed < 2**31:
            raise SpecError(f"--seed must lie in [0, 2**31), got {args.seed}")
        changes["seed"] = args.seed
    sampler = dict(spec.sampler)
    for k in ("draws", "tune", "chains"):
        v = getattr(args, k)
        if v is not None:
            if v < (0 if k == "tune" else 1):
                raise SpecError(f"--{k} must be a positive integer, got {v}")
            sampler[k] = v
    if sampler != spec.sampler:
        changes["sampler"] = sampler
    return dataclasses.replace(spec, **changes) if changes else spec


def _command(name: str, args: argparse.Namespace) -> str:
    argv = sys.argv[1:] if sys.argv and sys.argv[1:2] == [name] else [name, str(args.spec)]
    return "bayesdta " + " ".join(shlex.quote(a) for a in argv)


# ------------------------------------------------------------------------------ run
def _configure_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="analysis spec (TOML), e.g. models/osteoporosis.toml")
    p.add_argument("--out", default=None, help="output folder (default: results/<analysis name>)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show each fit's progress bar: chains, draws, divergences so far (default: when "
        "the output is a terminal and not --quiet)",
    )
    p.add_argument("--quiet", action="store_true", help="print only where the report is")
    _add_overrides(p)


def _run_run(args: argparse.Namespace) -> int:
    from ..reporting.report import run_analysis

    spec = _load(args)
    out = Path(args.out) if args.out else Path("results") / spec.name
    log = None if args.quiet else _say
    if log:
        log(f"bayesdta run: {spec.title} ({args.spec}) -> {out}")
    # the sampler's display: on a terminal only (never in CI logs), off with --quiet
    progress = (
        args.progress if args.progress is not None else sys.stderr.isatty() and not args.quiet
    )
    paths = run_analysis(spec, out, progress=progress, log=log, command=_command("run", args))
    main = paths.get("html") or paths.get("md")
    for k in ("html", "md"):
        if k in paths:
            print(f"report ({k}): {paths[k].resolve()}")
    if main is not None and not args.quiet:
        _say(f"open {main.resolve()}")
    return 0


# ------------------------------------------------------------------------------ sensitivity
def _workers(text: str):
    if text == "auto":
        return text
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a positive integer or 'auto', got {text!r}"
        ) from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer or 'auto', got {text!r}")
    return v


def _configure_sensitivity(p: argparse.ArgumentParser) -> None:
    p.add_argument("spec", help="analysis spec (TOML) with a [sensitivity] table")
    p.add_argument(
        "--out",
        default=None,
        help="output folder (default: results/<analysis name>/sensitivity, where "
        "`bayesdta report` finds it); finished variants are cached in OUT/cache",
    )
    p.add_argument(
        "--workers",
        type=_workers,
        default=None,
        help="local worker processes, or 'auto' (default: sensitivity.workers of the spec, "
        "else auto = cpu_count // chains); 1 runs in this process",
    )
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_overrides(p)


def _run_sensitivity(args: argparse.Namespace) -> int:
    from ..reporting.sensitivity import run_sweep

    spec = _load(args)
    out = Path(args.out) if args.out else Path("results") / spec.name / "sensitivity"
    _say(f"bayesdta sensitivity: {spec.title} ({args.spec}) -> {out}")
    table = run_sweep(
        spec,
        out,
        workers=args.workers,
        scheduler=args.scheduler,
        progress=not args.no_progress,
    )
    a = table.attrs
    _say(
        f"{len(table)} variants: {a['n_fitted']} fitted, {a['n_cached']} from the cache, "
        f"{a['elapsed_s']:.0f} s ({a['executor']})"
    )
    bad = table[table["status"] != "ok"]
    for r in bad.itertuples():
        _say(f"  {r.variant}: {r.status} — {r.note}")
    cols = ["variant", "status"] + [
        c for c in table.columns if c.endswith("_median") and not c.startswith("seed")
    ]
    import pandas as pd

    if len(table):
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(table[cols].round(3).to_string(index=False))
        print(f"table: {(out / 'sweep.csv').resolve()}")
        print(f"plot: {(out / 'sweep.png').resolve()}")
    if (out / "comparison_sweep.csv").exists():  # [sensitivity] comparison_models
        print(f"comparison models: {(out / 'comparison_sweep.csv').resolve()}")
    return 0


# ------------------------------------------------------------------------------ report
def _configure_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="a folder written by `bayesdta run` (or `bayesdta sensitivity`)")


def _run_report(args: argparse.Namespace) -> int:
    from ..reporting.report import build_report

    out = Path(args.dir)
    if not out.is_dir():
        raise FileNotFoundError(f"no run folder {str(out)!r}")
    paths = build_report(out)
    for k, p in paths.items():
        print(f"report ({k}): {p.resolve()}")
    return 0


_register(
    "run",
    (_configure_run, _run_run, "run an analysis spec (TOML): fits, tables, figures and report"),
)
_register(
    "sensitivity",
    (
        _configure_sensitivity,
        _run_sensitivity,
        "run the sensitivity sweeps of a spec (resumable; local processes or Dask)",
    ),
)
_register(
    "report",
    (_configure_report, _run_report, "rebuild report.md / report.html of a finished run folder"),
)
