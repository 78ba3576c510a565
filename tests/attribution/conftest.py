"""Tiny models with known attributions, shared by the attribution tests."""

import numpy as np
import pytest
import torch
from torch import nn


class RegionModel:
    """Scores (n, 2) that read only the pixels of ``region``: class 0 = tanh(2 mean), class 1 = -class 0."""

    def __init__(self, region: torch.Tensor, sign: float = 1.0):
        self.region = region
        self.sign = sign
        self.max_batch = 0
        self.calls = 0

    def __call__(self, x):
        self.max_batch = max(self.max_batch, x.shape[0])
        self.calls += 1
        s = self.sign * torch.tanh(2.0 * x[:, :, self.region].mean(dim=(1, 2)))
        return torch.stack([s, -s], dim=1)


class NoGradientsNumpyModel:
    """NumPy in, NumPy out; raises if anyone asks for parameters or calls it with gradients on."""

    def __init__(self, region: np.ndarray):
        self.region = region
        self.max_batch = 0

    def parameters(self):
        raise AssertionError("a black-box method read the model's parameters")

    def __call__(self, x):
        assert not torch.is_grad_enabled(), "black-box methods must call the model under no_grad"
        self.max_batch = max(self.max_batch, x.shape[0])
        a = x.cpu().numpy()
        s = np.tanh(2.0 * a[:, :, self.region].mean(axis=(1, 2)))
        return np.stack([s, -s], axis=1)


class _RaiseOnBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise AssertionError("a black-box method called backward")


class NoBackwardTorchModel(nn.Module):
    """A torch module whose backward raises and whose parameters cannot be read."""

    def __init__(self, region: torch.Tensor):
        super().__init__()
        self.region = region
        self.weight = nn.Parameter(torch.ones(1))

    def parameters(self, recurse: bool = True):
        raise AssertionError("a black-box method read the model's parameters")

    def forward(self, x):
        x = _RaiseOnBackward.apply(x) * self.weight
        s = torch.tanh(2.0 * x[:, :, self.region].mean(dim=(1, 2)))
        return torch.stack([s, -s], dim=1)


class LinearModel(nn.Module):
    """Scores ``(x . W_k)`` for k classes: gradients and IG are known in closed form."""

    def __init__(self, weights: torch.Tensor):
        super().__init__()
        self.weights = nn.Parameter(weights)  # (K, C, H, W)

    def forward(self, x):
        return torch.einsum("nchw,kchw->nk", x, self.weights)


class TinyCNN(nn.Module):
    def __init__(self, channels: int = 3, classes: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU()
        )
        self.head = nn.Linear(6, classes)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


def quadrant(size: int) -> torch.Tensor:
    """Top-right quadrant of a size x size image, as a bool mask."""
    region = torch.zeros(size, size, dtype=torch.bool)
    region[: size // 2, size // 2 :] = True
    return region


def positive_mass_in(maps: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """Share of the positive mass (after subtracting each map's median) lying in ``region``."""
    centred = maps - maps.flatten(1).median(dim=1).values[:, None, None]
    positive = centred.clamp(min=0)
    return positive[:, region].sum(1) / positive.flatten(1).sum(1)


@pytest.fixture
def images():
    return torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 0.8 + 0.1
