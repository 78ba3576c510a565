"""Known-answer stand-ins for the factor audit: synthetic digits and models that read one factor."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from shortcut_audit.data.biased_mnist import BG_PALETTE, DIGIT_PALETTE, FACTORS, N_VALUES, linked_value
from shortcut_audit.factors.scene import DigitBase, Scene

SHARPNESS = 50.0


def synthetic_digits(n: int, seed: int = 0) -> torch.Tensor:
    """Bars of full ink in the centre of the 28x28 box (MNIST-like: empty border rows/cols)."""
    generator = torch.Generator().manual_seed(seed)
    digits = torch.zeros(n, 28, 28, dtype=torch.uint8)
    widths = torch.randint(2, 6, (n,), generator=generator)
    for i, w in enumerate(widths.tolist()):
        digits[i, 6:22, 12 : 12 + w] = 255
    return digits


def digit_sample(n: int, aligned: bool, seed: int = 0, canvas: int = 56) -> Scene:
    """Synthetic digits with factors linked to the label (``aligned``) or uniform."""
    generator = torch.Generator().manual_seed(seed + 1)
    labels = torch.randint(10, (n,), generator=generator)
    if aligned:
        factors = torch.stack([linked_value(f, labels) for f in FACTORS], dim=1)
    else:
        factors = torch.stack([torch.randint(N_VALUES[f], (n,), generator=generator) for f in FACTORS], dim=1)
    return Scene(DigitBase(synthetic_digits(n, seed), canvas), (), labels, factors.double())


def _nearest_palette_logits(colours: torch.Tensor, palette: torch.Tensor) -> torch.Tensor:
    return -SHARPNESS * ((colours[:, None, :] - palette.to(colours)[None]) ** 2).sum(dim=-1)


class BackgroundColourModel(nn.Module):
    """Predicts the class linked to the background colour, read at the top-left pixel.

    Pixel (0, 0) is background whatever the position (the digits' border is empty).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _nearest_palette_logits(x[:, :, 0, 0], BG_PALETTE)


class DigitColourModel(nn.Module):
    """Predicts the class linked to the digit colour, read at the brightest pixel.

    Every digit colour is brighter (channel sum) than every background colour, so the
    brightest pixel is a full-ink pixel of pure digit colour.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)  # (N, 3, HW)
        brightest = flat.sum(dim=1).argmax(dim=1)
        colours = flat.gather(2, brightest.view(-1, 1, 1).expand(-1, 3, 1)).squeeze(2)
        return _nearest_palette_logits(colours, DIGIT_PALETTE)


class ConstantModel(nn.Module):
    """Ignores its input: the same logits for every image."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linspace(-1.0, 1.0, 10, device=x.device).expand(x.shape[0], 10).clone()


@pytest.fixture()
def bg_model() -> nn.Module:
    return BackgroundColourModel()


@pytest.fixture()
def digit_colour_model() -> nn.Module:
    return DigitColourModel()


@pytest.fixture()
def constant_model() -> nn.Module:
    return ConstantModel()


@pytest.fixture()
def heldout() -> Scene:
    """32 synthetic digits with uniform factors (the role of test_unbiased)."""
    return digit_sample(32, aligned=False, seed=0)


@pytest.fixture()
def aligned() -> Scene:
    """64 synthetic digits with every factor at its class-linked value (test_aligned at p = 1)."""
    return digit_sample(64, aligned=True, seed=1)
