"""Sobol attribution (Fel, Cadene, Chalvidal, Cord, Vigouroux & Serre, NeurIPS 2021).

"Look at the variance! Efficient black-box explanations with Sobol-based
sensitivity analysis." A low-resolution mask ``M in [0, 1]^d`` (``d = g x g``
cells) drawn from a quasi-Monte-Carlo design is upsampled to the image and applied
by a perturbation ``tau(x, M)``; the Sobol indices of the cells on ``f(tau(x, M))``
form the explanation:

- total index (Definition 2, Eq. 5): ``S_Ti = E[Var(f | M_~i)] / Var(f)``, the default;
- first order (Definition 1, Eq. 4): ``S_i = Var(E[f | M_i]) / Var(f)``;
- signed total (Sec. 3.3.1, Eq. 7): ``S_Ti * sign(f(x) - f(x with cell i removed))``,
  the sign of the occlusion difference, so that cells supporting the class are positive.

Estimation (Sec. 3.3, Eq. 6, Jansen's estimator by default): two N x d QMC matrices
``A`` and ``B`` and the d matrices ``C(i)`` (``A`` with column i from ``B``) give

``S_Ti = 1/(2N) sum_j (f(A_j) - f(C(i)_j))^2 / V``,
``S_i = (V - 1/(2N) sum_j (f(B_j) - f(C(i)_j))^2) / V``,

with ``V = 1/(N - 1) sum_j (f(A_j) - f0)^2``, ``f0 = 1/N sum_j f(A_j)``: the sample
variance of the outputs on ``A`` alone (``variance="sample_a"``, also Algorithm 1).
The extracted text writes both sums from ``j = 0`` to ``N`` (N + 1 terms for N rows);
they are read as ``j = 1..N``, as Algorithm 1 computes them. ``variance="pooled"`` is
the sensitivity engine's convention instead (the 1/n variance pooled over ``A`` and
``B``, Saltelli et al. 2010 and SALib): the same maps up to a per-image factor for
total indices, a lower-variance denominator for first order.

Masks are upsampled to the image with nearest-neighbour interpolation before the
perturbation (Sec. 4: "upsampled with a nearest-neighbor interpolation method"), and
the d indices are upsampled to the final map bilinearly (Sec. 3.3: "we obtain our final
explanation map by applying a bilinear upsampling"); ``map_upsampling="nearest"`` keeps
cell-constant maps (each pixel carries its cell's index) instead.

The design is Saltelli's ``A, B, AB_i`` scheme (N rows each) from the sensitivity
engine's samplers and estimators; without first order ``B`` itself is never
evaluated, so the cost is ``N (d + 1)`` forwards, ``N (d + 2)`` with it (the paper's
count, N (d + 2), always evaluates ``B``). All images of a batch share the masks; only
``batch_size`` perturbed inputs exist at a time.
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
from shortcut_audit.sensitivity.estimators import get_estimator, output_variance
from shortcut_audit.sensitivity.partitions import ImageGrid
from shortcut_audit.sensitivity.perturbations import Blur, Inpainting, gaussian_blur, make_perturbation
from shortcut_audit.sensitivity.samplers import check_sampler, sample
from shortcut_audit.sensitivity.sobol import saltelli_rows

INDICES = ("total", "first", "signed_total")
VARIANCES = ("sample_a", "pooled")
UPSAMPLINGS = ("nearest", "bilinear")
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
        Upsampling of the masks before the perturbation: ``"nearest"`` (Sec. 4, the
        paper's) or ``"bilinear"``.
    map_upsampling
        Upsampling of the d indices to the final map: ``"bilinear"`` (Sec. 3.3, the
        paper's) or ``"nearest"`` (cell-constant maps).
    variance
        Denominator ``V`` of Eq. 6: ``"sample_a"`` (the paper's: sample variance of
        f(A), 1/(N - 1)) or ``"pooled"`` (1/n variance of f over A and B together).
    """

    name = "sobol"

    def __init__(
        self,
        model,
        *,
        grid_size=11,
        nb_design: int = 32,
        perturbation: str = "inpainting",
        index: str = "total",
        estimator: str = "jansen",
        sampler: str = "sobol",
        upsampling: str = "nearest",
        map_upsampling: str = "bilinear",
        variance: str = "sample_a",
        baseline: float = 0.0,
        blur_sigma: float = 2.0,
        amplitude: float = 1.0,
        batch_size: int = 256,
        device=None,
        seed: int = 0,
    ):
        super().__init__(model, batch_size=batch_size, device=device, seed=seed)
        self.grid_size = pair("grid_size", grid_size)
        self.nb_design = check_positive_int("nb_design", nb_design, minimum=2)
        check_choice("perturbation", perturbation, tuple(PERTURBATION_NAMES))
        self.perturbation_name = PERTURBATION_NAMES[perturbation]
        kwargs = {
            "inpainting": {"baseline": baseline},
            "blur": {"sigma": blur_sigma},
            "amplitude": {"scale": amplitude},
        }[self.perturbation_name]
        self.perturbation = make_perturbation(self.perturbation_name, **kwargs)
        self.index = check_choice("index", index, INDICES)
        get_estimator(estimator)
        self.estimator = estimator
        self.sampler = check_sampler(sampler)
        self.upsampling = check_choice("upsampling", upsampling, UPSAMPLINGS)
        self.map_upsampling = check_choice("map_upsampling", map_upsampling, UPSAMPLINGS)
        self.variance = check_choice("variance", variance, VARIANCES)

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
        return points[:, : self.d], points[:, self.d :]

    def n_design_rows(self) -> int:
        return self.nb_design * (self.d + 1 + int(self.needs_first_order))

    def upsample(self, cells: torch.Tensor, grid: ImageGrid, how: str | None = None) -> torch.Tensor:
        """(m, 1, H, W) from cell values (m, d): ``how`` (the mask upsampling by default).

        Bilinear interpolation uses half-pixel centres (``align_corners=False``), so each
        cell's value sits at its cell's centre and the borders are held constant.
        """
        if (how or self.upsampling) == "nearest":
            return grid.upsample(cells)
        low = cells.view(-1, 1, grid.rows, grid.cols)
        return F.interpolate(low, size=(grid.height, grid.width), mode="bilinear", align_corners=False)

    def masked_scores(self, images, targets, rows, n_rows: int, grid: ImageGrid) -> torch.Tensor:
        """Scores (N, n_rows) of every image under every mask; ``rows(start, stop)`` builds mask cells.

        Blurring is inpainting towards each image's blurred copy, so the blur is computed
        once per image rather than once per chunk of masks.
        """
        if isinstance(self.perturbation, Blur):
            blurred = torch.stack([gaussian_blur(img, self.perturbation.sigma) for img in images])

            def perturb_towards(imgs, idx, bases):
                masks = self.upsample(rows(int(idx[0]), int(idx[-1]) + 1), grid)
                return torch.stack([Inpainting(base)(img, masks) for img, base in zip(imgs, bases)])

            return self.perturbed_scores(images, targets, n_rows, perturb_towards, aux=blurred)

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
        """Sobol indices (N, d) of each image from its design scores (N, rows), Eq. 6.

        The estimator's formula comes from the engine; the denominator is ``variance``.
        Outputs are centred by their mean first (the engine's convention: the
        difference-based estimators, Jansen's included, do not change; the product-based
        ones avoid cancellation). An image whose outputs never vary gets indices 0.
        """
        first = self.needs_first_order
        outputs = scores.T.reshape(self.d + 1 + int(first), self.nb_design, scores.shape[0]).double()
        outputs = outputs - outputs.mean(dim=(0, 1))
        ya = outputs[0]
        yb = outputs[1] if first else None
        yab = outputs[1 + int(first) :]
        if self.variance == "sample_a":
            variance = ya.var(dim=0, unbiased=True)
        else:
            variance = output_variance(ya, yb)
        estimator = get_estimator(self.estimator)
        if yb is not None:
            return estimator.first(ya, yb, yab, variance).T
        return estimator.total(ya, yab, variance).T

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
        maps = self.upsample(cell_values, grid, self.map_upsampling)[:, 0]
        return zero_if_constant(maps, scores, self.name)
