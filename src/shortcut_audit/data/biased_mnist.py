"""Biased-MNIST: class-linked colour and position factors over real MNIST digits.

Follows Shrestha et al. (2021), "An Investigation of Critical Issues in Bias
Mitigation Techniques" (Biased MNIST v2): every image is an MNIST digit drawn in a
*digit colour*, over a *background colour*, at one of nine *positions* of a 3x3 grid.
Each factor has a value linked to the class (:func:`linked_value`). For every sample
and every *biased* factor the linked value is taken with probability ``p``, otherwise
one of the other ``N - 1`` values uniformly (their Section 3); an *unbiased* factor is
uniform over its ``N`` values.

A note on ``p = 0.1`` ("unbiased" in the paper): for the colour factors (N = 10) the
linked value then has exactly the uniform probability 1/10. For position (N = 9) the
uniform probability is 1/9 ~ 0.111, so the rule at ``p = 0.1`` leaves position very
slightly *anti*-aligned (linked 0.100, each other cell 0.1125). The ``test_unbiased``
split keeps the paper's rule at ``p = 0.1`` for every factor.

Only factor tables are stored (one parquet per split); images are rendered on the
fly by :func:`render`, which is batched, device-agnostic and also serves as the image
generator of the MoSIP factor audit.

Palettes (RGB in [0, 1]). Digit colours are bright (max channel >= 0.9), background
colours dark (max channel <= 0.45), so every background colour stays far from every
digit colour (Euclidean RGB distance >= 0.5), and background colour k never shares the
hue of digit colour k. Minimum distance within the digit palette 0.38, within the
background palette 0.22.

====  ====================  =========  ====================  ==========
 k    digit colour          name       background colour     name
====  ====================  =========  ====================  ==========
 0    (1.00, 0.10, 0.10)    red        (0.00, 0.35, 0.35)    teal
 1    (1.00, 0.55, 0.00)    orange     (0.00, 0.05, 0.45)    navy
 2    (1.00, 0.92, 0.10)    yellow     (0.28, 0.00, 0.45)    purple
 3    (0.60, 1.00, 0.10)    lime       (0.45, 0.00, 0.28)    plum
 4    (0.15, 0.95, 0.35)    green      (0.25, 0.25, 0.25)    grey
 5    (0.10, 0.95, 0.95)    cyan       (0.45, 0.00, 0.00)    maroon
 6    (0.20, 0.50, 1.00)    blue       (0.45, 0.22, 0.00)    brown
 7    (0.65, 0.35, 1.00)    violet     (0.32, 0.40, 0.00)    olive
 8    (1.00, 0.25, 0.85)    magenta    (0.00, 0.40, 0.08)    dark green
 9    (1.00, 1.00, 1.00)    white      (0.00, 0.00, 0.00)    black
====  ====================  =========  ====================  ==========
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from shortcut_audit import schema
from shortcut_audit.config import ParamError, get, require_names

FACTORS: tuple[str, ...] = schema.RENDERED_FACTORS
N_VALUES: dict[str, int] = {"digit_color": 10, "bg_color": 10, "position": 9}
SPLITS: tuple[str, ...] = ("train", "val", "test_unbiased", "test_aligned")
UNBIASED_TEST_P = 0.1
MNIST_SIZE = 28
# MNIST train rows [0, 50000) are the standard training part, [50000, 60000) the
# standard validation part (LeCun's split, also the offline package's).
MNIST_TRAIN_PART = 50_000
MNIST_VAL_PART = 10_000
MNIST_TEST = 10_000
# A pixel belongs to the digit when its ink (intensity / 255, the compositing alpha)
# exceeds this: the pixel is then mostly digit colour.
DIGIT_MASK_THRESHOLD = 0.5

DIGIT_PALETTE = torch.tensor(
    [
        [1.00, 0.10, 0.10],
        [1.00, 0.55, 0.00],
        [1.00, 0.92, 0.10],
        [0.60, 1.00, 0.10],
        [0.15, 0.95, 0.35],
        [0.10, 0.95, 0.95],
        [0.20, 0.50, 1.00],
        [0.65, 0.35, 1.00],
        [1.00, 0.25, 0.85],
        [1.00, 1.00, 1.00],
    ],
    dtype=torch.float32,
)
BG_PALETTE = torch.tensor(
    [
        [0.00, 0.35, 0.35],
        [0.00, 0.05, 0.45],
        [0.28, 0.00, 0.45],
        [0.45, 0.00, 0.28],
        [0.25, 0.25, 0.25],
        [0.45, 0.00, 0.00],
        [0.45, 0.22, 0.00],
        [0.32, 0.40, 0.00],
        [0.00, 0.40, 0.08],
        [0.00, 0.00, 0.00],
    ],
    dtype=torch.float32,
)

_ALIGNED_COLUMNS = [f"{f}_aligned" for f in FACTORS]
TABLE_COLUMNS: tuple[str, ...] = ("mnist_index", "label", *FACTORS, *_ALIGNED_COLUMNS)
_DATASET_ID = re.compile(r"^(?:(?P<factors>[a-z_]+(?:\+[a-z_]+)*)-)?p(?P<p>\d+(?:\.\d+)?)$")


# --------------------------------------------------------------------------- factors
def linked_value(factor: str, labels) -> torch.Tensor:
    """Class-linked value of ``factor`` for each label.

    digit_color = label, bg_color = label, position = label mod 9 (digits 0 and 9
    share the top-left cell, since the grid has nine cells for ten classes).

    Parameters
    ----------
    factor : one of :data:`FACTORS`
    labels : int tensor or array (N,)

    Returns
    -------
    LongTensor (N,) on the labels' device (CPU for arrays).
    """
    _check_factor(factor)
    if not isinstance(labels, torch.Tensor):
        labels = torch.from_numpy(np.array(labels, dtype=np.int64))  # a copy: inputs may be read-only
    return labels.long() % N_VALUES[factor]


def _linked_value_np(factor: str, labels: np.ndarray) -> np.ndarray:
    return np.asarray(labels, dtype=np.int64) % N_VALUES[factor]


def _check_factor(factor: str) -> None:
    if factor not in N_VALUES:
        raise ValueError(f"unknown factor {factor!r}; known: {', '.join(FACTORS)}")


# --------------------------------------------------------------------------- dataset ids
@dataclass(frozen=True)
class DatasetSpec:
    """A Biased-MNIST dataset: correlation level ``p`` and the biased factors."""

    p: float
    biased: tuple[str, ...] = FACTORS

    def p_for(self, factor: str) -> float | None:
        """``p`` when ``factor`` is biased, else None (uniform)."""
        return self.p if factor in self.biased else None


def parse_dataset_id(dataset_id: str, default_biased: Sequence[str] = FACTORS) -> DatasetSpec:
    """Parse a dataset id into a :class:`DatasetSpec`.

    ``"p0.5"`` biases ``default_biased`` (all factors unless the params'
    ``biased_mnist.biased_factors`` says otherwise) at p = 0.5;
    ``"bg_color-p0.9"`` biases only the background colour;
    ``"digit_color+position-p0.8"`` biases the two named factors.

    Raises
    ------
    ValueError
        On a malformed id, an unknown or repeated factor, or p outside (0, 1].
    """
    if not isinstance(dataset_id, str):
        raise ValueError(f"dataset id must be a string, got {dataset_id!r}")
    match = _DATASET_ID.match(dataset_id)
    if match is None:
        raise ValueError(
            f"malformed dataset id {dataset_id!r}; expected 'p<level>' or "
            f"'<factor>[+<factor>...]-p<level>' with factors from {', '.join(FACTORS)}"
        )
    p = float(match["p"])
    if not 0.0 < p <= 1.0:
        raise ValueError(f"dataset id {dataset_id!r}: p = {p} is outside (0, 1]")
    if match["factors"] is None:
        biased = tuple(default_biased)
    else:
        biased = tuple(match["factors"].split("+"))
    unknown = [f for f in biased if f not in N_VALUES]
    if unknown:
        raise ValueError(f"dataset id {dataset_id!r}: unknown factor(s) {unknown}; known: {', '.join(FACTORS)}")
    if len(set(biased)) != len(biased):
        raise ValueError(f"dataset id {dataset_id!r}: a factor is named twice")
    if not biased:
        raise ValueError(f"dataset id {dataset_id!r}: no biased factor")
    return DatasetSpec(p=p, biased=tuple(f for f in FACTORS if f in biased))


def dataset_spec(params: Mapping, dataset_id: str) -> DatasetSpec:
    """:func:`parse_dataset_id` with the default biased factors from ``params``."""
    default = get(params, "biased_mnist.biased_factors", list(FACTORS))
    return parse_dataset_id(dataset_id, default_biased=default)


# --------------------------------------------------------------------------- params
@dataclass(frozen=True)
class BiasedMnistConfig:
    """The validated ``biased_mnist`` params section."""

    datasets: tuple[str, ...]
    specs: tuple[DatasetSpec, ...]
    biased_factors: tuple[str, ...]
    canvas: int
    n_train: int
    n_val: int
    n_test: int


def check_params(params: Mapping) -> BiasedMnistConfig:
    """Validate the whole ``biased_mnist`` section before any work.

    Raises
    ------
    ParamError
        Naming the dotted key: ``biased_mnist.datasets`` (non-empty list of unique,
        well-formed ids, p in (0, 1]), ``biased_mnist.biased_factors`` (non-empty
        list of known factors), ``biased_mnist.canvas`` (int >= 28),
        ``biased_mnist.n_train`` (1..50000), ``biased_mnist.n_val`` (1..10000),
        ``biased_mnist.n_test`` (1..10000).
    """
    section = get(params, "biased_mnist")
    if not isinstance(section, Mapping):
        raise ParamError("biased_mnist", f"expected a mapping, got {section!r}")
    biased_factors = tuple(require_names(params, "biased_mnist.biased_factors", FACTORS, default=list(FACTORS)))
    datasets, specs = _check_datasets(get(params, "biased_mnist.datasets"), biased_factors)
    canvas = _check_int(params, "biased_mnist.canvas", MNIST_SIZE, None)
    n_train = _check_int(params, "biased_mnist.n_train", 1, MNIST_TRAIN_PART)
    n_val = _check_int(params, "biased_mnist.n_val", 1, MNIST_VAL_PART)
    n_test = _check_int(params, "biased_mnist.n_test", 1, MNIST_TEST)
    return BiasedMnistConfig(datasets, specs, biased_factors, canvas, n_train, n_val, n_test)


def _check_datasets(value, biased_factors: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[DatasetSpec, ...]]:
    key = "biased_mnist.datasets"
    if not isinstance(value, list) or not value:
        raise ParamError(key, f"expected a non-empty list of dataset ids such as [p0.1, p0.9], got {value!r}")
    specs = []
    for i, dataset_id in enumerate(value):
        try:
            specs.append(parse_dataset_id(dataset_id, default_biased=biased_factors))
        except ValueError as err:
            raise ParamError(f"{key}[{i}]", str(err)) from None
    if len(set(value)) != len(value):
        raise ParamError(key, f"dataset ids must be unique, got {value!r}")
    if len(set(specs)) != len(specs):
        raise ParamError(key, f"two ids describe the same dataset (same p and biased factors): {value!r}")
    return tuple(value), tuple(specs)


def _check_int(params: Mapping, key: str, low: int, high: int | None) -> int:
    value = get(params, key)
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ParamError(key, f"expected an integer {bound}, got {value!r}")
    return value


# --------------------------------------------------------------------------- sampling
def stable_rng(seed: int, *names: str) -> np.random.Generator:
    """A NumPy generator seeded from ``seed`` and names, identical across processes.

    The names are hashed with SHA-256 (Python's ``hash`` is salted per process).
    """
    words = [int(seed) % 2**32]
    for name in names:
        digest = hashlib.sha256(name.encode("utf-8")).digest()
        words += [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]
    return np.random.default_rng(np.random.SeedSequence(words))


def sample_factor(labels: np.ndarray, factor: str, p: float | None, rng: np.random.Generator) -> np.ndarray:
    """Draw one factor's values (Shrestha et al. 2021, Sec. 3).

    With ``p`` given: the linked value with probability ``p``, else one of the other
    ``N - 1`` values uniformly (linked + 1 + U{0..N-2}, mod N). With ``p=None``:
    uniform over the ``N`` values.
    """
    n_values = N_VALUES[factor]
    n = len(labels)
    if p is None:
        return rng.integers(0, n_values, size=n, dtype=np.int64)
    linked = _linked_value_np(factor, labels)
    take_linked = rng.random(n) < p
    other = (linked + 1 + rng.integers(0, n_values - 1, size=n, dtype=np.int64)) % n_values
    return np.where(take_linked, linked, other)


def sample_factor_table(
    mnist_index: np.ndarray, labels: np.ndarray, spec: DatasetSpec, rng: np.random.Generator
) -> pd.DataFrame:
    """Factor table for the given digits under ``spec`` (schema: docs/architecture.md)."""
    labels = np.asarray(labels, dtype=np.int64)
    columns: dict[str, np.ndarray] = {
        "mnist_index": np.asarray(mnist_index, dtype=np.int64),
        "label": labels,
    }
    for factor in FACTORS:
        columns[factor] = sample_factor(labels, factor, spec.p_for(factor), rng)
    for factor in FACTORS:
        columns[f"{factor}_aligned"] = columns[factor] == _linked_value_np(factor, labels)
    return pd.DataFrame(columns)


def select_digits(seed: int, n_train: int, n_val: int, n_test: int) -> dict[str, np.ndarray]:
    """MNIST rows for each split, sorted; shared by every dataset of a seed.

    train: ``n_train`` rows of MNIST train [0, 50000); val: ``n_val`` rows of the
    standard validation part [50000, 60000); both test splits: the same ``n_test``
    rows of MNIST test.
    """
    rng = stable_rng(seed, "digits")
    train = rng.choice(MNIST_TRAIN_PART, size=n_train, replace=False)
    val = MNIST_TRAIN_PART + rng.choice(MNIST_VAL_PART, size=n_val, replace=False)
    test = rng.choice(MNIST_TEST, size=n_test, replace=False)
    return {
        "train": np.sort(train).astype(np.int64),
        "val": np.sort(val).astype(np.int64),
        "test_unbiased": np.sort(test).astype(np.int64),
        "test_aligned": np.sort(test).astype(np.int64),
    }


def make_dataset(
    dataset_id: str,
    spec: DatasetSpec,
    train_labels: np.ndarray,
    test_labels: np.ndarray,
    seed: int,
    n_train: int,
    n_val: int,
    n_test: int,
) -> dict[str, pd.DataFrame]:
    """All four factor tables of one dataset, deterministic in (seed, dataset_id).

    ``train``, ``val`` and ``test_aligned`` follow ``spec``; ``test_unbiased`` uses
    p = 0.1 for every factor and depends on ``seed`` only, so all datasets of a
    run share the same unbiased test set (comparable bias-conflicting subsets).
    """
    rows = select_digits(seed, n_train, n_val, n_test)
    unbiased = DatasetSpec(p=UNBIASED_TEST_P, biased=FACTORS)
    plan = {
        "train": (spec, train_labels, stable_rng(seed, "factors", dataset_id, "train")),
        "val": (spec, train_labels, stable_rng(seed, "factors", dataset_id, "val")),
        "test_unbiased": (unbiased, test_labels, stable_rng(seed, "factors", "test_unbiased")),
        "test_aligned": (spec, test_labels, stable_rng(seed, "factors", dataset_id, "test_aligned")),
    }
    tables = {}
    for split, (split_spec, labels, rng) in plan.items():
        index = rows[split]
        tables[split] = sample_factor_table(index, np.asarray(labels)[index], split_spec, rng)
    return tables


def split_spec(spec: DatasetSpec, split: str) -> DatasetSpec:
    """The sampling spec actually used for ``split`` of a dataset with ``spec``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    return DatasetSpec(p=UNBIASED_TEST_P, biased=FACTORS) if split == "test_unbiased" else spec


def summary_rows(dataset_id: str, spec: DatasetSpec, tables: Mapping[str, pd.DataFrame]) -> list[dict]:
    """One row per (split, factor): the sampling p, whether the factor follows the
    linked rule, n, the empirical linked rate and its expectation (p or 1/N)."""
    rows = []
    for split, table in tables.items():
        used = split_spec(spec, split)
        for factor in FACTORS:
            biased = factor in used.biased
            rows.append(
                {
                    "dataset_id": dataset_id,
                    "p": used.p,
                    "split": split,
                    "factor": factor,
                    "biased": biased,
                    "n": int(len(table)),
                    "linked_rate": float(table[f"{factor}_aligned"].mean()),
                    "expected_linked_rate": used.p if biased else 1.0 / N_VALUES[factor],
                }
            )
    return rows


# --------------------------------------------------------------------------- rendering
def position_offsets(canvas: int = 56) -> torch.Tensor:
    """Pixel offsets of the 3 grid rows/columns: round(linspace(0, canvas - 28, 3))."""
    if canvas < MNIST_SIZE:
        raise ValueError(f"canvas must be >= {MNIST_SIZE}, got {canvas}")
    return torch.from_numpy(np.rint(np.linspace(0, canvas - MNIST_SIZE, 3)).astype(np.int64))


def _tensor(x) -> torch.Tensor:
    """``torch.as_tensor`` that copies read-only arrays (memory maps, pandas columns)."""
    if isinstance(x, np.ndarray) and not x.flags.writeable:
        x = x.copy()
    return torch.as_tensor(x)


def _as_tensor(x, device: torch.device, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = _tensor(x)
    return t.to(device=device, dtype=dtype or t.dtype, non_blocking=True)


def _place_digits(alpha28: torch.Tensor, position: torch.Tensor, canvas: int) -> torch.Tensor:
    """Paste (N, 28, 28) ink into zero (N, canvas, canvas) canvases at each cell."""
    n = alpha28.shape[0]
    out = alpha28.new_zeros((n, canvas, canvas))
    offsets = position_offsets(canvas).tolist()
    for k in range(9):
        rows = torch.nonzero(position == k).squeeze(1)
        if rows.numel():
            r, c = offsets[k // 3], offsets[k % 3]
            out[rows, r : r + MNIST_SIZE, c : c + MNIST_SIZE] = alpha28.index_select(0, rows)
    return out


def _check_render_inputs(digits: torch.Tensor, factors: dict[str, torch.Tensor]) -> None:
    if digits.dim() != 3 or tuple(digits.shape[1:]) != (MNIST_SIZE, MNIST_SIZE):
        raise ValueError(f"digits must have shape (N, 28, 28), got {tuple(digits.shape)}")
    n = digits.shape[0]
    for name, values in factors.items():
        if values.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {tuple(values.shape)}")
        if n and (int(values.min()) < 0 or int(values.max()) >= N_VALUES[name]):
            raise ValueError(f"{name} values must lie in 0..{N_VALUES[name] - 1}")


def render(digits, digit_color, bg_color, position, canvas: int = 56) -> torch.Tensor:
    """Render Biased-MNIST images, batched, on the digits' device.

    Each pixel alpha-composites the digit colour over the background colour with the
    digit ink as alpha: ``x = bg + a * (fg - bg)``, ``a = intensity / 255``. The
    28x28 digit sits at row offset ``offsets[k // 3]`` and column offset
    ``offsets[k % 3]`` for position k, ``offsets = round(linspace(0, canvas - 28, 3))``,
    so its centre lies in cell k of the canvas's 3x3 grid.

    Parameters
    ----------
    digits : uint8 tensor (N, 28, 28), any device (arrays are accepted, CPU)
    digit_color, bg_color : int tensors (N,), values 0..9
    position : int tensor (N,), values 0..8
    canvas : output height and width (>= 28)

    Returns
    -------
    float32 tensor (N, 3, canvas, canvas) in [0, 1] on the digits' device.
    """
    digits = _tensor(digits)
    device = digits.device
    factors = {
        "digit_color": _as_tensor(digit_color, device, torch.long),
        "bg_color": _as_tensor(bg_color, device, torch.long),
        "position": _as_tensor(position, device, torch.long),
    }
    _check_render_inputs(digits, factors)
    alpha = _place_digits(digits.to(torch.float32).mul_(1.0 / 255.0), factors["position"], canvas)
    fg = DIGIT_PALETTE.to(device).index_select(0, factors["digit_color"])
    bg = BG_PALETTE.to(device).index_select(0, factors["bg_color"])
    # (N, 3, 1, 1) + (N, 1, H, W) * (N, 3, 1, 1)
    return torch.addcmul(bg[:, :, None, None], alpha[:, None], (fg - bg)[:, :, None, None])


def digit_mask(digits, position, canvas: int = 56, threshold: float = DIGIT_MASK_THRESHOLD) -> torch.Tensor:
    """Boolean (N, canvas, canvas) mask of digit pixels in rendered images.

    A pixel is a digit pixel when its ink ``intensity / 255`` exceeds ``threshold``
    (default 0.5: the pixel is mostly digit colour); all other pixels, including the
    faint anti-aliased rim, count as background.
    """
    digits = _tensor(digits)
    pos = _as_tensor(position, digits.device, torch.long)
    _check_render_inputs(digits, {"position": pos})
    ink = _place_digits((digits > threshold * 255.0).to(torch.uint8), pos, canvas)
    return ink.bool()


# --------------------------------------------------------------------------- loading
def dataset_dir(root: str | Path, dataset_id: str) -> Path:
    """Folder of one dataset's tables: ``<root>/biased_mnist/<dataset_id>``."""
    return Path(root) / "biased_mnist" / dataset_id


def load_split(root: str | Path, dataset_id: str, split: str) -> tuple[pd.DataFrame, np.ndarray]:
    """Factor table and its digits for one split.

    Parameters
    ----------
    root : the data folder holding ``mnist/`` and ``biased_mnist/`` (``data``)
    dataset_id : e.g. ``"p0.5"``
    split : ``train``, ``val``, ``test_unbiased`` or ``test_aligned``

    Returns
    -------
    (table, digits): the parquet table and uint8 digits (len(table), 28, 28), row i
    of ``digits`` being MNIST image ``table.mnist_index[i]``.
    """
    from shortcut_audit.data.mnist import load_mnist_arrays

    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    path = dataset_dir(root, dataset_id) / schema.file_name("biased_mnist/split", split=split)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: factor table not found; run the biased_mnist stage (dvc repro biased_mnist)")
    table = pd.read_parquet(path)
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}")
    part = "train" if split in ("train", "val") else "test"
    arrays = load_mnist_arrays(Path(root) / "mnist", parts=(part,))
    index = table["mnist_index"].to_numpy(np.int64)
    images, labels = arrays[f"{part}_images"], arrays[f"{part}_labels"]
    if len(index) and (index.min() < 0 or index.max() >= len(images)):
        raise ValueError(f"{path}: mnist_index outside MNIST {part} (0..{len(images) - 1})")
    if not np.array_equal(labels[index].astype(np.int64), table["label"].to_numpy(np.int64)):
        raise ValueError(f"{path}: labels disagree with data/mnist; rebuild with dvc repro biased_mnist")
    return table, np.ascontiguousarray(images[index])


class FactorImageDataset(torch.utils.data.Dataset):
    """Torch dataset over a factor table and its digits; renders on the fly.

    ``dataset[i]`` -> ``(image (3, canvas, canvas) float32, label int64)``;
    :meth:`batch` renders many indices in one call on ``device`` (much faster than
    per-item access through a DataLoader).
    """

    def __init__(self, table: pd.DataFrame, digits: np.ndarray, canvas: int = 56):
        if len(table) != len(digits):
            raise ValueError(f"table has {len(table)} rows but digits has {len(digits)}")
        self.canvas = canvas
        # torch.tensor copies: table columns and memory-mapped digits may be read-only.
        self.digits = torch.tensor(np.asarray(digits, dtype=np.uint8))
        self.labels = torch.tensor(table["label"].to_numpy(np.int64))
        self.factors = torch.tensor(table[list(FACTORS)].to_numpy(np.int64))  # (N, 3)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self.batch(torch.tensor([int(i)]))
        return images[0], labels[0]

    def batch(self, index, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """Render rows ``index`` on ``device``: ``(images (B, 3, H, W), labels (B,))``."""
        index = torch.as_tensor(index, dtype=torch.long)
        digits = self.digits.index_select(0, index).to(device)
        factors = self.factors.index_select(0, index).to(device)
        images = render(digits, factors[:, 0], factors[:, 1], factors[:, 2], canvas=self.canvas)
        return images, self.labels.index_select(0, index).to(device)


def linked_rate(table: pd.DataFrame, factor: str) -> float:
    """Share of rows whose ``factor`` takes its class-linked value."""
    _check_factor(factor)
    if not len(table):
        raise ValueError("linked rate of an empty table is undefined")
    return float(table[f"{factor}_aligned"].mean())
