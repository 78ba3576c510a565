"""Shared base of every attribution method.

An explainer maps a batch of images ``(N, C, H, W)`` and integer targets ``(N,)``
to one attribution map per image, ``(N, H, W)`` float32 on the CPU. The base class
owns everything the methods share: argument checks, device placement, seeding,
turning arbitrary model outputs into target scores, and the streaming loop that
evaluates perturbed inputs in chunks of at most ``batch_size`` model inputs.

Black-box methods (``requires_gradients = False``) only ever call the model inside
``torch.no_grad()`` and never touch its parameters or call ``backward``; they work
with any callable ``images -> scores (N, classes)``, NumPy in and out included.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from shortcut_audit.runtime import resolve_device

Model = Callable[[torch.Tensor], "torch.Tensor | np.ndarray"]
# perturb(images (g, C, H, W), indices (m,)) -> perturbed inputs (g, m, C, H, W); with per-image
# ``aux`` it is called as perturb(images, indices, aux sliced like the images), hence any arity
Perturb = Callable[..., torch.Tensor]
# score(outputs (n, classes), targets (n,)) -> (n,)
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class PerImage(Protocol):
    """Per-image data sliced together with the images: a tensor, or an object holding several."""

    def __getitem__(self, index: slice, /) -> Any: ...


def check_positive_int(name: str, value: int, minimum: int = 1) -> int:
    """Return ``value`` if it is an int >= ``minimum``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_open_unit(name: str, value: float) -> float:
    """Return ``value`` if it lies in the open interval (0, 1), else raise ``ValueError``."""
    if not (isinstance(value, (int, float)) and 0.0 < float(value) < 1.0):
        raise ValueError(f"{name} must lie in (0, 1), got {value!r}")
    return float(value)


def check_positive(name: str, value: float) -> float:
    """Return ``value`` if it is a finite number > 0, else raise ``ValueError``."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def pair(name: str, value: int | tuple[int, int]) -> tuple[int, int]:
    """Normalise an int or an (h, w) pair of positive ints to a tuple."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return check_positive_int(name, value[0]), check_positive_int(name, value[1])
    v = check_positive_int(name, value)
    return v, v


def as_scores(outputs: torch.Tensor | np.ndarray, device: torch.device) -> torch.Tensor:
    """Model outputs (tensor or array-like, shape (n, classes)) as a float tensor on ``device``."""
    scores = torch.as_tensor(np.asarray(outputs) if not torch.is_tensor(outputs) else outputs)
    scores = scores.to(device=device, dtype=torch.float32)
    if scores.ndim != 2:
        raise ValueError(f"the model must return scores of shape (n, classes), got {tuple(scores.shape)}")
    if not torch.isfinite(scores).all():
        raise ValueError("the model returned NaN or infinite scores; attributions of a non-finite output are undefined")
    return scores


def target_score(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Score of each row's target class: ``outputs[i, targets[i]]``."""
    return outputs.gather(1, targets.view(-1, 1)).squeeze(1)


def reduce_channels(tensor: torch.Tensor, how: str) -> torch.Tensor:
    """Reduce ``(N, C, H, W)`` to ``(N, H, W)``: ``"sum"`` (signed) or ``"abs_max"``.

    ``"abs_max"`` is the channel reduction of Simonyan et al. (2014) for saliency;
    ``"sum"`` keeps completeness for path methods (the map sums to the attribution total).
    """
    if how == "sum":
        return tensor.sum(dim=1)
    if how == "abs_max":
        return tensor.abs().amax(dim=1)
    raise ValueError(f"channel reduction must be 'sum' or 'abs_max', got {how!r}")


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with reflect padding (kernel radius 3 sigma)."""
    radius = max(1, int(math.ceil(3.0 * sigma)))
    coords = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-0.5 * (coords / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    out = images
    for dim_kernel, pad in (
        (kernel.view(1, 1, -1, 1), (0, 0, radius, radius)),
        (kernel.view(1, 1, 1, -1), (radius, radius, 0, 0)),
    ):
        mode = "reflect" if min(images.shape[-2:]) > radius else "replicate"
        out = F.conv2d(F.pad(out, pad, mode=mode), dim_kernel.expand(c, 1, -1, -1), groups=c)
    return out


def index_seed(seed: int, index: int) -> int:
    """A 63-bit seed derived from (seed, index), so draw k never depends on chunking."""
    return int(np.random.SeedSequence([seed, index]).generate_state(2, dtype=np.uint32).view(np.uint64)[0] >> 1)


def key_seed(seed: int, key: str) -> int:
    """A 63-bit seed derived from (seed, key), e.g. an image id.

    Draws seeded so belong to the item itself: they do not depend on the items processed
    with it, on their order, or on which process of a sharded run handles it.
    """
    words = np.frombuffer(hashlib.sha256(str(key).encode("utf-8")).digest(), dtype=np.uint32)
    state = np.random.SeedSequence([int(seed), *words.tolist()]).generate_state(2, dtype=np.uint32)
    return int(state.view(np.uint64)[0] >> 1)


def indexed_randn(seed: int, indices: torch.Tensor, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Standard normal draws ``(len(indices), *shape)``; draw k is a function of (seed, k) only.

    Streaming methods regenerate their noise chunk by chunk; seeding per index keeps the
    result independent of ``batch_size`` and of how the perturbations are chunked.
    """
    draws = [
        torch.randn(shape, generator=torch.Generator().manual_seed(index_seed(seed, int(k)))) for k in indices.tolist()
    ]
    return torch.stack(draws).to(device)


def zero_if_constant(maps: torch.Tensor, scores: torch.Tensor, method: str) -> torch.Tensor:
    """Zero the maps of images whose perturbed scores never varied, with a warning.

    ``scores`` is ``(N, P)``; an image whose P scores are all equal carries no
    information about any input, so every attribution is 0 rather than 0/0.
    """
    constant = (scores.amax(dim=1) - scores.amin(dim=1)) <= 0
    if constant.any():
        warnings.warn(
            f"{method}: model output is constant under perturbation for "
            f"{int(constant.sum())} image(s); their attribution maps are set to zero",
            RuntimeWarning,
            stacklevel=3,
        )
        maps = maps.clone()
        maps[constant] = 0.0
    return maps


class Explainer:
    """Base of all attribution methods (shallow, Captum-like; strategies injected, Xplique-like).

    Parameters
    ----------
    model
        Callable from images ``(n, C, H, W)`` to scores ``(n, classes)`` (tensor or array).
    batch_size
        Largest number of inputs passed to the model in one call; bounds memory.
    device
        ``"auto"``/None (CUDA when available), ``"cpu"``, ``"cuda"`` or a ``torch.device``.
    seed
        Seed of every random draw; the same seed gives the same maps on the CPU.
    """

    requires_gradients: ClassVar[bool] = False
    name: ClassVar[str] = "explainer"

    def __init__(self, model: Model, *, batch_size: int = 64, device=None, seed: int = 0):
        if not callable(model):
            raise TypeError("model must be callable: images (n, C, H, W) -> scores (n, classes)")
        self.model = model
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.device = resolve_device(device)
        self.seed = check_positive_int("seed", seed, minimum=0)

    # ------------------------------------------------------------------ public
    def __call__(self, images, targets) -> torch.Tensor:
        """Explain ``images`` (N, C, H, W) for ``targets`` (N,); return maps (N, H, W) float32 on CPU."""
        images, targets = self._prepare(images, targets)
        maps = self.explain(images, targets)
        if not torch.isfinite(maps).all():
            raise FloatingPointError(f"{self.name} produced non-finite attributions")
        return maps.detach().to(device="cpu", dtype=torch.float32).contiguous()

    def explain(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Method-specific work on validated device tensors; returns (N, H, W)."""
        raise NotImplementedError

    # ----------------------------------------------------------------- helpers
    def generator(self, offset: int = 0) -> torch.Generator:
        """A fresh CPU generator seeded with ``seed + offset`` (draws are then moved to the device)."""
        return torch.Generator().manual_seed(self.seed + offset)

    def _prepare(self, images, targets) -> tuple[torch.Tensor, torch.Tensor]:
        images = torch.as_tensor(images).to(device=self.device, dtype=torch.float32)
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
        targets = torch.as_tensor(targets).to(device=self.device, dtype=torch.long).reshape(-1)
        if targets.numel() == 1 and images.shape[0] > 1:
            targets = targets.expand(images.shape[0])
        if targets.shape[0] != images.shape[0]:
            raise ValueError(f"got {images.shape[0]} images but {targets.shape[0]} targets")
        if not torch.isfinite(images).all():
            raise ValueError("images contain NaN or infinite values")
        return images, targets


class BlackBoxExplainer(Explainer):
    """Base of the methods that only query model outputs.

    The model is called inside ``torch.no_grad()``; no gradient, no parameter access.
    """

    requires_gradients: ClassVar[bool] = False

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Scores ``(n, classes)`` of a chunk of inputs, as float32 on the explainer's device."""
        with torch.no_grad():
            return as_scores(self.model(inputs), self.device)

    def perturbed_scores(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        n_perturbations: int,
        perturb: Perturb,
        score: ScoreFn = target_score,
        aux: PerImage | None = None,
    ) -> torch.Tensor:
        """Scores of every (image, perturbation) pair, streamed in chunks; returns (N, P).

        ``perturb(images, indices)`` returns the perturbed inputs (g, m, C, H, W) of a
        group of images for the perturbation indices (m,), contiguous and increasing;
        with ``aux`` (a per-image tensor, or any :class:`PerImage`, sliced with the
        images) it is called as ``perturb(images, indices, aux)``.

        Images are grouped ``g = min(N, batch_size)`` at a time and perturbations
        ``m = max(1, batch_size // g)`` at a time, so one chunk of masks serves a whole
        group of images and no model call sees more than ``batch_size`` inputs. Only
        the current chunk of perturbed inputs exists in memory.
        """
        n = images.shape[0]
        group = min(n, self.batch_size)
        per_chunk = max(1, self.batch_size // group)
        out = torch.empty(n, n_perturbations, device=self.device)
        for i0 in range(0, n, group):
            imgs, tgts = images[i0 : i0 + group], targets[i0 : i0 + group]
            for j0 in range(0, n_perturbations, per_chunk):
                idx = torch.arange(j0, min(j0 + per_chunk, n_perturbations), device=self.device)
                inputs = perturb(imgs, idx) if aux is None else perturb(imgs, idx, aux[i0 : i0 + group])
                g, m = inputs.shape[:2]
                outputs = self.forward(inputs.reshape(g * m, *inputs.shape[2:]))
                out[i0 : i0 + g, j0 : j0 + m] = score(outputs, tgts.repeat_interleave(m)).view(g, m)
        return out

    def clean_scores(self, images: torch.Tensor, targets: torch.Tensor, score: ScoreFn = target_score) -> torch.Tensor:
        """Scores of the unperturbed images, (N,)."""
        return self.perturbed_scores(images, targets, 1, lambda x, idx: x[:, None], score)[:, 0]


class GradientExplainer(Explainer):
    """Base of the white-box methods: the model must be differentiable torch code."""

    requires_gradients: ClassVar[bool] = True

    def gradients(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """d score[target] / d input for ``inputs`` (n, C, H, W), in chunks of ``batch_size``."""
        grads = torch.empty_like(inputs)
        for i0 in range(0, inputs.shape[0], self.batch_size):
            x = inputs[i0 : i0 + self.batch_size].detach().requires_grad_(True)
            with torch.enable_grad():
                outputs = self.model(x)
                if not torch.is_tensor(outputs):
                    raise TypeError(f"{self.name} needs a torch model that returns tensors")
                if not torch.isfinite(outputs).all():
                    raise ValueError("the model returned NaN or infinite scores")
                selected = target_score(outputs, targets[i0 : i0 + self.batch_size]).sum()
                (grad,) = torch.autograd.grad(selected, x)
            grads[i0 : i0 + self.batch_size] = grad
        return grads

    def repeated_gradients(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        n_points: int,
        point: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor], torch.Tensor],
        weight: Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor], torch.Tensor | float],
        aux: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sum over k of ``weight * grad(point)``, streamed; returns (N, C, H, W).

        ``point(images, aux, k)`` gives the inputs at which to differentiate for the
        integer tensor of indices ``k`` (m,), as ``(g, m, C, H, W)``; ``weight(images,
        aux, k)`` the matching multipliers, broadcastable to it. ``aux`` is an optional
        per-image tensor (e.g. baselines) sliced together with ``images``. At most
        ``batch_size`` inputs are alive per backward pass.
        """
        n = images.shape[0]
        group = min(n, self.batch_size)
        per_chunk = max(1, self.batch_size // group)
        total = torch.zeros_like(images)
        for i0 in range(0, n, group):
            imgs, tgts = images[i0 : i0 + group], targets[i0 : i0 + group]
            extra = aux[i0 : i0 + group] if aux is not None else None
            for j0 in range(0, n_points, per_chunk):
                k = torch.arange(j0, min(j0 + per_chunk, n_points), device=self.device)
                pts = point(imgs, extra, k)
                g, m = pts.shape[:2]
                grads = self.gradients(pts.reshape(g * m, *pts.shape[2:]), tgts.repeat_interleave(m))
                total[i0 : i0 + g] += (grads.view(g, m, *grads.shape[1:]) * weight(imgs, extra, k)).sum(dim=1)
        return total
