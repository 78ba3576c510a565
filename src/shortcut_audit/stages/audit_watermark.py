"""DVC stage audit_watermark: the ImageNet-W watermark shortcut in pretrained models -> data/watermark/.

Usage: ``python stages/audit_watermark.py [--params params.yaml] [--output data/watermark]``.
Reads the ``watermark`` section (plus ``seed``, ``device``, the user ``factors`` and,
where ``watermark`` leaves them null, ``imagenet.{weights_dir,val_dir,label_file,
synset_file}``); the tables are described in :mod:`shortcut_audit.watermark.pipeline`.
Settings, fonts, texts and factor functions are checked before any work; the output
folder appears whole or not at all.

With ``launcher.nproc_per_node`` (or ``launcher.nnodes``) above 1 the stage re-launches
itself with torchrun and the photos are shared out between the processes (round-robin;
each on ``cuda:LOCAL_RANK`` or the CPU): every process classifies its photos clean and
watermarked, runs the aspect Morris and the explainers on its share, and re-draws its
share of the verdict's pool; rank 0 gathers the per-photo results, computes everything
that needs all photos at once (bootstrap intervals, the verdict's adaptive budget, the
best ensemble, the summaries) and writes the tables of one process
(:mod:`shortcut_audit.distributed`). Every process holds all the photos (the verdict's
pool draws from them all). A failing process fails the stage with a message naming its
rank and error, and nothing is written. ``launcher`` is not among the stage's DVC params:
the results do not depend on it.

Default (offline) profile
    Every sample photo the installed packages ship, EfficientNet-Lite0/1/2 at their own
    input sizes (224/240/260, the watermark drawn at that size); the explainer
    benchmark on EfficientNet-Lite0 only, at a small equal budget. No labels: each
    photo's class is the model's clean top-1, so the verdict's drop is the top-1 change
    rate and no accuracy is reported.

Full profile (ImageNet-W protocol, to compare with the published numbers)
    The ImageNet validation folder and torchvision weights; torchvision models resize
    the shorter side to 256, centre-crop 224 and get the watermark at 224, as
    ImageNet-W does (Li et al. report for an ERM ResNet-50 an ImageNet-W accuracy gap
    of about -25 points, i.e. ``accuracy_drop`` about 0.25, and a carton gap of about
    +30 points). Params (GPU; 10 images per class keep the images in memory, 50 is the
    whole validation set)::

        device: cuda
        imagenet:
          weights_dir: /path/to/torchvision/checkpoints   # resnet50-0676ba61.pth, ...
          val_dir: /path/to/imagenet/val                  # class folders, or label_file
        watermark:
          models: [resnet50, vgg16, alexnet, efficientnet_lite0, efficientnet_lite1, efficientnet_lite2]
          images_per_class: 10
          input_size: null
          batch_size: 256
          verdict: {n_images: 1000, pool_size: 4096}
          morris: {n_images: 256, n_trajectories: 40}
          explain: {models: [resnet50], n_images: 64, forwards: 3936, sobol: {grid_size: 11},
                    morris_grid: {grid_size: 11}}

    then ``dvc repro audit_watermark`` (or ``python stages/audit_watermark.py``).
"""

from __future__ import annotations

import argparse
import sys
import time

import shortcut_audit  # noqa: F401  (installs the torchvision shim before anything else)
from shortcut_audit.config import load_params
from shortcut_audit.distributed import Launcher, relaunch, worker_session
from shortcut_audit.watermark.config import WatermarkConfig
from shortcut_audit.watermark.pipeline import run_watermark_audit, write_results


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--output", default="data/watermark", help="output folder (default: data/watermark)")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    config = WatermarkConfig.from_params(params)
    launcher = Launcher.from_params(params)
    launcher.check_device(config.device)
    if launcher.wants_relaunch():
        return relaunch(__name__, argv, launcher, args.output)
    start = time.perf_counter()
    with worker_session(args.output, launcher) as shard:
        results = run_watermark_audit(config, log=lambda message: print(message, flush=True), shard=shard)
        if results is not None:  # rank 0 (or the single process) writes the tables of all photos
            write_results(results, args.output)
            print(f"wrote {args.output} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
