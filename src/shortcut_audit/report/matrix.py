"""The verdict matrix of page one: correlation level x (factor, architecture).

Each cell is the interventional verdict on one (model, factor): its state (relied on,
not relied on, inconclusive), the factor's Shapley share of the accuracy drop with its
95 % interval, and beside it the Morris explanation (``mu*``, ``sigma``) and whether the
cheap Morris screen agrees. A last column group gives each model's interaction
reading (:mod:`shortcut_audit.audit.interaction`).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from shortcut_audit.report.naming import arch_order, dataset_order, factor_label, factor_order

#: state -> (css class, symbol, meaning)
STATES = {
    "relied_on": ("relied", "\u25cf", "relied on"),
    "not_relied_on": ("not", "\u25cb", "not relied on"),
    "inconclusive": ("inconclusive", "\u25cc", "inconclusive: the interval straddles the threshold"),
}
READINGS = {"interaction": ("I", "interaction"), "non_linearity": ("N", "non-linearity"), "none": ("\u2013", "none")}


def _points(value: float) -> str:
    return f"{100 * value:.0f}"


@dataclass(frozen=True)
class VerdictCell:
    """One (model, factor) verdict with the numbers behind it."""

    state: str
    symbol: str
    drop: float
    ci_low: float
    ci_high: float
    mu_star: float
    sigma: float
    screen: str
    seed_note: str
    explanation: str

    @property
    def css(self) -> str:
        """CSS class of the cell's state."""
        return STATES[self.state][0]

    @property
    def drop_points(self) -> str:
        return _points(self.drop)

    @property
    def interval_points(self) -> str:
        return f"{_points(self.ci_low)}\u2013{_points(self.ci_high)}"

    @property
    def morris_text(self) -> str:
        return f"\u03bc* {self.mu_star:.2f} \u03c3 {self.sigma:.2f}"

    @property
    def screen_disagrees(self) -> bool:
        return self.screen == "disagree"

    @property
    def seed_dependent(self) -> bool:
        return bool(self.seed_note)


@dataclass(frozen=True)
class ReadingCell:
    code: str
    explanation: str


@dataclass(frozen=True)
class VerdictRow:
    dataset_id: str
    p: float
    biased: str
    cells: list[VerdictCell | None]
    readings: list[ReadingCell | None]


@dataclass(frozen=True)
class VerdictMatrix:
    """Rows = datasets (correlation levels), columns = factors x architectures (+ readings)."""

    factors: list[str]
    factor_labels: list[str]
    archs: list[str]
    rows: list[VerdictRow]
    threshold: float | None = None

    def _cells(self) -> list[VerdictCell]:
        return [c for r in self.rows for c in r.cells if c is not None]

    @property
    def n_cells(self) -> int:
        return len(self._cells())

    @property
    def n_models(self) -> int:
        """Models (dataset, architecture) with at least one verdict."""
        n = len(self.archs)
        return len({(r.dataset_id, i % n) for r in self.rows for i, c in enumerate(r.cells) if c is not None})

    def count(self, state: str) -> int:
        return sum(c.state == state for c in self._cells())

    @property
    def n_relied(self) -> int:
        return self.count("relied_on")

    @property
    def n_inconclusive(self) -> int:
        return self.count("inconclusive")

    @property
    def n_screen_disagree(self) -> int:
        return sum(c.screen_disagrees for c in self._cells())

    @property
    def n_seed_dependent(self) -> int:
        return sum(c.seed_dependent for c in self._cells())


def _cell(record, arch: str, dataset_id: str, factor: str, seed_note: str) -> VerdictCell:
    state = str(record.state)
    if state not in STATES:
        raise ValueError(f"verdict of {arch} on {dataset_id} / {factor}: unknown state {state!r}")
    _, symbol, meaning = STATES[state]
    screen = str(getattr(record, "screen_agreement", ""))
    parts = [
        f"{arch} trained on {dataset_id}, {factor_label(factor)}: {meaning}",
        f"Shapley drop {record.drop:.3f} (95% {record.ci_low:.3f}-{record.ci_high:.3f})",
        f"Morris mu* {record.mu_star:.3f}, sigma {record.sigma:.3f}",
    ]
    if screen in ("agree", "disagree"):
        parts.append(f"the Morris screen {'agrees' if screen == 'agree' else 'disagrees'}")
    if seed_note:
        parts.append(seed_note)
    return VerdictCell(
        state,
        symbol,
        float(record.drop),
        float(record.ci_low),
        float(record.ci_high),
        float(record.mu_star),
        float(record.sigma),
        screen,
        seed_note,
        "; ".join(parts),
    )


def _reading(models: pd.DataFrame | None, dataset_id: str, arch: str) -> ReadingCell | None:
    if models is None or "interaction_reading" not in models:
        return None
    rows = models[(models["dataset_id"] == dataset_id) & (models["arch"] == arch)]
    if rows.empty:
        return None
    reading = str(rows["interaction_reading"].iloc[0])
    code, meaning = READINGS.get(reading, ("?", reading))
    return ReadingCell(code, f"{arch} trained on {dataset_id}: large sigma reads as {meaning}")


def build_matrix(
    verdicts: pd.DataFrame,
    biased: dict[str, str] | None = None,
    params_archs: list[str] | None = None,
    models: pd.DataFrame | None = None,
    seed_notes: dict[tuple[str, str, str], str] | None = None,
    threshold: float | None = None,
) -> VerdictMatrix:
    """Arrange the verdict table into the matrix shown on page one.

    Parameters
    ----------
    verdicts : DataFrame
        ``audit_summary/verdicts.csv`` (dataset_id, p, arch, factor, state, drop, ci_low,
        ci_high, mu_star, sigma, screen_agreement).
    biased : dict, optional
        dataset_id -> readable list of its biased factors, shown under the level.
    params_archs : list, optional
        Architecture order from params.
    models : DataFrame, optional
        ``audit_summary/models.csv`` for the interaction reading of each model.
    seed_notes : dict, optional
        ``(dataset_id, arch, factor) -> note`` for cells whose state changes across
        training seeds.
    threshold : float, optional
        The verdict threshold, shown in the legend.
    """
    factors = factor_order(verdicts)
    archs = arch_order(verdicts, params_archs)
    lookup = {(r.dataset_id, r.arch, r.factor): r for r in verdicts.itertuples(index=False)}
    p_of = dict(zip(verdicts["dataset_id"], verdicts["p"]))
    notes = seed_notes or {}
    rows = []
    for dataset_id in dataset_order(verdicts):
        cells = []
        for factor in factors:
            for arch in archs:
                record = lookup.get((dataset_id, arch, factor))
                note = notes.get((dataset_id, arch, factor), "")
                cells.append(None if record is None else _cell(record, arch, dataset_id, factor, note))
        readings = [_reading(models, dataset_id, arch) for arch in archs]
        rows.append(
            VerdictRow(dataset_id, float(p_of[dataset_id]), (biased or {}).get(dataset_id, ""), cells, readings)
        )
    return VerdictMatrix(factors, [factor_label(f) for f in factors], archs, rows, threshold)
