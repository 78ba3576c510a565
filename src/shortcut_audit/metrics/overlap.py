"""Overlap of important regions between two explanations (MoSIP Section 5).

MoSIP compares architectures by the share of a model's top-20% regions that also
are, or immediately neighbour, a top-20% region of the reference architecture.
"Immediate neighbour" is taken as the 8-neighbourhood (Chebyshev distance 1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from shortcut_audit.metrics.info import MetricInfo
from shortcut_audit.metrics.regions import top_regions

OVERLAP_INFO = MetricInfo(
    "top_region_overlap",
    "none",
    0.0,
    1.0,
    "MoSIP Section 5",
    "share of a model's top regions that are or neighbour the reference's top regions",
)


@dataclass
class RegionOverlap:
    """Per-image overlap of top regions.

    Attributes
    ----------
    top : Tensor (N, g, g) bool
        The model's top regions.
    overlapping : Tensor (N, g, g) bool
        Top regions within ``radius`` of a reference top region.
    share : Tensor (N,)
        ``overlapping.sum() / top.sum()`` per image.
    """

    top: torch.Tensor
    overlapping: torch.Tensor
    share: torch.Tensor

    @property
    def differing(self) -> torch.Tensor:
        """Top regions with no reference top region nearby, (N, g, g) bool."""
        return self.top & ~self.overlapping


def dilate(mask: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Regions within Chebyshev distance ``radius`` of a ``True`` region, (N, g, g) bool."""
    if radius < 0:
        raise ValueError("radius must be >= 0")
    if radius == 0:
        return mask.clone()
    size = 2 * radius + 1
    grown = F.max_pool2d(mask[:, None].float(), kernel_size=size, stride=1, padding=radius)
    return grown[:, 0] > 0


def region_overlap(
    values: torch.Tensor, reference: torch.Tensor, fraction: float = 0.2, radius: int = 1
) -> RegionOverlap:
    """Overlap of the top ``fraction`` regions of ``values`` with those of ``reference``.

    Parameters
    ----------
    values, reference : Tensor (N, g, g)
        Region importances (e.g. Morris mu*) of the same images under two models.
    radius : int
        0 counts identical regions only; 1 also immediate neighbours (MoSIP).
    """
    if values.shape != reference.shape or values.ndim != 3:
        raise ValueError(f"values {tuple(values.shape)} and reference {tuple(reference.shape)} must both be (N, g, g)")
    top = top_regions(values, fraction)
    near_reference = dilate(top_regions(reference, fraction), radius)
    overlapping = top & near_reference
    share = overlapping.flatten(1).sum(1).float() / top.flatten(1).sum(1).float()
    return RegionOverlap(top=top, overlapping=overlapping, share=share)
