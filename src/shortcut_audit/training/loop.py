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

import torch
from torch import nn
from tqdm.auto import tqdm

from shortcut_audit.training.evaluate import accuracy
from shortcut_audit.training.results import EpochRecord, TrainResult
from shortcut_audit.training.settings import TrainConfig
from shortcut_audit.training.splits import RenderedSplit


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite; training stops."""


def _shuffled_order(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    # Drawn on the CPU so the order does not depend on the device's RNG.
    return torch.randperm(n, generator=generator).to(device)


def _rng_devices(device: torch.device) -> list[int]:
    if device.type != "cuda":
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def train_model(
    model: nn.Module,
    train: RenderedSplit,
    val: RenderedSplit,
    config: TrainConfig,
    progress: bool = True,
    description: str = "train",
) -> TrainResult:
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
        raise ValueError(
            f"model parameter {misplaced[0]!r} is not on the data's device {device}; "
            "move the model there first (model.to(device))"
        )
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    schedule = _lr_schedule(optimiser, config, math.ceil(len(train) / config.batch_size))
    generator = torch.Generator().manual_seed(config.seed)
    result = TrainResult(device=str(device))
    start = time.perf_counter()
    with torch.random.fork_rng(devices=_rng_devices(device)):
        torch.manual_seed(config.seed)
        for epoch in range(1, config.epochs + 1):
            loss, acc = _train_epoch(
                model,
                train,
                optimiser,
                _shuffled_order(len(train), generator, device),
                config.batch_size,
                epoch,
                progress,
                description,
                schedule,
            )
            val_acc = accuracy(model, val, config.eval_batch_size)
            result.history.append(EpochRecord(epoch=epoch, train_loss=loss, train_acc=acc, val_acc=val_acc))
    result.seconds = time.perf_counter() - start
    return result


_CHECK_EVERY = 10  # steps between loss checks: each check synchronises a GPU


def _lr_schedule(
    optimiser: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """The per-step scheduler of ``config.lr_schedule`` (None for a constant rate)."""
    if config.lr_schedule == "constant":
        return None
    return torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=config.lr, total_steps=config.epochs * steps_per_epoch)


def _train_epoch(
    model: nn.Module,
    train: RenderedSplit,
    optimiser: torch.optim.Optimizer,
    order: torch.Tensor,
    batch_size: int,
    epoch: int,
    progress: bool,
    description: str,
    schedule: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> tuple[float, float]:
    """One pass over ``order`` (stepping ``schedule`` after every batch); returns (mean loss, accuracy)."""
    model.train()
    n_batches = math.ceil(len(order) / batch_size)
    loss_sum = torch.zeros((), dtype=torch.float64, device=train.device)
    correct = torch.zeros((), dtype=torch.int64, device=train.device)
    bar = tqdm(
        train.batches(batch_size, order),
        total=n_batches,
        desc=f"{description} epoch {epoch}",
        disable=not progress,
        leave=False,
        mininterval=1.0,
    )
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
                    "lower train.lr or check the input data"
                )
            bar.set_postfix(loss=f"{running:.4f}")
    bar.close()
    return float(loss_sum) / len(order), float(correct) / len(order)
