"""Benchmark: our black-box attributions against Captum's Occlusion and FeatureAblation.

Same model (a 4-conv-layer CNN on 56 x 56 RGB), same images, the same number of
forward passes per image (170) and the same model batch (256 inputs). Reports the
wall time of each method, its ratio to Captum's Occlusion measured in the same run,
and the share of the wall time spent inside the model's forward
passes (the rest is mask generation, perturbation and estimation overhead).

Captum is a benchmark-only dependency (``pip install captum==0.9.0 --no-deps``).
Run: ``python bench/bench_attribution.py`` (writes ``bench/results/attribution.json``).
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch
from torch import nn

import shortcut_audit  # noqa: F401  (torchvision shim before any captum import)
from shortcut_audit import attribution as A
from common import SmallCNN, TimedModel  # noqa: E402  (bench/ is on sys.path when run as a script)

N_IMAGES, SIZE, BATCH, REPEATS = 8, 56, 256, 5
PATCH, STRIDE = 8, 4  # 13 x 13 = 169 windows -> 170 forwards per image with the clean pass
RESULTS = Path(__file__).parent / "results" / "attribution.json"


def grid_mask(size: int, cells: int) -> torch.Tensor:
    index = torch.arange(size) * cells // size
    return (index[:, None] * cells + index[None, :])[None, None]


def measure(methods: dict, timed: TimedModel) -> list[dict]:
    """Best of ``REPEATS`` per method, the methods interleaved so load changes hit all alike."""
    best: dict[str, dict] = {}
    for _ in range(REPEATS):
        for name, fn in methods.items():
            timed.seconds, timed.inputs = 0.0, 0
            start = time.perf_counter()
            fn()
            wall = time.perf_counter() - start
            if name not in best or wall < best[name]["wall_s"]:
                best[name] = {"method": name, "wall_s": wall, "forward_s": timed.seconds,
                              "forwards_per_image": timed.inputs / N_IMAGES}
    return list(best.values())


def main() -> None:
    from captum.attr import FeatureAblation, Occlusion as CaptumOcclusion

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = SmallCNN().eval()
    timed = TimedModel(model)
    images = torch.rand(N_IMAGES, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    targets = torch.arange(N_IMAGES) % 10
    windows = ((SIZE - PATCH) // STRIDE + 1) ** 2
    per_eval = BATCH // N_IMAGES

    ours = {
        "ours_occlusion": A.Occlusion(timed, patch_size=PATCH, stride=STRIDE, batch_size=BATCH, device="cpu"),
        "ours_rise": A.RISE(timed, nb_masks=windows, grid_size=7, batch_size=BATCH, device="cpu"),
        # N (d + 1) = 10 * 17 = 170 forwards at a 4 x 4 grid (total indices, no first order)
        "ours_sobol": A.SobolAttribution(timed, grid_size=4, nb_design=10, batch_size=BATCH, device="cpu"),
    }
    captum_occlusion = CaptumOcclusion(timed)
    feature_ablation = FeatureAblation(timed)
    mask = grid_mask(SIZE, 13)  # 169 features -> 170 forwards
    captum = {
        "captum_occlusion": lambda: captum_occlusion.attribute(
            images, target=targets, sliding_window_shapes=(3, PATCH, PATCH), strides=(3, STRIDE, STRIDE),
            baselines=0.0, perturbations_per_eval=per_eval),
        "captum_feature_ablation": lambda: feature_ablation.attribute(
            images, target=targets, feature_mask=mask, baselines=0.0, perturbations_per_eval=per_eval),
    }
    methods = {**captum, **{name: (lambda e=e: e(images, targets)) for name, e in ours.items()}}
    rows = measure(methods, timed)
    reference = next(r["wall_s"] for r in rows if r["method"] == "captum_occlusion")
    for r in rows:
        r["ratio_to_captum_occlusion"] = r["wall_s"] / reference
        r["forward_share"] = r["forward_s"] / r["wall_s"]
        r["overhead_s"] = r["wall_s"] - r["forward_s"]

    header = f"{'method':<26}{'forwards/img':>13}{'wall s':>9}{'forward s':>11}{'fwd share':>10}{'overhead s':>11}{'vs captum occ':>15}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(f"{r['method']:<26}{r['forwards_per_image']:>13.0f}{r['wall_s']:>9.3f}{r['forward_s']:>11.3f}"
              f"{r['forward_share']:>10.1%}{r['overhead_s']:>11.3f}{r['ratio_to_captum_occlusion']:>15.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "setup": {"images": N_IMAGES, "size": SIZE, "model_batch": BATCH, "repeats_best_of": REPEATS,
                  "threads": torch.get_num_threads(), "torch": torch.__version__,
                  "python": platform.python_version(), "reference": "captum_occlusion"},
        "rows": rows,
    }, indent=2) + "\n")


if __name__ == "__main__":
    main()
