"""MoSIP grid Morris: Morris screening on ``w x w`` lumped image regions.

The image is split into ``w x w`` regions (the engine's :class:`ImageGrid`); each
region is one Morris input whose value is the region's *lumped* value (the sum of
its pixels over channels). A design point ``x in [0, 1]^d`` sets every lumped value
to ``lower + x (upper - lower)`` and the image is rebuilt with the explained image's
own region map (each pixel keeps its share of its region), so only the regions'
intensities move, never their texture. Sampling ranges:

- ``"local"``: ``[L (1 - r), L (1 + r)]`` around the image's own lumped values ``L``
  (sensitivity around this image);
- ``"global"``: each region between its minimum and maximum lumped value over a set
  of reference images (sensitivity over the data distribution).

Morris trajectories (Morris 1991; ``delta = p / (2 (p - 1))``) are drawn once by
the engine and shared by every image of the batch; the elementary effects
``EE_i = (f(x + delta e_i) - f(x)) / delta`` give per region ``mu* = mean |EE_i|``
(Campolongo et al. 2007), ``sigma = std(EE_i)`` (ddof = 1), or ``mu* + sigma``, each
painted onto its region's pixels. Cost: ``r (d + 1)`` forwards per image.
"""
from __future__ import annotations

import torch

from shortcut_audit.attribution.base import (
    BlackBoxExplainer,
    check_choice,
    check_positive_int,
    pair,
    zero_if_constant,
)
from shortcut_audit.sensitivity.morris import analyse, grid_step, trajectory_design
from shortcut_audit.sensitivity.partitions import GridPartition, ImageGrid

SAMPLINGS = ("local", "global")
STATISTICS = ("mu_star", "sigma", "mu_star_plus_sigma")


class MorrisGridAttribution(BlackBoxExplainer):
    """Per-region Morris statistics of the target score (MoSIP on image regions).

    Parameters
    ----------
    grid_size
        ``w`` (int or (rows, cols)); MoSIP uses 8 x 8 on ImageNet.
    n_trajectories
        r (40 on ImageNet in MoSIP).
    levels
        p, the number of grid levels (even; 8 in MoSIP).
    sampling
        ``"local"`` (with ``radius``) or ``"global"`` (with ``reference_images``).
    radius
        Relative half-width of the local range.
    reference_images
        (R, C, H, W) images whose per-region lumped minimum and maximum bound the
        global range.
    statistic
        ``"mu_star"`` (default), ``"sigma"`` or ``"mu_star_plus_sigma"``.
    """

    name = "morris_grid"

    def __init__(self, model, *, grid_size=8, n_trajectories: int = 40, levels: int = 8,
                 sampling: str = "local", radius: float = 0.5, reference_images=None,
                 statistic: str = "mu_star", batch_size: int = 256, device=None, seed: int = 0):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.grid_size = pair("grid_size", grid_size)
        self.n_trajectories = check_positive_int("n_trajectories", n_trajectories, minimum=2)
        grid_step(levels)
        self.levels = int(levels)
        self.sampling = check_choice("sampling", sampling, SAMPLINGS)
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius!r}")
        self.radius = float(radius)
        if self.sampling == "global" and reference_images is None:
            raise ValueError("global sampling needs reference_images (R, C, H, W)")
        self.reference_images = reference_images
        self.statistic = check_choice("statistic", statistic, STATISTICS)

    @property
    def d(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def n_forwards(self) -> int:
        """Forward passes per image, ``r (d + 1)``."""
        return self.n_trajectories * (self.d + 1)

    def partitions(self, images: torch.Tensor, grid: ImageGrid) -> list[GridPartition]:
        """One engine partition per image (its region map and lumped-value bounds)."""
        if self.sampling == "local":
            return [GridPartition.local(grid, img, self.radius) for img in images]
        refs = torch.as_tensor(self.reference_images, dtype=torch.float32).to(self.device)
        return [GridPartition.global_range(grid, img, refs, self.batch_size) for img in images]

    def explain(self, images, targets):
        n, _, h, w = images.shape
        grid = ImageGrid(h, w, self.grid_size)
        parts = self.partitions(images, grid)
        lower = torch.stack([p.lower for p in parts])
        upper = torch.stack([p.upper for p in parts])
        region_maps = torch.stack([p.map for p in parts])
        design = trajectory_design(self.n_trajectories, self.d, self.levels, seed=self.seed, device=self.device)

        def perturb(imgs, idx, aux):
            x = design.rows(int(idx[0]), int(idx[-1]) + 1)  # (m, d), shared by the group
            low, high, maps = aux[0], aux[1], aux[2]
            lumped = low[:, None] + x[None] * (high - low)[:, None]  # (g, m, d)
            g, m = lumped.shape[:2]
            rebuilt = grid.reconstruct(lumped.reshape(g * m, -1),
                                       maps[:, None].expand(-1, m, -1, -1, -1).reshape(g * m, *maps.shape[1:]))
            return rebuilt.view(g, m, *maps.shape[1:])

        scores = self.perturbed_scores(images, targets, design.n_points, perturb,
                                       aux=_Aux(lower, upper, region_maps))
        stats = analyse(design.effects(scores.T), n_resamples=0)
        values = {"mu_star": stats["mu_star"], "sigma": stats["sigma"],
                  "mu_star_plus_sigma": stats["mu_star"] + stats["sigma"]}[self.statistic]
        maps = grid.upsample(values.T.float())[:, 0]
        return zero_if_constant(maps, scores, self.name)


class _Aux:
    """Per-image tensors sliced together with the images: lumped bounds and region maps."""

    def __init__(self, lower: torch.Tensor, upper: torch.Tensor, region_maps: torch.Tensor):
        self.parts = (lower, upper, region_maps)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return _Aux(*(t[item] for t in self.parts))
        return self.parts[item]
