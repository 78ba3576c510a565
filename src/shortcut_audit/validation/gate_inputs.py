"""What the release gate reads: its settings, its inputs and the candidate values it gates, read fail closed.

Shared by :mod:`.gate` (the checks and the command) and :mod:`.regression` (the same
values at a baseline revision), so that neither imports the other.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shortcut_audit import schema
from shortcut_audit.config import ParamError, get, require, require_choice
from shortcut_audit.io import ArtefactError

MODELS_CSV = schema.path("train_summary/models")
MORRIS_CSV = schema.path("audit_summary/morris")
VERDICTS_CSV = schema.path("audit_summary/verdicts")
SUMMARY_CSV = schema.path("validation/summary")
#: The statuses a validation suite can have (``summary.csv``); anything else is an error.
SUITE_STATUSES = ("passed", "failed", "skipped", "error")
_MORRIS_OUTPUTS = ("normalised_mean", "true_class_prob")
#: What the gate does with an ``inconclusive`` verdict on a forbidden factor.
INCONCLUSIVE_POLICIES = ("fail", "warn")
VERDICT_STATES = ("relied_on", "not_relied_on", "inconclusive")


@dataclass(frozen=True)
class Candidate:
    dataset_id: str
    arch: str
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.dataset_id}/{self.arch}/seed{self.seed}"


@dataclass(frozen=True)
class GateCheck:
    """One row of ``gate.json``."""

    name: str
    value: Any
    threshold: Any
    status: str
    detail: str = ""


@dataclass(frozen=True)
class GateSettings:
    """The ``gate`` section of ``params.yaml``, validated."""

    candidates: tuple[Candidate, ...]
    morris_output: str
    max_mu_star_share: dict[str, float]
    min_unbiased_accuracy: float
    max_aligned_conflicting_gap: float
    forbidden_reliance: tuple[str, ...]
    require_all_suites: bool
    regression_tolerance: float
    advisory_suites: tuple[str, ...] = ()
    inconclusive: str = "fail"
    morris_sampling: str = "global"
    #: ImageNet candidates against the watermark audit (``gate.imagenet``); None: no ImageNet gate.
    imagenet: Any = None

    @classmethod
    def from_params(cls, params: dict) -> GateSettings:
        """Validate the ``gate`` section; raise :class:`ParamError` naming the bad key."""
        from shortcut_audit.audit.model_audit import check_samplings
        from shortcut_audit.factors.registry import factor_registry
        from shortcut_audit.training.settings import check_params as check_train_params
        from shortcut_audit.validation.suites import SUITES
        from shortcut_audit.validation.watermark_checks import ImagenetGateSettings

        seeds = check_train_params(params).seeds
        raw = require(
            params, "gate.candidates", list, lambda v: len(v) > 0, "a non-empty list of {dataset_id, arch[, seed]}"
        )
        candidates = []
        for i, item in enumerate(raw):
            if not (
                isinstance(item, dict)
                and {"dataset_id", "arch"} <= set(item) <= {"dataset_id", "arch", "seed"}
                and all(isinstance(item[k], str) and item[k] for k in ("dataset_id", "arch"))
            ):
                raise ParamError(
                    f"gate.candidates[{i}]",
                    f"expected {{dataset_id: <id>, arch: <name>[, seed: <training seed>]}}, got {item!r}",
                )
            seed = item.get("seed", seeds[0])
            if isinstance(seed, bool) or not isinstance(seed, int) or seed not in seeds:
                raise ParamError(
                    f"gate.candidates[{i}].seed", f"expected one of train.seeds {list(seeds)}, got {seed!r}"
                )
            candidates.append(Candidate(item["dataset_id"], item["arch"], seed))
        registry = factor_registry(params)
        shares = require(
            params, "gate.max_mu_star_share", dict, lambda v: True, "a mapping factor -> max share", default={}
        )
        for factor in shares:
            registry.check([factor], key=f"gate.max_mu_star_share.{factor}")
            require(params, f"gate.max_mu_star_share.{factor}", float, lambda v: 0 <= v <= 1, "a share in [0, 1]")
        forbidden = get(params, "gate.forbidden_reliance")
        if not isinstance(forbidden, list):
            raise ParamError("gate.forbidden_reliance", f"expected a list of factors, got {forbidden!r}")
        if forbidden:
            registry.check(forbidden, key="gate.forbidden_reliance")
        fraction = (float, lambda v: 0 <= v <= 1, "a number in [0, 1]")
        return cls(
            candidates=tuple(candidates),
            morris_output=require(
                params, "gate.morris_output", str, lambda v: v in _MORRIS_OUTPUTS, " or ".join(_MORRIS_OUTPUTS)
            ),
            max_mu_star_share={f: float(v) for f, v in shares.items()},
            min_unbiased_accuracy=require(params, "gate.min_unbiased_accuracy", *fraction),
            max_aligned_conflicting_gap=require(params, "gate.max_aligned_conflicting_gap", *fraction),
            forbidden_reliance=tuple(forbidden),
            require_all_suites=require(params, "gate.require_all_suites", bool),
            regression_tolerance=require(params, "gate.regression_tolerance", *fraction),
            advisory_suites=tuple(
                require(
                    params,
                    "gate.advisory_suites",
                    list,
                    lambda v: all(x in SUITES for x in v),
                    f"a list of suites among {list(SUITES)}",
                    default=[],
                )
            ),
            inconclusive=require_choice(params, "gate.inconclusive", INCONCLUSIVE_POLICIES, default="fail"),
            morris_sampling=check_samplings(params)[0],
            imagenet=ImagenetGateSettings.from_params(params),
        )


# --------------------------------------------------------------------------- checks


def bound_check(name: str, value: Any, threshold: float, upper: bool) -> GateCheck:
    """``value <= threshold`` (``upper``) or ``value >= threshold``.

    A value that is not a finite number cannot be gated: the check is an ``error``.
    """
    op = "<=" if upper else ">="
    try:
        number = float(value)
    except (TypeError, ValueError):
        return GateCheck(name, None, threshold, "error", f"value {value!r} is not a number")
    if isinstance(value, (bool, np.bool_)) or not math.isfinite(number):
        return GateCheck(name, None, threshold, "error", f"value {value!r} is not a finite number")
    ok = number <= threshold if upper else number >= threshold
    return GateCheck(name, round(number, 6), threshold, "pass" if ok else "fail", f"must be {op} {threshold:g}")


# ------------------------------------------------------------------ reading gated cells


def _rows_text(indices: Sequence[int]) -> str:
    return ", ".join(f"row {i + 1} (line {i + 2})" for i in indices)


def the_row(frame: pd.DataFrame, path: str | Path, what: str, mask: pd.Series) -> int | None:
    """Index of the one row of ``frame`` selected by ``mask``; None when there is none.

    Raises
    ------
    ArtefactError
        ``what`` appears in more than one row (naming them): the gate will not pick one.
    """
    hits = [int(i) for i in frame.index[mask.to_numpy(dtype=bool)]]
    if len(hits) > 1:
        raise ArtefactError(path, f"{what} appears in {len(hits)} rows ({_rows_text(hits)}); expected exactly one")
    return hits[0] if hits else None


def gated_number(frame: pd.DataFrame, path: str | Path, index: int, column: str) -> float:
    """The finite number in ``frame.at[index, column]``, or ArtefactError naming file, row and column."""
    value = frame.at[index, column]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ArtefactError(path, f"expected a number, got {value!r}", row=index + 1, column=column)
    if math.isnan(value):
        raise ArtefactError(path, "missing value (empty or NaN)", row=index + 1, column=column)
    if not math.isfinite(value):
        raise ArtefactError(path, f"value is not finite ({value})", row=index + 1, column=column)
    return float(value)


def gated_flag(frame: pd.DataFrame, path: str | Path, index: int, column: str) -> bool:
    """The verdict ``True``/``False`` in ``frame.at[index, column]``, or ArtefactError naming
    file, row and column (a blank or unrecognised verdict is never "not relied on")."""
    value = frame.at[index, column]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ArtefactError(path, "missing verdict (expected True or False)", row=index + 1, column=column)
    raise ArtefactError(path, f"expected True or False, got {value!r}", row=index + 1, column=column)


def _candidate_mask(frame: pd.DataFrame, candidate: Candidate) -> pd.Series:
    return (
        (frame["dataset_id"].astype(str) == candidate.dataset_id)
        & (frame["arch"].astype(str) == candidate.arch)
        & (frame["seed"] == candidate.seed)
    )


def candidate_metrics(
    models: pd.DataFrame,
    morris: pd.DataFrame,
    candidate: Candidate,
    output: str,
    paths: tuple[str | Path, str | Path] = (MODELS_CSV, MORRIS_CSV),
    sampling: str = "global",
) -> tuple[dict[str, float], dict[str, str]] | None:
    """The gated metrics of one candidate: ``unbiased_acc``, ``aligned_conflicting_gap`` and
    ``mu_star_share[<factor>]`` for every factor with a row for ``output`` of the Morris ``sampling``.

    Returns
    -------
    (dict, dict) or None
        None when the candidate has no training row; else the metrics that could be
        read and, per metric that could not, why (duplicated row, missing or
        non-finite value, naming file, row and column).
    """
    models_path, morris_path = paths
    values: dict[str, float] = {}
    problems: dict[str, str] = {}
    try:
        index = the_row(models, models_path, f"candidate {candidate.name}", _candidate_mask(models, candidate))
    except ArtefactError as err:
        return {}, {"unbiased_acc": str(err), "aligned_conflicting_gap": str(err)}
    if index is None:
        return None
    for metric in ("unbiased_acc", "aligned_conflicting_gap"):
        try:
            values[metric] = gated_number(models, models_path, index, metric)
        except ArtefactError as err:
            problems[metric] = str(err)
    rows = (
        _candidate_mask(morris, candidate)
        & (morris["output"].astype(str) == output)
        & (morris["sampling"].astype(str) == sampling)
    )
    for factor in dict.fromkeys(morris.loc[rows, "factor"].astype(str)):
        metric = f"mu_star_share[{factor}]"
        try:
            found = the_row(
                morris,
                morris_path,
                f"{candidate.name} {output} factor {factor}",
                rows & (morris["factor"].astype(str) == factor),
            )
            if found is None:
                raise ArtefactError(morris_path, f"{candidate.name} {output} factor {factor} has no row")
            values[metric] = gated_number(morris, morris_path, found, "mu_star_share")
        except ArtefactError as err:
            problems[metric] = str(err)
    return values, problems


#: Columns of each input the gate reads.
INPUT_COLUMNS = {
    SUMMARY_CSV: ("suite", "status", "failed_expectations", "reason"),
    MODELS_CSV: ("dataset_id", "arch", "seed", "unbiased_acc", "aligned_conflicting_gap"),
    MORRIS_CSV: ("dataset_id", "arch", "seed", "sampling", "factor", "output", "mu_star_share"),
    VERDICTS_CSV: ("dataset_id", "arch", "seed", "factor", "state", "drop", "ci_low", "ci_high"),
}


def read_input(path: Path, columns: Sequence[str], text: str | None = None, name: str | None = None) -> pd.DataFrame:
    """One gate input read through :mod:`shortcut_audit.schema` (``text``, ``name``: a git revision's
    content and its label); ArtefactError when malformed or lacking ``columns``."""
    frame = schema.read(path, text=text, name=name)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ArtefactError(name or path, f"missing column(s) {missing}")
    return frame
