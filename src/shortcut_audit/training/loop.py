"""Seeded supervised training of the Biased-MNIST classifiers.

Images are never stored: each split keeps its uint8 digits and factor values on
the training device, and every mini-batch is rendered there in one call of
:func:`shortcut_audit.data.biased_mnist.render` from a batch of row indices.
Shuffling draws from a CPU generator seeded with ``TrainConfig.seed``, and all
other randomness (dropout) from a forked, re-seeded torch RNG, so on the CPU the
same initial weights, seed and thread count give bit-identical trained weights
(the thread count changes the order of floating-point reductions).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Iterator, Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from shortcut_audit.config import ParamError, get, require, require_choice, require_names
from shortcut_audit.data.biased_mnist import FACTORS, render
from shortcut_audit.models.registry import ARCHITECTURES
from shortcut_audit.training.evaluate import accuracy

DEVICE_CHOICES = ("auto", "cpu", "cuda")
LR_SCHEDULES = ("constant", "one_cycle")
# Keys of ``train`` that ``train.per_architecture.<arch>`` may override.
OVERRIDABLE = ("epochs", "batch_size", "lr", "weight_decay", "lr_schedule")


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stops."""


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
            "weight_decay": _is_number(self.weight_decay) and math.isfinite(self.weight_decay)
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


def _check_settings(params: Mapping, prefix: str, defaults: Mapping[str, object]) -> dict[str, object]:
    """The validated optimisation keys (``OVERRIDABLE``) under ``prefix``.

    A key absent under ``prefix`` takes its value from ``defaults``; a key without a
    default is required.
    """
    def default(name: str) -> dict:
        return {"default": defaults[name]} if name in defaults else {}

    return {
        "epochs": require(params, f"{prefix}.epochs", int, lambda v: v >= 1, "an integer >= 1", **default("epochs")),
        "batch_size": require(params, f"{prefix}.batch_size", int, lambda v: v >= 1, "an integer >= 1",
                              **default("batch_size")),
        "lr": require(params, f"{prefix}.lr", float, lambda v: math.isfinite(v) and v > 0, "a number > 0",
                      **default("lr")),
        "weight_decay": require(params, f"{prefix}.weight_decay", float, lambda v: math.isfinite(v) and v >= 0,
                                "a number >= 0", **default("weight_decay")),
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
        num_threads = require(params, "train.num_threads", int, lambda v: v >= 1, "an integer >= 1 or null",
                              default=1)
    seeds = get(params, "train.seeds", [seed])
    if (not isinstance(seeds, list) or not seeds or not all(_is_int(v) and v >= 0 for v in seeds)
            or len(set(seeds)) != len(seeds)):
        raise ParamError("train.seeds", f"expected a non-empty list of distinct integers >= 0, got {seeds!r}")
    return TrainParams(architectures=architectures, config=config, device=device, num_threads=num_threads,
                       per_architecture=_check_per_architecture(params, config), seeds=tuple(seeds))


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
            raise ParamError(f"{key}.{arch}.{unknown[0]}", f"cannot be set per architecture; "
                                                           f"allowed: {', '.join(OVERRIDABLE)}")
        section = {name: getattr(defaults, name) for name in OVERRIDABLE}
        configs[arch] = replace(defaults, **_check_settings(params, f"{key}.{arch}", section))
    return configs


class RenderedSplit:
    """One split's digits, factors and labels held on a device; renders batches on demand.

    Parameters
    ----------
    table : DataFrame
        Factor table (docs/architecture.md schema), row i describing ``digits[i]``.
    digits : uint8 array (len(table), 28, 28)
    canvas : rendered image side
    device : where digits, factors, labels and rendered images live
    """

    def __init__(self, table: pd.DataFrame, digits: np.ndarray, canvas: int = 56,
                 device: torch.device | str = "cpu"):
        if len(table) != len(digits):
            raise ValueError(f"table has {len(table)} rows but digits has {len(digits)}")
        if len(table) == 0:
            raise ValueError("empty split: nothing to train or evaluate on")
        self.table = table
        self.canvas = canvas
        self.digits = torch.as_tensor(np.ascontiguousarray(digits, dtype=np.uint8)).to(device)
        self.device = self.digits.device  # concrete, e.g. cuda:0 for "cuda"
        self.factors = torch.tensor(table[list(FACTORS)].to_numpy(np.int64), device=self.device)
        self.labels = torch.tensor(table["label"].to_numpy(np.int64), device=self.device)

    def __len__(self) -> int:
        return len(self.labels)

    def images(self, index: torch.Tensor) -> torch.Tensor:
        """Render rows ``index`` (LongTensor on this split's device): (B, 3, canvas, canvas)."""
        factors = self.factors.index_select(0, index)
        return render(self.digits.index_select(0, index), factors[:, 0], factors[:, 1], factors[:, 2],
                      canvas=self.canvas)

    def batches(self, batch_size: int, order: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images, labels)`` over all rows, in ``order`` (default: table order)."""
        if order is None:
            order = torch.arange(len(self), device=self.device)
        for start in range(0, len(order), batch_size):
            index = order[start:start + batch_size]
            yield self.images(index), self.labels.index_select(0, index)


@dataclass(frozen=True)
class EpochRecord:
    """Training curve point: mean training loss/accuracy over the epoch, validation accuracy after it."""

    epoch: int
    train_loss: float
    train_acc: float
    val_acc: float


@dataclass
class TrainResult:
    """History of one run, its wall time (training and per-epoch validation) and device."""

    history: list[EpochRecord] = field(default_factory=list)
    seconds: float = 0.0
    device: str = "cpu"

    def curve(self) -> pd.DataFrame:
        """The history as a table: epoch, train_loss, train_acc, val_acc."""
        return pd.DataFrame([vars(record) for record in self.history],
                            columns=["epoch", "train_loss", "train_acc", "val_acc"])


def _shuffled_order(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    # Drawn on the CPU so the order does not depend on the device's RNG.
    return torch.randperm(n, generator=generator).to(device)


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def train_model(model: nn.Module, train: RenderedSplit, val: RenderedSplit, config: TrainConfig,
                progress: bool = True, description: str = "train") -> TrainResult:
    """Train ``model`` in place with Adam, cross-entropy and ``config.lr_schedule``; validate after every epoch.

    Parameters
    ----------
    model : classifier already on ``train.device``
    train, val : splits on the same device
    config : optimisation settings; ``config.seed`` fixes shuffling and dropout
    progress : show a tqdm progress bar per epoch (on stderr)
    description : progress bar label

    Returns
    -------
    TrainResult
        Per-epoch ``(epoch, train_loss, train_acc, val_acc)``, seconds, device.

    Raises
    ------
    NonFiniteLossError
        When the loss becomes NaN or infinite (checked every few steps).
    """
    if train.device != val.device:
        raise ValueError(f"train split on {train.device} but val split on {val.device}")
    device = train.device
    misplaced = [name for name, p in model.named_parameters() if p.device != device]
    if misplaced:
        raise ValueError(f"model parameter {misplaced[0]!r} is not on the data's device {device}; "
                         "move the model there first (model.to(device))")
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = _lr_schedule(optimiser, config, math.ceil(len(train) / config.batch_size))
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult(device=str(device))
    start = time.perf_counter()
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(config.seed)
        for epoch in range(1, config.epochs + 1):
            loss, acc = _train_epoch(model, train, optimiser, _shuffled_order(len(train), generator, device),
                                     config.batch_size, epoch, progress, description, schedule)
            val_acc = accuracy(model, val, config.eval_batch_size)
            result.history.append(EpochRecord(epoch=epoch, train_loss=loss, train_acc=acc, val_acc=val_acc))
    result.seconds = time.perf_counter() - start
    return result


_CHECK_EVERY = 10  # steps between loss checks: each check synchronises a GPU


def _lr_schedule(optimiser: torch.optim.Optimizer, config: TrainConfig,
                 steps_per_epoch: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-step scheduler of ``config.lr_schedule`` (None for a constant rate)."""
    if config.lr_schedule == "constant":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr,
                                               total_steps=config.epochs * steps_per_epoch)


def _train_epoch(model: nn.Module, train: RenderedSplit, optimiser: torch.optim.Optimizer, order: torch.Tensor,
                 batch_size: int, epoch: int, progress: bool, description: str,
                 schedule: torch.optim.lr_scheduler.LRScheduler | None = None) -> tuple[float, float]:
    """One pass over ``order`` (stepping ``schedule`` after every batch); returns (mean loss, accuracy)."""
    model.train()
    n_batches = math.ceil(len(order) / batch_size)
    loss_sum = torch.zeros((), dtype=torch.float64, device=train.device)
    correct = torch.zeros((), dtype=torch.int64, device=train.device)
    bar = tqdm(train.batches(batch_size, order), total=n_batches, desc=f"{description} epoch {epoch}",
               disable=not progress, leave=False, mininterval=1.0)
    for step, (images, labels) in enumerate(bar, start=1):
        logits = model(images)
        loss = nn.functional.cross_entropy(logits, labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if schedule is not None:
            schedule.step()
        loss_sum += loss.detach().double() * len(labels)
        correct += (logits.detach().argmax(1) == labels).sum()
        if step % _CHECK_EVERY == 0 or step == n_batches:
            running = float(loss_sum) / min(step * batch_size, len(order))
            if not math.isfinite(running):
                bar.close()
                raise NonFiniteLossError(
                    f"training loss became {running} in epoch {epoch} by step {step}/{n_batches}; "
                    "lower train.lr or check the input data")
            bar.set_postfix(loss=f"{running:.4f}")
    bar.close()
    return float(loss_sum) / len(order), float(correct) / len(order)
