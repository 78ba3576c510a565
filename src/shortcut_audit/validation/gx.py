"""A small, lazy adapter around Great Expectations (GX 1.x).

Suites are described as plain data (:class:`Check` and :class:`CheckedTable`), so
building them costs nothing and needs no GX import. Only :func:`validate_tables`
imports GX, once per process, with anonymous usage statistics switched off, and
validates each table in an in-memory (ephemeral) data context that writes nothing
to disk.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

#: How many unexpected values GX keeps per expectation in the result JSON.
PARTIAL_UNEXPECTED_COUNT = 20


@dataclass(frozen=True)
class Check:
    """One expectation with a readable name.

    Parameters
    ----------
    name : str
        Readable, unique name within its suite, e.g. ``"morris: mu_star >= 0"``; it is
        what the summary table and the gate report when the check fails.
    expectation : str
        Name of the class in ``great_expectations.expectations``, e.g.
        ``"ExpectColumnValuesToBeBetween"``.
    kwargs : mapping
        Keyword arguments of that expectation (``column``, ``min_value``, ...).
    """

    name: str
    expectation: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckedTable:
    """A data frame and the checks to validate it against.

    ``id_columns`` name the columns that identify a row; GX reports their values for
    each unexpected row, so a failure says which dataset, split or model it concerns.
    """

    name: str
    frame: pd.DataFrame
    checks: tuple[Check, ...]
    id_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class SuiteResult:
    """Outcome of validating every table of one suite.

    ``document`` is the full JSON-ready result: ``success``, ``statistics`` and, per
    table, the GX validation result (each expectation, its observed values and up to
    :data:`PARTIAL_UNEXPECTED_COUNT` unexpected examples).
    """

    success: bool
    evaluated: int
    failed_checks: tuple[str, ...]
    document: dict


@lru_cache(maxsize=1)
def _gx():
    """Import GX once, with analytics off (the import alone takes seconds)."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations

    return great_expectations


def _ephemeral_context():
    gx = _gx()
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def _expectation_suite(name: str, checks: Sequence[Check]):
    gx = _gx()
    names = [c.name for c in checks]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"suite {name!r}: duplicated check names {duplicated}")
    suite = gx.ExpectationSuite(name=name)
    for check in checks:
        cls = getattr(gx.expectations, check.expectation, None)
        if cls is None:
            raise ValueError(f"check {check.name!r}: unknown GX expectation {check.expectation!r}")
        suite.add_expectation(cls(**dict(check.kwargs), description=check.name))
    return suite


def json_safe(obj: Any) -> Any:
    """Return ``obj`` with non-finite floats replaced by the strings ``"nan"``,
    ``"inf"`` and ``"-inf"`` (unexpected examples may hold them; JSON may not)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype"):  # numpy scalars
        return json_safe(obj.item())
    return obj


def validate_tables(suite: str, tables: Sequence[CheckedTable]) -> SuiteResult:
    """Validate each table against its checks with GX and merge the results.

    Parameters
    ----------
    suite : str
        Suite name, used to name the GX expectation suites (``<suite>.<table>``).
    tables : sequence of CheckedTable
        At least one table; check names must be unique across the suite.

    Returns
    -------
    SuiteResult
    """
    if not tables:
        raise ValueError(f"suite {suite!r}: nothing to validate")
    all_names = [c.name for t in tables for c in t.checks]
    if len(set(all_names)) != len(all_names):
        raise ValueError(f"suite {suite!r}: check names must be unique across its tables")
    context = _ephemeral_context()
    source = context.data_sources.add_pandas(name=suite)
    table_docs, failed, evaluated = [], [], 0
    for table in tables:
        asset = source.add_dataframe_asset(name=table.name)
        batch = asset.add_batch_definition_whole_dataframe(name="whole").get_batch(
            batch_parameters={"dataframe": table.frame}
        )
        result_format = {"result_format": "SUMMARY", "partial_unexpected_count": PARTIAL_UNEXPECTED_COUNT}
        if table.id_columns:
            result_format["unexpected_index_column_names"] = list(table.id_columns)
        result = batch.validate(_expectation_suite(f"{suite}.{table.name}", table.checks), result_format=result_format)
        doc = json_safe(result.to_json_dict())
        evaluated += len(doc["results"])
        failed += [r["expectation_config"]["description"] for r in doc["results"] if not r["success"]]
        table_docs.append({"table": table.name, "rows": int(len(table.frame)), **doc})
    order = {name: i for i, name in enumerate(all_names)}
    failed_checks = tuple(sorted(failed, key=order.__getitem__))
    document = {
        "suite": suite,
        "success": not failed_checks,
        "statistics": {"evaluated_expectations": evaluated, "unsuccessful_expectations": len(failed_checks)},
        "failed_expectations": list(failed_checks),
        "tables": table_docs,
    }
    return SuiteResult(success=not failed_checks, evaluated=evaluated, failed_checks=failed_checks, document=document)
