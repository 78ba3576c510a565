"""Input partitions: maps from unit-hypercube points to model inputs.

A partition is a callable ``partition(x) -> inputs`` taking a ``(B, d)`` tensor of
points in ``[0, 1]^d`` and returning a batch of ``B`` model inputs built on the
points' device, with an attribute ``d`` (the number of sensitivity inputs). Feed
``compose(model, partition)`` to :func:`~shortcut_audit.sensitivity.morris` or
:func:`~shortcut_audit.sensitivity.sobol`: images are then built batch by batch,
inside ``f``, so no design-sized stack of images ever exists.

Public API
----------
``SemanticPartition(n_levels, names=None, render=None)``
    Each coordinate picks one of a factor's discrete levels,
    ``level = min(floor(x * m), m - 1)`` (uniform over the ``m`` levels when ``x`` is
    uniform); ``render(levels (B, d) long) -> inputs`` turns them into images (for
    Biased-MNIST: colour and position factors through the renderer).
``ImageGrid(height, width, regions)``
    MoSIP's ``w x w`` partition of an image: ``region_index`` (H, W), ``lump(images)``
    (sum of each region's pixels over all channels), ``region_map(images)`` (each
    pixel's share of its region's lumped value) and ``reconstruct(lumped, region_map)``
    with ``reconstruct(lump(x), region_map(x)) == x``.
``GridPartition(grid, image, lower, upper)`` and its constructors
    ``GridPartition.local(grid, image, radius)``: each lumped value uniform in
    ``[L (1 - radius), L (1 + radius)]`` around the image's own value ``L``;
    ``GridPartition.global_range(grid, image, reference_images)``: each region's
    lumped value between its minimum and maximum over a set of images.
    The point ``x`` sets ``lumped = lower + x * (upper - lower)`` and the image is
    rebuilt with the explained image's own region map.
``MaskPartition(image, grid_size, perturbation, upsampling="nearest")``
    Sobol-attribution masks (Fel et al. 2021): ``x`` is a low-resolution
    ``gh x gw`` mask, upsampled to the image size (``"nearest"`` or ``"bilinear"``)
    and applied by a perturbation from :mod:`.perturbations`.
``compose(model, partition, output=None)``
    ``f(x) = output(model(partition(x)))`` under ``torch.no_grad()``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from shortcut_audit.sensitivity.perturbations import Inpainting

__all__ = ["GridPartition", "ImageGrid", "MaskPartition", "SemanticPartition", "compose", "global_lump_bounds"]


def _check_points(x: torch.Tensor, d: int) -> None:
    if x.dim() != 2 or x.shape[1] != d:
        raise ValueError(f"expected points of shape (B, {d}), got {tuple(x.shape)}")


def _pair(value: int | Sequence[int], what: str) -> tuple[int, int]:
    pair = (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) < 1:
        raise ValueError(f"{what} must be a positive int or a pair of positive ints, got {value!r}")
    return pair


class SemanticPartition:
    """Discrete semantic factors (MoSIP on Biased-MNIST: digit colour, background, position).

    Parameters
    ----------
    n_levels : sequence of int
        Number of discrete values of each factor (all >= 1).
    names : sequence of str, optional
        Factor names (default ``x0, x1, ...``).
    render : callable, optional
        ``render(levels) -> inputs`` with ``levels`` a ``(B, d)`` LongTensor; without
        it the partition returns the levels themselves.
    """

    def __init__(
        self,
        n_levels: Sequence[int],
        names: Sequence[str] | None = None,
        render: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.n_levels = tuple(int(m) for m in n_levels)
        if not self.n_levels or min(self.n_levels) < 1:
            raise ValueError(f"n_levels must be a non-empty sequence of ints >= 1, got {n_levels!r}")
        self.names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(len(self.n_levels)))
        if len(self.names) != len(self.n_levels):
            raise ValueError(f"{len(self.names)} names for {len(self.n_levels)} factors")
        self.render = render

    @property
    def d(self) -> int:
        return len(self.n_levels)

    def levels(self, x: torch.Tensor) -> torch.Tensor:
        """Map points ``(B, d)`` to factor levels ``(B, d)``: ``min(floor(x * m), m - 1)``."""
        _check_points(x, self.d)
        m = torch.tensor(self.n_levels, device=x.device, dtype=torch.int64)
        return torch.minimum(torch.floor(x * m.to(x.dtype)).to(torch.int64), m - 1).clamp_(min=0)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        levels = self.levels(x)
        return self.render(levels) if self.render is not None else levels


class ImageGrid:
    """MoSIP's ``w x w`` grid of image regions (row-major region numbering).

    Pixel ``(h, w_)`` belongs to region ``(h * rows // H) * cols + (w_ * cols // W)``,
    which is exactly the cell a nearest-neighbour upsampling of a ``rows x cols`` mask
    assigns it to, so grid regions and upsampled mask cells coincide.

    Parameters
    ----------
    height, width : int
        Image size in pixels.
    regions : int or (int, int)
        Regions per side (``w``), or ``(rows, cols)``.
    """

    def __init__(self, height: int, width: int, regions: int | Sequence[int]) -> None:
        self.height, self.width = int(height), int(width)
        self.rows, self.cols = _pair(regions, "regions")
        if self.rows > self.height or self.cols > self.width:
            raise ValueError(f"a {self.rows}x{self.cols} grid does not fit a {self.height}x{self.width} image")
        row_of = torch.arange(self.height) * self.rows // self.height
        col_of = torch.arange(self.width) * self.cols // self.width
        self.region_index = row_of[:, None] * self.cols + col_of[None, :]
        self.region_sizes = torch.bincount(self.region_index.flatten(), minlength=self.d)

    @property
    def d(self) -> int:
        return self.rows * self.cols

    def _check_images(self, images: torch.Tensor) -> None:
        if images.dim() != 4 or images.shape[2:] != (self.height, self.width):
            raise ValueError(f"images must have shape (N, C, {self.height}, {self.width}), got {tuple(images.shape)}")

    def lump(self, images: torch.Tensor) -> torch.Tensor:
        """Lumped value of each region: the sum of its pixels over all channels, ``(N, d)``."""
        self._check_images(images)
        index = self.region_index.to(images.device).flatten()
        per_pixel = images.sum(dim=1).flatten(1)
        lumped = torch.zeros(images.shape[0], self.d, device=images.device, dtype=images.dtype)
        return lumped.index_add_(1, index, per_pixel)

    def region_map(self, images: torch.Tensor) -> torch.Tensor:
        """Each pixel's share of its region's lumped value, ``(N, C, H, W)``.

        Shares within a region sum to 1. A region whose lumped value is 0 gets equal
        shares ``1 / (C * pixels)``, so a new lumped value spreads evenly over it.
        """
        lumped = self.lump(images)
        index = self.region_index.to(images.device)
        per_pixel_lump = lumped[:, index].unsqueeze(1)  # (N, 1, H, W)
        uniform = 1.0 / (images.shape[1] * self.region_sizes.to(images.device, images.dtype))[index]
        safe = torch.where(per_pixel_lump == 0, torch.ones_like(per_pixel_lump), per_pixel_lump)
        return torch.where(per_pixel_lump == 0, uniform.expand_as(images), images / safe)

    def reconstruct(self, lumped: torch.Tensor, region_map: torch.Tensor) -> torch.Tensor:
        """Images from lumped values ``(B, d)`` and a region map ``(C, H, W)`` or ``(B, C, H, W)``."""
        _check_points(lumped, self.d)
        index = self.region_index.to(lumped.device)
        return lumped[:, index].unsqueeze(1) * region_map.to(lumped.device, lumped.dtype)

    def upsample(self, cells: torch.Tensor) -> torch.Tensor:
        """Nearest-neighbour upsampling of per-region values ``(B, d)`` to ``(B, 1, H, W)``."""
        _check_points(cells, self.d)
        return cells[:, self.region_index.to(cells.device)].unsqueeze(1)


class GridPartition:
    """MoSIP lumped-region inputs of one image: ``x`` sets each region's lumped value.

    Parameters
    ----------
    grid : ImageGrid
    image : torch.Tensor
        The explained image ``(C, H, W)``; its region map spreads the lumped values.
    lower, upper : torch.Tensor
        Per-region bounds ``(d,)`` of the lumped values; ``x = 0`` gives ``lower``.
    """

    def __init__(self, grid: ImageGrid, image: torch.Tensor, lower: torch.Tensor, upper: torch.Tensor) -> None:
        if image.dim() != 3:
            raise ValueError(f"image must have shape (C, H, W), got {tuple(image.shape)}")
        lower, upper = torch.as_tensor(lower), torch.as_tensor(upper)
        if lower.shape != (grid.d,) or upper.shape != (grid.d,):
            raise ValueError(f"lower and upper must have shape ({grid.d},)")
        if bool((upper < lower).any()):
            raise ValueError("every upper bound must be >= its lower bound")
        self.grid = grid
        self.map = grid.region_map(image.unsqueeze(0))[0]
        self.lower = lower.to(image.device, image.dtype)
        self.upper = upper.to(image.device, image.dtype)

    @property
    def d(self) -> int:
        return self.grid.d

    @classmethod
    def local(cls, grid: ImageGrid, image: torch.Tensor, radius: float = 0.5) -> GridPartition:
        """Local sampling: lumped value ``L`` of each region uniform in ``[L(1-r), L(1+r)]``."""
        if radius < 0:
            raise ValueError(f"local sampling radius must be >= 0, got {radius}")
        lumped = grid.lump(image.unsqueeze(0))[0]
        half_width = radius * lumped.abs()
        return cls(grid, image, lumped - half_width, lumped + half_width)

    @classmethod
    def global_range(
        cls, grid: ImageGrid, image: torch.Tensor, reference_images: torch.Tensor, batch_size: int = 256
    ) -> GridPartition:
        """Global sampling: each region between its min and max lumped value over ``reference_images``."""
        lower, upper = global_lump_bounds(grid, reference_images, batch_size)
        return cls(grid, image, lower, upper)

    def lumped(self, x: torch.Tensor) -> torch.Tensor:
        """Lumped values ``(B, d)`` at points ``x``: ``lower + x * (upper - lower)``."""
        _check_points(x, self.d)
        lower, upper = self.lower.to(x.device, x.dtype), self.upper.to(x.device, x.dtype)
        return torch.addcmul(lower, x, upper - lower)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.grid.reconstruct(self.lumped(x), self.map.to(x.device, x.dtype))


def global_lump_bounds(
    grid: ImageGrid, images: torch.Tensor, batch_size: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-region minimum and maximum lumped value over ``images`` (N, C, H, W), in batches."""
    if images.dim() != 4 or images.shape[0] < 1:
        raise ValueError(f"reference images must have shape (N, C, H, W) with N >= 1, got {tuple(images.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lower: torch.Tensor | None = None
    upper: torch.Tensor | None = None
    for start in range(0, images.shape[0], batch_size):
        lumped = grid.lump(images[start : start + batch_size])
        batch_low, batch_high = lumped.min(dim=0).values, lumped.max(dim=0).values
        lower = batch_low if lower is None else torch.minimum(lower, batch_low)
        upper = batch_high if upper is None else torch.maximum(upper, batch_high)
    if lower is None or upper is None:
        raise ValueError("no reference image was read")
    return lower, upper


class MaskPartition:
    """Low-resolution masks applied to one image (Fel et al. 2021, Sobol attribution).

    Parameters
    ----------
    image : torch.Tensor
        The explained image ``(C, H, W)``.
    grid_size : int or (int, int)
        Mask resolution ``gh x gw``; ``d = gh * gw`` (row-major cells).
    perturbation : callable, optional
        ``perturbation(image, masks (B, 1, H, W)) -> (B, C, H, W)``; default
        :class:`~.perturbations.Inpainting` towards 0.
    upsampling : {"nearest", "bilinear"}
        Nearest keeps each cell's value on exactly the pixels of the matching
        :class:`ImageGrid` region; bilinear uses ``align_corners=False``. Both take the
        output size as ``(H, W)``, so non-square images keep their orientation.
    """

    def __init__(
        self,
        image: torch.Tensor,
        grid_size: int | Sequence[int],
        perturbation: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        upsampling: str = "nearest",
    ) -> None:
        if image.dim() != 3:
            raise ValueError(f"image must have shape (C, H, W), got {tuple(image.shape)}")
        if upsampling not in ("nearest", "bilinear"):
            raise ValueError(f"unknown upsampling {upsampling!r}; choose 'nearest' or 'bilinear'")
        self.image = image
        self.grid = ImageGrid(image.shape[1], image.shape[2], grid_size)
        self.perturbation = perturbation if perturbation is not None else Inpainting(0.0)
        self.upsampling = upsampling

    @property
    def d(self) -> int:
        return self.grid.d

    def masks(self, x: torch.Tensor) -> torch.Tensor:
        """Upsampled masks ``(B, 1, H, W)`` from points ``(B, d)``."""
        _check_points(x, self.d)
        if self.upsampling == "nearest":
            return self.grid.upsample(x)
        low_res = x.view(-1, 1, self.grid.rows, self.grid.cols)
        return F.interpolate(low_res, size=(self.grid.height, self.grid.width), mode="bilinear", align_corners=False)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.perturbation(self.image.to(x.device), self.masks(x))


def compose(
    model: Callable[[torch.Tensor], torch.Tensor],
    partition: Callable[[torch.Tensor], torch.Tensor],
    output: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return ``f(x) = output(model(partition(x)))`` evaluated without gradients.

    ``output`` selects what is analysed from the model's outputs, e.g.
    ``lambda logits: logits.softmax(1)[:, target]``; default: the raw outputs.
    """

    def f(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            y = model(partition(x))
            return output(y) if output is not None else y

    return f
