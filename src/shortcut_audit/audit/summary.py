"""Across models: the long tables behind MoSIP Figs. 2b and 3a and the headline metrics.

Every per-model table of ``data/audit/<dataset_id>/<arch>/`` is stacked with
``dataset_id, p, biased_factors, arch`` prepended (``p`` and the biased factors come
from the dataset id), so a report can plot ``mu*``, ``sigma`` and ``sigma / mu*`` per
factor against the correlation level for every architecture. The metrics give the
agreement of the Morris and interventional verdicts over all (model, factor) cells,
the cells that disagree, and per architecture the Spearman correlation between the
background bias and the background share of the pixel view.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import pandas as pd
from scipy import stats

from shortcut_audit.data.biased_mnist import DatasetSpec
from shortcut_audit.io import read_json, read_table

__all__ = ["TABLES", "collect_tables", "summary_metrics"]

# summary csv name -> per-model file
TABLES = {
    "morris": "morris.parquet",
    "verdicts": "verdicts.parquet",
    "interventions": "interventions.parquet",
    "single_drop": "single_drop.parquet",
    "pixel_view": "pixel_view.parquet",
    "interaction": "interaction.parquet",
}
ID_COLUMNS = ("dataset_id", "p", "biased_factors", "arch")


def model_folders(audit_root: str | Path, datasets: Sequence[str], architectures: Sequence[str]) -> dict[tuple[str, str], Path]:
    """``(dataset_id, arch) -> folder`` for every model of the sweep; all must exist."""
    folders = {(d, a): Path(audit_root) / d / a for d in datasets for a in architectures}
    missing = [str(f) for f in folders.values() if not (f / "metrics.json").is_file()]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} model audit(s) missing, e.g. {missing[:3]}; run the audit_factors stages first"
        )
    return folders


def _identity(dataset_id: str, arch: str, spec: DatasetSpec) -> dict[str, object]:
    return {"dataset_id": dataset_id, "p": spec.p, "biased_factors": "+".join(spec.biased), "arch": arch}


def collect_tables(folders: Mapping[tuple[str, str], Path], specs: Mapping[str, DatasetSpec]) -> dict[str, pd.DataFrame]:
    """Stack each per-model table over the models, identity columns first."""
    tables = {}
    for name, file_name in TABLES.items():
        parts = []
        for (dataset_id, arch), folder in folders.items():
            table = read_table(folder / file_name)
            for position, (key, value) in enumerate(_identity(dataset_id, arch, specs[dataset_id]).items()):
                table.insert(position, key, value)
            parts.append(table)
        tables[name] = pd.concat(parts, ignore_index=True)
    return tables


def background_trend(pixel_view: pd.DataFrame) -> dict[str, float]:
    """Spearman rho of ``p`` vs mean background share per architecture.

    Over the datasets whose biased factors include ``bg_color`` (the unbiased level
    included); an architecture with fewer than three such levels, or a constant
    series, has no defined correlation and is left out.
    """
    with_bg = pixel_view[pixel_view["biased_factors"].str.split("+").map(lambda f: "bg_color" in f)]
    per_model = with_bg.groupby(["arch", "dataset_id", "p"], as_index=False)["background_share"].mean()
    trend = {}
    for arch, rows in per_model.groupby("arch"):
        if rows["p"].nunique() >= 3 and rows["background_share"].nunique() > 1:
            trend[str(arch)] = float(stats.spearmanr(rows["p"], rows["background_share"]).statistic)
    return trend


def summary_metrics(
    tables: Mapping[str, pd.DataFrame],
    folders: Mapping[tuple[str, str], Path],
    train_models: pd.DataFrame | None = None,
) -> dict:
    """``audit_summary/metrics.json``.

    Keys: ``verdict_agreement`` (fraction of (model, factor) cells where the two
    verdicts agree), ``n_models``, ``n_cells``, ``disagreements`` (the cells that
    disagree, with their numbers), ``background_share_spearman`` (per architecture)
    and ``models`` (per model: relied-on factors by each method, agreement,
    background share, interaction reading and, when the training summary is given,
    unbiased and aligned accuracy).
    """
    verdicts = tables["verdicts"]
    disagree = verdicts[~verdicts["agree"]]
    accuracy = {}
    if train_models is not None:
        for row in train_models.itertuples():
            accuracy[(row.dataset_id, row.arch)] = {"unbiased_acc": float(row.unbiased_acc), "aligned_acc": float(row.aligned_acc)}
    models = {}
    for (dataset_id, arch), folder in folders.items():
        metrics = read_json(folder / "metrics.json")
        rows = verdicts[(verdicts["dataset_id"] == dataset_id) & (verdicts["arch"] == arch)]
        models[f"{dataset_id}/{arch}"] = {
            "dataset_id": dataset_id,
            "arch": arch,
            "p": metrics["p"],
            "biased_factors": metrics["biased_factors"],
            "morris_relied_on": rows.loc[rows["morris_relied_on"], "factor"].tolist(),
            "intervention_relied_on": rows.loc[rows["intervention_relied_on"], "factor"].tolist(),
            "verdict_agreement": float(rows["agree"].mean()),
            "background_share": metrics["background_share"],
            "interaction_reading": metrics["interaction_reading"],
            **accuracy.get((dataset_id, arch), {}),
        }
    return {
        "verdict_agreement": float(verdicts["agree"].mean()),
        "n_models": len(folders),
        "n_cells": int(len(verdicts)),
        "disagreements": disagree[
            ["dataset_id", "arch", "factor", "mu_star_share", "morris_relied_on", "drop", "single_drop",
             "intervention_relied_on"]
        ].to_dict(orient="records"),
        "background_share_spearman": background_trend(tables["pixel_view"]),
        "models": models,
    }
