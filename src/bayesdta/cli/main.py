"""Command line: ``bayesdta fit | example | run | sensitivity | report``.

Bad input exits with status 2 and a one-line ``error: ...`` message, never a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ..exceptions import BayesDTAError, SamplerWarning

__all__ = ["main", "build_parser"]

from .commands import COMMANDS, register_command


def _add_sampler_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed, same numbers)")
    p.add_argument(
        "--draws",
        type=int,
        default=None,
        help=(
            "kept draws per chain (default: by model structure, bayesdta.sampling.SamplerSettings)"
        ),
    )
    p.add_argument(
        "--tune",
        type=int,
        default=None,
        help=(
            "warm-up draws per chain (default: by model structure, "
            "bayesdta.sampling.SamplerSettings)"
        ),
    )
    p.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    p.add_argument(
        "--target-accept",
        type=float,
        default=None,
        help=(
            "NUTS target acceptance (default: by model structure, "
            "bayesdta.sampling.SamplerSettings)"
        ),
    )
    p.add_argument("--backend", choices=["nutpie", "pymc"], default="nutpie")
    p.add_argument(
        "--no-escalate",
        dest="escalate",
        action="store_false",
        help="sample once: do not repeat a run that is not clean with adjusted settings",
    )


def _configure_fit(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="CSV file with TP, FP, FN, TN columns (any case) and ids")
    p.add_argument("--out", required=True, help="output directory")
    g = p.add_argument_group("reading the data")
    g.add_argument(
        "--study",
        default=None,
        help="study id column (default: the first of study, study_id, study_name, "
        "first_author, author, author_year, id; any case, spaces or underscores)",
    )
    g.add_argument(
        "--model",
        default=None,
        help="model/test id column when a study has several rows (default: the first of "
        "model, model_id, test, test_id, result_id)",
    )
    g.add_argument(
        "--clustered",
        action="store_true",
        help="a study id repeats and there is no model column: the rows are several tables "
        "of one study (numbered 1, 2, ... within the study)",
    )
    g.add_argument(
        "--sep",
        default=None,
        metavar="SEP",
        help="column separator: ',' ';' tab '|' or comma, semicolon, tab (default: sniffed)",
    )
    g.add_argument(
        "--columns",
        default=None,
        metavar="TP=COL,FP=COL,...",
        help="count columns named otherwise, e.g. --columns TP=true_pos,FN=false_neg",
    )
    g = p.add_argument_group("model")
    g.add_argument(
        "--levels",
        type=int,
        choices=[2, 3],
        default=None,
        help="random-effect levels (default: 3 when a study has several rows)",
    )
    g.add_argument(
        "--formula",
        default=None,
        metavar="FORMULA",
        help="meta-regression formula, e.g. '~ type' (id columns may be used: '~ test')",
    )
    g.add_argument(
        "--formula-sensitivity",
        default=None,
        metavar="FORMULA",
        help="formula of sensitivity (overrides --formula)",
    )
    g.add_argument(
        "--formula-specificity",
        default=None,
        metavar="FORMULA",
        help="formula of specificity (overrides --formula)",
    )
    g.add_argument(
        "--reference",
        action="append",
        default=[],
        metavar="COL=LEVEL",
        help="reference level of a categorical covariate, e.g. backbone=ResNet; repeatable",
    )
    g.add_argument(
        "--tau-by",
        default=None,
        metavar="COL",
        help="study-level covariate whose levels get their own between-study SDs",
    )
    g.add_argument(
        "--parameterization",
        choices=["auto", "centered", "noncentered"],
        default="auto",
        help="how random effects are sampled (default auto: chosen from the data); "
        "noncentered often helps when the sampler reports divergences with few studies",
    )
    g.add_argument(
        "--random-effects",
        choices=["normal", "t"],
        default="normal",
        help="distribution of the study effects (default normal); t: bivariate Student-t, "
        "robust to outlying studies (prior nu ~ Gamma(2, 0.1); fix with --prior nu=Fixed(4))",
    )
    g.add_argument(
        "--link",
        choices=["logit", "probit"],
        default="logit",
        help="link function of sensitivity and specificity (default logit)",
    )
    g.add_argument(
        "--prior",
        action="append",
        default=[],
        metavar="NAME=DIST(ARGS)",
        help="override a prior, e.g. 'tau=HalfCauchy(1)' or 'rho=LKJ(1)' (quote it in the "
        "shell); repeatable",
    )
    g.add_argument(
        "--subset",
        choices=["low_risk"],
        default=None,
        help="low_risk: fit only the tables at low risk of bias in every QUADAS-2 domain given "
        "as columns (rob_patient_selection, ...; see docs/review_outputs.md)",
    )
    g = p.add_argument_group("output")
    g.add_argument("--ci", type=float, default=0.95, help="credible interval probability")
    g.add_argument(
        "--figures",
        default=None,
        metavar="KIND,KIND",
        help="also write these figures as OUT/<kind>.png, e.g. sroc,forest (kinds: "
        + ", ".join(_FIGURE_KINDS)
        + ")",
    )
    _add_sampler_args(p)
    g = p.add_argument_group("maximum likelihood (frequentist companion)")
    g.add_argument(
        "--ml",
        action="store_true",
        help="fit the same bivariate GLMM by maximum likelihood (adaptive Gauss-Hermite "
        "quadrature, two levels, logit link) instead of sampling; writes ml_summary.csv",
    )
    g.add_argument(
        "--n-quad",
        type=int,
        default=None,
        metavar="N",
        help="with --ml: Gauss-Hermite points per dimension (default 15; 1 = Laplace, as glmer)",
    )
    g.add_argument(
        "--profile",
        action="store_true",
        help="with --ml: also profile-likelihood confidence intervals (slower)",
    )


_FIGURE_KINDS = (
    "sroc",
    "forest",
    "fagan",
    "lr_scatter",
    "deeks",
    "influence",
    "ppc",
    "prior_posterior",
    "forest_ratios",
    "quadas",
    "pca_biplot",
)


def _pairs(items: Sequence[str], option: str, *, split_commas: bool = False) -> dict[str, str]:
    """Parse ``KEY=VALUE`` items (``--reference a=b``, ``--columns TP=x,FP=y``)."""
    from ..exceptions import SpecError

    flat: list[str] = []
    for item in items:
        flat.extend(item.split(",") if split_commas else [item])
    out: dict[str, str] = {}
    for item in flat:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise SpecError(f"{option} expects KEY=VALUE, got {item!r}")
        if key.strip() in out:
            raise SpecError(f"{option} gives {key.strip()!r} twice")
        out[key.strip()] = value.strip()
    return out


def _run_fit(args: argparse.Namespace) -> int:
    from ..data.tables import DTAData, fit_note
    from ..exceptions import IdentifiabilityWarning, SpecError
    from ..families.bivariate import ModelSpec, make_design
    from ..families.priors import parse_prior_assignment
    from ..inference.fit import fit

    # everything is validated before sampling: options, data, formulas, reference levels
    priors = dict(parse_prior_assignment(s) for s in args.prior)
    reference = _pairs(args.reference, "--reference")
    columns = _pairs([args.columns], "--columns", split_commas=True) if args.columns else None
    figures: list[str] = []
    if args.figures:
        figures = [k.strip() for k in args.figures.split(",") if k.strip()]
        bad = [k for k in figures if k not in _FIGURE_KINDS]
        if bad or not figures:
            raise SpecError(
                f"--figures: unknown figure kind {bad[0] if bad else args.figures!r}; "
                f"kinds are {', '.join(_FIGURE_KINDS)}"
            )
    if not 0 < args.ci < 1:
        raise SpecError(f"--ci must lie strictly between 0 and 1, got {args.ci}")
    data = DTAData.from_csv(
        args.data,
        study=args.study,
        model=args.model,
        columns=columns,
        clustered=args.clustered or args.levels is not None,
        sep=args.sep,
    )
    spec = ModelSpec(
        levels=args.levels,
        formula=args.formula,
        formula_sensitivity=args.formula_sensitivity,
        formula_specificity=args.formula_specificity,
        reference=reference,
        priors=priors,
        tau_by=args.tau_by,
        parameterization=args.parameterization,
        link=args.link,
        random_effects=args.random_effects,
    )
    make_design(data, spec)  # unknown columns, bad reference levels, constant covariates
    if args.ml or args.n_quad is not None or args.profile:
        from .ml import run_fit_ml

        return run_fit_ml(args, data, spec)
    print(fit_note(data, spec.levels), flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", SamplerWarning)  # shown in the printed summary instead
        warnings.simplefilter("always", IdentifiabilityWarning)
        result = fit(
            data,
            spec=spec,
            seed=args.seed,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
            target_accept=args.target_accept,
            backend=args.backend,
            escalate=args.escalate,
            verbose=False,
            subset=args.subset,
        )
    for w in caught:
        if issubclass(w.category, IdentifiabilityWarning):
            print(f"warning: {_one_line(str(w.message))}", file=sys.stderr)
    if args.subset:
        print(f"subset: {result.sampler['subset']}", flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = result.summary(args.ci)
    table.reset_index().to_csv(out / "summary.csv", index=False)
    result.save(out / "posterior.nc")
    written = [out / "summary.csv", out / "posterior.nc"]
    if figures:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        for kind in figures:
            fig = result.plot(kind)
            fig = getattr(fig, "figure", fig)
            path = out / f"{kind}.png"
            fig.savefig(path, dpi=150, bbox_inches="tight")
            plt.close(fig)
            written.append(path)
    print(result.format_summary(args.ci))
    print(f"\nwrote {', '.join(str(p) for p in written)}")
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
    from ..data.datasets import example_info, list_examples, load_example
    from ..inference.fit import fit

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
            escalate=args.escalate,
        )
    print(result.format_summary())
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result.summary().reset_index().to_csv(out / "summary.csv", index=False)
        result.save(out / "posterior.nc")
        print(f"\nwrote {out / 'summary.csv'} and {out / 'posterior.nc'}")
    return 0


register_command(
    "fit", (_configure_fit, _run_fit, "fit the bivariate / three-level model to a CSV")
)
register_command("example", (_configure_example, _run_example, "fit a packaged example dataset"))

# the other sub-commands register at import, after fit and example (the order of --help)
from . import analysis, cache, compare, multiclass  # noqa: E402, F401

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_NUMPY_SCALAR = re.compile(r"np\.(?:u?int\d*|float\d*|bool_?|str_)\(([^()]*)\)")


def _one_line(text: str) -> str:
    """An error message as one plain line: no ANSI colour codes, no line breaks."""
    text = _NUMPY_SCALAR.sub(r"\1", _ANSI.sub("", text))
    return " ".join(text.split())


class _Parser(argparse.ArgumentParser):
    """Argument parser whose usage errors are one line (``error: ...``), exit status 2."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        self.exit(2, f"error: {self.prog}: {_one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every registered sub-command."""
    parser = _Parser(
        prog="bayesdta",
        description="Bayesian hierarchical meta-analysis of diagnostic test accuracy",
    )
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"bayesdta {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (configure, _run, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayesdta`` command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure, run, _help = COMMANDS[args.command]
    # pip-installed PyTensor warns once that it found no BLAS for its C backend; the sampler
    # runs on nutpie's numba code, so on the command line this is noise
    warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")
    try:
        return int(run(args) or 0)
    except BayesDTAError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
