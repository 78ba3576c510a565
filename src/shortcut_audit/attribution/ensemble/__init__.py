"""Ensembles of attribution maps (Mahlau & Nolde 2022): normalise, then aggregate.

``normalise(stack, method)`` and ``aggregate(stack (K, N, H, W), normalization="z",
method="ucb", epsilon=-0.5, ...) -> (N, H, W)``.
"""
from shortcut_audit.attribution.ensemble.aggregate import AGGREGATIONS, aggregate
from shortcut_audit.attribution.ensemble.normalise import NORMALISATIONS, normalise
from shortcut_audit.attribution.ensemble.rbm import rbm_aggregate

__all__ = ["AGGREGATIONS", "NORMALISATIONS", "aggregate", "normalise", "rbm_aggregate"]
