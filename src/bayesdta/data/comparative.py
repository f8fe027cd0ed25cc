"""Comparative accuracy data: several tests per study (paired or not), networks of tests.

A comparative table has one row per 2x2 table, a study column and a *test* column: the test
column identifies the tables of a study and is the comparison covariate at once. Studies may
evaluate any subset of the tests (a network when there are 3+ tests and not every study has
every test). :func:`read_comparative` validates such a table and says what it read: the tests,
the studies, which studies have which tests and whether the tests of a study look paired
(same diseased and non-diseased counts) -- nothing is merged or dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import DTADataError, SpecError
from .tables import DTAData

__all__ = ["ComparativeData", "read_comparative"]


@dataclass(frozen=True)
class ComparativeData:
    """A validated comparative table and what was read.

    Attributes
    ----------
    data : DTAData
        The 2x2 tables (row = one table of one test in one study; the model id is the test
        unless a separate model column names several tables of one test in a study).
    test : str
        The test column (in ``data.frame``).
    tests : list of str
        The tests, reference first (the reference is used for ordering only: every pair is
        reported in both directions).
    test_index : numpy.ndarray
        Per row, the position of its test in :attr:`tests`.
    studies_per_test : dict
        Test -> studies evaluating it.
    design : dict
        Study -> tuple of its tests (with repeats when a study has several tables of a test).
    paired : dict
        Study (with 2+ tests) -> True when every table of the study has the same numbers of
        diseased and non-diseased participants (consistent with a paired design: the same
        patients were given every test), else False.
    paired_declared : bool or None
        What the user declared (``None``: not declared).
    """

    data: DTAData
    test: str
    tests: list[str]
    test_index: np.ndarray
    studies_per_test: dict[str, list[str]]
    design: dict[str, tuple[str, ...]]
    paired: dict[str, bool]
    paired_declared: bool | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n_tests(self) -> int:
        """Number of tests."""
        return len(self.tests)

    @property
    def is_network(self) -> bool:
        """3+ tests and some study lacks some test."""
        full = all(set(t) >= set(self.tests) for t in self.design.values())
        return self.n_tests >= 3 and not full

    def design_table(self) -> pd.DataFrame:
        """Studies x tests: number of tables of each test in each study (0: not evaluated)."""
        rows = []
        for s, tests in self.design.items():
            row = {"study": s, **{t: tests.count(t) for t in self.tests}}
            row["paired"] = (
                "" if s not in self.paired else ("yes" if self.paired[s] else "no (n differ)")
            )
            rows.append(row)
        return pd.DataFrame(rows).set_index("study")

    def describe(self) -> str:
        """One line: tests, studies per test, multi-test studies, pairing."""
        per = ", ".join(f"{t} ({len(self.studies_per_test[t])} studies)" for t in self.tests)
        multi = [s for s, t in self.design.items() if len(set(t)) > 1]
        n_paired = sum(self.paired.values())
        kind = "network of" if self.is_network else "comparison of"
        line = (
            f"{kind} {self.n_tests} tests by column {self.test!r}: {per}; "
            f"{self.data.n_rows} tables from {self.data.n_studies} studies, "
            f"{len(multi)} studies with 2+ tests"
        )
        if multi:
            line += f" ({n_paired} with equal diseased/non-diseased counts across tests: paired"
            line += f", {len(multi) - n_paired} with different counts)"
        else:
            line += (
                " (no study compares tests directly: the comparison rests on differences "
                "between studies only, open to confounding by study characteristics)"
            )
        if self.paired_declared is not None:
            line += f"; declared paired={self.paired_declared}"
        single = [s for s, t in self.design.items() if len(set(t)) == 1]
        if single:
            line += f"; {len(single)} single-test studies (kept: they inform their test's mean)"
        return line


def _column(columns: list[str], name: str) -> str | None:
    """The column named ``name`` (exact, else ignoring case, spaces and underscores)."""
    if name in columns:
        return name

    def key(x: str) -> str:
        return "".join(ch for ch in str(x).lower() if ch.isalnum())

    hits = [c for c in columns if key(c) == key(name) and key(name)]
    if len(hits) > 1:
        raise DTADataError(f"column {name!r} matches several columns {hits}; name the one to use")
    return hits[0] if hits else None


def read_comparative(
    data: DTAData | pd.DataFrame | str | Path,
    *,
    test: str = "test",
    study: str | None = None,
    model: str | None = None,
    paired: bool | None = None,
    reference: str | None = None,
) -> ComparativeData:
    """Validate a comparative table of 2x2 counts.

    Parameters
    ----------
    data : DTAData, DataFrame or CSV path
        One row per 2x2 table.
    test : str
        Column naming the test of each table (default ``"test"``).
    study : str, optional
        Study id column (default: found by name, see :meth:`DTAData.from_frame`).
    model : str, optional
        A column telling apart several tables of *one test* in one study (e.g. two deep
        learning models both classed as test "DL"). Without it the test is the table id, and a
        study with two rows of the same test is an error.
    paired : bool, optional
        Declare the design: ``True`` requires every study with 2+ tests to have the same
        numbers of diseased and non-diseased participants in each of its tables (an error
        names the first study that has not); ``False`` / ``None`` accept both. The model is
        the same either way (see ``docs/comparative.md``): pairing is checked and reported.
    reference : str, optional
        Test listed first (default: the first in sorted order).

    Returns
    -------
    ComparativeData

    Raises
    ------
    DTADataError
        One line naming the row and column: the test column missing or empty in a row,
        duplicated (study, test) rows without a model column, fewer than two tests, a test
        evaluated in a single study, a declared paired study whose counts differ.
    """
    if isinstance(data, DTAData):
        cols = list(data.frame.columns)
        found = _column(cols, test)
        if found is None:
            raise DTADataError(
                f"test column {test!r} is not in the table; columns are {', '.join(cols)}"
            )
        d = data
        test_col = found
        names = [str(i + 1) for i in range(d.n_rows)]
    else:
        if isinstance(data, (str, Path)):
            from .tables import read_table

            frame = read_table(data)[0]
        elif isinstance(data, pd.DataFrame):
            frame = data
        else:
            raise DTADataError(
                f"data must be a DTAData, a DataFrame or a CSV path, got {type(data).__name__}"
            )
        cols = [str(c).replace("\ufeff", "").strip() for c in frame.columns]
        test_col = _column(cols, test)
        if test_col is None:
            raise DTADataError(
                f"test column {test!r} is not in the table; columns are {', '.join(cols)} "
                "(name it with test='<column>', in a spec [comparison] test = \"<column>\")"
            )
        if model is not None and _column(cols, model) == test_col:
            model = None

        def read(model_col: str) -> DTAData:
            if isinstance(data, (str, Path)):
                return DTAData.from_csv(data, study=study, model=model_col)
            return DTAData.from_frame(data, study=study, model=model_col)

        if model is None:
            # the test is the table id: a repeated (study, test) is refused by DTAData
            try:
                d = read(test_col)
            except DTADataError as exc:
                msg = str(exc)
                if "duplicated (study, model) pair" in msg:
                    msg += (
                        " -- a study has two tables of the same test: name the column that "
                        "tells them apart with model='<column>' (spec: [comparison] model)"
                    )
                raise DTADataError(msg) from None
        else:
            d = read(model)
        # rows named as DTAData names them: the file's data rows, or the DataFrame's index
        names = [str(x) for x in frame.index]
    tcol = d.frame[test_col]
    for i, v in enumerate(tcol.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or str(v).strip() == "":
            raise DTADataError(f"row {names[i]}, column {test_col}: missing test name")
    labels = [str(x).strip() for x in d.frame[test_col].tolist()]
    tests = sorted(set(labels))
    if len(tests) < 2:
        raise DTADataError(
            f"column {test_col}: only one test ({tests[0]!r}); a comparison needs two or more"
        )
    if reference is not None:
        if str(reference) not in tests:
            raise SpecError(f"reference test {reference!r} is not among the tests {tests}")
        tests = [str(reference)] + [t for t in tests if t != str(reference)]
    studies = [str(s) for s in d.frame["study"]]
    per_test: dict[str, list[str]] = {t: [] for t in tests}
    design: dict[str, list[str]] = {}
    for s, t in zip(studies, labels, strict=True):
        if s not in per_test[t]:
            per_test[t].append(s)
        design.setdefault(s, []).append(t)
    for t in tests:
        if len(per_test[t]) < 2:
            row = names[labels.index(t)]
            raise DTADataError(
                f"row {row}, column {test_col}: test {t!r} is evaluated in only one study "
                f"({per_test[t][0]!r}); its between-study spread cannot be estimated -- "
                "remove it or add studies"
            )
    n1, n0 = d.n_diseased, d.n_nondiseased
    paired_obs: dict[str, bool] = {}
    for s in design:
        rows = [i for i, x in enumerate(studies) if x == s]
        if len({labels[i] for i in rows}) < 2:
            continue
        same = len({int(n1[i]) for i in rows}) == 1 and len({int(n0[i]) for i in rows}) == 1
        paired_obs[s] = same
        if paired and not same:
            i = next(i for i in rows if n1[i] != n1[rows[0]] or n0[i] != n0[rows[0]])
            raise DTADataError(
                f"row {names[i]}, columns TP/FN/FP/TN: study {s!r} is declared paired but its "
                f"{labels[i]!r} table has {int(n1[i])} diseased / {int(n0[i])} non-diseased "
                f"against {int(n1[rows[0]])} / {int(n0[rows[0]])} for {labels[rows[0]]!r} "
                "(use paired=False or None for unpaired comparative studies)"
            )
    if paired and not paired_obs:
        raise DTADataError(
            f"column {test_col}: declared paired, but no study evaluates two or more tests"
        )
    index = np.array([tests.index(t) for t in labels], dtype=np.int64)
    return ComparativeData(
        data=d,
        test=test_col,
        tests=tests,
        test_index=index,
        studies_per_test=per_test,
        design={s: tuple(t) for s, t in design.items()},
        paired=paired_obs,
        paired_declared=paired,
        info={"labels": labels},
    )


def comparative_from_mapping(data: DTAData, options: Mapping[str, Any]) -> ComparativeData:
    """:func:`read_comparative` of validated data with options of a spec's [comparison]."""
    return read_comparative(
        data,
        test=options.get("test", "test"),
        paired=options.get("paired"),
        reference=options.get("reference"),
    )
