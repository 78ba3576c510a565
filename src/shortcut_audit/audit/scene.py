"""Held-out digits re-rendered under chosen factor values, and the model read-out.

The factor audit never looks at stored images: it keeps a fixed sample of MNIST
digits with their labels and table factor values (:class:`DigitSample`), overwrites
some factors with the values under study and renders through the Biased-MNIST
renderer, batch by batch, on the sample's device. :class:`ProbabilityReader` turns
any model (an ``nn.Module`` or a plain callable ``images -> logits``) into softmax
probabilities, in chunks of at most ``batch_size`` images, without gradients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch

from shortcut_audit.data.biased_mnist import FACTORS, N_VALUES, render

__all__ = ["DigitSample", "ProbabilityReader", "check_factor_names", "factor_columns"]


def check_factor_names(factors: Sequence[str]) -> tuple[str, ...]:
    """Return ``factors`` as a tuple if the renderer knows every one, else raise ``ValueError``.

    The renderer draws exactly the factors in
    :data:`shortcut_audit.data.biased_mnist.FACTORS`; a name outside that set (or a
    repeated or empty set) cannot be varied and is refused with the known names.
    """
    if isinstance(factors, str):
        factors = (factors,)
    factors = tuple(factors)
    unknown = [f for f in factors if f not in N_VALUES]
    if unknown:
        raise ValueError(
            f"unknown factor(s) {unknown}: the Biased-MNIST renderer only varies {', '.join(FACTORS)}"
        )
    if not factors:
        raise ValueError(f"no factor to audit; choose among {', '.join(FACTORS)}")
    if len(set(factors)) != len(factors):
        raise ValueError(f"a factor is listed twice: {list(factors)}")
    return factors


def factor_columns(factors: Sequence[str]) -> list[int]:
    """Column of each factor in the ``(n, 3)`` factor matrix (order of ``FACTORS``)."""
    return [FACTORS.index(f) for f in check_factor_names(factors)]


@dataclass(frozen=True)
class DigitSample:
    """A fixed sample of held-out digits and their own factor values.

    Attributes
    ----------
    digits : torch.Tensor
        uint8 ``(n, 28, 28)`` MNIST digits on the working device.
    labels : torch.Tensor
        int64 ``(n,)`` digit classes.
    factors : torch.Tensor
        int64 ``(n, 3)`` factor values in the order of ``FACTORS`` (the values a
        factor keeps when it is not overwritten).
    canvas : int
        Rendered image height and width.
    """

    digits: torch.Tensor
    labels: torch.Tensor
    factors: torch.Tensor
    canvas: int = 56

    def __post_init__(self) -> None:
        n = self.digits.shape[0]
        if self.digits.dim() != 3 or tuple(self.digits.shape[1:]) != (28, 28):
            raise ValueError(f"digits must have shape (n, 28, 28), got {tuple(self.digits.shape)}")
        if self.labels.shape != (n,) or self.factors.shape != (n, len(FACTORS)):
            raise ValueError(
                f"labels must have shape ({n},) and factors ({n}, {len(FACTORS)}); got "
                f"{tuple(self.labels.shape)} and {tuple(self.factors.shape)}"
            )
        if n == 0:
            raise ValueError("the digit sample is empty")

    @classmethod
    def from_table(
        cls,
        table: pd.DataFrame,
        digits: np.ndarray,
        canvas: int = 56,
        device: torch.device | str = "cpu",
        n: int | None = None,
        seed: int = 0,
    ) -> "DigitSample":
        """Sample ``n`` rows of a factor table (all rows when ``n`` is None), seeded.

        Rows are drawn without replacement with a NumPy generator seeded by ``seed``
        and kept in table order, so the same seed gives the same sample.
        """
        if len(table) != len(digits):
            raise ValueError(f"table has {len(table)} rows but digits has {len(digits)}")
        rows = np.arange(len(table))
        if n is not None:
            if n < 1:
                raise ValueError(f"n must be >= 1, got {n}")
            if n > len(table):
                raise ValueError(f"asked for {n} digits but the split holds {len(table)}")
            rows = np.sort(np.random.default_rng(seed).choice(len(table), size=n, replace=False))
        return cls(
            digits=torch.as_tensor(np.ascontiguousarray(digits[rows], dtype=np.uint8)).to(device),
            labels=torch.as_tensor(table["label"].to_numpy(np.int64)[rows]).to(device),
            factors=torch.as_tensor(table[list(FACTORS)].to_numpy(np.int64)[rows]).to(device),
            canvas=canvas,
        )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def device(self) -> torch.device:
        return self.digits.device

    def select(self, index: torch.Tensor) -> "DigitSample":
        """The sub-sample of rows ``index`` (bool mask or int indices)."""
        index = torch.as_tensor(index, device=self.device)
        if index.dtype == torch.bool:
            index = torch.nonzero(index).squeeze(1)
        return DigitSample(self.digits[index], self.labels[index], self.factors[index], self.canvas)

    def render_factors(self, factors: torch.Tensor) -> torch.Tensor:
        """Render every digit under ``factors`` ``(B, n, 3)``: images ``(B * n, 3, H, W)``.

        Image ``b * n + i`` is digit ``i`` drawn with the factor values ``factors[b, i]``.
        """
        n = len(self)
        if factors.dim() != 3 or factors.shape[1:] != (n, len(FACTORS)):
            raise ValueError(f"factors must have shape (B, {n}, {len(FACTORS)}), got {tuple(factors.shape)}")
        flat = factors.reshape(-1, len(FACTORS))
        digits = self.digits.repeat(factors.shape[0], 1, 1)
        return render(digits, flat[:, 0], flat[:, 1], flat[:, 2], canvas=self.canvas)

    def with_values(self, columns: Sequence[int], values: torch.Tensor) -> torch.Tensor:
        """Factor matrices ``(B, n, 3)`` with columns ``columns`` set to ``values``.

        ``values`` is ``(B, len(columns))`` (one value per setting, shared by all
        digits, as in the Morris design) or ``(B, n, len(columns))`` (per digit, as in
        the interventions).
        """
        n = len(self)
        values = values.to(self.device, torch.int64)
        if values.dim() == 2:
            values = values[:, None, :].expand(-1, n, -1)
        out = self.factors[None].repeat(values.shape[0], 1, 1)
        out[:, :, list(columns)] = values
        return out


class ProbabilityReader:
    """Softmax class probabilities of a model, evaluated in bounded chunks.

    Parameters
    ----------
    model : callable
        ``model(images (N, C, H, W)) -> logits (N, classes)``; an ``nn.Module`` is
        put in eval mode. Called under ``torch.no_grad()``.
    batch_size : int
        Most images per model call (bounds memory).
    """

    def __init__(self, model: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 512) -> None:
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if isinstance(model, torch.nn.Module):
            model.eval()
        self.model = model
        self.batch_size = int(batch_size)
        self.n_images = 0

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(N, classes)`` float32 on the images' device."""
        chunks = []
        with torch.no_grad():
            for start in range(0, images.shape[0], self.batch_size):
                logits = torch.as_tensor(self.model(images[start : start + self.batch_size]))
                if logits.dim() != 2:
                    raise ValueError(f"the model must return logits (N, classes), got {tuple(logits.shape)}")
                if not bool(torch.isfinite(logits).all()):
                    raise ValueError("the model returned NaN or infinite logits")
                chunks.append(logits.to(images.device, torch.float32).softmax(dim=1))
        self.n_images += int(images.shape[0])
        return torch.cat(chunks)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``(N,)``."""
        return self(images).argmax(dim=1)
