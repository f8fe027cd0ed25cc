r"""Simulated 3x3 confusion matrices (osteoporosis / osteopenia / normal) with known truth.

The osteoporosis review (Wang et al., J Med Internet Res 2025;27:e77155) split its 3-class
results into one-vs-rest 2x2 tables. Its per-study matrices are not public, so this module
SIMULATES them from exactly the model that :func:`bayesdta.fit_multiclass` fits
(:mod:`bayesdta.families.multiclass`):

.. math::

    \eta_s = \mu + u_s, \quad u_s \sim \mathrm{MVN}_6(0, \mathrm{diag}(\tau) R
    \mathrm{diag}(\tau)), \qquad
    y_{sk\cdot} \sim \mathrm{Multinomial}(n_{sk}, \mathrm{softmax}(\eta_{sk\cdot}))

with ``eta_skk = 0`` (the correct prediction is the baseline of each true class).

Design: the 20 meta-analysed studies of the review (``osteoporosis_dl_studies.csv``), one
matrix per study on its first test set (size ``n_test``), osteoporosis prevalence as in the
2x2 example's fixed design, osteopenia a fixed share of the rest (drawn once per study from
Beta(8, 8), the :data:`DESIGN_SEED` draw), normal the remainder. ``n_studies`` other than 20
repeats the design (new study names ``"<study> (rep k)"``) or takes its first studies.

Truth (:func:`default_truth`): pooled confusion matrix (rows true class, columns predicted)
osteoporosis 0.85 / 0.12 / 0.03, osteopenia 0.10 / 0.75 / 0.15, normal 0.02 / 0.10 / 0.88
(errors mostly to the adjacent class, osteopenia the hardest), between-study SDs 0.5 on every
log-odds, correlations 0.5 between the two log-odds of one true class and 0.2 otherwise.

Run ``python -m bayesdta.data.datasets.simulate_multiclass`` to regenerate
``osteoporosis_multiclass.csv`` and ``osteoporosis_multiclass_truth.json`` (seed 2025).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CLASSES",
    "DEFAULT_SEED",
    "default_truth",
    "multiclass_design",
    "simulate_multiclass",
    "simulate_osteoporosis_multiclass",
]

HERE = Path(__file__).resolve().parent
DATA_FILE = HERE / "osteoporosis_multiclass.csv"
TRUTH_FILE = HERE / "osteoporosis_multiclass_truth.json"
CLASSES = ("osteoporosis", "osteopenia", "normal")
DEFAULT_SEED = 2025
DESIGN_SEED = 20251
OSTEOPENIA_SHARE_BETA = (8.0, 8.0)
TRUE_CONFUSION = (
    (0.85, 0.12, 0.03),
    (0.10, 0.75, 0.15),
    (0.02, 0.10, 0.88),
)
NOTE = (
    "SIMULATED data. The per-study 3x3 confusion matrices of Wang et al. (J Med Internet Res "
    "2025;27:e77155) are not public, so the counts are simulated on the review's design (20 "
    "meta-analysed studies, first test set of each) from the joint multiclass model with the "
    "parameters in this file. Do not cite the counts as study results."
)


def _effects(k: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(k) for b in range(k) if a != b]


def default_truth(
    confusion: Any = TRUE_CONFUSION,
    *,
    tau: float | Any = 0.5,
    rho_same_class: float = 0.5,
    rho_other: float = 0.2,
    classes: Any = CLASSES,
) -> dict[str, Any]:
    """True parameters: pooled confusion matrix, ``mu``, ``tau`` and the correlation matrix.

    ``mu`` (the mean log-odds, order of :func:`bayesdta.families.multiclass.effect_index`) is
    ``log(P(pred j | true k) / P(pred k | true k))`` of ``confusion``, so the pooled matrix
    (inverse link of the mean log-odds) is ``confusion``.
    """
    c = np.asarray(confusion, dtype=float)
    k = c.shape[0]
    if c.shape != (k, k) or not np.allclose(c.sum(axis=1), 1.0):
        raise ValueError("confusion must be KxK with rows summing to 1")
    eff = _effects(k)
    d = len(eff)
    mu = [float(np.log(c[a, b] / c[a, a])) for a, b in eff]
    taus = np.broadcast_to(np.asarray(tau, dtype=float), (d,)).tolist()
    corr = np.full((d, d), rho_other)
    for i, (a, _) in enumerate(eff):
        for j, (a2, _) in enumerate(eff):
            if a == a2:
                corr[i, j] = rho_same_class
    np.fill_diagonal(corr, 1.0)
    np.linalg.cholesky(corr)  # must be a correlation matrix
    return {
        "classes": list(classes),
        "confusion": c.tolist(),
        "effects": [f"{classes[a]} -> {classes[b]}" for a, b in eff],
        "mu": mu,
        "tau": taus,
        "corr": corr.tolist(),
        "note": NOTE,
    }


def multiclass_design(n_studies: int = 20) -> pd.DataFrame:
    """Per study: ``study``, ``n_test`` and the participants of each class (fixed design)."""
    from .simulate_osteoporosis import osteoporosis_design

    base = osteoporosis_design().drop_duplicates("study").reset_index(drop=True)
    rng = np.random.default_rng(DESIGN_SEED)
    share = rng.beta(*OSTEOPENIA_SHARE_BETA, size=len(base))
    n = base["n_test"].to_numpy()
    n_op = base["n_diseased"].to_numpy()
    n_open = np.floor((n - n_op) * share + 0.5).astype(int)
    n_open = np.clip(n_open, 1, n - n_op - 1)
    design = pd.DataFrame(
        {
            "study": base["study"],
            "n_test": n,
            "n_osteoporosis": n_op,
            "n_osteopenia": n_open,
            "n_normal": n - n_op - n_open,
        }
    )
    n_studies = int(n_studies)
    if n_studies < 1:
        raise ValueError(f"n_studies must be at least 1, got {n_studies}")
    parts = []
    for r in range(-(-n_studies // len(design))):
        part = design.copy()
        if r:
            part["study"] = part["study"] + f" (rep {r + 1})"
        parts.append(part)
    return pd.concat(parts, ignore_index=True).iloc[:n_studies].reset_index(drop=True)


def simulate_multiclass(
    n_per_class: Any,
    truth: dict[str, Any],
    *,
    seed: int = DEFAULT_SEED,
    studies: Any = None,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Simulate confusion matrices from the multiclass model.

    Parameters
    ----------
    n_per_class : array, shape (n_studies, K)
        Participants of each true class per study.
    truth : dict
        ``mu``, ``tau``, ``corr`` and ``classes`` (see :func:`default_truth`).
    seed : int
        Generator seed.
    studies : sequence of str, optional
        Study names (default ``"study 1"``, ...).

    Returns
    -------
    table : DataFrame
        Long format: ``study``, ``true``, ``predicted``, ``count``.
    theta : array, shape (n_studies, K (K - 1))
        The simulated study log-odds.
    """
    n = np.asarray(n_per_class, dtype=int)
    classes = list(truth["classes"])
    k = len(classes)
    eff = _effects(k)
    mu = np.asarray(truth["mu"], dtype=float)
    tau = np.asarray(truth["tau"], dtype=float)
    cov = np.asarray(truth["corr"]) * np.outer(tau, tau)
    rng = np.random.default_rng(seed)
    theta = rng.multivariate_normal(mu, cov, size=n.shape[0], method="cholesky")
    names = list(studies) if studies is not None else [f"study {i + 1}" for i in range(len(n))]
    rows = []
    for s in range(n.shape[0]):
        eta = np.zeros((k, k))
        for i, (a, b) in enumerate(eff):
            eta[a, b] = theta[s, i]
        p = np.exp(eta - eta.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        for a in range(k):
            y = rng.multinomial(n[s, a], p[a])
            for b in range(k):
                rows.append(
                    {"study": names[s], "true": classes[a], "predicted": classes[b], "count": y[b]}
                )
    return pd.DataFrame(rows), theta


def simulate_osteoporosis_multiclass(
    seed: int = DEFAULT_SEED, *, n_studies: int = 20, truth: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Simulate the 3x3 osteoporosis example; returns the long table and the truth."""
    truth = truth or default_truth()
    design = multiclass_design(n_studies)
    n = design[["n_osteoporosis", "n_osteopenia", "n_normal"]].to_numpy()
    table, theta = simulate_multiclass(n, truth, seed=seed, studies=design["study"])
    out = dict(truth)
    out.update(
        {
            "seed": int(seed),
            "n_studies": int(n_studies),
            "design": "first test set of each of the 20 meta-analysed studies of Wang et al. "
            "2025; osteoporosis prevalence as in the osteoporosis_dl design, osteopenia share "
            f"of the rest ~ Beta{OSTEOPENIA_SHARE_BETA} (seed {DESIGN_SEED})",
            "study_theta": theta.tolist(),
        }
    )
    return table, out


def main() -> None:  # pragma: no cover - regenerates the packaged files
    table, truth = simulate_osteoporosis_multiclass(DEFAULT_SEED)
    table.to_csv(DATA_FILE, index=False, lineterminator="\n")
    TRUTH_FILE.write_text(json.dumps(truth, indent=1) + "\n")
    print(f"wrote {DATA_FILE} and {TRUTH_FILE}")


if __name__ == "__main__":  # pragma: no cover
    main()
