"""What a training run returns: its curve, wall time and device."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


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
        return pd.DataFrame(
            [vars(record) for record in self.history], columns=["epoch", "train_loss", "train_acc", "val_acc"]
        )
