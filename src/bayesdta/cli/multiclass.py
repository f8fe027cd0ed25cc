"""Sub-command ``bayesdta multiclass TABLE``: the joint model of KxK confusion matrices.

Parsing only; the work is :func:`bayesdta.inference.multiclass.fit_multiclass` and the fit's
tables and figures. In an analysis spec the same model is the ``[multiclass]`` table
(``bayesdta run``).
"""

from __future__ import annotations

import argparse
import sys
import warnings

from ..exceptions import SamplerWarning, SpecError
from .commands import register_command as _register


def _configure_multiclass(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "table", help="CSV of KxK matrices: long (study, true, predicted, count) or wide"
    )
    p.add_argument("--classes", default=None, help="class labels in order, comma-separated")
    p.add_argument("--study", default="study", help="study column (default: study)")
    p.add_argument("--sep", default=None, help="CSV separator (default: sniffed)")
    p.add_argument(
        "--prevalence",
        default=None,
        help="class prevalences for the one-vs-rest specificities, e.g. "
        "osteoporosis=0.2,osteopenia=0.4,normal=0.4 (default: pooled observed)",
    )
    p.add_argument(
        "--parameterization", choices=["auto", "noncentered", "centered"], default="auto"
    )
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--draws", type=int, default=None)
    p.add_argument("--tune", type=int, default=None)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--ci", type=float, default=0.95)
    p.add_argument(
        "--out", default=None, help="folder for tables (CSV), figures (PNG) and posterior.nc"
    )


def _prevalence(text: str | None) -> dict[str, float] | None:
    if text is None:
        return None
    out = {}
    for part in text.split(","):
        if "=" not in part:
            raise SpecError(f"--prevalence {text!r}: write class=value,class=value,...")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise SpecError(f"--prevalence: {v!r} is not a number") from None
    return out


def _run_multiclass(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..data.tables import read_confusion
    from ..inference.multiclass import fit_multiclass

    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    data = read_confusion(args.table, classes=classes, study=args.study, sep=args.sep)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        f = fit_multiclass(
            data,
            prevalence=_prevalence(args.prevalence),
            parameterization=args.parameterization,
            seed=args.seed,
            draws=args.draws,
            tune=args.tune,
            chains=args.chains,
        )
    del caught  # the warnings head the printed summary
    print(f.format_summary(args.ci))
    if args.out:
        import matplotlib

        matplotlib.use("Agg")
        from ..plots.multiclass import plot_confusion_heatmap, plot_multiclass_roc, save_figure

        out = Path(args.out)
        (out / "tables").mkdir(parents=True, exist_ok=True)
        f.confusion(args.ci).to_csv(out / "tables" / "multiclass_confusion.csv", index=False)
        f.confusion(args.ci, kind="predictive").to_csv(
            out / "tables" / "multiclass_confusion_predictive.csv", index=False
        )
        f.class_summary(args.ci).to_csv(out / "tables" / "multiclass_classes.csv", index=False)
        f.heterogeneity(args.ci).to_csv(
            out / "tables" / "multiclass_heterogeneity.csv", index=False
        )
        for name, fn in (
            ("confusion_heatmap", plot_confusion_heatmap),
            ("multiclass_roc", plot_multiclass_roc),
        ):
            save_figure(fn(f, ci=args.ci), out / "figures" / name, ["png"])
        f.save(out / "posterior_multiclass.nc")
        print(f"wrote tables, figures and posterior_multiclass.nc to {out}", file=sys.stderr)
    return 0


_register(
    "multiclass",
    (
        _configure_multiclass,
        _run_multiclass,
        "fit the joint multiclass model to KxK confusion matrices (long or wide CSV)",
    ),
)
