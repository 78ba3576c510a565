"""Tiny synthetic models with known answers for the metric tests."""

import pytest
import torch
from torch import nn


class QuadrantModel(nn.Module):
    """Class-0 logit = scale * mean of the top-left quadrant; class-1 logit = ``other``."""

    def __init__(self, scale: float = 10.0, other: float = 0.0):
        super().__init__()
        self.scale, self.other = scale, other

    def forward(self, x):
        h, w = x.shape[-2:]
        s = self.scale * x[:, :, : h // 2, : w // 2].mean(dim=(1, 2, 3))
        return torch.stack([s, torch.full_like(s, self.other)], dim=1)


@pytest.fixture
def make_quadrant_model():
    return QuadrantModel


@pytest.fixture
def quadrant_model():
    return QuadrantModel()


@pytest.fixture
def quadrant_map():
    """A perfect map for QuadrantModel on 8 x 8 images (one per image, N = 2)."""
    m = torch.zeros(2, 8, 8)
    m[:, :4, :4] = 1.0
    return m
