"""A w x w grid of image regions (MoSIP's ImageNet partition) and helpers on it.

Pixel row ``r`` of an image of height ``H`` belongs to grid row ``floor(r * w / H)``
(columns likewise), so regions tile the image exactly for any size, and pooling a
map to regions and expanding region values back use the same cells.
"""

from __future__ import annotations

import math

import torch


def region_index(height: int, width: int, grid: int, device=None) -> torch.Tensor:
    """Region id (row-major, 0 .. grid*grid - 1) of every pixel, (H, W) long."""
    if grid < 1 or grid > min(height, width):
        raise ValueError(f"grid size must lie in [1, {min(height, width)}], got {grid}")
    rows = torch.arange(height, device=device) * grid // height
    cols = torch.arange(width, device=device) * grid // width
    return rows[:, None] * grid + cols[None, :]


def pool_to_regions(maps: torch.Tensor, grid: int) -> torch.Tensor:
    """Mean attribution of each region, (N, H, W) -> (N, grid, grid)."""
    n, h, w = maps.shape
    index = region_index(h, w, grid, maps.device).reshape(-1)
    sums = torch.zeros(n, grid * grid, device=maps.device, dtype=maps.dtype)
    sums.index_add_(1, index, maps.reshape(n, -1))
    counts = torch.bincount(index, minlength=grid * grid).to(maps.dtype)
    return (sums / counts).view(n, grid, grid)


def expand_regions(values: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Region values (N, g, g) -> pixel maps (N, H, W) (constant inside each region)."""
    n, grid, _ = values.shape
    index = region_index(height, width, grid, values.device)
    return values.reshape(n, -1)[:, index]


def n_top(n_regions: int, fraction: float) -> int:
    """Number of regions in the top ``fraction`` (at least 1, rounded half up)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must lie in (0, 1], got {fraction}")
    return max(1, int(math.floor(fraction * n_regions + 0.5)))


def top_regions(values: torch.Tensor, fraction: float, largest: bool = True) -> torch.Tensor:
    """Boolean mask of the top (or bottom) ``fraction`` of regions per image, (N, g, g).

    Ties are broken by region order (stable sort).
    """
    n = values.shape[0]
    flat = values.reshape(n, -1)
    k = n_top(flat.shape[1], fraction)
    order = torch.argsort(flat, dim=1, descending=largest, stable=True)[:, :k]
    mask = torch.zeros_like(flat, dtype=torch.bool)
    mask.scatter_(1, order, True)
    return mask.view_as(values)
