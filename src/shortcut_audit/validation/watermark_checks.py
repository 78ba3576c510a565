"""Release-gate checks and the GX suite for the watermark audit (``data/watermark/``).

Gate (:func:`imagenet_gate_checks`)
    ImageNet candidates named in the ``gate.imagenet`` params sub-section::

        gate:
          imagenet:
            candidates: [efficientnet_lite0]   # models of watermark.models
            max_carton_gap: 0.05               # carton gap (share of images turned carton) at most this
            max_top1_change_rate: 0.2          # share of images whose top-1 class the watermark changes
            forbid_watermark_reliance: true    # the verdict must be not_relied_on
            inconclusive: fail                 # fail | warn: an inconclusive verdict blocks, or warns

    Rows are :class:`~shortcut_audit.validation.gate.GateCheck`. The gate fails closed:
    a missing table or column, a candidate without rows (not configured, skipped for
    lack of weights), a duplicate row, a NaN or non-numeric value, or an unknown
    verdict state is an ``error``, never a pass.

Suite (:func:`watermark_suite`)
    GX tables in the style of :mod:`shortcut_audit.validation.suites`: documented
    columns, finite numbers, rates and shares in [0, 1], gaps in [-1, 1], every
    interval ordered around its value, one verdict per loaded model whose state agrees
    with its interval and threshold, Morris ``|mu| <= mu*``, explainer scores and chance
    levels in [0, 1], finite maps. Absent ``data/watermark/``: the suite is skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shortcut_audit import schema
from shortcut_audit.config import ParamError, get, require, require_choice, require_names
from shortcut_audit.validation import checks as C
from shortcut_audit.validation.derived import array_stats
from shortcut_audit.validation.gate_inputs import GateCheck
from shortcut_audit.validation.gx import CheckedTable
from shortcut_audit.validation.inputs import MissingInput, SuiteSkipped, read_table, require_file

__all__ = ["ImagenetGateSettings", "imagenet_gate_checks", "watermark_suite"]

STATES = ("relied_on", "not_relied_on", "inconclusive")
EFFECTS_CSV, VERDICTS_CSV = schema.path("watermark/effects"), schema.path("watermark/verdicts")
RATE_STATISTICS = (
    "top1_change_rate",
    "carton_share_clean",
    "carton_share_watermarked",
    "accuracy_clean",
    "accuracy_watermarked",
)
GAP_STATISTICS = ("carton_gap", "accuracy_drop", "carton_prob_shift")
MORRIS_OUTPUTS = ("class_478_prob", "true_class_prob")
KINDS = ("black_box", "white_box", "ensemble")


# --------------------------------------------------------------------------- gate


@dataclass(frozen=True)
class ImagenetGateSettings:
    """The ``gate.imagenet`` sub-section, validated (module docstring)."""

    candidates: tuple[str, ...]
    max_carton_gap: float
    max_top1_change_rate: float
    forbid_watermark_reliance: bool
    inconclusive: str

    @classmethod
    def from_params(cls, params: Mapping) -> ImagenetGateSettings | None:
        """The validated sub-section, or None when ``gate.imagenet`` is absent (no ImageNet gate).

        Raises
        ------
        ParamError
            Naming the first bad key of a present sub-section.
        """
        p = "gate.imagenet"
        section = get(params, p, None)
        if section is None:
            return None
        if not isinstance(section, Mapping):
            raise ParamError(
                p,
                f"expected a mapping with candidates, max_carton_gap, max_top1_change_rate, "
                f"forbid_watermark_reliance, inconclusive; got {section!r}",
            )
        fraction = (float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
        return cls(
            candidates=tuple(require_names(params, f"{p}.candidates")),
            max_carton_gap=require(params, f"{p}.max_carton_gap", *fraction),
            max_top1_change_rate=require(params, f"{p}.max_top1_change_rate", *fraction),
            forbid_watermark_reliance=require(params, f"{p}.forbid_watermark_reliance", bool),
            inconclusive=require_choice(params, f"{p}.inconclusive", ("fail", "warn")),
        )


def _read(root: Path, relative: Path) -> tuple[pd.DataFrame | None, str]:
    """A declared table (:mod:`shortcut_audit.schema`), or None with why it cannot be read."""
    path = root / relative
    if not path.is_file():
        return None, f"{relative} is missing (the audit_watermark stage has not run)"
    try:
        return schema.read(path), ""
    except (OSError, ValueError) as err:  # ArtefactError names the row and column
        return None, f"{relative} is unreadable: {err}"


def _single(frame: pd.DataFrame, where: str, **match: str) -> tuple[pd.Series | None, str]:
    """The one row of ``frame`` matching ``match`` (column -> text), or why there is not exactly one."""
    rows = frame
    for column, value in match.items():
        rows = rows[rows[column].astype(str) == value]
    described = ", ".join(f"{c} {v}" for c, v in match.items())
    if rows.empty:
        return None, f"no row for {described} in {where}"
    if len(rows) > 1:
        return None, f"{len(rows)} rows for {described} in {where} (expected one)"
    return rows.iloc[0], ""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _bound(name: str, effects: pd.DataFrame, model: str, statistic: str, limit: float) -> GateCheck:
    row, problem = _single(effects, str(EFFECTS_CSV), model=model, statistic=statistic)
    if row is None:
        return GateCheck(name, None, limit, "error", problem)
    value = _number(row["value"])
    if value is None:
        return GateCheck(name, None, limit, "error", f"value {row['value']!r} in {EFFECTS_CSV} is not a finite number")
    low, high = _number(row["ci_low"]), _number(row["ci_high"])
    interval = f"; 95% interval [{low:.4g}, {high:.4g}]" if low is not None and high is not None else ""
    status = "pass" if value <= limit else "fail"
    return GateCheck(name, round(value, 6), limit, status, f"must be <= {limit:g}{interval}")


def _reliance(name: str, verdicts: pd.DataFrame, model: str, settings: ImagenetGateSettings) -> GateCheck:
    row, problem = _single(verdicts, str(VERDICTS_CSV), model=model, factor="watermark")
    if row is None:
        return GateCheck(name, None, "not_relied_on", "error", problem)
    state = str(row["state"])
    if state not in STATES:
        return GateCheck(
            name, state, "not_relied_on", "error", f"unknown verdict state {state!r}; known: {', '.join(STATES)}"
        )
    numbers = [_number(row[c]) for c in ("drop", "ci_low", "ci_high", "threshold")]
    if any(v is None for v in numbers):
        return GateCheck(
            name,
            state,
            "not_relied_on",
            "error",
            f"the verdict's drop, interval or threshold in {VERDICTS_CSV} is not a finite number",
        )
    drop, low, high, threshold = numbers
    detail = f"drop {drop:.4g}, 95% interval [{low:.4g}, {high:.4g}], threshold {threshold:g}"
    status = {"relied_on": "fail", "not_relied_on": "pass", "inconclusive": settings.inconclusive}[state]
    return GateCheck(name, state, "not_relied_on", status, detail)


def imagenet_gate_checks(settings: ImagenetGateSettings, root: Path = Path(".")) -> list[GateCheck]:
    """Every gate check of the ImageNet candidates over ``root / data/watermark`` (module docstring)."""
    effects, problem_e = _read(root, EFFECTS_CSV)
    verdicts, problem_v = _read(root, VERDICTS_CSV)
    if effects is None or verdicts is None:
        return [GateCheck("watermark inputs", None, None, "error", "; ".join(p for p in (problem_e, problem_v) if p))]
    out = []
    for model in settings.candidates:
        out.append(_bound(f"{model}: carton_gap", effects, model, "carton_gap", settings.max_carton_gap))
        out.append(
            _bound(f"{model}: top1_change_rate", effects, model, "top1_change_rate", settings.max_top1_change_rate)
        )
        if settings.forbid_watermark_reliance:
            out.append(_reliance(f"{model}: relies on the watermark", verdicts, model, settings))
    return out


# --------------------------------------------------------------------------- GX suite


def _table(folder: Path, name: str) -> pd.DataFrame:
    return read_table(folder / f"{name}.csv")


def _ordered(table: str, frame: pd.DataFrame, value: str, low: str, high: str, tolerance: float) -> list:
    """``low <= value <= high`` row by row (derived ``check_*`` columns added to ``frame``)."""
    frame[f"check_{low}_minus_{value}"] = frame[low] - frame[value]
    frame[f"check_{value}_minus_{high}"] = frame[value] - frame[high]
    return [
        C.between(table, f"check_{low}_minus_{value}", high=tolerance, label=f"{low} <= {value}"),
        C.between(table, f"check_{value}_minus_{high}", high=tolerance, label=f"{value} <= {high}"),
    ]


def _keyed(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = frame.copy()
    frame["key"] = frame[list(columns)].astype(str).agg("/".join, axis=1)
    return frame


def _state_matches(row) -> bool:
    from shortcut_audit.audit.interventions import verdict_state

    try:
        return verdict_state(float(row["ci_low"]), float(row["ci_high"]), float(row["threshold"])) == row["state"]
    except (TypeError, ValueError):
        return False


def _effects_tables(effects: pd.DataFrame, tolerance: float) -> list[CheckedTable]:
    from shortcut_audit.watermark.effects import STATISTICS

    frame = _keyed(effects, ("model", "statistic"))
    found = [
        C.non_empty("effects"),
        *C.all_numeric_finite("effects", effects),
        C.unique("effects", "key"),
        C.in_set("effects", "statistic", STATISTICS),
        C.between("effects", "n_images", 1),
        *_ordered("effects", frame, "value", "ci_low", "ci_high", tolerance),
    ]
    tables = [CheckedTable("effects", frame, tuple(found), id_columns=("key",))]
    for name, statistics, low, high in (
        ("effects_rates", RATE_STATISTICS, 0.0, 1.0),
        ("effects_gaps", GAP_STATISTICS, -1.0, 1.0),
    ):
        part = frame[frame["statistic"].isin(statistics)].reset_index(drop=True)
        if len(part):
            tables.append(
                CheckedTable(
                    name,
                    part,
                    tuple(
                        C.between(name, column, low - tolerance, high + tolerance, f"{column} in [{low:g}, {high:g}]")
                        for column in ("value", "ci_low", "ci_high")
                    ),
                    id_columns=("key",),
                )
            )
    return tables


def _verdict_table(verdicts: pd.DataFrame, models: pd.DataFrame, tolerance: float) -> CheckedTable:
    frame = _keyed(verdicts, ("model", "factor"))
    frame["check_state_matches_interval"] = frame.apply(_state_matches, axis=1)
    loaded = sorted(models.loc[models["status"].astype(str) == "loaded", "model"].astype(str))
    found = [
        C.non_empty("verdicts"),
        *C.all_numeric_finite("verdicts", verdicts),
        C.unique("verdicts", "model"),
        C.in_set("verdicts", "model", loaded, "one verdict per loaded model"),
        C.row_count("verdicts", len(loaded)),
        C.in_set("verdicts", "state", STATES),
        C.in_set("verdicts", "factor", ["watermark"]),
        *[
            C.between("verdicts", c, -tolerance, 1.0 + tolerance, f"{c} in [0, 1]")
            for c in ("drop", "ci_low", "ci_high")
        ],
        C.between("verdicts", "threshold", 0.0, 1.0, "threshold in (0, 1]"),
        *_ordered("verdicts", frame, "drop", "ci_low", "ci_high", tolerance),
        C.all_true(
            "verdicts",
            "check_state_matches_interval",
            "state follows the interval and threshold (relied_on: ci_low >= threshold; "
            "not_relied_on: ci_high < threshold)",
        ),
    ]
    return CheckedTable("verdicts", frame, tuple(found), id_columns=("key",))


def _morris_table(morris: pd.DataFrame, tolerance: float) -> CheckedTable:
    frame = _keyed(morris, ("model", "output", "factor"))
    frame["check_abs_mu_minus_mu_star"] = frame["mu"].abs() - frame["mu_star"]
    found = [
        C.non_empty("morris"),
        *C.all_numeric_finite("morris", morris),
        C.unique("morris", "key"),
        C.in_set("morris", "output", MORRIS_OUTPUTS),
        C.in_set("morris", "sampling", ["global"]),
        *[C.between("morris", c, 0.0) for c in ("mu_star", "sigma", "mu_star_conf", "sigma_over_mu_star")],
        C.between("morris", "mu_star_share", 0.0, 1.0),
        C.between("morris", "check_abs_mu_minus_mu_star", high=tolerance, label="|mu| <= mu*"),
    ]
    return CheckedTable("morris", frame, tuple(found), id_columns=("key",))


def _explainer_tables(scores: pd.DataFrame, summary: pd.DataFrame, tolerance: float) -> list[CheckedTable]:
    per_image = _keyed(scores, ("model", "method", "image_id"))
    frame = _keyed(summary, ("model", "method"))
    unit = [
        C.between("explainer_summary", c, 0.0, 1.0)
        for c in (
            "mask_share",
            "mask_share_ci_low",
            "mask_share_ci_high",
            "pointing",
            "pointing_ci_low",
            "pointing_ci_high",
        )
    ]
    frame["check_one_chance_per_model"] = frame.groupby("model")["chance"].transform("nunique") == 1
    found = [
        C.non_empty("explainer_summary"),
        *C.all_numeric_finite("explainer_summary", summary),
        C.unique("explainer_summary", "key"),
        C.in_set("explainer_summary", "kind", KINDS),
        *unit,
        C.between("explainer_summary", "chance", 0.0, 1.0, "chance in (0, 1)"),
        C.between("explainer_summary", "forwards", 0.0),
        C.all_true("explainer_summary", "check_one_chance_per_model", "one chance level per model"),
        *_ordered("explainer_summary", frame, "mask_share", "mask_share_ci_low", "mask_share_ci_high", tolerance),
        *_ordered("explainer_summary", frame, "pointing", "pointing_ci_low", "pointing_ci_high", tolerance),
    ]
    image_checks = [
        C.non_empty("explainers"),
        *C.all_numeric_finite("explainers", scores),
        C.unique("explainers", "key"),
        C.in_set("explainers", "kind", KINDS),
        C.between("explainers", "mask_share", 0.0, 1.0),
        C.between("explainers", "pointing", 0.0, 1.0),
        C.between("explainers", "positive_mass", 0.0),
    ]
    return [
        CheckedTable("explainer_summary", frame, tuple(found), id_columns=("key",)),
        CheckedTable("explainers", per_image, tuple(image_checks), id_columns=("key",)),
    ]


def _maps_table(path: Path) -> CheckedTable:
    try:
        with np.load(require_file(path), allow_pickle=False) as npz:
            stats = pd.DataFrame(
                [array_stats(name, {"array": npz[name]}) for name in npz.files if npz[name].dtype.kind in "biufc"]
            )
    except (OSError, ValueError) as err:
        raise MissingInput(f"{path} is unreadable: {err}") from None
    if stats.empty:
        raise MissingInput(f"{path} holds no arrays")
    return CheckedTable(
        "maps_npz",
        stats,
        (
            C.in_set("maps_npz", "array_nonfinite", [0], "every array finite"),
            C.between("maps_npz", "array_size", 1, label="no empty array"),
        ),
        id_columns=("key",),
    )


def watermark_suite(data: Path, settings) -> list[CheckedTable]:
    """The watermark audit's tables with their checks (module docstring).

    Parameters
    ----------
    data : Path
        The ``data/`` folder.
    settings : ValidationSettings
        Its ``abs_tolerance`` is the rounding allowed in the orderings.
    """

    folder = Path(data) / "watermark"
    if not folder.is_dir():
        raise SuiteSkipped(f"{folder} is absent (the watermark audit did not run)")
    tolerance = float(settings.abs_tolerance)
    models = _table(folder, "models")
    statuses = pd.DataFrame({"model": models["model"], "status": models["status"]})
    loaded = models[models["status"].astype(str) == "loaded"].reset_index(drop=True)
    tables = [
        CheckedTable(
            "models_status",
            statuses,
            (C.unique("models_status", "model"), C.in_set("models_status", "status", ["loaded", "skipped"])),
            id_columns=("model",),
        ),
        CheckedTable(
            "models",
            loaded,
            (
                C.non_empty("models"),
                C.in_set("models", "target_kind", ["true", "predicted"]),
                C.between("models", "n_images", 1),
                C.between("models", "input_size", 1),
            ),
            id_columns=("model",),
        ),
    ]
    tables += _effects_tables(_table(folder, "effects"), tolerance)
    tables.append(_verdict_table(_table(folder, "verdicts"), models, tolerance))
    tables.append(_morris_table(_table(folder, "morris"), tolerance))
    tables += _explainer_tables(_table(folder, "explainers"), _table(folder, "explainer_summary"), tolerance)
    tables.append(_maps_table(folder / "maps.npz"))
    return tables
