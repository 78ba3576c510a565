"""Atomic writes and checked reads: every output appears whole or not at all.

Stages write into a temporary sibling path and rename it over the target at the
end, so an interrupted or failing stage never leaves a half-written output that
DVC (or a reader) could mistake for a result.

Temporary siblings are named ``.tmp-<output name>-<pid>-<random>`` (and
``.old-<output name>-<pid>-<random>`` for the previous version of a folder being
replaced). They are removed when the block fails, when the process receives SIGTERM
(turned into ``SystemExit(143)`` while a temporary exists, so ``finally`` blocks run;
SIGINT already raises ``KeyboardInterrupt``), and, when the process was killed
outright (SIGKILL, power loss), at the next write of the same output: stale siblings
of that output whose process is gone are swept first. DVC ignores them
(``.dvcignore``) and readers that list folders skip them (:func:`visible`).

Readers: :func:`read_csv` checks a CSV's structure (every row as wide as the header,
the file ends with a line break, i.e. was not cut mid-row) and reads the declared
columns with their declared types, naming the file, row and column of any value that
does not parse; :func:`load_npz` reads every array of an ``.npz`` or raises
:class:`ArtefactError` (a truncated archive raises many kinds of errors in NumPy).
:func:`save_npz` writes one (inside an atomic folder or path).
"""

from __future__ import annotations

import contextlib
import csv
import io as _io
import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

#: Name prefixes of the temporary siblings (see the module docstring).
TEMPORARY_PREFIXES = (".tmp-", ".old-")
#: Column types :func:`read_csv` knows.
CSV_DTYPES = ("str", "float", "int", "bool")
_TERMINATED_EXIT = 128 + signal.SIGTERM
_LIVE: set[Path] = set()  # temporaries of this process still in use


class NonFiniteResultError(ValueError):
    """Raised when a result about to be written contains NaN or infinity."""


class ArtefactError(ValueError):
    """An artefact that cannot be read as declared; the message names the file and,
    where one value is at fault, its row (1 = first after the header, line = row + 1)
    and column."""

    def __init__(self, path: str | os.PathLike, message: str, row: int | None = None, column: str | None = None):
        self.path, self.row, self.column = str(path), row, column
        where = "" if row is None else f", row {row} (line {row + 1})"
        where += "" if column is None else f", column {column!r}"
        super().__init__(f"{path}{where}: {message}")


# --------------------------------------------------------------------------- temporaries


def is_temporary(name: str) -> bool:
    """Whether a file or folder name is one of the temporary siblings of an output."""
    return name.startswith(TEMPORARY_PREFIXES)


def visible(paths: Iterable[str | os.PathLike], root: str | os.PathLike) -> list[Path]:
    """``paths`` (found by a glob or listing below ``root``) without those inside, or
    being, a temporary sibling."""
    root = Path(root)
    return [Path(p) for p in paths if not any(is_temporary(part) for part in Path(p).relative_to(root).parts)]


def _temporary_pattern(name: str, suffix: str = "") -> re.Pattern:
    return re.compile(rf"^\.(?:tmp|old)-{re.escape(name)}-(?:(\d+)-)?[a-z0-9_]+{re.escape(suffix)}$")


def _process_gone(pid: int) -> bool:
    if pid == os.getpid():
        return True  # ours but not in use (_LIVE is checked first)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False
    return False


def sweep_stale(path: str | os.PathLike, suffix: str = "") -> list[Path]:
    """Remove the temporary siblings of ``path`` left by processes that are gone.

    Only names of this module's pattern for exactly this output are considered;
    siblings of a live process (another writer) are kept. Returns what was removed.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = _temporary_pattern(path.name, suffix)
    removed = []
    for entry in path.parent.iterdir():
        match = pattern.match(entry.name)
        if match is None or entry in _LIVE:
            continue
        pid = match.group(1)
        if pid is not None and not _process_gone(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
        removed.append(entry)
    return removed


def _terminate(signum, frame):  # noqa: ARG001 - signal handler signature
    raise SystemExit(_TERMINATED_EXIT)


@contextlib.contextmanager
def _exit_on_sigterm() -> Iterator[None]:
    """While the block runs, SIGTERM raises ``SystemExit`` (so ``finally`` cleans up).

    Only in the main thread (where Python runs handlers) and only over the default
    disposition: a handler someone else installed, or an ignored signal, is kept.
    """
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is _terminate:  # not one installed meanwhile
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _remove(tmp: Path, owner: int) -> None:
    if os.getpid() != owner:  # a forked child (e.g. a data-loader worker) unwinding: not its temporary
        return
    _LIVE.discard(tmp)
    if tmp.is_dir() and not tmp.is_symlink():
        shutil.rmtree(tmp, ignore_errors=True)
    elif tmp.exists() or tmp.is_symlink():
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _tmp_sibling(path: Path, suffix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path, suffix)
    fd, name = tempfile.mkstemp(prefix=f".tmp-{path.name}-{os.getpid()}-", suffix=suffix, dir=path.parent)
    os.close(fd)
    _LIVE.add(Path(name))
    return Path(name)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary file path that replaces ``path`` only if the block succeeds."""
    path = Path(path)
    owner = os.getpid()
    tmp = _tmp_sibling(path, suffix=path.suffix)
    try:
        with _exit_on_sigterm():
            yield tmp
            os.replace(tmp, path)
    finally:
        _remove(tmp, owner)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces directory ``path`` only on success.

    An existing ``path`` is removed only after the new content is complete. A
    ``.gitignore`` already in ``path`` is carried over: DVC keeps its entries for the
    folder's outputs there and does not write them again when a stage re-runs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(path)
    owner = os.getpid()
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.name}-{owner}-", dir=path.parent))
    _LIVE.add(tmp)
    try:
        with _exit_on_sigterm():
            yield tmp
            if (path / ".gitignore").is_file() and not (tmp / ".gitignore").exists():
                shutil.copy2(path / ".gitignore", tmp / ".gitignore")
            if path.exists():
                old = Path(tempfile.mkdtemp(prefix=f".old-{path.name}-{owner}-", dir=path.parent))
                _LIVE.add(old)
                try:
                    os.replace(path, old / "x")
                    try:
                        os.replace(tmp, path)
                    except BaseException:
                        os.replace(old / "x", path)  # keep the previous output rather than none
                        raise
                finally:
                    _remove(old, owner)
            else:
                os.replace(tmp, path)
    finally:
        _remove(tmp, owner)


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


def read_table(path: str | os.PathLike, dtypes: Mapping[str, str] | None = None):
    """Read a parquet file, or a CSV with :func:`read_csv` (``dtypes`` as there)."""
    import pandas as pd

    path = Path(path)
    return pd.read_parquet(path) if path.suffix == ".parquet" else read_csv(path, dtypes)


def _csv_rows(name: str, text: str) -> list[list[str]]:
    """Rows of a CSV text, checked whole: a header, every row as wide as it, a final line break."""
    if not text.strip():
        raise ArtefactError(name, "empty file (not even a header)")
    if not text.endswith("\n"):
        raise ArtefactError(name, "does not end with a line break: the file was cut mid-row (an interrupted write?)")
    try:
        rows = list(csv.reader(_io.StringIO(text), strict=True))
    except csv.Error as err:
        raise ArtefactError(name, f"malformed CSV: {err}") from None
    header = rows[0]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ArtefactError(name, f"column name(s) {repeated} appear more than once in the header")
    for row, fields in enumerate(rows[1:], start=1):
        if len(fields) != len(header):
            what = "a blank line" if not fields else f"{len(fields)} field(s)"
            raise ArtefactError(
                name, f"{what} where the header has {len(header)} (a row cut short, or a stray separator)", row=row
            )
    return rows


def _parse_float(value: str) -> float:
    return math.nan if value == "" else float(value)


def _parse_int(value: str) -> float | int:
    if value == "":
        return math.nan
    try:
        return int(value)
    except ValueError:
        number = float(value)
        if not number.is_integer():
            raise ValueError(value) from None
        return int(number)


def _parse_bool(value: str) -> bool | None:
    if value == "":
        return None
    lowered = value.strip().lower()
    if lowered not in ("true", "false"):
        raise ValueError(value)
    return lowered == "true"


_PARSERS = {
    "float": (_parse_float, "a number"),
    "int": (_parse_int, "an integer"),
    "bool": (_parse_bool, "True or False"),
}


def _typed_column(name: str, column: str, texts: list[str], dtype: str):
    import pandas as pd

    if dtype == "str":
        return pd.Series(texts, dtype=object)
    parse, expected = _PARSERS[dtype]
    values = []
    for row, text in enumerate(texts, start=1):
        try:
            values.append(parse(text))
        except (ValueError, OverflowError):
            raise ArtefactError(name, f"{text!r} is not {expected}", row=row, column=column) from None
    if dtype == "float":
        return pd.Series(values, dtype="float64")
    if dtype == "int":
        missing = any(isinstance(v, float) for v in values)
        return pd.Series(values, dtype="float64" if missing else "int64")
    return pd.Series(values, dtype=object if any(v is None for v in values) else bool)


def read_csv(path: str | os.PathLike, dtypes: Mapping[str, str] | None = None, text: str | None = None):
    """Read a CSV file checked whole, with declared column types.

    Parameters
    ----------
    path : path
        The file (also the name used in messages when ``text`` is given).
    dtypes : mapping, optional
        Column -> one of :data:`CSV_DTYPES`. ``"str"``: the text as written (an empty
        field is ``""``, never NaN); ``"float"``/``"int"``: an empty field is NaN (an
        ``int`` column with one becomes float64); ``"bool"``: ``True``/``False`` (any
        case), an empty field is None (the column is then ``object``). Columns not
        declared are inferred by pandas as usual; declared columns absent from the
        file are ignored (schema checks belong to the reader's caller).
    text : str, optional
        The file's content, when it does not come from ``path`` (e.g. a git revision).

    Raises
    ------
    ArtefactError
        The file is empty, cut mid-row (no final line break, or a row with fewer or
        more fields than the header), has a repeated column name, is not UTF-8, or a
        declared value does not parse (names the row and column).
    """
    import pandas as pd

    name = str(path)
    dtypes = dict(dtypes or {})
    unknown = sorted({t for t in dtypes.values() if t not in CSV_DTYPES})
    if unknown:
        raise ValueError(f"unknown column type(s) {unknown}; known: {', '.join(CSV_DTYPES)}")
    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ArtefactError(name, f"not UTF-8 text ({err.reason})") from None
    rows = _csv_rows(name, text)
    header, body = rows[0], rows[1:]
    undeclared = [c for c in header if c not in dtypes]
    inferred = pd.read_csv(_io.StringIO(text), usecols=undeclared) if undeclared and body else None
    columns = {}
    for i, column in enumerate(header):
        if column in dtypes:
            columns[column] = _typed_column(name, column, [r[i] for r in body], dtypes[column])
        elif inferred is not None:
            columns[column] = inferred[column].reset_index(drop=True)
        else:
            columns[column] = pd.Series([], dtype=object)
    return pd.DataFrame(columns, columns=header)


def save_npz(path: str | os.PathLike, arrays: Mapping[str, np.ndarray]) -> None:
    """Write ``arrays`` to a compressed ``.npz``, one entry per name (``np.savez_compressed``).

    ``allow_pickle`` is passed at its default explicitly, so no name can be taken for it.
    """
    np.savez_compressed(path, allow_pickle=True, **arrays)


def load_npz(path: str | os.PathLike, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (or those of ``names`` it holds), read eagerly.

    Raises
    ------
    ArtefactError
        The archive cannot be decoded. A truncated or corrupt ``.npz`` fails in
        NumPy with errors of many kinds (``BadZipFile``, ``EOFError``, ``ValueError``,
        tokenizer errors of the header), so any error while decoding it is reported
        here as unreadable, naming the file and the error.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            wanted = npz.files if names is None else [n for n in names if n in npz.files]
            return {name: npz[name] for name in wanted}
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - see the docstring
        raise ArtefactError(path, f"unreadable archive ({type(err).__name__}: {err})") from None
