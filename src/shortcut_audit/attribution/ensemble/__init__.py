"""Ensembles of attribution maps (Mahlau & Nolde 2022): normalise (Sec. 3.1), then aggregate (Sec. 3.2).

``normalise(stack, method)`` and ``aggregate(stack (K, N, H, W), normalization="z",
method="ucb", settings=TABLE_1, seed=0) -> (N, H, W)``; ``TABLE_1`` holds the paper's
Table 1 hyperparameters.
"""

from shortcut_audit.attribution.ensemble.aggregate import (
    AGGREGATIONS,
    TABLE_1,
    AggregationSettings,
    aggregate,
    aggregate_all,
)
from shortcut_audit.attribution.ensemble.normalise import NORMALISATIONS, normalise
from shortcut_audit.attribution.ensemble.rbm import rbm_aggregate

__all__ = [
    "AGGREGATIONS",
    "NORMALISATIONS",
    "TABLE_1",
    "AggregationSettings",
    "aggregate",
    "aggregate_all",
    "normalise",
    "rbm_aggregate",
]
