"""Expected Gradients (Erion, Janizek, Sturmfels, Lundberg & Lee, Nature Machine Intelligence 2021)."""

from __future__ import annotations

import torch

from shortcut_audit.attribution.base import GradientExplainer, check_positive_int, reduce_channels


class ExpectedGradients(GradientExplainer):
    """Integrated Gradients averaged over baselines drawn from a reference distribution.

    ``phi_i(x) = E_{x' ~ D, a ~ U(0, 1)} [(x_i - x'_i) dF(x' + a (x - x')) / dx_i]``
    (Eq. 2 of the paper), estimated with ``n_samples`` draws of (reference, a) per
    image and summed over channels. Draw k (reference index, a) depends only on
    (seed, k) and is shared by every image.

    Parameters
    ----------
    references
        Background images ``(R, C, H, W)`` (e.g. a sample of training images).
    n_samples
        Monte Carlo draws per image.
    """

    name = "expected_gradients"

    def __init__(self, model, *, references, n_samples: int = 64, batch_size: int = 64, device=None, seed: int = 0):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.references = torch.as_tensor(references, dtype=torch.float32).to(self.device)
        if self.references.ndim != 4 or self.references.shape[0] < 1:
            raise ValueError("references must be a non-empty tensor of images (R, C, H, W)")
        self.n_samples = check_positive_int("n_samples", n_samples)

    def draws(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Reference index (n_samples,) and path position a (n_samples,)."""
        gen = self.generator()
        index = torch.randint(self.references.shape[0], (self.n_samples,), generator=gen)
        alpha = torch.rand(self.n_samples, generator=gen)
        return index.to(self.device), alpha.to(self.device)

    def explain(self, images, targets):
        if self.references.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"references have shape {tuple(self.references.shape[1:])}, images {tuple(images.shape[1:])}"
            )
        index, alpha = self.draws()

        def point(imgs, _, k):
            ref = self.references[index[k]][None]
            return ref + alpha[k].view(1, -1, 1, 1, 1) * (imgs[:, None] - ref)

        def weight(imgs, _, k):
            return (imgs[:, None] - self.references[index[k]][None]) / self.n_samples

        return reduce_channels(self.repeated_gradients(images, targets, self.n_samples, point, weight), "sum")
