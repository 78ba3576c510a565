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
from shortcut_audit.attribution.morris_grid import MorrisGridAttribution, average_over_images
from shortcut_audit.runtime import ComputePath, select_compute_path, to_device

# methods explained on the reference architecture -> class name in the attribution registry
METHOD_CLASSES = {
    "sobol": "sobol",
    "rise": "rise",
    "occlusion": "occlusion",
    "morris_grid": "morris_grid",
    "geex": "geex",
    "gers": "gers",
    "igeex": "igeex",
}
IGEEX_STEPS = 8


OUTPUTS = ("logit", "probability")


class CountingScorer:
    """``images in [0, 1] -> logits`` (float32), counting inputs and forward time.

    The forward passes take the compute path of ``precision`` (``"fast"``, ``"bf16"``
    or ``"fp32"``, see :func:`shortcut_audit.runtime.select_compute_path`) unless
    ``path`` names one: channels_last weights and inputs (fast, bf16), bfloat16
    autocast (bf16, only where the device has it natively), ``torch.compile`` when
    ``compile`` is set (its compilation time lands in the first calls' forward time).
    Inputs on the CPU reach a CUDA device through pinned memory and a non-blocking
    copy. The model is converted in place (its layout; the values are unchanged).
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device,
        precision: str = "fast",
        compile: bool = False,
        path: ComputePath | None = None,
    ):
        self.path = path or select_compute_path(device, precision, compile)
        if self.path.device_type != device.type:
            raise ValueError(f"compute path {self.path.name} does not run on device {device}")
        self.model = model.to(device).eval()
        self.device = device
        if self.path.channels_last:
            # nn.Module.to accepts memory_format, which torch's overloads of it leave out
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self._forward = torch.compile(self.model) if self.path.compiled else self.model
        self.inputs_seen = 0
        self.forward_seconds = 0.0
        self.total_inputs = 0
        self.total_forward_seconds = 0.0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        start = time.perf_counter()
        images = to_device(images, self.device)
        if self.path.channels_last and images.ndim == 4:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), self.path.forward_context():
            logits = self._forward(images)
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


def method_settings(
    method: str, forwards: int, image_size: int, config, input_scale: float = 1.0, grid_size: int | None = None
) -> dict:
    """Constructor arguments of ``method`` that spend at most ``forwards`` passes per image.

    - Sobol: ``nb_design = forwards // (g^2 + 1)`` (total indices cost N (d + 1));
    - RISE: ``nb_masks = forwards``;
    - Occlusion: ``w = isqrt(forwards - 1)`` windows per axis (plus the clean pass fit
      the budget); square patch of ``patch_fraction`` of the side, enlarged to
      ``ceil(side / w)`` when ``w`` windows of that size cannot tile the side, so the
      stride never exceeds the patch and every pixel is occluded at least once;
    - MoSIP grid Morris: ``n_trajectories = forwards // (d + 1)``;
    - GEEX/GERS: ``forwards // 2`` mirrored pairs; iGEEX: ``forwards // (2 * 8)`` per path point,
      with the resized noise of GERS (the GEEX paper's choice on ImageNet). ``imagenet.geex.sigma``
      is in standardised input units (the paper's); ``input_scale`` (the model's normalisation
      standard deviation) converts it to the [0, 1] images the explainers see.

    ``grid_size`` overrides the Sobol and RISE mask grids (the convergence study's 7 x 7).
    """
    if method == "sobol":
        grid = grid_size or config.sobol_grid
        return {"grid_size": grid, "nb_design": max(2, forwards // (grid**2 + 1))}
    if method == "rise":
        return {"nb_masks": forwards, "grid_size": grid_size or config.rise_grid, "keep_prob": config.rise_keep_prob}
    if method == "occlusion":
        per_axis = max(2, math.isqrt(max(forwards - 1, 4)))
        patch = max(1, round(config.occlusion_patch_fraction * image_size), math.ceil(image_size / per_axis))
        stride = max(1, math.ceil((image_size - patch) / (per_axis - 1)))
        return {"patch_size": patch, "stride": stride}
    if method == "morris_grid":
        d = config.morris_grid**2
        return {
            "grid_size": config.morris_grid,
            "n_trajectories": max(2, forwards // (d + 1)),
            "levels": config.morris_levels,
            "sampling": config.morris_sampling,
        }
    if method in ("geex", "gers", "igeex"):
        settings = {
            "sigma": config.geex_sigma * input_scale,
            "loss": config.geex_loss,
            "noise": config.geex_noise,
            "model_output": "probabilities" if config.explained_output == "probability" else "logits",
        }
        if method != "geex":
            settings["noise_size"] = min(config.geex_noise_size, image_size)
        if method == "igeex":
            return {**settings, "n_samples": max(1, forwards // (2 * IGEEX_STEPS)), "steps": IGEEX_STEPS}
        return {**settings, "n_samples": max(1, forwards // 2)}
    raise ValueError(f"unknown method {method!r}; known: {', '.join(METHOD_CLASSES)}")


def run_method(
    method: str,
    scorer: CountingScorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    settings: dict,
    batch_size: int,
    seed: int,
    output: str = "logit",
) -> MethodRun:
    """Explain ``output`` (logit or probability) of ``targets`` with ``method``; measure its cost."""
    explainer = attribution.build(
        METHOD_CLASSES[method],
        ExplainedOutput(scorer, output),
        batch_size=batch_size,
        device=scorer.device,
        seed=seed,
        **settings,
    )
    scorer.reset()
    start = time.perf_counter()
    maps = explainer(images, targets)
    seconds = time.perf_counter() - start
    return MethodRun(
        method, maps, scorer.inputs_seen / images.shape[0], seconds, scorer.forward_seconds, dict(settings)
    )


@dataclass
class MorrisAnalyses:
    """MoSIP's local and global analyses of one model on one set of images.

    Attributes
    ----------
    local : dict of Tensor (N, w, w)
        mu*, sigma and mu* + sigma per image, lumped values sampled around each image's own.
    global_per_image : dict of Tensor (N, w, w)
        The same under the global bounds (min and max lumped value over the images),
        with the same samples applied to every image's region map.
    run : MethodRun
        The maps and cost of the analysis named by ``imagenet.morris.sampling`` (the
        ``morris_grid`` entry of the method comparison).
    """

    local: dict[str, torch.Tensor]
    global_per_image: dict[str, torch.Tensor]
    run: MethodRun

    @property
    def global_(self) -> dict[str, torch.Tensor]:
        """The global analysis: per-image statistics averaged over the images, (w, w) each."""
        return average_over_images(self.global_per_image)


def morris_statistics(
    scorer: CountingScorer, images: torch.Tensor, targets: torch.Tensor, config, batch_size: int, seed: int, bounds=None
) -> MorrisAnalyses:
    """MoSIP grid Morris, local and global analyses (Sec. 5), ``r (w^2 + 1)`` forwards per image each.

    Local: each image's lumped values are sampled around its own (MoSIP: "uniformly
    sampled for each input, with the lumped values of the inputs as the mean").
    Global: bounds are the minimum and maximum lumped value of each region over
    ``images``, the same design samples are used with each image's map, and the
    results are averaged over images (:attr:`MorrisAnalyses.global_`). ``bounds`` (lower,
    upper) replaces the bounds over ``images`` when these are a shard of the analysed images.
    """
    from shortcut_audit.metrics.regions import expand_regions

    settings = {
        "grid_size": config.morris_grid,
        "n_trajectories": config.morris_trajectories,
        "levels": config.morris_levels,
    }
    output = ExplainedOutput(scorer, config.explained_output)
    results, runs = {}, {}
    for sampling in ("local", "global"):
        if sampling == "local":
            extra = {}
        else:
            extra = {"bounds": bounds} if bounds is not None else {"reference_images": images}
        explainer = attribution.build(
            "morris_grid",
            output,
            batch_size=batch_size,
            device=scorer.device,
            seed=seed,
            sampling=sampling,
            statistic="mu_star",
            **settings,
            **extra,
        )
        if not isinstance(explainer, MorrisGridAttribution):
            raise TypeError(f"morris_grid built a {type(explainer).__name__}, not a MorrisGridAttribution")
        scorer.reset()
        start = time.perf_counter()
        results[sampling] = explainer.region_statistics(images, targets)
        maps = expand_regions(results[sampling]["mu_star"].float(), images.shape[-2], images.shape[-1])
        runs[sampling] = MethodRun(
            "morris_grid",
            maps,
            scorer.inputs_seen / images.shape[0],
            time.perf_counter() - start,
            scorer.forward_seconds,
            {**settings, "sampling": sampling, "d": config.morris_grid**2},
        )
    return MorrisAnalyses(results["local"], results["global"], runs[config.morris_sampling])


def predicted_classes(
    scorer: CountingScorer, images: torch.Tensor, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-1 class and its probability for every image, (N,) each."""
    logits = torch.cat([scorer(images[i : i + batch_size]).cpu() for i in range(0, len(images), batch_size)])
    probabilities = logits.softmax(dim=1)
    top = probabilities.max(dim=1)
    return top.indices, top.values
