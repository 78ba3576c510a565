"""Atomic writes: every output appears whole or not at all.

Stages write into a temporary sibling path and rename it over the target at the
end, so an interrupted or failing stage never leaves a half-written output that
DVC (or a reader) could mistake for a result.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


class NonFiniteResultError(ValueError):
    """Raised when a result about to be written contains NaN or infinity."""


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".tmp-{path.name}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    tmp = _tmp_sibling(path, suffix=path.suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces directory ``path`` only on success.

    An existing ``path`` is removed only after the new content is complete. A
    ``.gitignore`` already in ``path`` is carried over: DVC keeps its entries for the
    folder's outputs there and does not write them again when a stage re-runs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-", dir=path.parent))
    try:
        yield tmp
        if (path / ".gitignore").is_file() and not (tmp / ".gitignore").exists():
            shutil.copy2(path / ".gitignore", tmp / ".gitignore")
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".old-{path.name}-", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def _check_finite(obj: Any, where: str = "$") -> None:
    if isinstance(obj, float) and not math.isfinite(obj):
        raise NonFiniteResultError(f"non-finite value {obj!r} at {where}")
    if isinstance(obj, dict):
        for k, v in obj.items():
            _check_finite(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_finite(v, f"{where}[{i}]")


def _to_builtin(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _to_builtin(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_builtin(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # torch tensors
        return obj.tolist()
    return obj


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as sorted, indented JSON atomically; refuse NaN and infinity."""
    obj = _to_builtin(obj)
    _check_finite(obj)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text())


def write_table(df, path: str | os.PathLike) -> None:
    """Write a pandas DataFrame atomically as parquet or CSV (by suffix); refuse NaN/inf
    in float columns."""
    path = Path(path)
    num = df.select_dtypes(include=["number"])
    if len(num.columns):
        values = num.to_numpy(dtype=float, na_value=np.nan)
        if not np.isfinite(values).all():
            bad = [c for c in num.columns if not np.isfinite(num[c].to_numpy(dtype=float, na_value=np.nan)).all()]
            raise NonFiniteResultError(f"table {path.name}: non-finite values in column(s) {bad}")
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            df.to_csv(tmp, index=False, lineterminator="\n")
        else:
            raise ValueError(f"unsupported table format {path.suffix!r} for {path}")


def read_table(path: str | os.PathLike):
    import pandas as pd

    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
