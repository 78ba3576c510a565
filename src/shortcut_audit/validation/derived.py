"""Small derived tables the suites validate (pure pandas/NumPy, no GX).

Raw artefacts are often the wrong shape for a table expectation: a linked rate is a
property of a whole split, a missing model is the absence of a row. These helpers
turn such properties into one row per thing checked, keyed by a readable ``key``
column so that GX's unexpected examples name the offending dataset, split or model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

#: Factors of Biased-MNIST and their number of values (see docs/architecture.md).
FACTOR_LEVELS: dict[str, int] = {"digit_color": 10, "bg_color": 10, "position": 9}
N_CLASSES = 10
SPLITS = ("train", "val", "test_unbiased", "test_aligned")
#: The factor table schema (one row per sample).
FACTOR_TABLE_COLUMNS = ("mnist_index", "label", *FACTOR_LEVELS, *(f"{f}_aligned" for f in FACTOR_LEVELS))


@dataclass(frozen=True)
class DatasetSpec:
    """Correlation level ``p`` and the factors biased at that level."""

    dataset_id: str
    p: float
    biased: tuple[str, ...]


def parse_dataset_id(dataset_id: str, default_biased: Iterable[str]) -> DatasetSpec:
    """Parse ``"p0.5"`` (every factor of ``default_biased``) or ``"bg_color-p0.9"`` /
    ``"digit_color+bg_color-p0.7"`` (only the named factors)."""
    head, sep, level = dataset_id.rpartition("p")
    if head and not head.endswith("-"):
        raise ValueError(f"dataset id {dataset_id!r}: expected 'p<level>' or '<factors>-p<level>'")
    try:
        p = float(level)
    except ValueError:
        raise ValueError(f"dataset id {dataset_id!r}: {level!r} is not a correlation level") from None
    if not sep or not 0.0 <= p <= 1.0:
        raise ValueError(f"dataset id {dataset_id!r}: the level must lie in [0, 1]")
    biased = tuple(head[:-1].split("+")) if head else tuple(default_biased)
    unknown = [f for f in biased if f not in FACTOR_LEVELS]
    if unknown:
        raise ValueError(f"dataset id {dataset_id!r}: unknown factor(s) {unknown}; known: {list(FACTOR_LEVELS)}")
    return DatasetSpec(dataset_id, p, biased)


def linked_values(factor: str, labels: np.ndarray) -> np.ndarray:
    """Class-linked value of ``factor`` for each label: colours = label, position = label % 9."""
    labels = np.asarray(labels, dtype=np.int64)
    return labels % FACTOR_LEVELS[factor] if factor == "position" else labels


def expected_linked_rate(spec: DatasetSpec, split: str, factor: str) -> float:
    """Probability that ``factor`` takes its linked value in ``split``.

    Biased factors are linked with probability ``p`` in train, val and test_aligned;
    unbiased factors, and every factor of test_unbiased, are uniform.
    """
    if split != "test_unbiased" and factor in spec.biased:
        return spec.p
    return 1.0 / FACTOR_LEVELS[factor]


def linked_rate_table(
    tables: Mapping[tuple[str, str], pd.DataFrame],
    specs: Mapping[str, DatasetSpec],
    tolerance: float,
    z: float,
) -> pd.DataFrame:
    """One row per (dataset, split, factor): empirical linked rate and its allowance.

    The allowance is ``max(tolerance, z * binomial standard error)``, so small splits
    are not failed by sampling noise alone.
    """
    rows = []
    for (dataset_id, split), frame in tables.items():
        n = len(frame)
        for factor in FACTOR_LEVELS:
            expected = expected_linked_rate(specs[dataset_id], split, factor)
            rate = float(np.mean(frame[factor].to_numpy() == linked_values(factor, frame["label"].to_numpy()))) if n else 0.0
            standard_error = math.sqrt(expected * (1.0 - expected) / max(n, 1))
            rows.append({
                "key": f"{dataset_id}/{split}/{factor}", "dataset_id": dataset_id, "split": split, "factor": factor,
                "n": n, "linked_rate": rate, "expected": expected,
                "abs_error": abs(rate - expected), "allowed": max(tolerance, z * standard_error),
            })
    return pd.DataFrame(rows)


def label_share_table(labels: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """One row per (key, label 0..9) with the label's count and share (0 when absent)."""
    rows = []
    for key, values in labels.items():
        counts = np.bincount(np.asarray(values, dtype=np.int64).clip(0, N_CLASSES), minlength=N_CLASSES + 1)[:N_CLASSES]
        total = max(len(values), 1)
        rows += [{"key": f"{key}/label={k}", "count": int(c), "share": c / total} for k, c in enumerate(counts)]
    return pd.DataFrame(rows)


def presence_table(expected: Iterable[str]) -> pd.DataFrame:
    """A one-column table of the keys that must be present (``key``)."""
    return pd.DataFrame({"key": list(expected)})


def morris_share_sums(morris: pd.DataFrame) -> pd.DataFrame:
    """Sum of ``mu_star_share`` per (model, output): 1, or 0 when every mu* is 0."""
    grouped = morris.groupby(["dataset_id", "arch", "output"], sort=True)["mu_star_share"].sum().reset_index()
    grouped["key"] = grouped["dataset_id"] + "/" + grouped["arch"] + "/" + grouped["output"]
    grouped["share_sum_error"] = np.minimum((grouped["mu_star_share"] - 1.0).abs(), grouped["mu_star_share"].abs())
    return grouped[["key", "mu_star_share", "share_sum_error"]]


def reliance_steps(morris: pd.DataFrame, specs: Mapping[str, DatasetSpec], output: str) -> pd.DataFrame:
    """Consecutive steps of spurious reliance as p rises, per architecture and biased-factor set.

    Reliance of a model = sum of mu* over the factors its dataset biases (``output``
    rows only). Within a series it is divided by the series maximum, so ``drop`` is the
    fall from one level to the next as a fraction of the series' largest reliance.
    """
    rows = morris[(morris["output"] == output) & morris["dataset_id"].isin(list(specs))]
    reliance = []
    for (dataset_id, arch), frame in rows.groupby(["dataset_id", "arch"], sort=True):
        spec = specs[dataset_id]
        value = float(frame.loc[frame["factor"].isin(spec.biased), "mu_star"].sum())
        reliance.append({"arch": arch, "biased": "+".join(spec.biased), "p": spec.p, "dataset_id": dataset_id, "reliance": value})
    steps = []
    for (arch, biased), series in pd.DataFrame(reliance, columns=["arch", "biased", "p", "dataset_id", "reliance"]).groupby(["arch", "biased"], sort=True):
        series = series.sort_values("p")
        scale = series["reliance"].max()
        values = (series["reliance"] / scale).to_numpy() if scale > 0 else np.zeros(len(series))
        ids = series["dataset_id"].to_list()
        for i in range(1, len(series)):
            steps.append({"key": f"{arch}: {ids[i - 1]} -> {ids[i]}", "drop": float(values[i - 1] - values[i])})
    return pd.DataFrame(steps, columns=["key", "drop"])


def array_stats(key: str, arrays: Mapping[str, np.ndarray]) -> dict:
    """Shape, finiteness and range of each array of an ``npz`` file, flattened into one row."""
    row: dict = {"key": key}
    for name, array in arrays.items():
        shape = array.shape
        values = array.astype(np.float64)
        finite = np.isfinite(values)
        row[f"{name}_ndim"] = array.ndim
        for axis, size in enumerate(shape):
            row[f"{name}_dim{axis}"] = size
        row[f"{name}_nonfinite"] = int((~finite).sum())
        row[f"{name}_size"] = int(array.size)
        row[f"{name}_min"] = float(values[finite].min()) if finite.any() else 0.0
        row[f"{name}_max"] = float(values[finite].max()) if finite.any() else 0.0
    return row
