"""DVC stage audit_factors: MoSIP factor audit of one trained model -> data/audit/<dataset>/<arch>/seed<seed>/.

Morris screening over the audited factors (global: held-out digits with uniform
factors; local: digits of the training distribution), the interventional verdicts
with their intervals on the training distribution, the interaction reading and the
Sobol pixel view (schema in docs/architecture.md); the folder appears whole or not at all.
With ``launcher.nproc_per_node`` (or ``launcher.nnodes``) above 1 the stage re-launches
itself with torchrun and the digits of every step are shared out between the processes;
the artefacts are those of one process (:mod:`shortcut_audit.distributed`).
"""

from __future__ import annotations

import argparse
import sys
import time

from shortcut_audit.audit.model_audit import AuditConfig, audit_model, write_model_audit
from shortcut_audit.audit.summary import audit_dir
from shortcut_audit.config import ParamError, get, load_params, require_choice
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.distributed import Launcher, relaunch, worker_session
from shortcut_audit.factors.registry import factor_registry
from shortcut_audit.factors.scene import digit_scene
from shortcut_audit.models.checkpoints import load_model
from shortcut_audit.runtime import seed_everything
from shortcut_audit.training.settings import check_params as check_train_params
from shortcut_audit.training.summary import model_dir


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True, help="dataset id from biased_mnist.datasets, e.g. p0.9")
    parser.add_argument("--arch", required=True, help="architecture from train.architectures, e.g. simple_cnn")
    parser.add_argument("--seed", type=int, default=None, help="training seed from train.seeds (default: the first)")
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    parser.add_argument("--data", default="data", help="folder holding mnist/ and biased_mnist/ (default: data)")
    parser.add_argument("--models", default="data/models", help="trained models folder (default: data/models)")
    parser.add_argument("--output", default="data/audit", help="audit folder (default: data/audit)")
    args = parser.parse_args(argv)

    params = load_params(args.params)
    registry = factor_registry(params)
    config = AuditConfig.from_params(params, registry)
    image_factors = registry.image_factors(config.factors)
    datasets = get(params, "biased_mnist.datasets")
    if args.dataset not in datasets:
        raise ParamError("biased_mnist.datasets", f"does not list --dataset {args.dataset!r}; listed: {datasets}")
    spec = bm.dataset_spec(params, args.dataset)
    train = check_train_params(params)
    training_seed = train.config_for(args.arch, args.seed).seed
    requested = require_choice(params, "device", ("auto", "cpu", "cuda"), default="auto")
    launcher = Launcher.from_params(params)
    launcher.check_device(requested)
    output = audit_dir(args.output, args.dataset, args.arch, training_seed)
    if launcher.wants_relaunch():
        return relaunch(__name__, argv, launcher, output)
    with worker_session(output, launcher) as shard:
        return _audit(args, config, spec, image_factors, training_seed, shard.device(requested), output, shard)


def _audit(args, config: AuditConfig, spec, image_factors, training_seed: int, device, output, shard) -> int:
    """The audit on this process's share of the digits; rank 0 writes the folder."""
    seed_everything(config.seed)
    model, model_config = load_model(model_dir(args.models, args.dataset, args.arch, training_seed), device=device)
    if model_config["image_size"] != config.canvas:
        raise ValueError(f"model image_size {model_config['image_size']} != biased_mnist.canvas {config.canvas}")
    heldout = digit_scene(
        *bm.load_split(args.data, args.dataset, "test_unbiased"),
        canvas=config.canvas,
        device=device,
        n=config.n_digits,
        seed=config.seed,
        image_factors=image_factors,
    )
    pool = digit_scene(
        *bm.load_split(args.data, args.dataset, "test_aligned"),
        canvas=config.canvas,
        device=device,
        seed=config.seed + 1,
        image_factors=image_factors,
        shuffle=True,
    )
    start = time.perf_counter()
    audit = audit_model(model, heldout, pool, config, shard)
    if audit is None:  # another rank than 0: its share is with rank 0
        return 0
    identity = {
        "dataset_id": args.dataset,
        "p": spec.p,
        "biased_factors": "+".join(spec.biased),
        "arch": args.arch,
        "seed": training_seed,
        "device": device.type,
    }
    write_model_audit(audit, identity, output)
    states = ", ".join(
        f"{r.factor} {r.state} ({r.drop:.3f} [{r.ci_low:.3f}, {r.ci_high:.3f}])" for r in audit.verdicts.itertuples()
    )
    budget = audit.interventions
    print(
        f"audit {args.dataset}/{args.arch}/seed{training_seed}: {states}; "
        f"{budget.n_items} digits x {budget.repetitions} re-draws "
        f"in {budget.rounds} round(s); background share {audit.pixel.table['background_share'].mean():.3f} "
        f"({time.perf_counter() - start:.1f} s, {audit.n_forwards} forwards on {device})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
