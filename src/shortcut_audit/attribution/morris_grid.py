"""MoSIP grid Morris: Morris screening on ``w x w`` lumped image regions.

MoSIP (Sec. 3.2): the image is split into ``w x w`` regions (the engine's
:class:`ImageGrid`); each region is one Morris input whose value is the region's
*lumped* value (the sum of its pixels over channels). A design point
``x in [0, 1]^d`` sets every lumped value to ``lower + x (upper - lower)`` and the
image is rebuilt with the explained image's own region map (each pixel keeps its
share of its region), so only the regions' intensities move, never their texture.

Sampling ranges (MoSIP Sec. 5, "local and global sensitivity analysis"):

- ``"local"``: each image's lumped values are drawn uniformly around the image's own
  values ``L``, which are the mean of the range: ``[L (1 - r), L (1 + r)]``. The paper
  does not give the width; ``radius`` r is ours (default 0.5).
- ``"global"``: every region's bounds are the minimum and maximum lumped value of that
  region over all the analysed images (``reference_images``); the same samples are then
  applied to every image's region map. :func:`average_over_images` averages the
  per-image statistics into the global result ("the sensitivity results are averaged").

Morris trajectories (Morris 1991; ``delta = p / (2 (p - 1))``, MoSIP Eq. 1 and App. A.1)
are drawn once by the engine and shared by every image of the batch; the elementary
effects ``EE_i = (f(x + delta e_i) - f(x)) / delta`` (the unit-cube step, as SALib,
which the paper used) give per region ``mu* = mean |EE_i|`` (Eq. 3, Campolongo et al.
2007) and ``sigma = std(EE_i)`` (Eq. 2, ddof = 1). :meth:`MorrisGridAttribution.region_statistics`
returns mu*, sigma and mu* + sigma (the three rankings of MoSIP Figs. 4, 5, 9, 10) from
one set of forwards; the explainer paints the chosen ``statistic`` onto its region's
pixels. Cost: ``r (d + 1)`` forwards per image.
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
from shortcut_audit.sensitivity.partitions import GridPartition, ImageGrid, global_lump_bounds

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
        Relative half-width of the local range (MoSIP gives only its centre, the
        image's own lumped value; 0.5 = +-50%).
    reference_images
        (R, C, H, W) images whose per-region lumped minimum and maximum bound the
        global range (MoSIP Sec. 5: all analysed images).
    bounds
        ``(lower, upper)``, each ``(rows, cols)``: the global range itself, in place of
        ``reference_images`` (e.g. the minimum and maximum over images held by several
        processes, :func:`~shortcut_audit.sensitivity.partitions.global_lump_bounds` of each).
    statistic
        ``"mu_star"`` (default), ``"sigma"`` or ``"mu_star_plus_sigma"``.
    """

    name = "morris_grid"

    def __init__(
        self,
        model,
        *,
        grid_size=8,
        n_trajectories: int = 40,
        levels: int = 8,
        sampling: str = "local",
        radius: float = 0.5,
        reference_images=None,
        bounds=None,
        statistic: str = "mu_star",
        batch_size: int = 256,
        device=None,
        seed: int = 0,
    ):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.grid_size = pair("grid_size", grid_size)
        self.n_trajectories = check_positive_int("n_trajectories", n_trajectories, minimum=2)
        grid_step(levels)
        self.levels = int(levels)
        self.sampling = check_choice("sampling", sampling, SAMPLINGS)
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius!r}")
        self.radius = float(radius)
        if self.sampling == "global" and (reference_images is None) == (bounds is None):
            raise ValueError(
                "global sampling needs reference_images (R, C, H, W) or bounds (lower, upper), one of them"
            )
        self.reference_images = reference_images
        self.bounds = bounds
        self.statistic = check_choice("statistic", statistic, STATISTICS)

    @property
    def d(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    def n_forwards(self) -> int:
        """Forward passes per image, ``r (d + 1)``."""
        return self.n_trajectories * (self.d + 1)

    def partitions(self, images: torch.Tensor, grid: ImageGrid) -> list[GridPartition]:
        """One engine partition per image (its region map and lumped-value bounds).

        Global bounds (given, or computed once over ``reference_images``) are shared by every image.
        """
        if self.sampling == "local":
            return [GridPartition.local(grid, img, self.radius) for img in images]
        if self.bounds is not None:
            lower, upper = (torch.as_tensor(b).to(self.device) for b in self.bounds)
        else:
            refs = torch.as_tensor(self.reference_images, dtype=torch.float32).to(self.device)
            lower, upper = global_lump_bounds(grid, refs, self.batch_size)
        return [GridPartition(grid, img, lower, upper) for img in images]

    def region_statistics(self, images, targets) -> dict[str, torch.Tensor]:
        """mu*, sigma and mu* + sigma of every region, each ``(N, rows, cols)`` float64 on the CPU.

        All three come from the same ``r (d + 1)`` forwards per image. Images whose
        score never moves get zeros (with the engine's warning).
        """
        images, targets = self._prepare(images, targets)
        stats, scores = self._statistics(images, targets)
        constant = (scores.amax(dim=1) - scores.amin(dim=1)) <= 0
        rows, cols = self.grid_size
        out = {}
        for name, values in stats.items():
            values = values.T.cpu()  # (N, d)
            values[constant.cpu()] = 0.0
            out[name] = values.reshape(-1, rows, cols)
        return out

    def _statistics(self, images: torch.Tensor, targets: torch.Tensor):
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
            rebuilt = grid.reconstruct(
                lumped.reshape(g * m, -1), maps[:, None].expand(-1, m, -1, -1, -1).reshape(g * m, *maps.shape[1:])
            )
            return rebuilt.view(g, m, *maps.shape[1:])

        scores = self.perturbed_scores(images, targets, design.n_points, perturb, aux=_Aux(lower, upper, region_maps))
        stats = analyse(design.effects(scores.T), n_resamples=0)
        values = {
            "mu_star": stats["mu_star"],
            "sigma": stats["sigma"],
            "mu_star_plus_sigma": stats["mu_star"] + stats["sigma"],
        }  # each (d, N)
        return values, scores

    def explain(self, images, targets):
        grid = ImageGrid(images.shape[2], images.shape[3], self.grid_size)
        stats, scores = self._statistics(images, targets)
        maps = grid.upsample(stats[self.statistic].T.float())[:, 0]
        return zero_if_constant(maps, scores, self.name)


def average_over_images(statistics: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The global MoSIP result: each per-image statistic ``(N, rows, cols)`` averaged over images.

    MoSIP Sec. 5: for the global analysis "the samples generated are used with each
    input map, and the sensitivity results are averaged". mu* + sigma of the average
    equals the average of mu* + sigma.
    """
    return {name: values.mean(dim=0) for name, values in statistics.items()}


class _Aux:
    """Per-image tensors sliced together with the images: lumped bounds and region maps."""

    def __init__(self, lower: torch.Tensor, upper: torch.Tensor, region_maps: torch.Tensor):
        self.parts = (lower, upper, region_maps)

    def __getitem__(self, item):
        if isinstance(item, slice):
            return _Aux(*(t[item] for t in self.parts))
        return self.parts[item]
