"""Great Expectations suites over every artefact of the pipeline, and ``shortcut-audit validate``.

One suite per artefact kind (:data:`SUITES`). A suite builder reads its inputs under
``data/``, derives small tables where a property spans many rows (linked rates per
split, presence of every model of the sweep, reliance across correlation levels) and
returns the tables with their checks; :func:`run_suites` validates them with GX.

Outcome of a suite (``status``): ``passed``, ``failed``, ``skipped`` (an optional input
is absent; the reason is recorded, it never counts as a pass) or ``error`` (a required
input is missing or unreadable: a CSV cut mid-row or holding a value that does not
parse as its declared type, a truncated ``.npz``; the reason names the file).

Table inputs are read through :mod:`shortcut_audit.schema` (declared columns and types),
so a text column that happens to be empty in every row is text, not NaN, and a table
whose columns differ from its declaration is an error. Folder
listings skip the temporary siblings an interrupted stage may leave
(:func:`shortcut_audit.io.visible`). Results go to ``<output>/<suite>.json`` (the full GX
result: every expectation, its observed value and unexpected examples) and
``<output>/summary.csv`` with columns :data:`SUMMARY_COLUMNS`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shortcut_audit import schema
from shortcut_audit.config import ParamError, load_params
from shortcut_audit.io import atomic_dir, visible, write_json
from shortcut_audit.metrics import METRICS
from shortcut_audit.validation import checks as C
from shortcut_audit.validation.derived import (
    FACTOR_LEVELS,
    FACTOR_TABLE_COLUMNS,
    N_CLASSES,
    SPLITS,
    array_stats,
    label_share_table,
    linked_rate_table,
    linked_values,
    morris_share_sums,
    presence_table,
    total_drop_steps,
)
from shortcut_audit.validation.gx import CheckedTable, validate_tables
from shortcut_audit.validation.inputs import MissingInput, SuiteSkipped, read_npy, read_npz, read_table
from shortcut_audit.validation.settings import ValidationSettings
from shortcut_audit.validation.watermark_checks import watermark_suite

SUMMARY_COLUMNS = tuple(schema.table("validation/summary").columns)
MORRIS_OUTPUTS = ("normalised_mean", "true_class_prob")
MODEL_COLUMNS = tuple(schema.table("train_summary/models").columns)
ACCURACY_COLUMNS = ("val_acc", "unbiased_acc", "aligned_acc", *(f"conflicting_acc_{f}" for f in FACTOR_LEVELS))
VERDICT_STATES = ("relied_on", "not_relied_on", "inconclusive")
MAP_ARRAYS = ("images", "maps", "digit_mask")
#: Column-name conventions of sensitivity tables: bounds that hold wherever such a column appears.
NON_NEGATIVE = ("mu_star", "sigma", "mu_star_conf", "sigma_over_mu_star")
UNIT_INTERVAL = ("mu_star_share", "accuracy", "background_share", "background_pixel_fraction")
#: Differences of accuracies (Shapley shares of a drop, single drops, order gaps) and their interval bounds.
SIGNED_UNIT = ("drop", "single_drop", "total_drop", "drop_alone", "drop_last", "order_gap", "area")
#: Columns of a long table holding a score of the row's ``metric``, and differences of two such scores.
METRIC_VALUED = ("value", "mean", "ci_low", "ci_high", "random_mean", "constant_mean")
METRIC_GAINS = ("gain_vs_random", "gain_ci_low", "gain_ci_high")
SOBOL_FIRST = ("S1", "first_order")
SOBOL_TOTAL = ("ST", "total_order")


@dataclass(frozen=True)
class SuiteOutcome:
    """Status of one suite and its JSON document (see module docstring)."""

    suite: str
    status: str
    evaluated: int = 0
    failed_expectations: tuple[str, ...] = ()
    reason: str = ""
    document: dict = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.status == "passed"

    def summary_row(self) -> dict:
        return {
            "suite": self.suite,
            "success": self.success,
            "evaluated": self.evaluated,
            "failed": len(self.failed_expectations),
            "failed_expectations": "; ".join(self.failed_expectations),
            "status": self.status,
            "reason": self.reason,
        }


# --------------------------------------------------------------------------- inputs


def _listed(folder: Path, pattern: str) -> list[Path]:
    """Sorted matches of ``pattern`` below ``folder``, without temporary siblings."""
    return sorted(visible(folder.glob(pattern), folder))


def _keyed(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Copy of ``frame`` with a ``key`` column joining the given id columns that exist."""
    frame = frame.copy()
    present = [c for c in columns if c in frame.columns]
    if present:
        texts = frame[present].apply(lambda column: column.map(lambda v: "" if pd.isna(v) else str(v)))
        frame["key"] = texts.agg("/".join, axis=1)
    else:
        frame["key"] = frame.index.astype(str)
    return frame


# --------------------------------------------------------------------------- mnist


def mnist_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Source MNIST arrays: counts, 28x28 uint8 images, labels 0..9 and their shares."""
    rows, labels = [], {}
    for split in ("train", "test"):
        images = read_npy(data / "mnist" / f"{split}_images.npy", mmap_mode="r")
        split_labels = read_npy(data / "mnist" / f"{split}_labels.npy")
        labels[split] = split_labels
        rows.append(
            {
                "key": split,
                "n_images": images.shape[0] if images.ndim else 0,
                "expected_n": settings.mnist_counts[split],
                "n_labels": len(split_labels),
                "image_shape": "x".join(map(str, images.shape[1:])),
                "images_dtype": str(images.dtype),
                "labels_ndim": split_labels.ndim,
                "labels_min": int(split_labels.min()) if split_labels.size else -1,
                "labels_max": int(split_labels.max()) if split_labels.size else -1,
            }
        )
    arrays = pd.DataFrame(rows)
    low, high = settings.label_share
    return [
        CheckedTable(
            "arrays",
            arrays,
            (
                C.pair_equal("arrays", "n_images", "expected_n", "image count as expected"),
                C.pair_equal("arrays", "n_labels", "n_images", "one label per image"),
                C.in_set("arrays", "image_shape", ["28x28"], "images are 28x28"),
                C.in_set("arrays", "images_dtype", ["uint8"], "images are uint8"),
                C.in_set("arrays", "labels_ndim", [1], "labels are a vector"),
                C.between("arrays", "labels_min", 0),
                C.between("arrays", "labels_max", high=N_CLASSES - 1),
            ),
            id_columns=("key",),
        ),
        CheckedTable(
            "label_shares",
            label_share_table(labels),
            (C.between("label_shares", "share", low, high, f"every label's share in [{low:g}, {high:g}]"),),
            id_columns=("key",),
        ),
    ]


# --------------------------------------------------------------------------- biased mnist


def _factor_tables(data: Path, settings: ValidationSettings) -> dict[tuple[str, str], pd.DataFrame]:
    root = data / "biased_mnist"
    if not root.is_dir():
        raise MissingInput(f"required input {root} is missing")
    return {
        (dataset_id, split): read_table(schema.under_data("biased_mnist/split", data, dataset=dataset_id, split=split))
        for dataset_id in settings.dataset_ids
        for split in SPLITS
    }


def biased_mnist_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Factor tables: schema, value sets, sizes, label shares and the class-linked rate per
    level, split and factor (biased factors near p, unbiased ones near 1/N)."""
    tables = _factor_tables(data, settings)
    missing = sorted({c for frame in tables.values() for c in FACTOR_TABLE_COLUMNS if c not in frame.columns})
    if missing:
        raise MissingInput(f"{data / 'biased_mnist'}: factor tables lack column(s) {missing}")
    rows = pd.concat([frame.assign(key=f"{d}/{s}", split=s) for (d, s), frame in tables.items()], ignore_index=True)
    for factor in FACTOR_LEVELS:
        linked = rows[factor].to_numpy() == linked_values(factor, rows["label"].to_numpy())
        rows[f"{factor}_aligned_consistent"] = linked == rows[f"{factor}_aligned"].to_numpy(dtype=bool)
    source_n = np.where(
        rows["split"].isin(["train", "val"]), settings.mnist_counts["train"], settings.mnist_counts["test"]
    )
    rows["mnist_index_in_range"] = (rows["mnist_index"] >= 0) & (rows["mnist_index"] < source_n)
    row_checks = [
        C.in_set("rows", "label", range(N_CLASSES)),
        *(C.in_set("rows", f, range(n)) for f, n in FACTOR_LEVELS.items()),
        *(
            C.all_true("rows", f"{f}_aligned_consistent", f"{f}_aligned == ({f} == linked value)")
            for f in FACTOR_LEVELS
        ),
        C.all_true("rows", "mnist_index_in_range", "mnist_index within the source split"),
    ]
    sizes = pd.DataFrame(
        [
            {"key": f"{d}/{s}", "n": len(frame), "expected_n": settings.split_sizes[s]}
            for (d, s), frame in tables.items()
        ]
    )
    rates = linked_rate_table(tables, settings.specs, settings.tolerance, settings.linked_rate_z)
    shares = label_share_table({f"{d}/{s}": frame["label"].to_numpy() for (d, s), frame in tables.items()})
    low, high = settings.label_share
    return [
        CheckedTable("rows", rows, tuple(row_checks), id_columns=("key",)),
        CheckedTable(
            "split_sizes",
            sizes,
            (C.pair_equal("split_sizes", "n", "expected_n", "row count per split as in params"),),
            id_columns=("key",),
        ),
        CheckedTable(
            "linked_rates",
            rates,
            (
                C.pair_at_most(
                    "linked_rates", "abs_error", "allowed", "linked rate within tolerance of its expected value"
                ),
            ),
            id_columns=("key",),
        ),
        CheckedTable(
            "label_shares",
            shares,
            (C.between("label_shares", "share", low, high, f"every label's share in [{low:g}, {high:g}]"),),
            id_columns=("key",),
        ),
    ]


# --------------------------------------------------------------------------- training


def training_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Per-model training metrics: schema, accuracies in [0, 1], every model of the sweep once."""
    models = read_table(schema.under_data("train_summary/models", data))
    present = [c for c in MODEL_COLUMNS if c in models.columns]
    models = models.assign(
        key=[f"{d}/{a}/seed{s}" for d, a, s in zip(models["dataset_id"], models["arch"], models["seed"])]
    )
    table_checks = [
        C.non_empty("models"),
        *C.has_columns("models", MODEL_COLUMNS),
        C.unique("models", "key"),
        C.in_set("models", "key", settings.models, "every model belongs to the sweep"),
    ]
    for column in ACCURACY_COLUMNS:
        if column in present:
            table_checks += [*C.finite("models", column), C.between("models", column, 0.0, 1.0)]
    if "aligned_conflicting_gap" in present:
        table_checks += [
            *C.finite("models", "aligned_conflicting_gap"),
            C.between("models", "aligned_conflicting_gap", -1.0, 1.0),
        ]
    if "n_params" in present:
        table_checks.append(C.between("models", "n_params", 1))
    observed = models["key"].astype(str).tolist()
    return [
        CheckedTable("models", models, tuple(table_checks), id_columns=("key",)),
        CheckedTable(
            "sweep",
            presence_table(settings.models),
            (C.in_set("sweep", "key", observed, "every model of the sweep is present"),),
            id_columns=("key",),
        ),
    ]


# --------------------------------------------------------------------------- sensitivity


def sensitivity_checks(
    table: str, frame: pd.DataFrame, sobol_tolerance: float, abs_tolerance: float
) -> tuple[pd.DataFrame, list]:
    """Checks that hold for any sensitivity table, chosen by the columns it has.

    Returns the frame with derived ``check_*`` columns added and the checks: every
    numeric column finite; non-negative mu*, sigma, confidence widths and bounds;
    shares, accuracies and drops in [0, 1]; ``|mu| <= mu*``; Sobol indices (``S1``/``ST``
    or ``first_order``/``total_order``) in ``[-tol, 1 + tol]`` with first <= total + tol;
    confidence intervals ordered (``ci_low <= ci_high``).
    """
    frame = frame.copy()
    found = [C.non_empty(table), *C.all_numeric_finite(table, frame)]
    found += [C.between(table, c, 0.0) for c in NON_NEGATIVE if c in frame.columns]
    found += [C.between(table, c, 0.0, 1.0) for c in UNIT_INTERVAL if c in frame.columns]
    # A drop is a difference of accuracies: a re-draw can also help a model, so a drop, and more so the
    # lower end of its interval, can lie below 0; it cannot leave [-1, 1].
    signed = [c for c in frame.columns if c in SIGNED_UNIT or c.endswith(("ci_low", "ci_high"))]
    if "metric" in frame.columns:
        frame, metric_checks = _metric_range_checks(table, frame, abs_tolerance)
        found += metric_checks
        signed = [c for c in signed if c not in METRIC_VALUED and c not in METRIC_GAINS]
    bounds = {
        c: (0.0, 1.0) if "accuracy" in frame.columns and c in ("ci_low", "ci_high") else (-1.0, 1.0) for c in signed
    }
    found += [C.between(table, c, *bounds[c]) for c in signed]
    found += [C.between(table, c, 0.0) for c in frame.columns if c.endswith("_conf") and c != "mu_star_conf"]
    if {"mu", "mu_star"} <= set(frame.columns):
        frame["check_abs_mu_minus_mu_star"] = frame["mu"].abs() - frame["mu_star"]
        found.append(C.between(table, "check_abs_mu_minus_mu_star", high=abs_tolerance, label="|mu| <= mu*"))
    if "output" in frame.columns and "mu_star" in frame.columns:
        found.append(C.in_set(table, "output", MORRIS_OUTPUTS))
    sobol = [c for c in (*SOBOL_FIRST, *SOBOL_TOTAL) if c in frame.columns]
    found += [
        C.between(
            table, c, -sobol_tolerance, 1.0 + sobol_tolerance, f"{c} in [-{sobol_tolerance:g}, 1 + {sobol_tolerance:g}]"
        )
        for c in sobol
    ]
    for first, total in zip(SOBOL_FIRST, SOBOL_TOTAL):
        if {first, total} <= set(frame.columns):
            frame[f"check_{first}_minus_{total}"] = frame[first] - frame[total]
            found.append(
                C.between(
                    table,
                    f"check_{first}_minus_{total}",
                    high=sobol_tolerance,
                    label=f"{first} <= {total} + {sobol_tolerance:g}",
                )
            )
    for low in [c for c in frame.columns if c == "ci_low" or c.endswith("_ci_low")]:
        high = low[: -len("low")] + "high"
        if high in frame.columns:
            frame[f"check_{low}_minus_{high}"] = frame[low] - frame[high]
            found.append(C.between(table, f"check_{low}_minus_{high}", high=abs_tolerance, label=f"{low} <= {high}"))
    return frame, found


def _metric_range_checks(table: str, frame: pd.DataFrame, tolerance: float) -> tuple[pd.DataFrame, list]:
    """Range checks of a long table with one score per row, named in its ``metric`` column.

    A score and its interval stay in the range its metric can attain (``MetricInfo.bounds``:
    an AUC in [0, 1], the normalised AOPC in (-inf, 1]); a gain, the difference of two scores
    of the metric, within +-(the metric's span). An unknown metric name fails the check.
    """
    frame = frame.copy()
    found = [C.in_set(table, "metric", METRICS)]
    bounds = [METRICS[m].bounds if m in METRICS else (np.nan, np.nan) for m in frame["metric"]]
    lower = np.array([b[0] for b in bounds], dtype=float)
    upper = np.array([b[1] for b in bounds], dtype=float)
    span = upper - lower
    for columns, low, high, what in (
        (METRIC_VALUED, lower, upper, "the metric's range"),
        (METRIC_GAINS, -span, span, "+-(the metric's span)"),
    ):
        for column in (c for c in columns if c in frame.columns):
            values = frame[column].to_numpy(dtype=float)
            with np.errstate(invalid="ignore"):
                outside = np.fmax(np.fmax(low - values, values - high), 0.0)
            frame[f"check_{column}_outside_metric_range"] = np.where(np.isnan(values), np.nan, outside)
            found.append(
                C.between(table, f"check_{column}_outside_metric_range", high=tolerance, label=f"{column} in {what}")
            )
    return frame, found


def _sensitivity_tables(folder: Path, settings: ValidationSettings) -> list[CheckedTable]:
    out = []
    for path in _listed(folder, "*.csv"):
        frame = _keyed(
            read_table(path),
            ["dataset_id", "arch", "seed", "sampling", "factor", "output", "order", "step", "image", "method"],
        )
        name = f"{folder.name}.{path.stem}"  # qualified: audit_summary and imagenet both hold a models table
        frame, found = sensitivity_checks(name, frame, settings.sobol_tolerance, settings.abs_tolerance)
        vocabulary = []
        if folder.name == "audit_summary" and "factor" in frame.columns and path.stem != "interventions":
            vocabulary.append(C.in_set(name, "factor", settings.factor_names, "every factor is registered"))
        if folder.name == "audit_summary" and "state" in frame.columns:
            vocabulary.append(C.in_set(name, "state", VERDICT_STATES, "verdict states"))
        out.append(CheckedTable(name, frame, (*vocabulary, *found), id_columns=("key",)))
    return out


def sensitivity_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Sensitivity results of the factor audit (and of the ImageNet audit when present)."""
    morris = read_table(schema.under_data("audit_summary/morris", data))
    tables = _sensitivity_tables(data / "audit_summary", settings)
    if (data / "imagenet").is_dir():
        tables += _sensitivity_tables(data / "imagenet", settings)
    tables.append(
        CheckedTable(
            "morris_share_sums",
            morris_share_sums(morris),
            (
                C.between(
                    "morris_share_sums",
                    "share_sum_error",
                    high=1e-3,
                    label="mu* shares of a model, sampling and output sum to 1 (or all 0)",
                ),
            ),
            id_columns=("key",),
        )
    )
    return tables


# --------------------------------------------------------------------------- attribution maps


def attribution_maps_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Per-model ``maps.npz`` of the factor audit: every array finite and of the right shape."""
    paths = _listed(data / "audit", "*/*/*/maps.npz") if (data / "audit").is_dir() else []
    if not paths:
        raise SuiteSkipped(f"no attribution maps under {data / 'audit'}")
    rows = [array_stats("/".join(path.parts[-4:-1]), read_npz(path, MAP_ARRAYS)) for path in paths]
    stats = pd.DataFrame(rows)
    canvas = settings.canvas
    table_checks = [
        *C.has_columns("maps", [f"{name}_ndim" for name in MAP_ARRAYS]),
        C.in_set("maps", "images_ndim", [4], "images are (n, 3, H, W)"),
        C.in_set("maps", "maps_ndim", [3], "maps are (n, H, W)"),
        C.in_set("maps", "digit_mask_ndim", [3], "digit masks are (n, H, W)"),
    ]
    if {"images_dim0", "maps_dim0", "digit_mask_dim0"} <= set(stats.columns):
        table_checks += [
            C.between("maps", "images_dim0", 1, label="at least one image"),
            C.pair_equal("maps", "maps_dim0", "images_dim0", "one map per image"),
            C.pair_equal("maps", "digit_mask_dim0", "images_dim0", "one digit mask per image"),
        ]
    for column, value in (
        ("images_dim1", 3),
        ("images_dim2", canvas),
        ("images_dim3", canvas),
        ("maps_dim1", canvas),
        ("maps_dim2", canvas),
        ("digit_mask_dim1", canvas),
        ("digit_mask_dim2", canvas),
    ):
        if column in stats.columns:
            table_checks.append(C.in_set("maps", column, [value], f"{column} == {value}"))
    table_checks += [
        C.in_set("maps", f"{n}_nonfinite", [0], f"{n} finite") for n in ("images", "maps") if f"{n}_nonfinite" in stats
    ]
    if "images_min" in stats:
        table_checks += [C.between("maps", "images_min", 0.0), C.between("maps", "images_max", high=1.0)]
    return [CheckedTable("maps", stats, tuple(table_checks), id_columns=("key",))]


# --------------------------------------------------------------------------- imagenet


def imagenet_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """ImageNet audit tables (generic: non-empty, every numeric value finite) and maps."""
    root = data / "imagenet"
    if not root.is_dir():
        raise SuiteSkipped(f"{root} is absent (the ImageNet audit did not run)")
    tables = []
    for path in _listed(root, "*.csv"):
        frame = read_table(path)
        tables.append(CheckedTable(path.stem, frame, (C.non_empty(path.stem), *C.all_numeric_finite(path.stem, frame))))
    for path in _listed(root, "*.npz"):
        arrays = read_npz(path)
        stats = pd.DataFrame(
            [array_stats(name, {"array": array}) for name, array in arrays.items() if array.dtype.kind in "biufc"]
        )  # ids and labels are strings
        if stats.empty:
            raise MissingInput(f"{path} holds no arrays")
        name = f"{path.stem}_npz"
        tables.append(
            CheckedTable(
                name,
                stats,
                (
                    C.in_set(name, "array_nonfinite", [0], "every array finite"),
                    C.between(name, "array_size", 1, label="no empty array"),
                ),
                id_columns=("key",),
            )
        )
    if not tables:
        raise MissingInput(f"{root} holds no tables or maps")
    return tables


# --------------------------------------------------------------------------- findings


def findings_suite(data: Path, settings: ValidationSettings) -> list[CheckedTable]:
    """Expectations of the science, on the interventional verdicts of the whole sweep.

    - models trained at p = 0.1 (unbiased) rely on no factor: every verdict ``not_relied_on``;
    - models trained with only the background biased rely on the background only;
    - the total accuracy drop when every factor is re-drawn does not fall as p rises
      (per architecture and seed, beyond both intervals: :func:`total_drop_steps`);
    - Morris (the primary sampling's mu*) screens for the verdicts with an AUROC of at
      least ``validation.min_morris_auroc`` (an undefined AUROC fails);
    - MoSIP's order check holds for every model that relies on some factor.
    """
    root = data / "audit_summary"
    verdicts = _keyed(
        read_table(schema.under_data("audit_summary/verdicts", data)), ["dataset_id", "arch", "seed", "factor"]
    )
    models = read_table(schema.under_data("audit_summary/models", data))
    order = _keyed(
        read_table(schema.under_data("audit_summary/order_check", data)), ["dataset_id", "arch", "seed", "sampling"]
    )
    try:
        screen = json.loads((root / "screen.json").read_text())
        auroc = screen["samplings"][settings.primary_sampling]["auroc"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise MissingInput(
            f"{root / 'screen.json'} is unreadable or lacks the {settings.primary_sampling} AUROC: {err}"
        ) from None
    specs = settings.specs
    unbiased_ids = [d for d, spec in specs.items() if spec.p <= 1.0 / N_CLASSES + 1e-9]
    bg_only_ids = [d for d, spec in specs.items() if tuple(spec.biased) == ("bg_color",)]
    tables = [
        CheckedTable(
            "verdicts",
            verdicts,
            (
                C.non_empty("verdicts"),
                C.in_set("verdicts", "state", VERDICT_STATES, "verdict states"),
            ),
            id_columns=("key",),
        )
    ]
    unbiased = verdicts[verdicts["dataset_id"].isin(unbiased_ids)].reset_index(drop=True)
    if not unbiased.empty:
        tables.append(
            CheckedTable(
                "unbiased",
                unbiased,
                (C.in_set("unbiased", "state", ["not_relied_on"], "p = 0.1 models rely on no factor"),),
                id_columns=("key",),
            )
        )
    bg_only = verdicts[verdicts["dataset_id"].isin(bg_only_ids)]
    if not bg_only.empty:
        expected = np.where(bg_only["factor"] == "bg_color", "relied_on", "not_relied_on")
        bg_only = bg_only.assign(as_expected=bg_only["state"].to_numpy() == expected).reset_index(drop=True)
        tables.append(
            CheckedTable(
                "background_only",
                bg_only,
                (C.all_true("background_only", "as_expected", "background-only models rely on the background only"),),
                id_columns=("key",),
            )
        )
    steps = total_drop_steps(models, specs)
    if not steps.empty:
        tables.append(
            CheckedTable(
                "total_drop",
                steps,
                (
                    C.between(
                        "total_drop",
                        "fall_beyond_ci",
                        high=0.0,
                        label="the total drop does not fall as p rises (beyond both intervals)",
                    ),
                ),
                id_columns=("key",),
            )
        )
    low = settings.min_morris_auroc
    tables.append(
        CheckedTable(
            "screen",
            pd.DataFrame(
                [
                    {
                        "key": settings.primary_sampling,
                        "auroc": -1.0 if auroc is None else float(auroc),
                        "defined": auroc is not None,
                    }
                ]
            ),
            (
                C.all_true("screen", "defined", "the AUROC is defined (relied-on and not-relied-on cells both exist)"),
                C.between("screen", "auroc", low, label=f"Morris AUROC >= {low:g}"),
            ),
            id_columns=("key",),
        )
    )
    relying = models.loc[models["n_relied_on"] > 0, ["dataset_id", "arch", "seed"]]
    checked = order[order["sampling"] == settings.primary_sampling].merge(relying, on=["dataset_id", "arch", "seed"])
    if not checked.empty:
        tables.append(
            CheckedTable(
                "order_check",
                checked.reset_index(drop=True),
                (C.all_true("order_check", "holds", "re-drawing in mu* order loses accuracy at least as fast"),),
                id_columns=("key",),
            )
        )
    return tables


# --------------------------------------------------------------------------- running

SuiteBuilder = Callable[[Path, ValidationSettings], list[CheckedTable]]

SUITES: dict[str, SuiteBuilder] = {
    "mnist": mnist_suite,
    "biased_mnist": biased_mnist_suite,
    "training": training_suite,
    "sensitivity": sensitivity_suite,
    "attribution_maps": attribution_maps_suite,
    "imagenet": imagenet_suite,
    "watermark": watermark_suite,
    "findings": findings_suite,
}


def run_suite(name: str, data: Path, settings: ValidationSettings) -> SuiteOutcome:
    """Build and validate one suite; missing inputs become ``skipped`` or ``error``."""
    try:
        tables = SUITES[name](data, settings)
    except SuiteSkipped as skip:
        return SuiteOutcome(
            name,
            "skipped",
            reason=str(skip),
            document={"suite": name, "success": False, "status": "skipped", "reason": str(skip)},
        )
    except MissingInput as err:
        return SuiteOutcome(
            name,
            "error",
            reason=str(err),
            document={"suite": name, "success": False, "status": "error", "reason": str(err)},
        )
    result = validate_tables(name, tables)
    status = "passed" if result.success else "failed"
    return SuiteOutcome(
        name,
        status,
        evaluated=result.evaluated,
        failed_expectations=result.failed_checks,
        document={**result.document, "status": status, "reason": ""},
    )


def run_suites(
    data: str | Path, settings: ValidationSettings, names: Sequence[str] = tuple(SUITES)
) -> list[SuiteOutcome]:
    """Run the named suites (all by default) over the artefacts under ``data``."""
    unknown = [n for n in names if n not in SUITES]
    if unknown:
        raise ValueError(f"unknown suite(s) {unknown}; known: {', '.join(SUITES)}")
    return [run_suite(name, Path(data), settings) for name in names]


def write_outcomes(outcomes: Sequence[SuiteOutcome], output: str | Path) -> None:
    """Write ``<suite>.json`` per suite and ``summary.csv``, replacing ``output`` atomically."""
    with atomic_dir(output) as tmp:
        for outcome in outcomes:
            write_json(outcome.document, tmp / f"{outcome.suite}.json")
        schema.write_into(
            "validation/summary", pd.DataFrame([o.summary_row() for o in outcomes], columns=list(SUMMARY_COLUMNS)), tmp
        )


def read_summary(path: str | Path) -> pd.DataFrame:
    """Read ``summary.csv`` with its declared types (empty texts are ``""``, not NaN).

    Raises ``ValueError`` (an :class:`~shortcut_audit.io.ArtefactError`) when the file
    is malformed or lacks a column of :data:`SUMMARY_COLUMNS`.
    """
    return schema.read(path, "validation/summary")


def format_outcomes(outcomes: Sequence[SuiteOutcome]) -> str:
    """One line per suite, for the terminal."""
    lines = []
    for o in outcomes:
        detail = o.reason or ("; ".join(o.failed_expectations[:3]) + (" ..." if len(o.failed_expectations) > 3 else ""))
        lines.append(f"  {o.status.upper():<8} {o.suite:<17} {o.evaluated:>4} checks  {detail}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``shortcut-audit validate``: exit 0 once results are written (failed suites
    included: the gate decides), 2 on invalid params or when a required input is missing."""
    parser = argparse.ArgumentParser(prog="shortcut-audit validate", description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--data", default="data", help="folder holding the pipeline outputs (default: data)")
    parser.add_argument("--output", default="data/validation", help="results folder (default: data/validation)")
    parser.add_argument("--suite", action="append", choices=list(SUITES), help="run only this suite (repeatable)")
    args = parser.parse_args(argv)
    try:
        settings = ValidationSettings.from_params(load_params(args.params))
    except (ParamError, FileNotFoundError) as err:
        print(f"shortcut-audit validate: {err}", file=sys.stderr)
        return 2
    outcomes = run_suites(args.data, settings, args.suite or tuple(SUITES))
    write_outcomes(outcomes, args.output)
    print(f"validation results in {args.output}:\n{format_outcomes(outcomes)}")
    errors = [o for o in outcomes if o.status == "error"]
    for o in errors:
        print(f"shortcut-audit validate: suite {o.suite}: {o.reason}", file=sys.stderr)
    return 2 if errors else 0
