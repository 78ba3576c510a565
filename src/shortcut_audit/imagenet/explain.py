"""Explain a shard of images with the attribution suite at an equal forward budget.

Every black-box method gets (at most) the same number of forward passes per image,
``forwards``; its own parameters are derived from that budget
(:func:`method_settings`) and the passes it really used are counted by
:class:`CountingScorer`, which also times the model calls so the share of wall time
spent in forward passes is measured, not assumed.

The functions take any shard of images and return per-shard results, so a run can
be split across processes or GPUs (one shard each) and merged afterwards.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from shortcut_audit import attribution

# methods explained on the reference architecture -> class name in the attribution registry
METHOD_CLASSES = {
    "sobol": "sobol", "rise": "rise", "occlusion": "occlusion", "morris_grid": "morris_grid",
    "geex": "geex", "gers": "gers", "igeex": "igeex",
}
IGEEX_STEPS = 8


OUTPUTS = ("logit", "probability")


class CountingScorer:
    """``images in [0, 1] -> logits`` (float32), counting inputs and forward time.

    On CUDA the forward runs under bfloat16 autocast with channels_last inputs when
    ``autocast`` is set (the full profile).
    """

    def __init__(self, model: nn.Module, device: torch.device, autocast: bool = True):
        self.model = model.to(device).eval()
        self.device = device
        self.fast_cuda = autocast and device.type == "cuda"
        if self.fast_cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.inputs_seen = 0
        self.forward_seconds = 0.0
        self.total_inputs = 0
        self.total_forward_seconds = 0.0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        images = images.to(self.device, non_blocking=True)
        with torch.no_grad():
            if self.fast_cuda:
                images = images.contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    logits = self.model(images)
            else:
                logits = self.model(images)
            logits = logits.float()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - start
        self.forward_seconds += elapsed
        self.total_forward_seconds += elapsed
        self.inputs_seen += images.shape[0]
        self.total_inputs += images.shape[0]
        return logits

    def reset(self) -> None:
        """Restart the per-step counters (the ``total_*`` counters keep running)."""
        self.inputs_seen, self.forward_seconds = 0, 0.0


class ExplainedOutput:
    """What the explainers see: the scorer's logits, or their softmax probabilities.

    Perturbation methods that estimate a variance (Sobol) converge far faster on
    logits: the probabilities of a confident classifier saturate, so a few masks
    carry all the variance (measured in ``bench/results/imagenet.json``).
    """

    def __init__(self, scorer: CountingScorer, output: str):
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.scorer, self.output, self.device = scorer, output, scorer.device

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.scorer(images)
        return logits if self.output == "logit" else logits.softmax(dim=1)


@dataclass
class MethodRun:
    """Maps of one method on a shard, with its measured cost."""

    method: str
    maps: torch.Tensor
    forwards_per_image: float
    seconds: float
    forward_seconds: float
    settings: dict


def method_settings(method: str, forwards: int, image_size: int, config) -> dict:
    """Constructor arguments of ``method`` that spend at most ``forwards`` passes per image.

    - Sobol: ``nb_design = forwards // (g^2 + 1)`` (total indices cost N (d + 1));
    - RISE: ``nb_masks = forwards``;
    - Occlusion: ``w = isqrt(forwards - 1)`` windows per axis (plus the clean pass fit
      the budget); square patch of ``patch_fraction`` of the side, enlarged to
      ``ceil(side / w)`` when ``w`` windows of that size cannot tile the side, so the
      stride never exceeds the patch and every pixel is occluded at least once;
    - MoSIP grid Morris: ``n_trajectories = forwards // (d + 1)``;
    - GEEX/GERS: ``forwards // 2`` mirrored pairs; iGEEX: ``forwards // (2 * 8)`` per path point.
    """
    if method == "sobol":
        d = config.sobol_grid ** 2
        return {"grid_size": config.sobol_grid, "nb_design": max(2, forwards // (d + 1))}
    if method == "rise":
        return {"nb_masks": forwards, "grid_size": config.rise_grid, "keep_prob": config.rise_keep_prob}
    if method == "occlusion":
        per_axis = max(2, math.isqrt(max(forwards - 1, 4)))
        patch = max(1, round(config.occlusion_patch_fraction * image_size), math.ceil(image_size / per_axis))
        stride = max(1, math.ceil((image_size - patch) / (per_axis - 1)))
        return {"patch_size": patch, "stride": stride}
    if method == "morris_grid":
        d = config.morris_grid ** 2
        return {"grid_size": config.morris_grid, "n_trajectories": max(2, forwards // (d + 1)),
                "levels": config.morris_levels, "sampling": config.morris_sampling}
    if method in ("geex", "gers"):
        return {"n_samples": max(1, forwards // 2), "sigma": config.geex_sigma}
    if method == "igeex":
        return {"n_samples": max(1, forwards // (2 * IGEEX_STEPS)), "steps": IGEEX_STEPS, "sigma": config.geex_sigma}
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHOD_CLASSES)}")


def run_method(method: str, scorer: CountingScorer, images: torch.Tensor, targets: torch.Tensor,
               settings: dict, batch_size: int, seed: int, output: str = "logit") -> MethodRun:
    """Explain ``output`` (logit or probability) of ``targets`` with ``method``; measure its cost."""
    explainer = attribution.build(METHOD_CLASSES[method], ExplainedOutput(scorer, output), batch_size=batch_size,
                                  device=scorer.device, seed=seed, **settings)
    scorer.reset()
    start = time.perf_counter()
    maps = explainer(images, targets)
    seconds = time.perf_counter() - start
    return MethodRun(method, maps, scorer.inputs_seen / images.shape[0], seconds, scorer.forward_seconds,
                     dict(settings))


class ReplayScorer:
    """Record a scorer's outputs once and replay them for a second identical pass.

    MoSIP needs both mu* and sigma of the same elementary effects; the grid-Morris
    explainer returns one statistic per call. With the same seed the second call
    sends exactly the same inputs in the same order, so the outputs of the first
    call are replayed instead of paying the forwards twice. Every replayed call is
    checked against the recorded input shape and checksum.
    """

    def __init__(self, scorer: ExplainedOutput):
        self.scorer = scorer
        self.device = scorer.device
        self.records: list[tuple[tuple, float, torch.Tensor]] = []
        self.replaying = False
        self.position = 0

    @staticmethod
    def _checksum(images: torch.Tensor) -> float:
        return float(images.double().sum())

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if not self.replaying:
            out = self.scorer(images)
            self.records.append((tuple(images.shape), self._checksum(images), out))
            return out
        if self.position >= len(self.records):
            raise RuntimeError("replayed explainer made more model calls than the recorded one")
        shape, checksum, out = self.records[self.position]
        self.position += 1
        if shape != tuple(images.shape) or not math.isclose(checksum, self._checksum(images), rel_tol=1e-9,
                                                            abs_tol=1e-6):
            raise RuntimeError("replayed explainer sent different inputs than the recorded one")
        return out

    def replay(self) -> None:
        self.replaying, self.position = True, 0


def morris_statistics(scorer: CountingScorer, images: torch.Tensor, targets: torch.Tensor,
                      config, batch_size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, MethodRun]:
    """Per-region mu* and sigma (N, w, w) of MoSIP grid Morris from one set of forwards."""
    from shortcut_audit.metrics.regions import pool_to_regions

    d = config.morris_grid ** 2
    settings = {"grid_size": config.morris_grid, "n_trajectories": config.morris_trajectories,
                "levels": config.morris_levels, "sampling": config.morris_sampling}
    replay = ReplayScorer(ExplainedOutput(scorer, config.explained_output))
    scorer.reset()
    start = time.perf_counter()
    mu_star_maps = attribution.build("morris_grid", replay, batch_size=batch_size, device=scorer.device,
                                     seed=seed, statistic="mu_star", **settings)(images, targets)
    replay.replay()
    sigma_maps = attribution.build("morris_grid", replay, batch_size=batch_size, device=scorer.device,
                                   seed=seed, statistic="sigma", **settings)(images, targets)
    run = MethodRun("morris_grid", mu_star_maps, scorer.inputs_seen / images.shape[0],
                    time.perf_counter() - start, scorer.forward_seconds, {**settings, "d": d})
    grid = config.morris_grid
    return pool_to_regions(mu_star_maps, grid), pool_to_regions(sigma_maps, grid), run


def predicted_classes(scorer: CountingScorer, images: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 class and its probability for every image, (N,) each."""
    logits = torch.cat([scorer(images[i:i + batch_size]).cpu() for i in range(0, len(images), batch_size)])
    probabilities = logits.softmax(dim=1)
    top = probabilities.max(dim=1)
    return top.indices, top.values
