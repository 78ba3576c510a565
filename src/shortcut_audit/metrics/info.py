"""Metric metadata: what a score means and which direction is better.

Gates and reports read :class:`MetricInfo` instead of hard-coding, per metric,
whether a larger number is good (the Quantus convention).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """Description of one scalar score.

    Attributes
    ----------
    name : str
        Column name used in the result tables.
    direction : str
        ``"higher"`` or ``"lower"`` when that direction means a more faithful
        explanation; ``"none"`` for descriptive quantities (e.g. overlap between
        two models, where neither value is "better").
    lower, upper : float or None
        Range of the score when bounded.
    reference : str
        Paper and figure/equation the metric follows.
    """

    name: str
    direction: str
    lower: float | None
    upper: float | None
    reference: str
    description: str

    def __post_init__(self):
        if self.direction not in ("higher", "lower", "none"):
            raise ValueError(f"metric {self.name}: direction must be higher, lower or none")

    @property
    def bounds(self) -> tuple[float, float]:
        """``(lower, upper)`` with an unbounded side as -inf / +inf."""
        return (
            -math.inf if self.lower is None else float(self.lower),
            math.inf if self.upper is None else float(self.upper),
        )

    def better(self, a: float, b: float) -> bool:
        """True when score ``a`` is strictly better than ``b``."""
        if self.direction == "none":
            raise ValueError(f"metric {self.name} has no better direction")
        return a > b if self.direction == "higher" else a < b
