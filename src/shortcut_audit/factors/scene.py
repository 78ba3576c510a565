"""Scenes: a fixed sample of items (digits or photos) that can be rendered under chosen factor values.

The factor audit never looks at stored images. A :class:`Scene` keeps a sample of
items with their labels and their *own* factor values, and renders any item under
any values of its factors: first the *base* draws the item (a Biased-MNIST digit
through the renderer, which sets digit colour, background colour and position; or a
photo, which sets nothing), then every :class:`~shortcut_audit.factors.base.ImageFactor`
applies its factors in order (a watermark, a user's border). Factor Morris,
interventions and verdicts read factors only through this interface, so any factor
defined by a function runs through the same audit.

Every rendered batch is checked: an image factor that returns the wrong shape, a
non-floating tensor, NaN or values outside ``[0, 1]`` raises :class:`FactorError`
naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import pandas as pd
import torch

from shortcut_audit.factors.base import Factor, FactorError, ImageFactor

__all__ = ["DigitBase", "ImageBase", "ProbabilityReader", "Scene", "SceneBase", "digit_scene", "image_scene"]

RANGE_TOLERANCE = 1e-5


class SceneBase(Protocol):
    """What draws the items before image factors apply (renderer factors included)."""

    @property
    def factors(self) -> tuple[Factor, ...]:
        """The factors the base itself sets (empty for photos)."""
        ...

    def __len__(self) -> int: ...

    @property
    def device(self) -> torch.device: ...

    def render(self, items: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Images ``(m, C, H, W)`` of ``items`` ``(m,)`` under base-factor ``values`` ``(m, k)``."""
        ...

    def select(self, index: torch.Tensor) -> SceneBase: ...


@dataclass(frozen=True)
class ImageBase:
    """Photos that are drawn as they are; they set no factor of their own.

    Attributes
    ----------
    images : torch.Tensor
        ``(n, C, H, W)`` float in ``[0, 1]`` on the working device.
    """

    images: torch.Tensor
    factors: tuple[Factor, ...] = ()

    def __post_init__(self) -> None:
        if self.images.dim() != 4 or not self.images.is_floating_point():
            raise ValueError(
                f"images must be a float tensor (n, C, H, W), got {tuple(self.images.shape)} {self.images.dtype}"
            )

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def device(self) -> torch.device:
        return self.images.device

    def render(self, items: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return self.images[items]

    def select(self, index: torch.Tensor) -> ImageBase:
        return replace(self, images=self.images[index])


@dataclass(frozen=True)
class DigitBase:
    """MNIST digits drawn by the Biased-MNIST renderer, which sets its three factors.

    Attributes
    ----------
    digits : torch.Tensor
        uint8 ``(n, 28, 28)`` on the working device.
    canvas : int
        Rendered height and width.
    """

    digits: torch.Tensor
    canvas: int = 56

    def __post_init__(self) -> None:
        if self.digits.dim() != 3 or tuple(self.digits.shape[1:]) != (28, 28):
            raise ValueError(f"digits must have shape (n, 28, 28), got {tuple(self.digits.shape)}")

    @property
    def factors(self) -> tuple[Factor, ...]:
        from shortcut_audit.factors.biased_mnist import RENDERER_FACTORS

        return RENDERER_FACTORS

    def __len__(self) -> int:
        return int(self.digits.shape[0])

    @property
    def device(self) -> torch.device:
        return self.digits.device

    def render(self, items: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        from shortcut_audit.data.biased_mnist import render

        levels = values.round().to(torch.int64)
        return render(self.digits[items], levels[:, 0], levels[:, 1], levels[:, 2], canvas=self.canvas)

    def select(self, index: torch.Tensor) -> DigitBase:
        return replace(self, digits=self.digits[index])


@dataclass(frozen=True)
class Scene:
    """Items with labels and own factor values, rendered under chosen values.

    Attributes
    ----------
    base : SceneBase
        Draws the items (and sets its own factors).
    image_factors : tuple of ImageFactor
        Applied after the base, in order.
    labels : torch.Tensor
        int64 ``(n,)``: the class each item should be given (its true class, or the
        model's clean prediction where there is no label).
    own_values : torch.Tensor
        float64 ``(n, d)``: each item's value of every factor of :attr:`factors`.
    """

    base: SceneBase
    image_factors: tuple[ImageFactor, ...]
    labels: torch.Tensor
    own_values: torch.Tensor

    def __post_init__(self) -> None:
        n, d = len(self.base), len(self.factors)
        if n == 0:
            raise ValueError("the scene holds no item")
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(self.labels.shape)}")
        if self.own_values.shape != (n, d):
            raise ValueError(f"own_values must have shape ({n}, {d}), got {tuple(self.own_values.shape)}")
        names = self.names
        if len(set(names)) != len(names):
            raise FactorError(f"a factor is defined twice in the scene: {list(names)}")
        for column, factor in enumerate(self.factors):
            if not factor.domain.contains(self.own_values[:, column]):
                raise FactorError(f"factor {factor.name!r}: own values outside its {factor.domain.describe()}")

    # ------------------------------------------------------------------ structure
    @property
    def factors(self) -> tuple[Factor, ...]:
        """Every factor the scene can set: the base's, then each image factor's."""
        return tuple(self.base.factors) + tuple(f for group in self.image_factors for f in group.factors)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.factors)

    def factor(self, name: str) -> Factor:
        return self.factors[self.columns([name])[0]]

    def columns(self, names: Sequence[str]) -> list[int]:
        """Column of each named factor in :attr:`own_values`; unknown names raise :class:`FactorError`."""
        known = self.names
        unknown = [n for n in names if n not in known]
        if unknown:
            raise FactorError(f"unknown factor(s) {unknown} for this scene; it can set {', '.join(known)}")
        return [known.index(n) for n in names]

    def check(self, names: Sequence[str]) -> tuple[str, ...]:
        """``names`` as a tuple when the scene sets each, none repeats and there is one at least."""
        names = (names,) if isinstance(names, str) else tuple(names)
        if not names or len(set(names)) != len(names):
            raise FactorError(f"expected a non-empty list of distinct factor names, got {list(names)}")
        self.columns(names)
        return names

    def __len__(self) -> int:
        return len(self.base)

    @property
    def device(self) -> torch.device:
        return self.base.device

    def select(self, index: torch.Tensor) -> Scene:
        """The sub-sample of items ``index`` (bool mask or int indices)."""
        index = torch.as_tensor(index, device=self.device)
        if index.dtype == torch.bool:
            index = torch.nonzero(index).squeeze(1)
        return Scene(self.base.select(index), self.image_factors, self.labels[index], self.own_values[index])

    # ------------------------------------------------------------------ rendering
    def render(self, items: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """Images ``(m, C, H, W)``: item ``items[j]`` under factor values ``values[j]`` ``(m, d)``."""
        if values.dim() != 2 or values.shape != (items.shape[0], len(self.factors)):
            raise ValueError(
                f"values must have shape ({items.shape[0]}, {len(self.factors)}), got {tuple(values.shape)}"
            )
        values = values.to(self.device, torch.float64)
        k = len(self.base.factors)
        images = self.base.render(items.to(self.device), values[:, :k])
        for group in self.image_factors:
            arguments = {f.name: f.as_argument(values[:, k + i]) for i, f in enumerate(group.factors)}
            images = _checked(group, group.apply(images, arguments), images.shape)
            k += len(group.factors)
        return images

    def render_grid(self, values: torch.Tensor) -> torch.Tensor:
        """Render every item under ``values`` ``(B, n, d)``: image ``b * n + i`` is item ``i`` with ``values[b, i]``."""
        n = len(self)
        if values.dim() != 3 or values.shape[1:] != (n, len(self.factors)):
            raise ValueError(f"values must have shape (B, {n}, {len(self.factors)}), got {tuple(values.shape)}")
        items = torch.arange(n, device=self.device).repeat(values.shape[0])
        return self.render(items, values.reshape(-1, values.shape[-1]))

    def render_own(self) -> torch.Tensor:
        """Every item under its own values, ``(n, C, H, W)``."""
        return self.render_grid(self.own_values[None])

    def with_values(self, columns: Sequence[int], values: torch.Tensor) -> torch.Tensor:
        """Value matrices ``(B, n, d)``: own values with ``columns`` set to ``values``.

        ``values`` is ``(B, len(columns))`` (one setting shared by every item, as in a
        global Morris design) or ``(B, n, len(columns))`` (per item, as in interventions).
        """
        n = len(self)
        values = values.to(self.device, torch.float64)
        if values.dim() == 2:
            values = values[:, None, :].expand(-1, n, -1)
        out = self.own_values[None].repeat(values.shape[0], 1, 1)
        out[:, :, list(columns)] = values
        return out


def _checked(group: ImageFactor, images: object, shape: torch.Size) -> torch.Tensor:
    """The output of an image factor, or :class:`FactorError` naming it."""
    what = f"image factor {group.name!r} (factors {', '.join(group.names)})"
    if not isinstance(images, torch.Tensor):
        raise FactorError(f"{what} returned {type(images).__name__}, expected a torch.Tensor")
    if tuple(images.shape) != tuple(shape):
        raise FactorError(f"{what} returned shape {tuple(images.shape)}, expected {tuple(shape)} (the input's)")
    if not images.is_floating_point():
        raise FactorError(f"{what} returned dtype {images.dtype}, expected a floating tensor")
    if not bool(torch.isfinite(images).all()):
        raise FactorError(f"{what} returned NaN or infinite pixels")
    low, high = float(images.min()), float(images.max())
    if low < -RANGE_TOLERANCE or high > 1.0 + RANGE_TOLERANCE:
        raise FactorError(f"{what} returned pixels in [{low:.4g}, {high:.4g}], expected [0, 1]")
    return images


def _sample_rows(n_rows: int, n: int | None, seed: int, shuffle: bool = False) -> np.ndarray:
    """Rows of a table drawn without replacement (seeded); all rows when ``n`` is None.

    In table order, or with ``shuffle`` in the order of a seeded permutation (so the
    first ``k`` rows of a larger draw are the draw of ``k`` rows).
    """
    if n is not None and n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if n is not None and n > n_rows:
        raise ValueError(f"asked for {n} items but the split holds {n_rows}")
    if shuffle:
        return np.random.default_rng(seed).permutation(n_rows)[: n_rows if n is None else n]
    if n is None:
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).choice(n_rows, size=n, replace=False))


def _neutral_values(groups: Sequence[ImageFactor], n: int, device: torch.device) -> torch.Tensor:
    neutral = [f.neutral for group in groups for f in group.factors]
    return torch.tensor(neutral, dtype=torch.float64, device=device).expand(n, len(neutral))


def digit_scene(
    table: pd.DataFrame,
    digits: np.ndarray,
    canvas: int = 56,
    device: torch.device | str = "cpu",
    n: int | None = None,
    seed: int = 0,
    image_factors: Sequence[ImageFactor] = (),
    shuffle: bool = False,
) -> Scene:
    """A scene of ``n`` rows of a Biased-MNIST factor table (all rows when ``n`` is None), seeded.

    Rows are drawn without replacement with a NumPy generator seeded by ``seed``, kept
    in table order (or, with ``shuffle``, in a seeded random order whose prefixes are
    the smaller samples), so the same seed gives the same sample. Each digit keeps its
    own renderer-factor values from the table; image factors start at their neutral value.
    """
    from shortcut_audit.factors.biased_mnist import RENDERER_FACTORS

    if len(table) != len(digits):
        raise ValueError(f"table has {len(table)} rows but digits has {len(digits)}")
    rows = _sample_rows(len(table), n, seed, shuffle)
    names = [f.name for f in RENDERER_FACTORS]
    own = torch.as_tensor(table[names].to_numpy(np.int64)[rows]).to(device, torch.float64)
    base = DigitBase(torch.as_tensor(np.ascontiguousarray(digits[rows], dtype=np.uint8)).to(device), canvas)
    groups = tuple(image_factors)
    return Scene(
        base=base,
        image_factors=groups,
        labels=torch.as_tensor(table["label"].to_numpy(np.int64)[rows]).to(device),
        own_values=torch.cat([own, _neutral_values(groups, len(rows), own.device)], dim=1),
    )


def image_scene(
    images: torch.Tensor,
    labels: torch.Tensor,
    image_factors: Sequence[ImageFactor],
    own: Mapping[str, float] | None = None,
) -> Scene:
    """A scene of photos ``(n, C, H, W)`` in ``[0, 1]``.

    Every image factor starts at its neutral value, except those given in ``own``
    (``name -> value`` shared by every image, e.g. ``{"watermark": 1}`` to study the
    watermark's aspects on watermarked images).
    """
    groups = tuple(image_factors)
    base = ImageBase(images)
    values = _neutral_values(groups, len(base), base.device).clone()
    names = [f.name for group in groups for f in group.factors]
    for name, value in (own or {}).items():
        if name not in names:
            raise FactorError(f"unknown factor {name!r} for this scene; it can set {', '.join(names)}")
        values[:, names.index(name)] = float(value)
    return Scene(base, groups, labels.to(base.device, torch.int64), values)


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

    def _evaluate(self, images: torch.Tensor, softmax: bool) -> torch.Tensor:
        chunks = []
        with torch.no_grad():
            for start in range(0, images.shape[0], self.batch_size):
                logits = torch.as_tensor(self.model(images[start : start + self.batch_size]))
                if logits.dim() != 2:
                    raise ValueError(f"the model must return logits (N, classes), got {tuple(logits.shape)}")
                if not bool(torch.isfinite(logits).all()):
                    raise ValueError("the model returned NaN or infinite logits")
                logits = logits.to(images.device, torch.float32)
                chunks.append(logits.softmax(dim=1) if softmax else logits)
        self.n_images += int(images.shape[0])
        return torch.cat(chunks)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, classes)`` float32 on the images' device."""
        return self._evaluate(images, softmax=False)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(N, classes)`` float32 on the images' device."""
        return self._evaluate(images, softmax=True)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``(N,)``."""
        return self(images).argmax(dim=1)
