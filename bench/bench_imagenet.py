"""ImageNet must-show measurements on EfficientNet-Lite0.

``--part convergence``: Spearman-to-converged of Sobol vs RISE (Fel et al. 2021, Fig. 2).
``--part deletion``: Deletion AUC of Sobol total indices vs RISE and Occlusion at an
equal number of forward passes per image (Fel et al. 2021, Table 1 protocol).

Each part updates its own entry of ``bench/results/imagenet.json`` (suffixed by the
explained output, ``--output-kind logit|probability``). These are measurements of
quality (rank correlations, AUCs: deterministic for a seed); the wall times they print
come from one run and compare nothing. ``--quick`` runs a tiny setting (pass
``--output`` elsewhere to keep the recorded results).

Convergence: for each method a converged map is computed with ``--reference`` forward passes
(independent seed), then the method is re-run at each budget and the Spearman rank
correlation with its own converged map is measured. Also reports the wall time,
the share of it spent in forward passes, and the ratio Sobol / RISE measured in
this run. Writes ``bench/results/imagenet.json``.

The paper's setting (224 px, 7 x 7 masks for Sobol and RISE in the convergence study and
11 x 11 Sobol masks for deletion, 10,000-forward reference, many images) is far beyond a
2-core CPU; the reduced setting actually used is recorded
in the JSON. Run from the repository root::

    python bench/bench_imagenet.py --part convergence --images 1 --input-size 96 --budgets 250 1000 --reference 4000
    python bench/bench_imagenet.py --part deletion --images 2 --input-size 96 --deletion-forwards 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from common import output_path  # noqa: E402  (bench/ is on sys.path when run as a script)

from shortcut_audit.data.image_sets import load_images, sample_photo_items
from shortcut_audit.imagenet.config import parse_config
from shortcut_audit.imagenet.convergence import convergence_rows
from shortcut_audit.imagenet.explain import CountingScorer, method_settings, predicted_classes, run_method
from shortcut_audit.imagenet.fidelity import FidelityProtocol, fidelity_scores
from shortcut_audit.models.imagenet import load_imagenet_model
from shortcut_audit.runtime import PRECISIONS, resolve_device


def bench_config(sobol_grid: int, rise_grid: int, convergence_grid: int, budgets: list[int], reference: int):
    params = {
        "imagenet": {
            "models": ["efficientnet_lite0"],
            "methods": ["sobol", "rise"],
            "forwards": max(16, 2 * (sobol_grid**2 + 1)),
            "sobol": {"grid_size": sobol_grid},
            "rise": {"grid_size": rise_grid},
            "convergence": {"grid_size": convergence_grid, "budgets": budgets, "reference_forwards": reference},
        }
    }
    return parse_config(params)


def _group(rows: list[dict], keys: tuple[str, ...]) -> dict:
    groups: dict = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def deletion_part(args, config, scorer, batch, targets) -> dict:
    """Deletion/insertion AUC of Sobol, RISE and Occlusion at ``--deletion-forwards`` per image."""
    size = batch.images.shape[-1]
    protocol = FidelityProtocol("rise", "zero", "blur", args.deletion_steps)  # the RISE paper's baselines
    table = []
    start = time.perf_counter()
    for method in ("sobol", "rise", "occlusion"):
        settings = method_settings(method, args.deletion_forwards, size, config)
        run = run_method(
            method, scorer, batch.images, targets, settings, args.batch_size, seed=0, output=args.output_kind
        )
        scores, _ = fidelity_scores(scorer, batch.images, run.maps, targets, protocol, args.batch_size)
        table.append(
            {
                "method": method,
                "forwards": run.forwards_per_image,
                "settings": settings,
                "deletion_auc": float(scores["deletion_auc"].mean()),
                "insertion_auc": float(scores["insertion_auc"].mean()),
                "deletion_auc_per_image": scores["deletion_auc"].tolist(),
            }
        )
    wall = time.perf_counter() - start
    print(f"{'method':10} {'forwards':>9} {'deletion':>9} {'insertion':>10}")
    for r in table:
        print(f"{r['method']:10} {r['forwards']:>9.0f} {r['deletion_auc']:>9.3f} {r['insertion_auc']:>10.3f}")
    by_method = {r["method"]: r["deletion_auc"] for r in table}
    return {
        "setting": {
            "model": args.model,
            "images": batch.image_ids,
            "targets": targets.tolist(),
            "input_size": args.input_size,
            "forwards_per_image": args.deletion_forwards,
            "steps": args.deletion_steps,
            "sobol_grid": args.sobol_grid,
            "deletion_baseline": "zero",
            "insertion_baseline": "blur",
            "threads": args.threads,
            "explained_output": args.output_kind,
            "compute_path": scorer.path.name,
            "quick": args.quick,
        },
        "results": table,
        "sobol_over_rise": by_method["sobol"] / by_method["rise"],
        "sobol_over_occlusion": by_method["sobol"] / by_method["occlusion"],
        "sobol_best_deletion": by_method["sobol"] < min(by_method["rise"], by_method["occlusion"]),
        "wall_seconds": wall,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("convergence", "deletion"), default="convergence")
    parser.add_argument("--deletion-forwards", type=int, default=1000)
    parser.add_argument("--deletion-steps", type=int, default=32)
    parser.add_argument("--model", default="efficientnet_lite0")
    parser.add_argument("--images", type=int, default=1)
    parser.add_argument("--input-size", type=int, default=96)
    parser.add_argument("--budgets", type=int, nargs="+", default=[500, 1000])
    parser.add_argument("--reference", type=int, default=4000)
    parser.add_argument("--sobol-grid", type=int, default=11)
    parser.add_argument("--rise-grid", type=int, default=7)
    parser.add_argument(
        "--convergence-grid", type=int, default=7, help="mask grid of Sobol and RISE in the convergence part (paper: 7)"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--output-kind", choices=("logit", "probability"), default="logit", help="model output the methods explain"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fast",
        help="compute path of the forward passes (see shortcut_audit.runtime)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny setting (32 px, small budgets) that checks the script runs"
    )
    parser.add_argument("--output", help="default: bench/results/imagenet.json (quick: bench/results/quick/)")
    args = parser.parse_args(argv)
    if args.quick:
        args.input_size, args.budgets, args.reference, args.deletion_forwards, args.deletion_steps = (
            64,
            [20, 40],
            80,
            40,
            4,
        )
        args.sobol_grid, args.convergence_grid, args.batch_size = 3, 2, 64
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    config = bench_config(args.sobol_grid, args.rise_grid, args.convergence_grid, args.budgets, args.reference)
    loaded = load_imagenet_model(args.model, input_size=args.input_size, device=device)
    batch = load_images(sample_photo_items(max_images=args.images), loaded.preprocessing)
    scorer = CountingScorer(loaded.model, device, precision=args.precision)
    targets, _ = predicted_classes(scorer, batch.images, args.batch_size)
    scorer.total_inputs, scorer.total_forward_seconds = 0, 0.0
    output = output_path("imagenet", args.quick, args.output)
    previous = json.loads(output.read_text()) if output.is_file() else {}
    if args.part == "deletion":
        previous[f"deletion_{args.output_kind}"] = deletion_part(args, config, scorer, batch, targets)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(previous, indent=2) + "\n")
        print(f"wrote {output}")
        return 0

    start = time.perf_counter()
    rows = convergence_rows(
        args.model,
        scorer,
        batch.images,
        targets,
        batch.image_ids,
        ["sobol", "rise"],
        args.budgets,
        args.reference,
        config,
        args.batch_size,
        seed=0,
        output=args.output_kind,
        reference_kinds=("independent", "nested"),
    )
    wall = time.perf_counter() - start

    table = []
    for (method, kind, budget), group in _group(rows, ("method", "reference_kind", "budget")).items():
        table.append(
            {
                "method": method,
                "reference_kind": kind,
                "budget": budget,
                "forwards": group[0]["forwards"],
                "reference_forwards": group[0]["reference_forwards"],
                "spearman": sum(r["spearman"] for r in group) / len(group),
            }
        )
    top = max(args.budgets)
    at_top = {(r["method"], r["reference_kind"]): r["spearman"] for r in table if r["budget"] == top}

    print(f"{'method':8} {'reference':>12} {'budget':>7} {'forwards':>9} {'spearman':>9}")
    for r in table:
        print(f"{r['method']:8} {r['reference_kind']:>12} {r['budget']:>7} {r['forwards']:>9} {r['spearman']:>9.3f}")
    ratios = {kind: at_top[("sobol", kind)] / at_top[("rise", kind)] for kind in ("independent", "nested")}
    for kind, ratio in ratios.items():
        print(
            f"Sobol/RISE Spearman ratio at {top} forwards ({kind} reference): {ratio:.2f}  "
            f"(paper: 0.80 / 0.65 = {0.8 / 0.65:.2f})"
        )
    print(
        f"wall {wall:.1f} s, forward passes {scorer.total_forward_seconds / wall:.0%} of it, "
        f"{scorer.total_inputs / wall:.1f} images/s"
    )

    previous[f"convergence_{args.output_kind}"] = {
        "benchmark": "spearman_to_converged",
        "reference_paper": "Fel et al. 2021, Fig. 2: Sobol 0.80 vs RISE 0.65 at 1,000 forwards",
        "setting": {
            "model": args.model,
            "images": batch.image_ids,
            "targets": targets.tolist(),
            "input_size": args.input_size,
            "budgets": args.budgets,
            "reference_forwards": args.reference,
            "convergence_grid": args.convergence_grid,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "device": str(device),
            "explained_output": args.output_kind,
            "compute_path": scorer.path.name,
            "quick": args.quick,
            "cpu": platform.processor() or platform.machine(),
            "note": "reduced from the paper (224 px, 10,000-forward reference, many images) to fit a 2-core CPU",
        },
        "results": table,
        "sobol_over_rise_at_max_budget": ratios,
        "sobol_at_least_rise": {kind: at_top[("sobol", kind)] >= at_top[("rise", kind)] for kind in ratios},
        "wall_seconds": wall,
        "forward_passes": scorer.total_inputs,
        "forward_share": scorer.total_forward_seconds / wall,
        "images_per_second": scorer.total_inputs / wall,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(previous, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
