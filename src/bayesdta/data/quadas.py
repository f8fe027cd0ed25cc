"""QUADAS-2 risk-of-bias and applicability judgements given as columns of the data.

QUADAS-2 (Whiting et al. 2011) judges every study in four domains -- patient selection, index
test, reference standard, flow and timing -- for **risk of bias** (all four) and for
**applicability concerns** (the first three), each ``low``, ``high`` or ``unclear``. A review
gives them as covariate columns of its table; this module finds them, checks the values and
derives the "low risk of bias" subset used by the sensitivity analysis
(``bd.fit(..., subset="low_risk")``, the sweep option ``low_risk_only = true``).

Column names (matched ignoring case, spaces, underscores and punctuation) combine a domain with
a marker, in either order, optionally prefixed by ``quadas`` / ``quadas2``:

* domains: ``patient_selection``; ``index_test``; ``reference_standard``; ``flow_and_timing``
  (also ``flow_timing``, ``flow``);
* risk of bias: ``rob``, ``risk_of_bias``, ``bias`` (``rob_patient_selection``,
  ``index_test_risk_of_bias``, or ``quadas_reference_standard`` with the ``quadas`` prefix and
  no other marker);
* applicability: ``applicability``, ``app``, ``concern(s)``, ``applicability_concern(s)``
  (``applicability_patient_selection``, ``index_test_applicability``).

A bare domain name (``reference_standard``) is *not* taken as a QUADAS column: reviews use such
names for covariates (the reference standard used, e.g. ``DXA``). Values are read
case-insensitively, also as RevMan writes them (``Low risk``, ``High risk of bias``,
``Unclear concern``); anything else (an empty cell or ``?`` included) is an error naming the
row and the column.

References
----------
Whiting PF, Rutjes AWS, Westwood ME, et al. QUADAS-2: a revised tool for the quality
assessment of diagnostic accuracy studies. Ann Intern Med 2011;155:529-536.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DTADataError
from .tables import DTAData

__all__ = [
    "QUADAS_DOMAINS",
    "QUADAS_JUDGEMENTS",
    "quadas_columns",
    "read_quadas",
    "low_risk_rows",
    "low_risk_subset",
]

#: The four QUADAS-2 domains (keys) and their display names.
QUADAS_DOMAINS: dict[str, str] = {
    "patient_selection": "Patient selection",
    "index_test": "Index test",
    "reference_standard": "Reference standard",
    "flow_and_timing": "Flow and timing",
}
#: The judgements, in the order of the summary plot (low first).
QUADAS_JUDGEMENTS: tuple[str, ...] = ("low", "unclear", "high")

_DOMAIN_ALIASES: dict[str, tuple[str, ...]] = {
    "patient_selection": ("patientselection",),
    "index_test": ("indextest",),
    "reference_standard": ("referencestandard",),
    "flow_and_timing": ("flowandtiming", "flowtiming", "flow"),
}
_ROB_MARKERS = ("riskofbias", "rob", "bias")
_APP_MARKERS = ("applicabilityconcerns", "applicabilityconcern", "applicability", "concerns")
_APP_MARKERS += ("concern", "app")
# no applicability judgement exists for flow and timing
_HAS_APPLICABILITY = ("patient_selection", "index_test", "reference_standard")


def _norm(name: Any) -> str:
    return re.sub(r"[^0-9a-z]", "", str(name).lower())


def _classify(column: str) -> str | None:
    """The QUADAS key of a column (``"patient_selection"``, ``"applicability_index_test"``).

    None when the column is not a QUADAS column.
    """
    n = _norm(column)
    prefixed = False
    for p in ("quadas2", "quadas"):
        if n.startswith(p):
            n, prefixed = n[len(p) :], True
            break
    for key, aliases in _DOMAIN_ALIASES.items():
        for alias in aliases:
            pos = n.find(alias)
            if pos < 0 or (pos > 0 and n[:pos] not in _ROB_MARKERS + _APP_MARKERS):
                continue
            rest = n[:pos] + n[pos + len(alias) :]
            if rest in _APP_MARKERS:
                return f"applicability_{key}" if key in _HAS_APPLICABILITY else None
            if rest in _ROB_MARKERS or (rest == "" and prefixed):
                return key
    return None


def quadas_columns(data: DTAData | pd.DataFrame) -> dict[str, str]:
    """The QUADAS-2 columns of the data: key -> column name.

    Keys are the domains of :data:`QUADAS_DOMAINS` (risk of bias) and
    ``applicability_<domain>`` for the three applicability judgements, in that order. See the
    module docstring for the recognised names.

    Parameters
    ----------
    data : DTAData or DataFrame
        The data (its covariate columns are searched).

    Returns
    -------
    dict
        Possibly empty.

    Raises
    ------
    DTADataError
        When two columns name the same judgement.
    """
    cols = data.covariates if isinstance(data, DTAData) else [str(c) for c in data.columns]
    found: dict[str, str] = {}
    for c in cols:
        key = _classify(c)
        if key is None:
            continue
        if key in found:
            raise DTADataError(
                f"columns {found[key]!r} and {c!r} both give the QUADAS-2 judgement {key!r}; "
                "keep one"
            )
        found[key] = c
    order = list(QUADAS_DOMAINS) + [f"applicability_{k}" for k in _HAS_APPLICABILITY]
    return {k: found[k] for k in order if k in found}


_JUDGEMENT = re.compile(
    r"^(low|high|unclear)(?: (?:risk(?: of bias)?|(?:applicability )?concerns?))?$"
)


def _judgement(v: object) -> str | None:
    """``low`` / ``high`` / ``unclear`` from a cell, or None.

    Any case and spacing; RevMan's forms ("Low risk", "High risk of bias", "Unclear concern")
    too.
    """
    if not isinstance(v, str):
        return None
    m = _JUDGEMENT.match(" ".join(v.lower().split()))
    return m.group(1) if m else None


def read_quadas(data: DTAData) -> pd.DataFrame:
    """The QUADAS-2 judgements of every row, checked: ``low``, ``high`` or ``unclear``.

    Parameters
    ----------
    data : DTAData
        The data with QUADAS-2 columns (see the module docstring for their names).

    Returns
    -------
    pandas.DataFrame
        Indexed by row label, a ``study`` column then one column per judgement found (keys of
        :func:`quadas_columns`), values in lower case. ``attrs``: ``columns`` (key -> column
        of the data) and ``note`` (one line: which QUADAS-2 columns were found, and which of
        the seven judgements are missing).

    Raises
    ------
    DTADataError
        No QUADAS-2 column; or a value other than low / high / unclear (case-insensitive),
        naming the row and the column.
    """
    cols = quadas_columns(data)
    if not cols:
        raise DTADataError(
            "no QUADAS-2 columns found: name them e.g. rob_patient_selection, rob_index_test, "
            "rob_reference_standard, rob_flow_and_timing, applicability_patient_selection, ... "
            f"(the covariates are {data.covariates or 'none'})"
        )
    frame = data.frame
    out = pd.DataFrame(
        {"study": np.asarray(frame["study"], dtype=object)},
        index=pd.Index(data.row_labels, name="row"),
    )
    for key, col in cols.items():
        values = []
        for i, v in enumerate(frame[col].tolist()):
            text = _judgement(v)
            if text not in QUADAS_JUDGEMENTS:
                shown = (
                    "an empty cell" if v is None or (isinstance(v, float) and v != v) else repr(v)
                )
                raise DTADataError(
                    f"row {i + 1} (study {frame['study'].iloc[i]!r}), column {col!r}: "
                    f"{shown} is not a QUADAS-2 judgement (low, high or unclear, any case, "
                    "optionally followed by 'risk', 'risk of bias' or 'concern(s)')"
                )
            values.append(text)
        out[key] = values
    every = list(QUADAS_DOMAINS) + [f"applicability_{k}" for k in _HAS_APPLICABILITY]
    missing = [k for k in every if k not in cols]
    out.attrs["columns"] = dict(cols)
    out.attrs["note"] = (
        "QUADAS-2 columns found: "
        + ", ".join(f"{k} <- {c!r}" for k, c in cols.items())
        + (f"; not given: {', '.join(missing)}" if missing else "")
    )
    return out


def low_risk_rows(data: DTAData) -> tuple[np.ndarray, str]:
    """Rows at low risk of bias in every QUADAS-2 risk-of-bias domain given.

    Applicability concerns do not enter (they are about the review question, not bias).

    Parameters
    ----------
    data : DTAData
        The data with QUADAS-2 columns.

    Returns
    -------
    mask : numpy.ndarray of bool
        One entry per row.
    note : str
        One line: the domains used and how many studies and tables remain.

    Raises
    ------
    DTADataError
        No risk-of-bias column, or an invalid judgement (see :func:`read_quadas`).
    """
    q = read_quadas(data)
    domains = [k for k in QUADAS_DOMAINS if k in q.columns]
    if not domains:
        raise DTADataError(
            "no QUADAS-2 risk-of-bias column found (only applicability columns: "
            f"{list(q.attrs['columns'].values())}); name them e.g. rob_patient_selection"
        )
    mask = (q[domains] == "low").all(axis=1).to_numpy()
    kept = sorted(set(np.asarray(data.frame["study"], dtype=object)[mask]), key=str)
    cols = [q.attrs["columns"][d] for d in domains]
    note = (
        f"low risk of bias in all of {len(domains)} QUADAS-2 domain(s) ({', '.join(cols)}): "
        f"{len(kept)} of {data.n_studies} studies ({int(mask.sum())} of {data.n_rows} tables) "
        "remain"
    )
    return mask, note


def low_risk_subset(data: DTAData, *, minimum: int = 2) -> tuple[DTAData, str]:
    """The rows at low risk of bias in every domain, refusing fewer than ``minimum`` studies.

    Parameters
    ----------
    data : DTAData
        The data with QUADAS-2 columns.
    minimum : int
        Fewest studies that may remain (a meta-analysis needs two).

    Returns
    -------
    data : DTAData
        The subset.
    note : str
        What remains (see :func:`low_risk_rows`).

    Raises
    ------
    DTADataError
        Fewer than ``minimum`` studies remain (the message says how many), or see
        :func:`low_risk_rows`.
    """
    mask, note = low_risk_rows(data)
    n_kept = len(set(np.asarray(data.frame["study"], dtype=object)[mask]))
    if n_kept < minimum:
        raise DTADataError(f"low-risk-of-bias subset refused: {note}; at least {minimum} needed")
    return data.subset(mask), note
