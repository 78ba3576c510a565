"""Small derived tables the suites validate (pure pandas/NumPy, no GX).

Raw artefacts are often the wrong shape for a table expectation: a linked rate is a
property of a whole split, a missing model is the absence of a row. These helpers
turn such properties into one row per thing checked, keyed by a readable ``key``
column so that GX's unexpected examples name the offending dataset, split or model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from shortcut_audit import schema
from shortcut_audit.data.biased_mnist import DatasetSpec, linked_value
from shortcut_audit.factors.base import Categorical, Factor
from shortcut_audit.factors.biased_mnist import RENDERER_FACTORS


def _level_count(factor: Factor) -> int:
    """Number of values of a categorical renderer factor."""
    if not isinstance(factor.domain, Categorical):
        raise TypeError(f"renderer factor {factor.name!r} is not categorical")
    return factor.domain.size


#: Factors the Biased-MNIST renderer sets and their number of values (the factor registry's).
FACTOR_LEVELS: dict[str, int] = {f.name: _level_count(f) for f in RENDERER_FACTORS}
N_CLASSES = 10
SPLITS = ("train", "val", "test_unbiased", "test_aligned")
#: The factor table schema (one row per sample).
FACTOR_TABLE_COLUMNS = tuple(schema.table("biased_mnist/split").columns)


def linked_values(factor: str, labels: np.ndarray) -> np.ndarray:
    """Class-linked value of ``factor`` for each label (:func:`shortcut_audit.data.biased_mnist.linked_value`)."""
    return linked_value(factor, np.asarray(labels, dtype=np.int64)).numpy()


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
            rate = (
                float(np.mean(frame[factor].to_numpy() == linked_values(factor, frame["label"].to_numpy())))
                if n
                else 0.0
            )
            standard_error = math.sqrt(expected * (1.0 - expected) / max(n, 1))
            rows.append(
                {
                    "key": f"{dataset_id}/{split}/{factor}",
                    "dataset_id": dataset_id,
                    "split": split,
                    "factor": factor,
                    "n": n,
                    "linked_rate": rate,
                    "expected": expected,
                    "abs_error": abs(rate - expected),
                    "allowed": max(tolerance, z * standard_error),
                }
            )
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
    """Sum of ``mu_star_share`` per (model, sampling, output): 1, or 0 when every mu* is 0."""
    keys = ["dataset_id", "arch", "seed", "sampling", "output"]
    grouped = morris.groupby(keys, sort=True)["mu_star_share"].sum().reset_index()
    grouped["key"] = grouped[keys].astype(str).agg("/".join, axis=1)
    grouped["share_sum_error"] = np.minimum((grouped["mu_star_share"] - 1.0).abs(), grouped["mu_star_share"].abs())
    return grouped[["key", "mu_star_share", "share_sum_error"]]


def total_drop_steps(models: pd.DataFrame, specs: Mapping[str, DatasetSpec]) -> pd.DataFrame:
    """Consecutive correlation levels of the full-bias sweep, per architecture and seed: does the total drop fall?

    The total drop is the accuracy lost when every factor is re-drawn. A step from
    level ``a`` to the next higher level ``b`` *falls* when ``b``'s upper 95 % bound lies
    below ``a``'s lower bound (``fall_beyond_ci`` > 0), i.e. when the fall is larger
    than both intervals allow. Datasets that bias only some factors are left out.
    """
    full = {d for d, spec in specs.items() if set(spec.biased) == set(FACTOR_LEVELS)}
    rows = models[models["dataset_id"].isin(full)]
    steps = []
    for (arch, seed), series in rows.groupby(["arch", "seed"], sort=True):
        series = series.sort_values("p", kind="stable")
        for (_, low), (_, high) in zip(series.iloc[:-1].iterrows(), series.iloc[1:].iterrows()):
            steps.append(
                {
                    "key": f"{arch}/seed{seed}: {low['dataset_id']} -> {high['dataset_id']}",
                    "drop_low": float(low["total_drop"]),
                    "drop_high": float(high["total_drop"]),
                    "fall_beyond_ci": float(low["total_ci_low"] - high["total_ci_high"]),
                }
            )
    return pd.DataFrame(steps, columns=["key", "drop_low", "drop_high", "fall_beyond_ci"])


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
