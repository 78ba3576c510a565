"""Perturbations that apply an upsampled mask to an image (Sobol attribution style).

Public API
----------
Every perturbation is a callable ``perturbation(image, masks) -> images`` with
``image`` of shape ``(C, H, W)`` and ``masks`` of shape ``(B, 1, H, W)`` with values
in ``[0, 1]``; it returns ``(B, C, H, W)`` on the masks' device. ``M = 1`` keeps the
pixel, ``M = 0`` removes it (inpainting, blur); for amplitude ``M = 0.5`` keeps it.

``Inpainting(baseline=0.0)``
    ``x * M + (1 - M) * baseline`` (Fel et al. 2021, Sobol attribution, Sec. 3.2).
``Blur(sigma=2.0)``
    ``x * M + (1 - M) * blur(x)`` with a Gaussian blur of standard deviation ``sigma`` pixels.
``Amplitude(scale=1.0)``
    ``x + (M - 0.5) * scale``: an additive perturbation centred on the image. (A known
    pitfall elsewhere writes ``x * (M - 0.5) * scale``, which destroys the image
    whatever the mask.)
``PERTURBATIONS`` and ``make_perturbation(name, **kwargs)``
    Registry by name; an unknown name raises ``ValueError`` listing the known ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Amplitude", "Blur", "Inpainting", "PERTURBATIONS", "gaussian_blur", "make_perturbation"]


def _check_shapes(image: torch.Tensor, masks: torch.Tensor) -> None:
    if image.dim() != 3:
        raise ValueError(f"image must have shape (C, H, W), got {tuple(image.shape)}")
    if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[2:] != image.shape[1:]:
        raise ValueError(f"masks must have shape (B, 1, {image.shape[1]}, {image.shape[2]}), got {tuple(masks.shape)}")


@dataclass(frozen=True)
class Inpainting:
    """Replace masked-out pixels by a baseline: ``x * M + (1 - M) * baseline``.

    Parameters
    ----------
    baseline : float or torch.Tensor
        A scalar or a tensor broadcastable to ``(C, H, W)`` (e.g. a per-channel
        mean of shape ``(C, 1, 1)``). Fel et al. (2021) inpaint towards 0.
    """

    baseline: float | torch.Tensor = 0.0

    def __call__(self, image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        _check_shapes(image, masks)
        image = image.to(masks.device, masks.dtype)
        baseline = torch.as_tensor(self.baseline, device=masks.device, dtype=masks.dtype)
        # baseline + M * (x - baseline) == x * M + (1 - M) * baseline, with one product per pixel
        return torch.addcmul(baseline.expand_as(image), masks, image - baseline)


def _gaussian_kernel(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    radius = max(1, math.ceil(3.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``(C, H, W)`` image with reflected borders.

    The kernel has radius ``ceil(3 sigma)``; borders are reflected when the image is
    large enough, replicated otherwise.
    """
    if sigma <= 0:
        raise ValueError(f"blur sigma must be > 0, got {sigma}")
    kernel = _gaussian_kernel(sigma, image.dtype, image.device)
    radius = kernel.numel() // 2
    channels = image.shape[0]
    mode = "reflect" if min(image.shape[1:]) > radius else "replicate"
    x = image.unsqueeze(0)
    x = F.pad(x, (radius, radius, 0, 0), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    x = F.pad(x, (0, 0, radius, radius), mode=mode)
    x = F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return x.squeeze(0)


@dataclass(frozen=True)
class Blur:
    """Replace masked-out pixels by the blurred image: ``x * M + (1 - M) * blur(x)``.

    Parameters
    ----------
    sigma : float
        Standard deviation of the Gaussian blur in pixels.
    """

    sigma: float = 2.0

    def __call__(self, image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        _check_shapes(image, masks)
        image = image.to(masks.device, masks.dtype)
        blurred = gaussian_blur(image, self.sigma)  # one blur per call, not per mask
        return torch.addcmul(blurred.expand(masks.shape[0], -1, -1, -1), masks, image - blurred)


@dataclass(frozen=True)
class Amplitude:
    """Additive amplitude perturbation ``x + (M - 0.5) * scale``.

    Parameters
    ----------
    scale : float
        Amplitude ``s``; a mask value of 0.5 leaves the pixel unchanged, 0 and 1 move
        it by ``-s/2`` and ``+s/2``.
    """

    scale: float = 1.0

    def __call__(self, image: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        _check_shapes(image, masks)
        image = image.to(masks.device, masks.dtype)
        return image + (masks - 0.5) * self.scale


PERTURBATIONS: dict[str, Callable[..., Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {
    "inpainting": Inpainting,
    "blur": Blur,
    "amplitude": Amplitude,
}


def make_perturbation(name: str, **kwargs) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Build a perturbation by name (``"inpainting"``, ``"blur"``, ``"amplitude"``)."""
    if name not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {name!r}; choose one of {sorted(PERTURBATIONS)}")
    return PERTURBATIONS[name](**kwargs)
