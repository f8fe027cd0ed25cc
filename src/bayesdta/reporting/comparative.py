"""The comparative section of an analysis: ``[comparison]`` of a spec, its tables, figure, sweep.

:func:`run_comparison` fits :func:`bayesdta.compare_tests` with the spec's ``[comparison]``
options and writes ``comparative/`` (tables ``design``, ``summary``, ``relative``,
``ranking``, ``parameters`` as CSV and Markdown; figure ``comparative_sroc``; record
``comparative.json``). :func:`comparison_sweep` refits every comparison model listed in
``[sensitivity] comparison_models`` and writes one table. :func:`comparative_section` adds
both to a report.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import SamplerWarning, SpecError
from ..families.comparative import COMPARISON_MODELS
from .formats import write_table

__all__ = [
    "COMPARISON_KEYS",
    "COMPARATIVE_TABLES",
    "parse_comparison",
    "run_comparison",
    "comparison_sweep",
    "comparative_section",
]

#: Keys of a spec's ``[comparison]`` table.
COMPARISON_KEYS = ("test", "paired", "reference", "model", "tau_by_test", "priors", "ci")
#: Tables of the comparative section: name -> caption.
COMPARATIVE_TABLES = {
    "design": "Which studies evaluated which tests (number of tables) and whether a study's "
    "tables share their diseased / non-diseased counts (paired).",
    "summary": "Summary sensitivity and specificity per test (inverse logit of the test's mean "
    "logit) and between-study SDs of its logits: posterior mean, median and interval.",
    "relative": "Relative accuracy for every ordered pair: ratio and difference of the summary "
    "sensitivity / specificity of test vs comparator (median, interval), P(test better).",
    "ranking": "Ranking probabilities (rank 1 = most accurate) per criterion, mean rank, SUCRA.",
    "parameters": "Model parameters (mean logits per test, SDs, correlations) with R-hat and ESS.",
}


def parse_comparison(value: Any, where: str = "comparison") -> dict[str, Any] | None:
    """Validate a spec's ``[comparison]`` table (None when absent); errors name the key."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: must be a table, got {value!r}")
    unknown = sorted(set(value) - set(COMPARISON_KEYS))
    if unknown:
        raise SpecError(f"{where}.{unknown[0]}: unknown key; allowed: {list(COMPARISON_KEYS)}")
    out: dict[str, Any] = {"test": "test", "model": "deviations", "tau_by_test": False}
    out.update(dict(value))
    if not isinstance(out["test"], str) or not out["test"]:
        raise SpecError(f"{where}.test: must name the test column, got {out['test']!r}")
    if out["model"] not in COMPARISON_MODELS:
        raise SpecError(f"{where}.model: must be one of {list(COMPARISON_MODELS)}")
    for b in ("tau_by_test",):
        if not isinstance(out[b], bool):
            raise SpecError(f"{where}.{b}: must be true or false, got {out[b]!r}")
    if out.get("paired") is not None and not isinstance(out["paired"], bool):
        raise SpecError(f"{where}.paired: must be true or false, got {out['paired']!r}")
    if "priors" in out and not isinstance(out["priors"], Mapping):
        raise SpecError(f"{where}.priors: must be a table such as {{tau = 'HalfNormal(1)'}}")
    return out


def _fit(data, options: Mapping[str, Any], settings: Mapping[str, Any], seed: int, model=None):
    from ..workflows.comparative import compare_tests

    kw = {k: v for k, v in settings.items() if k in ("backend", "draws", "tune", "chains")}
    kw.update({k: v for k, v in settings.items() if k in ("target_accept", "cores", "progress")})
    model = model or options.get("model", "deviations")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", SamplerWarning)
        f = compare_tests(
            data,
            test=options.get("test", "test"),
            paired=options.get("paired"),
            comparison=model,
            tau_by_test=bool(options.get("tau_by_test")) and model == "deviations",
            reference=options.get("reference"),
            priors=dict(options.get("priors") or {}),
            seed=seed,
            verbose=False,
            **kw,
        )
    notes = [str(w.message) for w in caught if issubclass(w.category, SamplerWarning)]
    return f, notes


def run_comparison(
    data,
    options: Mapping[str, Any],
    out: str | Path,
    *,
    settings: Mapping[str, Any] | None = None,
    seed: int = 2025,
    say: Any = None,
) -> dict[str, Any]:
    """Fit the comparison of a spec and write its tables and figure to ``out/comparative``.

    Returns the record written to ``comparative.json`` (model, what was read, timing,
    diagnostics, files).
    """
    say = say or (lambda msg: None)
    folder = Path(out) / "comparative"
    folder.mkdir(parents=True, exist_ok=True)
    ci = float(options.get("ci", 0.95))
    t0 = time.perf_counter()
    f, notes = _fit(data, options, settings or {}, seed)
    elapsed = time.perf_counter() - t0
    diag = f.diagnostics()
    say(
        f"comparison of tests ({f.spec.model}): done in {elapsed:.1f} s; divergences "
        f"{diag['divergences']}, max R-hat {diag['max_r_hat']:.3f}, "
        f"min bulk ESS {diag['min_ess_bulk']:.0f}"
    )
    tables = {
        "design": (f.design_table().reset_index(), False),
        "summary": (f.summary(ci=ci), False),
        "relative": (f.relative(ci=ci), False),
        "ranking": (f.ranking(), False),
        "parameters": (f.parameters(ci=ci).reset_index(), False),
    }
    files = {}
    for name, (df, index) in tables.items():
        paths = write_table(
            df,
            folder / name,
            formats=("csv", "md"),
            index=index,
            caption=COMPARATIVE_TABLES[name],
        )
        files[name] = [str(p.relative_to(out)) for p in paths]
    import matplotlib.pyplot as plt

    fig = f.plot("comparative_sroc", ci=ci)
    for fmt in ("png", "pdf"):
        fig.savefig(folder / f"comparative_sroc.{fmt}", dpi=150, bbox_inches="tight")
    plt.close(fig)
    record = {
        "model": f.spec.to_dict(),
        "model_line": f.describe().splitlines()[-1],
        "read": f.comparative.describe(),
        "tests": f.tests,
        "ci": ci,
        "seed": seed,
        "elapsed_s": round(elapsed, 2),
        "sampler": {k: v for k, v in f.sampler.items() if k != "attempts"},
        "attempts": len(f.sampler.get("attempts", [])),
        "diagnostics": diag,
        "warnings": notes,
        "tables": files,
        "figure": "comparative/comparative_sroc.png",
    }
    (folder / "comparative.json").write_text(json.dumps(record, indent=1, default=str))
    return record


def comparison_sweep(
    data,
    options: Mapping[str, Any],
    out: str | Path,
    models: Sequence[str],
    *,
    settings: Mapping[str, Any] | None = None,
    seed: int = 2025,
    say: Any = None,
) -> pd.DataFrame:
    """Refit the comparison under each model of ``models``; write ``comparison_sweep.csv/md``.

    One row per (model, test, quantity) for the summary points, and per (model, test,
    comparator, outcome) for the differences and P(better) against the reference test (the
    first test).
    """
    say = say or (lambda msg: None)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ci = float(options.get("ci", 0.95))
    rows = []
    for m in models:
        if m not in COMPARISON_MODELS:
            raise SpecError(
                f"sensitivity.comparison_models: {m!r} is not one of {list(COMPARISON_MODELS)}"
            )
        t0 = time.perf_counter()
        f, notes = _fit(data, {**options, "tau_by_test": False}, settings or {}, seed, model=m)
        diag = f.diagnostics()
        say(f"comparison model {m}: {time.perf_counter() - t0:.1f} s")
        s = f.summary(ci=ci)
        for r in s[s["quantity"].isin(["sensitivity", "specificity"])].itertuples():
            rows.append(
                {
                    "comparison_model": m,
                    "test": r.test,
                    "comparator": "",
                    "quantity": r.quantity,
                    "median": r.median,
                    "lower": r.lower,
                    "upper": r.upper,
                    "p_better": float("nan"),
                    "divergences": diag["divergences"],
                    "max_r_hat": diag["max_r_hat"],
                }
            )
        rel = f.relative(ci=ci)
        rel = rel[rel["comparator"] == f.tests[0]]
        for r in rel.itertuples():
            rows.append(
                {
                    "comparison_model": m,
                    "test": r.test,
                    "comparator": r.comparator,
                    "quantity": f"difference_{r.outcome}",
                    "median": r.difference,
                    "lower": r.difference_lower,
                    "upper": r.difference_upper,
                    "p_better": r.p_better,
                    "divergences": diag["divergences"],
                    "max_r_hat": diag["max_r_hat"],
                }
            )
    table = pd.DataFrame(rows)
    write_table(
        table,
        out / "comparison_sweep",
        formats=("csv", "md"),
        index=False,
        caption=f"Comparison models: per-test summary points and differences from the "
        f"reference test (median, {ci:.0%} interval, P(better)).",
    )
    (out / "comparison_sweep.json").write_text(
        json.dumps({"models": list(models), "ci": ci, "seed": seed}, indent=1)
    )
    return table


def comparative_section(doc: Any, out: Path, *, heading: int = 2) -> bool:
    """Add the comparative section (tables, figure, comparison-model sweep) to a report."""
    folder = Path(out) / "comparative"
    rec_path = folder / "comparative.json"
    sweep = Path(out) / "sensitivity" / "comparison_sweep.csv"
    if not sweep.exists():  # a folder written by the sweep alone
        sweep = Path(out) / "comparison_sweep.csv"
    if not rec_path.exists() and not sweep.exists():
        return False
    doc.h(heading, "Comparative accuracy", "comparative")
    if rec_path.exists():
        rec = json.loads(rec_path.read_text())
        d = rec["diagnostics"]
        doc.p(
            f"{rec['read']}. {rec['model_line']}. Fitted in {rec['elapsed_s']:.0f} s "
            f"(seed {rec['seed']}): {d['divergences']} divergences, max R-hat "
            f"{d['max_r_hat']:.3f}, min bulk / tail ESS {d['min_ess_bulk']:.0f} / "
            f"{d['min_ess_tail']:.0f}. Model, priors and the alternatives: docs/comparative.md."
        )
        if rec.get("warnings"):
            doc.warn("Sampler warnings (comparison)", rec["warnings"])
        for name in ("design", "summary", "relative", "ranking", "parameters"):
            csv = folder / f"{name}.csv"
            if csv.exists():
                df = pd.read_csv(csv, keep_default_na=False)
                doc.table(
                    df,
                    COMPARATIVE_TABLES[name],
                    index=False,
                    files=[f"comparative/{name}.csv"],
                )
        if (folder / "comparative_sroc.png").exists():
            doc.figure(
                "comparative/comparative_sroc.png",
                "SROC curves by test: tables (circles; a study's tables joined by grey lines), "
                "summary points with intervals, HSROC curves with credible bands.",
                ["comparative/comparative_sroc.pdf"],
            )
    if sweep.exists():
        doc.table(
            pd.read_csv(sweep, keep_default_na=False),
            "Comparison models (sweep): summary points and differences from the reference "
            "test under each model.",
            index=False,
            files=[str(sweep.relative_to(out))],
        )
    return True
