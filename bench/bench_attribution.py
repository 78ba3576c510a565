"""Benchmark: our black-box attributions against Captum's Occlusion and FeatureAblation.

Same model (a 4-conv-layer CNN on 56 x 56 RGB), same images, the same number of
forward passes per image (170) and the same model batch (256 inputs). The five
contenders run once per round, in alternating order, for ``--rounds`` rounds (see
``common.py``); each of ours is compared with each Captum method by the per-round
ratio of wall times (median, min-max, IQR; "on par" unless every round agrees).
Also reported: the share of the wall time spent inside the model's forward passes
(the rest is mask generation, perturbation and estimation overhead), that overhead per
forward pass in milliseconds, and its per-round ratio to Captum's.

Captum is a benchmark-only dependency (``pip install captum==0.9.0 --no-deps``).
Run: ``python bench/bench_attribution.py`` (writes ``bench/results/attribution.json``);
``--quick`` runs a tiny setting to check that the script works.
"""

from __future__ import annotations

import argparse
import json

import torch
from common import (  # noqa: E402  (bench/ is on sys.path when run as a script)
    MIN_ROUNDS,
    SmallCNN,
    TimedModel,
    column,
    environment,
    interleaved,
    load_average,
    output_path,
    print_table,
    ratio_summary,
    spread,
    timed_call,
)

import shortcut_audit  # noqa: F401  (kernel pins and torchvision shim before any captum import)
from shortcut_audit import attribution as A

OURS = ("ours_occlusion", "ours_rise", "ours_sobol")
REFERENCES = ("captum_occlusion", "captum_feature_ablation")


def grid_mask(size: int, cells: int) -> torch.Tensor:
    index = torch.arange(size) * cells // size
    return (index[:, None] * cells + index[None, :])[None, None]


def contenders(images, targets, timed, batch, patch, stride, sobol_grid, sobol_designs) -> dict:
    """The five methods at the same forward count per image: (windows + 1) each."""
    from captum.attr import FeatureAblation
    from captum.attr import Occlusion as CaptumOcclusion

    size, n = images.shape[-1], images.shape[0]
    per_axis = (size - patch) // stride + 1
    per_eval = max(1, batch // n)
    ours = {
        "ours_occlusion": A.Occlusion(timed, patch_size=patch, stride=stride, batch_size=batch, device="cpu"),
        "ours_rise": A.RISE(timed, nb_masks=per_axis**2, grid_size=7, batch_size=batch, device="cpu"),
        # total indices only: N (d + 1) forwards
        "ours_sobol": A.SobolAttribution(
            timed, grid_size=sobol_grid, nb_design=sobol_designs, batch_size=batch, device="cpu"
        ),
    }
    occlusion, ablation = CaptumOcclusion(timed), FeatureAblation(timed)
    mask = grid_mask(size, per_axis)  # per_axis^2 features -> the same forwards as the windows
    runs = {
        "captum_occlusion": lambda: occlusion.attribute(
            images,
            target=targets,
            sliding_window_shapes=(3, patch, patch),
            strides=(3, stride, stride),
            baselines=0.0,
            perturbations_per_eval=per_eval,
        ),
        "captum_feature_ablation": lambda: ablation.attribute(
            images, target=targets, feature_mask=mask, baselines=0.0, perturbations_per_eval=per_eval
        ),
        **{name: (lambda e=e: e(images, targets)) for name, e in ours.items()},
    }
    return {name: timed_call(fn, timed) for name, fn in runs.items()}


def summarise(measurements: dict[str, list[dict]], n_images: int) -> tuple[list[dict], list[dict]]:
    """Per-method rows (time, forwards, forward share, overhead per forward) and per-pair ratios."""
    methods = []
    for name, runs in measurements.items():
        walls, forwards = column(runs, "wall_s"), column(runs, "forward_s")
        methods.append(
            {
                "method": name,
                "forwards_per_image": runs[0]["inputs"] / n_images,
                "wall_s": spread(walls),
                "forward_share": spread([f / w for w, f in zip(walls, forwards)]),
                "overhead_ms_per_forward": spread(overhead_per_forward(runs)),
            }
        )
    comparisons = []
    for ours in OURS:
        for reference in REFERENCES:
            summary = ratio_summary(column(measurements[ours], "wall_s"), column(measurements[reference], "wall_s"))
            overhead = ratio_summary(
                overhead_per_forward(measurements[ours]), overhead_per_forward(measurements[reference])
            )
            comparisons.append(
                {"ours": ours, "reference": reference, **summary.as_dict(), "overhead_per_forward": overhead.as_dict()}
            )
    return methods, comparisons


def overhead_per_forward(runs: list[dict]) -> list[float]:
    """Wall time outside the model per forward pass, in ms, per round."""
    return [1000 * (r["wall_s"] - r["forward_s"]) / r["inputs"] for r in runs]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (7: every-round agreement p = 0.016)")
    parser.add_argument("--quick", action="store_true", help="tiny setting, 2 rounds: checks the script runs")
    parser.add_argument("--output", help="default: bench/results/attribution.json (quick: bench/results/quick/)")
    args = parser.parse_args(argv)
    if args.quick:
        n_images, size, batch, patch, stride, rounds, sobol = 2, 24, 32, 8, 8, 2, (2, 2)  # 10 forwards each
    else:  # 13 x 13 = 169 windows + the clean pass = 170 forwards; Sobol 10 x (16 + 1) = 170
        n_images, size, batch, patch, stride, rounds, sobol = 8, 56, 256, 8, 4, args.rounds, (4, 10)
    load_before = load_average()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    timed = TimedModel(SmallCNN().eval())
    images = torch.rand(n_images, 3, size, size, generator=torch.Generator().manual_seed(0))
    targets = torch.arange(n_images) % 10
    measurements = interleaved(contenders(images, targets, timed, batch, patch, stride, *sobol), rounds)
    methods, comparisons = summarise(measurements, n_images)

    print(
        f"{rounds} interleaved rounds, {n_images} images of {size} px, model batch {batch}, 1 thread; "
        f"load average before {load_before}"
    )
    print_table(
        [
            {
                "method": m["method"],
                "forwards": m["forwards_per_image"],
                "wall": m["wall_s"]["median"],
                "spread": f"{m['wall_s']['min']:.3f}-{m['wall_s']['max']:.3f}",
                "share": m["forward_share"]["median"],
                "overhead": m["overhead_ms_per_forward"]["median"],
            }
            for m in methods
        ],
        [
            ("method", "method", ""),
            ("forwards", "forwards/img", ".0f"),
            ("wall", "median s", ".3f"),
            ("spread", "min-max s", ""),
            ("share", "in forwards", ".1%"),
            ("overhead", "overhead ms/fwd", ".3f"),
        ],
    )
    print()
    print_table(
        [{**c, "overhead": c["overhead_per_forward"]["text"]} for c in comparisons],
        [
            ("ours", "ours", ""),
            ("reference", "reference", ""),
            ("median", "time ratio", ".2f"),
            ("low", "min", ".2f"),
            ("high", "max", ".2f"),
            ("q1", "q1", ".2f"),
            ("q3", "q3", ".2f"),
            ("verdict", "verdict", ""),
            ("overhead", "overhead/fwd ratio (min-max)", ""),
        ],
    )
    output = output_path("attribution", args.quick, args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "setup": {
                    "images": n_images,
                    "size": size,
                    "model_batch": batch,
                    "rounds": rounds,
                    "warmup_rounds": 1,
                    "order": "alternating (listed, reversed)",
                    "ratio": "ours wall time / reference wall time, per round",
                    "verdict_rule": "faster/slower only when min-max of the ratios excludes 1 "
                    f"and rounds >= {MIN_ROUNDS}",
                    "quick": args.quick,
                    **environment(load_before),
                },
                "methods": methods,
                "comparisons": comparisons,
                "raw": measurements,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
