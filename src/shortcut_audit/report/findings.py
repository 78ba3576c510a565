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
        return [
            Finding(f"Release gate: {status}; all {len(checks)} checks pass.", "ok" if status == "PASS" else "alert")
        ]
    names = [f"{c.get('name', '?')} ({c.get('status', '?')})" for c in failing]
    return [
        Finding(f"Release gate: {status}; {len(failing)} of {len(checks)} checks do not pass: {_list(names)}.", "alert")
    ]


def _relied(rows: pd.DataFrame) -> pd.Series:
    return rows["state"].astype(str) == "relied_on"


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
        relied = rows[_relied(rows)]
        unsure = rows[rows["state"].astype(str) == "inconclusive"]
        tail = f" {len(unsure)} verdict(s) on it are inconclusive{_levels(unsure)}." if len(unsure) else ""
        if relied.empty:
            out.append(Finding(f"No model relies on {factor_label(factor)}.{tail}", "info" if tail else "ok"))
            continue
        sweep = full_bias_levels(relied)
        first = sweep.sort_values(["p", "arch"]).iloc[0] if len(sweep) else relied.sort_values("p").iloc[0]
        n_relying = relied[["dataset_id", "arch"]].drop_duplicates().shape[0]
        text = (
            f"{factor_label(factor).capitalize()} is relied on by {n_relying} "
            f"of {n_models} models, first at {first['dataset_id']} ({first['arch']})."
        )
        all_from = _all_architectures_from(rows)
        if all_from is not None:
            text += f" Every architecture relies on it from {all_from} upward."
        out.append(Finding(text + tail, "alert"))
    return out


def _all_architectures_from(rows: pd.DataFrame) -> str | None:
    """Lowest level of the sweep from which every architecture relies on the factor."""
    sweep = full_bias_levels(rows)
    if sweep.empty:
        return None
    by_level = _relied(sweep).groupby(sweep["dataset_id"]).all()
    levels = dataset_order(sweep)
    answer = None
    for dataset_id in reversed(levels):
        if not by_level[dataset_id]:
            break
        answer = dataset_id
    return answer


def strongest_findings(verdicts: pd.DataFrame) -> list[Finding]:
    """The (model, factor) pair with the largest Shapley share of the accuracy drop."""
    if verdicts.empty:
        return []
    top = verdicts.sort_values(["drop", "mu_star"], ascending=False).iloc[0]
    if float(top["drop"]) <= 0:
        return []
    return [
        Finding(
            f"The strongest reliance: {top['arch']} trained on {top['dataset_id']} on "
            f"{factor_label(top['factor'])}: its Shapley share of the accuracy drop is {top['drop']:.2f} "
            f"(95% interval {top['ci_low']:.2f} to {top['ci_high']:.2f}); re-drawn alone it costs "
            f"{top['single_drop']:.2f}; Morris mu* {top['mu_star']:.2f}.",
            "alert",
        )
    ]


def unbiased_findings(verdicts: pd.DataFrame) -> list[Finding]:
    """Models trained on unbiased data should rely on no factor."""
    unbiased = verdicts[verdicts["p"].astype(float) <= UNBIASED_P]
    if unbiased.empty:
        return []
    n = unbiased[["dataset_id", "arch"]].drop_duplicates().shape[0]
    bad = unbiased[unbiased["state"].astype(str) != "not_relied_on"]
    if bad.empty:
        return [
            Finding(f"Models trained on unbiased data (p = 0.1) rely on no factor ({n} models, as expected).", "ok")
        ]
    cells = [
        f"{r.arch} on {factor_label(r.factor)} ({str(r.state).replace('_', ' ')}, drop {r.drop:.2f})"
        for r in bad.itertuples(index=False)
    ]
    return [
        Finding(
            f"Unexpected: among the models trained on unbiased data (p = 0.1), not every verdict is "
            f"'not relied on': {_list(cells)}.",
            "alert",
        )
    ]


def screen_findings(screen: dict) -> list[Finding]:
    """How good Morris is as a cheap screen for the verdicts (``audit_summary/screen.json``)."""
    out = []
    primary = screen.get("primary_sampling")
    for sampling, numbers in (screen.get("samplings") or {}).items():
        auroc, cv = numbers.get("auroc"), numbers.get("cv_agreement")
        if auroc is None:
            continue
        text = (
            f"Morris as a screen ({sampling} sampling): AUROC {auroc:.2f} of mu* for the verdicts over "
            f"{screen['n_cells'] - screen['n_inconclusive']} conclusive cells ({screen['n_inconclusive']} "
            f"inconclusive left out)"
        )
        if numbers.get("spearman_mu_star_drop") is not None:
            text += f"; Spearman {numbers['spearman_mu_star_drop']:.2f} with the Shapley drop"
        if cv is not None:
            text += (
                f"; a threshold fitted on the other correlation levels agrees on {100 * cv:.0f}% of the held-out cells"
            )
        if sampling == primary and numbers.get("fitted_threshold") is not None:
            text += (
                f". Fitted on every level the threshold is {numbers['fitted_threshold']:.3f} (shipped: "
                f"{screen['shipped_threshold']:.3f})"
            )
        out.append(Finding(text + ".", "info"))
    return out


def easiest_cue_findings(morris: pd.DataFrame, sampling: str) -> list[Finding]:
    """Whether summed Morris reliance falls from the second-highest to the highest correlation level.

    Under near-perfect correlation a model needs only one cue and keeps the easiest;
    the sum of ``mu*`` over the biased factors (true-class output) then falls. Stated as
    found, per architecture, on the full-bias sweep.
    """
    rows = full_bias_levels(morris[(morris["output"] == "true_class_prob") & (morris["sampling"] == sampling)])
    levels = sorted(rows["p"].unique())
    if len(levels) < 2:
        return []
    low, high = levels[-2], levels[-1]
    summed = rows[rows["p"].isin([low, high])].groupby(["arch", "p"])["mu_star"].sum().unstack("p")
    falling = [str(a) for a, r in summed.iterrows() if r[high] < r[low]]
    if not falling:
        return [
            Finding(
                f"Summed Morris reliance does not fall from p = {low:g} to p = {high:g} for any architecture.", "info"
            )
        ]
    return [
        Finding(
            f"Under near-perfect correlation models keep the easiest cue: summed Morris reliance ({sampling}) "
            f"falls from p = {low:g} to p = {high:g} for {_list(falling, limit=len(falling))} "
            f"({len(falling)} of {len(summed)} architectures).",
            "info",
        )
    ]


def seed_findings(seeds: pd.DataFrame) -> list[Finding]:
    """How many verdict cells change state across training seeds (``audit_summary/seeds.csv``)."""
    if seeds.empty or int(seeds["n_seeds"].max()) < 2:
        return []
    dependent = seeds[seeds["seed_dependent"].astype(bool)]
    n_seeds = int(seeds["n_seeds"].max())
    if dependent.empty:
        return [Finding(f"Every verdict is the same under all {n_seeds} training seeds ({len(seeds)} cells).", "ok")]
    cells = [f"{r.arch} on {r.dataset_id} / {factor_label(r.factor)}" for r in dependent.itertuples(index=False)]
    return [
        Finding(
            f"{len(dependent)} of {len(seeds)} verdict cells change state across the {n_seeds} training "
            f"seeds: {_list(cells)}; they are marked in the matrix.",
            "alert",
        )
    ]


def gap_findings(models: pd.DataFrame) -> list[Finding]:
    """The largest accuracy gap between bias-aligned and bias-conflicting test digits."""
    if models.empty:
        return []
    top = models.sort_values("aligned_conflicting_gap", ascending=False).iloc[0]
    return [
        Finding(
            f"Largest aligned-vs-conflicting accuracy gap: {top['arch']} trained on {top['dataset_id']}, "
            f"{top['aligned_conflicting_gap']:.2f} (aligned {top['aligned_acc']:.2f}, "
            f"unbiased {top['unbiased_acc']:.2f}).",
            "alert" if top["aligned_conflicting_gap"] > 0.1 else "info",
        )
    ]


def background_findings(pixel_view: pd.DataFrame) -> list[Finding]:
    """Whether Sobol attribution moves to the background as the bias grows."""
    sweep = full_bias_levels(pixel_view)
    if sweep["p"].nunique() < 2:
        return []
    by_p = sweep.groupby("p")["background_share"].mean().sort_index()
    area = float(sweep["background_pixel_fraction"].mean())
    trend = "rises" if by_p.iloc[-1] > by_p.iloc[0] else "does not rise"
    return [
        Finding(
            f"The share of Sobol attribution on background pixels {trend} with the correlation level: "
            f"{by_p.iloc[0]:.2f} at p = {by_p.index[0]:g} to {by_p.iloc[-1]:.2f} at p = {by_p.index[-1]:g} "
            f"(mean over architectures; background covers {area:.2f} of the image).",
            "info",
        )
    ]


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
