"""A split of Biased-MNIST held on a device and rendered batch by batch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import torch

from shortcut_audit.data.biased_mnist import FACTORS, render


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

    def __init__(self, table: pd.DataFrame, digits: np.ndarray, canvas: int = 56, device: torch.device | str = "cpu"):
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
        return render(
            self.digits.index_select(0, index), factors[:, 0], factors[:, 1], factors[:, 2], canvas=self.canvas
        )

    def batches(
        self, batch_size: int, order: torch.Tensor | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images, labels)`` over all rows, in ``order`` (default: table order)."""
        if order is None:
            order = torch.arange(len(self), device=self.device)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            yield self.images(index), self.labels.index_select(0, index)
