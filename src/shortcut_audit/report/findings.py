"""Plain-language findings generated from the numbers of the audit.

Each function reads one table and returns sentences (possibly none); nothing here is
a fixed claim, so a sentence disappears when its table is missing and changes when
the numbers do. ``kind`` tells the page how to mark the sentence: ``alert`` for
reliance on a shortcut or a failure, ``ok`` for a reassuring result, ``info`` otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from shortcut_audit.report.naming import (
    dataset_order,
    factor_label,
    factor_order,
    full_bias_levels,
)

#: Correlation level at or below which a dataset counts as unbiased (p = 0.1 is chance).
UNBIASED_P = 0.1 + 1e-9
COLOUR_FACTORS = ("digit_color", "bg_color")


@dataclass(frozen=True)
class Finding:
    text: str
    kind: str = "info"


def _list(items: list[str], limit: int = 4) -> str:
    shown = items[:limit]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    if len(shown) == 1:
        return shown[0] + more
    return ", ".join(shown[:-1]) + (" and " if not more else ", ") + shown[-1] + more


def gate_findings(gate: dict) -> list[Finding]:
    """Release decision with the failing checks named."""
    checks = [c for c in gate.get("checks", []) if isinstance(c, dict)]
    failing = [c for c in checks if str(c.get("status", "")).lower() != "pass"]
    status = str(gate.get("status", "unknown")).upper()
    if not failing:
        return [Finding(f"Release gate: {status}; all {len(checks)} checks pass.",
                        "ok" if status == "PASS" else "alert")]
    names = [f"{c.get('name', '?')} ({c.get('status', '?')})" for c in failing]
    return [Finding(f"Release gate: {status}; {len(failing)} of {len(checks)} checks do not pass: "
                    f"{_list(names)}.", "alert")]


def agreement_findings(verdicts: pd.DataFrame) -> list[Finding]:
    """How often the Morris verdict matches the interventional ground truth."""
    n = len(verdicts)
    if n == 0:
        return []
    agree = int(verdicts["agree"].astype(bool).sum())
    disputed = verdicts[~verdicts["agree"].astype(bool)]
    text = (f"Morris screening and the interventional test agree on {agree} of {n} "
            f"(model, factor) verdicts ({100 * agree / n:.0f}%).")
    if len(disputed):
        cells = [f"{r.arch} on {r.dataset_id} / {factor_label(r.factor)}"
                 for r in disputed.itertuples(index=False)]
        text += f" Disputed: {_list(cells)}."
        morris_only = disputed[disputed["morris_relied_on"].astype(bool)]
        text += (f" In {len(morris_only)} of the {len(disputed)} disputed cells only Morris finds reliance"
                 f"{_levels(morris_only)}; in {len(disputed) - len(morris_only)} only the intervention"
                 f"{_levels(disputed[~disputed['morris_relied_on'].astype(bool)])}.")
    return [Finding(text, "ok" if agree == n else "info")]


def _levels(cells: pd.DataFrame) -> str:
    """`` (training sets a, b)``: where a group of verdict cells lies; empty for no cells."""
    if cells.empty:
        return ""
    ordered = cells.sort_values("p", kind="stable")["dataset_id"].drop_duplicates().tolist()
    return f" (training set{'s' if len(ordered) > 1 else ''} {_list(ordered, limit=len(ordered))})"


def factor_findings(verdicts: pd.DataFrame) -> list[Finding]:
    """Per factor: how many models rely on it, and from which correlation level on."""
    out = []
    n_models = verdicts[["dataset_id", "arch"]].drop_duplicates().shape[0]
    for factor in factor_order(verdicts):
        rows = verdicts[verdicts["factor"] == factor]
        relied = rows[rows["morris_relied_on"].astype(bool) & rows["intervention_relied_on"].astype(bool)]
        if relied.empty:
            out.append(Finding(f"No model relies on {factor_label(factor)} by both tests.", "ok"))
            continue
        sweep = full_bias_levels(relied)
        first = sweep.sort_values(["p", "arch"]).iloc[0] if len(sweep) else relied.sort_values("p").iloc[0]
        text = (f"{factor_label(factor).capitalize()} is relied on by {relied[['dataset_id', 'arch']].drop_duplicates().shape[0]} "
                f"of {n_models} models (both tests), first at {first['dataset_id']} ({first['arch']}).")
        all_from = _all_architectures_from(rows)
        if all_from is not None:
            text += f" Every architecture relies on it from {all_from} upward."
        out.append(Finding(text, "alert"))
    return out


def _all_architectures_from(rows: pd.DataFrame) -> str | None:
    """Lowest level of the sweep from which every architecture relies on the factor."""
    sweep = full_bias_levels(rows)
    if sweep.empty:
        return None
    both = sweep["morris_relied_on"].astype(bool) & sweep["intervention_relied_on"].astype(bool)
    by_level = both.groupby(sweep["dataset_id"]).all()
    levels = dataset_order(sweep)
    answer = None
    for dataset_id in reversed(levels):
        if not by_level[dataset_id]:
            break
        answer = dataset_id
    return answer


def strongest_findings(verdicts: pd.DataFrame, single_drop: pd.DataFrame | None) -> list[Finding]:
    """The (model, factor) pair with the largest Shapley share of the accuracy drop."""
    if verdicts.empty:
        return []
    top = verdicts.sort_values(["drop", "mu_star_share"], ascending=False).iloc[0]
    if float(top["drop"]) <= 0:
        return []
    text = (f"The strongest reliance: {top['arch']} trained on {top['dataset_id']} on "
            f"{factor_label(top['factor'])}, mu* share {top['mu_star_share']:.2f}; its Shapley share of the "
            f"accuracy drop is {top['drop']:.2f}")
    if single_drop is not None:
        match = single_drop[(single_drop["dataset_id"] == top["dataset_id"]) & (single_drop["arch"] == top["arch"])
                            & (single_drop["factor"] == top["factor"])]
        if len(match):
            m = match.iloc[0]
            text += (f"; re-drawn alone it leaves accuracy {m['accuracy']:.2f} "
                     f"(95% CI {m['ci_low']:.2f} to {m['ci_high']:.2f})")
    return [Finding(text + ".", "alert")]


def unbiased_findings(verdicts: pd.DataFrame) -> list[Finding]:
    """Models trained on unbiased data should rely on no factor."""
    unbiased = verdicts[verdicts["p"].astype(float) <= UNBIASED_P]
    if unbiased.empty:
        return []
    bad = unbiased[unbiased["morris_relied_on"].astype(bool) | unbiased["intervention_relied_on"].astype(bool)]
    n = unbiased[["dataset_id", "arch"]].drop_duplicates().shape[0]
    if bad.empty:
        return [Finding(f"Models trained on unbiased data (p = 0.1) rely on no factor ({n} models, as expected).", "ok")]
    cells = [f"{r.arch} on {factor_label(r.factor)}" for r in bad.itertuples(index=False)]
    return [Finding(f"Unexpected: among the models trained on unbiased data (p = 0.1), at least one test finds "
                    f"reliance for {_list(cells)}.", "alert")]


def gap_findings(models: pd.DataFrame) -> list[Finding]:
    """The largest accuracy gap between bias-aligned and bias-conflicting test digits."""
    if models.empty:
        return []
    top = models.sort_values("aligned_conflicting_gap", ascending=False).iloc[0]
    return [Finding(f"Largest aligned-vs-conflicting accuracy gap: {top['arch']} trained on {top['dataset_id']}, "
                    f"{top['aligned_conflicting_gap']:.2f} (aligned {top['aligned_acc']:.2f}, "
                    f"unbiased {top['unbiased_acc']:.2f}).",
                    "alert" if top["aligned_conflicting_gap"] > 0.1 else "info")]


def background_findings(pixel_view: pd.DataFrame) -> list[Finding]:
    """Whether Sobol attribution moves to the background as the bias grows."""
    sweep = full_bias_levels(pixel_view)
    if sweep["p"].nunique() < 2:
        return []
    by_p = sweep.groupby("p")["background_share"].mean().sort_index()
    area = float(sweep["background_pixel_fraction"].mean())
    trend = "rises" if by_p.iloc[-1] > by_p.iloc[0] else "does not rise"
    return [Finding(f"The share of Sobol attribution on background pixels {trend} with the correlation level: "
                    f"{by_p.iloc[0]:.2f} at p = {by_p.index[0]:g} to {by_p.iloc[-1]:.2f} at p = {by_p.index[-1]:g} "
                    f"(mean over architectures; background covers {area:.2f} of the image).",
                    "info")]


def reliance_rises(verdicts: pd.DataFrame, factors: tuple[str, ...] = COLOUR_FACTORS,
                   tolerance: float = 0.05) -> bool | None:
    """Whether the mean mu* share of ``factors`` never falls (beyond ``tolerance``) as p rises.

    None when the sweep has fewer than two correlation levels.
    """
    sweep = full_bias_levels(verdicts[verdicts["factor"].isin(factors)])
    if sweep["p"].nunique() < 2:
        return None
    by_p = sweep.groupby("p")["mu_star_share"].mean().sort_index().to_numpy()
    return bool((np.diff(by_p) >= -tolerance).all())


def suite_statuses(summary: pd.DataFrame) -> pd.Series:
    """pass / fail / skipped per validation suite (skipped: nothing was evaluated)."""
    if "status" in summary:
        # the validation stage writes passed/failed/skipped/error
        return summary["status"].astype(str).str.lower().replace({"passed": "pass", "failed": "fail"})
    status = pd.Series(np.where(summary["success"].astype(bool), "pass", "fail"), index=summary.index)
    if "evaluated" in summary:
        status = status.mask(summary["evaluated"].astype(float) == 0, "skipped")
    return status


def validation_findings(summary: pd.DataFrame) -> list[Finding]:
    """How many validation suites pass, naming those that fail or were skipped."""
    status = suite_statuses(summary)
    suites = summary["suite"].astype(str)
    failing = suites[status.isin(["fail", "error"])].tolist()
    skipped = suites[status == "skipped"].tolist()
    text = f"{int((status == 'pass').sum())} of {len(summary)} validation suites pass"
    if failing:
        text += f"; failing: {_list(failing)}"
    if skipped:
        text += f"; skipped: {_list(skipped)}"
    return [Finding(text + ".", "alert" if failing else "ok")]
