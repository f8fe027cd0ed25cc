"""``bayesdta fit --ml``: the maximum-likelihood companion on the command line (parsing only)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from ..exceptions import SpecError

__all__ = ["run_fit_ml"]


def run_fit_ml(args: argparse.Namespace, data, spec) -> int:
    """Fit ``spec`` to ``data`` by ML (:func:`bayesdta.fit_ml`), print and write the summary."""
    from ..inference.ml import DEFAULT_N_QUAD, MLWarning, fit_ml

    if not args.ml:
        raise SpecError("--n-quad and --profile go with --ml (the maximum-likelihood fit)")
    bad = [
        (args.prior, "--prior (ML has no priors)"),
        (args.link != "logit", "--link probit (the ML companion uses the logit link)"),
        (args.tau_by, "--tau-by"),
        (args.random_effects != "normal", "--random-effects t"),
        (args.levels == 3, "--levels 3 (ML fits two levels; use the Bayesian fit)"),
        (args.figures, "--figures"),
    ]
    for given, what in bad:
        if given:
            raise SpecError(f"--ml does not take {what}")
    n_quad = DEFAULT_N_QUAD if args.n_quad is None else args.n_quad
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MLWarning)
        result = fit_ml(
            data,
            formula_sensitivity=spec.formulas()[0],
            formula_specificity=spec.formulas()[1],
            reference=spec.reference,
            levels=args.levels,
            n_quad=n_quad,
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = result.summary(args.ci, profile=bool(args.profile))
    path = out / "ml_summary.csv"
    table.reset_index().to_csv(path, index=False)
    print(result.format_summary(args.ci))
    if args.profile:
        print(table[["profile_lower", "profile_upper"]].round(3).dropna(how="all").to_string())
    for w in caught:
        if issubclass(w.category, MLWarning):
            print(f"warning: {' '.join(str(w.message).split())}")
    print(
        f"\nwrote {path} (log-likelihood {result.loglik:.4f}, AIC {result.aic:.2f}, "
        f"BIC {result.bic:.2f}; {result.timing['fit_s']:.1f} s)"
    )
    return 0
