"""Sobol attribution (Fel, Cadene, Chalvidal, Cord, Vigouroux & Serre, NeurIPS 2021).

"Look at the variance! Efficient black-box explanations with Sobol-based
sensitivity analysis." A low-resolution mask ``M in [0, 1]^d`` (``d = g x g``
cells) drawn from a quasi-Monte-Carlo design is upsampled to the image and applied
by a perturbation ``tau(x, M)``; the Sobol indices of the cells on ``f(tau(x, M))``
form the explanation:

- total index (Eq. 4, estimated with Jansen's formula, Eq. 8):
  ``S_Ti = E[Var(f | M_~i)] / Var(f)``, the default;
- first order (Eq. 3): ``S_i = Var(E[f | M_i]) / Var(f)``;
- signed total: ``S_Ti * sign(f(x) - f(x with cell i removed))``, the sign of the
  occlusion difference, so that cells supporting the class are positive.

The design is Saltelli's ``A, B, AB_i`` scheme (N rows each) from the sensitivity
engine's samplers and estimators; without first order ``B`` itself is never
evaluated, so the cost is ``N (d + 1)`` forwards, ``N (d + 2)`` with it. All images
of a batch share the masks; only ``batch_size`` perturbed inputs exist at a time.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from shortcut_audit.attribution.base import (
    BlackBoxExplainer,
    check_choice,
    check_positive_int,
    pair,
    zero_if_constant,
)
from shortcut_audit.sensitivity.estimators import get_estimator
from shortcut_audit.sensitivity.partitions import ImageGrid
from shortcut_audit.sensitivity.perturbations import Inpainting, gaussian_blur, make_perturbation
from shortcut_audit.sensitivity.samplers import check_sampler, sample
from shortcut_audit.sensitivity.sobol import saltelli_rows, sobol_indices

INDICES = ("total", "first", "signed_total")
# the paper's names -> the engine's perturbation names
PERTURBATION_NAMES = {"inpainting": "inpainting", "blurring": "blur", "blur": "blur", "amplitude": "amplitude"}


class SobolAttribution(BlackBoxExplainer):
    """Total (or first-order, or signed total) Sobol indices of mask cells, per image.

    Parameters
    ----------
    grid_size
        Mask resolution ``g`` (int or (rows, cols)); the paper uses 11 (d = 121).
    nb_design
        N, the base sample size of the design (32 in the paper: 3,936 forwards with
        first order at 11 x 11).
    perturbation
        ``"inpainting"`` (towards ``baseline``, 0 in the paper), ``"blurring"``
        (Gaussian blur of ``blur_sigma`` pixels) or ``"amplitude"`` (``x + (M - 0.5) s``).
    index
        ``"total"`` (default), ``"first"`` or ``"signed_total"``.
    estimator
        Name of a Sobol estimator of the engine (``"jansen"`` as in the paper).
    sampler
        Name of a point set of the engine (``"sobol"``: scrambled Sobol QMC).
    upsampling
        ``"nearest"`` (the paper's choice for sharp cells) or ``"bilinear"``.
    """

    name = "sobol"

    def __init__(self, model, *, grid_size=11, nb_design: int = 32, perturbation: str = "inpainting",
                 index: str = "total", estimator: str = "jansen", sampler: str = "sobol",
                 upsampling: str = "nearest", baseline: float = 0.0, blur_sigma: float = 2.0,
                 amplitude: float = 1.0, batch_size: int = 256, device=None, seed: int = 0):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.grid_size = pair("grid_size", grid_size)
        self.nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        check_choice("perturbation", perturbation, tuple(PERTURBATION_NAMES))
        self.perturbation_name = PERTURBATION_NAMES[perturbation]
        kwargs = {"inpainting": {"baseline": baseline}, "blur": {"sigma": blur_sigma},
                  "amplitude": {"scale": amplitude}}[self.perturbation_name]
        self.perturbation = make_perturbation(self.perturbation_name, **kwargs)
        self.index = check_choice("index", index, INDICES)
        get_estimator(estimator)
        self.estimator = estimator
        self.sampler = check_sampler(sampler)
        self.upsampling = check_choice("upsampling", upsampling, ("nearest", "bilinear"))

    @property
    def d(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    @property
    def needs_first_order(self) -> bool:
        return self.index == "first"

    def n_forwards(self) -> int:
        """Forward passes per image: ``N (d + 2)`` with first order, ``N (d + 1)`` without (+ d + 1 signed)."""
        return self.n_design_rows() + (self.d + 1 if self.index == "signed_total" else 0)

    def base_matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The base matrices ``A`` and ``B`` (N, d): two halves of one 2d-dimensional QMC set."""
        points = sample(self.sampler, self.nb_design, 2 * self.d, seed=self.seed, device=self.device)
        return points[:, : self.d], points[:, self.d:]

    def n_design_rows(self) -> int:
        return self.nb_design * (self.d + 1 + int(self.needs_first_order))

    def upsample(self, cells: torch.Tensor, grid: ImageGrid) -> torch.Tensor:
        """Masks (m, 1, H, W) from cell values (m, d)."""
        if self.upsampling == "nearest":
            return grid.upsample(cells)
        low = cells.view(-1, 1, grid.rows, grid.cols)
        return F.interpolate(low, size=(grid.height, grid.width), mode="bilinear", align_corners=False)

    def masked_scores(self, images, targets, rows, n_rows: int, grid: ImageGrid) -> torch.Tensor:
        """Scores (N, n_rows) of every image under every mask; ``rows(start, stop)`` builds mask cells.

        Blurring is inpainting towards each image's blurred copy, so the blur is computed
        once per image rather than once per chunk of masks.
        """
        if self.perturbation_name == "blur":
            blurred = torch.stack([gaussian_blur(img, self.perturbation.sigma) for img in images])

            def perturb(imgs, idx, bases):
                masks = self.upsample(rows(int(idx[0]), int(idx[-1]) + 1), grid)
                return torch.stack([Inpainting(base)(img, masks) for img, base in zip(imgs, bases)])

            return self.perturbed_scores(images, targets, n_rows, perturb, aux=blurred)

        def perturb(imgs, idx):
            masks = self.upsample(rows(int(idx[0]), int(idx[-1]) + 1), grid)
            return torch.stack([self.perturbation(img, masks) for img in imgs])

        return self.perturbed_scores(images, targets, n_rows, perturb)

    def occlusion_signs(self, images, targets, grid: ImageGrid) -> torch.Tensor:
        """``sign(f(x) - f(x with cell i removed))``, (N, d)."""
        keep = 0.5 if self.perturbation_name == "amplitude" else 1.0
        cells = torch.full((self.d, self.d), keep, device=self.device)
        cells.fill_diagonal_(0.0)
        removed = self.masked_scores(images, targets, lambda i, j: cells[i:j], self.d, grid)
        return torch.sign(self.clean_scores(images, targets)[:, None] - removed)

    def indices(self, scores: torch.Tensor) -> torch.Tensor:
        """Sobol indices (N, d) of each image from its design scores (N, rows), via the engine."""
        blocks = self.d + 1 + int(self.needs_first_order)
        outputs = scores.T.reshape(blocks, self.nb_design, scores.shape[0])
        result = sobol_indices(outputs, self.estimator, first_order=self.needs_first_order, n_resamples=0)
        key = "first" if self.needs_first_order else "total"
        return result[key].T

    def explain(self, images, targets):
        n, _, h, w = images.shape
        grid = ImageGrid(h, w, self.grid_size)
        a, b = self.base_matrices()

        def rows(start, stop):
            return saltelli_rows(a, b, start, stop, first_order=self.needs_first_order)

        scores = self.masked_scores(images, targets, rows, self.n_design_rows(), grid)
        cell_values = self.indices(scores).float()
        if self.index == "signed_total":
            cell_values = cell_values * self.occlusion_signs(images, targets, grid)
        maps = grid.upsample(cell_values)[:, 0]
        return zero_if_constant(maps, scores, self.name)
