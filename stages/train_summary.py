"""DVC stage train_summary: every model of the sweep -> data/train_summary/.

Writes ``models.csv`` (one row per dataset x architecture, the per-model metrics
schema of docs/architecture.md), ``curves.csv`` (dataset_id, arch, epoch,
train_loss, train_acc, val_acc) and ``metrics.json`` (means over models, n_models,
per-model headlines). A model that was not trained is an error naming it.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import shortcut_audit  # noqa: F401  (pins the CPU kernels and installs the torchvision shim first)
from shortcut_audit.config import load_params
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.io import atomic_dir, write_json, write_table
from shortcut_audit.training.loop import check_architectures
from shortcut_audit.training.summary import collect_models, summary_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--models", default="data/models", help="trained models folder (default: data/models)")
    parser.add_argument("--output", default="data/train_summary", help="output folder (default: data/train_summary)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    datasets = bm.check_params(params).datasets
    architectures = check_architectures(params)

    models, curves = collect_models(args.models, datasets, architectures)
    metrics = summary_metrics(models)
    with atomic_dir(Path(args.output)) as tmp:
        write_table(models, tmp / "models.csv")
        write_table(curves, tmp / "curves.csv")
        write_json(metrics, tmp / "metrics.json")
    print(f"train_summary: {metrics['n_models']} models, mean unbiased acc {metrics['mean_unbiased_acc']:.3f}, "
          f"max aligned-conflicting gap {metrics['max_aligned_conflicting_gap']:.3f} -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
