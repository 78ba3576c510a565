"""A miniature but schema-exact pipeline output tree for the validation tests.

:func:`write_healthy_tree` writes ``params.yaml`` and ``data/`` under a folder with
the artefacts the validation suites and the gate read (docs/architecture.md), at toy
sizes: 4 correlation levels x 2 architectures, splits of a few hundred rows, 8x8 maps.
Numbers are realistic: the p = 0.1 models are accurate and colour-blind, the
p = 0.99 models lean on background colour with a large aligned/conflicting gap.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from shortcut_audit import schema
from shortcut_audit.audit.summary import seed_table
from shortcut_audit.imagenet.fidelity import build_protocols, summary_rows

DATASETS = {
    "p0.1": (0.1, ("digit_color", "bg_color", "position")),
    "p0.5": (0.5, ("digit_color", "bg_color", "position")),
    "p0.99": (0.99, ("digit_color", "bg_color", "position")),
    "bg_color-p0.9": (0.9, ("bg_color",)),
}
ARCHS = ("simple_cnn", "mlp")
SEED = 0
FACTORS = {"digit_color": 10, "bg_color": 10, "position": 9}
SPLIT_SIZES = {"train": 400, "val": 200, "test_unbiased": 200, "test_aligned": 200}
MNIST_COUNTS = {"train": 600, "test": 300}
CANVAS = 28

#: Morris mu* (normalised_mean output) per dataset: (digit_color, bg_color, position).
MU_STAR = {
    "p0.1": (0.006, 0.007, 0.012),
    "p0.5": (0.15, 0.20, 0.05),
    "p0.99": (0.35, 0.50, 0.05),
    "bg_color-p0.9": (0.008, 0.60, 0.02),
}
#: (val_acc, unbiased_acc, aligned_acc, conflicting accs per factor).
ACCURACY = {
    "p0.1": (0.97, 0.96, 0.965, (0.960, 0.958, 0.961)),
    "p0.5": (0.95, 0.88, 0.97, (0.85, 0.84, 0.90)),
    "p0.99": (0.99, 0.35, 0.99, (0.40, 0.28, 0.70)),
    "bg_color-p0.9": (0.97, 0.72, 0.98, (0.96, 0.70, 0.96)),
}


def params(tmp_datasets=tuple(DATASETS)) -> dict:
    """Params of the miniature tree (sections the suites and the gate read)."""
    repo_params = yaml.safe_load((Path(__file__).resolve().parents[2] / "params.yaml").read_text())
    return {
        "seed": 0,
        "biased_mnist": {
            "datasets": list(tmp_datasets),
            "biased_factors": list(FACTORS),
            "canvas": CANVAS,
            "n_train": SPLIT_SIZES["train"],
            "n_val": SPLIT_SIZES["val"],
            "n_test": SPLIT_SIZES["test_unbiased"],
        },
        "train": {**repo_params["train"], "architectures": list(ARCHS), "seeds": [SEED]},
        "audit": repo_params["audit"],
        "validation": {**repo_params["validation"], "mnist_counts": dict(MNIST_COUNTS)},
        # strict: every suite blocks (the advisory policy is tested on its own)
        "gate": {
            **repo_params["gate"],
            "candidates": [{"dataset_id": "p0.1", "arch": "simple_cnn"}],
            "advisory_suites": [],
        },
    }


def write_params(root: Path, values: dict) -> Path:
    path = root / "params.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def _linked(factor: str, labels: np.ndarray) -> np.ndarray:
    return labels % 9 if factor == "position" else labels


def factor_table(p: float, biased: tuple[str, ...], n: int, source_n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Balanced labels; a biased factor linked in exactly round(p n) rows, else another value."""
    labels = rng.permutation(np.arange(n) % 10)
    table = {
        "mnist_index": rng.choice(source_n, size=n, replace=False).astype(np.int64),
        "label": labels.astype(np.int64),
    }
    for factor, levels in FACTORS.items():
        linked = _linked(factor, labels)
        if factor in biased:
            is_linked = rng.permutation(np.arange(n) < round(p * n))
            other = (linked + rng.integers(1, levels, size=n)) % levels
            values = np.where(is_linked, linked, other)
        else:
            values = rng.integers(0, levels, size=n)
        table[factor] = values.astype(np.int64)
    for factor in FACTORS:
        table[f"{factor}_aligned"] = table[factor] == _linked(factor, labels)
    return pd.DataFrame(table)


def write_mnist(data: Path, rng: np.random.Generator) -> None:
    folder = data / "mnist"
    folder.mkdir(parents=True)
    for split, n in MNIST_COUNTS.items():
        np.save(folder / f"{split}_images.npy", rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8))
        np.save(folder / f"{split}_labels.npy", rng.permutation(np.arange(n) % 10).astype(np.uint8))
    (folder / "source.json").write_text(json.dumps({"source": "fixture", "counts": MNIST_COUNTS}))


def write_biased_mnist(data: Path, rng: np.random.Generator) -> None:
    for dataset_id, (p, biased) in DATASETS.items():
        folder = data / "biased_mnist" / dataset_id
        folder.mkdir(parents=True)
        for split, n in SPLIT_SIZES.items():
            split_p = 0.1 if split == "test_unbiased" else p
            source_n = MNIST_COUNTS["train" if split in ("train", "val") else "test"]
            split_biased = tuple(FACTORS) if split == "test_unbiased" else biased
            table = factor_table(split_p, split_biased, n, source_n, rng)
            if split == "test_unbiased":  # uniform, as the contract says for unbiased factors
                for factor, levels in FACTORS.items():
                    table[factor] = rng.integers(0, levels, size=n)
                    table[f"{factor}_aligned"] = table[factor] == _linked(factor, table["label"].to_numpy())
            table.to_parquet(folder / f"{split}.parquet", index=False)


def _identity(dataset_id: str, arch: str) -> dict:
    p, biased = DATASETS[dataset_id]
    return {"dataset_id": dataset_id, "p": p, "biased_factors": "+".join(biased), "arch": arch, "seed": SEED}


def model_rows() -> pd.DataFrame:
    rows = []
    for dataset_id, (_, biased) in DATASETS.items():
        for k, arch in enumerate(ARCHS):
            val, unbiased, aligned, conflicting = ACCURACY[dataset_id]
            shift = 0.01 * k
            conflicting = dict(zip(FACTORS, (c - shift for c in conflicting)))
            gap = aligned - np.mean([conflicting[f] for f in biased])
            rows.append(
                {
                    **_identity(dataset_id, arch),
                    "n_params": 12000 + 1000 * k,
                    "val_acc": val - shift,
                    "unbiased_acc": unbiased - shift,
                    "aligned_acc": aligned,
                    **{f"conflicting_acc_{f}": v for f, v in conflicting.items()},
                    "aligned_conflicting_gap": gap,
                    "epochs": 2,
                    "train_seconds": 30.0 + k,
                    "device": "cpu",
                    "cpu_kernels": "portable: ATen AVX2",
                }
            )
    return pd.DataFrame(rows)


def morris_rows() -> pd.DataFrame:
    rows = []
    for dataset_id in DATASETS:
        for k, arch in enumerate(ARCHS):
            for sampling in ("global", "local"):
                for output, scale in (("normalised_mean", 1.0), ("true_class_prob", 0.8)):
                    mu_stars = np.array(MU_STAR[dataset_id]) * scale * (1 + 0.1 * k)
                    for factor, mu_star in zip(FACTORS, mu_stars):
                        rows.append(
                            {
                                **_identity(dataset_id, arch),
                                "sampling": sampling,
                                "factor": factor,
                                "output": output,
                                "mu": -0.8 * mu_star,
                                "mu_star": mu_star,
                                "sigma": 1.2 * mu_star,
                                "mu_star_conf": 0.1 * mu_star,
                                "mu_star_share": mu_star / mu_stars.sum(),
                                "sigma_over_mu_star": 1.2,
                            }
                        )
    return pd.DataFrame(rows)


def verdict_rows(morris: pd.DataFrame) -> pd.DataFrame:
    """Interventional verdicts that Morris (true-class, global) separates perfectly."""
    rows = []
    main = morris[(morris["output"] == "true_class_prob") & (morris["sampling"] == "global")]
    for r in main.itertuples(index=False):
        drop = 1.5 * r.mu_star if r.mu_star >= 0.1 else 0.005
        low, high = max(0.0, drop - 0.02), drop + 0.02
        state = "relied_on" if low >= 0.1 else "not_relied_on" if high < 0.1 else "inconclusive"
        screened = bool(r.mu_star >= 0.1)
        rows.append(
            {
                **{c: getattr(r, c) for c in ("dataset_id", "p", "biased_factors", "arch", "seed", "factor")},
                "state": state,
                "drop": drop,
                "ci_low": low,
                "ci_high": high,
                "first_round_state": state,
                "single_drop": 0.8 * drop,
                "single_ci_low": max(0.0, 0.8 * drop - 0.02),
                "single_ci_high": 0.8 * drop + 0.02,
                "sampling": "global",
                "mu_star": r.mu_star,
                "sigma": r.sigma,
                "mu_star_share": r.mu_star_share,
                "n_items": 64,
                "repetitions": 5,
                "screen_relied_on": screened,
                "screen_agreement": "agree" if screened == (state == "relied_on") else "disagree",
            }
        )
    return pd.DataFrame(rows)


def audit_model_rows(verdicts: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for dataset_id in DATASETS:
        for arch in ARCHS:
            mine = verdicts[(verdicts["dataset_id"] == dataset_id) & (verdicts["arch"] == arch)]
            total = min(0.9, float(mine["drop"].sum()))
            relied = mine.loc[mine["state"] == "relied_on", "factor"]
            rows.append(
                {
                    **_identity(dataset_id, arch),
                    "total_drop": total,
                    "total_ci_low": max(0.0, total - 0.03),
                    "total_ci_high": min(1.0, total + 0.03),
                    "n_relied_on": len(relied),
                    "n_inconclusive": 0,
                    "relied_on": "+".join(relied),
                    "rounds": 1,
                    "n_items": 64,
                    "repetitions": 5,
                    "n_correct": 180,
                    "interaction_reading": "non_linearity",
                    "background_share": 0.3,
                }
            )
    return pd.DataFrame(rows)


def write_audit_summary(data: Path) -> None:
    folder = data / "audit_summary"
    folder.mkdir(parents=True)
    morris = morris_rows()
    verdicts = verdict_rows(morris)
    interventions, order, pixel, interaction = [], [], [], []
    for dataset_id in DATASETS:
        for arch in ARCHS:
            model = _identity(dataset_id, arch)
            for sampling in ("global", "local"):
                for direction in ("most_to_least", "least_to_most"):
                    for step, factor in enumerate(["", "bg_color", "digit_color", "position"]):
                        acc = 1.0 - 0.1 * step
                        interventions.append(
                            {
                                **model,
                                "sampling": sampling,
                                "order": direction,
                                "step": step,
                                "factor": factor,
                                "accuracy": acc,
                                "ci_low": acc - 0.02,
                                "ci_high": min(acc + 0.02, 1.0),
                            }
                        )
                order.append(
                    {
                        **model,
                        "sampling": sampling,
                        "order": "bg_color>digit_color>position",
                        "area": 0.1,
                        "ci_low": 0.05,
                        "ci_high": 0.15,
                        "holds": True,
                    }
                )
            for image in range(2):
                pixel.append(
                    {**model, "image": image, "label": image, "background_share": 0.3, "background_pixel_fraction": 0.8}
                )
            for factor in FACTORS:
                interaction.append(
                    {
                        **model,
                        "factor": factor,
                        "mu_star": 0.1,
                        "sigma": 0.1,
                        "sigma_over_mu_star": 1.0,
                        "drop_alone": 0.05,
                        "drop_last": 0.04,
                        "order_gap": 0.01,
                        "gap_ci_low": -0.01,
                        "gap_ci_high": 0.03,
                        "order_dependent": False,
                        "reading": "non_linearity",
                    }
                )
    tables = {
        "morris": morris,
        "verdicts": verdicts,
        "interventions": pd.DataFrame(interventions),
        "order_check": pd.DataFrame(order),
        "pixel_view": pd.DataFrame(pixel),
        "interaction": pd.DataFrame(interaction),
        "models": audit_model_rows(verdicts),
        "seeds": seed_table(verdicts),
        "screen": pd.DataFrame(
            [
                {"sampling": "global", "dataset_id": d, "threshold": 0.1, "n_cells": 6, "n_agree": 6, "agreement": 1.0}
                for d in DATASETS
            ]
        ),
    }
    for name, table in tables.items():
        schema.write(f"audit_summary/{name}", table, folder / f"{name}.csv")
    screen = {
        "n_cells": len(verdicts),
        "n_inconclusive": 0,
        "primary_sampling": "global",
        "samplings": {"global": {"auroc": 1.0, "cv_agreement": 1.0}, "local": {"auroc": 1.0, "cv_agreement": 1.0}},
    }
    (folder / "screen.json").write_text(json.dumps(screen))
    (folder / "metrics.json").write_text(json.dumps({"n_models": len(DATASETS) * len(ARCHS)}))


def write_train_summary(data: Path) -> None:
    folder = data / "train_summary"
    folder.mkdir(parents=True)
    schema.write("train_summary/models", model_rows(), folder / "models.csv")


def write_maps(data: Path, rng: np.random.Generator, n: int = 3) -> None:
    for dataset_id in DATASETS:
        for arch in ARCHS:
            folder = data / "audit" / dataset_id / arch / f"seed{SEED}"
            folder.mkdir(parents=True)
            np.savez(
                folder / "maps.npz",
                images=rng.random((n, 3, CANVAS, CANVAS)).astype(np.float16),
                maps=rng.standard_normal((n, CANVAS, CANVAS)).astype(np.float32),
                digit_mask=rng.random((n, CANVAS, CANVAS)) > 0.7,
            )


def write_imagenet(data: Path, rng: np.random.Generator) -> None:
    """ImageNet outputs: a declared table (the ImageNet suite checks any numeric table generically) and maps."""
    folder = data / "imagenet"
    folder.mkdir(parents=True)
    schema.write(
        "imagenet/ratio",
        pd.DataFrame(
            [
                {
                    "model": "efficientnet_lite0",
                    "n_images": 2,
                    "threshold": 0.6,
                    "n_relevant": 5,
                    "n_ratio": 5,
                    "mean_ratio": 1.4,
                    "median_ratio": 1.3,
                }
            ]
        ),
        folder / "ratio.csv",
    )
    write_fidelity_summary(folder)
    regions = np.arange(4)
    pd.DataFrame(
        {
            "image": 0,
            "region": regions,
            "S1": [0.1, 0.05, 0.0, 0.2],
            "ST": [0.2, 0.1, 0.01, 0.4],
            "ST_conf": [0.01, 0.02, 0.01, 0.03],
        }
    ).to_csv(folder / "sobol.csv", index=False)
    np.savez(folder / "maps.npz", sobol=rng.random((2, 16, 16)).astype(np.float32))


def write_fidelity_summary(folder: Path) -> None:
    """A fidelity summary over two images, as the ImageNet stage computes it: the normalised AOPC
    (no lower bound) of one image is far below -1, so its interval reaches below -1 legitimately."""
    scores = {
        "deletion_auc": {"sobol": [0.05, 0.9], "random": [0.6, 0.1], "constant": [0.5, 0.5]},
        "naopc": {"sobol": [-3.0, 0.9], "random": [0.2, 0.1], "constant": [0.1, 0.1]},
    }
    fidelity = pd.DataFrame(
        [
            {"model": "efficientnet_lite0", "protocol": "sobol", "method": method, "image_id": f"i{i}"}
            | {"metric": metric, "value": value}
            for metric, by_method in scores.items()
            for method, values in by_method.items()
            for i, value in enumerate(values)
        ]
    )
    protocols = build_protocols(["sobol"], 16, "zero", "blur", 6, "gray")
    summary = pd.DataFrame(summary_rows(fidelity, protocols, 0.95))
    schema.write("imagenet/fidelity_summary", summary, folder / "fidelity_summary.csv")


def write_healthy_tree(root: Path, seed: int = 0, imagenet: bool = True) -> Path:
    """Write ``params.yaml`` and a healthy miniature ``data/`` under ``root``; return ``root``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    write_params(root, params())
    data = root / "data"
    write_mnist(data, rng)
    write_biased_mnist(data, rng)
    write_train_summary(data)
    write_audit_summary(data)
    write_maps(data, rng)
    if imagenet:
        write_imagenet(data, rng)
    return root
