"""Turning DataFrames into sortable HTML tables (a plain data model for the templates).

Cells carry their display text and a sort key, so the inline sorter orders numbers
as numbers whatever their formatting. Any table can be rendered: the ImageNet and
validation tables are read generically, whatever columns they have.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Cell:
    """One table cell: display ``text``, numeric ``sort`` key (None for text) and CSS class."""

    text: str
    sort: float | None = None
    css: str = ""


@dataclass(frozen=True)
class Table:
    """A captioned table; ``note`` says when rows were left out."""

    id: str
    caption: str
    columns: list[str]
    numeric: list[bool]
    rows: list[list[Cell]]
    note: str = ""
    sortable: bool = True
    css: str = ""
    print_rows: int | None = None
    print_note: str = ""


@dataclass(frozen=True)
class TableStyle:
    """Per-column display overrides: labels and column classes."""

    labels: dict[str, str] = field(default_factory=dict)
    status_columns: tuple[str, ...] = ()


def format_number(value: float, digits: int = 3) -> str:
    """Compact, stable number formatting: integers plainly, others to ``digits`` decimals."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}" if abs(value) >= 10_000 else str(int(value))
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) < 10**-digits:
        return f"{value:.1e}"
    return f"{value:.{digits}f}"


def format_cell(value, status: bool = False) -> Cell:
    """Format one value; booleans become yes/no, ``status`` columns get a status class."""
    if isinstance(value, (bool, np.bool_)):
        return Cell("yes" if value else "no", float(value), "bool-yes" if value else "bool-no")
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        number = float(value)
        if math.isnan(number):
            return Cell("", None)
        return Cell(format_number(number), number)
    text = "" if value is None else str(value)
    return Cell(text, None, f"status-{text.lower()}" if status and text else "")


def from_frame(
    df: pd.DataFrame,
    id: str,
    caption: str,
    *,
    max_rows: int = 200,
    style: TableStyle | None = None,
    sortable: bool = True,
    css: str = "",
    print_rows: int | None = None,
    source: str = "",
) -> Table:
    """Build a :class:`Table` from ``df`` showing at most ``max_rows`` rows.

    Parameters
    ----------
    df : DataFrame
        Any table; column order is kept.
    id : str
        HTML id of the table.
    caption : str
        What the table holds and what to look for.
    max_rows : int
        Longer tables are cut, with a note saying how many rows were left out.
    print_rows : int, optional
        The PDF shows only this many rows (the HTML all of them), with a note naming
        ``source``, the file that holds every row; for long reference tables.
    """
    style = style or TableStyle()
    shown = df.head(max_rows)
    columns = [str(c) for c in df.columns]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    rows = [
        [format_cell(v, str(c) in style.status_columns) for c, v in zip(df.columns, record)]
        for record in shown.itertuples(index=False, name=None)
    ]
    note = f"First {max_rows} of {len(df)} rows shown." if len(df) > max_rows else ""
    labels = [style.labels.get(c, c.replace("_", " ")) for c in columns]
    print_note = ""
    if print_rows is not None and len(rows) > print_rows:
        where = f"the HTML report and {source}" if source else "the HTML report"
        print_note = f"First {print_rows} of {len(df)} rows printed; {where} hold every row."
    return Table(id, caption, labels, numeric, rows, note, sortable, css, print_rows, print_note)
