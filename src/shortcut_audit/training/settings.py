"""The validated ``train`` params section: optimisation settings, architectures and training seeds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TypedDict

from shortcut_audit.config import ParamError, get, require, require_choice, require_names
from shortcut_audit.models.registry import ARCHITECTURES

DEVICE_CHOICES = ("auto", "cpu", "cuda")
LR_SCHEDULES = ("constant", "one_cycle")
# Keys of ``train`` that ``train.per_architecture.<arch>`` may override.
OVERRIDABLE = ("epochs", "batch_size", "lr", "weight_decay", "lr_schedule")


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of one training run (the ``train`` params section).

    Attributes
    ----------
    epochs : passes over the training split (>= 1)
    batch_size : training mini-batch size (>= 1)
    lr : Adam learning rate (> 0); with ``one_cycle`` the peak learning rate
    weight_decay : Adam L2 penalty (>= 0)
    seed : seeds shuffling and dropout
    eval_batch_size : batch size for evaluation (bounds memory; no gradients)
    lr_schedule : ``constant``, or ``one_cycle``: the 1cycle policy of Smith & Topin
        (2019), "Super-convergence: very fast training of neural networks using large
        learning rates" -- the learning rate rises from ``lr / 25`` to ``lr`` over the
        first 30% of the steps and anneals (cosine) to ``lr / 25e4``, while Adam's
        ``beta1`` moves inversely between 0.95 and 0.85 (``torch.optim.lr_scheduler.OneCycleLR``
        with its defaults). It reaches a given accuracy in far fewer epochs than a
        constant rate, which is what a CPU budget of a few epochs needs.
    """

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float = 0.0
    seed: int = 0
    eval_batch_size: int = 1024
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        checks = {
            "epochs": _is_int(self.epochs) and self.epochs >= 1,
            "batch_size": _is_int(self.batch_size) and self.batch_size >= 1,
            "lr": _is_number(self.lr) and math.isfinite(self.lr) and self.lr > 0,
            "weight_decay": _is_number(self.weight_decay)
            and math.isfinite(self.weight_decay)
            and self.weight_decay >= 0,
            "seed": _is_int(self.seed) and self.seed >= 0,
            "eval_batch_size": _is_int(self.eval_batch_size) and self.eval_batch_size >= 1,
            "lr_schedule": self.lr_schedule in LR_SCHEDULES,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid TrainConfig field(s) {bad}: {self}")


@dataclass(frozen=True)
class TrainParams:
    """The validated ``train`` section plus the top-level ``seed`` and ``device``.

    ``config`` holds the section's settings; ``per_architecture`` the full settings of
    the architectures that override some of them (``train.per_architecture``).
    """

    architectures: tuple[str, ...]
    config: TrainConfig
    device: str
    num_threads: int | None = 1
    per_architecture: Mapping[str, TrainConfig] = field(default_factory=dict)
    seeds: tuple[int, ...] = (0,)

    def config_for(self, arch: str, seed: int | None = None) -> TrainConfig:
        """The settings ``arch`` trains with under training seed ``seed`` (default: the first of ``seeds``):
        its override, else the section's."""
        seed = self.seeds[0] if seed is None else seed
        if seed not in self.seeds:
            raise ParamError("train.seeds", f"does not list seed {seed}; listed: {list(self.seeds)}")
        return replace(self.per_architecture.get(arch, self.config), seed=seed)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_architectures(params: Mapping) -> tuple[str, ...]:
    """Validate ``train.architectures``: a non-empty list of unique registry names."""
    return tuple(require_names(params, "train.architectures", ARCHITECTURES))


class _Settings(TypedDict):
    """The optimisation keys of :class:`TrainConfig` that ``train.per_architecture`` may set."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    lr_schedule: str


def _check_settings(params: Mapping, prefix: str, defaults: Mapping[str, object]) -> _Settings:
    """The validated optimisation keys (``OVERRIDABLE``) under ``prefix``.

    A key absent under ``prefix`` takes its value from ``defaults``; a key without a
    default is required.
    """

    def default(name: str) -> dict:
        return {"default": defaults[name]} if name in defaults else {}

    return {
        "epochs": require(params, f"{prefix}.epochs", int, lambda v: v >= 1, "an integer >= 1", **default("epochs")),
        "batch_size": require(
            params, f"{prefix}.batch_size", int, lambda v: v >= 1, "an integer >= 1", **default("batch_size")
        ),
        "lr": require(
            params, f"{prefix}.lr", float, lambda v: math.isfinite(v) and v > 0, "a number > 0", **default("lr")
        ),
        "weight_decay": require(
            params,
            f"{prefix}.weight_decay",
            float,
            lambda v: math.isfinite(v) and v >= 0,
            "a number >= 0",
            **default("weight_decay"),
        ),
        "lr_schedule": require_choice(params, f"{prefix}.lr_schedule", LR_SCHEDULES, **default("lr_schedule")),
    }


def check_params(params: Mapping) -> TrainParams:
    """Validate the ``train`` section, ``seed`` and ``device`` before any work.

    Raises
    ------
    ParamError
        Naming the dotted key: ``train.architectures`` (known names),
        ``train.epochs`` (int >= 1), ``train.batch_size`` (int >= 1), ``train.lr``
        (number > 0), ``train.weight_decay`` (number >= 0, default 0),
        ``train.lr_schedule`` (constant or one_cycle, default constant), ``seed``
        (int >= 0), ``device`` (auto, cpu or cuda), ``train.num_threads`` (int >= 1
        or null for torch's default; default 1), ``train.per_architecture`` (a
        mapping from known architecture names to mappings of some of the keys
        ``epochs``, ``batch_size``, ``lr``, ``weight_decay``, ``lr_schedule``).
    """
    section = get(params, "train")
    if not isinstance(section, Mapping):
        raise ParamError("train", f"expected a mapping, got {section!r}")
    architectures = check_architectures(params)
    settings = _check_settings(params, "train", {"weight_decay": 0.0, "lr_schedule": "constant"})
    seed = require(params, "seed", int, lambda v: v >= 0, "a non-negative integer")
    config = TrainConfig(**settings, seed=seed)
    device = require_choice(params, "device", DEVICE_CHOICES, default="auto")
    num_threads = get(params, "train.num_threads", 1)
    if num_threads is not None:
        num_threads = require(params, "train.num_threads", int, lambda v: v >= 1, "an integer >= 1 or null", default=1)
    seeds = get(params, "train.seeds", [seed])
    if (
        not isinstance(seeds, list)
        or not seeds
        or not all(_is_int(v) and v >= 0 for v in seeds)
        or len(set(seeds)) != len(seeds)
    ):
        raise ParamError("train.seeds", f"expected a non-empty list of distinct integers >= 0, got {seeds!r}")
    return TrainParams(
        architectures=architectures,
        config=config,
        device=device,
        num_threads=num_threads,
        per_architecture=_check_per_architecture(params, config),
        seeds=tuple(seeds),
    )


def _check_per_architecture(params: Mapping, defaults: TrainConfig) -> dict[str, TrainConfig]:
    key = "train.per_architecture"
    overrides = get(params, key, None)
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ParamError(key, f"expected a mapping from architecture names to settings, got {overrides!r}")
    configs = {}
    for arch, settings in overrides.items():
        if arch not in ARCHITECTURES:
            raise ParamError(f"{key}.{arch}", f"unknown architecture; known: {', '.join(ARCHITECTURES)}")
        if not isinstance(settings, Mapping):
            raise ParamError(f"{key}.{arch}", f"expected a mapping of {', '.join(OVERRIDABLE)}, got {settings!r}")
        unknown = [name for name in settings if name not in OVERRIDABLE]
        if unknown:
            raise ParamError(
                f"{key}.{arch}.{unknown[0]}", f"cannot be set per architecture; allowed: {', '.join(OVERRIDABLE)}"
            )
        section = {name: getattr(defaults, name) for name in OVERRIDABLE}
        configs[arch] = replace(defaults, **_check_settings(params, f"{key}.{arch}", section))
    return configs
