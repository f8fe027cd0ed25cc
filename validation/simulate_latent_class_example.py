"""Write the SIMULATED worked example of the latent-class family (imperfect reference).

The design is the osteoporosis review's (Wang et al., J Med Internet Res 2025;27:e77155; the
packaged ``osteoporosis_dl`` example): its 39 tables, their test-set sizes, prevalences and
reference standards (DXA in 15 tables, CT/QCT in 24). The counts are simulated from the
latent-class model of :mod:`bayesdta.families.latent_class` with the truth below: the index
test (the deep-learning model) with bivariate normal random effects across tables, CT taken as
a perfect reference, DXA imperfect (sensitivity 0.80, specificity 0.93), conditional
independence. Every table is its own test set (as the model assumes).

    python validation/simulate_latent_class_example.py

writes ``src/bayesdta/data/datasets/osteoporosis_latent_class.csv`` and
``osteoporosis_latent_class_truth.json`` beside it (the packaged example; seed below).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from bayesdta.data.datasets import example_path
from bayesdta.families.latent_class import simulate_latent_class

SEED = 2026
TRUTH = {
    "sensitivity": 0.87,
    "specificity": 0.91,
    "tau_sensitivity": 0.5,
    "tau_specificity": 0.6,
    "rho": -0.3,
    "reference": {
        "CT": {"sensitivity": 1.0, "specificity": 1.0, "perfect": True},
        "DXA": {"sensitivity": 0.80, "specificity": 0.93, "perfect": False},
    },
}


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def main(out: Path) -> pd.DataFrame:
    with __import__("importlib").resources.as_file(example_path("osteoporosis_dl")) as p:
        design = pd.read_csv(p)
    levels = sorted(TRUTH["reference"])  # CT, DXA
    ridx = np.array([levels.index(v) for v in design["reference_standard"]])
    sim = simulate_latent_class(
        design["n_test"].to_numpy(),
        ridx,
        mu_sensitivity=logit(TRUTH["sensitivity"]),
        mu_specificity=logit(TRUTH["specificity"]),
        tau_sensitivity=TRUTH["tau_sensitivity"],
        tau_specificity=TRUTH["tau_specificity"],
        rho=TRUTH["rho"],
        reference_sensitivity=[TRUTH["reference"][lv]["sensitivity"] for lv in levels],
        reference_specificity=[TRUTH["reference"][lv]["specificity"] for lv in levels],
        prevalence=design["prevalence"].to_numpy(),
        seed=SEED,
    )
    df = pd.DataFrame(
        {
            "study": design["study"],
            "model": design["model"],
            "TP": sim["TP"],
            "FP": sim["FP"],
            "FN": sim["FN"],
            "TN": sim["TN"],
            "reference_standard": design["reference_standard"],
            "validation": design["validation"],
            "simulated": True,
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / "osteoporosis_latent_class.csv", index=False)
    truth = {
        "note": "SIMULATED counts (index test vs each table's reference standard) on the design "
        "of the osteoporosis review (Wang et al., J Med Internet Res 2025;27:e77155: 39 tables, "
        "test-set sizes, prevalences, reference standards) from the latent-class model of "
        "bayesdta.families.latent_class; CT perfect, DXA imperfect, conditional independence. "
        "Written by validation/simulate_latent_class_example.py. Do not cite as study results.",
        "seed": SEED,
        **TRUTH,
        "mu_sensitivity": logit(TRUTH["sensitivity"]),
        "mu_specificity": logit(TRUTH["specificity"]),
        "prevalence": [float(x) for x in design["prevalence"]],
        "table_sensitivity": [float(x) for x in sim["sensitivity"]],
        "table_specificity": [float(x) for x in sim["specificity"]],
        "diseased": [int(x) for x in sim["diseased"]],
    }
    (out / "osteoporosis_latent_class_truth.json").write_text(json.dumps(truth, indent=2) + "\n")
    return df


if __name__ == "__main__":
    df = main(Path(__file__).resolve().parents[1] / "src" / "bayesdta" / "data" / "datasets")
    print(df.groupby("reference_standard")[["TP", "FP", "FN", "TN"]].sum())
