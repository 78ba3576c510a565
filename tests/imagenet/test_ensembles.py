"""The ImageNet ensemble table (Mahlau & Nolde 2022, Table 1 settings) and the ensemble-size protocol
(Sec. 4.4, Fig. 11: add base methods in descending order of their own score, per metric)."""

from pathlib import Path

import pytest
import torch
import yaml

from shortcut_audit.attribution.ensemble import AggregationSettings
from shortcut_audit.imagenet.config import parse_config
from shortcut_audit.imagenet.ensembles import ensemble_rows, size_order, size_protocol_rows

PARAMS = Path(__file__).resolve().parents[2] / "params.yaml"
# Table 1 of the paper (ImageNet, z-score normalisation), read from its text
PAPER = dict(
    percentile=25.0,
    ucb_epsilon=-0.5,
    pi_epsilon=-4.0,
    ei_epsilon=-6.0,
    api_range=(-7.0, 2.0),
    aei_range=(-10.0, 5.0),
    var_epsilon=1e-7,
    rbm_learning_rate=1e-4,
    rbm_iterations=100,
)


class CornerModel(torch.nn.Module):
    """Class-0 logit = 10 * mean of the top-left quadrant."""

    def forward(self, x):
        h, w = x.shape[-2:]
        s = 10 * x[:, :, : h // 2, : w // 2].mean(dim=(1, 2, 3))
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def _base_maps(n=2, size=8):
    gen = torch.Generator().manual_seed(0)
    good = torch.zeros(n, size, size)
    good[:, : size // 2, : size // 2] = 1.0
    return {
        "good": good + 0.1 * torch.rand(n, size, size, generator=gen),
        "noisy": good + 2.0 * torch.rand(n, size, size, generator=gen),
        "inverted": -good + 0.1 * torch.rand(n, size, size, generator=gen),
    }


@pytest.mark.parametrize("source", ["defaults", "params.yaml"])
def test_table_1_settings_are_the_defaults_of_the_ensemble_table(make_params, source):
    params = make_params(["efficientnet_lite0"])
    params["imagenet"]["ensembles"].pop("settings")
    if source == "params.yaml":
        params["imagenet"]["ensembles"]["settings"] = yaml.safe_load(PARAMS.read_text())["imagenet"]["ensembles"][
            "settings"
        ]
    settings = parse_config(params).ensemble_settings
    assert {name: getattr(settings, name) for name in PAPER} == PAPER


def test_ensemble_rows_name_their_setting_and_carry_the_reference_maps():
    images, targets = torch.ones(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)
    rows = ensemble_rows(
        "m",
        CornerModel(),
        images,
        targets,
        _base_maps(),
        ["z"],
        ["ucb", "pi", "var"],
        AggregationSettings(),
        steps=8,
        baseline="zero",
        batch_size=64,
        seed=0,
    )
    settings = {r["aggregation"]: r["setting"] for r in rows if r["kind"] == "ensemble"}
    assert settings == {"ucb": "eps=-0.5", "pi": "eps=-4", "var": "eps=1e-07, delta=1"}
    assert {r["members"] for r in rows if r["kind"] == "reference"} == {"random", "constant"}
    for r in rows:
        assert r["deletion_ci_low"] <= r["deletion_auc"] <= r["deletion_ci_high"]


def test_size_order_is_per_metric():
    rows = [
        {"kind": "base", "members": m, "deletion_auc": d, "insertion_auc": i}
        for m, d, i in (("a", 0.3, 0.9), ("b", 0.1, 0.2), ("c", 0.2, 0.5))
    ]
    assert size_order(rows, "deletion_auc") == ["b", "c", "a"]  # lower deletion is better
    assert size_order(rows, "insertion_auc") == ["a", "c", "b"]  # higher insertion is better


def test_size_protocol_grows_the_ensemble_from_the_best_method():
    images, targets = torch.ones(2, 3, 8, 8), torch.zeros(2, dtype=torch.long)
    base = _base_maps()
    kw = dict(settings=AggregationSettings(), steps=8, baseline="zero", batch_size=64, seed=0)
    table = ensemble_rows("m", CornerModel(), images, targets, base, ["z"], ["mean"], **kw)
    rows = size_protocol_rows("m", CornerModel(), images, targets, base, table, "z", ["mean", "ucb"], **kw)
    base_rows = {r["members"]: r for r in table if r["kind"] == "base"}
    for metric in ("deletion_auc", "insertion_auc"):
        order = size_order(table, metric)
        part = [r for r in rows if r["ordered_by"] == metric]
        assert [(r["members"], r["aggregation"]) for r in part] == [
            ("+".join(order[:k]), a) for k in range(1, 4) for a in ("mean", "ucb")
        ]
        first = part[0]  # one member: the best method itself (z-scoring keeps its ranking)
        assert first[metric] == pytest.approx(base_rows[order[0]][metric])
    assert size_order(table, "deletion_auc")[0] == "good" and size_order(table, "insertion_auc")[-1] == "inverted"
