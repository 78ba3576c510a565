"""DVC stage train_summary: every model of the sweep -> data/train_summary/.

Writes ``models.csv`` (one row per dataset x architecture x seed, the per-model
metrics schema of docs/architecture.md), ``curves.csv`` (dataset_id, arch, seed, epoch,
train_loss, train_acc, val_acc) and ``metrics.json`` (means over models, n_models,
accuracies by correlation level). A model that was not trained is an error naming it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from shortcut_audit import schema
from shortcut_audit.config import load_params
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.io import atomic_dir, write_json
from shortcut_audit.training.settings import check_params
from shortcut_audit.training.summary import collect_models, summary_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--models", default="data/models", help="trained models folder (default: data/models)")
    parser.add_argument("--output", default="data/train_summary", help="output folder (default: data/train_summary)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    datasets = bm.check_params(params).datasets
    train = check_params(params)

    models, curves = collect_models(args.models, datasets, train.architectures, train.seeds)
    metrics = summary_metrics(models)
    with atomic_dir(Path(args.output)) as tmp:
        schema.write_into("train_summary/models", models, tmp)
        schema.write_into("train_summary/curves", curves, tmp)
        write_json(metrics, tmp / "metrics.json")
    print(
        f"train_summary: {len(models)} models, mean unbiased acc {models['unbiased_acc'].mean():.3f}, "
        f"max aligned-conflicting gap {models['aligned_conflicting_gap'].max():.3f} -> {args.output}"
    )
    return 0
