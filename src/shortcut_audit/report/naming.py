"""Display names and orderings shared by the tables, figures and sentences of the report."""

from __future__ import annotations

import pandas as pd

from shortcut_audit.factors.biased_mnist import RENDERER_FACTORS

FACTOR_LABELS = {factor.name: factor.display_name for factor in RENDERER_FACTORS}
FACTOR_DESCRIPTIONS = {factor.name: factor.description for factor in RENDERER_FACTORS}
ORDER_LABELS = {"most_to_least": "most to least important", "least_to_most": "least to most important"}


def factor_label(factor: str) -> str:
    """Readable name of a Biased-MNIST factor (unknown factors keep their name)."""
    return FACTOR_LABELS.get(factor, str(factor).replace("_", " "))


def is_partial(dataset_id: str) -> bool:
    """True for datasets that bias only some factors (``bg_color-p0.9``)."""
    return "-" in str(dataset_id)


def dataset_order(df: pd.DataFrame) -> list[str]:
    """Dataset ids of ``df`` (columns dataset_id, p): all-factor levels by p, then partial ones."""
    pairs = df[["dataset_id", "p"]].drop_duplicates()
    keyed = sorted(((is_partial(d), float(p), str(d)) for d, p in pairs.itertuples(index=False)))
    seen: list[str] = []
    for _, _, dataset_id in keyed:
        if dataset_id not in seen:
            seen.append(dataset_id)
    return seen


def arch_order(df: pd.DataFrame, params_order: list[str] | None = None) -> list[str]:
    """Architectures of ``df`` in the order of params (then alphabetically for others)."""
    present = [str(a) for a in pd.unique(df["arch"])]
    first = [a for a in (params_order or []) if a in present]
    return first + sorted(a for a in present if a not in first)


def factor_order(df: pd.DataFrame) -> list[str]:
    """Factors of ``df`` in the documented order, unknown factors after them."""
    present = [str(f) for f in pd.unique(df["factor"]) if str(f)]
    known = [f for f in FACTOR_LABELS if f in present]
    return known + sorted(f for f in present if f not in known)


def full_bias_levels(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of datasets that bias every factor (the correlation-level sweep)."""
    return df[~df["dataset_id"].map(is_partial)]
