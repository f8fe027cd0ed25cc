"""Command line: ``bayesdta fit | example | run | sensitivity | report``.

Bad input exits with status 2 and a one-line ``error: ...`` message, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from .exceptions import BayesDTAError, SamplerWarning

__all__ = ["main", "build_parser"]

# Sub-commands register here: name -> (configure(subparser), run(args) -> int, help).
# Other modules (bayesdta.cli_analysis) add entries to this dict at import.
_COMMANDS: dict[str, tuple[Callable[[argparse.ArgumentParser], None], Callable[..., int], str]] = {}


def _add_sampler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed, same numbers)")
    p.add_argument(
        "--draws",
        type=int,
        default=None,
        help="kept draws per chain (default 400 for two levels, 1000 for three)",
    )
    p.add_argument(
        "--tune",
        type=int,
        default=None,
        help="warm-up draws per chain (default 400 for two levels, 1000 for three)",
    )
    p.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    p.add_argument(
        "--target-accept",
        type=float,
        default=None,
        help="NUTS target acceptance (default 0.8 for two levels, 0.9 for three)",
    )
    p.add_argument("--backend", choices=["nutpie", "pymc"], default="nutpie")


def _configure_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="CSV file with TP, FP, FN, TN columns (any case) and ids")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--study", default=None, help="study id column (default: study/study_id)")
    p.add_argument("--model", default=None, help="model/test id column (several rows per study)")
    p.add_argument(
        "--levels",
        type=int,
        choices=[2, 3],
        default=None,
        help="random-effect levels (default: 3 when a study has several rows)",
    )
    p.add_argument("--formula", default=None, help='meta-regression formula, e.g. "~ type"')
    p.add_argument(
        "--link",
        choices=["logit", "probit"],
        default="logit",
        help="link function of sensitivity and specificity (default logit)",
    )
    p.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="NAME=DIST(ARGS)",
        help="override a prior, e.g. tau=HalfCauchy(1) or rho=LKJ(1); repeatable",
    )
    p.add_argument("--ci", type=float, default=0.95, help="credible interval probability")
    _add_sampler_args(p)


def _run_fit(args: argparse.Namespace) -> int:
    from .data import DTAData
    from .fit import fit
    from .priors import parse_prior_assignment

    priors = dict(parse_prior_assignment(s) for s in args.prior)
    data = DTAData.from_csv(args.data, study=args.study, model=args.model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)  # shown in the printed summary instead
        result = fit(
            data,
            levels=args.levels,
            formula=args.formula,
            link=args.link,
            priors=priors,
            seed=args.seed,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            target_accept=args.target_accept,
            backend=args.backend,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = result.summary(args.ci)
    table.reset_index().to_csv(out / "summary.csv", index=False)
    result.save(out / "posterior.nc")
    print(result.format_summary(args.ci))
    print(f"\nwrote {out / 'summary.csv'} and {out / 'posterior.nc'}")
    return 0


def _configure_example(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "name",
        nargs="?",
        default="dementia",
        help="packaged dataset (default dementia); see --list",
    )
    p.add_argument("--list", action="store_true", help="list the packaged datasets")
    p.add_argument("--out", default=None, help="also write summary.csv and posterior.nc here")
    _add_sampler_args(p)


def _run_example(args: argparse.Namespace) -> int:
    from .datasets import example_info, list_examples, load_example
    from .fit import fit

    if args.list:
        for k, v in list_examples().items():
            print(f"{k:<18} {v}")
        return 0
    info = example_info(args.name)
    data = load_example(args.name)
    print(f"{args.name}: {info['description']}\n  source: {info['citation']}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        result = fit(
            data,
            seed=args.seed if args.seed is not None else 2025,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            target_accept=args.target_accept,
            backend=args.backend,
        )
    print(result.format_summary())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result.summary().reset_index().to_csv(out / "summary.csv", index=False)
        result.save(out / "posterior.nc")
        print(f"\nwrote {out / 'summary.csv'} and {out / 'posterior.nc'}")
    return 0


_COMMANDS["fit"] = (_configure_fit, _run_fit, "fit the bivariate / three-level model to a CSV")
_COMMANDS["example"] = (_configure_example, _run_example, "fit a packaged example dataset")


def _load_extra_commands() -> None:
    """Import modules that register further sub-commands (run, sensitivity, report)."""
    import importlib

    for mod in ("bayesdta.cli_analysis", "bayesdta.cli_cache"):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:
            if exc.name != mod:
                raise


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    _load_extra_commands()
    parser = argparse.ArgumentParser(
        prog="bayesdta",
        description="Bayesian hierarchical meta-analysis of diagnostic test accuracy",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"bayesdta {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (configure, _run, help_) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesdta`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure, run, _help = _COMMANDS[args.command]
    # pip-installed PyTensor warns once that it found no BLAS for its C backend; the sampler
    # runs on nutpie's numba code, so on the command line this is noise
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
    try:
        return int(run(args) or 0)
    except BayesDTAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
