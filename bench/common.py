"""Pieces shared by the benchmarks: the small CNN they explain and a forward-pass timer."""
from __future__ import annotations

import time

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Four conv+ReLU+pool blocks and a linear head on the global average (10 classes)."""

    def __init__(self):
        super().__init__()
        layers, channels = [], 3
        for width in (16, 32, 32, 64):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 10)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


class TimedModel:
    """Counts model inputs and accumulates the wall time of forward passes (synchronised on CUDA)."""

    def __init__(self, model: nn.Module, device: torch.device | None = None):
        self.model, self.device, self.seconds, self.inputs = model, device, 0.0, 0

    def _sync(self):
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._sync()
        start = time.perf_counter()
        with torch.no_grad():
            out = self.model(x)
        self._sync()
        self.seconds += time.perf_counter() - start
        self.inputs += x.shape[0]
        return out
