"""Saliency (Simonyan, Vedaldi & Zisserman, ICLR workshop 2014)."""

from __future__ import annotations

from shortcut_audit.attribution.base import GradientExplainer, reduce_channels


class Saliency(GradientExplainer):
    """Absolute input gradient of the target score, maximum over channels.

    ``M_ij = max_c |d S_target / d x_cij|`` (Sec. 3.1 of the paper).
    """

    name = "saliency"

    def explain(self, images, targets):
        return reduce_channels(self.gradients(images, targets), "abs_max")
