"""The one registry of factors: built-in ones and those a user defines in ``params.yaml``.

Every module that needs factor names -- the audit, validation, the gate, the report --
asks this registry instead of keeping its own list.

Built-in factors
----------------
``digit_color``, ``bg_color``, ``position``
    Set by the Biased-MNIST renderer (:mod:`shortcut_audit.factors.biased_mnist`).
``watermark``, ``watermark_opacity``, ``watermark_y``, ``watermark_text``
    The ImageNet-W text watermark and its aspects (:mod:`shortcut_audit.factors.watermark`).

Your own factor
---------------
Write one function ``f(images, values) -> images`` (images ``(m, C, H, W)`` in
``[0, 1]``, values ``(m,)``: level indices for levels, numbers for a range) and name
it in the ``factors`` section of ``params.yaml``::

    factors:
      red_border:
        function: my_factors.py:red_border   # a .py file (relative to the repository) or module:function
        levels: [none, thin, thick]           # categorical level names, or  range: [0.0, 1.0]
        neutral: none                         # value of an image nobody intervened on (default: first level / low)
        intervention: [thick]                 # what do(factor) draws from (default: every level / the range)
        description: a red frame of 0, 2 or 4 pixels

The function receives level *indices* (0 = none, 1 = thin, 2 = thick here) as an
``int64`` tensor, or the numbers of a range as ``float32``.

Then list it where a stage audits factors (``audit.factors`` for Biased-MNIST).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shortcut_audit.config import ParamError, get
from shortcut_audit.factors.base import Factor, FactorError, ImageFactor, image_factor

__all__ = ["FactorRegistry", "builtin_registry", "factor_registry", "load_function"]

CUSTOM_KEYS = ("function", "levels", "range", "neutral", "intervention", "description")


@dataclass(frozen=True)
class FactorRegistry:
    """Factors by name, with the image factor that applies each (None: the Biased-MNIST renderer).

    Attributes
    ----------
    factors : mapping
        ``name -> Factor`` in registration order.
    appliers : mapping
        ``name -> ImageFactor`` for factors applied to images, ``None`` for renderer factors.
    """

    factors: Mapping[str, Factor]
    appliers: Mapping[str, ImageFactor | None]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.factors)

    @property
    def renderer_names(self) -> tuple[str, ...]:
        """Factors the Biased-MNIST renderer sets."""
        return tuple(n for n, a in self.appliers.items() if a is None)

    def __contains__(self, name: object) -> bool:
        return name in self.factors

    def factor(self, name: str) -> Factor:
        self.check([name])
        return self.factors[name]

    def display_name(self, name: str) -> str:
        """Readable name of a factor (an unknown name is shown with spaces)."""
        factor = self.factors.get(name)
        return factor.display_name if factor is not None else str(name).replace("_", " ")

    def check(self, names: Iterable[str], key: str | None = None) -> tuple[str, ...]:
        """``names`` as a tuple if each is registered, unique and the list non-empty.

        Raises :class:`~shortcut_audit.config.ParamError` naming ``key`` when given,
        else :class:`FactorError`, with the known names and a "did you mean".
        """
        names = (names,) if isinstance(names, str) else tuple(names)
        problem = None
        if not names:
            problem = f"no factor given; known factors: {', '.join(self.names)}"
        elif len(set(names)) != len(names):
            problem = f"a factor is listed twice: {list(names)}"
        else:
            for name in names:
                if name not in self.factors:
                    close = difflib.get_close_matches(str(name), self.names, n=1)
                    hint = f" (did you mean {close[0]!r}?)" if close else ""
                    problem = f"unknown factor {name!r}{hint}; known factors: {', '.join(self.names)}"
                    break
        if problem is not None:
            if key is not None:
                raise ParamError(key, problem)
            raise FactorError(problem)
        return names

    def image_factors(self, names: Sequence[str]) -> tuple[ImageFactor, ...]:
        """The image factors needed to set ``names``, each once, in registration order."""
        self.check(names)
        wanted = {id(self.appliers[n]) for n in names if self.appliers[n] is not None}
        out: list[ImageFactor] = []
        for applier in self.appliers.values():
            if applier is not None and id(applier) in wanted and all(applier is not o for o in out):
                out.append(applier)
        return tuple(out)


def _register(factors: dict, appliers: dict, items: Iterable[tuple[Factor, ImageFactor | None]]) -> None:
    for factor, applier in items:
        if factor.name in factors:
            raise FactorError(f"factor {factor.name!r} is defined twice")
        factors[factor.name] = factor
        appliers[factor.name] = applier


def _builtin_items() -> list[tuple[Factor, ImageFactor | None]]:
    from shortcut_audit.factors.biased_mnist import RENDERER_FACTORS
    from shortcut_audit.factors.watermark import WATERMARK

    return [(f, None) for f in RENDERER_FACTORS] + [(f, WATERMARK) for f in WATERMARK.factors]


def builtin_registry() -> FactorRegistry:
    """The built-in factors only."""
    factors: dict[str, Factor] = {}
    appliers: dict[str, ImageFactor | None] = {}
    _register(factors, appliers, _builtin_items())
    return FactorRegistry(factors, appliers)


def load_function(reference: str, root: str | Path = ".") -> Callable:
    """The function named by ``"file.py:name"`` (relative to ``root``) or ``"package.module:name"``.

    Raises
    ------
    FactorError
        When the reference is malformed, the file or module cannot be imported, or
        the name is missing or not callable.
    """
    if not isinstance(reference, str) or reference.count(":") != 1:
        raise FactorError(f"expected 'file.py:function' or 'module:function', got {reference!r}")
    where, name = reference.split(":")
    try:
        if where.endswith(".py"):
            path = (Path(root) / where).resolve()
            if not path.is_file():
                raise FactorError(f"{reference!r}: file {path} not found")
            module_name = f"shortcut_audit_user_factors.{path.stem}"
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise FactorError(f"{reference!r}: cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(where)
    except FactorError:
        raise
    except Exception as err:  # the user's module failed to import: say where
        raise FactorError(f"{reference!r}: importing {where} failed: {type(err).__name__}: {err}") from err
    function = getattr(module, name, None)
    if not callable(function):
        raise FactorError(f"{reference!r}: {where} has no function {name!r}")
    return function


def _custom_factor(name: str, spec: object, root: str | Path) -> ImageFactor:
    key = f"factors.{name}"
    if not isinstance(spec, Mapping):
        raise ParamError(key, f"expected a mapping with {', '.join(CUSTOM_KEYS)}, got {spec!r}")
    unknown = [k for k in spec if k not in CUSTOM_KEYS]
    if unknown:
        close = difflib.get_close_matches(str(unknown[0]), CUSTOM_KEYS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ParamError(f"{key}.{unknown[0]}", f"unknown key{hint}; known: {', '.join(CUSTOM_KEYS)}")
    if "function" not in spec:
        raise ParamError(f"{key}.function", "missing: name the function as 'file.py:function' or 'module:function'")
    levels, value_range = spec.get("levels"), spec.get("range")
    if (levels is None) == (value_range is None):
        raise ParamError(key, "give either levels: [..] (categorical) or range: [low, high] (continuous)")
    if levels is not None and (not isinstance(levels, list) or not levels):
        raise ParamError(f"{key}.levels", f"expected a non-empty list of level names, got {levels!r}")
    if value_range is not None and (
        not isinstance(value_range, list)
        or len(value_range) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value_range)
    ):
        raise ParamError(f"{key}.range", f"expected [low, high], got {value_range!r}")
    intervention, neutral = spec.get("intervention"), spec.get("neutral")
    if intervention is not None and not isinstance(intervention, list):
        raise ParamError(f"{key}.intervention", f"expected a list, got {intervention!r}")
    if levels is not None:  # values named in params are level names, never indices
        intervention = None if intervention is None else [str(v) for v in intervention]
        neutral = None if neutral is None else str(neutral)
    try:
        function = load_function(spec["function"], root)
        return image_factor(
            name,
            function,
            levels=None if levels is None else [str(v) for v in levels],
            value_range=None if value_range is None else (float(value_range[0]), float(value_range[1])),
            neutral=neutral,
            intervention=intervention,
            description=str(spec.get("description", "")),
        )
    except FactorError as err:
        raise ParamError(key, str(err)) from None


def factor_registry(params: Mapping | None = None, root: str | Path = ".") -> FactorRegistry:
    """Built-in factors plus the ``factors`` section of ``params`` (functions imported from ``root``)."""
    factors: dict[str, Factor] = {}
    appliers: dict[str, ImageFactor | None] = {}
    _register(factors, appliers, _builtin_items())
    custom = {} if params is None else (get(params, "factors", {}) or {})
    if not isinstance(custom, Mapping):
        raise ParamError("factors", f"expected a mapping of factor name -> definition, got {custom!r}")
    for name, spec in custom.items():
        if name in factors:
            raise ParamError(f"factors.{name}", "a built-in factor has this name; choose another")
        group = _custom_factor(str(name), spec, root)
        _register(factors, appliers, [(group.factors[0], group)])
    return FactorRegistry(factors, appliers)
