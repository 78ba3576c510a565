"""L1 distance between two attribution maps after max-normalisation.

The GEEX paper (Cai & Wunder, Sec. 4, "Comparison to White-box Explanation", Fig. 3)
measures how close each black-box explanation (GEEX, GERS, iGEEX and RISE) gets to
the two white-box approaches, SmoothGrad (its baseline) and Integrated Gradients: the
L1 norm of the difference matrix ("the sum of the norms of columns"), after each map
is rescaled "with its maximal element" so that the scale of the estimator does not
matter. The formula and the normalised range are lost from the extracted text; here
each map is divided by its largest absolute value (range [-1, 1] for signed maps) and
the distance is the mean absolute difference per pixel (the figure's "pixel-wise
difference"), which lies in [0, 2]; lower is closer.
"""

from __future__ import annotations

import torch

from shortcut_audit.metrics.info import MetricInfo

L1_INFO = MetricInfo(
    "l1_to_white_box",
    "lower",
    0.0,
    2.0,
    "Cai & Wunder (GEEX), Sec. 4, Fig. 3",
    "mean absolute difference per pixel between max-normalised black-box and white-box maps",
)


def max_normalise(maps: torch.Tensor) -> torch.Tensor:
    """Divide each map (N, ...) by its largest absolute value; an all-zero map stays zero."""
    flat = maps.reshape(maps.shape[0], -1).float()
    peak = flat.abs().amax(dim=1, keepdim=True)
    return torch.where(peak > 0, flat / peak.clamp_min(torch.finfo(flat.dtype).tiny), flat).view_as(maps)


def l1_distance(maps: torch.Tensor, reference: torch.Tensor, absolute: bool = False) -> torch.Tensor:
    """Mean per-pixel |a - b| between max-normalised ``maps`` and ``reference``, (N,).

    ``absolute=True`` compares magnitudes only (for methods whose sign convention
    differs from the reference's).
    """
    if maps.shape != reference.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and reference {tuple(reference.shape)} differ in shape")
    if absolute:
        maps, reference = maps.abs(), reference.abs()
    diff = (max_normalise(maps) - max_normalise(reference)).abs()
    return diff.reshape(diff.shape[0], -1).mean(dim=1)
