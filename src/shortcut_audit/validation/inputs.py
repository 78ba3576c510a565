"""Reading the inputs of a validation suite: a missing or unreadable one is a :class:`MissingInput`.

Tables are read through :mod:`shortcut_audit.schema` (declared columns and types), so a
file cut mid-row, a value that does not parse or an undeclared column names the file,
row and column instead of failing later as a wrong number.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from shortcut_audit import schema
from shortcut_audit.io import ArtefactError, load_npz

__all__ = ["MissingInput", "SuiteSkipped", "read_npy", "read_npz", "read_table", "require_file"]


class SuiteSkipped(Exception):
    """An optional input of the suite is absent; the message says which."""


class MissingInput(Exception):
    """A required input of the suite is missing or unreadable; the message says which."""


def require_file(path: Path) -> Path:
    """``path``, or :class:`MissingInput` when it is not a file."""
    if not path.is_file():
        raise MissingInput(f"required input {path} is missing")
    return path


def read_table(path: Path) -> pd.DataFrame:
    """A declared table (CSV or parquet) read through :mod:`shortcut_audit.schema`."""
    try:
        return schema.read(require_file(path))
    except (OSError, ValueError) as err:  # ArtefactError is a ValueError and names the row and column
        raise MissingInput(f"{path} is unreadable: {err}") from None


def read_npz(path: Path, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (all, or ``names``)."""
    try:
        return load_npz(path, names)
    except (OSError, ArtefactError) as err:
        raise MissingInput(f"{path} is unreadable: {err}") from None


def read_npy(path: Path, mmap_mode: Literal["r+", "r", "w+", "c"] | None = None) -> np.ndarray:
    """One ``.npy`` array (memory-mapped with ``mmap_mode``)."""
    try:
        return np.load(require_file(path), mmap_mode=mmap_mode, allow_pickle=False)
    except MissingInput:
        raise
    except Exception as err:  # noqa: BLE001 - a truncated .npy fails in NumPy with errors of many kinds
        raise MissingInput(f"{path} is unreadable: {type(err).__name__}: {err}") from None
