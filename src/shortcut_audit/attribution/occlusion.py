"""Occlusion (Zeiler & Fergus, ECCV 2014): slide a baseline patch, record the score drop."""

from __future__ import annotations

import torch

from shortcut_audit.attribution.base import BlackBoxExplainer, pair, zero_if_constant


def window_starts(size: int, patch: int, stride: int) -> list[int]:
    """Start offsets of the windows along one axis; the last window is flush with the edge."""
    if patch >= size:
        return [0]
    starts = list(range(0, size - patch + 1, stride))
    if starts[-1] != size - patch:
        starts.append(size - patch)
    return starts


class Occlusion(BlackBoxExplainer):
    """Mean score drop over the patches that cover each pixel.

    For every window ``w`` of size ``patch_size`` placed with ``stride`` the image is
    evaluated with the window set to ``baseline``; the attribution of a pixel is

    ``a(p) = mean_{w contains p} [f(x) - f(x with w occluded)]``

    (the same per-window difference averaged over overlapping windows as Captum's
    ``Occlusion``). Windows are shared by all images of a batch.

    Parameters
    ----------
    patch_size
        Side of the square patch, or (height, width).
    stride
        Step between windows, int or (height, width), at most ``patch_size`` on each
        axis; the last window of each axis is moved flush with the border, so every
        pixel is covered. A larger stride would leave pixels that no window occludes,
        whose mean drop is undefined: it is refused (``ValueError``).
    baseline
        Value written into the occluded window.
    """

    name = "occlusion"

    def __init__(
        self, model, *, patch_size=8, stride=4, baseline: float = 0.0, batch_size: int = 64, device=None, seed: int = 0
    ):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.patch_size = pair("patch_size", patch_size)
        self.stride = pair("stride", stride)
        if any(s > p for s, p in zip(self.stride, self.patch_size)):
            raise ValueError(
                f"occlusion stride {self.stride} is larger than patch_size {self.patch_size}: the pixels "
                "between windows would never be occluded; use a stride <= the patch size"
            )
        self.baseline = float(baseline)

    def windows(self, height: int, width: int) -> torch.Tensor:
        """(n_windows, 2) top-left corners."""
        rows = window_starts(height, self.patch_size[0], self.stride[0])
        cols = window_starts(width, self.patch_size[1], self.stride[1])
        return torch.tensor([(r, c) for r in rows for c in cols], device=self.device)

    def window_masks(self, corners: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Indicator masks (m, H, W) of the given windows (1 inside)."""
        ph, pw = min(self.patch_size[0], height), min(self.patch_size[1], width)
        r = torch.arange(height, device=self.device)[None, :, None]
        c = torch.arange(width, device=self.device)[None, None, :]
        top, left = corners[:, 0, None, None], corners[:, 1, None, None]
        return ((r >= top) & (r < top + ph) & (c >= left) & (c < left + pw)).float()

    def explain(self, images, targets):
        n, _, h, w = images.shape
        corners = self.windows(h, w)

        def perturb(imgs, idx):
            m = self.window_masks(corners[idx], h, w)[None, :, None]
            return imgs[:, None] * (1.0 - m) + self.baseline * m

        scores = self.perturbed_scores(images, targets, len(corners), perturb)
        clean = self.clean_scores(images, targets)
        drops = clean[:, None] - scores
        total = torch.zeros(n, h, w, device=self.device)
        count = torch.zeros(h, w, device=self.device)
        for j0 in range(0, len(corners), self.batch_size):
            masks = self.window_masks(corners[j0 : j0 + self.batch_size], h, w)
            total += torch.einsum("np,phw->nhw", drops[:, j0 : j0 + self.batch_size], masks)
            count += masks.sum(dim=0)
        return zero_if_constant(total / count, torch.cat([clean[:, None], scores], dim=1), self.name)
