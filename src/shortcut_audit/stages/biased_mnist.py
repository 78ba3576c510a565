"""DVC stage biased_mnist: factor tables per dataset id -> data/biased_mnist/.

Writes ``<dataset_id>/{train,val,test_unbiased,test_aligned}.parquet`` and
``summary.csv`` (dataset_id, p, split, factor, biased, n, linked_rate,
expected_linked_rate). The whole folder appears whole or not at all.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from shortcut_audit import schema
from shortcut_audit.config import load_params, require
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.data.mnist import load_mnist_arrays
from shortcut_audit.io import atomic_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--mnist", default="data/mnist", help="prepared MNIST folder (default: data/mnist)")
    parser.add_argument("--output", default="data/biased_mnist", help="output folder (default: data/biased_mnist)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    seed = require(params, "seed", int, lambda s: s >= 0, "a non-negative integer")
    config = bm.check_params(params)
    arrays = load_mnist_arrays(args.mnist)
    train_labels, test_labels = arrays["train_labels"], arrays["test_labels"]

    summary = []
    with atomic_dir(args.output) as tmp:
        for dataset_id, spec in zip(config.datasets, config.specs):
            tables = bm.make_dataset(
                dataset_id, spec, train_labels, test_labels, seed, config.n_train, config.n_val, config.n_test
            )
            folder = Path(tmp) / dataset_id
            folder.mkdir()
            for split, table in tables.items():
                schema.write_into("biased_mnist/split", table, folder, split=split)
            summary += bm.summary_rows(dataset_id, spec, tables)
        schema.write_into("biased_mnist/summary", pd.DataFrame(summary), tmp)
    print(f"biased_mnist: {len(config.datasets)} datasets ({', '.join(config.datasets)}) -> {args.output}")
    return 0
