"""Pixel view of the audit: Sobol total-index maps on held-out Biased-MNIST images.

The factor audit asks *which factor* a model uses; the pixel view asks *where* it
looks, with the Sobol attribution of Fel et al. (2021): total indices of the cells
of a ``grid_size x grid_size`` mask (quasi-Monte-Carlo design, inpainting towards
0, nearest upsampling of the masks and of the map, Jansen estimator) on the target-class score. Because the
renderer knows which pixels are digit ink (:func:`~shortcut_audit.data.biased_mnist.digit_mask`),
the maps can be scored without any annotation:

``background_share = sum(max(S, 0) over background pixels) / sum(max(S, 0))``

the share of the positive attribution mass that falls on background pixels. A
model reading the shape puts its mass on (and next to) the stroke; a model reading
the background colour spreads it over the canvas, so the share should grow with the
background bias. It is compared with ``background_pixel_fraction``, the share a
uniform map would give. Cells straddle digit and background, so even a pure shape
model leaves some mass on background pixels of the cells that hold the stroke.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from shortcut_audit.attribution.sobol import SobolAttribution
from shortcut_audit.data.biased_mnist import digit_mask
from shortcut_audit.factors.scene import DigitBase, Scene

__all__ = ["PixelView", "background_share", "pixel_view"]


def background_share(maps: torch.Tensor, digit_pixels: torch.Tensor) -> torch.Tensor:
    """Share of each map's positive mass on background pixels, ``(n,)``.

    Parameters
    ----------
    maps : torch.Tensor
        Attribution maps ``(n, H, W)``.
    digit_pixels : torch.Tensor
        Boolean digit masks ``(n, H, W)``.

    Returns
    -------
    torch.Tensor
        float64 ``(n,)`` in [0, 1]; 0 for a map without positive mass (with a warning).
    """
    if maps.shape != digit_pixels.shape:
        raise ValueError(f"maps {tuple(maps.shape)} and digit masks {tuple(digit_pixels.shape)} differ in shape")
    positive = maps.double().clamp(min=0.0).flatten(1)
    background = ~digit_pixels.flatten(1).to(positive.device)
    total = positive.sum(dim=1)
    empty = total <= 0
    if bool(empty.any()):
        warnings.warn(
            f"{int(empty.sum())} attribution map(s) carry no positive mass; their background share is set to 0",
            RuntimeWarning,
            stacklevel=2,
        )
    on_background = (positive * background).sum(dim=1)
    return torch.where(empty, torch.zeros_like(total), on_background / torch.where(empty, 1.0, total))


@dataclass(frozen=True)
class PixelView:
    """Per-image table and arrays of the pixel view (``pixel_view.parquet``, ``maps.npz``)."""

    table: pd.DataFrame
    images: np.ndarray
    maps: np.ndarray
    digit_mask: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """Arrays for ``maps.npz``: images as float16, maps float32, masks bool."""
        return {"images": self.images.astype(np.float16), "maps": self.maps, "digit_mask": self.digit_mask}

    def per_image(self) -> dict[str, torch.Tensor]:
        """Every field with one row per image (the table's columns included), for :meth:`from_per_image`."""
        columns = {f"table/{c}": torch.from_numpy(self.table[c].to_numpy().copy()) for c in self.table.columns}
        return {
            **columns,
            "images": torch.from_numpy(self.images),
            "maps": torch.from_numpy(self.maps),
            "digit_mask": torch.from_numpy(self.digit_mask),
        }

    @classmethod
    def from_per_image(cls, fields: dict[str, torch.Tensor]) -> PixelView:
        """The view from :meth:`per_image`'s fields (of one batch of images, or several put together)."""
        table = pd.DataFrame({k.split("/", 1)[1]: v.numpy() for k, v in fields.items() if k.startswith("table/")})
        return cls(table, fields["images"].numpy(), fields["maps"].numpy(), fields["digit_mask"].numpy())


def pixel_view(
    model: Callable[[torch.Tensor], torch.Tensor],
    sample: Scene,
    n_images: int,
    grid_size: int = 7,
    nb_design: int = 16,
    batch_size: int = 512,
    seed: int = 0,
    index: torch.Tensor | None = None,
) -> PixelView:
    """Sobol total-index maps of the first ``n_images`` digits of ``sample``, scored by the digit mask.

    Each image is the digit rendered with its own factor values; the target is its
    true label. Costs ``nb_design * (grid_size**2 + 1)`` forwards per image. ``index``
    (positions among the first ``n_images``; default all) explains some of them only, e.g.
    a process's share; the Sobol design is shared by every image, so an image's map does
    not depend on the others.
    """
    if isinstance(n_images, bool) or not 1 <= int(n_images) <= len(sample):
        raise ValueError(f"n_images must be in [1, {len(sample)}] (the digit sample), got {n_images!r}")
    index = torch.arange(int(n_images)) if index is None else torch.as_tensor(index, dtype=torch.int64).cpu()
    if index.numel() and not 0 <= int(index.min()) <= int(index.max()) < int(n_images):
        raise ValueError(f"index must hold positions among the first {n_images} digits")
    part = sample.select(index.to(sample.device))
    if not isinstance(part.base, DigitBase):
        raise ValueError("the pixel view scores maps by the digit mask: it needs a scene of Biased-MNIST digits")
    images = part.render_own()
    # cell-constant maps: each pixel carries its own cell's index, so no mass leaks across cells
    explainer = SobolAttribution(
        model,
        grid_size=grid_size,
        nb_design=nb_design,
        map_upsampling="nearest",
        batch_size=batch_size,
        device=sample.device,
        seed=seed,
    )
    maps = explainer(images, part.labels)
    position = part.own_values[:, part.columns(["position"])[0]].round().long()
    digit_pixels = digit_mask(part.base.digits, position, canvas=part.base.canvas).cpu()
    shares = background_share(maps, digit_pixels)
    table = pd.DataFrame(
        {
            "image": index.numpy().astype(np.int64),
            "label": part.labels.cpu().numpy().astype(np.int64),
            "background_share": shares.numpy(),
            "background_pixel_fraction": (~digit_pixels).flatten(1).double().mean(dim=1).numpy(),
        }
    )
    return PixelView(table, images.cpu().numpy(), maps.numpy().astype(np.float32), digit_pixels.numpy())
