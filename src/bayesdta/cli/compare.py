"""Sub-command ``bayesdta compare DATA --test COLUMN --out DIR``: comparative accuracy.

Fits :func:`bayesdta.compare_tests` and writes the comparative tables (design, summary,
relative, ranking, parameters; CSV and Markdown), the ``comparative_sroc`` figure and
``comparative.json`` to ``DIR/comparative`` (as the ``[comparison]`` of an analysis spec).
"""

from __future__ import annotations

import argparse
import sys

from .commands import register_command as _register

__all__: list[str] = []


def _configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("data", help="CSV file: one 2x2 table per row, a study and a test column")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--test", default="test", help="test column (default: test)")
    p.add_argument("--study", default=None, help="study id column (default: found by name)")
    p.add_argument(
        "--model",
        default=None,
        help="column telling apart several tables of one test in a study (default: none)",
    )
    p.add_argument("--reference", default=None, help="test listed first")
    pair = p.add_mutually_exclusive_group()
    pair.add_argument(
        "--paired",
        dest="paired",
        action="store_const",
        const=True,
        default=None,
        help="declare a paired design (checked: same diseased / non-diseased counts per study)",
    )
    pair.add_argument("--unpaired", dest="paired", action="store_const", const=False)
    p.add_argument(
        "--comparison",
        choices=["deviations", "deviations_by_test", "shared"],
        default="deviations",
        help="comparison model (docs/comparative.md; default: deviations)",
    )
    p.add_argument("--tau-by-test", action="store_true", help="test-specific test-by-study SDs")
    p.add_argument("--seed", type=int, default=2025, help="random seed (default 2025)")
    p.add_argument("--draws", type=int, default=None, help="kept draws per chain")
    p.add_argument("--tune", type=int, default=None, help="warm-up draws per chain")
    p.add_argument("--chains", type=int, default=4, help="number of chains (default 4)")
    p.add_argument("--ci", type=float, default=0.95, help="credible level (default 0.95)")


def _run(args: argparse.Namespace) -> int:
    from ..data.comparative import read_comparative
    from ..reporting.comparative import run_comparison

    cdata = read_comparative(
        args.data,
        test=args.test,
        study=args.study,
        model=args.model,
        paired=args.paired,
        reference=args.reference,
    )
    print(cdata.describe(), file=sys.stderr, flush=True)
    settings = {"chains": args.chains}
    settings.update({k: getattr(args, k) for k in ("draws", "tune") if getattr(args, k)})
    options = {
        "model": args.comparison,
        "tau_by_test": bool(args.tau_by_test),
        "ci": args.ci,
    }
    rec = run_comparison(
        cdata,
        options,
        args.out,
        settings=settings,
        seed=args.seed,
        say=lambda m: print(m, file=sys.stderr, flush=True),
    )
    print(f"wrote {args.out}/comparative: {', '.join(rec['tables'])}, comparative_sroc")
    return 0


_register("compare", (_configure, _run, "compare the accuracy of several tests (CSV)"))
