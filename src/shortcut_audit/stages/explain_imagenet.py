"""DVC stage: explain ImageNet classifiers and score the explanations -> data/imagenet/.

Usage: ``python stages/explain_imagenet.py [--output data/imagenet] [--params params.yaml]``.
The tables are described in :mod:`shortcut_audit.imagenet.pipeline`. With
``launcher.nproc_per_node`` (or ``launcher.nnodes``) above 1 the stage re-launches itself
with torchrun and the images are shared out between the processes; the tables are those
of one process (:mod:`shortcut_audit.distributed`).
"""

from __future__ import annotations

import argparse
import sys

from shortcut_audit.config import load_params
from shortcut_audit.distributed import Launcher, relaunch, worker_session
from shortcut_audit.imagenet.config import parse_config
from shortcut_audit.imagenet.pipeline import run_imagenet_audit, write_results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="data/imagenet")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = parse_config(params)
    launcher = Launcher.from_params(params)
    launcher.check_device(config.device)
    if launcher.wants_relaunch():
        return relaunch(__name__, argv, launcher, args.output)
    with worker_session(args.output, launcher) as shard:
        results = run_imagenet_audit(config, log=lambda message: print(message, flush=True), shard=shard)
        if results is not None:  # rank 0 (or the single process) writes the merged tables
            write_results(results, args.output)
            print(f"wrote {args.output} in {results.metrics['seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
