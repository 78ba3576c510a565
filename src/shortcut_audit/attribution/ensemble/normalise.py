"""Per-map normalisations of attribution stacks (Mahlau & Nolde 2022, Sec. 3.1, Eqs. 1-4).

Each map (the last two dimensions) is normalised on its own, so maps of different
methods become comparable before aggregation:

- ``linear`` (Eq. 1): ``(a - min a) / (max a - min a)``, into [0, 1];
- ``z`` (Eq. 2): ``(a - mean a) / std a`` (population std over the pixels), the z-score;
- ``l1`` (Eq. 3): ``a / sum |a|``;
- ``l2`` (Eq. 4): ``a / sqrt(sum a^2)``;
- ``none``: unchanged.

A map whose scale is 0 (constant, or all zeros) becomes all zeros instead of NaN.
"""

from __future__ import annotations

import torch

NORMALISATIONS = ("linear", "z", "l1", "l2", "none")


def _safe_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    ok = denominator > 0
    return torch.where(ok, numerator / torch.where(ok, denominator, torch.ones_like(denominator)), 0.0)


def normalise(stack, method: str = "z") -> torch.Tensor:
    """Normalise every map of ``stack`` (..., H, W) independently; returns float32 of the same shape."""
    maps = torch.as_tensor(stack, dtype=torch.float32)
    if maps.ndim < 2:
        raise ValueError(f"expected maps of shape (..., H, W), got {tuple(maps.shape)}")
    if not torch.isfinite(maps).all():
        raise ValueError("attribution maps contain NaN or infinite values")
    flat = maps.flatten(-2)
    if method == "linear":
        low = flat.amin(-1, keepdim=True)
        out = _safe_divide(flat - low, flat.amax(-1, keepdim=True) - low)
    elif method == "z":
        centred = flat - flat.mean(-1, keepdim=True)
        out = _safe_divide(centred, centred.pow(2).mean(-1, keepdim=True).sqrt())
    elif method == "l1":
        out = _safe_divide(flat, flat.abs().sum(-1, keepdim=True))
    elif method == "l2":
        out = _safe_divide(flat, flat.pow(2).sum(-1, keepdim=True).sqrt())
    elif method == "none":
        out = flat
    else:
        raise ValueError(f"unknown normalisation {method!r}; choose one of {', '.join(NORMALISATIONS)}")
    return out.view_as(maps)
