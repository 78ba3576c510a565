"""Reading and checking ``params.yaml``.

:func:`load_params` refuses a file that is not valid YAML (:class:`ParamsSyntaxError`,
naming the file, line and column) or that holds a key no stage reads (checked against
the one declaration in :mod:`shortcut_audit.params_schema`). Every stage then validates
the values it uses *before* doing any work, and a bad value raises :class:`ParamError`
naming the full dotted key and what is expected.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

_MISSING = object()


class ParamError(ValueError):
    """An invalid, missing or unknown value in ``params.yaml``; the message names the key."""

    def __init__(self, key: str, message: str, source: str = "params.yaml"):
        self.key = key
        super().__init__(f"{source}: {key}: {message}")


class ParamsSyntaxError(ParamError):
    """``params.yaml`` is not valid YAML; the message names the file, line and column."""

    def __init__(self, path: str | os.PathLike, line: int | None, column: int | None, problem: str):
        self.path, self.line, self.column = str(path), line, column
        where = "position unknown" if line is None else f"line {line}, column {column}"
        super().__init__(where, f"YAML syntax error: {problem}", source=self.path)


def _parse_yaml(path: Path) -> Any:
    try:
        with open(path) as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = " ".join(str(p) for p in (getattr(err, "context", None), getattr(err, "problem", None)) if p)
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
        raise ParamsSyntaxError(path, line, column, problem or str(err)) from None
    except UnicodeDecodeError as err:
        raise ParamsSyntaxError(path, None, None, f"not UTF-8 text ({err.reason})") from None


def load_params(path: str | os.PathLike = "params.yaml") -> dict:
    """Load ``params.yaml`` as a dict (empty file -> ``{}``) and check its keys.

    Raises
    ------
    FileNotFoundError
        No such file.
    ParamsSyntaxError
        The file is not valid YAML (names the line and column).
    ParamError
        The file does not hold a mapping, or holds a key that is not declared in
        :data:`shortcut_audit.params_schema.KNOWN_KEYS` (named, with "did you mean").
    """
    from shortcut_audit.params_schema import check_known_keys

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: params file not found (run from the repository root)")
    data = _parse_yaml(path) or {}
    if not isinstance(data, dict):
        raise ParamError("<root>", "the file must hold a mapping of sections", source=str(path))
    check_known_keys(data, source=str(path))
    return data


def get(params: Mapping, key: str, default: Any = _MISSING) -> Any:
    """Return the value at dotted ``key``; raise ParamError if absent and no default."""
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _MISSING:
                raise ParamError(key, "missing")
            return default
        node = node[part]
    return node


def require(
    params: Mapping,
    key: str,
    kind: type | tuple[type, ...],
    check: Callable[[Any], bool] | None = None,
    expect: str = "",
    default: Any = _MISSING,
) -> Any:
    """Fetch dotted ``key``, check its type and an optional predicate.

    ``bool`` is never accepted where a number is expected.
    """
    value = get(params, key, default)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ParamError(key, f"expected {expect or _names(kinds)}, got {value!r}")
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds):
        raise ParamError(key, f"expected {expect or _names(kinds)}, got {value!r}")
    if check is not None and not check(value):
        raise ParamError(key, f"expected {expect or 'a valid value'}, got {value!r}")
    return value


def require_choice(params: Mapping, key: str, choices: Iterable[str], default: Any = _MISSING) -> str:
    choices = list(choices)
    value = get(params, key, default)
    if value not in choices:
        raise ParamError(key, f"unknown value {value!r}; known: {', '.join(map(str, choices))}")
    return value


def require_names(params: Mapping, key: str, known: Iterable[str] | None = None, default: Any = _MISSING) -> list[str]:
    """A non-empty list of unique names at dotted ``key``, each among ``known`` when given."""
    value = get(params, key, default)
    known = None if known is None else list(known)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        among = f" from {known}" if known is not None else ""
        raise ParamError(key, f"expected a non-empty list of names{among}, got {value!r}")
    if known is not None:
        unknown = [v for v in value if v not in known]
        if unknown:
            raise ParamError(key, f"unknown value(s) {unknown}; known: {', '.join(known)}")
    if len(set(value)) != len(value):
        raise ParamError(key, f"duplicate entries in {value!r}")
    return list(value)


def _names(kinds: tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kinds)
