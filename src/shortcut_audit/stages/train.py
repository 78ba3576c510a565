"""DVC stage train: one architecture, one Biased-MNIST dataset, one seed -> data/models/<dataset>/<arch>/seed<seed>/.

Writes ``model.pt`` (state dict), ``config.json``, ``metrics.json`` (schema in
docs/architecture.md) and ``curve.csv`` (epoch, train_loss, train_acc, val_acc);
the folder appears whole or not at all.
"""

from __future__ import annotations

import argparse

import torch

from shortcut_audit import schema
from shortcut_audit.config import ParamError, load_params
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.io import atomic_dir, write_json
from shortcut_audit.models.checkpoints import save_model
from shortcut_audit.models.registry import build
from shortcut_audit.runtime import resolve_device, seed_everything
from shortcut_audit.training.evaluate import model_metrics
from shortcut_audit.training.loop import train_model
from shortcut_audit.training.settings import check_params
from shortcut_audit.training.splits import RenderedSplit
from shortcut_audit.training.summary import model_dir

SPLITS = ("train", "val", "test_unbiased", "test_aligned")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="dataset id from biased_mnist.datasets, e.g. p0.9")
    parser.add_argument("--arch", required=True, help="architecture from train.architectures, e.g. simple_cnn")
    parser.add_argument("--seed", type=int, default=None, help="training seed from train.seeds (default: the first)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--data", default="data", help="folder holding mnist/ and biased_mnist/ (default: data)")
    parser.add_argument("--output", default="data/models", help="models folder (default: data/models)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    data_config = bm.check_params(params)
    train_params = check_params(params)
    if args.dataset not in data_config.datasets:
        raise ParamError(
            "biased_mnist.datasets",
            f"does not list --dataset {args.dataset!r}; listed: {', '.join(data_config.datasets)}",
        )
    if args.arch not in train_params.architectures:
        raise ParamError(
            "train.architectures",
            f"does not list --arch {args.arch!r}; listed: {', '.join(train_params.architectures)}",
        )
    config = train_params.config_for(args.arch, args.seed)
    spec = data_config.specs[data_config.datasets.index(args.dataset)]
    device = resolve_device(train_params.device)
    if train_params.num_threads is not None:
        # CPU results depend on the thread count (reduction order); fixing it keeps them reproducible.
        torch.set_num_threads(train_params.num_threads)

    splits = {
        name: RenderedSplit(*bm.load_split(args.data, args.dataset, name), canvas=data_config.canvas, device=device)
        for name in SPLITS
    }
    seed_everything(config.seed)
    model = build(args.arch, num_classes=10, in_channels=3, image_size=data_config.canvas).to(device)
    name = f"{args.dataset}/{args.arch}/seed{config.seed}"
    result = train_model(model, splits["train"], splits["val"], config, progress=not args.no_progress, description=name)
    # The last epoch's validation pass already scored the final weights.
    metrics = model_metrics(
        model,
        splits,
        dataset_id=args.dataset,
        spec=spec,
        arch=args.arch,
        seed=config.seed,
        result=result,
        batch_size=config.eval_batch_size,
        val_acc=result.history[-1].val_acc,
    )

    model_config = {
        "arch": args.arch,
        "num_classes": 10,
        "in_channels": 3,
        "image_size": data_config.canvas,
        "dataset_id": args.dataset,
        "seed": config.seed,
    }
    with atomic_dir(model_dir(args.output, args.dataset, args.arch, config.seed)) as tmp:
        save_model(model, model_config, tmp)
        write_json(metrics, tmp / "metrics.json")
        schema.write_into("models/curve", result.curve(), tmp)
    print(
        f"train {name}: val {metrics['val_acc']:.3f}, unbiased {metrics['unbiased_acc']:.3f}, "
        f"aligned {metrics['aligned_acc']:.3f}, gap {metrics['aligned_conflicting_gap']:.3f} "
        f"({result.seconds:.1f} s on {result.device})"
    )
    return 0
