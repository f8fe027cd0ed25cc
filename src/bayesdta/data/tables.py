"""Validated diagnostic-accuracy data: :class:`DTAData` and helpers that build 2x2 tables.

A row of a DTA table is one 2x2 table: model (or test, or threshold) ``m`` evaluated in study
``s``, with counts TP, FP, FN and TN. Several rows may share a study (several correlated models
per study); the pair (study, model) must be unique.
"""

from __future__ import annotations

import csv
import io
import math
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DTADataError

__all__ = [
    "DTAData",
    "split_confusion",
    "ConfusionData",
    "read_confusion",
    "counts_from_metrics",
    "read_table",
    "levels_reason",
    "check_learnable",
    "fit_note",
    "COUNT_COLUMNS",
    "STUDY_ID_HEADERS",
    "MODEL_ID_HEADERS",
]

COUNT_COLUMNS: tuple[str, ...] = ("TP", "FP", "FN", "TN")
#: Headers recognised as the study id, in order of preference. Matching ignores case, spaces,
#: underscores, hyphens and padding (``Study ID``, ``study_id``, `` StudyID`` all match).
STUDY_ID_HEADERS: tuple[str, ...] = (
    "study",
    "study_id",
    "study_name",
    "first_author",
    "author",
    "author_year",
    "id",
)
#: Headers recognised as the model (test, table) id within a study, in order of preference.
MODEL_ID_HEADERS: tuple[str, ...] = ("model", "model_id", "test", "test_id", "result_id")
_SEPARATORS = {
    ",": ",",
    ";": ";",
    "\t": "\t",
    "|": "|",
    "tab": "\t",
    "comma": ",",
    "semicolon": ";",
}


def _norm(name: Any) -> str:
    """Header key for matching: lower case, no BOM, no spaces / underscores / punctuation."""
    return re.sub(r"[^0-9a-z]", "", str(name).replace("\ufeff", "").lower())


def _find_column(columns: Sequence[str], name: str, *, loose: bool = False) -> str | None:
    """Return the column named ``name``, else None.

    Exact match first, then ignoring case; with ``loose`` also ignoring spaces, underscores and
    punctuation.
    """
    exact = [c for c in columns if str(c) == name]
    if exact:
        return exact[0]
    tests = [lambda c: str(c).lower() == name.lower()]
    if loose:
        tests.append(lambda c: _norm(c) == _norm(name) and _norm(name) != "")
    for test in tests:
        matches = [c for c in columns if test(c)]
        if len(matches) > 1:
            raise DTADataError(
                f"column {name!r} matches several columns {matches}; name the one to use"
            )
        if matches:
            return matches[0]
    return None


def _plain(v: Any) -> str:
    """A value as a user reads it: numpy scalars as plain numbers (``-1``, not ``np.int64(-1)``)."""
    if isinstance(v, np.generic):
        v = v.item()
    return repr(v)


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
            hint = (
                " (counts are whole numbers, written without thousands separators)"
                if "," in s or "." in s
                else ""
            )
            comma = re.fullmatch(r"([+-]?\d+),(\d+)", s)
            if comma is not None and len(comma.group(2)) == 3:
                raise DTADataError(
                    f"{where}, column {label}: count {s!r} is ambiguous (a decimal comma or a "
                    "thousands separator); write counts as whole numbers without separators"
                )
            number = s if comma is None else f"{comma.group(1)}.{comma.group(2)}"  # "12,0"
            try:
                v = float(number)
            except ValueError:
                raise DTADataError(
                    f"{where}, column {label}: count {s!r} is not a number{hint}"
                ) from None
            if math.isfinite(v) and v != math.floor(v):
                raise DTADataError(f"{where}, column {label}: count {s!r} is not an integer{hint}")
        if isinstance(v, (bool, np.bool_)):
            raise DTADataError(f"{where}, column {label}: count {_plain(v)} is not an integer")
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise DTADataError(
                f"{where}, column {label}: count {_plain(v)} is not a number"
            ) from None
        if math.isnan(fv):
            raise DTADataError(f"{where}, column {label}: missing count")
        if not math.isfinite(fv) or fv != math.floor(fv):
            raise DTADataError(f"{where}, column {label}: count {_plain(v)} is not an integer")
        if fv < 0:
            raise DTADataError(f"{where}, column {label}: count {_plain(v)} is negative")
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


def read_table(
    path: str | Path, *, sep: str | None = None, **read_csv_kwargs: Any
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read a CSV export as a table, tolerant of what spreadsheets and review software write.

    Handles a UTF-8 byte-order mark (Excel), Windows line ends, ``,`` ``;`` tab or ``|``
    separators (sniffed from the header line unless ``sep`` is given), padded headers and cells
    (stripped), fully blank rows such as ``,,,,`` (dropped and counted), an empty trailing column
    from a separator at the end of each line (dropped), and, in files that are not
    comma-separated, decimal commas in covariate columns (``0,5`` read as 0.5).

    Parameters
    ----------
    path : str or Path
        The file.
    sep : str, optional
        Column separator: ``","``, ``";"``, tab, ``"|"`` or the names ``comma``,
        ``semicolon``, ``tab``. Default: sniffed from the header line.
    **read_csv_kwargs
        Passed to :func:`pandas.read_csv`.

    Returns
    -------
    frame : pandas.DataFrame
        Index = row number r (file line r + 1 when the header is line 1), blank rows removed.
    info : dict
        What was done: ``sep``, ``sep_sniffed``, ``encoding``, ``blank_rows``, ``empty_columns``,
        ``decimal_comma`` (columns read with a decimal comma), ``line_offset``.

    Raises
    ------
    DTADataError
        When the file is missing, empty or cannot be parsed (one line).
    """
    path = Path(path)
    if not path.exists():
        raise DTADataError(f"data file {str(path)!r} does not exist")
    if path.is_dir():
        raise DTADataError(f"data file {str(path)!r} is a folder, not a CSV file")
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8-sig")
        encoding = "UTF-8 with BOM" if bom else "UTF-8"
    except UnicodeDecodeError:
        text = raw.decode("cp1252", errors="replace")
        encoding = "cp1252 (not UTF-8)"
    lines = text.splitlines()
    lead = 0
    while lead < len(lines) and lines[lead].strip() == "":
        lead += 1
    if lead == len(lines):
        raise DTADataError(f"data file {str(path)!r} is empty")
    hint = re.fullmatch(r"\s*sep=(.)\s*", lines[lead])  # Excel's separator line
    if hint is not None:
        lead += 1
        if lead == len(lines):
            raise DTADataError(f"data file {str(path)!r} is empty")
        if sep is None:
            sep = hint.group(1)
    header = lines[lead]
    if sep is None:
        sniffed = True
        counts = {}
        for cand in (",", ";", "\t", "|"):
            counts[cand] = len(next(csv.reader([header], delimiter=cand)))
        best = max(counts.values())
        sep = next(c for c in (",", ";", "\t", "|") if counts[c] == best) if best > 1 else ","
    else:
        sniffed = False
        if sep not in _SEPARATORS:
            raise DTADataError(
                f"sep must be one of ',', ';', tab, '|' (or comma, semicolon, tab), got {sep!r}"
            )
        sep = _SEPARATORS[sep]
    # cells are read as text and typed below: counts stay as written (errors quote them),
    # covariates become numbers, booleans or text
    kwargs = {
        "skip_blank_lines": False,
        "skipinitialspace": True,
        "index_col": False,
        "dtype": str,
    }
    kwargs.update(read_csv_kwargs)
    # a row with more (non-empty) fields than the header would be cut short: refuse it
    records = csv.reader(lines[lead:], delimiter=sep, skipinitialspace=True)
    n_header = len(next(records))
    for i, rec in enumerate(records, start=1):
        while len(rec) > n_header and rec[-1].strip() == "":
            rec = rec[:-1]
        if len(rec) > n_header:
            shown = {"\t": "tab"}.get(sep, repr(sep))
            raise DTADataError(
                f"row {i} (file line {lead + 1 + i}): {len(rec)} fields but the header has "
                f"{n_header} ({shown}-separated); a wrong separator (give sep= / --sep), a "
                "decimal comma in a comma-separated file, or an unquoted separator in a cell"
            )
    try:
        with warnings.catch_warnings():
            # rows longer than the header by empty trailing fields only (checked above)
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            df = pd.read_csv(io.StringIO("\n".join(lines[lead:])), sep=sep, **kwargs)
    except pd.errors.EmptyDataError:
        raise DTADataError(f"data file {str(path)!r} is empty") from None
    except (pd.errors.ParserError, ValueError) as exc:
        msg = " ".join(str(exc).split())
        raise DTADataError(f"data file {str(path)!r} could not be parsed: {msg}") from None
    line_offset = lead + 1
    df.index = pd.RangeIndex(1, len(df) + 1)
    df.columns = [str(c).replace("\ufeff", "").strip() for c in df.columns]
    # strip padded text cells; a cell of spaces is empty
    for c in df.columns:
        if _is_text(df[c]):
            df[c] = df[c].map(lambda x: (x.strip() or np.nan) if isinstance(x, str) else x)
    blank = df.isna().all(axis=1).to_numpy()
    n_blank = int(blank.sum())
    df = df.loc[~blank]
    empty_cols = [
        c for c in df.columns if (c == "" or c.startswith("Unnamed: ")) and df[c].isna().all()
    ]
    df = df.drop(columns=empty_cols)
    unnamed = [c for c in df.columns if c == "" or c.startswith("Unnamed: ")]
    if unnamed:
        pos = list(df.columns).index(unnamed[0]) + 1
        raise DTADataError(
            f"data file {str(path)!r}: column {pos} has values but no header; name it"
        )
    if len(df) == 0:
        raise DTADataError(f"data file {str(path)!r} has a header but no rows")
    decimal_comma = []
    count_keys = {k.lower() for k in COUNT_COLUMNS}
    for c in df.columns:
        if not _is_text(df[c]):
            continue
        vals = df[c].dropna()
        if not len(vals) or not all(isinstance(v, str) for v in vals):
            continue
        if _norm(c) in count_keys:
            continue  # counts in text are checked cell by cell, naming the cell as written
        if all(_NUMBER.fullmatch(v) for v in vals):
            df[c] = pd.to_numeric(df[c])
        elif all(v.lower() in ("true", "false") for v in vals) and not df[c].isna().any():
            df[c] = df[c].str.lower() == "true"
        elif (
            sep != ","
            and all(_NUMBER_DECIMAL_COMMA.fullmatch(v) for v in vals)
            and any("," in v for v in vals)
        ):
            df[c] = pd.to_numeric(df[c].str.replace(",", ".", regex=False))
            decimal_comma.append(c)
    info = {
        "sep": sep,
        "sep_sniffed": sniffed,
        "encoding": encoding,
        "blank_rows": n_blank,
        "empty_columns": len(empty_cols),
        "decimal_comma": decimal_comma,
        "line_offset": line_offset,
    }
    return df, info


def _is_text(col: pd.Series) -> bool:
    return col.dtype == object or pd.api.types.is_string_dtype(col.dtype)


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_NUMBER_DECIMAL_COMMA = re.compile(r"[+-]?\d+(,\d+)?")


def _plural(n: int, word: str) -> str:
    if n == 1:
        return f"1 {word}"
    return f"{n} {word[:-1] + 'ies' if word.endswith('y') else word + 's'}"


def _repeated_study(study_ids: np.ndarray, index: Sequence[Any]) -> tuple[str, Any, Any] | None:
    seen: dict[str, Any] = {}
    for idx, s in zip(index, study_ids, strict=True):
        if s in seen:
            return s, seen[s], idx
        seen[s] = idx
    return None


@dataclass(frozen=True, eq=False, repr=False)
class DTAData:
    """A validated, immutable table of 2x2 diagnostic-accuracy counts.

    Build it with :meth:`from_frame` or :meth:`from_csv`; do not call the constructor directly.
    :meth:`describe` says in one line what was read and taken as what.

    Attributes
    ----------
    frame : pandas.DataFrame
        A copy of the validated table: columns ``study``, ``model``, ``TP``, ``FP``, ``FN``,
        ``TN`` followed by the covariates (all other input columns, original names), followed
        by the id columns under their original names when these differ from ``study`` /
        ``model`` (so that a formula may use them, e.g. ``"~ test"``; they are not listed in
        :attr:`covariates`).
    study_column, model_column : str or None
        The input columns the study and model ids came from (None when generated).
    source : str
        Where the data came from (file path or ``"DataFrame"``).
    info : dict
        How the data were read and the ids chosen (used by :meth:`describe`).
    """

    _frame: pd.DataFrame
    study_column: str | None
    model_column: str | None
    source: str = "DataFrame"
    info: dict = field(default_factory=dict, compare=False)
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
        clustered: bool = False,
        source: str = "DataFrame",
        _line_offset: int | None = None,
        _read_info: Mapping[str, Any] | None = None,
    ) -> DTAData:
        """Validate a DataFrame of 2x2 counts.

        Parameters
        ----------
        df : pandas.DataFrame
            One row per 2x2 table.
        study : str, optional
            Column holding the study id. Default: the first of :data:`STUDY_ID_HEADERS`
            (``study``, ``study_id``, ``study_name``, ``first_author``, ``author``,
            ``author_year``, ``id``) found, ignoring case, spaces, underscores and padding
            (``Study ID``, ``StudyID``, ``First author`` match); if none, every row is its own
            study.
        model : str, optional
            Column holding the model (test, result) id within a study. Default: the first of
            :data:`MODEL_ID_HEADERS` (``model``, ``model_id``, ``test``, ``test_id``,
            ``result_id``) found the same way. The chosen columns are stated by
            :meth:`describe` and stay usable in formulas under their own names.
        columns : mapping, optional
            Map from count name (``TP``, ``FP``, ``FN``, ``TN``) to the column holding it, for
            tables whose count columns are named otherwise. Unmapped counts are matched by name
            ignoring case and padding.
        clustered : bool
            Confirms that a study id repeating with no model column means several tables of one
            study (their rows are then numbered 1, 2, ... within the study, and the default
            model has three levels). Without it such a table is refused: a repeated id may also
            be a duplicated row or a wrong id column, and is never clustered silently.
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
            a missing id, a duplicated (study, model) pair, or a repeated study id without a
            model column (unless ``clustered=True``). The message names row and column.
        """
        if not isinstance(df, pd.DataFrame):
            raise DTADataError(f"expected a pandas DataFrame, got {type(df).__name__}")
        if len(df) == 0:
            raise DTADataError("the table is empty: no rows")
        df = df.copy()
        cols = [str(c).replace("\ufeff", "").strip() for c in df.columns]
        dups = sorted({c for c in cols if cols.count(c) > 1})
        if dups:
            raise DTADataError(
                f"column {dups[0]!r} appears {cols.count(dups[0])} times in the header; "
                "rename one of them"
            )
        df.columns = cols
        mapping = {str(k).strip().upper(): str(v).strip() for k, v in (columns or {}).items()}
        unknown = set(mapping) - set(COUNT_COLUMNS)
        if unknown:
            raise DTADataError(
                f"columns= maps unknown count names {sorted(unknown)}; use TP, FP, FN, TN"
            )
        source_cols: dict[str, str] = {}
        for name in COUNT_COLUMNS:
            if name in mapping:
                found = _find_column(cols, mapping[name])
                if found is None:
                    raise DTADataError(
                        f"column {mapping[name]!r} (mapped to {name}) is not in the table; "
                        f"columns are {', '.join(cols)}"
                    )
                source_cols[name] = found
            else:
                found = _find_column(cols, name)
                if found is None:
                    raise DTADataError(
                        f"required column {name} is missing; columns are {', '.join(cols)} "
                        f"(map it with columns={{'{name}': '<column>'}}, "
                        f"on the command line --columns {name}=<column>)"
                    )
                source_cols[name] = found

        def pick(arg: str | None, candidates: Sequence[str], what: str) -> str | None:
            if arg is not None:
                found = _find_column(cols, str(arg).strip(), loose=True)
                if found is None:
                    raise DTADataError(
                        f"{what} column {arg!r} is not in the table; columns are {', '.join(cols)}"
                    )
                return found
            for cand in candidates:
                found = _find_column(cols, cand, loose=True)
                if found is not None and found not in source_cols.values():
                    return found
            return None

        study_col = pick(study, STUDY_ID_HEADERS, "study")
        model_col = pick(model, MODEL_ID_HEADERS, "model")
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
            rep = _repeated_study(study_ids, df.index)
            if rep is not None and not clustered:
                s, first, second = rep
                raise DTADataError(
                    f"{_row_name(second, _line_offset)}, column {study_col}: study id {s!r} "
                    f"repeats (first at {_row_name(first, _line_offset)}) and there is no model "
                    "column: name the column that tells a study's tables apart with "
                    "model='<column>' (command line --model), confirm that they are several "
                    "tables of one study with clustered=True (--clustered), or choose another "
                    "study id column with study='<column>' (--study)"
                )
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
        # the id columns stay available to formulas under their own names ("~ test")
        for c in (study_col, model_col):
            if c is not None and c not in out.columns:
                out[c] = df[c].to_numpy()
        info = dict(_read_info or {})
        info.update(
            {
                "study_given": study is not None,
                "model_given": model is not None,
                "clustered_confirmed": bool(clustered) and model_col is None,
                "count_columns": dict(source_cols),
            }
        )
        return cls(out, study_col, model_col, source, info)

    @classmethod
    def from_csv(
        cls,
        path: str | Path,
        *,
        study: str | None = None,
        model: str | None = None,
        columns: Mapping[str, str] | None = None,
        clustered: bool = False,
        sep: str | None = None,
        **read_csv_kwargs: Any,
    ) -> DTAData:
        """Read and validate a CSV file of 2x2 counts.

        Reads what spreadsheets export (see :func:`read_table`): ``,`` ``;`` tab or ``|``
        separated (sniffed, or ``sep``), a UTF-8 byte-order mark, Windows line ends, padded
        headers and cells, fully blank rows (dropped; :meth:`describe` says how many) and
        decimal commas in covariates of ``;``-separated files. Rows are numbered from 1 in
        error messages, with the file line beside them.

        Parameters
        ----------
        path : str or Path
            The CSV file (a header line, one 2x2 table per line).
        study, model, columns, clustered
            As in :meth:`from_frame`.
        sep : str, optional
            Column separator (default: sniffed from the header line).
        **read_csv_kwargs
            Passed to :func:`pandas.read_csv`.

        Returns
        -------
        DTAData
        """
        df, info = read_table(path, sep=sep, **read_csv_kwargs)
        return cls.from_frame(
            df,
            study=study,
            model=model,
            columns=columns,
            clustered=clustered,
            source=str(path),
            _line_offset=info["line_offset"],
            _read_info=info,
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
        ids = {c for c in (self.study_column, self.model_column) if c}
        reserved = {"study", "model", *COUNT_COLUMNS} | ids
        return [c for c in self._frame.columns if c not in reserved]

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
        return DTAData(df, self.study_column, self.model_column, self.source, dict(self.info))

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
            "info": self.info,
        }
        return json.dumps(payload, default=str)

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
        return cls(
            df,
            payload["study_column"],
            payload["model_column"],
            payload["source"],
            dict(payload.get("info") or {}),
        )

    def describe(self) -> str:
        """One line saying what was read and what each column was taken as.

        Names the source, the number of rows, the study id (and how many studies), the model
        id, the count columns and the covariates, and what was done to read the file (separator,
        blank rows dropped, decimal commas). :func:`levels_reason` adds the number of levels a
        fit chooses and why.
        """
        info = self.info
        src = "a DataFrame" if self.source == "DataFrame" else repr(self.source)
        how = []
        if info.get("sep") is not None:
            sep = {"\t": "tab", ",": "','", ";": "';'", "|": "'|'"}.get(info["sep"], info["sep"])
            how.append(f"{sep}-separated{', sniffed' if info.get('sep_sniffed') else ''}")
        if info.get("encoding") and info["encoding"] != "UTF-8":
            how.append(str(info["encoding"]))
        head = f"read {self.n_rows} rows from {src}" + (f" ({', '.join(how)})" if how else "")
        parts = []
        if self.study_column is not None:
            tag = "" if info.get("study_given", True) else ", found"
            parts.append(
                f"study id {self.study_column!r} ({_plural(self.n_studies, 'study')}{tag})"
            )
        else:
            parts.append(
                f"no study id column (none of {', '.join(STUDY_ID_HEADERS)}): every row is "
                f"its own study ({_plural(self.n_studies, 'study')})"
            )
        if self.model_column is not None:
            tag = "" if info.get("model_given", True) else " (found)"
            parts.append(f"model id {self.model_column!r}{tag}")
        elif self.has_clusters:
            parts.append("no model id: rows of a study numbered 1, 2, ... (clustered=True)")
        else:
            parts.append("no model id")
        cc = info.get("count_columns") or {}
        if cc and any(cc[k].upper() != k for k in cc):
            parts.append(
                "counts " + ", ".join(k if cc[k].upper() == k else f"{k}={cc[k]!r}" for k in cc)
            )
        else:
            parts.append("counts " + "/".join(COUNT_COLUMNS))
        covs = self.covariates
        parts.append(f"covariates {', '.join(covs)}" if covs else "no covariates")
        notes = []
        if info.get("blank_rows"):
            n = info["blank_rows"]
            notes.append(f"{n} fully blank row{'s' if n != 1 else ''} dropped")
        if info.get("empty_columns"):
            n = info["empty_columns"]
            notes.append(f"{n} empty unnamed column{'s' if n != 1 else ''} dropped")
        if info.get("decimal_comma"):
            notes.append(f"decimal commas read in {', '.join(info['decimal_comma'])}")
        line = f"{head}: {', '.join(parts)}"
        return line + (f"; {'; '.join(notes)}" if notes else "")

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return (
            f"DTAData({self.n_rows} rows, {self.n_studies} studies, "
            f"covariates={self.covariates}, source={self.source!r})"
        )


# ---------------------------------------------------------------------------- what is learnable
def levels_reason(data: DTAData, levels: int | None = None) -> tuple[int, str]:
    """The number of random-effect levels a fit uses for ``data`` and why, in words.

    Parameters
    ----------
    data : DTAData
    levels : {2, 3} or None
        The requested levels (None: chosen from the data).

    Returns
    -------
    (int, str)
        The levels and a short reason, e.g. ``(3, "some studies have several rows")``.
    """
    multi = int((data.rows_per_study > 1).sum())
    if levels is None:
        if data.has_clusters:
            return 3, (
                f"chosen as {multi} of {_plural(data.n_studies, 'study')} have several rows; "
                "levels=2 would treat every row as its own study"
            )
        return 2, "chosen: one row per study"
    if levels == 3:
        return 3, "levels=3 requested"
    if data.has_clusters:
        return 2, (
            f"levels=2 requested: the {data.n_rows} rows are treated as independent studies, "
            f"although {multi} studies have several rows"
        )
    return 2, "levels=2 requested"


def fit_note(data: DTAData, levels: int | None = None) -> str:
    """The one-line announcement of a fit: :meth:`DTAData.describe` plus the levels and why."""
    n, why = levels_reason(data, levels)
    return f"{data.describe()}; {n} levels ({why})"


def check_learnable(
    data: DTAData,
    *,
    levels: int | None = None,
    design: Any = None,
    tau_by: str | None = None,
) -> list[str]:
    """Refuse data that cannot be meta-analysed; list parameters the data cannot inform.

    Parameters
    ----------
    data : DTAData
    levels : {2, 3} or None
        Requested levels (None: chosen from the data, see :func:`levels_reason`).
    design : bayesdta.model.Design, optional
        The design of a meta-regression (its categorical covariates are checked).
    tau_by : str, optional
        Covariate whose levels get their own between-study SDs.

    Returns
    -------
    list of str
        One message per parameter (or group) that the data cannot inform; :func:`bayesdta.fit`
        issues each as an :class:`~bayesdta.exceptions.IdentifiabilityWarning`.

    Raises
    ------
    DTADataError
        With one study (at least two are needed), and with one study of several tables when the
        levels are left to the default (the between-study SDs would be prior only).
    """
    out: list[str] = []
    if data.n_studies < 2:
        study = data.studies[0]
        if data.n_rows == 1:
            raise DTADataError(
                f"the data hold one study ({study!r}, one 2x2 table); a meta-analysis needs at "
                "least two studies"
            )
        between = "tau_sensitivity, tau_specificity and rho (between studies)"
        if levels is None:
            raise DTADataError(
                f"all {data.n_rows} tables come from one study ({study!r}): {between} cannot "
                "be learned; a meta-analysis needs at least two studies (levels=2 treats the "
                "tables as independent studies, levels=3 fits them with the between-study SDs "
                "from the prior)"
            )
        if levels == 3:
            out.append(
                f"{between} are not informed by the data: all {data.n_rows} tables come from "
                f"one study ({study!r}); their posterior is the prior"
            )
    if levels == 3 and not data.has_clusters:
        out.append(
            "tau_within_sensitivity, tau_within_specificity and rho_within are not informed: "
            "every study has one row, so only their sum with the between-study SDs is "
            "(levels=2 fits the identified model)"
        )
    frame = data.frame
    study = frame["study"].astype(str)

    def studies_per_level(col: str) -> dict[str, list[str]]:
        vals = frame[col].astype(object).map(lambda x: x if isinstance(x, str) else str(x))
        per: dict[str, list[str]] = {}
        for v, s in zip(vals, study, strict=True):
            lst = per.setdefault(v, [])
            if s not in lst:
                lst.append(s)
        return per

    if design is not None and data.n_studies >= 2:
        for var, lvls in getattr(design, "levels", {}).items():
            per = studies_per_level(var)
            for j, lv in enumerate(lvls):
                if len(per.get(lv, [])) != 1:
                    continue
                verb = "are"
                if j == 0:
                    names = "mu_sensitivity and mu_specificity (the summary point at the reference"
                    names += f" level {lv!r} of {var})"
                else:
                    coefs = [
                        f"beta_{o}[{c}]"
                        for o in ("sensitivity", "specificity")
                        for c in design.columns.get(o, [])
                        if c == f"{var}[T.{lv}]"
                    ]
                    names = " and ".join(coefs) or f"the coefficients of {var} level {lv!r}"
                    verb = "is" if len(coefs) == 1 else "are"
                out.append(
                    f"{names} {verb} informed by one study only: level {lv!r} of {var} occurs only "
                    f"in study {per[lv][0]!r}, so its effect cannot be told apart from that "
                    "study's random effect"
                )
    if tau_by is not None and tau_by in frame.columns and data.n_studies >= 2:
        for lv, studies in studies_per_level(tau_by).items():
            if len(studies) == 1:
                out.append(
                    f"tau_sensitivity[{lv}] and tau_specificity[{lv}] are not informed: level "
                    f"{lv!r} of {tau_by} occurs only in study {studies[0]!r}, and one study "
                    "cannot show a between-study spread (their posterior is the prior)"
                )
    return out


# ---------------------------------------------------------------------------- 2x2 builders
def split_confusion(
    matrix: Any,
    *,
    labels: Sequence[str] | None = None,
    truth: str = "rows",
    study: str | None = None,
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

    study : str, optional
        The study column of a table of several studies' matrices (long or wide layout, a CSV
        path or a :class:`ConfusionData`, read by :func:`read_confusion` with ``labels`` as
        its ``classes``): each study's matrix is split, and the result has a ``study`` column
        first. Without ``study``, ``matrix`` is one KxK matrix.

    Returns
    -------
    pandas.DataFrame
        One row per class: ``target``, ``TP``, ``FP``, ``FN``, ``TN`` (with ``study``: one row
        per study and class, ``study`` first, studies and classes in the order read).
    """
    if study is not None:
        if truth != "rows":
            raise DTADataError("with study=, the table names the true and predicted classes")
        cd = read_confusion(matrix, classes=labels, study=study)
        parts = []
        for s, name in enumerate(cd.studies):
            part = split_confusion(cd.counts[s], labels=list(cd.classes))
            part.insert(0, "study", name)
            parts.append(part)
        return pd.concat(parts, ignore_index=True)
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
                    f"confusion matrix cell [{i}, {j}]: {_plain(v)} is not a number"
                ) from None
            if math.isnan(fv):
                raise DTADataError(f"confusion matrix cell [{i}, {j}]: missing count")
            if fv < 0 or fv != math.floor(fv):
                raise DTADataError(
                    f"confusion matrix cell [{i}, {j}]: {_plain(v)} is not a non-negative integer"
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


# ------------------------------------------------------------------ KxK confusion matrices
#: Headers recognised as the true (reference-standard) class of a long confusion table.
TRUE_CLASS_HEADERS: tuple[str, ...] = (
    "true",
    "true_class",
    "truth",
    "reference",
    "reference_class",
    "actual",
    "disease",
)
#: Headers recognised as the predicted class (index test) of a long confusion table.
PREDICTED_CLASS_HEADERS: tuple[str, ...] = (
    "predicted",
    "predicted_class",
    "pred",
    "prediction",
    "index_test",
    "test_result",
)
#: Headers recognised as the cell count of a long confusion table.
COUNT_HEADERS: tuple[str, ...] = ("count", "n", "counts", "freq", "frequency", "cases")
#: Separators between the true and the predicted class in the cell columns of a wide table
#: (``"osteoporosis->osteopenia"``: true osteoporosis, predicted osteopenia).
CELL_SEPARATORS: tuple[str, ...] = ("->", "|", ":", "/", " vs ", "__")


@dataclass(frozen=True, eq=False)
class ConfusionData:
    """Validated KxK confusion matrices, one per study (the input of the multiclass model).

    Build it with :func:`read_confusion`. ``counts[s, k, j]`` is the number of participants
    of study ``s`` whose true (reference-standard) class is ``classes[k]`` and whose predicted
    class is ``classes[j]``.

    Attributes
    ----------
    counts : numpy.ndarray, shape (n_studies, K, K)
        Non-negative integer counts (read-only).
    classes : tuple of str
        Class labels in the order of the rows and columns.
    studies : tuple of str
        Study labels in the order of ``counts``.
    source : str
        Where the data came from.
    info : dict
        How the table was read (format, columns, class order and why), for :meth:`describe`.
    """

    counts: np.ndarray
    classes: tuple[str, ...]
    studies: tuple[str, ...]
    source: str = "DataFrame"
    info: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        """Number of classes K."""
        return len(self.classes)

    @property
    def n_studies(self) -> int:
        """Number of studies."""
        return len(self.studies)

    def row_totals(self) -> np.ndarray:
        """Participants per study and true class, shape (n_studies, K)."""
        return self.counts.sum(axis=2)

    def observed_prevalence(self) -> np.ndarray:
        """Pooled observed class prevalences: participants of each true class over all studies."""
        tot = self.counts.sum(axis=(0, 2)).astype(float)
        return tot / tot.sum()

    def to_long(self) -> pd.DataFrame:
        """Long format: ``study``, ``true``, ``predicted``, ``count`` (K*K rows per study)."""
        rows = []
        for s, st in enumerate(self.studies):
            for k, a in enumerate(self.classes):
                for j, b in enumerate(self.classes):
                    rows.append(
                        {"study": st, "true": a, "predicted": b, "count": int(self.counts[s, k, j])}
                    )
        return pd.DataFrame(rows)

    def subset(self, studies: Sequence[str]) -> ConfusionData:
        """The matrices of the named studies (in the given order)."""
        idx = []
        for s in studies:
            if s not in self.studies:
                raise DTADataError(f"no study {s!r}; studies are {list(self.studies)}")
            idx.append(self.studies.index(s))
        return ConfusionData(
            _readonly(self.counts[idx]), self.classes, tuple(studies), self.source, dict(self.info)
        )

    def to_json(self) -> str:
        """Serialize losslessly (used by ``MulticlassFit.save``)."""
        import json

        return json.dumps(
            {
                "counts": self.counts.tolist(),
                "classes": list(self.classes),
                "studies": list(self.studies),
                "source": self.source,
                "info": self.info,
            },
            default=str,
        )

    @classmethod
    def from_json(cls, text: str) -> ConfusionData:
        """Inverse of :meth:`to_json`."""
        import json

        p = json.loads(text)
        return cls(
            _readonly(np.asarray(p["counts"], dtype=np.int64)),
            tuple(p["classes"]),
            tuple(p["studies"]),
            p.get("source", "DataFrame"),
            dict(p.get("info") or {}),
        )

    def describe(self) -> str:
        """One line: what was read and taken as what (format, studies, classes and order)."""
        i = self.info
        n = int(self.counts.sum())
        where = f" (column {i['study']!r})" if i.get("study") else ""
        text = (
            f"{self.source}: {i.get('format', 'matrices')}; "
            f"{_plural(self.n_studies, 'study')}{where}, {self.n_classes} classes "
            f"({', '.join(self.classes)}; order {i.get('class_order', 'as given')}), "
            f"{n} participants"
        )
        if i.get("cells"):
            text += f"; cells from {i['cells']}"
        if i.get("ignored_columns"):
            text += f"; columns not used: {', '.join(map(repr, i['ignored_columns']))}"
        return text

    def __repr__(self) -> str:
        return f"ConfusionData({self.describe()})"


def _class_label(v: Any, where: str) -> str:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        raise DTADataError(f"{where}: missing class label")
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        v = int(v)
    s = str(v).strip()
    if s == "":
        raise DTADataError(f"{where}: missing class label")
    return s


def _check_case_clash(labels: Sequence[str], where: Mapping[str, str]) -> None:
    seen: dict[str, str] = {}
    for lab in labels:
        key = lab.lower()
        if key in seen and seen[key] != lab:
            raise DTADataError(
                f"inconsistent class labels {seen[key]!r} ({where[seen[key]]}) and {lab!r} "
                f"({where[lab]}): write each class the same way, or give classes="
            )
        seen.setdefault(key, lab)


def _order_classes(
    found: Sequence[str], classes: Sequence[str] | None, where: Mapping[str, str], what: str
) -> tuple[tuple[str, ...], str]:
    """Class order: ``classes`` when given (every label must be one of them), else first seen."""
    if classes is not None:
        classes = tuple(str(c).strip() for c in classes)
        if len(set(classes)) != len(classes):
            raise DTADataError(f"classes= lists a class twice: {list(classes)}")
        for lab in found:
            if lab not in classes:
                raise DTADataError(
                    f"{where[lab]}: class {lab!r} is not one of classes= {list(classes)}"
                )
        order, how = classes, "as given by classes="
    else:
        _check_case_clash(found, where)
        order, how = tuple(dict.fromkeys(found)), f"as first seen in {what}"
    if len(order) < 2:
        raise DTADataError(f"a confusion table needs at least 2 classes, found {list(order)}")
    return order, how


def read_confusion(
    table: Any,
    *,
    classes: Sequence[str] | None = None,
    study: str | None = "study",
    true: str | None = None,
    predicted: str | None = None,
    count: str | None = None,
    sep: str | None = None,
) -> ConfusionData:
    """Read KxK confusion matrices of several studies.

    Two layouts are recognised:

    * **long**: one row per study and cell, with columns ``study``, the true class (``true``,
      ``truth``, ``reference``, ...: :data:`TRUE_CLASS_HEADERS`), the predicted class
      (``predicted``, ``pred``, ...: :data:`PREDICTED_CLASS_HEADERS`) and the count
      (``count``, ``n``, ...: :data:`COUNT_HEADERS`); every study needs all K*K cells (write
      0 for an empty cell);
    * **wide**: one row per study, with a ``study`` column and K*K cell columns named
      ``"<true><sep><predicted>"`` with ``sep`` one of :data:`CELL_SEPARATORS`
      (``"osteoporosis->osteopenia"``, ``"normal|normal"``; with ``classes=`` given, also
      ``"<true>_<predicted>"``). Other columns are left out and named by :meth:`describe`.

    Parameters
    ----------
    table : DataFrame, CSV path, ConfusionData or array of shape (n_studies, K, K)
        The matrices (arrays: true class along axis 1, predicted along axis 2).
    classes : sequence of str, optional
        Class labels in the order wanted; every label of the table must be one of them.
        Default: the order in which the true classes first appear.
    study : str or None
        Study column (default ``"study"``; matched ignoring case and punctuation).
    true, predicted, count : str, optional
        Column names of the long layout (default: recognised headers).
    sep : str, optional
        CSV separator (default: sniffed).

    Returns
    -------
    ConfusionData

    Raises
    ------
    DTADataError
        One line naming the row and column: a count that is missing, negative or not a whole
        number, a missing or repeated cell, a class label that is not one of the classes or
        written in two ways.
    """
    if isinstance(table, ConfusionData):
        if classes is None or tuple(classes) == table.classes:
            return table
        order = [table.classes.index(c) if c in table.classes else -1 for c in classes]
        if -1 in order or len(order) != table.n_classes:
            raise DTADataError(f"classes= {list(classes)} differ from {list(table.classes)}")
        c = table.counts[:, order][:, :, order]
        info = {**table.info, "class_order": "as given by classes="}
        return ConfusionData(_readonly(c), tuple(classes), table.studies, table.source, info)
    line_offset = None
    source = "DataFrame"
    if isinstance(table, (str, Path)):
        source = str(table)
        table, read_info = read_table(table, sep=sep)
        line_offset = read_info["line_offset"]
    elif not isinstance(table, pd.DataFrame):
        arr = np.asarray(table)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1] != arr.shape[2]:
            raise DTADataError(
                f"confusion matrices must have shape (n_studies, K, K), got {arr.shape}"
            )
        labels = (
            list(classes)
            if classes is not None
            else [f"class {i + 1}" for i in range(arr.shape[1])]
        )
        if len(labels) != arr.shape[1]:
            raise DTADataError(f"{len(labels)} classes given for {arr.shape[1]}x{arr.shape[1]}")
        long = [
            {"study": f"study {s + 1}", "true": labels[k], "predicted": labels[j], "count": v}
            for s in range(arr.shape[0])
            for k in range(arr.shape[1])
            for j in range(arr.shape[1])
            for v in [arr[s, k, j]]
        ]
        table = pd.DataFrame(long)
        table.index = pd.RangeIndex(1, len(table) + 1)
        source = "array"
        study, true, predicted, count = "study", "true", "predicted", "count"
    df = table
    if line_offset is None:  # rows are numbered 1, 2, ... as they come
        df = table.copy()
        df.index = pd.RangeIndex(1, len(df) + 1)
    cols = [str(c) for c in df.columns]
    df.columns = cols

    def find(name: str | None, candidates: Sequence[str], what: str) -> str | None:
        if name is not None:
            c = _find_column(cols, name, loose=True)
            if c is None:
                raise DTADataError(f"no column {name!r} ({what}); columns are {cols}")
            return c
        for cand in candidates:
            c = _find_column(cols, cand, loose=True)
            if c is not None:
                return c
        return None

    scol = find(study, (), "study") if study is not None else None
    if study is not None and scol is None:  # pragma: no cover - find raises
        raise DTADataError(f"no study column {study!r}")
    tcol = find(true, TRUE_CLASS_HEADERS, "true class")
    pcol = find(predicted, PREDICTED_CLASS_HEADERS, "predicted class")
    ccol = find(count, COUNT_HEADERS, "count")

    def rowname(idx: Any) -> str:
        return _row_name(idx, line_offset)

    info: dict[str, Any] = {"study": scol}
    if tcol is not None and pcol is not None and ccol is not None:
        info.update(format="long format", cells=f"columns {tcol!r}, {pcol!r}, {ccol!r}")
        n = _as_counts(df[ccol], ccol, line_offset, ccol)
        studies_col = (
            _labels(df[scol], scol, line_offset)
            if scol is not None
            else np.asarray(["study 1"] * len(df), dtype=object)
        )
        tl = [_class_label(v, f"{rowname(i)}, column {tcol}") for i, v in df[tcol].items()]
        pl = [_class_label(v, f"{rowname(i)}, column {pcol}") for i, v in df[pcol].items()]
        where: dict[str, str] = {}
        for i, lab in zip(df.index, tl, strict=True):
            where.setdefault(lab, f"{rowname(i)}, column {tcol}")
        true_found = list(dict.fromkeys(tl))
        for i, lab in zip(df.index, pl, strict=True):
            where.setdefault(lab, f"{rowname(i)}, column {pcol}")
            if (
                classes is None
                and lab not in true_found
                and lab.lower() not in {t.lower() for t in true_found}
            ):
                raise DTADataError(
                    f"{rowname(i)}, column {pcol}: predicted class {lab!r} is never a true "
                    f"class (column {tcol}: {', '.join(true_found)}); check the labels or give "
                    "classes="
                )
        order, how = _order_classes(true_found + pl, classes, where, f"column {tcol!r}")
        studies = tuple(dict.fromkeys(str(s) for s in studies_col))
        k = len(order)
        counts = np.full((len(studies), k, k), -1, dtype=np.int64)
        first_row: dict[tuple[int, int, int], Any] = {}
        s_index = {s: i for i, s in enumerate(studies)}
        c_index = {c: i for i, c in enumerate(order)}
        for r, (idx, s, a, b) in enumerate(zip(df.index, studies_col, tl, pl, strict=True)):
            key = (s_index[str(s)], c_index[a], c_index[b])
            if key in first_row:
                raise DTADataError(
                    f"{rowname(idx)}: study {s!r}, true {a!r}, predicted {b!r} repeats "
                    f"{rowname(first_row[key])}; give each cell once"
                )
            first_row[key] = idx
            counts[key] = n[r]
        missing = np.argwhere(counts < 0)
        if len(missing):
            s, a, b = missing[0]
            raise DTADataError(
                f"study {studies[s]!r}: no row for true {order[a]!r}, predicted {order[b]!r} "
                f"(column {ccol}); every study needs all {k}x{k} cells (write 0 for an empty "
                f"cell); {len(missing)} cell(s) missing in all"
            )
        ignored = [c for c in cols if c not in (scol, tcol, pcol, ccol)]
    else:
        if tcol is not None or pcol is not None or ccol is not None:
            have = [c for c in (tcol, pcol, ccol) if c is not None]
            lacking = [
                w
                for w, c in (("true class", tcol), ("predicted class", pcol), ("count", ccol))
                if c is None
            ]
            raise DTADataError(
                f"columns {have} look like a long confusion table but no {' / '.join(lacking)} "
                f"column was found; name it with true= / predicted= / count="
            )
        info["format"] = "wide format (one row per study)"
        known = None if classes is None else [str(c).strip() for c in classes]
        cells: dict[str, tuple[str, str]] = {}
        ignored = []
        for c in cols:
            if c == scol:
                continue
            parsed = None
            for sp_ in CELL_SEPARATORS:
                if sp_ in c:
                    a, b = c.split(sp_, 1)
                    parsed = (a.strip(), b.strip())
                    break
            if parsed is None and known is not None and "_" in c:
                for a in known:
                    if c.startswith(a + "_") and c[len(a) + 1 :] in known:
                        parsed = (a, c[len(a) + 1 :])
            if parsed is None or not parsed[0] or not parsed[1]:
                ignored.append(c)
            else:
                cells[c] = parsed
        if not cells:
            raise DTADataError(
                f"no confusion cells found: give a long table (columns study, true, predicted, "
                f"count) or wide cell columns named '<true>-><predicted>'; columns are {cols}"
            )
        where = {}
        for c, (a, b) in cells.items():
            where.setdefault(a, f"column {c!r}")
            where.setdefault(b, f"column {c!r}")
        true_found = list(dict.fromkeys(a for a, _ in cells.values()))
        pred_found = list(dict.fromkeys(b for _, b in cells.values()))
        if classes is None:
            for b in pred_found:
                if b not in true_found:
                    raise DTADataError(
                        f"{where[b]}: predicted class {b!r} is never a true class "
                        f"({', '.join(true_found)}); check the labels or give classes="
                    )
        order, how = _order_classes(true_found + pred_found, classes, where, "the cell columns")
        k = len(order)
        col_of: dict[tuple[str, str], str] = {}
        for c, ab in cells.items():
            if ab in col_of:
                raise DTADataError(f"columns {col_of[ab]!r} and {c!r} are the same cell")
            col_of[ab] = c
        for a in order:
            for b in order:
                if (a, b) not in col_of:
                    raise DTADataError(
                        f"no column for true {a!r}, predicted {b!r} (e.g. '{a}->{b}'); a wide "
                        f"table needs all {k}x{k} cell columns"
                    )
        studies_col = (
            _labels(df[scol], scol, line_offset)
            if scol is not None
            else np.asarray([f"study {i + 1}" for i in range(len(df))], dtype=object)
        )
        studies = tuple(str(s) for s in studies_col)
        if len(set(studies)) != len(studies):
            dup = next(s for s in studies if studies.count(s) > 1)
            rows = [rowname(i) for i, s in zip(df.index, studies, strict=True) if s == dup]
            raise DTADataError(
                f"{rows[1]}, column {scol}: study {dup!r} repeats {rows[0]}; a wide table has "
                "one row per study"
            )
        counts = np.zeros((len(studies), k, k), dtype=np.int64)
        for a_i, a in enumerate(order):
            for b_i, b in enumerate(order):
                c = col_of[(a, b)]
                counts[:, a_i, b_i] = _as_counts(df[c], c, line_offset, c)
        info["cells"] = f"{k * k} columns like {col_of[(order[0], order[1])]!r}"
    info["class_order"] = how
    info["ignored_columns"] = ignored
    empty = [order[i] for i in range(k) if counts[:, i, :].sum() == 0]
    if empty:
        raise DTADataError(
            f"class {empty[0]!r} has no participants in any study (its true-class rows are all "
            "0): check the labels, or leave the class out"
        )
    return ConfusionData(_readonly(counts), order, studies, source, info)


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
                    f"TP={int(tp[i])}, TN={int(tn[i])})"
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
