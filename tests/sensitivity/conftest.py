"""Analytic test functions with known Sobol indices (inputs in the unit hypercube)."""

import math
from types import SimpleNamespace

import pytest
import torch


def ishigami(x: torch.Tensor, a: float = 7.0, b: float = 0.1) -> torch.Tensor:
    """Ishigami & Homma (1990) on ``[-pi, pi]^3`` mapped from the unit cube."""
    z = (2.0 * x.double() - 1.0) * math.pi
    return torch.sin(z[:, 0]) + a * torch.sin(z[:, 1]) ** 2 + b * z[:, 2] ** 4 * torch.sin(z[:, 0])


def ishigami_indices(a: float = 7.0, b: float = 0.1) -> tuple[list[float], list[float]]:
    """Analytic first-order and total indices of the Ishigami function."""
    v1 = 0.5 * (1 + b * math.pi**4 / 5) ** 2
    v2 = a**2 / 8
    v13 = b**2 * math.pi**8 * (1 / 18 - 1 / 50)
    v = v1 + v2 + v13
    return [v1 / v, v2 / v, 0.0], [(v1 + v13) / v, v2 / v, v13 / v]


G_COEFFICIENTS = (0.0, 1.0, 4.5, 9.0, 99.0, 99.0)


def g_function(x: torch.Tensor, a=G_COEFFICIENTS) -> torch.Tensor:
    """Sobol's g-function: prod_i (|4 x_i - 2| + a_i) / (1 + a_i)."""
    a = torch.tensor(a, dtype=torch.float64, device=x.device)
    return ((torch.abs(4.0 * x.double() - 2.0) + a) / (1.0 + a)).prod(dim=1)


def g_function_indices(a=G_COEFFICIENTS) -> tuple[list[float], list[float]]:
    partial = [1.0 / (3.0 * (1.0 + ai) ** 2) for ai in a]
    total_variance = math.prod(1.0 + v for v in partial) - 1.0
    first = [v / total_variance for v in partial]
    total = [
        v * math.prod(1.0 + w for j, w in enumerate(partial) if j != i) / total_variance for i, v in enumerate(partial)
    ]
    return first, total


@pytest.fixture
def analytic():
    """Namespace of the analytic functions and their indices."""

    return SimpleNamespace(
        ishigami=ishigami,
        ishigami_indices=ishigami_indices,
        g_function=g_function,
        g_function_indices=g_function_indices,
    )
