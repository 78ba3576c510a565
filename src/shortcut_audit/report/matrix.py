"""The verdict matrix of page one: correlation level x (factor, architecture).

Each cell says whether the model relies on the factor, by Morris screening (mu* share)
and by the interventional test (Shapley share of the accuracy drop over re-draw orders), and
marks the cells where the two disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from shortcut_audit.report.naming import arch_order, dataset_order, factor_label, factor_order

STATES = {
    (True, True): ("relied", "\u25cf", "relied on (both tests)"),
    (False, False): ("not", "\u25cb", "not relied on (both tests)"),
    (True, False): ("morris-only", "\u25d0", "disputed: Morris says relied on, the intervention does not"),
    (False, True): ("intervention-only", "\u25d1", "disputed: the intervention says relied on, Morris does not"),
}


@dataclass(frozen=True)
class VerdictCell:
    """One (model, factor) verdict with the numbers behind it."""

    state: str
    symbol: str
    share: float
    drop: float
    explanation: str

    @property
    def share_pct(self) -> str:
        return f"{100 * self.share:.0f}"

    @property
    def drop_pct(self) -> str:
        points = round(100 * self.drop)
        return f"\u2212{points}" if points > 0 else "0"

    @property
    def disputed(self) -> bool:
        return self.state in ("morris-only", "intervention-only")


@dataclass(frozen=True)
class VerdictRow:
    dataset_id: str
    p: float
    biased: str
    cells: list[VerdictCell | None]


@dataclass(frozen=True)
class VerdictMatrix:
    """Rows = datasets (correlation levels), columns = factors x architectures."""

    factors: list[str]
    factor_labels: list[str]
    archs: list[str]
    rows: list[VerdictRow]

    @property
    def n_cells(self) -> int:
        return sum(c is not None for r in self.rows for c in r.cells)

    @property
    def n_models(self) -> int:
        """Models (dataset, architecture) with at least one verdict."""
        n = len(self.archs)
        return len({(r.dataset_id, i % n) for r in self.rows for i, c in enumerate(r.cells) if c is not None})

    @property
    def n_disputed(self) -> int:
        return sum(c is not None and c.disputed for r in self.rows for c in r.cells)


def _cell(record, arch: str, dataset_id: str, factor: str) -> VerdictCell:
    state, symbol, meaning = STATES[(bool(record.morris_relied_on), bool(record.intervention_relied_on))]
    explanation = (f"{arch} trained on {dataset_id}, {factor_label(factor)}: {meaning}; "
                   f"mu* share {record.mu_star_share:.3f}, drop {record.drop:.3f}")
    return VerdictCell(state, symbol, float(record.mu_star_share), float(record.drop), explanation)


def build_matrix(verdicts: pd.DataFrame, biased: dict[str, str] | None = None,
                 params_archs: list[str] | None = None) -> VerdictMatrix:
    """Arrange the verdict table into the matrix shown on page one.

    Parameters
    ----------
    verdicts : DataFrame
        ``audit_summary/verdicts.csv`` (dataset_id, p, arch, factor, mu_star_share,
        morris_relied_on, drop, intervention_relied_on, agree).
    biased : dict, optional
        dataset_id -> readable list of its biased factors, shown under the level.
    params_archs : list, optional
        Architecture order from params.
    """
    factors = factor_order(verdicts)
    archs = arch_order(verdicts, params_archs)
    lookup = {(r.dataset_id, r.arch, r.factor): r for r in verdicts.itertuples(index=False)}
    p_of = dict(zip(verdicts["dataset_id"], verdicts["p"]))
    rows = []
    for dataset_id in dataset_order(verdicts):
        cells = []
        for factor in factors:
            for arch in archs:
                record = lookup.get((dataset_id, arch, factor))
                cells.append(None if record is None else _cell(record, arch, dataset_id, factor))
        rows.append(VerdictRow(dataset_id, float(p_of[dataset_id]), (biased or {}).get(dataset_id, ""), cells))
    return VerdictMatrix(factors, [factor_label(f) for f in factors], archs, rows)
