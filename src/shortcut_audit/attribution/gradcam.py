"""Grad-CAM (Selvaraju et al., ICCV 2017)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shortcut_audit.attribution.base import GradientExplainer, target_score


def last_conv_layer(model: nn.Module) -> nn.Module:
    """The last ``nn.Conv2d`` in ``model.modules()`` order; ``ValueError`` if there is none."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise ValueError("Grad-CAM needs a convolutional layer; pass target_layer explicitly")
    return convs[-1]


class GradCAM(GradientExplainer):
    """Class activation map weighted by pooled gradients of a convolutional layer.

    ``alpha_k = 1/Z sum_ij dy_c / dA^k_ij`` (Eq. 1) and
    ``L = ReLU(sum_k alpha_k A^k)`` (Eq. 2), bilinearly upsampled to the input size.

    Parameters
    ----------
    target_layer
        The module whose output ``A`` is used; by default the model's last ``Conv2d``.
    """

    name = "gradcam"

    def __init__(
        self,
        model: nn.Module,
        *,
        target_layer: nn.Module | None = None,
        batch_size: int = 64,
        device=None,
        seed: int = 0,
    ):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        if not isinstance(model, nn.Module):
            raise TypeError("Grad-CAM needs an nn.Module to hook a layer of")
        self.target_layer = target_layer if target_layer is not None else last_conv_layer(model)

    def _chunk(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        captured: list[torch.Tensor] = []
        handle = self.target_layer.register_forward_hook(lambda mod, inp, out: captured.append(out))
        try:
            with torch.enable_grad():
                outputs = self.model(images)
                if not torch.is_tensor(outputs):
                    raise TypeError(f"{self.name} needs a torch model that returns tensors")
                if not torch.isfinite(outputs).all():
                    raise ValueError("the model returned NaN or infinite scores")
                (grads,) = torch.autograd.grad(target_score(outputs, targets).sum(), captured[-1])
        finally:
            handle.remove()
        acts = captured[-1].detach()
        weights = grads.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((weights * acts).sum(dim=1, keepdim=True))
        return F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]

    def explain(self, images, targets):
        return torch.cat(
            [
                self._chunk(images[i : i + self.batch_size], targets[i : i + self.batch_size])
                for i in range(0, images.shape[0], self.batch_size)
            ]
        )
