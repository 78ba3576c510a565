"""RISE: Randomized Input Sampling for Explanation (Petsiuk et al., BMVC 2018)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from shortcut_audit.attribution.base import (
    BlackBoxExplainer,
    check_open_unit,
    check_positive_int,
    zero_if_constant,
)


class RISE(BlackBoxExplainer):
    """Score-weighted mean of random smooth masks.

    Section 3.1 of the paper: the saliency of pixel ``lambda`` is the expected score
    of the masked image given that the pixel is kept,

    ``S(lambda) = 1 / (E[M] * N) * sum_i f(x . M_i) * M_i(lambda)``   (Eq. 6),

    with ``E[M] = p``. Masks (Sec. 3.2): a binary ``s x s`` grid with keep
    probability ``p``, bilinearly upsampled to ``(s + 1) * cell`` (``cell =
    ceil(H / s)``), then cropped to ``H x W`` at a uniform random shift in
    ``[0, cell)``. Masked pixels take ``baseline`` (0 in the paper).

    Parameters
    ----------
    nb_masks
        N; the paper uses 4,000 to 8,000 on ImageNet.
    grid_size
        s (7 in the paper).
    keep_prob
        p (0.5 in the paper).
    baseline
        Value of the masked pixels.
    """

    name = "rise"

    def __init__(
        self,
        model,
        *,
        nb_masks: int = 8000,
        grid_size: int = 7,
        keep_prob: float = 0.5,
        baseline: float = 0.0,
        batch_size: int = 64,
        device=None,
        seed: int = 0,
    ):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.nb_masks = check_positive_int("nb_masks", nb_masks)
        self.grid_size = check_positive_int("grid_size", grid_size)
        self.keep_prob = check_open_unit("keep_prob", keep_prob)
        self.baseline = float(baseline)

    def draw_grids(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Binary grids (N, s, s) and shift fractions (N, 2) in [0, 1), on the device."""
        gen = self.generator()
        grids = torch.rand(self.nb_masks, self.grid_size, self.grid_size, generator=gen) < self.keep_prob
        shifts = torch.rand(self.nb_masks, 2, generator=gen)
        return grids.float().to(self.device), shifts.to(self.device)

    def masks(self, grids: torch.Tensor, shifts: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Upsampled, shifted and cropped masks (m, H, W) for a chunk of grids."""
        s = self.grid_size
        cell_h, cell_w = math.ceil(height / s), math.ceil(width / s)
        up = F.interpolate(
            grids[:, None], size=((s + 1) * cell_h, (s + 1) * cell_w), mode="bilinear", align_corners=False
        )[:, 0]
        dy = (shifts[:, 0] * cell_h).long()
        dx = (shifts[:, 1] * cell_w).long()
        rows = dy[:, None] + torch.arange(height, device=up.device)[None]
        cols = dx[:, None] + torch.arange(width, device=up.device)[None]
        index = torch.arange(up.shape[0], device=up.device)[:, None, None]
        return up[index, rows[:, :, None], cols[:, None, :]]

    def explain(self, images, targets):
        n, _, h, w = images.shape
        grids, shifts = self.draw_grids()

        def perturb(imgs, idx):
            m = self.masks(grids[idx], shifts[idx], h, w)[None, :, None]
            return imgs[:, None] * m + self.baseline * (1.0 - m)

        scores = self.perturbed_scores(images, targets, self.nb_masks, perturb)
        saliency = torch.zeros(n, h, w, device=self.device)
        chunk = max(1, self.batch_size)
        for j0 in range(0, self.nb_masks, chunk):
            idx = torch.arange(j0, min(j0 + chunk, self.nb_masks), device=self.device)
            saliency += torch.einsum("np,phw->nhw", scores[:, idx], self.masks(grids[idx], shifts[idx], h, w))
        saliency /= self.nb_masks * self.keep_prob
        return zero_if_constant(saliency, scores, self.name)
