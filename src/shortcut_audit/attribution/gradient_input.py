"""Gradient x Input (Shrikumar et al., 2016; Ancona et al., ICLR 2018)."""

from __future__ import annotations

from shortcut_audit.attribution.base import GradientExplainer, reduce_channels


class GradientInput(GradientExplainer):
    """Element-wise product of the input and the target-score gradient, summed over channels.

    ``a_ij = sum_c x_cij * d S_target / d x_cij``; exact for linear models with a
    zero baseline (Ancona et al. 2018, Sec. 2).
    """

    name = "gradient_input"

    def explain(self, images, targets):
        return reduce_channels(images * self.gradients(images, targets), "sum")
