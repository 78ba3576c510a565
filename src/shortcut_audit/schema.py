"""Every table artefact of the pipeline, declared once: where it lives, its columns and their types.

Stages write their tables through :func:`write` (which refuses a frame whose columns
differ from the declaration, in name or order), and the Great Expectations suites, the
gate and the report read them through :func:`read` (declared types, so an all-empty
text column stays text, and a value that does not parse is an error naming the file,
row and column). ``docs/architecture.md`` lists the same declarations
(:func:`markdown`; a test keeps the two in step).

Paths are relative to the repository root. Per-model artefacts carry the model in
their path: ``{dataset}``, ``{arch}`` and ``{seed}`` (:func:`path`). The summary tables
stack the per-model ones with the model's identity (:data:`MODEL_ID`) prepended.

Column types are those of :data:`shortcut_audit.io.CSV_DTYPES`: ``str``, ``int``,
``float``, ``bool``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from shortcut_audit import io

__all__ = [
    "MODEL_ID",
    "TABLES",
    "Table",
    "columns_of",
    "file_name",
    "in_folder",
    "markdown",
    "path",
    "read",
    "table",
    "under_data",
    "write",
    "write_into",
]

#: Identity of a Biased-MNIST model in every summary table.
MODEL_ID = {"dataset_id": "str", "p": "float", "biased_factors": "str", "arch": "str", "seed": "int"}
#: The factors the Biased-MNIST renderer draws, one column each in a split (the one place they are spelled;
#: :mod:`shortcut_audit.data.biased_mnist` renders them, the factor registry wraps them).
RENDERED_FACTORS: tuple[str, ...] = ("digit_color", "bg_color", "position")
_FACTOR_VALUES = {factor: "int" for factor in RENDERED_FACTORS}
_ALIGNED = {f"{f}_aligned": "bool" for f in _FACTOR_VALUES}
_CONFLICTING = {f"conflicting_acc_{f}": "float" for f in _FACTOR_VALUES}
_CURVE = {"epoch": "int", "train_loss": "float", "train_acc": "float", "val_acc": "float"}
_MORRIS = {
    "sampling": "str",
    "factor": "str",
    "output": "str",
    "mu": "float",
    "mu_star": "float",
    "sigma": "float",
    "mu_star_conf": "float",
    "mu_star_share": "float",
    "sigma_over_mu_star": "float",
}
_SEQUENTIAL = {
    "sampling": "str",
    "order": "str",
    "step": "int",
    "factor": "str",
    "accuracy": "float",
    "ci_low": "float",
    "ci_high": "float",
}
_ORDER_CHECK = {
    "sampling": "str",
    "order": "str",
    "area": "float",
    "ci_low": "float",
    "ci_high": "float",
    "holds": "bool",
}
_VERDICTS = {
    "factor": "str",
    "state": "str",
    "drop": "float",
    "ci_low": "float",
    "ci_high": "float",
    "first_round_state": "str",
    "single_drop": "float",
    "single_ci_low": "float",
    "single_ci_high": "float",
    "sampling": "str",
    "mu_star": "float",
    "sigma": "float",
    "mu_star_share": "float",
    "n_items": "int",
    "repetitions": "int",
}
_INTERACTION = {
    "factor": "str",
    "mu_star": "float",
    "sigma": "float",
    "sigma_over_mu_star": "float",
    "drop_alone": "float",
    "drop_last": "float",
    "order_gap": "float",
    "gap_ci_low": "float",
    "gap_ci_high": "float",
    "order_dependent": "bool",
    "reading": "str",
}
_PIXEL_VIEW = {"image": "int", "label": "int", "background_share": "float", "background_pixel_fraction": "float"}
_AUDIT_DIR = "data/audit/{dataset}/{arch}/seed{seed}"
_MODEL_DIR = "data/models/{dataset}/{arch}/seed{seed}"


@dataclass(frozen=True)
class Table:
    """One declared table artefact.

    Attributes
    ----------
    key : str
        Short unique name, ``<folder>/<file stem>`` (e.g. ``audit_summary/verdicts``).
    path : str
        Path from the repository root; may hold ``{dataset}``, ``{arch}``, ``{seed}``.
    columns : mapping
        Column -> type, in the order the file has them.
    description : str
        What one row is.
    """

    key: str
    path: str
    columns: Mapping[str, str]
    description: str

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def check(self, frame) -> None:
        """Refuse a frame whose columns are not exactly the declared ones, in order."""
        if list(frame.columns) != self.names:
            extra = [c for c in frame.columns if c not in self.columns]
            missing = [c for c in self.columns if c not in frame.columns]
            raise ValueError(
                f"{self.key}: columns differ from the declaration in shortcut_audit.schema "
                f"(missing {missing}, undeclared {extra}, or another order)"
            )


def _declare(*tables: Table) -> dict[str, Table]:
    declared: dict[str, Table] = {}
    for t in tables:
        if t.key in declared:
            raise ValueError(f"table {t.key} declared twice")
        declared[t.key] = t
    return declared


TABLES: dict[str, Table] = _declare(
    Table(
        "biased_mnist/split",
        "data/biased_mnist/{dataset}/{split}.parquet",
        {"mnist_index": "int", "label": "int", **_FACTOR_VALUES, **_ALIGNED},
        "one sample of a split: its MNIST row, label and factor values",
    ),
    Table(
        "biased_mnist/summary",
        "data/biased_mnist/summary.csv",
        {
            "dataset_id": "str",
            "p": "float",
            "split": "str",
            "factor": "str",
            "biased": "bool",
            "n": "int",
            "linked_rate": "float",
            "expected_linked_rate": "float",
        },
        "achieved linked rate of one factor in one split",
    ),
    Table("models/curve", f"{_MODEL_DIR}/curve.csv", _CURVE, "one training epoch"),
    Table(
        "train_summary/models",
        "data/train_summary/models.csv",
        {
            **MODEL_ID,
            "n_params": "int",
            "val_acc": "float",
            "unbiased_acc": "float",
            "aligned_acc": "float",
            **_CONFLICTING,
            "aligned_conflicting_gap": "float",
            "epochs": "int",
            "train_seconds": "float",
            "device": "str",
            "cpu_kernels": "str",
        },
        "one trained model and its accuracies",
    ),
    Table(
        "train_summary/curves",
        "data/train_summary/curves.csv",
        {"dataset_id": "str", "arch": "str", "seed": "int", **_CURVE},
        "one epoch of one model",
    ),
    Table("audit/morris", f"{_AUDIT_DIR}/morris.parquet", _MORRIS, "Morris statistics of one factor and output"),
    Table(
        "audit/interventions",
        f"{_AUDIT_DIR}/interventions.parquet",
        _SEQUENTIAL,
        "accuracy after one step of a sequential re-draw order",
    ),
    Table(
        "audit/order_check",
        f"{_AUDIT_DIR}/order_check.parquet",
        _ORDER_CHECK,
        "MoSIP's order check for one Morris sampling",
    ),
    Table(
        "audit/verdicts",
        f"{_AUDIT_DIR}/verdicts.parquet",
        _VERDICTS,
        "the interventional verdict on one factor, with the Morris explanation",
    ),
    Table(
        "audit/interaction", f"{_AUDIT_DIR}/interaction.parquet", _INTERACTION, "order dependence of one factor's drop"
    ),
    Table(
        "audit/pixel_view",
        f"{_AUDIT_DIR}/pixel_view.parquet",
        _PIXEL_VIEW,
        "share of one Sobol map's positive mass on background pixels",
    ),
    Table(
        "audit_summary/morris", "data/audit_summary/morris.csv", {**MODEL_ID, **_MORRIS}, "audit/morris of every model"
    ),
    Table(
        "audit_summary/interventions",
        "data/audit_summary/interventions.csv",
        {**MODEL_ID, **_SEQUENTIAL},
        "audit/interventions of every model",
    ),
    Table(
        "audit_summary/order_check",
        "data/audit_summary/order_check.csv",
        {**MODEL_ID, **_ORDER_CHECK},
        "audit/order_check of every model",
    ),
    Table(
        "audit_summary/verdicts",
        "data/audit_summary/verdicts.csv",
        {**MODEL_ID, **_VERDICTS, "screen_relied_on": "bool", "screen_agreement": "str"},
        "audit/verdicts of every model, with the Morris screen's verdict at the shipped threshold",
    ),
    Table(
        "audit_summary/interaction",
        "data/audit_summary/interaction.csv",
        {**MODEL_ID, **_INTERACTION},
        "audit/interaction of every model",
    ),
    Table(
        "audit_summary/pixel_view",
        "data/audit_summary/pixel_view.csv",
        {**MODEL_ID, **_PIXEL_VIEW},
        "audit/pixel_view of every model",
    ),
    Table(
        "audit_summary/models",
        "data/audit_summary/models.csv",
        {
            **MODEL_ID,
            "total_drop": "float",
            "total_ci_low": "float",
            "total_ci_high": "float",
            "n_relied_on": "int",
            "n_inconclusive": "int",
            "relied_on": "str",
            "rounds": "int",
            "n_items": "int",
            "repetitions": "int",
            "n_correct": "int",
            "interaction_reading": "str",
            "background_share": "float",
        },
        "one audited model: total drop, budget used, verdict counts, readings",
    ),
    Table(
        "audit_summary/screen",
        "data/audit_summary/screen.csv",
        {
            "sampling": "str",
            "dataset_id": "str",
            "threshold": "float",
            "n_cells": "int",
            "n_agree": "int",
            "agreement": "float",
        },
        "one held-out correlation level of the Morris screen's cross-validation",
    ),
    Table(
        "audit_summary/seeds",
        "data/audit_summary/seeds.csv",
        {
            "dataset_id": "str",
            "p": "float",
            "arch": "str",
            "factor": "str",
            "n_seeds": "int",
            "states": "str",
            "majority_state": "str",
            "agreement": "float",
            "seed_dependent": "bool",
        },
        "the verdict on one (level, architecture, factor) across training seeds",
    ),
    Table(
        "imagenet/models",
        "data/imagenet/models.csv",
        {
            "model": "str",
            "status": "str",
            "reason": "str",
            "source": "str",
            "weights_path": "str",
            "input_size": "int",
            "n_params": "int",
            "is_reference": "bool",
            "n_images": "int",
            "target_kind": "str",
            "top1_accuracy": "float",
            "mean_target_probability": "float",
            "forwards": "int",
            "seconds": "float",
            "forward_seconds": "float",
        },
        "one ImageNet model, loaded or skipped",
    ),
    Table(
        "imagenet/fidelity",
        "data/imagenet/fidelity.csv",
        {
            "model": "str",
            "method": "str",
            "image_id": "str",
            "target": "int",
            "metric": "str",
            "value": "float",
            "direction": "str",
            "forwards": "float",
            "explain_seconds": "float",
            "reference": "str",
            "protocol": "str",
        },
        "one fidelity score of one method on one image under one protocol",
    ),
    Table(
        "imagenet/fidelity_summary",
        "data/imagenet/fidelity_summary.csv",
        {
            "model": "str",
            "protocol": "str",
            "method": "str",
            "metric": "str",
            "direction": "str",
            "n_images": "int",
            "mean": "float",
            "ci_low": "float",
            "ci_high": "float",
            "random_mean": "float",
            "constant_mean": "float",
            "gain_vs_random": "float",
            "gain_ci_low": "float",
            "gain_ci_high": "float",
            "vs_random": "str",
            "beats_random": "bool",
            "protocol_detail": "str",
        },
        "one score of one method under one protocol, against the random map",
    ),
    Table(
        "imagenet/curves",
        "data/imagenet/curves.csv",
        {
            "model": "str",
            "method": "str",
            "mode": "str",
            "step": "int",
            "fraction": "float",
            "score": "float",
            "protocol": "str",
        },
        "one step of a mean deletion or insertion curve",
    ),
    Table(
        "imagenet/convergence",
        "data/imagenet/convergence.csv",
        {
            "model": "str",
            "method": "str",
            "reference_kind": "str",
            "image_id": "str",
            "budget": "int",
            "forwards": "int",
            "reference_forwards": "int",
            "spearman": "float",
        },
        "Spearman to a converged map at one budget on one image",
    ),
    Table(
        "imagenet/overlap",
        "data/imagenet/overlap.csv",
        {
            "model": "str",
            "reference": "str",
            "requested_reference": "str",
            "statistic": "str",
            "image_id": "str",
            "top_fraction": "float",
            "radius": "int",
            "overlap_share": "float",
            "n_overlapping": "int",
            "n_differing": "int",
            "mu_star_overlapping": "float",
            "mu_star_differing": "float",
            "sigma_overlapping": "float",
            "sigma_differing": "float",
            "reference_mu_star_overlapping": "float",
            "reference_mu_star_differing": "float",
            "reference_sigma_overlapping": "float",
            "reference_sigma_differing": "float",
        },
        "MoSIP overlap (Fig. 5) of one model with the reference on one image and statistic",
    ),
    Table(
        "imagenet/ratio",
        "data/imagenet/ratio.csv",
        {
            "model": "str",
            "n_images": "int",
            "threshold": "float",
            "n_relevant": "int",
            "n_ratio": "int",
            "mean_ratio": "float",
            "median_ratio": "float",
        },
        "MoSIP mu*/sigma ratio (Fig. 6a) of one model",
    ),
    Table(
        "imagenet/interactions",
        "data/imagenet/interactions.csv",
        {
            "model": "str",
            "target_kind": "str",
            "n_images": "int",
            "region_x": "int",
            "region_y": "int",
            "drop_x": "float",
            "drop_y": "float",
            "drop_xy": "float",
            "interaction": "float",
            "interacts": "bool",
        },
        "MoSIP pairwise test (Fig. 6b) of one pair of regions",
    ),
    Table(
        "imagenet/score_interactions",
        "data/imagenet/score_interactions.csv",
        {
            "model": "str",
            "image_id": "str",
            "region_a": "int",
            "region_b": "int",
            "drop_a": "float",
            "drop_b": "float",
            "drop_ab": "float",
            "interaction": "float",
            "interacts": "bool",
        },
        "the two-sided score test (an extension) of one pair on one image",
    ),
    Table(
        "imagenet/masking",
        "data/imagenet/masking.csv",
        {
            "model": "str",
            "scope": "str",
            "ranking": "str",
            "which": "str",
            "target_kind": "str",
            "n_images": "int",
            "step": "int",
            "fraction": "float",
            "accuracy": "float",
            "score_change": "float",
        },
        "one step of a MoSIP masking curve (Figs. 4, 9, 10)",
    ),
    Table(
        "imagenet/ensembles",
        "data/imagenet/ensembles.csv",
        {
            "model": "str",
            "kind": "str",
            "normalisation": "str",
            "aggregation": "str",
            "setting": "str",
            "members": "str",
            "n_members": "int",
            "ordered_by": "str",
            "deletion_auc": "float",
            "deletion_ci_low": "float",
            "deletion_ci_high": "float",
            "insertion_auc": "float",
            "insertion_ci_low": "float",
            "insertion_ci_high": "float",
        },
        "one base map, reference map or ensemble scored by insertion and deletion",
    ),
    Table(
        "watermark/models",
        "data/watermark/models.csv",
        {
            "model": "str",
            "status": "str",
            "reason": "str",
            "source": "str",
            "input_size": "int",
            "n_images": "int",
            "target_kind": "str",
            "top1_accuracy": "float",
            "explained": "bool",
            "forwards": "int",
            "seconds": "float",
            "forward_seconds": "float",
        },
        "one ImageNet model of the watermark audit, loaded or skipped",
    ),
    Table(
        "watermark/images",
        "data/watermark/images.csv",
        {
            "model": "str",
            "image_id": "str",
            "label": "int",
            "clean_top1": "int",
            "watermarked_top1": "int",
            "changed": "bool",
            "carton_prob_clean": "float",
            "carton_prob_watermarked": "float",
            "carton_logit_clean": "float",
            "carton_logit_watermarked": "float",
        },
        "one photo classified without and with the watermark",
    ),
    Table(
        "watermark/effects",
        "data/watermark/effects.csv",
        {
            "model": "str",
            "target_kind": "str",
            "statistic": "str",
            "value": "float",
            "ci_low": "float",
            "ci_high": "float",
            "n_images": "int",
        },
        "one effect of adding the watermark, with its bootstrap interval over photos",
    ),
    Table(
        "watermark/verdicts",
        "data/watermark/verdicts.csv",
        {
            "model": "str",
            "target_kind": "str",
            "factor": "str",
            "state": "str",
            "drop": "float",
            "ci_low": "float",
            "ci_high": "float",
            "threshold": "float",
            "statistic": "str",
            "first_round_state": "str",
            "n_items": "int",
            "repetitions": "int",
            "rounds": "int",
            "n_pool": "int",
            "n_correct": "int",
        },
        "the three-state verdict on one model's reliance on the watermark",
    ),
    Table(
        "watermark/morris",
        "data/watermark/morris.csv",
        {"model": "str", "target_kind": "str", **_MORRIS},
        "Morris statistics of one watermark aspect and output",
    ),
    Table(
        "watermark/explainers",
        "data/watermark/explainers.csv",
        {
            "model": "str",
            "method": "str",
            "kind": "str",
            "image_id": "str",
            "mask_share": "float",
            "pointing": "float",
            "positive_mass": "float",
            "forwards": "float",
            "seconds": "float",
        },
        "one explainer's map of one photo scored on the watermark's pixels",
    ),
    Table(
        "watermark/explainer_summary",
        "data/watermark/explainer_summary.csv",
        {
            "model": "str",
            "method": "str",
            "kind": "str",
            "n_images": "int",
            "mask_share": "float",
            "mask_share_ci_low": "float",
            "mask_share_ci_high": "float",
            "pointing": "float",
            "pointing_ci_low": "float",
            "pointing_ci_high": "float",
            "chance": "float",
            "forwards": "float",
            "seconds": "float",
            "no_positive_mass": "int",
        },
        "one explainer's mean scores on the watermark's pixels against chance",
    ),
    Table(
        "validation/summary",
        "data/validation/summary.csv",
        {
            "suite": "str",
            "success": "bool",
            "evaluated": "int",
            "failed": "int",
            "failed_expectations": "str",
            "status": "str",
            "reason": "str",
        },
        "the outcome of one Great Expectations suite",
    ),
)


def table(key: str) -> Table:
    """The declaration of ``key``; KeyError listing the known keys."""
    if key not in TABLES:
        raise KeyError(f"no table {key!r} is declared in shortcut_audit.schema; known: {', '.join(TABLES)}")
    return TABLES[key]


def columns_of(folder: str) -> dict[str, list[str]]:
    """File stem -> declared columns of every table of one folder (e.g. ``imagenet``), in declaration order."""
    prefix = folder.rstrip("/") + "/"
    return {key[len(prefix) :]: declared.names for key, declared in TABLES.items() if key.startswith(prefix)}


def path(key: str, root: str | os.PathLike = ".", **model: object) -> Path:
    """The file of ``key`` under ``root``, its placeholders filled from ``model`` (dataset, arch, seed, split)."""
    try:
        return Path(root) / table(key).path.format(**model)
    except KeyError as err:
        raise ValueError(f"{key}: path {table(key).path} needs {err.args[0]!r}") from None


def file_name(key: str, **model: object) -> str:
    """The file name of ``key`` (the last component of its path, placeholders filled from ``model``)."""
    try:
        return Path(table(key).path).name.format(**model)
    except KeyError as err:
        raise ValueError(f"{key}: file name {Path(table(key).path).name} needs {err.args[0]!r}") from None


def in_folder(key: str, folder: str | os.PathLike, **model: object) -> Path:
    """The file of ``key`` inside ``folder`` (a stage's temporary output folder, say)."""
    return Path(folder) / file_name(key, **model)


def under_data(key: str, data: str | os.PathLike, **model: object) -> Path:
    """The file of ``key`` under ``data``, a folder standing for the repository's ``data/``."""
    parts = Path(table(key).path).parts
    if parts[0] != "data":
        raise ValueError(f"{key}: {table(key).path} is not under data/")
    try:
        return Path(data) / str(Path(*parts[1:])).format(**model)
    except KeyError as err:
        raise ValueError(f"{key}: path {table(key).path} needs {err.args[0]!r}") from None


def _component(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for placeholder in ("dataset", "arch", "seed", "split"):
        pattern = pattern.replace(re.escape("{" + placeholder + "}"), "[^/]+")
    return re.compile(pattern + r"\Z")


def key_of(file: str | os.PathLike) -> str | None:
    """The declared key of a file, matched on its trailing path components (``None`` when undeclared).

    The leading ``data/`` of a declared path is not required, so a table written under
    any root (a test's temporary folder) is recognised.
    """
    parts = Path(file).parts
    for key, declared in TABLES.items():
        templates = Path(declared.path).parts[1:]  # without "data" / "reports"
        if len(parts) >= len(templates) and all(
            _component(t).match(f) for t, f in zip(templates, parts[len(parts) - len(templates) :])
        ):
            return key
    return None


def dtypes_of(file: str | os.PathLike) -> dict[str, str]:
    """Declared column types of the artefact at ``file`` (empty when undeclared)."""
    key = key_of(file)
    return dict(TABLES[key].columns) if key else {}


def write(key: str, frame, file: str | os.PathLike) -> None:
    """Write ``frame`` as table ``key`` (columns checked against the declaration) atomically to ``file``."""
    table(key).check(frame)
    io.write_table(frame, file)


def write_into(key: str, frame, folder: str | os.PathLike, **model: object) -> Path:
    """:func:`write` ``frame`` to its declared file name inside ``folder``; return the file."""
    file = in_folder(key, folder, **model)
    write(key, frame, file)
    return file


def read(file: str | os.PathLike, key: str | None = None, text: str | None = None, name: str | None = None):
    """Read a table artefact with its declared types and check its columns.

    Parameters
    ----------
    file : path
        The file (CSV or parquet).
    key : str, optional
        Its declaration (default: found from the folder and file name).
    text, name
        CSV content when it does not come from ``file`` (a git revision), and what
        messages call it then.

    Raises
    ------
    shortcut_audit.io.ArtefactError
        Malformed file, a value that does not parse, or columns other than declared.
    """
    key = key or key_of(file)
    declared = TABLES.get(key) if key else None
    label = name or str(file)
    if Path(file).suffix == ".parquet":
        frame = io.read_table(file)
    else:
        frame = io.read_csv(label if text is not None else file, dict(declared.columns) if declared else {}, text=text)
    if declared is not None and list(frame.columns) != declared.names:
        missing = [c for c in declared.names if c not in frame.columns]
        extra = [c for c in frame.columns if c not in declared.columns]
        raise io.ArtefactError(
            label,
            f"columns differ from its declaration {declared.key} "
            f"(missing {missing}, undeclared {extra}); re-run its stage",
        )
    return frame


def markdown() -> str:
    """The declarations as a Markdown list (the artefact section of ``docs/architecture.md``)."""
    lines = []
    for declared in TABLES.values():
        columns = ", ".join(f"`{c}` {t}" for c, t in declared.columns.items())
        lines.append(f"- `{declared.path}` ({declared.key}): {declared.description}. Columns: {columns}.")
    return "\n".join(lines) + "\n"
