"""Regression gate: the candidates' metrics must not worsen against a git revision.

The baseline tables are read at revision ``REV`` through DVC (``dvc.api.open``), the
way ``dvc metrics diff`` reads metrics: DVC-tracked outputs come from the cache (or a
remote) as they were at that commit. Each gated metric may worsen by at most
``gate.regression_tolerance``. The baseline is read like the current run (declared
column types, one row per candidate and factor): a baseline value that is duplicated,
missing or malformed makes its check an ``error``, never a pass.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from shortcut_audit.validation.gate_inputs import (
    INPUT_COLUMNS,
    MODELS_CSV,
    MORRIS_CSV,
    GateCheck,
    GateSettings,
    candidate_metrics,
    read_input,
)

#: Direction of each gated metric: +1 higher is better, -1 lower is better.
HIGHER_IS_BETTER = {"unbiased_acc": 1, "aligned_conflicting_gap": -1}


def read_at_revision(path: Path, rev: str, repo: Path) -> pd.DataFrame:
    """Read the CSV ``path`` of ``repo`` as it was at git revision ``rev`` (declared types)."""
    import dvc.api

    with dvc.api.open(str(path), repo=str(repo), rev=rev) as handle:
        text = handle.read()
    return read_input(path, INPUT_COLUMNS[path], text=text, name=f"{path}@{rev}")


def metric_direction(metric: str) -> int:
    """+1 if a larger value is better, -1 otherwise (mu* shares: lower is better)."""
    return HIGHER_IS_BETTER.get(metric, -1)


def compare(name: str, metric: str, current: float, baseline: float, tolerance: float) -> GateCheck:
    """Fail when ``metric`` worsened from ``baseline`` to ``current`` by more than ``tolerance``."""
    current, baseline = float(current), float(baseline)
    if not (math.isfinite(current) and math.isfinite(baseline)):
        return GateCheck(name, None, tolerance, "error", f"non-finite value (now {current}, baseline {baseline})")
    worsening = (baseline - current) * metric_direction(metric)
    status = "fail" if worsening > tolerance else "pass"
    return GateCheck(
        name,
        round(current - baseline, 6),
        tolerance,
        status,
        f"baseline {baseline:.4g}, now {current:.4g}; may worsen by at most {tolerance:g}",
    )


def regression_checks(
    settings: GateSettings, models: pd.DataFrame, morris: pd.DataFrame, baseline: str, repo: Path
) -> list[GateCheck]:
    """One check per candidate and gated metric against the metrics at ``baseline``."""
    from dvc.exceptions import DvcException

    try:
        base_models = read_at_revision(MODELS_CSV, baseline, repo)
        base_morris = read_at_revision(MORRIS_CSV, baseline, repo)
    except (DvcException, OSError, ValueError) as err:  # ArtefactError is a ValueError
        return [
            GateCheck(
                "regression: baseline",
                None,
                baseline,
                "error",
                f"could not read the baseline metrics at revision {baseline!r}: {type(err).__name__}: {err}",
            )
        ]
    checks = []
    base_paths = (f"{MODELS_CSV}@{baseline}", f"{MORRIS_CSV}@{baseline}")
    for candidate in settings.candidates:
        now = candidate_metrics(models, morris, candidate, settings.morris_output, sampling=settings.morris_sampling)
        then = candidate_metrics(
            base_models, base_morris, candidate, settings.morris_output, base_paths, settings.morris_sampling
        )
        if now is None or then is None:
            where = "the baseline" if then is None else "the current run"
            checks.append(
                GateCheck(
                    f"regression: {candidate.name}",
                    None,
                    baseline,
                    "error",
                    f"candidate {candidate.name} has no metrics in {where}",
                )
            )
            continue
        (now_values, now_problems), (then_values, then_problems) = now, then
        metrics = [
            "unbiased_acc",
            "aligned_conflicting_gap",
            *(f"mu_star_share[{f}]" for f in settings.max_mu_star_share),
        ]
        for metric in metrics:
            name = f"regression: {candidate.name}: {metric}"
            problem = now_problems.get(metric) or then_problems.get(metric)
            if problem:
                checks.append(GateCheck(name, None, settings.regression_tolerance, "error", problem))
            elif metric not in now_values or metric not in then_values:
                checks.append(
                    GateCheck(name, None, settings.regression_tolerance, "error", "metric missing at one revision")
                )
            else:
                checks.append(
                    compare(name, metric, now_values[metric], then_values[metric], settings.regression_tolerance)
                )
    return checks
