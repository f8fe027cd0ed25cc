"""The ``[multiclass]`` part of an analysis run: joint model fit, tables, figures, report section.

:func:`run_multiclass` is called by :func:`bayesdta.reporting.report.run_analysis` when the spec
has a ``[multiclass]`` table; :func:`multiclass_section` writes its section of the report from
the run record (nothing is refitted).
"""

from __future__ import annotations

import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import SamplerWarning
from ..inference.multiclass import fit_multiclass
from ..plots.multiclass import plot_confusion_heatmap, plot_multiclass_roc, save_figure
from ..workflows.multiclass import compare_one_vs_rest
from .spec import MULTICLASS_FIGURES, MULTICLASS_TABLES, derive_seed

__all__ = ["run_multiclass", "multiclass_section", "multiclass_methods"]

_FIGURE_FUNCTIONS = {
    "confusion_heatmap": plot_confusion_heatmap,
    "multiclass_roc": plot_multiclass_roc,
}


def _ci_pct(ci: float) -> str:
    return f"{100 * ci:g}%"


def run_multiclass(run: Any, spec: Any, *, progress: bool = False) -> None:
    """Fit the joint multiclass model of ``spec.multiclass`` and add its tables and figures.

    ``run`` is the report's run object (``add_table``, ``record``, ``note``, ``out``).
    """
    m = spec.multiclass
    ci = float(spec.outputs["ci"])
    data = spec.load_confusion()
    settings = spec.sampler_settings()
    settings.update(m.get("sampler") or {})
    if progress:
        settings["progress"] = True
    seed = derive_seed(spec.seed, "multiclass")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SamplerWarning)
        f = fit_multiclass(
            data,
            priors=m.get("priors"),
            parameterization=m.get("parameterization", "auto"),
            prevalence=m.get("prevalence"),
            seed=seed,
            verbose=False,
            **settings,
        )
    elapsed = time.perf_counter() - t0
    diag = f.diagnostics()
    run.log(
        f"  multiclass done in {elapsed:.1f} s; divergences {diag['divergences']}, max R-hat "
        f"{diag['max_r_hat']:.3f}, min bulk ESS {diag['min_ess_bulk']:.0f}"
        + (f"; WARNINGS: {'; '.join(diag['warnings'])}" if diag["warnings"] else "")
    )
    rec: dict[str, Any] = {
        "title": m["title"],
        "data": data.describe(),
        "classes": list(data.classes),
        "n_studies": data.n_studies,
        "n_participants": int(np.asarray(data.counts).sum()),
        "simulated": spec.multiclass_is_simulated(),
        "prevalence": dict(zip(data.classes, map(float, f.prevalence), strict=True)),
        "prevalence_source": f.prevalence_source,
        "priors": {k: str(v) for k, v in f.spec.priors.items()},
        "seed": int(seed),
        "sampler": {k: v for k, v in f.sampler.items() if k != "attempts"},
        "sampling_note": f.sampling_note(),
        "diagnostics": diag,
        "elapsed_s": round(elapsed, 2),
    }
    if spec.outputs.get("save_posterior", True):
        f.save(run.out / "posterior_multiclass.nc")
        rec["posterior"] = "posterior_multiclass.nc"
    tables: dict[str, pd.DataFrame] = {}
    want = list(m["tables"])
    if "multiclass_confusion" in want:
        tables["multiclass_confusion"] = f.confusion(ci)
    if "multiclass_confusion_predictive" in want:
        tables["multiclass_confusion_predictive"] = f.confusion(ci, kind="predictive")
    if "multiclass_classes" in want:
        tables["multiclass_classes"] = f.class_summary(ci)
    if "multiclass_heterogeneity" in want:
        tables["multiclass_heterogeneity"] = f.heterogeneity(ci)
    if "multiclass_comparison" in want:
        try:
            sep_settings = spec.sampler_settings()  # as the main bivariate fit
            tables["multiclass_comparison"] = compare_one_vs_rest(f, ci=ci, **sep_settings)
        except Exception as exc:  # the comparison must not stop the run
            rec["comparison_error"] = f"{type(exc).__name__}: {exc}"
            run.note(f"multiclass comparison skipped: {type(exc).__name__}: {exc}")
    prev = ", ".join(f"{c} {p:.3f}" for c, p in rec["prevalence"].items())
    for name, df in tables.items():
        caption = MULTICLASS_TABLES[name].replace(
            "credible interval", f"{_ci_pct(ci)} credible interval"
        )
        if name in ("multiclass_classes", "multiclass_comparison"):
            caption += f" Prevalences ({f.prevalence_source}): {prev}."
        run.add_table(df, name, fit="multiclass", caption=caption, index=False)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name in m["figures"]:
        entry: dict[str, Any] = {
            "name": name,
            "figure": name,
            "fit": "multiclass",
            "caption": MULTICLASS_FIGURES[name],
        }
        fig = None
        try:
            fig = _FIGURE_FUNCTIONS[name](f, ci=ci)
            files = save_figure(
                fig,
                run.out / "figures" / name,
                spec.outputs["figure_formats"],
                dpi=spec.outputs["figure_dpi"],
            )
            entry["status"] = "ok"
            entry["files"] = [str(Path(p).relative_to(run.out)) for p in files]
        except Exception as exc:
            entry["status"] = "failed"
            entry["note"] = f"figure '{name}' of the multiclass fit failed: {exc}"
            entry["traceback"] = traceback.format_exc(limit=3)
            run.note(entry["note"])
        finally:
            if fig is not None:
                plt.close(fig)
        run.record["figures"].append(entry)
    run.record["multiclass"] = rec


def multiclass_methods(rec: dict[str, Any]) -> str:
    """Methods paragraph of the multiclass analysis."""
    k = len(rec["classes"])
    pri = rec["priors"]
    return (
        f"Joint multiclass model. The {k}x{k} confusion matrices of {rec['n_studies']} studies "
        f"({rec['n_participants']} participants; classes {', '.join(rec['classes'])}) were "
        "modelled jointly: for each study and true class, the predicted classes are "
        "multinomial, with the log-odds of each wrong prediction against the correct one "
        f"(K(K-1) = {k * (k - 1)} per study) equal to a mean plus correlated study effects "
        "(multivariate normal; SDs and an LKJ correlation matrix). Priors: mean log-odds "
        f"~ {pri.get('mu')}, between-study SDs ~ {pri.get('tau')}, correlation matrix ~ "
        f"{pri.get('rho')}. The pooled confusion matrix is the inverse link (softmax) of the "
        "mean log-odds; the predictive matrix that of a new study's log-odds. One-vs-rest "
        "sensitivity of a class is its diagonal cell; its specificity is the "
        "prevalence-weighted average of the other classes' probabilities of not being "
        f"predicted as that class, with the {rec['prevalence_source']} prevalences "
        + ", ".join(f"{c} {p:.3f}" for c, p in rec["prevalence"].items())
        + f". Sampling: {rec['sampling_note']}; seed {rec['seed']}. See docs/multiclass.md."
    )


def multiclass_section(doc: Any, record: dict[str, Any], out: Path, read_table: Any) -> None:
    """Write the multiclass section of the report (tables of ``fit == "multiclass"``)."""
    rec = record.get("multiclass")
    if not rec:
        return
    doc.h(3, rec["title"], "multiclass")
    if rec.get("simulated"):
        doc.warn(
            "SIMULATED DATA",
            ["The confusion matrices are simulated with known truth; not study results."],
        )
    if rec["diagnostics"]["warnings"]:
        doc.warn(
            "Sampler warnings of the multiclass fit — resolve before reporting",
            rec["diagnostics"]["warnings"],
        )
    doc.p(f"Data: {rec['data']}.")
    doc.p(multiclass_methods(rec))
    dg = rec["diagnostics"]
    doc.p(
        f"Diagnostics: {dg['divergences']} divergences, max R-hat {dg['max_r_hat']:.3f}, "
        f"min bulk ESS {dg['min_ess_bulk']:.0f}, min tail ESS {dg['min_ess_tail']:.0f}; "
        f"{rec['elapsed_s']:.0f} s."
    )
    for t in record.get("tables", []):
        if t.get("fit") != "multiclass":
            continue
        df = read_table(out, t)
        if df is None:
            continue
        if t["name"] == "multiclass_comparison":
            doc.p(
                "Comparison with the separate one-vs-rest analyses: each study's matrix was "
                "split into K one-vs-rest 2x2 tables and the bivariate model fitted per class. "
                "The separate analyses treat the K tables of a study as unrelated and pool each "
                "class's specificity over the studies' own class mixes; the joint model keeps "
                "the dependence and weights the other classes by the stated prevalences, so "
                "specificities can differ for that reason alone."
            )
            df = df.drop(columns=[c for c in ("separate_warnings",) if c in df.columns])
        doc.table(df.round(doc.digits), t["caption"], index=False, files=t["files"])
