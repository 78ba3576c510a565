"""The ImageNet watermark shortcut audit (Li et al., CVPR 2023, ImageNet-W).

A translucent text watermark pushes ImageNet predictions towards "carton" (class
478). This package measures that shortcut on real pretrained models through the
factor interface (:mod:`shortcut_audit.factors.watermark`):

:mod:`.config`
    The ``watermark`` params section, validated before any work, and the input checks.
:mod:`.effects`
    What ``do(watermark)`` does: top-1 change rate, carton gap, carton probability and
    logit shifts, accuracy drop -- each with a bootstrap interval over images.
:mod:`.audit`
    Per model: the effects, the interventional verdict "relies on the watermark"
    (the Biased-MNIST rule and its three states) and Morris over the watermark's aspects.
:mod:`.explainers`
    The explainer benchmark: does a method's map of the carton logit fall on the
    watermark's pixels (mask share, pointing game, against the chance level)?
:mod:`.pipeline`
    Every model, the tables of ``data/watermark/`` and their atomic writing.
"""

from shortcut_audit.watermark.config import WatermarkConfig, check_inputs
from shortcut_audit.watermark.pipeline import COLUMNS, TABLES, run_watermark_audit, write_results

__all__ = ["COLUMNS", "TABLES", "WatermarkConfig", "check_inputs", "run_watermark_audit", "write_results"]
