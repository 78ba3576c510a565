"""A small, schema-exact tree of pipeline artefacts for rendering the report in tests.

The numbers follow a simple, known model of reliance: a factor's effect grows with
the correlation level of the data it was biased in, and the ``mlp`` leans on it more
than the ``simple_cnn``. One cell (mlp, p0.5, position) is inconclusive, one
(simple_cnn, p0.5, digit colour) is where the Morris screen disagrees with the
verdict, and one (mlp, p0.9, position) changes state with the training seed. A
hostile string sits in params, a gate detail, a validation message and an ImageNet
table to prove that everything is escaped. Tables are written through
:mod:`shortcut_audit.schema`, so they are exactly what the stages write.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from shortcut_audit import schema

HOSTILE = "<script>alert(1)</script>"
FACTORS = ("digit_color", "bg_color", "position")
DATASETS = {
    "p0.1": (0.1, FACTORS),
    "p0.5": (0.5, FACTORS),
    "p0.9": (0.9, FACTORS),
    "bg_color-p0.9": (0.9, ("bg_color",)),
}
ARCHS = {"simple_cnn": (1.0, 25_000), "mlp": (1.6, 410_000)}
SEEDS = (0, 1)
FACTOR_WEIGHT = {"digit_color": 1.0, "bg_color": 0.8, "position": 0.25}
INCONCLUSIVE_CELL = ("p0.5", "mlp", "position")
SCREEN_DISAGREES = ("p0.5", "simple_cnn", "digit_color")
SEED_DEPENDENT = ("p0.9", "mlp", "position")
SUITES = ("biased_mnist", "training", "sensitivity", "findings")
DROP_THRESHOLD = 0.05
SCREEN_THRESHOLD = 0.02

PARAMS = {
    "seed": 0,
    "device": "auto",
    "biased_mnist": {
        "datasets": list(DATASETS),
        "biased_factors": list(FACTORS),
        "canvas": 28,
        "n_train": 600,
        "n_val": 100,
        "n_test": 100,
    },
    "train": {
        "architectures": list(ARCHS),
        "epochs": 1,
        "batch_size": 64,
        "lr": 0.002,
        "weight_decay": 0.0,
        "seeds": list(SEEDS),
    },
    "audit": {
        "n_digits": 8,
        "morris": {"n_trajectories": 4, "levels": 20, "design": "trajectory", "sampling": ["global", "local"]},
        "interventions": {"n_digits": 32, "repetitions": 3, "max_doublings": 2, "n_bootstrap": 200},
        "verdicts": {"drop_threshold": DROP_THRESHOLD},
        "interaction": {"min_mu_star": 0.1},
        "screen": {"mu_star_threshold": SCREEN_THRESHOLD},
        "pixel_view": {"n_images": 3, "grid_size": 7, "nb_design": 4},
    },
    "imagenet": {
        "models": ["efficientnet_lite0"],
        "weights_dir": None,
        "val_dir": None,
        "classes": [HOSTILE],
        "images_per_class": 20,
        "max_images": 2,
        "methods": ["sobol", "rise", "occlusion"],
        "forwards": 100,
    },
    "validation": {"tolerance": 0.02, "min_morris_auroc": 0.85},
    "gate": {
        "candidates": [{"dataset_id": "p0.1", "arch": "simple_cnn"}],
        "max_mu_star_share": {"digit_color": 0.5, "bg_color": 0.5, "position": 0.6},
        "min_unbiased_accuracy": 0.8,
        "max_aligned_conflicting_gap": 0.1,
        "require_all_suites": True,
        "regression_tolerance": 0.05,
    },
}


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, lineterminator="\n")


def _write_json(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _reliance(dataset_id: str, arch: str, factor: str) -> float:
    """Effect size of a factor on a model: zero unless the factor was biased."""
    p, biased = DATASETS[dataset_id]
    if factor not in biased:
        return 0.0
    return max(0.0, p - 0.2) * ARCHS[arch][0] * FACTOR_WEIGHT[factor] * 0.4


def _models():
    for dataset_id, (p, biased) in DATASETS.items():
        for arch in ARCHS:
            for seed in SEEDS:
                yield {"dataset_id": dataset_id, "p": p, "biased_factors": "+".join(biased), "arch": arch, "seed": seed}


def biased_mnist_summary() -> pd.DataFrame:
    rows = []
    for dataset_id, (p, biased) in DATASETS.items():
        for split, n in (("train", 600), ("val", 100), ("test_unbiased", 100), ("test_aligned", 100)):
            for factor in FACTORS:
                is_biased = factor in biased
                target = p if is_biased and split != "test_unbiased" else 0.1
                rows.append(
                    {
                        "dataset_id": dataset_id,
                        "p": p,
                        "split": split,
                        "factor": factor,
                        "biased": is_biased,
                        "n": n,
                        "linked_rate": round(target + 0.004, 4),
                        "expected_linked_rate": target,
                    }
                )
    return pd.DataFrame(rows)


def train_models() -> pd.DataFrame:
    rows = []
    for model in _models():
        gaps = {f: _reliance(model["dataset_id"], model["arch"], f) for f in FACTORS}
        biased = DATASETS[model["dataset_id"]][1]
        conflicting = {f"conflicting_acc_{f}": round(0.97 - gaps[f], 4) for f in FACTORS}
        mean_conf = np.mean([conflicting[f"conflicting_acc_{f}"] for f in biased])
        rows.append(
            {
                **model,
                "n_params": ARCHS[model["arch"]][1],
                "val_acc": 0.97,
                "unbiased_acc": round(0.97 - sum(gaps.values()) / 3, 4),
                "aligned_acc": 0.98,
                **conflicting,
                "aligned_conflicting_gap": round(0.98 - mean_conf, 4),
                "epochs": 1,
                "train_seconds": 3.5,
                "device": "cpu",
                "cpu_kernels": "portable: ATen AVX2",
            }
        )
    return pd.DataFrame(rows)


def train_curves() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "dataset_id": m["dataset_id"],
                "arch": m["arch"],
                "seed": m["seed"],
                "epoch": 1,
                "train_loss": 0.3,
                "train_acc": 0.9,
                "val_acc": 0.97,
            }
            for m in _models()
        ]
    )


def morris_table() -> pd.DataFrame:
    rows = []
    for model in _models():
        for sampling, spread in (("global", 1.0), ("local", 1.5)):
            for output, scale in (("normalised_mean", 1.0), ("true_class_prob", 0.8)):
                effects = {
                    f: spread * scale * (_reliance(model["dataset_id"], model["arch"], f) + 0.002) for f in FACTORS
                }
                if (model["dataset_id"], model["arch"], "digit_color") == SCREEN_DISAGREES:
                    effects["digit_color"] = spread * scale * 0.001
                total = sum(effects.values())
                for factor, mu_star in effects.items():
                    sigma = mu_star * (0.6 if model["arch"] == "mlp" else 0.3)
                    rows.append(
                        {
                            **model,
                            "sampling": sampling,
                            "factor": factor,
                            "output": output,
                            "mu": round(-0.9 * mu_star, 6),
                            "mu_star": round(mu_star, 6),
                            "sigma": round(sigma, 6),
                            "mu_star_conf": round(0.1 * mu_star, 6),
                            "mu_star_share": round(mu_star / total, 6),
                            "sigma_over_mu_star": round(sigma / mu_star, 6),
                        }
                    )
    return pd.DataFrame(rows)


def _state(low: float, high: float) -> str:
    return "relied_on" if low >= DROP_THRESHOLD else "not_relied_on" if high < DROP_THRESHOLD else "inconclusive"


def verdict_table(morris: pd.DataFrame) -> pd.DataFrame:
    """Interventional verdicts (the global, true-class mu* beside them) with the screen's verdict."""
    main = morris[(morris["output"] == "true_class_prob") & (morris["sampling"] == "global")]
    rows = []
    for r in main.itertuples(index=False):
        drop = _reliance(r.dataset_id, r.arch, r.factor) * 0.9
        cell = (r.dataset_id, r.arch, r.factor)
        if cell == INCONCLUSIVE_CELL:
            drop = DROP_THRESHOLD
        if cell == SEED_DEPENDENT and r.seed == 1:
            drop = 0.0
        low, high = max(0.0, drop - 0.01), drop + 0.01
        state = _state(low, high)
        screened = bool(r.mu_star >= SCREEN_THRESHOLD)
        rows.append(
            {
                "dataset_id": r.dataset_id,
                "p": r.p,
                "biased_factors": r.biased_factors,
                "arch": r.arch,
                "seed": r.seed,
                "factor": r.factor,
                "state": state,
                "drop": round(drop, 4),
                "ci_low": round(low, 4),
                "ci_high": round(high, 4),
                "first_round_state": "inconclusive" if cell == INCONCLUSIVE_CELL else state,
                "single_drop": round(0.8 * drop, 4),
                "single_ci_low": round(max(0.0, 0.8 * drop - 0.01), 4),
                "single_ci_high": round(0.8 * drop + 0.01, 4),
                "sampling": "global",
                "mu_star": r.mu_star,
                "sigma": r.sigma,
                "mu_star_share": r.mu_star_share,
                "n_items": 128 if cell == INCONCLUSIVE_CELL else 32,
                "repetitions": 3,
                "screen_relied_on": screened,
                "screen_agreement": "inconclusive"
                if state == "inconclusive"
                else ("agree" if screened == (state == "relied_on") else "disagree"),
            }
        )
    return pd.DataFrame(rows)


def intervention_table() -> pd.DataFrame:
    curves = []
    for model in _models():
        drops = {f: _reliance(model["dataset_id"], model["arch"], f) * 0.9 for f in FACTORS}
        ranked = sorted(FACTORS, key=lambda f: -drops[f])
        for sampling in ("global", "local"):
            for order, sequence in (("most_to_least", ranked), ("least_to_most", ranked[::-1])):
                accuracy = 1.0
                for step, factor in enumerate(["", *sequence]):
                    if factor:
                        accuracy = max(0.1, accuracy - drops[factor])
                    curves.append(
                        {
                            **model,
                            "sampling": sampling,
                            "order": order,
                            "step": step,
                            "factor": factor,
                            "accuracy": round(accuracy, 4),
                            "ci_low": round(max(0.0, accuracy - 0.03), 4),
                            "ci_high": round(min(1.0, accuracy + 0.03), 4),
                        }
                    )
    return pd.DataFrame(curves)


def order_check_table() -> pd.DataFrame:
    rows = []
    for model in _models():
        area = round(sum(_reliance(model["dataset_id"], model["arch"], f) for f in FACTORS) / 3, 4)
        for sampling in ("global", "local"):
            rows.append(
                {
                    **model,
                    "sampling": sampling,
                    "order": ">".join(FACTORS),
                    "area": area,
                    "ci_low": round(area - 0.01, 4),
                    "ci_high": round(area + 0.01, 4),
                    "holds": True,
                }
            )
    return pd.DataFrame(rows)


def pixel_view_table() -> pd.DataFrame:
    rows = []
    for model in _models():
        for image in range(3):
            share = 0.2 + _reliance(model["dataset_id"], model["arch"], "bg_color") + 0.01 * image
            rows.append(
                {
                    **model,
                    "image": image,
                    "label": image,
                    "background_share": round(min(share, 0.95), 4),
                    "background_pixel_fraction": 0.8,
                }
            )
    return pd.DataFrame(rows)


def interaction_table() -> pd.DataFrame:
    rows = []
    for model in _models():
        ratio = 0.6 if model["arch"] == "mlp" else 0.3
        reading = "interaction" if model["arch"] == "mlp" and model["p"] > 0.3 else "non_linearity"
        for factor in FACTORS:
            effect = _reliance(model["dataset_id"], model["arch"], factor)
            rows.append(
                {
                    **model,
                    "factor": factor,
                    "mu_star": round(effect, 4),
                    "sigma": round(ratio * effect, 4),
                    "sigma_over_mu_star": ratio if effect else 0.0,
                    "drop_alone": round(0.5 * effect, 4),
                    "drop_last": round(0.4 * effect, 4),
                    "order_gap": round(0.1 * effect, 4),
                    "gap_ci_low": round(0.1 * effect - 0.01, 4),
                    "gap_ci_high": round(0.1 * effect + 0.01, 4),
                    "order_dependent": reading == "interaction" and effect > 0.1,
                    "reading": reading,
                }
            )
    return pd.DataFrame(rows)


def audit_models_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for model in _models():
        mine = verdicts[
            (verdicts["dataset_id"] == model["dataset_id"])
            & (verdicts["arch"] == model["arch"])
            & (verdicts["seed"] == model["seed"])
        ]
        total = round(float(mine["drop"].sum()), 4)
        reading = "interaction" if model["arch"] == "mlp" and model["p"] > 0.3 else "non_linearity"
        rows.append(
            {
                **model,
                "total_drop": total,
                "total_ci_low": round(max(0.0, total - 0.02), 4),
                "total_ci_high": round(total + 0.02, 4),
                "n_relied_on": int((mine["state"] == "relied_on").sum()),
                "n_inconclusive": int((mine["state"] == "inconclusive").sum()),
                "relied_on": "+".join(mine.loc[mine["state"] == "relied_on", "factor"]),
                "rounds": 1,
                "n_items": 32,
                "repetitions": 3,
                "n_correct": 90,
                "interaction_reading": reading,
                "background_share": 0.5,
            }
        )
    return pd.DataFrame(rows)


def seeds_table(verdicts: pd.DataFrame) -> pd.DataFrame:
    from shortcut_audit.audit.summary import seed_table

    return seed_table(verdicts)


def screen_document(verdicts: pd.DataFrame) -> dict:
    conclusive = verdicts[verdicts["state"] != "inconclusive"]
    agree = float((conclusive["screen_agreement"] == "agree").mean())
    return {
        "n_cells": len(verdicts),
        "n_inconclusive": int((verdicts["state"] == "inconclusive").sum()),
        "n_relied_on": int((verdicts["state"] == "relied_on").sum()),
        "n_not_relied_on": int((verdicts["state"] == "not_relied_on").sum()),
        "primary_sampling": "global",
        "output": "true_class_prob",
        "shipped_threshold": SCREEN_THRESHOLD,
        "samplings": {
            "global": {
                "auroc": 0.93,
                "spearman_mu_star_drop": 0.88,
                "cv_agreement": agree,
                "fitted_threshold": 0.021,
                "fitted_agreement": agree,
                "shipped_agreement": agree,
            },
            "local": {
                "auroc": 0.97,
                "spearman_mu_star_drop": 0.91,
                "cv_agreement": 0.95,
                "fitted_threshold": 0.03,
                "fitted_agreement": 0.96,
                "shipped_agreement": 0.9,
            },
        },
    }


def screen_levels() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "sampling": s,
                "dataset_id": d,
                "threshold": 0.02,
                "n_cells": 12,
                "n_agree": 11,
                "agreement": round(11 / 12, 6),
            }
            for s in ("global", "local")
            for d in DATASETS
        ]
    )


def maps_arrays(dataset_id: str, arch: str, n: int = 3, size: int = 28) -> dict[str, np.ndarray]:
    """Images, Sobol-like maps and digit masks of ``n`` rendered examples."""
    rng = np.random.default_rng(len(dataset_id) * 7 + len(arch))
    yy, xx = np.mgrid[:size, :size]
    digit = (np.abs(yy - size / 2) < size / 5) & (np.abs(xx - size / 2) < size / 8)
    mask = np.repeat(digit[None], n, axis=0)
    images = np.empty((n, 3, size, size), dtype=np.float16)
    images[:] = rng.uniform(0.2, 0.8, size=(n, 3, 1, 1))
    images[:, :, digit] = 1.0
    bias = _reliance(dataset_id, arch, "bg_color")
    maps = rng.uniform(0, 0.1, size=(n, size, size)).astype(np.float32)
    maps += np.where(mask, 1.0 - bias, bias).astype(np.float32)
    return {"images": images, "maps": maps, "digit_mask": mask}


IMAGENET_MODELS = ("efficientnet_lite0", "efficientnet_lite1")
IMAGENET_METHODS = ("sobol", "rise", "occlusion", "geex")
IMAGENET_IMAGES = ("chelsea", "coffee")
IMAGENET_SKIPPED = "resnet50"


def _imagenet_models() -> pd.DataFrame:
    rows = [
        {
            "model": m,
            "status": "loaded",
            "reason": "",
            "source": "package",
            "weights_path": f"{m}.pth",
            "input_size": 128,
            "n_params": 4_652_008 + 764_672 * k,
            "is_reference": k == 0,
            "n_images": len(IMAGENET_IMAGES),
            "target_kind": "predicted",
            "top1_accuracy": -1.0,
            "mean_target_probability": round(0.91 + 0.05 * k, 4),
            "forwards": 4908 - 4000 * k,
            "seconds": 300.0 - 250 * k,
            "forward_seconds": 270.0 - 230 * k,
        }
        for k, m in enumerate(IMAGENET_MODELS)
    ]
    rows.append(
        {
            "model": IMAGENET_SKIPPED,
            "status": "skipped",
            "reason": f"no local weights {HOSTILE}",
            "source": "",
            "weights_path": "",
            "input_size": 0,
            "n_params": 0,
            "is_reference": False,
            "n_images": 0,
            "target_kind": "",
            "top1_accuracy": -1.0,
            "mean_target_probability": 0.0,
            "forwards": 0,
            "seconds": 0.0,
            "forward_seconds": 0.0,
        }
    )
    return pd.DataFrame(rows)


IMAGENET_PROTOCOLS = ("sobol", "region")  # the first is the headline protocol


def _imagenet_fidelity() -> pd.DataFrame:
    rows = []
    for p, protocol in enumerate(IMAGENET_PROTOCOLS):
        for k, method in enumerate((*IMAGENET_METHODS, "random", "constant")):
            for i, image in enumerate(IMAGENET_IMAGES):
                shift = 0.3 * p  # the second protocol's numbers differ: the report must not mix them
                values = {
                    "deletion_auc": (0.15 + 0.04 * k + 0.01 * i + shift, "lower", ""),
                    "insertion_auc": (0.7 - 0.05 * k + 0.02 * i, "higher", ""),
                    "naopc": (0.8 - 0.03 * k - 0.01 * i, "higher", ""),
                }
                rows += [
                    {
                        "model": IMAGENET_MODELS[0],
                        "method": method,
                        "image_id": image,
                        "target": 285 + i,
                        "metric": metric,
                        "value": round(value, 4),
                        "direction": direction,
                        "forwards": 0.0 if method in ("random", "constant") else 200.0,
                        "explain_seconds": 5.0 + k,
                        "reference": reference,
                        "protocol": protocol,
                    }
                    for metric, (value, direction, reference) in values.items()
                ]
    for k, method in enumerate(IMAGENET_METHODS):
        if method not in ("geex", "rise"):
            continue
        for i, image in enumerate(IMAGENET_IMAGES):  # one row per white-box map (GEEX paper, Fig. 3)
            rows += [
                {
                    "model": IMAGENET_MODELS[0],
                    "method": method,
                    "image_id": image,
                    "target": 285 + i,
                    "metric": "l1_to_white_box",
                    "value": round(0.2 + 0.5 * (method == "rise") + 0.05 * r + 0.01 * i, 4),
                    "direction": "lower",
                    "forwards": 200.0,
                    "explain_seconds": 5.0 + k,
                    "reference": ref,
                    "protocol": "",
                }
                for r, ref in enumerate(("gradient", "smoothgrad", "integrated_gradients"))
            ]
    return pd.DataFrame(rows)


def _imagenet_fidelity_summary(fidelity: pd.DataFrame) -> pd.DataFrame:
    from shortcut_audit.imagenet.fidelity import build_protocols, summary_rows

    protocols = build_protocols(list(IMAGENET_PROTOCOLS), 16, "zero", "blur", 6, "gray")
    return pd.DataFrame(summary_rows(fidelity, protocols, 0.95))


def _imagenet_curves(steps: int = 4) -> pd.DataFrame:
    rows = []
    for p, protocol in enumerate(IMAGENET_PROTOCOLS):
        for k, method in enumerate((*IMAGENET_METHODS, "random", "constant")):
            for mode in ("deletion", "insertion"):
                for step in range(steps + 1 + p):
                    fraction = step / (steps + p)
                    score = (1 - fraction) ** (2 - 0.3 * k) if mode == "deletion" else fraction ** (0.5 + 0.3 * k)
                    rows.append(
                        {
                            "model": IMAGENET_MODELS[0],
                            "method": method,
                            "mode": mode,
                            "step": step,
                            "fraction": fraction,
                            "score": round(score, 4),
                            "protocol": protocol,
                        }
                    )
    return pd.DataFrame(rows)


def _imagenet_convergence() -> pd.DataFrame:
    rows = []
    for k, method in enumerate(("sobol", "rise")):
        for image in IMAGENET_IMAGES:
            for j, budget in enumerate((50, 100, 200)):
                rows.append(
                    {
                        "model": IMAGENET_MODELS[0],
                        "method": method,
                        "reference_kind": "independent",
                        "image_id": image,
                        "budget": budget,
                        "forwards": budget - 4 * (k == 0),
                        "reference_forwards": 600,
                        "spearman": round(0.4 + 0.15 * j - 0.15 * k, 4),
                    }
                )
    return pd.DataFrame(rows)


def _imagenet_cross() -> dict[str, pd.DataFrame]:
    statistics = ("mu_star", "sigma", "mu_star_plus_sigma")
    # the paper's reference (alexnet) is absent: the first model stands in
    overlap = pd.DataFrame(
        [
            {
                "model": IMAGENET_MODELS[1],
                "reference": IMAGENET_MODELS[0],
                "requested_reference": "alexnet",
                "statistic": statistic,
                "image_id": image,
                "top_fraction": 0.2,
                "radius": 1,
                "overlap_share": 0.8 + 0.1 * i - 0.05 * k,
                "n_overlapping": 12 + i,
                "n_differing": 1 - i,
                "mu_star_overlapping": 2.0 + i,
                "mu_star_differing": 0.5 * (1 - i),
                "sigma_overlapping": 1.5 + 0.5 * i,
                "sigma_differing": 0.7 * (1 - i),
                "reference_mu_star_overlapping": 1.8,
                "reference_mu_star_differing": 0.3,
                "reference_sigma_overlapping": 1.0,
                "reference_sigma_differing": 0.2,
            }
            for k, statistic in enumerate(statistics)
            for i, image in enumerate(IMAGENET_IMAGES)
        ]
    )
    ratio = pd.DataFrame(
        [
            {
                "model": m,
                "n_images": 2,
                "threshold": 0.6,
                "n_relevant": 10,
                "n_ratio": 10,
                "mean_ratio": 1.2 - 0.2 * k,
                "median_ratio": 1.1 - 0.2 * k,
            }
            for k, m in enumerate(IMAGENET_MODELS)
        ]
    )
    pairs = [
        (m, a, b, 0.5, 0.5 * ((a + k) % 2), 0.5 + 0.25 * k)
        for k, m in enumerate(IMAGENET_MODELS)
        for a, b in ((1, 2), (1, 3), (2, 3))
    ]
    interactions = pd.DataFrame(
        [
            {
                "model": m,
                "target_kind": "predicted",
                "n_images": 2,
                "region_x": a,
                "region_y": b,
                "drop_x": dx,
                "drop_y": dy,
                "drop_xy": dxy,
                "interaction": dx + dy - dxy,
                "interacts": dx + dy > dxy,
            }
            for m, a, b, dx, dy, dxy in pairs
        ]
    )
    score_interactions = pd.DataFrame(
        [
            {
                "model": m,
                "image_id": image,
                "region_a": a,
                "region_b": b,
                "drop_a": -0.1,
                "drop_b": -0.1,
                "drop_ab": -0.15,
                "interaction": 0.05 + 0.03 * (a + k),
                "interacts": (a + k) % 2 == 1,
            }
            for k, m in enumerate(IMAGENET_MODELS)
            for image in IMAGENET_IMAGES
            for a, b in ((1, 2), (1, 3), (2, 3))
        ]
    )
    masking = pd.DataFrame(
        [
            {
                "model": m,
                "scope": scope,
                "ranking": ranking,
                "which": which,
                "target_kind": "predicted",
                "n_images": 2,
                "step": step,
                "fraction": step / 10,
                "accuracy": 1.0 - (0.4 if which == "most" else 0.05) * step * (1 - 0.25 * k),
                "score_change": -(0.3 if which == "most" else 0.02) * step - 0.05 * k * step,
            }
            for k, m in enumerate(IMAGENET_MODELS)
            for scope in ("local", "global")
            for ranking in statistics
            for which in ("most", "least")
            for step in range(3)
        ]
    )
    return {
        "overlap": overlap,
        "ratio": ratio,
        "interactions": interactions,
        "score_interactions": score_interactions,
        "masking": masking,
    }


def _ensemble_row(kind, norm, agg, setting, members, ordered_by, deletion, insertion) -> dict:
    return {
        "model": IMAGENET_MODELS[0],
        "kind": kind,
        "normalisation": norm,
        "aggregation": agg,
        "setting": setting,
        "members": "+".join(members),
        "n_members": len(members),
        "ordered_by": ordered_by,
        "deletion_auc": round(deletion, 4),
        "deletion_ci_low": round(deletion - 0.02, 4),
        "deletion_ci_high": round(deletion + 0.02, 4),
        "insertion_auc": round(insertion, 4),
        "insertion_ci_low": round(insertion - 0.03, 4),
        "insertion_ci_high": round(insertion + 0.03, 4),
    }


IMAGENET_AGGREGATIONS = {"mean": "", "ucb": "eps=-0.5", "ci": "eps=Eq. 11", "rbm": "alpha=0.0001, k=100, batch=10"}
# (deletion, insertion) per normalisation: z-score follows the paper's ordering (UCB best on insertion,
# CI worst on both), linear does not (CI best)
IMAGENET_ENSEMBLE_SCORES = {
    "linear": {"mean": (0.13, 0.66), "ucb": (0.14, 0.64), "ci": (0.12, 0.68), "rbm": (0.135, 0.65)},
    "z": {"mean": (0.15, 0.70), "ucb": (0.16, 0.72), "ci": (0.20, 0.60), "rbm": (0.17, 0.69)},
}


def _imagenet_ensembles() -> pd.DataFrame:
    rows = [
        _ensemble_row("base", "none", "none", "", [m], "", 0.15 + 0.04 * k, 0.7 - 0.05 * k)
        for k, m in enumerate(IMAGENET_METHODS)
    ]
    rows += [
        _ensemble_row("reference", "none", "none", "", [m], "", 0.3 + 0.01 * k, 0.4 - 0.01 * k)
        for k, m in enumerate(("random", "constant"))
    ]
    rows += [
        _ensemble_row("ensemble", norm, agg, IMAGENET_AGGREGATIONS[agg], IMAGENET_METHODS, "", d, i)
        for norm, scores in IMAGENET_ENSEMBLE_SCORES.items()
        for agg, (d, i) in scores.items()
    ]
    for metric, order in (("deletion_auc", IMAGENET_METHODS), ("insertion_auc", IMAGENET_METHODS[::-1])):
        rows += [
            _ensemble_row(
                "size_protocol",
                "z",
                agg,
                IMAGENET_AGGREGATIONS[agg],
                order[:n],
                metric,
                0.2 - 0.02 * n + 0.01 * (agg == "ucb"),
                0.6 + 0.02 * n,
            )
            for n in range(1, len(IMAGENET_METHODS) + 1)
            for agg in ("mean", "ucb")
        ]
    return pd.DataFrame(rows)


def imagenet_tables() -> dict[str, pd.DataFrame]:
    """Every table of the ImageNet stage, following its documented schema."""
    fidelity = _imagenet_fidelity()
    return {
        "models": _imagenet_models(),
        "fidelity": fidelity,
        "fidelity_summary": _imagenet_fidelity_summary(fidelity),
        "curves": _imagenet_curves(),
        "convergence": _imagenet_convergence(),
        **_imagenet_cross(),
        "ensembles": _imagenet_ensembles(),
    }


def imagenet_maps(size: int = 16) -> dict[str, np.ndarray]:
    """The ``maps.npz`` arrays of the ImageNet stage: photos, ids, targets, a map per method."""
    rng = np.random.default_rng(5)
    n = len(IMAGENET_IMAGES)
    yy, xx = np.mgrid[:size, :size]
    blob = np.exp(-((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (size**2 / 8)).astype(np.float32)
    arrays = {
        "images": rng.uniform(0, 1, size=(n, 3, size, size)).astype(np.float16),
        "image_ids": np.array(IMAGENET_IMAGES),
        "targets": np.array([285, 967], dtype=np.int64),
    }
    for k, method in enumerate(IMAGENET_METHODS):
        arrays[f"map_{method}"] = (blob[None] + 0.2 * k * rng.uniform(size=(n, size, size))).astype(np.float32)
    for model in IMAGENET_MODELS:
        arrays[f"mu_star_{model}"] = rng.uniform(size=(n, 4, 4)).astype(np.float32)
        arrays[f"sigma_{model}"] = rng.uniform(size=(n, 4, 4)).astype(np.float32)
    return arrays


def imagenet_metrics() -> dict:
    return {
        "profile": {
            "device": "cpu",
            "image_source": "sample_photos",
            "input_size": 128,
            "n_images": 2,
            "convergence_budgets": [50, 100, 200],
        },
        "reference_model": IMAGENET_MODELS[0],
        "seconds": 40.0,
        "headline_protocol": IMAGENET_PROTOCOLS[0],
    }


def validation_results() -> tuple[pd.DataFrame, dict[str, dict]]:
    summary, results = [], {}
    for suite in SUITES:
        failing = suite == "findings"
        expectations = [
            {
                "success": True,
                "expectation_config": {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "mu_star"}},
                "result": {},
            },
            {
                "success": not failing,
                "expectation_config": {
                    "type": "expect_column_max_to_be_between",
                    "description": "max share",
                    "kwargs": {"column": "mu_star_share", "max_value": 0.5},
                },
                "result": {
                    "observed_value": 0.62 if failing else 0.3,
                    "partial_unexpected_list": [HOSTILE] if failing else [],
                },
            },
        ]
        results[suite] = {
            "suite": suite,
            "success": not failing,
            "failed_expectations": ["max share"] if failing else [],
            "tables": [{"table": "verdicts", "rows": 24, "success": not failing, "results": expectations}],
            "statistics": {"evaluated_expectations": 2, "unsuccessful_expectations": int(failing)},
        }
        summary.append(
            {
                "suite": suite,
                "success": not failing,
                "evaluated": 2,
                "failed": int(failing),
                "failed_expectations": f"max share {HOSTILE}" if failing else "",
                "status": "fail" if failing else "pass",
                "reason": "",
            }
        )
    return pd.DataFrame(summary), results


def gate_result() -> dict:
    checks = [
        {
            "name": "max_mu_star_share[p0.1/simple_cnn/bg_color]",
            "value": 0.33,
            "threshold": 0.5,
            "status": "pass",
            "detail": "mu* share of bg_color",
        },
        {
            "name": "min_unbiased_accuracy[p0.1/simple_cnn]",
            "value": 0.97,
            "threshold": 0.8,
            "status": "pass",
            "detail": "unbiased accuracy",
        },
        {
            "name": "all_suites_pass",
            "value": 3,
            "threshold": 4,
            "status": "fail",
            "detail": f"suite findings failed {HOSTILE}",
        },
    ]
    return {"status": "fail", "exit_code": 1, "checks": checks}


def dvc_lock() -> dict:
    stages = {
        "biased_mnist": {
            "cmd": "python stages/biased_mnist.py",
            "deps": [{"path": "data/mnist", "hash": "md5", "md5": "a" * 32 + ".dir"}],
            "outs": [{"path": "data/biased_mnist", "hash": "md5", "md5": "b" * 32 + ".dir"}],
        }
    }
    for m in _models():
        folder = f"data/models/{m['dataset_id']}/{m['arch']}/seed{m['seed']}"
        stages[f"train@{m['dataset_id']}-{m['arch']}-{m['seed']}"] = {
            "cmd": f"python stages/train.py --dataset {m['dataset_id']} --arch {m['arch']} --seed {m['seed']}",
            "outs": [{"path": folder, "hash": "md5", "md5": "c" * 32 + ".dir"}],
        }
    return {"schema": "2.0", "stages": stages}


def _mkdir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_tree(root: Path, *, imagenet: bool = True, validation: bool = True, gate: bool = True) -> Path:
    """Write the fixture artefacts under ``root`` (the repository root of a fake run).

    Parameters
    ----------
    root : Path
        Empty folder; receives ``params.yaml``, ``dvc.lock``, ``data/`` and ``reports/``.
    imagenet, validation, gate : bool
        Whether to write the ImageNet tables, the validation results and the gate result,
        so tests can check that their sections appear and disappear with their inputs.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    (root / "dvc.lock").write_text(yaml.safe_dump(dvc_lock(), sort_keys=False))
    data = root / "data"
    schema.write("biased_mnist/summary", biased_mnist_summary(), _mkdir(data / "biased_mnist") / "summary.csv")
    models = train_models()
    schema.write("train_summary/models", models, _mkdir(data / "train_summary") / "models.csv")
    schema.write("train_summary/curves", train_curves(), data / "train_summary" / "curves.csv")
    _write_json({"n_models": len(models)}, data / "train_summary" / "metrics.json")

    summary = _mkdir(data / "audit_summary")
    morris = morris_table()
    verdicts = verdict_table(morris)
    tables = {
        "morris": morris,
        "verdicts": verdicts,
        "interventions": intervention_table(),
        "order_check": order_check_table(),
        "pixel_view": pixel_view_table(),
        "interaction": interaction_table(),
        "models": audit_models_table(verdicts),
        "seeds": seeds_table(verdicts),
        "screen": screen_levels(),
    }
    for name, table in tables.items():
        schema.write(f"audit_summary/{name}", table, summary / f"{name}.csv")
    _write_json(screen_document(verdicts), summary / "screen.json")
    _write_json({"n_models": len(models)}, summary / "metrics.json")
    for model in _models():
        dataset_id, arch = model["dataset_id"], model["arch"]
        folder = _mkdir(data / "audit" / dataset_id / arch / f"seed{model['seed']}")
        np.savez(folder / "maps.npz", **maps_arrays(dataset_id, arch))

    if imagenet:
        for name, table in imagenet_tables().items():
            _write_csv(table, data / "imagenet" / f"{name}.csv")
        np.savez_compressed(data / "imagenet" / "maps.npz", **imagenet_maps())
        _write_json(imagenet_metrics(), data / "imagenet" / "metrics.json")
    if validation:
        table, results = validation_results()
        _write_csv(table, data / "validation" / "summary.csv")
        for suite, result in results.items():
            _write_json(result, data / "validation" / f"{suite}.json")
    if gate:
        _write_json(gate_result(), root / "reports" / "gate.json")
    return root
