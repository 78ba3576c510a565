"""Factories for the checks the suites share, named as a reader would say them.

Every factory returns :class:`~shortcut_audit.validation.gx.Check` objects (plain data,
no GX import) whose names start with the table they apply to, e.g.
``"morris: mu_star >= 0"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

from shortcut_audit.validation.gx import Check

_INFINITIES = [math.inf, -math.inf]


def has_columns(table: str, columns: Sequence[str]) -> list[Check]:
    """One check per required column: it exists."""
    return [Check(f"{table}: has column {c}", "ExpectColumnToExist", {"column": c}) for c in columns]


def non_empty(table: str) -> Check:
    return Check(f"{table}: not empty", "ExpectTableRowCountToBeBetween", {"min_value": 1})


def row_count(table: str, n: int) -> Check:
    return Check(f"{table}: {n} rows", "ExpectTableRowCountToEqual", {"value": int(n)})


def finite(table: str, column: str) -> list[Check]:
    """The column holds no missing value, NaN or infinity."""
    return [
        Check(f"{table}: {column} not NaN", "ExpectColumnValuesToNotBeNull", {"column": column}),
        Check(
            f"{table}: {column} not inf", "ExpectColumnValuesToNotBeInSet", {"column": column, "value_set": _INFINITIES}
        ),
    ]


def between(table: str, column: str, low: float | None = None, high: float | None = None, label: str = "") -> Check:
    """``low <= column <= high`` (either bound may be open)."""
    if low is None and high is None:
        raise ValueError("between() needs at least one bound")
    if label:
        text = label
    elif high is None:
        text = f"{column} >= {low:g}"
    elif low is None:
        text = f"{column} <= {high:g}"
    else:
        text = f"{column} in [{low:g}, {high:g}]"
    kwargs: dict[str, str | float] = {"column": column}
    if low is not None:
        kwargs["min_value"] = float(low)
    if high is not None:
        kwargs["max_value"] = float(high)
    return Check(f"{table}: {text}", "ExpectColumnValuesToBeBetween", kwargs)


def in_set(table: str, column: str, values: Iterable, label: str = "") -> Check:
    values = sorted(values, key=str)
    text = label or f"{column} in {values if len(values) <= 12 else f'{len(values)} known values'}"
    return Check(f"{table}: {text}", "ExpectColumnValuesToBeInSet", {"column": column, "value_set": values})


def all_true(table: str, column: str, label: str) -> Check:
    """Every value of a boolean column is True (derived tables use this for
    per-row conditions)."""
    return Check(f"{table}: {label}", "ExpectColumnValuesToBeInSet", {"column": column, "value_set": [True]})


def pair_equal(table: str, a: str, b: str, label: str) -> Check:
    """``a == b`` row by row."""
    return Check(f"{table}: {label}", "ExpectColumnPairValuesToBeEqual", {"column_A": a, "column_B": b})


def pair_at_most(table: str, small: str, large: str, label: str) -> Check:
    """``small <= large`` row by row."""
    return Check(
        f"{table}: {label}",
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": large, "column_B": small, "or_equal": True},
    )


def mean_at_least(table: str, column: str, low: float, label: str) -> Check:
    return Check(f"{table}: {label}", "ExpectColumnMeanToBeBetween", {"column": column, "min_value": float(low)})


def unique(table: str, column: str) -> Check:
    return Check(f"{table}: {column} unique", "ExpectColumnValuesToBeUnique", {"column": column})


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    """Numeric, non-boolean columns of ``frame``."""
    return [
        c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
    ]


def all_numeric_finite(table: str, frame: pd.DataFrame) -> list[Check]:
    """Finite-value checks for every numeric column of ``frame``."""
    return [check for column in numeric_columns(frame) for check in finite(table, column)]
