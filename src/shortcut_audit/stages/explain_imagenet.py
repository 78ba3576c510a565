"""DVC stage: explain ImageNet classifiers and score the explanations -> data/imagenet/.

Usage: ``python stages/explain_imagenet.py [--output data/imagenet] [--params params.yaml]``.
The tables are described in :mod:`shortcut_audit.imagenet.pipeline`.
"""
from __future__ import annotations

import argparse

from shortcut_audit.config import load_params
from shortcut_audit.imagenet.config import parse_config
from shortcut_audit.imagenet.pipeline import run_imagenet_audit, write_results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="data/imagenet")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    config = parse_config(load_params(args.params))
    results = run_imagenet_audit(config, log=lambda message: print(message, flush=True))
    write_results(results, args.output)
    print(f"wrote {args.output} in {results.metrics['seconds']:.1f} s")
    return 0

