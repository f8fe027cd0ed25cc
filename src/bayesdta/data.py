"""Validated diagnostic-accuracy data: :class:`DTAData` and helpers that build 2x2 tables.

A row of a DTA table is one 2x2 table: model (or test, or threshold) ``m`` evaluated in study
``s``, with counts TP, FP, FN and TN. Several rows may share a study (several correlated models
per study); the pair (study, model) must be unique.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import DTADataError

__all__ = ["DTAData", "split_confusion", "counts_from_metrics", "COUNT_COLUMNS"]

COUNT_COLUMNS: tuple[str, ...] = ("TP", "FP", "FN", "TN")
_STUDY_CANDIDATES = ("study", "study_id", "studyid", "author", "id")
_MODEL_CANDIDATES = ("model", "model_id", "test", "result_id")


def _find_column(columns: Sequence[str], name: str) -> str | None:
    """Return the column whose name equals ``name`` ignoring case, else None."""
    exact = [c for c in columns if str(c) == name]
    if exact:
        return exact[0]
    matches = [c for c in columns if str(c).lower() == name.lower()]
    if len(matches) > 1:
        raise DTADataError(
            f"column {name!r} matches several columns ignoring case: {matches}; map it explicitly"
        )
    return matches[0] if matches else None


def _row_name(index_label: Any, line_offset: int | None) -> str:
    if line_offset is not None:
        return f"row {index_label} (file line {int(index_label) + line_offset})"
    return f"row {index_label}"


def _as_counts(
    values: pd.Series, column: str, line_offset: int | None, source_column: str
) -> np.ndarray:
    """Convert a column to non-negative int64 counts, raising on the first bad cell."""
    label = column if source_column == column else f"{column} (column {source_column!r})"
    out = np.empty(len(values), dtype=np.int64)
    for i, (idx, v) in enumerate(values.items()):
        where = _row_name(idx, line_offset)
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            raise DTADataError(f"{where}, column {label}: missing count")
        if isinstance(v, str):
            s = v.strip()
            if s == "":
                raise DTADataError(f"{where}, column {label}: missing count")
            try:
                v = float(s)
            except ValueError:
                raise DTADataError(
                    f"{where}, column {label}: count {s!r} is not a number"
                ) from None
        if isinstance(v, (bool, np.bool_)):
            raise DTADataError(f"{where}, column {label}: count {v!r} is not an integer")
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise DTADataError(f"{where}, column {label}: count {v!r} is not a number") from None
        if math.isnan(fv):
            raise DTADataError(f"{where}, column {label}: missing count")
        if not math.isfinite(fv) or fv != math.floor(fv):
            raise DTADataError(f"{where}, column {label}: count {v!r} is not an integer")
        if fv < 0:
            raise DTADataError(f"{where}, column {label}: count {v!r} is negative")
        out[i] = int(fv)
    return out


def _labels(values: pd.Series, column: str, line_offset: int | None) -> np.ndarray:
    out = []
    for idx, v in values.items():
        if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
            raise DTADataError(f"{_row_name(idx, line_offset)}, column {column}: missing id")
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            v = int(v)
        s = str(v).strip()
        if s == "":
            raise DTADataError(f"{_row_name(idx, line_offset)}, column {column}: missing id")
        out.append(s)
    return np.asarray(out, dtype=object)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.flags.writeable = False
    return a


@dataclass(frozen=True, eq=False, repr=False)
class DTAData:
    """A validated, immutable table of 2x2 diagnostic-accuracy counts.

    Build it with :meth:`from_frame` or :meth:`from_csv`; do not call the constructor directly.

    Attributes
    ----------
    frame : pandas.DataFrame
        A copy of the validated table: columns ``study``, ``model``, ``TP``, ``FP``, ``FN``,
        ``TN`` followed by the covariates (all other input columns, original names).
    study_column, model_column : str or None
        The input columns the study and model ids came from (None when generated).
    source : str
        Where the data came from (file path or ``"DataFrame"``).
    """

    _frame: pd.DataFrame
    study_column: str | None
    model_column: str | None
    source: str = "DataFrame"
    _cache: dict = field(default_factory=dict, compare=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_frame(
        cls,
        df: pd.DataFrame,
        *,
        study: str | None = None,
        model: str | None = None,
        columns: Mapping[str, str] | None = None,
        source: str = "DataFrame",
        _line_offset: int | None = None,
    ) -> DTAData:
        """Validate a DataFrame of 2x2 counts.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per 2x2 table.
        study : str, optional
            Column holding the study id. Default: the first of ``study``, ``study_id``,
            ``author`` found (ignoring case); if none, every row is its own study.
        model : str, optional
            Column holding the model (test, result) id within a study. Default: the first of
            ``model``, ``model_id``, ``test``, ``result_id`` found; if none, rows of a study
            are numbered 1, 2, ... in table order.
        columns : mapping, optional
            Map from count name (``TP``, ``FP``, ``FN``, ``TN``) to the column holding it, for
            tables whose count columns are named otherwise. Unmapped counts are matched by name
            ignoring case.
        source : str
            Description of the origin, kept for reports.

        Returns
        -------
        DTAData

        Raises
        ------
        DTADataError
            On an empty table, a missing count column, a missing, non-integer or negative count,
            a row with no diseased (TP + FN = 0) or no non-diseased (FP + TN = 0) participants,
            a missing id, or a duplicated (study, model) pair. The message names row and column.
        """
        if not isinstance(df, pd.DataFrame):
            raise DTADataError(f"expected a pandas DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise DTADataError("the table is empty: no rows")
        df = df.copy()
        cols = [str(c) for c in df.columns]
        df.columns = cols
        mapping = {k.upper(): v for k, v in (columns or {}).items()}
        unknown = set(mapping) - set(COUNT_COLUMNS)
        if unknown:
            raise DTADataError(
                f"columns= maps unknown count names {sorted(unknown)}; use TP, FP, FN, TN"
            )
        source_cols: dict[str, str] = {}
        for name in COUNT_COLUMNS:
            if name in mapping:
                if mapping[name] not in cols:
                    raise DTADataError(
                        f"column {mapping[name]!r} (mapped to {name}) is not in the table; "
                        f"columns are {cols}"
                    )
                source_cols[name] = mapping[name]
            else:
                found = _find_column(cols, name)
                if found is None:
                    raise DTADataError(
                        f"required column {name} is missing; columns are {cols} "
                        f"(map it with columns={{'{name}': '<column>'}})"
                    )
                source_cols[name] = found

        def pick(arg: str | None, candidates: Sequence[str], what: str) -> str | None:
            if arg is not None:
                found = _find_column(cols, arg)
                if found is None:
                    raise DTADataError(
                        f"{what} column {arg!r} is not in the table; columns are {cols}"
                    )
                return found
            for cand in candidates:
                found = _find_column(cols, cand)
                if found is not None and found not in source_cols.values():
                    return found
            return None

        study_col = pick(study, _STUDY_CANDIDATES, "study")
        model_col = pick(model, _MODEL_CANDIDATES, "model")
        if model_col is not None and model_col == study_col:
            raise DTADataError(f"study and model ids are the same column {study_col!r}")

        counts = {
            name: _as_counts(df[source_cols[name]], name, _line_offset, source_cols[name])
            for name in COUNT_COLUMNS
        }
        n1 = counts["TP"] + counts["FN"]
        n0 = counts["FP"] + counts["TN"]
        for i, idx in enumerate(df.index):
            if n1[i] == 0:
                raise DTADataError(
                    f"{_row_name(idx, _line_offset)}, columns TP/FN: no diseased participants "
                    "(TP + FN = 0); sensitivity is undefined for this row"
                )
            if n0[i] == 0:
                raise DTADataError(
                    f"{_row_name(idx, _line_offset)}, columns FP/TN: no non-diseased "
                    "participants (FP + TN = 0); specificity is undefined for this row"
                )

        if study_col is not None:
            study_ids = _labels(df[study_col], study_col, _line_offset)
        else:
            study_ids = np.asarray([str(i + 1) for i in range(len(df))], dtype=object)
        if model_col is not None:
            model_ids = _labels(df[model_col], model_col, _line_offset)
        else:
            seen: dict[str, int] = {}
            model_ids_list = []
            for s in study_ids:
                seen[s] = seen.get(s, 0) + 1
                model_ids_list.append(str(seen[s]))
            model_ids = np.asarray(model_ids_list, dtype=object)

        first_seen: dict[tuple[str, str], Any] = {}
        for idx, s, m in zip(df.index, study_ids, model_ids, strict=True):
            key = (s, m)
            if key in first_seen:
                col = f"{study_col}/{model_col}" if model_col else f"{study_col or 'study'}"
                raise DTADataError(
                    f"{_row_name(idx, _line_offset)}, columns {col}: duplicated (study, model) "
                    f"pair ({s!r}, {m!r}), first seen at {_row_name(first_seen[key], _line_offset)}"
                )
            first_seen[key] = idx

        used = set(source_cols.values()) | {c for c in (study_col, model_col) if c}
        covariates = [c for c in cols if c not in used]
        out = pd.DataFrame(
            {
                "study": pd.Series(study_ids, dtype=object),
                "model": pd.Series(model_ids, dtype=object),
                **{k: counts[k] for k in COUNT_COLUMNS},
            }
        )
        for c in covariates:
            if c in out.columns:
                raise DTADataError(
                    f"covariate column {c!r} clashes with a reserved name; rename it"
                )
            out[c] = df[c].to_numpy()
        return cls(out, study_col, model_col, source)

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        study: str | None = None,
        model: str | None = None,
        columns: Mapping[str, str] | None = None,
        **read_csv_kwargs: Any,
    ) -> DTAData:
        """Read and validate a CSV file of 2x2 counts.

        Rows are numbered from 1 in error messages, with the file line beside them.

        Parameters
        ----------
        path : str or Path
            The CSV file (a header line, one 2x2 table per line).
        study, model, columns
            As in :meth:`from_frame`.
        **read_csv_kwargs
            Passed to :func:`pandas.read_csv`.

        Returns
        -------
        DTAData
        """
        path = Path(path)
        if not path.exists():
            raise DTADataError(f"data file {str(path)!r} does not exist")
        try:
            df = pd.read_csv(path, **read_csv_kwargs)
        except pd.errors.EmptyDataError:
            raise DTADataError(f"data file {str(path)!r} is empty") from None
        except pd.errors.ParserError as exc:
            raise DTADataError(f"data file {str(path)!r} could not be parsed: {exc}") from None
        df.index = pd.RangeIndex(1, len(df) + 1)
        return cls.from_frame(
            df, study=study, model=model, columns=columns, source=str(path), _line_offset=1
        )

    # ------------------------------------------------------------------ views
    @property
    def frame(self) -> pd.DataFrame:
        """A copy of the validated table."""
        return self._frame.copy()

    def _col(self, name: str) -> np.ndarray:
        if name not in self._cache:
            self._cache[name] = _readonly(self._frame[name].to_numpy())
        return self._cache[name]

    @property
    def tp(self) -> np.ndarray:
        """True positives per row."""
        return self._col("TP")

    @property
    def fp(self) -> np.ndarray:
        """False positives per row."""
        return self._col("FP")

    @property
    def fn(self) -> np.ndarray:
        """False negatives per row."""
        return self._col("FN")

    @property
    def tn(self) -> np.ndarray:
        """True negatives per row."""
        return self._col("TN")

    @property
    def n_diseased(self) -> np.ndarray:
        """Diseased participants per row (TP + FN)."""
        return _readonly(self.tp + self.fn)

    @property
    def n_nondiseased(self) -> np.ndarray:
        """Non-diseased participants per row (FP + TN)."""
        return _readonly(self.fp + self.tn)

    @property
    def n_rows(self) -> int:
        """Number of 2x2 tables."""
        return len(self._frame)

    @property
    def studies(self) -> list[str]:
        """Study labels in order of first appearance."""
        return list(pd.unique(self._frame["study"]))

    @property
    def n_studies(self) -> int:
        """Number of distinct studies."""
        return len(self.studies)

    @property
    def study_index(self) -> np.ndarray:
        """Integer code of the study of each row (position in :attr:`studies`)."""
        if "_study_index" not in self._cache:
            codes = {s: i for i, s in enumerate(self.studies)}
            self._cache["_study_index"] = _readonly(
                np.array([codes[s] for s in self._frame["study"]], dtype=np.int64)
            )
        return self._cache["_study_index"]

    @property
    def row_labels(self) -> list[str]:
        """A label per row: the study, followed by the model when the study has several rows."""
        counts = self._frame["study"].value_counts()
        return [
            s if counts[s] == 1 and self.model_column is None else f"{s} | {m}"
            for s, m in zip(self._frame["study"], self._frame["model"], strict=True)
        ]

    @property
    def covariates(self) -> list[str]:
        """Names of the covariate columns."""
        return [c for c in self._frame.columns if c not in ("study", "model", *COUNT_COLUMNS)]

    @property
    def rows_per_study(self) -> np.ndarray:
        """Number of rows of each study, in the order of :attr:`studies`."""
        return np.bincount(self.study_index, minlength=self.n_studies)

    @property
    def has_clusters(self) -> bool:
        """True when some study contributes more than one row."""
        return bool(self.rows_per_study.max() > 1)

    def subset(self, mask: Sequence[bool] | np.ndarray) -> DTAData:
        """Return the rows where ``mask`` is true, as new validated data."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n_rows,):
            raise DTADataError(f"mask has shape {mask.shape}, expected ({self.n_rows},)")
        if not mask.any():
            raise DTADataError("the subset is empty: no rows selected")
        df = self._frame.loc[mask].reset_index(drop=True)
        return DTAData(df, self.study_column, self.model_column, self.source)

    def to_frame(self) -> pd.DataFrame:
        """The validated table, with observed sensitivity and specificity added."""
        df = self.frame
        df["n_diseased"] = self.n_diseased
        df["n_nondiseased"] = self.n_nondiseased
        df["sensitivity"] = self.tp / self.n_diseased
        df["specificity"] = self.tn / self.n_nondiseased
        return df

    def to_json(self) -> str:
        """Serialize losslessly (used by :meth:`DTAFit.save`)."""
        import json

        payload = {
            "frame": json.loads(self._frame.to_json(orient="split", double_precision=15)),
            "dtypes": {c: str(t) for c, t in self._frame.dtypes.items()},
            "study_column": self.study_column,
            "model_column": self.model_column,
            "source": self.source,
        }
        return json.dumps(payload)

    @classmethod
    def from_json(cls, text: str) -> DTAData:
        """Inverse of :meth:`to_json`."""
        import json

        payload = json.loads(text)
        fr = payload["frame"]
        df = pd.DataFrame(fr["data"], columns=fr["columns"])
        for c in ("study", "model"):
            df[c] = df[c].astype(str).astype(object)
        for c in COUNT_COLUMNS:
            df[c] = df[c].astype(np.int64)
        for c, t in payload["dtypes"].items():
            if c in ("study", "model", *COUNT_COLUMNS):
                continue
            try:
                df[c] = df[c].astype(object) if t == "object" else df[c].astype(t)
            except (TypeError, ValueError):
                pass
        return cls(df, payload["study_column"], payload["model_column"], payload["source"])

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return (
            f"DTAData({self.n_rows} rows, {self.n_studies} studies, "
            f"covariates={self.covariates}, source={self.source!r})"
        )


# ---------------------------------------------------------------------------- 2x2 builders
def split_confusion(
    matrix: Any,
    *,
    labels: Sequence[str] | None = None,
    truth: str = "rows",
) -> pd.DataFrame:
    """Split a KxK confusion matrix into K one-vs-rest 2x2 tables.

    For class k (the target condition), with ``M[i, j]`` the number of participants whose true
    class is i and predicted class is j: TP = M[k, k], FN = sum_j M[k, j] - TP,
    FP = sum_i M[i, k] - TP, TN = N - TP - FN - FP. This is how a 3x3 osteoporosis / osteopenia /
    normal matrix becomes three 2x2 tables.

    Parameters
    ----------
    matrix : array-like or DataFrame, shape (K, K)
        Non-negative integer counts. A DataFrame's index gives the labels.
    labels : sequence of str, optional
        Class names (default: the DataFrame index, else ``"class 1"``, ...).
    truth : {"rows", "columns"}
        Whether the true (reference-standard) class runs along rows (default) or columns.

    Returns
    -------
    pandas.DataFrame
        One row per class: ``target``, ``TP``, ``FP``, ``FN``, ``TN``.
    """
    if isinstance(matrix, pd.DataFrame):
        if labels is None:
            labels = [str(x) for x in matrix.index]
        values = matrix.to_numpy()
    else:
        values = np.asarray(matrix)
    if values.ndim != 2 or values.shape[0] != values.shape[1] or values.shape[0] < 2:
        raise DTADataError(f"confusion matrix must be KxK with K >= 2, got shape {values.shape}")
    k = values.shape[0]
    m = np.empty((k, k), dtype=np.int64)
    for i in range(k):
        for j in range(k):
            v = values[i, j]
            try:
                fv = float(v)
            except (TypeError, ValueError):
                raise DTADataError(
                    f"confusion matrix cell [{i}, {j}]: {v!r} is not a number"
                ) from None
            if math.isnan(fv):
                raise DTADataError(f"confusion matrix cell [{i}, {j}]: missing count")
            if fv < 0 or fv != math.floor(fv):
                raise DTADataError(
                    f"confusion matrix cell [{i}, {j}]: {v!r} is not a non-negative integer"
                )
            m[i, j] = int(fv)
    if truth == "columns":
        m = m.T
    elif truth != "rows":
        raise DTADataError(f"truth must be 'rows' or 'columns', got {truth!r}")
    if labels is None:
        labels = [f"class {i + 1}" for i in range(k)]
    if len(labels) != k:
        raise DTADataError(f"{len(labels)} labels given for a {k}x{k} matrix")
    total = m.sum()
    rows = []
    for c in range(k):
        tp = m[c, c]
        fn = m[c, :].sum() - tp
        fp = m[:, c].sum() - tp
        tn = total - tp - fn - fp
        rows.append({"target": str(labels[c]), "TP": tp, "FP": fp, "FN": fn, "TN": tn})
    return pd.DataFrame(rows)


def _decimals(x: float) -> int:
    """Number of decimals a reported value was given to (from its shortest repr)."""
    s = repr(float(x))
    if "e" in s or "E" in s:
        return 6
    frac = s.split(".")[1] if "." in s else ""
    frac = frac.rstrip("0")
    return min(len(frac), 6)


def counts_from_metrics(
    sensitivity: Any,
    specificity: Any,
    *,
    n_diseased: Any = None,
    n_nondiseased: Any = None,
    n_total: Any = None,
    prevalence: Any = None,
    decimals: int | None = None,
) -> pd.DataFrame:
    """Reconstruct TP, FP, FN, TN from reported sensitivity, specificity and sample sizes.

    TP = round(se * n1), TN = round(sp * n0), FN = n1 - TP, FP = n0 - TN, where n1 and n0 are the
    diseased and non-diseased sample sizes, given directly or as ``n_total`` and ``prevalence``
    (n1 = round(n_total * prevalence), n0 = n_total - n1). The rounded counts are then checked:
    TP / n1 rounded to the reported precision must give the reported sensitivity (likewise
    specificity and prevalence); otherwise the inputs are inconsistent and an error shows every
    mismatch.

    Parameters
    ----------
    sensitivity, specificity : float or array-like
        Reported values as proportions in [0, 1].
    n_diseased, n_nondiseased : int or array-like, optional
        Sample sizes of the two groups.
    n_total : int or array-like, optional
        Total sample size (with ``prevalence``).
    prevalence : float or array-like, optional
        Reported prevalence (with ``n_total``).
    decimals : int, optional
        Precision the metrics were reported to. Default: inferred per value from its decimal
        representation (0.88 -> 2 decimals).

    Returns
    -------
    pandas.DataFrame
        Columns ``TP``, ``FP``, ``FN``, ``TN``, one row per input.

    Raises
    ------
    DTADataError
        On out-of-range inputs or when no integer counts reproduce the reported metrics.
    """

    def column(values: Any, name: str) -> np.ndarray:
        """One input as a 1-d float array; a bad entry is a one-line error naming its row."""
        arr = np.asarray(values, dtype=object)
        if arr.ndim > 1:
            raise DTADataError(f"{name}: give one value per row (a list), not a {arr.ndim}-d table")
        flat = np.atleast_1d(arr)
        out = np.empty(flat.size, dtype=float)
        for i, v in enumerate(flat):
            if v is None or (isinstance(v, str) and not v.strip()):
                out[i] = np.nan
                continue
            try:
                out[i] = float(v)
            except (TypeError, ValueError):
                raise DTADataError(f"row {i + 1}: {name} {v!r} is not a number") from None
        return out

    def check(v: np.ndarray, name: str, kind: str) -> None:
        for i, x in enumerate(v):
            if np.isnan(x):
                raise DTADataError(f"row {i + 1}: {name} is missing (NaN or empty); give {kind}")
            if kind == "a proportion in [0, 1]" and not 0.0 <= x <= 1.0:
                hint = f" (give {x / 100:g}, not {x:g})" if 1.0 < x <= 100.0 else ""
                raise DTADataError(f"row {i + 1}: {name} {x:g} is not {kind}{hint}")
            if kind == "a positive integer" and not (x >= 1 and x == np.floor(x)):
                raise DTADataError(f"row {i + 1}: {name} {x:g} is not {kind}")
            if kind == "a proportion strictly between 0 and 1" and not 0.0 < x < 1.0:
                raise DTADataError(f"row {i + 1}: {name} {x:g} is not {kind}")

    def same_length(arrays: dict[str, np.ndarray]) -> int:
        sizes = {k: v.size for k, v in arrays.items()}
        n = max(sizes.values())
        wrong = {k: m for k, m in sizes.items() if m not in (1, n)}
        if wrong:
            listing = ", ".join(f"{k} has {m}" for k, m in sizes.items())
            raise DTADataError(f"inputs differ in length ({listing}); give one value per row")
        return n

    se = column(sensitivity, "sensitivity")
    sp = column(specificity, "specificity")
    if n_diseased is not None or n_nondiseased is not None:
        if n_diseased is None or n_nondiseased is None:
            raise DTADataError("give both n_diseased and n_nondiseased, or n_total and prevalence")
        if n_total is not None or prevalence is not None:
            raise DTADataError("give n_diseased/n_nondiseased or n_total/prevalence, not both")
        n1 = column(n_diseased, "n_diseased")
        n0 = column(n_nondiseased, "n_nondiseased")
        inputs = {"sensitivity": se, "specificity": sp, "n_diseased": n1, "n_nondiseased": n0}
        prev = None
    elif n_total is not None and prevalence is not None:
        nt = column(n_total, "n_total")
        prev = column(prevalence, "prevalence")
        inputs = {"sensitivity": se, "specificity": sp, "n_total": nt, "prevalence": prev}
    else:
        raise DTADataError("give n_diseased and n_nondiseased, or n_total and prevalence")
    n = same_length(inputs)
    inputs = {k: np.broadcast_to(v, (n,)) for k, v in inputs.items()}
    kinds = {
        "sensitivity": "a proportion in [0, 1]",
        "specificity": "a proportion in [0, 1]",
        "n_diseased": "a positive integer",
        "n_nondiseased": "a positive integer",
        "n_total": "a positive integer",
        "prevalence": "a proportion strictly between 0 and 1",
    }
    for k, v in inputs.items():
        check(v, k, kinds[k])
    se, sp = inputs["sensitivity"], inputs["specificity"]
    if prev is None:
        n1, n0 = inputs["n_diseased"], inputs["n_nondiseased"]
    else:
        nt, prev = inputs["n_total"], inputs["prevalence"]
        n1 = np.round(nt * prev)
        n0 = nt - n1
        for i in range(n):
            if n1[i] < 1 or n0[i] < 1:
                raise DTADataError(
                    f"row {i + 1}: n_total {nt[i]:g} with prevalence {prev[i]:g} leaves "
                    f"{n1[i]:g} diseased and {n0[i]:g} non-diseased; both must be at least 1"
                )

    tp = np.round(se * n1).astype(np.int64)
    tn = np.round(sp * n0).astype(np.int64)
    problems = []
    for i in range(len(se)):
        checks = [("sensitivity", se[i], tp[i] / n1[i]), ("specificity", sp[i], tn[i] / n0[i])]
        if prev is not None:
            checks.append(("prevalence", prev[i], n1[i] / (n1[i] + n0[i])))
        for name, reported, implied in checks:
            d = decimals if decimals is not None else _decimals(reported)
            if abs(implied - reported) > 0.5 * 10.0 ** (-d) + 1e-12:
                problems.append(
                    f"row {i + 1}: reported {name} {reported:.{d}f} but the nearest counts give "
                    f"{implied:.{d + 3}f} (n1={int(n1[i])}, n0={int(n0[i])}, "
                    f"TP={tp[i]}, TN={tn[i]})"
                )
    if problems:
        raise DTADataError("counts cannot reproduce the reported metrics: " + "; ".join(problems))
    return pd.DataFrame(
        {
            "TP": tp,
            "FP": (n0 - tn).astype(np.int64),
            "FN": (n1 - tp).astype(np.int64),
            "TN": tn,
        }
    )
