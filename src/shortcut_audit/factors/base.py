"""The factor interface: a named property of an image that the audit can set.

A :class:`Factor` has a name, a domain of values -- :class:`Categorical` levels (a
colour, a cell of a grid, a text) or a :class:`Continuous` range (an opacity, a
height) -- a *neutral* value (the one an item keeps when nothing sets the factor) and
the values an intervention ``do(F)`` re-draws from (the whole domain by default).

Values travel as ``float64`` tensors: a categorical value is the index of its level
(an exact small integer), a continuous value the number itself. Functions that set
factors receive them as ``int64`` (categorical) or ``float32`` (continuous) tensors.

An :class:`ImageFactor` is the function that *applies* chosen values of one or more
factors to a batch of images ``(m, C, H, W)`` in ``[0, 1]``. A user-defined factor is
one such function (see :func:`image_factor`); several factors can share one function
when they are aspects of one overlay (the watermark's opacity, height and text).
Scenes (:mod:`shortcut_audit.factors.scene`) render items under chosen values and
check every function's output (shape, finiteness, range), naming the factor at fault.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

__all__ = [
    "Categorical",
    "Continuous",
    "Domain",
    "Factor",
    "FactorError",
    "ImageFactor",
    "image_factor",
]


class FactorError(ValueError):
    """A factor is unknown, badly defined, or its function misbehaved; the message names it."""


@dataclass(frozen=True)
class Categorical:
    """Unordered levels; value ``k`` is level ``levels[k]``.

    Parameters
    ----------
    levels : sequence of str
        Names of the values (unique, at least one).
    """

    levels: tuple[str, ...]

    def __post_init__(self) -> None:
        levels = tuple(str(level) for level in self.levels)
        object.__setattr__(self, "levels", levels)
        if not levels:
            raise FactorError("a categorical factor needs at least one level")
        if len(set(levels)) != len(levels):
            raise FactorError(f"categorical levels must be unique, got {list(levels)}")

    @property
    def size(self) -> int:
        """Number of levels."""
        return len(self.levels)

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Map points of ``[0, 1]`` to levels, ``min(floor(u * n), n - 1)`` (MoSIP's partitions)."""
        n = self.size
        return torch.clamp(torch.floor(u * n), 0, n - 1).to(torch.float64)

    def index(self, value: object) -> int:
        """Index of a level given by name or index; raise :class:`FactorError` otherwise."""
        if isinstance(value, str):
            if value not in self.levels:
                raise FactorError(f"unknown level {value!r}; levels: {list(self.levels)}")
            return self.levels.index(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < self.size:
            raise FactorError(f"expected a level name from {list(self.levels)} or an index, got {value!r}")
        return int(value)

    def contains(self, values: torch.Tensor) -> bool:
        """Whether every value is a valid level index."""
        return bool(((values == values.round()) & (values >= 0) & (values < self.size)).all())

    def describe(self) -> str:
        return f"{self.size} levels"


@dataclass(frozen=True)
class Continuous:
    """A closed interval ``[low, high]`` of real values.

    Parameters
    ----------
    low, high : float
        Finite bounds with ``low < high``.
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", float(self.low))
        object.__setattr__(self, "high", float(self.high))
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low < self.high):
            raise FactorError(f"a continuous range needs finite low < high, got [{self.low}, {self.high}]")

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Map points of ``[0, 1]`` linearly onto ``[low, high]``."""
        return (self.low + u.to(torch.float64) * (self.high - self.low)).clamp(self.low, self.high)

    def contains(self, values: torch.Tensor) -> bool:
        return bool(((values >= self.low) & (values <= self.high)).all())

    def describe(self) -> str:
        return f"range [{self.low:g}, {self.high:g}]"


Domain = Categorical | Continuous


@dataclass(frozen=True)
class Factor:
    """A named property of an image that the audit can set.

    Parameters
    ----------
    name : str
        Identifier used in params, tables and reports (letters, digits, ``_``).
    domain : Categorical or Continuous
    neutral : float
        Value of an item that does not set the factor itself (a level index for a
        categorical factor). Scenes whose items carry their own value (a Biased-MNIST
        digit's colour) use that instead.
    intervention : tuple of float, optional
        For a categorical factor: the level indices ``do(F)`` re-draws from uniformly
        (default: every level). For a continuous one: a ``(low, high)`` sub-range
        (default: the domain).
    description : str
        One sentence for the report.
    display_name : str
        Readable name (default: the name with spaces).
    """

    name: str
    domain: Domain
    neutral: float = 0.0
    intervention: tuple[float, ...] | None = None
    description: str = ""
    display_name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise FactorError(f"a factor name must be an identifier (letters, digits, _), got {self.name!r}")
        if not isinstance(self.domain, (Categorical, Continuous)):
            raise FactorError(f"factor {self.name!r}: domain must be Categorical or Continuous, got {self.domain!r}")
        neutral = float(self.neutral)
        object.__setattr__(self, "neutral", neutral)
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name.replace("_", " "))
        if not self.domain.contains(torch.tensor([neutral], dtype=torch.float64)):
            raise FactorError(
                f"factor {self.name!r}: neutral value {self.neutral!r} is outside its {self.domain.describe()}"
            )
        if self.intervention is not None:
            values = tuple(float(v) for v in self.intervention)
            object.__setattr__(self, "intervention", values)
            if not values or not self.domain.contains(torch.tensor(values, dtype=torch.float64)):
                raise FactorError(
                    f"factor {self.name!r}: intervention values {list(values)} are outside its {self.domain.describe()}"
                )
            if isinstance(self.domain, Continuous) and (len(values) != 2 or values[0] >= values[1]):
                raise FactorError(f"factor {self.name!r}: a continuous intervention is a (low, high) sub-range")

    @property
    def categorical(self) -> bool:
        return isinstance(self.domain, Categorical)

    def from_unit(self, u: torch.Tensor) -> torch.Tensor:
        """Values for points ``u`` of ``[0, 1]`` (the Morris design's coordinates)."""
        return self.domain.from_unit(u)

    def draw(self, generator: torch.Generator, n: int) -> torch.Tensor:
        """``n`` values of ``do(F)``: uniform over the intervention levels or range, ``float64`` on the CPU.

        For a categorical factor whose intervention covers every level this draws
        exactly as ``torch.randint(size, (n,), generator=generator)``.
        """
        if isinstance(self.domain, Categorical):
            if self.intervention is None:
                return torch.randint(self.domain.size, (n,), generator=generator).to(torch.float64)
            choices = torch.tensor(self.intervention, dtype=torch.float64)
            return choices[torch.randint(len(choices), (n,), generator=generator)]
        low, high = self.intervention or (self.domain.low, self.domain.high)
        return low + torch.rand(n, generator=generator, dtype=torch.float64) * (high - low)

    def as_argument(self, values: torch.Tensor) -> torch.Tensor:
        """Values as handed to an apply function: ``int64`` levels or ``float32`` numbers."""
        return values.round().to(torch.int64) if self.categorical else values.to(torch.float32)

    def value_name(self, value: float) -> str:
        """Human-readable value: the level name, or the number."""
        if isinstance(self.domain, Categorical):
            return self.domain.levels[int(round(value))]
        return f"{value:g}"


ApplyFunction = Callable[[torch.Tensor, Mapping[str, torch.Tensor]], torch.Tensor]


@dataclass(frozen=True)
class ImageFactor:
    """A function that applies values of its factors to a batch of images.

    Parameters
    ----------
    factors : tuple of Factor
        The factors this function sets (one for a simple overlay).
    apply : callable
        ``apply(images (m, C, H, W) float in [0, 1], values {name: (m,) tensor}) ->
        images (m, C, H, W)`` in ``[0, 1]``; values come as :meth:`Factor.as_argument`.
    name : str
        Name of the function in messages (default: the first factor's name).
    """

    factors: tuple[Factor, ...]
    apply: ApplyFunction
    name: str = ""

    def __post_init__(self) -> None:
        factors = tuple(self.factors)
        object.__setattr__(self, "factors", factors)
        if not factors or not all(isinstance(f, Factor) for f in factors):
            raise FactorError(f"an image factor needs at least one Factor, got {factors!r}")
        if not callable(self.apply):
            raise FactorError(f"image factor {factors[0].name!r}: apply must be callable")
        if not self.name:
            object.__setattr__(self, "name", factors[0].name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)


def image_factor(
    name: str,
    function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    levels: Sequence[str] | None = None,
    value_range: tuple[float, float] | None = None,
    neutral: object = None,
    intervention: Sequence[object] | None = None,
    description: str = "",
) -> ImageFactor:
    """Wrap one user function ``function(images, values) -> images`` as a one-factor :class:`ImageFactor`.

    Parameters
    ----------
    name : str
        The factor's name.
    function : callable
        ``function(images (m, C, H, W) in [0, 1], values (m,)) -> images (m, C, H, W)``;
        ``values`` are level indices (``int64``) for a categorical factor, numbers
        (``float32``) for a continuous one.
    levels : sequence of str, optional
        Level names of a categorical factor (give ``levels`` or ``value_range``).
    value_range : (float, float), optional
        ``(low, high)`` of a continuous factor.
    neutral : str, int or float, optional
        Value of an image nobody intervened on (default: the first level, or ``low``).
    intervention : sequence, optional
        Levels (names or indices) or a ``(low, high)`` sub-range that ``do(F)`` draws from.
    description : str

    Examples
    --------
    A red frame whose width is the factor (0 = no frame)::

        def red_border(images, width):
            out = images.clone()
            for w in width.unique().tolist():
                rows = width == w
                if w > 0:
                    frame = torch.ones_like(out[0, 0], dtype=torch.bool)
                    frame[w:-w, w:-w] = False
                    out[rows] = torch.where(frame, torch.tensor([1.0, 0.0, 0.0])[:, None, None], out[rows])
            return out

        factor = image_factor("red_border", red_border, levels=["0", "2", "4"])
    """
    if (levels is None) == (value_range is None):
        raise FactorError(f"factor {name!r}: give either levels (categorical) or value_range (continuous)")
    if levels is not None:
        categorical = Categorical(tuple(levels))
        domain: Domain = categorical
        neutral_value = 0.0 if neutral is None else float(categorical.index(neutral))
        chosen = None if intervention is None else tuple(float(categorical.index(v)) for v in intervention)
    else:
        low, high = value_range  # type: ignore[misc]
        domain = Continuous(low, high)
        neutral_value = domain.low if neutral is None else float(neutral)  # type: ignore[arg-type]
        chosen = None if intervention is None else tuple(float(v) for v in intervention)  # type: ignore[arg-type]
    factor = Factor(name, domain, neutral_value, chosen, description)

    def apply(images: torch.Tensor, values: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return function(images, values[name])

    return ImageFactor((factor,), apply, name=getattr(function, "__name__", name))
