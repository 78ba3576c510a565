"""Declared column types of the CSV artefacts that ``validate``, ``gate`` and ``report`` read.

One mapping, :data:`DTYPES`: ``"<folder>/<file>"`` (the artefact's path below ``data/``)
-> ``{column: dtype}`` with dtypes of :data:`shortcut_audit.io.CSV_DTYPES`. Reading with
declared types matters for text: pandas reads a text column whose fields are all
empty (``reason`` when every model loads, ``reference`` when no method has a white-box
counterpart) as an all-NaN float column, which the "not NaN" expectations then
report as a broken run. Declared ``str`` columns keep ``""``; declared numbers and
booleans that do not parse are errors naming the row and column. Columns not listed
here are inferred by pandas as before.

The column meanings are documented where the tables are written
(``docs/architecture.md``, :mod:`shortcut_audit.imagenet.pipeline`).
"""
from __future__ import annotations

import os
from pathlib import Path

from shortcut_audit import io

_MODEL_ID = {"dataset_id": "str", "p": "float", "biased_factors": "str", "arch": "str"}
_ACCURACIES = {c: "float" for c in ("val_acc", "unbiased_acc", "aligned_acc", "conflicting_acc_digit_color",
                                    "conflicting_acc_bg_color", "conflicting_acc_position",
                                    "aligned_conflicting_gap")}

DTYPES: dict[str, dict[str, str]] = {
    "biased_mnist/summary.csv": {
        "dataset_id": "str", "p": "float", "split": "str", "factor": "str", "biased": "bool", "n": "int",
        "linked_rate": "float", "expected_linked_rate": "float"},
    "train_summary/models.csv": {
        **_MODEL_ID, "n_params": "int", **_ACCURACIES, "epochs": "int", "train_seconds": "float", "device": "str"},
    "train_summary/curves.csv": {
        "dataset_id": "str", "arch": "str", "epoch": "int", "train_loss": "float", "train_acc": "float",
        "val_acc": "float"},
    "audit_summary/morris.csv": {
        **_MODEL_ID, "factor": "str", "output": "str", "mu": "float", "mu_star": "float", "sigma": "float",
        "mu_star_conf": "float", "mu_star_share": "float", "sigma_over_mu_star": "float"},
    "audit_summary/verdicts.csv": {
        **_MODEL_ID, "factor": "str", "mu_star_share": "float", "morris_relied_on": "bool", "drop": "float",
        "single_drop": "float", "intervention_relied_on": "bool", "agree": "bool"},
    "audit_summary/interventions.csv": {
        **_MODEL_ID, "order": "str", "step": "int", "factor": "str", "accuracy": "float", "ci_low": "float",
        "ci_high": "float"},
    "audit_summary/single_drop.csv": {
        **_MODEL_ID, "factor": "str", "accuracy": "float", "drop": "float", "ci_low": "float", "ci_high": "float"},
    "audit_summary/pixel_view.csv": {
        **_MODEL_ID, "image": "int", "label": "int", "background_share": "float",
        "background_pixel_fraction": "float"},
    "audit_summary/interaction.csv": {
        **_MODEL_ID, "factor": "str", "mu_star": "float", "sigma": "float", "sigma_over_mu_star": "float",
        "drop_alone": "float", "drop_last": "float", "order_gap": "float", "gap_ci_low": "float",
        "gap_ci_high": "float", "order_dependent": "bool", "reading": "str"},
    "imagenet/models.csv": {
        "model": "str", "status": "str", "reason": "str", "source": "str", "weights_path": "str",
        "input_size": "int", "n_params": "int", "is_reference": "bool", "n_images": "int", "target_kind": "str",
        "top1_accuracy": "float", "mean_target_probability": "float", "forwards": "int", "seconds": "float",
        "forward_seconds": "float"},
    "imagenet/fidelity.csv": {
        "model": "str", "method": "str", "image_id": "str", "target": "int", "metric": "str", "value": "float",
        "direction": "str", "forwards": "float", "explain_seconds": "float", "reference": "str"},
    "imagenet/curves.csv": {
        "model": "str", "method": "str", "mode": "str", "step": "int", "fraction": "float", "score": "float"},
    "imagenet/convergence.csv": {
        "model": "str", "method": "str", "reference_kind": "str", "image_id": "str", "budget": "int",
        "forwards": "int", "reference_forwards": "int", "spearman": "float"},
    "imagenet/overlap.csv": {
        "model": "str", "reference": "str", "image_id": "str", "top_fraction": "float", "radius": "int",
        "overlap_share": "float", "n_overlapping": "int", "n_differing": "int", "mu_star_overlapping": "float",
        "mu_star_differing": "float", "sigma_overlapping": "float", "sigma_differing": "float"},
    "imagenet/ratio.csv": {
        "model": "str", "image_id": "str", "threshold": "float", "n_relevant": "int", "n_ratio": "int",
        "mean_ratio": "float", "median_ratio": "float"},
    "imagenet/interactions.csv": {
        "model": "str", "image_id": "str", "region_a": "int", "region_b": "int", "drop_a": "float",
        "drop_b": "float", "drop_ab": "float", "interaction": "float", "interacts": "bool"},
    "imagenet/masking.csv": {
        "model": "str", "which": "str", "scope": "str", "fraction": "float", "accuracy": "float",
        "clean_accuracy": "float", "score_change": "float"},
    "imagenet/ensembles.csv": {
        "model": "str", "kind": "str", "normalisation": "str", "aggregation": "str", "members": "str",
        "n_members": "int", "deletion_auc": "float", "insertion_auc": "float"},
    "validation/summary.csv": {
        "suite": "str", "success": "bool", "evaluated": "int", "failed": "int", "failed_expectations": "str",
        "status": "str", "reason": "str"},
}


def artefact_key(path: str | os.PathLike) -> str:
    """``"<folder>/<file>"`` of a path, the key of :data:`DTYPES`."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"


def dtypes_for(path: str | os.PathLike) -> dict[str, str]:
    """The declared column types of the artefact at ``path`` (empty when undeclared)."""
    return dict(DTYPES.get(artefact_key(path), {}))


def read_artefact(path: str | os.PathLike, text: str | None = None, name: str | None = None):
    """Read a CSV artefact with its declared column types (:func:`shortcut_audit.io.read_csv`).

    ``text`` is the content when it does not come from ``path`` (e.g. a git revision),
    ``name`` what messages call it then (default ``path``). Raises
    :class:`shortcut_audit.io.ArtefactError` for a malformed file or a value that does
    not parse, naming the file, row and column.
    """
    if text is None:
        return io.read_csv(path, dtypes_for(path))
    return io.read_csv(name or path, dtypes_for(path), text=text)
