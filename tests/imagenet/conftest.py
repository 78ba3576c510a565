"""A tiny ImageNet-shaped classifier importable by path, and a small audit config."""

import textwrap

import pytest

TINY_MODULE = textwrap.dedent("""
    import torch
    from torch import nn


    def build(seed=0):
        torch.manual_seed(seed)
        return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 1000))


    def build_other():
        return build(seed=1)
""")


@pytest.fixture
def tiny_model_path(tmp_path, monkeypatch):
    """Import path of a random 1000-class conv net (module written into tmp_path)."""
    (tmp_path / "tiny_imagenet_net.py").write_text(TINY_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return "tiny_imagenet_net:build"


def small_params(models, **overrides):
    imagenet = {
        "models": models,
        "weights_dir": None,
        "val_dir": None,
        "classes": None,
        "max_images": 2,
        "input_size": 32,
        "batch_size": 32,
        "precision": "fast",
        "methods": ["sobol", "rise", "occlusion", "morris_grid", "geex"],
        "forwards": 40,
        "sobol": {"grid_size": 3},
        "rise": {"grid_size": 4, "keep_prob": 0.5},
        "occlusion": {"patch_fraction": 0.25},
        "geex": {"sigma": 0.15, "noise_size": 4, "white_box": {"smoothgrad_samples": 4, "ig_steps": 4}},
        "morris": {"grid_size": 4, "levels": 4, "n_trajectories": 2, "sampling": "local"},
        "fidelity": {
            "steps": 4,
            "deletion_baseline": "zero",
            "insertion_baseline": "blur",
            "protocols": ["rise", "region"],
            "region_grid": 4,
            "region_baseline": "gray",
        },
        "cross_architecture": {
            "top_fraction": 0.25,
            "neighbour_radius": 1,
            "relevant_threshold": 0.6,
            "top_k": 3,
            "interaction_threshold": 0.1,
            "masking_fraction": 0.25,
        },
        "ensembles": {
            "normalisations": ["z", "l1"],
            "aggregations": ["mean", "ucb", "pi", "rbm"],
            "steps": 3,
            "baseline": "random_normal",
            "settings": {"rbm_iterations": 2},
        },
        "convergence": {
            "methods": ["sobol", "rise"],
            "budgets": [20, 40],
            "reference_forwards": 80,
            "n_images": 1,
            "grid_size": 3,
        },
    }
    imagenet.update(overrides)
    return {"seed": 0, "device": "cpu", "imagenet": imagenet}


@pytest.fixture
def make_params():
    return small_params
