"""Integrated Gradients (Sundararajan, Taly & Yan, ICML 2017)."""

from __future__ import annotations

import torch

from shortcut_audit.attribution.base import (
    GradientExplainer,
    check_choice,
    check_positive,
    check_positive_int,
    gaussian_blur,
    reduce_channels,
)

BASELINES = ("zero", "blur")


def path_midpoints(steps: int, device) -> torch.Tensor:
    """Midpoint-rule nodes ``alpha_k = (k + 1/2) / steps`` of the path integral on [0, 1]."""
    return (torch.arange(steps, device=device, dtype=torch.float32) + 0.5) / steps


class IntegratedGradients(GradientExplainer):
    """Path integral of gradients from a baseline ``b`` to the input.

    ``IG_i(x) = (x_i - b_i) * int_0^1 dF(b + a (x - b)) / dx_i da``   (Eq. 1),
    approximated with the midpoint rule over ``steps`` nodes (Eq. 3 uses a Riemann
    sum) and summed over channels. Completeness: the map sums to ``F(x) - F(b)`` up
    to the quadrature error; for a linear model it is exactly ``(x - b) * w``.

    Parameters
    ----------
    steps
        Number of path nodes.
    baseline
        ``"zero"`` (black image) or ``"blur"``: the input blurred with a Gaussian of
        ``blur_sigma`` pixels (Sturmfels, Lundberg & Lee, Distill 2020).
    blur_sigma
        Standard deviation of the blurred baseline, in pixels.
    """

    name = "integrated_gradients"

    def __init__(
        self,
        model,
        *,
        steps: int = 32,
        baseline: str = "zero",
        blur_sigma: float = 5.0,
        batch_size: int = 64,
        device=None,
        seed: int = 0,
    ):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.steps = check_positive_int("steps", steps)
        self.baseline = check_choice("baseline", baseline, BASELINES)
        self.blur_sigma = check_positive("blur_sigma", blur_sigma)

    def baselines(self, images: torch.Tensor) -> torch.Tensor:
        """The baseline of each image, (N, C, H, W)."""
        if self.baseline == "zero":
            return torch.zeros_like(images)
        return gaussian_blur(images, self.blur_sigma)

    def explain(self, images, targets):
        base = self.baselines(images)
        alphas = path_midpoints(self.steps, self.device)

        def point(imgs, b, k):
            return b[:, None] + alphas[k].view(1, -1, 1, 1, 1) * (imgs - b)[:, None]

        mean_grads = self.repeated_gradients(
            images, targets, self.steps, point, lambda imgs, b, k: 1.0 / self.steps, aux=base
        )
        return reduce_channels((images - base) * mean_grads, "sum")
