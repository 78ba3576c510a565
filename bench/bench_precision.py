"""Benchmark: the compute paths of the ImageNet forward passes on the CPU (EfficientNet-Lite0).

Paths (:class:`shortcut_audit.runtime.ComputePath`): ``fp32`` (float32, default layout),
``channels_last`` (float32, channels_last weights and inputs) and ``bf16`` (bfloat16
autocast on top of channels_last). ``bf16`` is measured only where the CPU has native
bfloat16 (:func:`shortcut_audit.runtime.has_native_bf16`), or when ``--emulated-bf16``
asks for it anyway (then slow: every bfloat16 product is emulated).

``--part throughput``: images per second of each path on one batch, the paths run in
interleaved rounds (see ``common.py``), the per-round time ratio of each path to fp32
summarised by median and spread; and top-1 class and probability of each path on the
sample photos against fp32's.

``--part agreement``: the maps of every method of the default ImageNet profile
(``--params``: its photos, input size, forward budget, grids and explained output) under
each path, compared with fp32's by the Spearman rank correlation per image. A path may
be the default (``imagenet.precision``) only where every image of every method has
Spearman >= 0.99. An emulated bf16 path takes minutes per method: ``--methods`` measures
a few at a time, and the rows of earlier runs in the same setting are kept.

The ImageNet stages run with ``SHORTCUT_AUDIT_CPU_KERNELS=native`` (bfloat16 needs the
processor's own instruction set), so this script does too unless the environment says
otherwise. Run from the repository root::

    python bench/bench_precision.py                # both parts, writes bench/results/precision.json
    python bench/bench_precision.py --quick        # tiny setting: checks the script runs
"""

from __future__ import annotations

import os

os.environ.setdefault("SHORTCUT_AUDIT_CPU_KERNELS", "native")  # before torch's kernels are chosen

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import (  # noqa: E402  (bench/ is on sys.path when run as a script)
    column,
    cpu_model,
    environment,
    interleaved,
    load_average,
    output_path,
    print_table,
    ratio_summary,
    round_order,
    spread,
)

import shortcut_audit  # noqa: E402,F401  (kernel settings and torchvision shim first)
from shortcut_audit.config import load_params  # noqa: E402
from shortcut_audit.data.image_sets import load_images, sample_photo_items  # noqa: E402
from shortcut_audit.imagenet.config import parse_config  # noqa: E402
from shortcut_audit.imagenet.explain import CountingScorer, method_settings, run_method  # noqa: E402
from shortcut_audit.imagenet.pipeline import image_items  # noqa: E402
from shortcut_audit.metrics.convergence import spearman  # noqa: E402
from shortcut_audit.models.imagenet import load_imagenet_model  # noqa: E402
from shortcut_audit.runtime import ComputePath, has_native_bf16, select_compute_path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
THRESHOLD = 0.99
CPU = torch.device("cpu")


PATHS = {
    "fp32": ComputePath("cpu", "fp32", channels_last=False, bf16_autocast=False),
    "channels_last": ComputePath("cpu", "fast", channels_last=True, bf16_autocast=False),
    "bf16": ComputePath("cpu", "fast", channels_last=True, bf16_autocast=True),
}


def paths(names: list[str], emulated_bf16: bool) -> dict[str, ComputePath]:
    """fp32 (the reference, always first) and the named paths; bf16 only where native or asked for."""
    chosen = {"fp32": PATHS["fp32"]}
    for name in names:
        if name == "bf16" and not (has_native_bf16(CPU) or emulated_bf16):
            print("bf16 skipped: this CPU has no native bfloat16 (--emulated-bf16 measures it anyway)")
            continue
        chosen[name] = PATHS[name]
    return chosen


def emulated(path: ComputePath) -> bool:
    """True for a bf16 path on a CPU without native bfloat16 (measured only for its agreement)."""
    return path.bf16_autocast and not has_native_bf16(CPU)


def shown_path(path: str) -> str:
    """``path`` relative to the repository when inside it (results name no machine paths)."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else resolved.name


def scorer(model_name: str, input_size: int, path: ComputePath) -> tuple[CountingScorer, object]:
    """A fresh model on ``path`` (the scorer converts the layout in place) and its preprocessing."""
    loaded = load_imagenet_model(model_name, input_size=input_size)
    return CountingScorer(loaded.model, CPU, path=path), loaded.preprocessing


def throughput_part(args, chosen: dict[str, ComputePath]) -> dict:
    """Images/s per path in interleaved rounds, time ratios to fp32, and top-1 on the sample photos."""
    batch = torch.rand(args.batch, 3, args.input_size, args.input_size, generator=torch.Generator().manual_seed(0))
    built = {name: scorer(args.model, args.input_size, path) for name, path in chosen.items()}
    scorers = {name: s for name, (s, _) in built.items()}

    def timed(s: CountingScorer):
        def run() -> dict:
            start = time.perf_counter()
            s(batch)
            return {"wall_s": time.perf_counter() - start}

        return run

    measured = interleaved({name: timed(s) for name, s in scorers.items()}, args.rounds)
    photos = load_images(sample_photo_items(), built["fp32"][1])
    top = {}
    for name, s in scorers.items():
        probabilities = s(photos.images).softmax(dim=1)
        top[name] = probabilities.max(dim=1)
    rows = []
    for name in chosen:
        walls = column(measured[name], "wall_s")
        summary = ratio_summary(walls, column(measured["fp32"], "wall_s"))
        same_top1 = top[name].indices == top["fp32"].indices
        rows.append(
            {
                "path": name,
                "compute_path": chosen[name].name,
                "emulated": emulated(chosen[name]),
                "images_per_s": spread([args.batch / w for w in walls]),
                "time_over_fp32": summary.as_dict(),
                "speedup_median": 1.0 / summary.median,
                "top1_same_as_fp32": f"{int(same_top1.sum())}/{len(same_top1)}",
                "max_abs_top1_probability_change": float((top[name].values - top["fp32"].values).abs().max()),
            }
        )
    print(
        f"(a) throughput: {args.model} at {args.input_size} px, batch {args.batch}, {args.threads} threads, "
        f"{args.rounds} interleaved rounds"
    )
    print_table(
        [
            {
                **r,
                "ips": r["images_per_s"]["median"],
                "ips_range": f"{r['images_per_s']['min']:.1f}-{r['images_per_s']['max']:.1f}",
                "ratio": r["time_over_fp32"]["text"],
            }
            for r in rows
        ],
        [
            ("path", "path", ""),
            ("ips", "img/s", ".1f"),
            ("ips_range", "min-max", ""),
            ("ratio", "time / fp32 (min-max)", ""),
            ("top1_same_as_fp32", "top-1 = fp32", ""),
            ("max_abs_top1_probability_change", "max |dp|", ".4f"),
        ],
    )
    return {
        "setting": {
            "model": args.model,
            "input_size": args.input_size,
            "batch": args.batch,
            "rounds": args.rounds,
            "photos": photos.image_ids,
        },
        "rows": rows,
        "raw": measured,
    }


def profile_config(args):
    config = parse_config(load_params(args.params))
    if args.quick:  # the profile's methods at a tiny size and budget
        from dataclasses import replace

        budget = max(40, 2 * (config.sobol_grid**2 + 1))
        config = replace(
            config,
            input_size=32,
            max_images=1,
            forwards=budget,
            morris_trajectories=max(2, budget // (config.morris_grid**2 + 1)),
        )
    return config


def agreement_part(args, chosen: dict[str, ComputePath]) -> dict:
    """Spearman per image between each path's maps and fp32's, for every method of the profile."""
    config = profile_config(args)
    model = args.model or config.models[0]
    methods = args.methods or config.methods
    unknown = sorted(set(methods) - set(config.methods))
    if unknown:
        raise SystemExit(f"--methods: {unknown} not in the profile's methods {config.methods}")
    items = image_items(config)
    scorers = {name: scorer(model, config.input_size, path) for name, path in chosen.items()}
    batch = load_images(items, scorers["fp32"][1])
    fp32 = scorers["fp32"][0]
    targets = batch.labels if batch.has_labels else fp32(batch.images).argmax(dim=1)  # every path's targets
    ids, size = batch.image_ids, batch.images.shape[-1]
    input_scale = float(np.mean(scorers["fp32"][1].std))
    maps, seconds = {}, {}
    for index, method in enumerate(methods):  # the paths alternate their order from method to method
        for name in round_order(list(chosen), index):
            run = run_method(
                method,
                scorers[name][0],
                batch.images,
                targets,
                method_settings(method, config.forwards, size, config, input_scale=input_scale),
                config.batch_size,
                config.seed,
                config.explained_output,
            )
            maps[name, method], seconds[f"{name}/{method}"] = run.maps, run.seconds
    rows = []
    for name in list(chosen)[1:]:
        for method in methods:
            rho = spearman(maps[name, method], maps["fp32", method])
            rows.append(
                {
                    "path": name,
                    "compute_path": chosen[name].name,
                    "emulated": emulated(chosen[name]),
                    "method": method,
                    "spearman": dict(zip(ids, map(float, rho))),
                    "min_spearman": float(rho.min()),
                    "agrees": bool((rho >= THRESHOLD).all()),
                    "explain_s": seconds[f"{name}/{method}"],
                    "fp32_explain_s": seconds[f"fp32/{method}"],
                }
            )
    print(
        f"\n(b) map agreement with fp32: {model}, {len(ids)} photo(s) at {config.input_size} px, "
        f"{config.forwards} forwards per method, {config.explained_output}"
    )
    print_table(
        rows,
        [
            ("path", "path", ""),
            ("method", "method", ""),
            ("min_spearman", "min Spearman", ".4f"),
            ("agrees", f">= {THRESHOLD}", ""),
            ("explain_s", "explain s", ".1f"),
            ("fp32_explain_s", "fp32 explain s", ".1f"),
        ],
    )
    # one run per method and path, the order alternating: each method is one "round" of the ratio
    explain_time = {
        name: ratio_summary(
            [seconds[f"{name}/{m}"] for m in methods], [seconds[f"fp32/{m}"] for m in methods]
        ).as_dict()
        for name in list(chosen)[1:]
    }
    for name, summary in explain_time.items():
        print(f"explain time {name} / fp32 over the {len(methods)} methods: {summary['text']}")
    return {
        "setting": {
            "model": model,
            "params": shown_path(args.params),
            "images": ids,
            "targets": targets.tolist(),
            "input_size": config.input_size,
            "forwards": config.forwards,
            "explained_output": config.explained_output,
            "threshold": THRESHOLD,
            "quick": args.quick,
            "cpu": cpu_model(),
            "torch": torch.__version__,
        },
        "rows": rows,
        "explain_time_over_fp32": explain_time,
    }


def merged_agreement(previous: dict | None, new: dict) -> dict:
    """``new``, plus the rows of ``previous`` for other (path, method) pairs measured in the same setting
    (profile, photos, processor and torch).

    Lets a slow path (emulated bf16) be measured one method at a time.
    """
    if not previous or previous.get("setting") != new["setting"]:
        return new
    done = {(r["path"], r["method"]) for r in new["rows"]}
    kept = [r for r in previous["rows"] if (r["path"], r["method"]) not in done]
    return {**new, "rows": kept + new["rows"]}  # explain_time_over_fp32: of the latest run's methods


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("throughput", "agreement", "both"), default="both")
    parser.add_argument(
        "--model",
        default="efficientnet_lite0",
        help="throughput model; agreement: the model explained (default: the profile's first)",
    )
    parser.add_argument("--input-size", type=int, default=224, help="throughput resolution")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (7: every-round agreement p = 0.016)")
    parser.add_argument("--params", default=str(ROOT / "params.yaml"), help="the ImageNet profile of the maps")
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=("channels_last", "bf16"),
        default=["channels_last", "bf16"],
        help="paths compared with fp32",
    )
    parser.add_argument("--methods", nargs="+", help="agreement: a subset of the profile's methods")
    parser.add_argument("--emulated-bf16", action="store_true", help="measure bf16 even without native support")
    parser.add_argument("--quick", action="store_true", help="tiny setting, 2 rounds: checks the script runs")
    parser.add_argument("--output", help="default: bench/results/precision.json (quick: bench/results/quick/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.input_size, args.batch, args.rounds = 32, 4, 2
    load_before = load_average()
    torch.set_num_threads(args.threads)
    chosen = paths(args.paths, args.emulated_bf16)
    output = output_path("precision", args.quick, args.output)
    results = json.loads(output.read_text()) if output.is_file() else {}
    results["environment"] = {
        **environment(load_before),
        "native_bf16": has_native_bf16(CPU),
        "fast_path_here": select_compute_path(CPU, "fast").name,
    }
    if args.part in ("throughput", "both"):  # one entry per setting: runs at other sizes are kept
        key = f"throughput_{args.input_size}px_batch{args.batch}" + ("_emulated_bf16" if args.emulated_bf16 else "")
        before = load_average()
        results[key] = {**throughput_part(args, chosen), "load_average": {"before": before, "after": load_average()}}
    if args.part in ("agreement", "both"):
        before = load_average()
        part = {**agreement_part(args, chosen), "load_average": {"before": before, "after": load_average()}}
        results["agreement"] = merged_agreement(results.get("agreement"), part)
    results["environment"]["load_average_after"] = load_average()
    print(
        f"native bf16: {results['environment']['native_bf16']}; the fast path here: "
        f"{results['environment']['fast_path_here']}; load average before {load_before}, "
        f"after {results['environment']['load_average_after']}"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
