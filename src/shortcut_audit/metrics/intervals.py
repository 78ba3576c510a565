"""Confidence intervals of means, shared by the audits and the fidelity tables."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_interval(
    values: np.ndarray, conf_level: float = 0.95, low: float = 0.0, high: float = 1.0
) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of ``values``, clipped to ``[low, high]``.

    With a single value or no spread the interval collapses to the mean.
    """
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if values.size < 2:
        return mean, mean, mean
    sd = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.5 + conf_level / 2, values.size - 1)) * sd / math.sqrt(values.size)
    return mean, max(low, mean - half), min(high, mean + half)
