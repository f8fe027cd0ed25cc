"""The outputs systematic reviewers look for (GRADE, QUADAS-2, MIDAS / mada, Cochrane).

* :func:`summary_of_findings`: natural frequencies per 1000 tested at chosen prevalences
  (GRADE summary-of-findings table), from the joint posterior of sensitivity and specificity;
* :func:`threshold_effect`: Spearman correlation of sensitivity and false-positive rate across
  tables beside the bivariate model's correlation;
* :func:`study_ratios`: observed DOR, LR+ and LR- of every table with log-method intervals
  and the pooled posterior values (overall or per subgroup);
* :func:`quadas`, :func:`quadas_summary`: QUADAS-2 judgements per study and their counts per
  domain (:mod:`bayesdta.data.quadas` reads them);
* :func:`pca`, :func:`study_pca`, :func:`pca_table`: principal components of the study
  covariates with the studies' shrunken accuracy as supplementary variables (the
  study-characteristics explorer).

Definitions, references and how to read each output: ``docs/review_outputs.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from .. import registry as _registry
from ..data.quadas import QUADAS_DOMAINS, QUADAS_JUDGEMENTS, read_quadas
from ..data.tables import DTAData
from ..exceptions import SpecError
from ..families import links as lk
from ..families import stats as st
from . import quantities as Q

if TYPE_CHECKING:
    from ..inference.fit import DTAFit

__all__ = [
    "summary_of_findings",
    "default_prevalences",
    "threshold_effect",
    "study_ratios",
    "pooled_ratio_draws",
    "koopman_interval",
    "quadas",
    "quadas_summary",
    "pca",
    "study_pca",
    "pca_table",
    "SOF_OUTCOMES",
]

#: Outcomes of the summary-of-findings table: name -> description.
SOF_OUTCOMES: dict[str, str] = {
    "true_positives": "True positives (with the condition, test positive)",
    "false_negatives": "False negatives (with the condition, missed by the test)",
    "true_negatives": "True negatives (without the condition, test negative)",
    "false_positives": "False positives (without the condition, test positive)",
    "test_positives": "All positive results (TP + FP)",
    "test_negatives": "All negative results (TN + FN)",
}


def _number(name: str, value: Any) -> float:
    """``value`` as a finite float, or a one-line :class:`SpecError` naming the option."""
    try:
        if isinstance(value, bool):
            raise TypeError
        out = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a number, got {value!r}") from None
    if not np.isfinite(out):
        raise SpecError(f"{name} must be a finite number, got {value!r}")
    return out


def _correction(correction: Any) -> float:
    correction = _number("correction", correction)
    if correction < 0:
        raise SpecError(f"correction must be >= 0, got {correction}")
    return correction


def _at(at: Any) -> Mapping[str, Any] | None:
    if at is not None and not isinstance(at, Mapping):
        raise SpecError(
            f"at= must map covariate names to values, e.g. at={{'type': 'SAQ'}}, got {at!r}"
        )
    return at


def _ci(ci: float) -> float:
    ci = _number("ci", ci)
    if not 0.0 < ci < 1.0:
        raise SpecError(f"ci must lie strictly between 0 and 1, got {ci!r}")
    return ci


def _quantiles(x: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Posterior median and equal-tailed ``ci`` interval along the first axis."""
    a = (1.0 - ci) / 2.0
    q = np.quantile(x, [0.5, a, 1.0 - a], axis=0)
    return q[0], q[1], q[2]


def _in_fit(fit: DTAFit) -> np.ndarray:
    return np.asarray(fit.weights, dtype=float) > 0


def _as_input(fit_or_data: Any) -> Any:
    """A DataFrame or CSV path read as :class:`DTAData` (as ``bd.fit`` reads it); else as is."""
    if isinstance(fit_or_data, pd.DataFrame):
        return DTAData.from_frame(fit_or_data)
    if isinstance(fit_or_data, (str, Path)):
        return DTAData.from_csv(fit_or_data)
    if not isinstance(fit_or_data, DTAData) and not hasattr(fit_or_data, "data"):
        raise SpecError(
            "expected a fit, a DTAData, a DataFrame or a CSV path, got "
            f"{type(fit_or_data).__name__}"
        )
    return fit_or_data


def _data_and_rows(fit_or_data: DTAFit | DTAData) -> tuple[DTAData, np.ndarray]:
    """The data and the rows in the fit (all rows for data)."""
    if isinstance(fit_or_data, DTAData):
        return fit_or_data, np.ones(fit_or_data.n_rows, dtype=bool)
    return fit_or_data.data, _in_fit(fit_or_data)


# --------------------------------------------------------------------------------------------
# Summary of findings (GRADE)
# --------------------------------------------------------------------------------------------
def default_prevalences(fit_or_data: DTAFit | DTAData) -> np.ndarray:
    """Quartiles (25%, 50%, 75%) of the observed prevalences ``n1 / (n1 + n0)`` of the tables.

    Only the tables in the fit (likelihood weight > 0) count; rounded to three decimals, and
    duplicates removed (all tables with one prevalence give one value).
    """
    data, rows = _data_and_rows(fit_or_data)
    n1 = np.asarray(data.n_diseased, dtype=float)[rows]
    n0 = np.asarray(data.n_nondiseased, dtype=float)[rows]
    prev = n1 / (n1 + n0)
    return np.unique(np.round(np.quantile(prev, [0.25, 0.5, 0.75]), 3))


def summary_of_findings(
    fit: DTAFit,
    *,
    prevalences: float | Sequence[float] | None = None,
    per: int = 1000,
    ci: float = 0.95,
    at: Mapping[str, Any] | None = None,
    layout: str = "long",
) -> pd.DataFrame:
    """GRADE summary-of-findings table: natural frequencies per ``per`` people tested.

    For each prevalence ``p`` and each posterior draw of the summary point ``(se, sp)``:
    ``TP = per p se``, ``FN = per p (1 - se)``, ``TN = per (1 - p) sp``,
    ``FP = per (1 - p) (1 - sp)``, ``TP + FP`` and ``TN + FN``. Medians and equal-tailed
    credible intervals are taken over the draws of each count (the totals from the *joint*
    draws of se and sp, not by adding marginal intervals). Per draw ``TP + FN + TN + FP =
    per``, and so are the medians of TP + FN and of TN + FP (each is monotone in one of se,
    sp).

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    prevalences : float or sequence of float, optional
        Prevalences (pre-test probabilities) in (0, 1). Default: the quartiles of the observed
        prevalences of the tables in the fit (:func:`default_prevalences`), as a low, typical
        and high setting; give the settings of the review question instead when known.
    per : int
        Number of people tested (1000 in GRADE tables).
    ci : float
        Credible-interval probability.
    at : mapping, optional
        Covariate values of a meta-regression (default: the summary point of
        :meth:`DTAFit.summary`, at the reference levels).
    layout : {"long", "grade"}
        ``"long"``: one row per prevalence and outcome (numbers); ``"grade"``: the layout of
        a GRADE table, one row per outcome and one column per prevalence, cells
        ``"median (lower to upper)"`` rounded to whole people.

    Returns
    -------
    pandas.DataFrame
        ``layout="long"``: one row per prevalence and outcome: ``prevalence``, ``outcome``
        (keys of :data:`SOF_OUTCOMES`), ``description``, ``median``, ``lower``, ``upper``.
        ``attrs``: ``per``, ``ci``, ``prevalence_source`` and ``sensitivity`` /
        ``specificity`` (median, lower, upper).

    References
    ----------
    Schünemann HJ, Mustafa RA, Brozek J, et al. GRADE guidelines: 21 part 2. Test accuracy:
    inconsistency, imprecision, publication bias, and other domains for rating the certainty
    of evidence and presenting it in evidence profiles and summary of findings tables. J Clin
    Epidemiol 2020;122:142-152.
    """
    if not hasattr(fit, "posterior"):
        raise SpecError(
            f"summary_of_findings needs a fitted model (bd.fit(...)), got {type(fit).__name__}"
        )
    ci = _ci(ci)
    if layout not in ("long", "grade"):
        raise SpecError(f"layout must be 'long' or 'grade', got {layout!r}")
    per_value = _number("per", per)
    if per_value < 1 or not per_value.is_integer():
        raise SpecError(f"per must be a positive whole number, got {per!r}")
    per = int(per_value)
    if prevalences is None:
        prev = default_prevalences(fit)
        source = (
            "quartiles of the observed prevalences of the "
            f"{int(_in_fit(fit).sum())} tables in the fit"
        )
    else:
        try:
            prev = np.atleast_1d(np.asarray(prevalences, dtype=float))
        except (TypeError, ValueError):
            raise SpecError(
                f"prevalences must be numbers strictly between 0 and 1, got {prevalences!r}"
            ) from None
        bad = [float(p) for p in prev.ravel() if not 0.0 < p < 1.0]
        if bad or prev.size == 0 or prev.ndim != 1:
            raise SpecError(f"prevalences must lie strictly between 0 and 1, got {bad or []}")
        if np.unique(prev).size < prev.size:
            dup = sorted({float(p) for p in prev if np.sum(prev == p) > 1})
            raise SpecError(f"prevalences must be distinct, {dup} given more than once")
        source = "given"
    mu_se, mu_sp = Q._linear_predictor(fit, _at(at))
    se = lk.inverse(mu_se, fit.spec.link).ravel()
    sp = lk.inverse(mu_sp, fit.spec.link).ravel()
    rows = []
    for p in prev:
        counts = {
            "true_positives": per * p * se,
            "false_negatives": per * p * (1.0 - se),
            "true_negatives": per * (1.0 - p) * sp,
            "false_positives": per * (1.0 - p) * (1.0 - sp),
        }
        counts["test_positives"] = counts["true_positives"] + counts["false_positives"]
        counts["test_negatives"] = counts["true_negatives"] + counts["false_negatives"]
        for name, draws in counts.items():
            med, lo, hi = _quantiles(draws, ci)
            rows.append(
                {
                    "prevalence": float(p),
                    "outcome": name,
                    "description": SOF_OUTCOMES[name],
                    "median": float(med),
                    "lower": float(lo),
                    "upper": float(hi),
                }
            )
    df = pd.DataFrame(rows)
    df.attrs.update(
        per=per,
        ci=ci,
        prevalence_source=source,
        sensitivity=tuple(float(v) for v in _quantiles(se, ci)),
        specificity=tuple(float(v) for v in _quantiles(sp, ci)),
    )
    if layout == "grade":
        cells = df.assign(
            cell=[
                f"{m:.0f} ({lo:.0f} to {hi:.0f})"
                for m, lo, hi in zip(df["median"], df["lower"], df["upper"], strict=True)
            ],
            column=[f"prevalence {100 * p:.3g}%" for p in df["prevalence"]],
        )
        wide = cells.pivot(index="outcome", columns="column", values="cell")
        wide = wide.loc[list(SOF_OUTCOMES), list(dict.fromkeys(cells["column"]))]
        wide.insert(0, "description", [SOF_OUTCOMES[o] for o in wide.index])
        wide.columns.name = None
        wide.attrs.update(df.attrs)
        return wide
    return df


# --------------------------------------------------------------------------------------------
# Threshold effect
# --------------------------------------------------------------------------------------------
def _corrected(data: DTAData, rows: np.ndarray, correction: float) -> dict[str, np.ndarray]:
    """Counts of ``rows`` with ``correction`` added to every cell of tables with a zero cell."""
    cells = {
        k: np.asarray(getattr(data, k.lower()), dtype=float)[rows] for k in ("TP", "FP", "FN", "TN")
    }
    zero = np.zeros(int(rows.sum()), dtype=bool)
    for v in cells.values():
        zero |= v == 0
    return {k: v + correction * zero for k, v in cells.items()} | {"zero": zero}


#: Up to this many tables the threshold-effect P-value is exact (all n! orderings of the ranks).
_EXACT_SPEARMAN_N = 8


def _spearman_exact_p(x: np.ndarray, y: np.ndarray) -> float:
    """Two-sided exact permutation P-value of Spearman's r_s (average ranks for ties)."""
    from itertools import permutations

    rx, ry = sps.rankdata(x), sps.rankdata(y)
    rx = (rx - rx.mean()) / np.linalg.norm(rx - rx.mean())
    ry = ry - ry.mean()
    ry = ry / np.linalg.norm(ry)
    perms = np.array(list(permutations(range(len(ry)))))
    r_all = ry[perms] @ rx
    r_obs = float(ry @ rx)
    return float(np.mean(np.abs(r_all) >= abs(r_obs) - 1e-12))


def threshold_effect(
    fit_or_data: DTAFit | DTAData | pd.DataFrame | str | Path,
    *,
    ci: float = 0.95,
    correction: float = 0.5,
) -> pd.DataFrame:
    """Threshold effect: Spearman correlation of sensitivity and FPR, beside the model's rho.

    The classical check (Meta-DiSc, MIDAS): Spearman's rank correlation ``r_s`` between the
    observed sensitivity ``TP / (TP + FN)`` and false-positive rate ``FP / (FP + TN)`` of the
    tables (those in the fit), after adding ``correction`` (0.5) to every cell of tables with a
    zero cell. A positive ``r_s`` (sensitivity rises with the FPR) suggests that the studies
    used different positivity thresholds. P-value: scipy's ``spearmanr`` (t approximation,
    two-sided), exact (all ``n!`` orderings of the ranks) up to 8 tables; interval: Fisher z
    with Bonett & Wright's standard error ``sqrt((1 + r_s^2 / 2) / (n - 3))`` (needs n >= 4).

    Beside it (for a fit): the bivariate model's between-study correlation ``rho`` of logit
    sensitivity and logit specificity, and ``-rho``, the correlation of logit sensitivity and
    logit FPR, on the same sign convention as ``r_s`` (posterior median and credible interval).

    Parameters
    ----------
    fit_or_data : DTAFit, DTAData, DataFrame or CSV path
        A fit (its data and the rows in it are used, and its rho reported) or the data.
    ci : float
        Confidence / credible level.
    correction : float
        Continuity correction added to every cell of tables with a zero cell (0: none).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``statistic`` (``spearman_sensitivity_fpr``, ``rho_sensitivity_fpr``,
        ``rho``); columns ``estimate``, ``lower``, ``upper``, ``p_value``, ``n``, ``method``.
        ``attrs``: ``ci``, ``correction``, ``n_corrected`` (tables corrected).

    References
    ----------
    Zamora J, Abraira V, Muriel A, Khan K, Coomarasamy A. Meta-DiSc: a software for
    meta-analysis of test accuracy data. BMC Med Res Methodol 2006;6:31.
    Bonett DG, Wright TA. Sample size requirements for estimating Pearson, Kendall and
    Spearman correlations. Psychometrika 2000;65:23-28.
    Reitsma JB, Glas AS, Rutjes AWS, et al. Bivariate analysis of sensitivity and specificity
    produces informative summary measures in diagnostic reviews. J Clin Epidemiol
    2005;58:982-990.
    """
    fit_or_data = _as_input(fit_or_data)
    ci = _ci(ci)
    correction = _correction(correction)
    data, rows = _data_and_rows(fit_or_data)
    c = _corrected(data, rows, correction)
    sens = c["TP"] / (c["TP"] + c["FN"])
    fpr = c["FP"] / (c["FP"] + c["TN"])
    n = int(rows.sum())
    unit = "tables" if data.has_clusters else "studies"
    r = p = lo = hi = float("nan")
    p_note = "t approximation"
    z = sps.norm.ppf(0.5 + ci / 2.0)
    if n < 3:
        ci_note = f"not computed: needs at least 3 {unit} (n = {n})"
    elif np.ptp(sens) == 0 or np.ptp(fpr) == 0:
        which = "sensitivity" if np.ptp(sens) == 0 else "FPR"
        ci_note = f"not defined: every table has the same {which}"
    else:
        res = sps.spearmanr(sens, fpr)
        r, p = float(res.statistic), float(res.pvalue)
        if n <= _EXACT_SPEARMAN_N:  # the t approximation is poor (p = 0 at |r_s| = 1)
            p = _spearman_exact_p(sens, fpr)
            p_note = f"exact (all {n}! orderings)"
        if n >= 4 and abs(r) < 1:
            se_z = np.sqrt((1.0 + r * r / 2.0) / (n - 3))
            lo, hi = np.tanh(np.arctanh(r) + np.array([-z, z]) * se_z)
            ci_note = f"Fisher z interval with Bonett-Wright SE over {n} {unit}"
        else:
            ci_note = f"no interval: needs at least 4 {unit} and |r_s| < 1 (n = {n})"
    method = (
        f"Spearman rank correlation of observed sensitivity and FPR across {n} {unit} "
        f"({correction:g} added to every cell of the {int(c['zero'].sum())} tables with a zero "
        f"cell); P: {p_note}; {ci_note}"
    )
    if data.has_clusters:
        method += "; several tables per study are counted as separate units"
    out = [
        {
            "statistic": "spearman_sensitivity_fpr",
            "estimate": r,
            "lower": float(lo),
            "upper": float(hi),
            "p_value": p,
            "n": n,
            "method": method,
        }
    ]
    if not isinstance(fit_or_data, DTAData):
        rho = np.asarray(fit_or_data.draws("rho").values, dtype=float).ravel()
        what = "between-study " if fit_or_data.levels == 3 else ""
        for name, draws, text in (
            (
                "rho_sensitivity_fpr",
                -rho,
                f"bivariate model: {what}correlation of logit sensitivity and logit FPR (-rho)",
            ),
            (
                "rho",
                rho,
                f"bivariate model: {what}correlation of logit sensitivity and logit specificity",
            ),
        ):
            med, lo_, hi_ = _quantiles(draws, ci)
            out.append(
                {
                    "statistic": name,
                    "estimate": float(med),
                    "lower": float(lo_),
                    "upper": float(hi_),
                    "p_value": float("nan"),
                    "n": n,
                    "method": text + " (posterior median and equal-tailed credible interval)",
                }
            )
    df = pd.DataFrame(out).set_index("statistic")
    df.attrs.update(ci=ci, correction=correction, n_corrected=int(c["zero"].sum()))
    return df


# --------------------------------------------------------------------------------------------
# DOR, LR+ and LR- per study
# --------------------------------------------------------------------------------------------
#: Accuracy ratios of the ratio forest plot: name -> display name.
RATIOS: dict[str, str] = {"dor": "DOR", "lr_positive": "LR+", "lr_negative": "LR\u2212"}


def pooled_ratio_draws(
    fit: DTAFit, *, at: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Posterior draws (flat) of the summary DOR, LR+ and LR- at covariates ``at``.

    ``LR+ = se / (1 - sp)``, ``LR- = (1 - se) / sp``, ``DOR = LR+ / LR-`` per draw of the
    summary point (the inverse link of the mean linear predictor, as :meth:`DTAFit.summary`).
    """
    mu_se, mu_sp = Q._linear_predictor(fit, _at(at))
    se = lk.inverse(mu_se, fit.spec.link).ravel()
    sp = lk.inverse(mu_sp, fit.spec.link).ravel()
    return st.likelihood_ratios(se, sp)


def study_ratios(
    fit_or_data: DTAFit | DTAData | pd.DataFrame | str | Path,
    *,
    ci: float = 0.95,
    correction: float = 0.5,
    by: str | None = None,
    interval: str = "log",
) -> pd.DataFrame:
    """Observed DOR, LR+ and LR- of every table with log-method intervals, and the pooled values.

    Per table, after adding ``correction`` to every cell of tables with a zero cell
    (``a = TP, b = FP, c = FN, d = TN``, ``n1 = a + c``, ``n0 = b + d``):

    * ``DOR = a d / (b c)``, Woolf's interval ``exp(log DOR +- z sqrt(1/a + 1/b + 1/c + 1/d))``;
    * ``LR+ = (a / n1) / (b / n0)``, ``exp(log LR+ +- z sqrt(1/a - 1/n1 + 1/b - 1/n0))``;
    * ``LR- = (c / n1) / (d / n0)``, ``exp(log LR- +- z sqrt(1/c - 1/n1 + 1/d - 1/n0))``

    (the log method of Simel, Samsa & Matchar 1991 for the LRs, as Meta-DiSc and MIDAS report).
    For a fit, rows ``Summary`` (and ``Summary: <by>=<level>`` per level of ``by``) give the
    posterior median and credible interval of the pooled ratios.

    ``interval="exact"`` replaces the log-method intervals, computed on the *uncorrected*
    counts: for the DOR the exact conditional interval (inverting Fisher's exact test, scipy's
    ``odds_ratio(kind="conditional")``), for LR+ and LR- Koopman's (1984) score interval for a
    ratio of two independent proportions (the ratios ``theta`` whose Pearson chi-square with
    the constrained maximum-likelihood proportions is at most the chi-square quantile). Both
    need no continuity correction (a zero count gives a bound 0 or infinity); the point
    estimates stay the (corrected) sample ratios.

    Parameters
    ----------
    fit_or_data : DTAFit, DTAData, DataFrame or CSV path
        A fit or the data (no pooled rows).
    ci : float
        Confidence / credible level.
    correction : float
        Continuity correction for tables with a zero cell.
    by : str, optional
        A categorical covariate of the fit's formula: pooled ratios per level (meta-regression
        summary point at that level, other covariates at their reference level).
    interval : {"log", "exact"}
        Intervals of the tables: log method (Woolf / Simel, as Meta-DiSc and MIDAS) or exact
        conditional (DOR) and score (LRs).

    Returns
    -------
    pandas.DataFrame
        Indexed by row label (then the summary rows): ``study``, ``TP``, ``FP``, ``FN``,
        ``TN``, ``corrected`` (bool), and for each ratio ``dor``, ``dor_lower``,
        ``dor_upper``, ``lr_positive``, ... ``lr_negative_upper``; ``kind`` is ``"observed"``
        or ``"pooled"``.

    References
    ----------
    Simel DL, Samsa GP, Matchar DB. Likelihood ratios with confidence: sample size estimation
    for diagnostic test studies. J Clin Epidemiol 1991;44:763-770.
    Koopman PAR. Confidence intervals for the ratio of two binomial proportions. Biometrics
    1984;40:513-517.
    Glas AS, Lijmer JG, Prins MH, Bonsel GJ, Bossuyt PMM. The diagnostic odds ratio: a single
    indicator of test performance. J Clin Epidemiol 2003;56:1129-1135.
    """
    fit_or_data = _as_input(fit_or_data)
    ci = _ci(ci)
    correction = _correction(correction)
    if interval not in ("log", "exact"):
        raise SpecError(f"interval must be 'log' or 'exact', got {interval!r}")
    data = fit_or_data if isinstance(fit_or_data, DTAData) else fit_or_data.data
    every = np.ones(data.n_rows, dtype=bool)
    c = _corrected(data, every, correction)
    a, b, cc, d = c["TP"], c["FP"], c["FN"], c["TN"]
    n1, n0 = a + cc, b + d
    z = sps.norm.ppf(0.5 + ci / 2.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = {
            "dor": (np.log(a * d / (b * cc)), np.sqrt(1 / a + 1 / b + 1 / cc + 1 / d)),
            "lr_positive": (np.log((a / n1) / (b / n0)), np.sqrt(1 / a - 1 / n1 + 1 / b - 1 / n0)),
            "lr_negative": (
                np.log((cc / n1) / (d / n0)),
                np.sqrt(1 / cc - 1 / n1 + 1 / d - 1 / n0),
            ),
        }
    frame = data.frame
    df = pd.DataFrame(
        {
            "kind": "observed",
            "study": np.asarray(frame["study"], dtype=object),
            **{k: frame[k].to_numpy() for k in ("TP", "FP", "FN", "TN")},
            "corrected": c["zero"],
        },
        index=pd.Index(data.row_labels, name="row"),
    )
    for name, (log_v, se) in est.items():
        df[name] = np.exp(log_v)
        df[f"{name}_lower"] = np.exp(log_v - z * se)
        df[f"{name}_upper"] = np.exp(log_v + z * se)
    if interval == "exact":
        raw = np.stack([data.tp, data.fp, data.fn, data.tn], axis=1).astype(np.int64)
        for i, (tp, fp, fn, tn) in enumerate(raw):
            table = np.array([[tp, fn], [fp, tn]])
            if (table.sum(axis=0) > 0).all() and (table.sum(axis=1) > 0).all():
                res = sps.contingency.odds_ratio(table, kind="conditional")
                lo, hi = res.confidence_interval(confidence_level=ci)
            else:  # pragma: no cover - a table without diseased or non-diseased is refused
                lo, hi = 0.0, np.inf
            df.iloc[i, df.columns.get_loc("dor_lower")] = lo
            df.iloc[i, df.columns.get_loc("dor_upper")] = hi
            for name, x1, x2 in (("lr_positive", tp, fp), ("lr_negative", fn, tn)):
                lo, hi = koopman_interval(x1, tp + fn, x2, fp + tn, ci=ci)
                df.iloc[i, df.columns.get_loc(f"{name}_lower")] = lo
                df.iloc[i, df.columns.get_loc(f"{name}_upper")] = hi
    if isinstance(fit_or_data, DTAData):
        df.attrs.update(ci=ci, correction=correction, interval=interval)
        return df
    fit = fit_or_data
    groups: list[tuple[str, dict[str, Any] | None]] = [("Summary", None)]
    if by is not None:
        if by not in fit.design.levels:
            raise SpecError(
                f"by= {by!r} must be a categorical covariate of the fit's formula (fit a "
                f"meta-regression with formula='~ {by}'); categorical covariates are "
                f"{list(fit.design.levels) or 'none'}"
            )
        groups += [(f"Summary: {by}={lv}", {by: lv}) for lv in fit.design.levels[by]]
    pooled = []
    for label, at in groups:
        draws = pooled_ratio_draws(fit, at=at)
        row: dict[str, Any] = {"kind": "pooled", "study": label}
        for name in RATIOS:
            med, lo, hi = _quantiles(draws[name], ci)
            row.update({name: float(med), f"{name}_lower": float(lo), f"{name}_upper": float(hi)})
        pooled.append(row)
    extra = pd.DataFrame(pooled, index=pd.Index([g[0] for g in groups], name="row"))
    df = pd.concat([df, extra.astype({"kind": object})])
    df.attrs.update(ci=ci, correction=correction, by=by, interval=interval)
    return df


def _koopman_chi2(theta: float, x1: int, n1: int, x2: int, n2: int) -> float:
    """Pearson chi-square of ``p1 / p2 = theta`` at the constrained MLE (Koopman 1984).

    The constrained MLE of ``p2`` is the smaller root of
    ``theta N p^2 - (theta (n1 + x2) + x1 + n2) p + (x1 + x2) = 0`` with ``N = n1 + n2``.
    """
    big_n = n1 + n2
    b = theta * (n1 + x2) + x1 + n2
    disc = max(b * b - 4.0 * theta * big_n * (x1 + x2), 0.0)
    # the smaller root in the cancellation-free form 2c / (b + sqrt(b^2 - 4ac))
    p2 = 2.0 * (x1 + x2) / (b + np.sqrt(disc))
    p1 = theta * p2
    out = 0.0
    for x, n, p in ((x1, n1, p1), (x2, n2, p2)):
        p = min(max(p, 0.0), 1.0)
        if min(p, 1.0 - p) * n < 1e-9:  # a proportion at 0 or 1: no variance
            edge = 0.0 if p < 0.5 else 1.0
            if x != n * edge:
                return np.inf
            continue
        out += (x - n * p) ** 2 / (n * p * (1.0 - p))
    return float(out)


def koopman_interval(
    x1: int, n1: int, x2: int, n2: int, *, ci: float = 0.95
) -> tuple[float, float]:
    """Koopman's (1984) score interval for the ratio ``p1 / p2`` of two binomial proportions.

    The set of ``theta`` whose Pearson chi-square at the constrained MLE
    (:func:`_koopman_chi2`) is at most the ``ci`` quantile of chi-square(1), found by
    bracketing on ``log theta``. ``x1 = 0`` gives the lower bound 0, ``x2 = 0`` the upper bound
    infinity.

    References
    ----------
    Koopman PAR. Confidence intervals for the ratio of two binomial proportions. Biometrics
    1984;40:513-517.
    """
    from scipy.optimize import brentq

    crit = float(sps.chi2.ppf(ci, 1))
    x1, n1, x2, n2 = int(x1), int(n1), int(x2), int(n2)
    if x1 == 0 and x2 == 0:
        return 0.0, np.inf
    # a start inside the interval: the sample ratio, or far into the open end (the statistic
    # tends to 0 as theta -> 0 when x1 = 0, and as theta -> infinity when x2 = 0)
    if x1 == 0:
        centre = -40.0
    elif x2 == 0:
        centre = 40.0
    else:
        centre = float(np.log((x1 / n1) / (x2 / n2)))

    def f(log_t: float) -> float:
        return _koopman_chi2(float(np.exp(log_t)), x1, n1, x2, n2) - crit

    bounds = []
    for direction, edge in ((-1.0, x1 == 0), (1.0, x2 == 0)):
        if edge:
            bounds.append(0.0 if direction < 0 else np.inf)
            continue
        step, far = 0.5, centre
        while f(far) <= 0 and step <= 512:
            far, step = centre + direction * step, step * 2
        a, b = sorted((centre, far))
        bounds.append(float(np.exp(brentq(f, a, b, xtol=1e-13, rtol=1e-13))))
    return bounds[0], bounds[1]


# --------------------------------------------------------------------------------------------
# QUADAS-2
# --------------------------------------------------------------------------------------------
def quadas(fit_or_data: DTAFit | DTAData | pd.DataFrame | str | Path) -> pd.DataFrame:
    """QUADAS-2 judgements per study (the "traffic-light" table).

    A study with several tables gets the worst judgement of its tables in each domain
    (high > unclear > low); ``attrs["note"]`` names the studies where its tables differ.

    Parameters
    ----------
    fit_or_data : DTAFit, DTAData, DataFrame or CSV path
        A fit (its data) or the data, with QUADAS-2 columns
        (:func:`bayesdta.data.quadas.quadas_columns`).

    Returns
    -------
    pandas.DataFrame
        Indexed by study; one column per judgement found (risk-of-bias domains, then
        ``applicability_*``), values low / unclear / high. ``attrs``: ``columns`` and
        ``note`` (which QUADAS-2 columns were read).
    """
    fit_or_data = _as_input(fit_or_data)
    data = fit_or_data if isinstance(fit_or_data, DTAData) else fit_or_data.data
    q = read_quadas(data)
    keys = [c for c in q.columns if c != "study"]
    worst = {"low": 0, "unclear": 1, "high": 2}
    inv = {v: k for k, v in worst.items()}
    num = q[keys].apply(lambda col: col.map(worst))
    num["study"] = q["study"].to_numpy()
    grouped = num.groupby("study", sort=False)
    out = grouped.max().apply(lambda col: col.map(inv))
    differ = [str(s) for s, g in grouped if (g[keys].nunique() > 1).any()]
    out.index.name = "study"
    note = q.attrs["note"]
    if differ:
        note += f"; the tables of {', '.join(differ)} differ: the worst judgement is shown"
    out.attrs.update(columns=q.attrs["columns"], note=note)
    return out


def quadas_summary(
    fit_or_data: DTAFit | DTAData | pd.DataFrame | str | Path,
) -> pd.DataFrame:
    """Counts and percentages of studies judged low / unclear / high in each QUADAS-2 domain.

    The numbers behind the Cochrane-style summary plot (:func:`bayesdta.plots.plot_quadas`).

    Parameters
    ----------
    fit_or_data : DTAFit, DTAData, DataFrame or CSV path
        Where the QUADAS-2 columns are read (see :func:`bayesdta.read_quadas`).

    Returns
    -------
    pandas.DataFrame
        Indexed by (``judgement`` type: "risk of bias" / "applicability", ``domain``); columns
        ``low``, ``unclear``, ``high`` (numbers of studies), ``n`` and ``low_pct``,
        ``unclear_pct``, ``high_pct``. ``attrs["note"]`` says which columns were read.
    """
    q = quadas(fit_or_data)
    rows = []
    for key in q.columns:
        kind = "applicability" if key.startswith("applicability_") else "risk of bias"
        domain = QUADAS_DOMAINS[key.removeprefix("applicability_")]
        counts = q[key].value_counts()
        row: dict[str, Any] = {"judgement": kind, "domain": domain}
        n = int(counts.sum())
        for j in QUADAS_JUDGEMENTS:
            row[j] = int(counts.get(j, 0))
        row["n"] = n
        for j in QUADAS_JUDGEMENTS:
            row[f"{j}_pct"] = 100.0 * row[j] / n
        rows.append(row)
    df = pd.DataFrame(rows).set_index(["judgement", "domain"])
    df.attrs.update(q.attrs)
    return df


# --------------------------------------------------------------------------------------------
# Study-characteristics explorer (PCA)
# --------------------------------------------------------------------------------------------
def pca(matrix: np.ndarray, *, standardize: bool = True) -> dict[str, np.ndarray]:
    """Principal components of the rows of ``matrix`` by the singular value decomposition.

    The columns are centred (and scaled to unit SD with ``standardize``: a PCA of the
    correlation matrix), ``Z = U S V'``; the scores are ``U S``, the loadings the columns of
    ``V`` (unit length; the sign makes the largest absolute loading positive), the variance of
    component k ``S_k^2 / (n - 1)``.

    Parameters
    ----------
    matrix : array_like
        Shape (n, p), no missing values.
    standardize : bool
        Scale the columns to unit SD (constant columns are an error).

    Returns
    -------
    dict
        ``scores`` (n, k), ``loadings`` (p, k), ``variance`` (k,), ``explained`` (k,),
        proportion of the total variance, with ``k = min(n - 1, p)`` and ``center``, ``scale``
        (p,).
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 1:
        raise SpecError(f"pca needs at least 2 rows and 1 column, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise SpecError("pca: the matrix has missing or infinite values")
    center = x.mean(axis=0)
    scale = x.std(axis=0, ddof=1) if standardize else np.ones(x.shape[1])
    if standardize and np.any(scale == 0):
        raise SpecError(f"pca: columns {np.flatnonzero(scale == 0).tolist()} are constant")
    z = (x - center) / scale
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    k = min(x.shape[0] - 1, x.shape[1])
    u, s, v = u[:, :k], s[:k], vt[:k].T
    sign = np.sign(v[np.argmax(np.abs(v), axis=0), np.arange(k)])
    sign[sign == 0] = 1.0
    v, u = v * sign, u * sign
    var = s**2 / (x.shape[0] - 1)
    total = float((z**2).sum() / (x.shape[0] - 1))
    return {
        "scores": u * s,
        "loadings": v,
        "variance": var,
        "explained": var / total if total > 0 else np.zeros_like(var),
        "center": center,
        "scale": scale,
    }


def _covariate_matrix(
    data: DTAData, rows: np.ndarray, covariates: Sequence[str] | None
) -> tuple[pd.DataFrame, dict[str, str], list[str]]:
    """The (one-hot / numeric) covariate matrix of ``rows``.

    Also the covariate of each column, and notes on the covariates not used (and why).
    """
    frame = data.frame.loc[rows].reset_index(drop=True)
    given = covariates is not None
    names = list(covariates) if given else list(data.covariates)
    unknown = [c for c in names if c not in frame.columns]
    if unknown:
        raise SpecError(f"covariates= {unknown} are not columns of the data: {data.covariates}")
    cols: dict[str, np.ndarray] = {}
    source: dict[str, str] = {}
    skipped: list[str] = []
    n = len(frame)
    for c in names:
        col = frame[c]
        if col.isna().any():
            skipped.append(f"{c} (missing values)")
            continue
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            v = col.to_numpy(dtype=float)
            if np.ptp(v) == 0:
                skipped.append(f"{c} (constant)")
                continue
            cols[c], source[c] = v, c
            continue
        levels = sorted(col.astype(str).unique())
        if len(levels) < 2:
            skipped.append(f"{c} (constant)")
            continue
        if len(levels) == n and not given:
            skipped.append(f"{c} (a different value in every row: an identifier)")
            continue
        for lv in levels:
            name = f"{c}={lv}"
            cols[name], source[name] = (col.astype(str) == lv).to_numpy(dtype=float), c
    if not cols:
        raise SpecError(
            "the study-characteristics PCA needs at least one usable covariate; "
            + (f"not usable: {', '.join(skipped)}" if skipped else "the data have none")
        )
    return pd.DataFrame(cols), source, skipped


def study_pca(
    fit: DTAFit,
    *,
    covariates: Sequence[str] | None = None,
    include_performance: bool = False,
) -> dict[str, Any]:
    """Study-characteristics explorer: PCA of the covariates with the shrunken accuracy.

    The rows are the tables in the fit (the studies of a two-level fit). Covariates: numeric
    columns standardized, text columns one-hot coded (every level, then standardized) -- a PCA
    of the correlation matrix (:func:`pca`). Study performance is the posterior mean of each
    table's shrunken logit sensitivity and specificity (``theta_r``, partial pooling): by
    default a *supplementary* variable (its correlation with each component is reported and
    drawn, but it does not shape the components); ``include_performance=True`` makes the two
    logits active variables.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    covariates : sequence of str, optional
        Covariate columns (default: every covariate; text columns with a different value in
        every row, constant columns and columns with missing values are left out and named in
        ``note``).
    include_performance : bool
        Make the shrunken logits active variables of the PCA.

    Returns
    -------
    dict
        ``scores`` (DataFrame, rows x components), ``loadings`` (DataFrame, variables x
        components), ``explained`` (Series), ``performance`` (DataFrame: correlation of each
        component's scores with the shrunken logits, rows ``logit_sensitivity``,
        ``logit_specificity``), ``performance_values`` (the shrunken logits per row),
        ``source`` (variable -> covariate), ``in_formula`` (covariates of the fit's
        formula), ``note``.
    """
    rows = _in_fit(fit)
    data = fit.data
    x, source, skipped = _covariate_matrix(data, rows, covariates)
    theta = np.asarray(fit.posterior["theta"].transpose("chain", "draw", ...).values, float)
    perf = theta.reshape(-1, theta.shape[2], 2).mean(axis=0)[rows]
    link = fit.spec.link
    perf_df = pd.DataFrame(
        perf,
        columns=[f"{link}_sensitivity", f"{link}_specificity"],
        index=pd.Index(np.asarray(data.row_labels, dtype=object)[rows], name="row"),
    )
    active = x.copy()
    if include_performance:
        for c in perf_df.columns:
            active[f"shrunken {c}"] = perf_df[c].to_numpy()
            source[f"shrunken {c}"] = "performance"
    if len(active) < 3:
        raise SpecError(f"the study-characteristics PCA needs at least 3 tables, got {len(active)}")
    res = pca(active.to_numpy())
    k = res["loadings"].shape[1]
    comp = [f"PC{i + 1}" for i in range(k)]
    scores = pd.DataFrame(res["scores"], index=perf_df.index, columns=comp)
    loadings = pd.DataFrame(res["loadings"], index=active.columns, columns=comp)
    corr = np.array(
        [
            [
                np.corrcoef(res["scores"][:, j], perf[:, i])[0, 1]
                if np.ptp(res["scores"][:, j]) > 0
                else 0.0
                for j in range(k)
            ]
            for i in range(2)
        ]
    )
    performance = pd.DataFrame(corr, index=perf_df.columns, columns=comp)
    in_formula = [v for v in fit.design.variables if v in set(source.values())]
    note = (
        f"PCA of {active.shape[1]} standardized variables ({len(set(source.values()))} "
        f"covariates) over {len(active)} tables"
        + ("; shrunken logits active" if include_performance else "; shrunken logits supplementary")
        + (f"; not used: {', '.join(skipped)}" if skipped else "")
    )
    return {
        "scores": scores,
        "loadings": loadings,
        "explained": pd.Series(res["explained"], index=comp, name="explained"),
        "performance": performance,
        "performance_values": perf_df,
        "source": source,
        "in_formula": in_formula,
        "note": note,
    }


def pca_table(
    fit: DTAFit,
    *,
    covariates: Sequence[str] | None = None,
    n_components: int = 3,
    include_performance: bool = False,
) -> pd.DataFrame:
    """The leading components of :func:`study_pca`, linked to the meta-regression.

    Rows: the proportion of variance explained (and cumulative), the loading of every variable
    (``loading: backbone=ResNet``; ``*`` marks covariates in the fit's formula), then the
    correlation of each component's scores with the shrunken logit sensitivity and specificity
    -- a component that correlates with accuracy points at the covariates (its large
    loadings) a meta-regression should examine.

    Parameters
    ----------
    fit : DTAFit
        The fitted model.
    covariates : sequence of str, optional
        See :func:`study_pca`.
    n_components : int
        Number of leading components shown.
    include_performance : bool
        See :func:`study_pca`.

    Returns
    -------
    pandas.DataFrame
        Indexed by row name, one column per component. ``attrs["note"]`` describes the PCA.
    """
    res = study_pca(fit, covariates=covariates, include_performance=include_performance)
    if isinstance(n_components, bool) or not isinstance(n_components, (int, np.integer)):
        raise SpecError(f"n_components must be a positive integer, got {n_components!r}")
    if n_components < 1:
        raise SpecError(f"n_components must be a positive integer, got {n_components!r}")
    comp = list(res["loadings"].columns)[: int(n_components)]
    explained = res["explained"][comp]
    in_formula = set(res["in_formula"])
    rows = {
        "variance explained": explained,
        "cumulative variance explained": res["explained"].cumsum()[comp],
    }
    for var in res["loadings"].index:
        mark = "*" if res["source"][var] in in_formula else ""
        rows[f"loading: {var}{mark}"] = res["loadings"].loc[var, comp]
    for name in res["performance"].index:
        rows[f"correlation with shrunken {name}"] = res["performance"].loc[name, comp]
    df = pd.DataFrame(rows).T
    df.index.name = "row"
    df.attrs["note"] = res["note"] + (
        "; * covariate in the meta-regression formula" if in_formula else ""
    )
    return df


# DTAFit's convenience methods (fit.summary_of_findings(), ...) find these here
_registry.QUANTITIES.update(
    summary_of_findings=summary_of_findings,
    threshold_effect=threshold_effect,
    study_ratios=study_ratios,
    quadas=quadas,
    quadas_summary=quadas_summary,
    study_pca=study_pca,
)
# tables of an analysis spec (bayesdta.reporting.spec.TABLES names them and their captions)
_registry.TABLES.update(
    summary_of_findings=summary_of_findings,
    threshold_effect=threshold_effect,
    study_ratios=study_ratios,
    quadas=quadas,
    quadas_summary=quadas_summary,
    pca=pca_table,
)
