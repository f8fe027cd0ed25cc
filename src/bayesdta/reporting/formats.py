"""Table formats of the report: CSV, LaTeX, Markdown and HTML renderings of a DataFrame.

Shared by the analysis runner (:mod:`bayesdta.reporting.report`) and the sensitivity sweeps
(:mod:`bayesdta.reporting.sensitivity`).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["fmt", "html_table", "to_latex", "to_markdown", "write_table"]


def fmt(x: Any, digits: int, column: str = "") -> str:
    """One table cell as text: numbers rounded to ``digits`` decimals, missing values empty."""
    if x is None or x is pd.NA or x is pd.NaT:
        return ""
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        f = float(x)
        if math.isnan(f):
            return ""
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if "ess_" in column or column in ("n_rows", "n_studies", "divergences", "seed"):
            return f"{f:.0f}"
        if f != 0 and abs(f) < 10 ** (-digits):
            return f"{f:.{max(digits - 1, 1)}e}"
        return f"{f:.{digits}f}"
    return str(x)


def _latex_escape(s: str) -> str:
    rep = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(rep.get(c, c) for c in str(s))


def to_latex(
    df: pd.DataFrame,
    *,
    index: bool = True,
    digits: int = 3,
    caption: str | None = None,
    label: str | None = None,
) -> str:
    """A booktabs LaTeX table (needs the booktabs package); numbers rounded to ``digits``."""
    frame = df.reset_index() if index else df
    cols = [str(c) for c in frame.columns]
    align = "".join("r" if pd.api.types.is_numeric_dtype(frame[c]) else "l" for c in frame.columns)
    lines = [r"\begin{table}[ht]", r"\centering"] if caption else []
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
        if label:
            lines.append(rf"\label{{{label}}}")
    lines += [rf"\begin{{tabular}}{{{align}}}", r"\toprule"]
    lines.append(" & ".join(_latex_escape(c) for c in cols) + r" \\")
    lines.append(r"\midrule")
    for _, row in frame.iterrows():
        cells = [_latex_escape(fmt(row[c], digits, str(c))) for c in frame.columns]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame, *, index: bool = True, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table; numbers rounded to ``digits``."""
    frame = df.reset_index() if index else df
    cols = [str(c) for c in frame.columns]
    num = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    lines = [
        "| " + " | ".join(_md_cell(c) for c in cols) + " |",
        "|" + "|".join("---:" if n else "---" for n in num) + "|",
    ]
    for _, row in frame.iterrows():
        cells = [_md_cell(fmt(row[c], digits, str(c))) for c in frame.columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def html_table(df: pd.DataFrame, *, index: bool = True, digits: int = 3) -> str:
    """A table as an HTML ``<table>`` (numbers right-aligned, rounded to ``digits``)."""
    frame = df.reset_index() if index else df
    num = [pd.api.types.is_numeric_dtype(frame[c]) for c in frame.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        tds = "".join(
            f'<td class="{"num" if n else "txt"}">{html.escape(fmt(row[c], digits, str(c)))}</td>'
            for c, n in zip(frame.columns, num, strict=True)
        )
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def write_table(
    df: pd.DataFrame,
    stem: str | Path,
    *,
    formats: Sequence[str] = ("csv", "latex"),
    index: bool = True,
    digits: int = 3,
    caption: str | None = None,
) -> list[Path]:
    """Write a table as CSV (full precision), LaTeX and/or Markdown (rounded).

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    stem : path
        Path without extension (``.csv``, ``.tex``, ``.md`` are appended).
    formats : sequence of {"csv", "latex", "md"}
        What to write.
    index : bool
        Write the index as the first column.
    digits : int
        Decimals of the LaTeX / Markdown numbers.
    caption : str, optional
        LaTeX caption (a ``table`` float is written when given).

    Returns
    -------
    list of Path
    """
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    out = []
    for fmt in formats:
        if fmt == "csv":
            p = stem.with_name(stem.name + ".csv")
            df.to_csv(p, index=index, float_format="%.17g", lineterminator="\n")
        elif fmt == "latex":
            p = stem.with_name(stem.name + ".tex")
            p.write_text(to_latex(df, index=index, digits=digits, caption=caption))
        elif fmt == "md":
            p = stem.with_name(stem.name + ".md")
            p.write_text(to_markdown(df, index=index, digits=digits))
        else:
            raise ValueError(f"unknown table format {fmt!r}")
        out.append(p)
    return out


# ------------------------------------------------------------------------------ helpers
