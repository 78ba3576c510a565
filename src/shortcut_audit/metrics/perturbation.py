"""Shared pieces of the perturbation metrics: baselines, pixel ranks, batched scoring.

Metrics receive a model ``images (n, C, H, W) -> outputs (n, classes)`` and score
the target class either as a softmax probability (the RISE protocol) or as the raw
output. Scoring is streamed: perturbed inputs are built ``batch_size`` at a time
from (image, step) index pairs, so memory never holds all perturbed images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Union

import numpy as np
import torch

BASELINES = ("zero", "gray", "blur", "random_normal")
SCORES = ("probability", "output")

#: A seed for a batch of images: one int for the whole batch, or one int per image.
Seeds = Union[int, Sequence[int]]


def _check_not_bool(seed: object) -> None:
    """A bool is an int to Python but never a meant seed: refuse it rather than fail on iterating it."""
    if isinstance(seed, bool):
        raise TypeError(f"seed must be an int or a sequence of ints, got {seed!r}")


def _stream_state(seed: int, stream: int | None) -> int:
    return int(seed) if stream is None else int(np.random.SeedSequence([int(seed), stream]).generate_state(1)[0])


def seeded_draws(
    draw: Callable[[tuple, torch.Generator], torch.Tensor],
    shape: tuple[int, ...],
    seed: Seeds,
    stream: int | None = None,
) -> torch.Tensor:
    """Random draws of shape ``(N, ...)`` for a batch of N images.

    ``draw(shape, generator)`` draws one tensor (e.g. ``torch.rand(shape, generator=g)``).
    With an int ``seed`` one generator (seeded by ``seed``, or by ``(seed, stream)``) draws
    the whole batch, so an image's draws depend on its position in the batch. With a
    sequence of N seeds each image gets its own generator: its draws depend on its seed
    only, whatever images share the batch (what a run sharded over processes needs).
    """
    _check_not_bool(seed)
    if isinstance(seed, (int, np.integer)):
        return draw(tuple(shape), torch.Generator().manual_seed(_stream_state(seed, stream)))
    seeds = [int(s) for s in seed]
    if len(seeds) != shape[0]:
        raise ValueError(f"got {len(seeds)} per-image seeds for {shape[0]} images")
    if not seeds:
        return draw(tuple(shape), torch.Generator())
    return torch.stack([draw(tuple(shape[1:]), torch.Generator().manual_seed(_stream_state(s, stream))) for s in seeds])


def seeds_at(seed: Seeds, index: torch.Tensor | Sequence[int]) -> Seeds:
    """The per-image seeds of the images ``index`` (an int seed is returned unchanged)."""
    _check_not_bool(seed)
    if isinstance(seed, (int, np.integer)):
        return seed
    seeds = list(seed)
    return [seeds[int(i)] for i in torch.as_tensor(index).reshape(-1).tolist()]


Model = Callable[[torch.Tensor], torch.Tensor]
# build(indices (b,)) -> (inputs (b, C, H, W), targets (b,))
BuildInputs = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def check_maps(images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor) -> None:
    """Fail early on shape or value problems shared by every metric."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got {tuple(images.shape)}")
    n, _, h, w = images.shape
    if maps.shape != (n, h, w):
        raise ValueError(f"maps must be (N, H, W) = {(n, h, w)}, got {tuple(maps.shape)}")
    if targets.shape != (n,):
        raise ValueError(f"targets must be (N,) = ({n},), got {tuple(targets.shape)}")
    if not torch.isfinite(maps).all():
        raise ValueError("attribution maps contain NaN or infinite values")


def make_baseline(
    images: torch.Tensor,
    kind: str | torch.Tensor,
    seed: Seeds = 0,
    blur_sigma: float = 5.0,
) -> torch.Tensor:
    """The image every pixel is replaced with (deletion) or inserted into (insertion).

    Parameters
    ----------
    images : Tensor (N, C, H, W)
        Images in the model's pixel space ([0, 1] for the ImageNet models here).
    kind : str or Tensor
        ``"zero"`` (black; RISE deletion), ``"gray"`` (0.5), ``"blur"`` (Gaussian
        blur of the image, ``blur_sigma`` pixels; RISE insertion) or
        ``"random_normal"`` (Gaussian noise with each image's per-channel mean and
        standard deviation; the ensemble paper's random-normal baseline). A tensor
        broadcastable to ``images`` is used as given.
    seed : int or sequence of int
        Seeds the ``random_normal`` noise: one int for the batch, or one per image
        (:func:`seeded_draws`).
    """
    if torch.is_tensor(kind):
        return kind.to(images).expand_as(images)
    if kind == "zero":
        return torch.zeros_like(images)
    if kind == "gray":
        return torch.full_like(images, 0.5)
    if kind == "blur":
        from torchvision.transforms.v2.functional import gaussian_blur

        radius = max(1, int(math.ceil(3 * blur_sigma)))
        radius = min(radius, (min(images.shape[-2:]) - 1) // 2) or 1
        return gaussian_blur(images, kernel_size=[2 * radius + 1] * 2, sigma=[blur_sigma] * 2)
    if kind == "random_normal":
        noise = seeded_draws(lambda shape, gen: torch.randn(shape, generator=gen), tuple(images.shape), seed)
        noise = noise.to(images)
        mean = images.mean(dim=(2, 3), keepdim=True)
        std = images.std(dim=(2, 3), keepdim=True)
        return mean + std * noise
    raise ValueError(f"unknown baseline {kind!r}; known: {', '.join(BASELINES)}")


TIES = ("random", "raster")
_TIE_STREAM = 7  # keeps tie-breaking keys independent of the baseline noise drawn from the same seed


def tie_keys(shape: tuple[int, ...], seed: Seeds, device=None) -> torch.Tensor:
    """Uniform random keys ``(N, ...)`` that order tied pixels, from a stream of their own for ``seed``.

    ``seed``: one int for the batch, or one per image (:func:`seeded_draws`).
    """
    keys = seeded_draws(lambda size, gen: torch.rand(size, generator=gen), tuple(shape), seed, _TIE_STREAM)
    return keys.to(device)


def pixel_ranks(maps: torch.Tensor, keys: torch.Tensor | None = None) -> torch.Tensor:
    """Rank of every pixel by decreasing attribution, (N, H*W) long; 0 = most important.

    Parameters
    ----------
    maps : Tensor (N, ...)
        One map per row; every trailing dimension is flattened.
    keys : Tensor of the same shape, optional
        Tie-breaking keys: tied pixels are ranked in increasing key order, so random keys
        (:func:`tie_keys`) rank them in uniformly random order. Without keys ties keep
        raster order (stable sort).
    """
    flat = maps.reshape(maps.shape[0], -1)
    if keys is None:
        order = torch.argsort(flat, dim=1, descending=True, stable=True)
    else:
        shuffled = torch.argsort(keys.reshape(flat.shape).to(flat.device), dim=1)
        within = torch.argsort(flat.gather(1, shuffled), dim=1, descending=True, stable=True)
        order = shuffled.gather(1, within)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def target_scores(outputs: torch.Tensor, targets: torch.Tensor, score: str) -> torch.Tensor:
    """Target-class score of each row: softmax probability or raw output."""
    outputs = outputs.float()
    if score == "probability":
        outputs = outputs.softmax(dim=1)
    elif score != "output":
        raise ValueError(f"unknown score {score!r}; known: {', '.join(SCORES)}")
    return outputs.gather(1, targets.view(-1, 1)).squeeze(1)


def streamed_outputs(
    model: Model, n_inputs: int, build: BuildInputs, batch_size: int, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model outputs for ``n_inputs`` perturbed inputs built chunk by chunk.

    Returns the raw outputs' target score parts needed by the metrics: the full
    outputs are reduced immediately to (argmax, target probability, target raw output)
    to keep memory at one chunk. Returned as ``(predictions (n,), outputs_at_target (n, 2))``
    with columns (probability, output).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    predictions = torch.empty(n_inputs, dtype=torch.long)
    values = torch.empty(n_inputs, 2)
    with torch.no_grad():
        for start in range(0, n_inputs, batch_size):
            idx = torch.arange(start, min(start + batch_size, n_inputs))
            inputs, targets = build(idx)
            outputs = torch.as_tensor(model(inputs.to(device))).float()
            if outputs.ndim != 2:
                raise ValueError(f"the model must return (n, classes) outputs, got {tuple(outputs.shape)}")
            if not torch.isfinite(outputs).all():
                raise ValueError("the model returned NaN or infinite outputs")
            targets = targets.to(outputs.device)
            predictions[idx] = outputs.argmax(dim=1).cpu()
            values[idx, 0] = target_scores(outputs, targets, "probability").cpu()
            values[idx, 1] = target_scores(outputs, targets, "output").cpu()
    return predictions, values


def select_score(values: torch.Tensor, score: str) -> torch.Tensor:
    """Column of :func:`streamed_outputs` values for ``score``."""
    if score not in SCORES:
        raise ValueError(f"unknown score {score!r}; known: {', '.join(SCORES)}")
    return values[:, SCORES.index(score)]
