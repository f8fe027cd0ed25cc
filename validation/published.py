"""Agreement with published analyses and with maximum likelihood, on the packaged real datasets.

1. Published review: Patrick DL, Cheadle A, Thompson DC, Diehr P, Koepsell T, Kinne S. The
   validity of self-reported smoking: a review and meta-analysis. Am J Public Health
   1994;84:1086-1093 (the packaged ``smoking`` table, 51 comparisons from 26 studies, as
   distributed with mada). Abstract: "Sensitivity ranged from 6% to 100% (mean = 87.5%), and
   specificity ranged from 33% to 100% (mean = 89.2%). Interviewer-administered
   questionnaires [...] were associated with higher estimates of sensitivity and specificity."
   The published means are unweighted means of the 51 observed proportions; we recompute them
   from the packaged counts (a check that the table is the published one) and put the
   three-level posterior beside them, and the direction of the questionnaire-type effect.

2. Maximum likelihood (the model of Stata's metandi / MIDAS and of lme4::glmer): the
   two-level datasets fitted by ``lme4::glmer`` (Laplace, validation/glmer_reference.csv) and
   by the independent adaptive Gauss-Hermite fit of tests/reference_glmm.py, beside the
   bayesdta posterior median.

    python validation/published.py         # writes validation/results/published.csv

Prints the Markdown tables of docs/validation.md.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT / "src", ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bayesdta as bd  # noqa: E402

RESULTS = ROOT / "validation" / "results"
SEED = 1994


def _ci(fit, name: str) -> tuple[float, float, float]:
    s = fit.summary(quantities=[name])
    return float(s.loc[name, "median"]), float(s.loc[name, "lower"]), float(s.loc[name, "upper"])


def smoking_rows() -> list[dict]:
    data = bd.load_example("smoking")
    f = data.frame
    se_obs = f["TP"] / (f["TP"] + f["FN"])
    sp_obs = f["TN"] / (f["TN"] + f["FP"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = bd.fit(data, seed=SEED)
        reg = bd.fit(data, formula="~ type", reference={"type": "IAQ"}, seed=SEED)
    con = bd.contrasts(reg)
    rows = []
    src = "Patrick et al. 1994 (abstract)"
    for q, obs, pub in (("sensitivity", se_obs, 0.875), ("specificity", sp_obs, 0.892)):
        m, lo, hi = _ci(fit, q)
        rows.append(
            {
                "dataset": "smoking",
                "quantity": f"{q}: unweighted mean of the 51 observed proportions",
                "published": pub,
                "source": src,
                "ours": float(obs.mean()),
                "ours_lower": np.nan,
                "ours_upper": np.nan,
                "method": "recomputed from the packaged counts",
            }
        )
        rows.append(
            {
                "dataset": "smoking",
                "quantity": f"{q}: summary point",
                "published": pub,
                "source": src,
                "ours": m,
                "ours_lower": lo,
                "ours_upper": hi,
                "method": "bayesdta three-level posterior median (95% CrI)",
            }
        )
    for outcome in ("sensitivity", "specificity"):
        row = con.loc[("type", "SAQ", outcome)]
        rows.append(
            {
                "dataset": "smoking",
                "quantity": f"{outcome}: SAQ minus IAQ (difference of summary points)",
                "published": np.nan,
                "source": src + ": IAQ higher",
                "ours": float(row["diff"]),
                "ours_lower": float(row["diff_lower"]),
                "ours_upper": float(row["diff_upper"]),
                "method": f"meta-regression ~ type; P(SAQ better) = {float(row['p_better']):.3f}",
            }
        )
    return rows


def ml_rows() -> list[dict]:
    from reference_glmm import fit_bivariate_ml

    ref = pd.read_csv(ROOT / "validation" / "glmer_reference.csv")
    rows = []
    for name in ("auditc", "dementia", "skin_tests"):
        data = bd.load_example(name)
        f = data.frame
        ml = fit_bivariate_ml(f["TP"], f["FP"], f["FN"], f["TN"], n_quad=15)
        g = ref[ref["dataset"] == name].iloc[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = bd.fit(data, seed=SEED)
        for q, key in (
            ("mu_sensitivity", "mu_se"),
            ("mu_specificity", "mu_sp"),
            ("tau_sensitivity", "tau_se"),
            ("tau_specificity", "tau_sp"),
            ("rho", "rho"),
        ):
            m, lo, hi = _ci(fit, q)
            rows.append(
                {
                    "dataset": name,
                    "quantity": q,
                    "published": float(g[key]),
                    "source": "lme4::glmer Laplace (validation/glmer_reference.csv)",
                    "ours": m,
                    "ours_lower": lo,
                    "ours_upper": hi,
                    "method": "bayesdta posterior median (95% CrI)",
                    "aghq_ml": float(ml[key]),
                }
            )
    return rows


def markdown(table: pd.DataFrame) -> str:
    def f(x):
        return "" if pd.isna(x) else f"{x:.3f}"

    lines = [
        "| dataset | quantity | reference value | source | bayesdta | 95% CrI |",
        "|---|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        ci = "" if pd.isna(r.ours_lower) else f"({r.ours_lower:.3f}, {r.ours_upper:.3f})"
        lines.append(
            f"| {r.dataset} | {r.quantity} | {f(r.published)} | {r.source} | {f(r.ours)} | {ci} |"
        )
    return "\n".join(lines)


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(smoking_rows() + ml_rows())
    table.to_csv(RESULTS / "published.csv", index=False)
    print(markdown(table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
