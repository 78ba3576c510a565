"""Fidelity metrics of attribution maps, batched over images and perturbation steps.

One metric per module; each exposes :class:`~shortcut_audit.metrics.info.MetricInfo`
constants so gates and reports can read the score direction generically:

>>> from shortcut_audit.metrics import METRICS
>>> METRICS["deletion_auc"].direction
'lower'
"""

from shortcut_audit.metrics.aopc import AOPC_INFO, AOPCResult, aopc_from_curve, normalised_aopc
from shortcut_audit.metrics.convergence import SPEARMAN_INFO, ConvergencePoint, convergence_curve, spearman
from shortcut_audit.metrics.deletion_insertion import (
    DELETION_INFO,
    INSERTION_INFO,
    PerturbationCurve,
    curve_auc,
    deletion_curve,
    insertion_curve,
    perturbation_curve,
    region_perturbation_curve,
)
from shortcut_audit.metrics.info import MetricInfo
from shortcut_audit.metrics.map_distance import L1_INFO, l1_distance, max_normalise
from shortcut_audit.metrics.overlap import OVERLAP_INFO, RegionOverlap, dilate, region_overlap
from shortcut_audit.metrics.perturbation import BASELINES, SCORES, TIES, make_baseline, pixel_ranks, tie_keys
from shortcut_audit.metrics.region_masking import (
    MASKING_ACCURACY_LEAST_INFO,
    MASKING_ACCURACY_MOST_INFO,
    MASKING_SCORE_CHANGE_LEAST_INFO,
    MASKING_SCORE_CHANGE_MOST_INFO,
    MaskingCurve,
    masked_region_outputs,
    masking_curve,
    region_order,
)
from shortcut_audit.metrics.regions import expand_regions, pool_to_regions, region_index, top_regions

METRICS: dict[str, MetricInfo] = {
    info.name: info
    for info in (
        DELETION_INFO,
        INSERTION_INFO,
        AOPC_INFO,
        MASKING_ACCURACY_MOST_INFO,
        MASKING_ACCURACY_LEAST_INFO,
        MASKING_SCORE_CHANGE_MOST_INFO,
        MASKING_SCORE_CHANGE_LEAST_INFO,
        SPEARMAN_INFO,
        L1_INFO,
        OVERLAP_INFO,
    )
}

__all__ = [
    "METRICS",
    "MetricInfo",
    "BASELINES",
    "SCORES",
    "TIES",
    "perturbation_curve",
    "region_perturbation_curve",
    "deletion_curve",
    "insertion_curve",
    "curve_auc",
    "PerturbationCurve",
    "normalised_aopc",
    "aopc_from_curve",
    "AOPCResult",
    "masking_curve",
    "masked_region_outputs",
    "region_order",
    "MaskingCurve",
    "spearman",
    "convergence_curve",
    "ConvergencePoint",
    "l1_distance",
    "max_normalise",
    "region_overlap",
    "dilate",
    "RegionOverlap",
    "make_baseline",
    "pixel_ranks",
    "tie_keys",
    "region_index",
    "pool_to_regions",
    "expand_regions",
    "top_regions",
]
