"""Write docs/validation.md from validation/validation_template.md and validation/results/*.csv.

    python validation/report.py

Placeholders of the template: SBC_RUNS, SBC_TABLE, SBC_FIGURES, POWER_TABLE, CROSS_TABLE,
CROSS_SUMMARY, PUB_SMOKING, PUB_ML, PUB_REVIEWS. A result file that is missing leaves a note
saying which command makes it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RES = ROOT / "validation" / "results"


def _md(df: pd.DataFrame, digits: int = 3) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = []
        for c in cols:
            v = r[c]
            if isinstance(v, float):
                cells.append("" if pd.isna(v) else f"{v:.{digits}f}")
            else:
                cells.append(str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def sbc_table() -> str:
    p = RES / "sbc_coverage.csv"
    if not p.exists():
        return "_not run yet: `python validation/sbc.py`_"
    t = pd.read_csv(p)
    t["parameter"] = "`" + t["parameter"] + "`"
    return _md(t[["case", "parameter", "n", "cover_50", "cover_90", "cover_95", "chi2_p"]], 2)


def sbc_figures() -> str:
    p = RES / "sbc_coverage.csv"
    if not p.exists():
        return ""
    cases = pd.read_csv(p)["case"].unique()
    return "\n\n".join(f"![SBC ranks, {c}](img/sbc_{c}.png)" for c in cases)


def power_table() -> str:
    p = RES / "sbc_fast_power.csv"
    if not p.exists():
        return "_not run yet: `python validation/sbc.py --power 2`_"
    t = pd.read_csv(p)
    if "case" not in t:
        t.insert(0, "case", "two_level")
    keys = ["case", "simulator"]
    g = t.groupby(keys, sort=False)["failed"].agg(["sum", "count"]).reset_index()
    g.columns = [*keys, "runs failing the fast checks", "runs"]
    why = t[t["failed"]].groupby(keys)["why"].first()
    g["example failure"] = [why.get(tuple(k), "") for k in g[keys].itertuples(index=False)]
    return _md(g)


def cross_table() -> tuple[str, str]:
    p = RES / "cross_engine.csv"
    if not p.exists():
        return "_not run yet: `python validation/cross_engine.py`_", ""
    t = pd.read_csv(p)
    lines = [
        "| dataset | levels | parameter | bayesdta mean (95% CrI) | numpyro mean (95% CrI) "
        "| z | SD ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in t.iterrows():
        lines.append(
            f"| {r.dataset} | {r.levels} | `{r.parameter}` | {r.mean_bayesdta:.3f} "
            f"({r.q025_bayesdta:.3f}, {r.q975_bayesdta:.3f}) | {r.mean_numpyro:.3f} "
            f"({r.q025_numpyro:.3f}, {r.q975_numpyro:.3f}) | {r.z:+.2f} | {r.sd_ratio:.3f} |"
        )
    n = len(t)
    summary = (
        f"Over {n} comparisons on {t['dataset'].nunique()} datasets: max |z| = "
        f"{t['z'].abs().max():.2f}, {int((t['z'].abs() > 2).sum())} with |z| > 2 (about "
        f"{0.046 * n:.1f} expected by chance), {int((t['z'].abs() > 3).sum())} with |z| > 3; "
        f"SD ratios {t['sd_ratio'].min():.2f}-{t['sd_ratio'].max():.2f}."
    )
    return "\n".join(lines), summary


def pub_tables() -> tuple[str, str, str]:
    p = RES / "published.csv"
    if not p.exists():
        return ("_not run yet: `python validation/published.py`_",) * 3
    t = pd.read_csv(p)

    def ci(r):
        return "" if pd.isna(r.ours_lower) else f"({r.ours_lower:.3f}, {r.ours_upper:.3f})"

    s = t[t["dataset"] == "smoking"]
    a = ["| quantity | published | bayesdta | 95% CrI | how |", "|---|---|---|---|---|"]
    for _, r in s.iterrows():
        pub = "" if pd.isna(r.published) else f"{r.published:.3f}"
        if pd.isna(r.published):
            pub = "IAQ higher"
        a.append(f"| {r.quantity} | {pub} | {r.ours:.3f} | {ci(r)} | {r.method} |")
    if "section" in t:
        reviews = t[t["section"] == "reviews"]
        t = t[t["section"] != "reviews"]
    else:
        reviews = t.iloc[:0]
    m = t[t["dataset"] != "smoking"]
    b = [
        "| dataset | parameter | glmer (Laplace) | AGHQ ML | bayesdta median | 95% CrI |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in m.iterrows():
        b.append(
            f"| {r.dataset} | `{r.quantity}` | {r.published:.3f} | {r.aghq_ml:.3f} | "
            f"{r.ours:.3f} | {ci(r)} |"
        )
    return "\n".join(a), "\n".join(b), review_table(reviews)


def review_table(t: pd.DataFrame) -> str:
    """Published pooled estimates beside bayesdta, exact ML and the REML normal approximation."""
    if t.empty:
        return "_not run yet: `python validation/published.py`_"

    def est(r, key, lo, hi):
        if key not in r or pd.isna(r[key]):
            return ""
        a = "n/a" if pd.isna(r[lo]) else f"{r[lo]:.3f}"
        b = "n/a" if pd.isna(r[hi]) else f"{r[hi]:.3f}"
        return f"{r[key]:.3f} ({a}, {b})"

    lines = [
        "| dataset | quantity | published (95% CI) | bayesdta median (95% CrI) "
        "| exact ML (Wald 95% CI) | REML normal approx. (95% CI) | bayesdta fit |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in t.iterrows():
        ml = est(r, "ml", "ml_lower", "ml_upper")
        if ml and isinstance(r.get("ml_boundary"), str) and r["ml_boundary"]:
            ml += f" [boundary: {r['ml_boundary']}]"
        reml = est(r, "reml", "reml_lower", "reml_upper")
        if reml and not pd.isna(r.get("reml_rho")) and abs(r["reml_rho"]) > 0.999:
            reml += f" [rho = {r['reml_rho']:.0f}]"
        how = r.method.replace("bayesdta posterior median (95% CrI), ", "")
        lines.append(
            f"| {r.dataset} | {r.quantity.split(':')[0]} "
            f"| {est(r, 'published', 'published_lower', 'published_upper')} "
            f"| {est(r, 'ours', 'ours_lower', 'ours_upper')} | {ml} | {reml} | {how} |"
        )
    return "\n".join(lines)


def sbc_runs() -> str:
    p = RES / "sbc_runs.csv"
    if not p.exists():
        return "_no run log yet: `python validation/sbc.py` writes validation/results/sbc_runs.csv_"
    t = pd.read_csv(p, dtype=str).fillna("")
    t = t.rename(columns={"wall_s": "wall time (s)", "load_1min": "load (1 min) at end"})
    return _md(t)


def main() -> int:
    text = (ROOT / "validation" / "validation_template.md").read_text()
    text = text.split("\n", 1)[1]  # the template's own comment line
    text = (
        "<!-- GENERATED by validation/report.py from validation/validation_template.md -->\n" + text
    )
    cross, cross_sum = cross_table()
    smoking, ml, reviews = pub_tables()
    for key, val in (
        ("SBC_RUNS", sbc_runs()),
        ("SBC_TABLE", sbc_table()),
        ("SBC_FIGURES", sbc_figures()),
        ("POWER_TABLE", power_table()),
        ("CROSS_TABLE", cross),
        ("CROSS_SUMMARY", cross_sum),
        ("PUB_SMOKING", smoking),
        ("PUB_ML", ml),
        ("PUB_REVIEWS", reviews),
    ):
        text = text.replace(key, val)
    (ROOT / "docs" / "validation.md").write_text(text)
    print("wrote docs/validation.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
