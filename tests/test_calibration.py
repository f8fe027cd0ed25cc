"""Parameter recovery of the three-level meta-regression on the osteoporosis design.

Twelve replicates of :func:`simulate_osteoporosis` (the review's real design: 39 models in 20
studies, row- and study-level covariates) are fitted with the truth's model specification. All
fits re-use the compiled model of the session fixture ``osteo_fit`` (same structure), so each
replicate costs a warm refit. The 90% intervals of the 12 fixed effects (intercepts and
coefficients for sensitivity and specificity) and the 4 SDs (between and within studies) must
cover the generating values at about the nominal rate.
"""

from __future__ import annotations

import warnings

import numpy as np

import bayesdta as bd
from bayesdta.data.datasets.simulate_osteoporosis import simulate_osteoporosis

REPLICATES = range(301, 313)
SDS = ("tau_sensitivity", "tau_specificity", "tau_within_sensitivity", "tau_within_specificity")


def _targets(truth: dict) -> dict[str, float]:
    """Summary-quantity name -> true value, for every fixed effect and SD of the fitted model."""
    out = {}
    formula_vars = set(truth["model_spec"]["reference"])
    for outcome in ("sensitivity", "specificity"):
        coefs = truth["coefficients"][outcome]
        out[f"mu_{outcome}"] = coefs["Intercept"]
        for column, value in coefs.items():
            if column.split("[")[0] in formula_vars:
                out[f"beta_{outcome}[{column}]"] = value
    for name in SDS:
        out[name] = truth[name]
    return out


def test_ninety_percent_intervals_cover_the_truth(osteo_fit):
    covered: dict[str, list[bool]] = {}
    for seed in REPLICATES:
        table, truth = simulate_osteoporosis(seed=seed)
        data = bd.DTAData.from_frame(table, study="study", model="model")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bd.SamplerWarning)
            f = osteo_fit.refit(data=data, seed=seed, draws=400, tune=500)
        assert f.timing["compile_s"] < 5.0  # the session's compiled model was re-used
        targets = _targets(truth)
        s = f.summary(ci=0.9, quantities=list(targets))
        for name, value in targets.items():
            covered.setdefault(name, []).append(
                bool(s.loc[name, "lower"] <= value <= s.loc[name, "upper"])
            )
    assert len(covered) == 16  # 2 x (intercept + 5 coefficients) + 4 SDs
    rates = {k: float(np.mean(v)) for k, v in covered.items()}
    overall = float(np.mean([x for v in covered.values() for x in v]))
    fixed = float(np.mean([x for k, v in covered.items() if k not in SDS for x in v]))
    sds = float(np.mean([x for k in SDS for x in covered[k]]))
    # 192 checks at 90%: binomial SD ~2%, plus correlation within replicates
    assert 0.75 <= overall <= 0.98, rates
    assert fixed >= 0.70 and sds >= 0.60, rates
    # no parameter is systematically missed (a wrong sign or scale gives ~0). Not stricter: at
    # this one fixed truth the between-study SD of sensitivity is weakly identified (logit
    # sensitivity near 2 with 13-70 diseased in many test sets); its 90% intervals covered 0.6
    # in 7 of these 12 replicates, and lme4::glmer's ML estimates of the same model were as far
    # from 0.6 (0.09-0.19 on replicates 305, 306, 311; validation/README.md).
    assert min(rates.values()) >= 4 / 12, rates
