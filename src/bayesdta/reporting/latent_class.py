"""The latent-class fit of an analysis spec: ``[latent_class]`` (imperfect reference standard).

* :func:`bayesdta.reporting.latent_class_spec.parse_latent_class` validates the spec table
  (called by :func:`bayesdta.spec.parse_spec`);
* :func:`run_latent_class` fits it during ``bayesdta run`` and writes its tables (summary,
  reference accuracy, prevalence, and the side-by-side of the perfect-reference main fit and
  the latent-class fit) into the run's report;
* :func:`run_latent_class_sweep` is the sweep axis over the reference-accuracy priors
  (``[[latent_class.sweep]]``), run by ``bayesdta sensitivity`` and shown in the report.

Spec format (``models/README.md``)::

    [latent_class]
    title = "Latent-class model (imperfect reference standard)"
    reference_standard = "reference_standard"   # the column naming each table's reference
    conditional_dependence = false
    [latent_class.reference_priors]               # required, one entry per reference type
    DXA = { sensitivity = "Beta(15, 5)", specificity = "Beta(45, 5)" }
    CT = "perfect"
    [latent_class.priors]                         # optional: mu_*, tau, rho, prevalence, ...
    [latent_class.sampler]                        # optional: overrides [sampler]
    [[latent_class.sweep]]                        # bayesdta sensitivity: prior sensitivity
    name = "dxa_vague"
    reference_priors = { DXA = { sensitivity = "Beta(2, 1)", specificity = "Beta(4, 1)" } }
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import SpecError
from .latent_class_spec import latent_class_spec

__all__ = [
    "run_latent_class",
    "run_latent_class_sweep",
    "latent_class_sweep_table",
]

SWEEP_FILE = "latent_class_sweep.csv"


def _prior_text(rp: Mapping[str, Any]) -> str:
    parts = []
    for k, v in rp.items():
        if isinstance(v, str):
            parts.append(f"{k}: {v}")
        else:
            parts.append(f"{k}: se ~ {v['sensitivity']}, sp ~ {v['specificity']}")
    return "; ".join(parts)


def _fit(spec, data, lc: Mapping[str, Any], seed: int, reference_priors=None, **over: Any):
    from ..inference.latent_class import fit_latent_class
    from ..inference.sampling import SamplerSettings

    settings = dict(spec.sampler)
    settings.update(lc["sampler"])
    settings.update(over)
    settings = {k: v for k, v in settings.items() if k in SamplerSettings.__dataclass_fields__}
    settings.pop("seed", None)
    return fit_latent_class(
        data, spec=latent_class_spec(lc, reference_priors), seed=seed, verbose=False, **settings
    )


def run_latent_class(run: Any, data: Any, main_fit: Any, *, progress: bool = False) -> Any:
    """Fit the spec's latent-class model and add its tables to ``run`` (a report run).

    Tables: ``latent_class_summary``, ``latent_class_reference`` (prior and posterior of each
    reference type, with the posterior/prior SD ratio), ``latent_class_comparison`` (the
    main fit, which takes the reference as perfect, beside the latent-class fit) and
    ``latent_class_prevalence``. Sampler and identifiability warnings go into the report's
    notes and ``run.record["latent_class"]``.
    """
    from .spec import derive_seed

    spec = run.spec
    lc = spec.latent_class
    seed = derive_seed(spec.seed, f"fit:{lc['name']}")
    say = run.log
    say(f"fitting {lc['name']}: {lc['title']} (seed {seed}) ...")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = _fit(spec, data, lc, seed, **({"progress": True} if progress else {}))
    elapsed = time.perf_counter() - t0
    diag = f.diagnostics()
    ident = f.identifiability()
    say(
        f"  done in {elapsed:.1f} s; divergences {diag['divergences']}, max R-hat "
        f"{diag['max_r_hat']:.3f}, min bulk ESS {diag['min_ess_bulk']:.0f}"
    )
    ci = float(spec.outputs["ci"])
    pct = f"{100 * ci:g}%"
    desc = f.latent_spec.describe(data)
    run.add_table(
        f.summary(ci),
        "latent_class_summary",
        fit=lc["name"],
        caption=f"{lc['title']}: posterior summary ({pct} intervals). sensitivity and "
        "specificity are the index test's summary point against the latent true status "
        "(inverse logit of the mean logits); reference_* the reference standards' accuracy; "
        "prevalence_mean the mean prevalence of the tables.",
    )
    run.add_table(
        f.reference_accuracy(ci=ci),
        "latent_class_reference",
        fit=lc["name"],
        caption=f"{lc['title']}: accuracy of each reference standard, prior and posterior; "
        "sd_ratio = posterior SD / prior SD (near 1: the data did not inform it, the answer "
        "rests on the prior).",
        index=False,
    )
    main_levels = getattr(main_fit, "levels", 2)
    side = f.compare_perfect_reference(main_fit, ci=ci)
    run.add_table(
        side,
        "latent_class_comparison",
        fit=lc["name"],
        caption=f"Index test assuming a perfect reference standard (main fit, {main_levels} "
        f"levels) beside the latent-class fit that models the reference's errors ({pct} "
        "intervals; difference = latent class minus perfect reference).",
    )
    run.add_table(
        f.prevalence(ci=ci),
        "latent_class_prevalence",
        fit=lc["name"],
        caption=f"{lc['title']}: prevalence of the latent condition per table ({pct} "
        "intervals) beside the share of reference-positive participants.",
        index=False,
    )
    warn = list(diag["warnings"]) + [m for m in ident["warning"] if m]
    run.record["latent_class"] = {
        "name": lc["name"],
        "title": lc["title"],
        "seed": int(seed),
        "model": f.latent_spec.to_dict(),
        "description": desc,
        "sampler": dict(f.sampler),
        "diagnostics": {k: v for k, v in diag.items() if k != "worst"},
        "warnings": warn,
        "elapsed_s": round(elapsed, 2),
    }
    return f


def report_section(doc: Any, out: Path, record: Mapping[str, Any]) -> None:
    """The latent-class section of the report: the model in words and its tables."""
    lc = record["latent_class"]
    doc.h(3, f"{lc['title']} ({lc['name']})")
    d = lc["diagnostics"]
    doc.p(
        "The main fit takes the reference standard of every table as perfect. The latent-class "
        "model (Dendukuri et al. 2012; docs/latent_class.md) instead treats the true status as "
        "unobserved and estimates the index test's accuracy jointly with the accuracy of each "
        "reference standard, under the priors below; it is identified only through those "
        "priors, the random-effects distribution and the reference types marked perfect. "
        f"Seed {lc['seed']}; {lc['sampler'].get('chains')} chains of "
        f"{lc['sampler'].get('draws')} draws after {lc['sampler'].get('tune')} warm-up; "
        f"divergences {d['divergences']}, max R-hat {d['max_r_hat']:.3f}, min bulk ESS "
        f"{d['min_ess_bulk']:.0f}."
    )
    doc.code(lc["description"])
    for t in record.get("tables", []):
        if t["fit"] != lc["name"]:
            continue
        path = Path(out) / next(x for x in t["files"] if x.endswith(".csv"))
        if not path.exists():
            continue
        df = pd.read_csv(path, index_col=0 if t.get("index") else None)
        if "description" in df.columns:
            df = df.drop(columns="description")
        doc.table(df.round(doc.digits), t["caption"], index=bool(t.get("index")), files=t["files"])


def latent_class_sweep_table(results: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per variant of the reference-prior sweep."""
    return pd.DataFrame(results)


def run_latent_class_sweep(spec: Any, out: str | Path, *, progress: bool = False) -> pd.DataFrame:
    """The sweep axis over the reference-accuracy priors (``[[latent_class.sweep]]``).

    The latent-class fit of the spec (baseline) and one refit per named set of reference
    priors; prior numbers are model data, so every variant re-uses the compiled model. Each
    variant's seed is derived from the spec seed and its name. Writes ``out /
    latent_class_sweep.csv`` (and ``.md``): per variant the reference priors, the index
    test's summary sensitivity and specificity (median and interval), each reference
    accuracy, the posterior/prior SD ratios and the sampler diagnostics.
    """
    from .formats import write_table
    from .spec import derive_seed

    lc = spec.latent_class
    if not lc:
        raise SpecError(f"{spec.source}: latent_class: the spec declares no latent-class fit")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data = spec.load_data()
    spec.check_data(data)
    ci = float(spec.outputs["ci"])
    variants = [{"name": "baseline", "reference_priors": lc["reference_priors"]}]
    variants += list(lc["sweep"])
    rows = []
    for v in variants:
        seed = (
            derive_seed(spec.seed, f"fit:{lc['name']}")
            if v["name"] == "baseline"
            else derive_seed(spec.seed, f"latent_class_sweep:{v['name']}")
        )
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = _fit(spec, data, lc, seed, reference_priors=v["reference_priors"])
        s = f.summary(ci)
        diag = f.diagnostics()
        row: dict[str, Any] = {
            "variant": v["name"],
            "reference_priors": _prior_text(v["reference_priors"]),
            "seed": int(seed),
        }
        names = ["sensitivity", "specificity"]
        names += [n for n in s.index if n.startswith("reference_") and s.loc[n, "sd"] > 0]
        for n in names:
            for c in ("median", "lower", "upper"):
                row[f"{n}_{c}"] = float(s.loc[n, c])
        for _, r in f.identifiability().iterrows():
            row[f"sd_ratio_{r['measure']}[{r['reference']}]"] = float(r["sd_ratio"])
        row.update(
            {
                "divergences": int(diag["divergences"]),
                "max_r_hat": float(diag["max_r_hat"]),
                "min_ess_bulk": float(diag["min_ess_bulk"]),
                "elapsed_s": round(time.perf_counter() - t0, 2),
            }
        )
        rows.append(row)
        if progress:
            print(f"latent-class sweep: {v['name']} done", flush=True)
    table = latent_class_sweep_table(rows)
    table.insert(1, "status", "ok")
    table.attrs.update(
        {
            "n_fitted": len(rows),
            "n_cached": 0,
            "elapsed_s": float(sum(r["elapsed_s"] for r in rows)),
            "executor": "in process (reference-prior sweep of the latent-class fit)",
        }
    )
    write_table(table, out / SWEEP_FILE.removesuffix(".csv"), formats=["csv"], index=False)
    (out / "latent_class_sweep.json").write_text(
        json.dumps({"ci": ci, "variants": variants}, indent=1, default=str)
    )
    return table


def sweep_section(doc: Any, folder: Path) -> None:
    """Add the reference-prior sweep (if ``folder`` holds one) to a report document."""
    path = Path(folder) / SWEEP_FILE
    if not path.exists():
        return
    df = pd.read_csv(path)
    keep = [c for c in df.columns if not c.startswith(("sd_ratio", "seed", "elapsed"))]
    doc.h(3, "Prior sensitivity of the latent-class model (reference-accuracy priors)")
    doc.table(
        df[keep].round(3) if hasattr(df, "round") else df,
        "The latent-class fit refitted over other priors for the reference standards' "
        "accuracy (bayesdta sensitivity, [[latent_class.sweep]]): the index test's summary "
        "sensitivity and specificity and the reference accuracy (posterior median and "
        "interval) per prior set. Large movements mean the answer rests on these priors.",
        index=False,
        files=[str(path.relative_to(Path(folder).parent))]
        if Path(folder).parent in path.parents
        else [str(path)],
    )
