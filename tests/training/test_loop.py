"""Training loop: params validation, on-the-fly rendering, determinism, NaN handling."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

import shortcut_audit  # noqa: F401
from shortcut_audit.config import ParamError
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.models.registry import build
from shortcut_audit.training.loop import NonFiniteLossError, _lr_schedule, train_model
from shortcut_audit.training.settings import TrainConfig, check_params
from shortcut_audit.training.splits import RenderedSplit


@pytest.fixture(scope="module")
def splits(data_root) -> dict[str, RenderedSplit]:
    train_table, train_digits = bm.load_split(data_root, "p0.1", "train")
    val_table, val_digits = bm.load_split(data_root, "p0.1", "val")
    return {
        "train": RenderedSplit(train_table.iloc[:640], train_digits[:640]),
        "val": RenderedSplit(val_table.iloc[:200], val_digits[:200]),
    }


# --------------------------------------------------------------------------- params
def test_repository_params_are_valid(params):
    checked = check_params(params)
    assert checked.architectures == ("simple_cnn", "mlp")
    assert checked.config == TrainConfig(
        epochs=1,
        batch_size=128,
        lr=params["train"]["lr"],
        weight_decay=params["train"]["weight_decay"],
        seed=params["seed"],
        lr_schedule=params["train"]["lr_schedule"],
    )
    assert checked.device == "cpu"
    for arch, settings in params["train"]["per_architecture"].items():
        assert checked.config_for(arch) == replace(checked.config, **settings)


def test_per_architecture_settings_override_only_what_they_name(params):
    params["train"].update(
        epochs=3, lr=0.005, lr_schedule="one_cycle", per_architecture={"mlp": {"epochs": 6, "lr": 0.001}}
    )
    checked = check_params(params)
    assert checked.config_for("mlp") == replace(checked.config, epochs=6, lr=0.001)
    assert checked.config_for("simple_cnn") == checked.config
    assert checked.config_for("mlp").lr_schedule == "one_cycle"
    params["train"]["per_architecture"] = None
    assert check_params(params).per_architecture == {}
    del params["train"]["per_architecture"]
    assert check_params(params).config_for("mlp") == checked.config


@pytest.mark.parametrize(
    "override, key",
    [
        ({"alexnet": {"epochs": 2}}, "train.per_architecture.alexnet"),
        ({"mlp": {"momentum": 0.9}}, "train.per_architecture.mlp.momentum"),
        ({"mlp": {"seed": 1}}, "train.per_architecture.mlp.seed"),
        ({"mlp": {"epochs": 0}}, "train.per_architecture.mlp.epochs"),
        ({"mlp": {"lr": -1}}, "train.per_architecture.mlp.lr"),
        ({"mlp": {"lr_schedule": "cosine"}}, "train.per_architecture.mlp.lr_schedule"),
        ({"mlp": 6}, "train.per_architecture.mlp"),
        ([{"mlp": {"epochs": 2}}], "train.per_architecture"),
    ],
)
def test_invalid_per_architecture_settings_name_the_key(params, override, key):
    params["train"]["per_architecture"] = override
    with pytest.raises(ParamError) as err:
        check_params(params)
    assert err.value.key == key


@pytest.mark.parametrize(
    "key, value",
    [
        ("train.architectures", []),
        ("train.architectures", ["simple_cnn", "alexnet"]),
        ("train.architectures", ["mlp", "mlp"]),
        ("train.architectures", "simple_cnn"),
        ("train.epochs", 0),
        ("train.epochs", 1.5),
        ("train.batch_size", 0),
        ("train.batch_size", "256"),
        ("train.batch_size", True),
        ("train.lr", 0),
        ("train.lr", -0.1),
        ("train.lr", float("nan")),
        ("train.weight_decay", -1e-4),
        ("train.lr_schedule", "cosine"),
        ("train.num_threads", 0),
        ("train.num_threads", "2"),
        ("seed", -1),
        ("device", "tpu"),
    ],
)
def test_invalid_params_name_the_key(params, key, value):
    section, _, name = key.rpartition(".")
    (params[section] if section else params)[name] = value
    with pytest.raises(ParamError) as err:
        check_params(params)
    assert err.value.key == key
    assert key in str(err.value)


def test_unknown_architecture_error_lists_known_ones(params):
    params["train"]["architectures"] = ["alexnet"]
    with pytest.raises(ParamError, match="known: simple_cnn, vgg_small, resnet_small, mlp"):
        check_params(params)


def test_thread_count_defaults_to_one_and_null_means_torch_default(params):
    params["train"].pop("num_threads", None)
    assert check_params(params).num_threads == 1
    params["train"]["num_threads"] = None
    assert check_params(params).num_threads is None


def test_missing_train_section_is_named(params):
    del params["train"]["epochs"]
    with pytest.raises(ParamError, match="train.epochs: missing"):
        check_params(params)


def test_train_config_rejects_bad_values():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0, batch_size=8, lr=0.1)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(epochs=1, batch_size=8, lr=math.inf)
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(epochs=1, batch_size=8, lr=0.1, lr_schedule="step")


# --------------------------------------------------------------------------- rendering
def test_batches_are_the_renderer_output_for_the_same_rows(splits):
    split = splits["val"]
    order = torch.tensor([5, 0, 17, 3])
    images, labels = next(split.batches(4, order))
    table = split.table.iloc[order.numpy()]
    expected = bm.render(
        torch.as_tensor(split.digits.numpy()[order.numpy()]),
        table.digit_color.to_numpy(),
        table.bg_color.to_numpy(),
        table.position.to_numpy(),
        canvas=56,
    )
    assert torch.equal(images, expected)
    assert labels.tolist() == table.label.tolist()
    assert images.shape == (4, 3, 56, 56) and images.min() >= 0 and images.max() <= 1


def test_batches_cover_every_row_once(splits):
    split = splits["val"]
    sizes, labels = [], []
    for images, batch_labels in split.batches(64):
        sizes.append(len(images))
        labels.append(batch_labels)
    assert sizes == [64, 64, 64, 8]
    assert torch.equal(torch.cat(labels), split.labels)


def test_split_rejects_mismatched_or_empty_inputs(data_root):
    table, digits = bm.load_split(data_root, "p0.1", "val")
    with pytest.raises(ValueError, match="rows but digits has"):
        RenderedSplit(table, digits[:-1])
    with pytest.raises(ValueError, match="empty split"):
        RenderedSplit(table.iloc[:0], digits[:0])


# --------------------------------------------------------------------------- training
def _train(arch: str, splits, seed: int, global_seed: int = 0, epochs: int = 1):
    torch.manual_seed(0)
    model = build(arch)
    torch.manual_seed(global_seed)  # must not matter: the loop seeds its own randomness
    result = train_model(
        model,
        splits["train"],
        splits["val"],
        TrainConfig(epochs=epochs, batch_size=128, lr=2e-3, seed=seed),
        progress=False,
    )
    return model, result


@pytest.mark.parametrize("arch", ["simple_cnn", "vgg_small"])  # vgg_small has dropout
def test_same_seed_gives_identical_weights(arch, splits):
    model_a, result_a = _train(arch, splits, seed=3, global_seed=11)
    model_b, result_b = _train(arch, splits, seed=3, global_seed=99)
    a, b = model_a.state_dict(), model_b.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert result_a.history == result_b.history


def _learning_rates(config: TrainConfig, n_train: int) -> list[float]:
    """The learning rate of every optimiser step of a run with ``config``."""
    model = nn.Linear(2, 2)
    optimiser = torch.optim.Adam(model.parameters(), lr=config.lr)
    schedule = _lr_schedule(optimiser, config, math.ceil(n_train / config.batch_size))
    rates = []
    for _ in range(config.epochs * math.ceil(n_train / config.batch_size)):
        rates.append(optimiser.param_groups[0]["lr"])
        optimiser.step()
        if schedule is not None:
            schedule.step()
    return rates


def test_constant_schedule_keeps_the_learning_rate():
    assert set(_learning_rates(TrainConfig(epochs=2, batch_size=10, lr=0.01), 95)) == {0.01}


def test_one_cycle_warms_up_to_lr_then_anneals():
    # Smith & Topin (2019): lr/25 -> lr over the first 30% of the steps, cosine down to lr/(25 * 1e4).
    config = TrainConfig(epochs=4, batch_size=10, lr=0.01, lr_schedule="one_cycle")
    rates = np.array(_learning_rates(config, 100))
    assert len(rates) == 40
    assert rates[0] == pytest.approx(0.01 / 25)
    peak = int(rates.argmax())
    assert rates[peak] == pytest.approx(0.01, rel=1e-3) and peak == pytest.approx(0.3 * 40, abs=1)
    assert (np.diff(rates[: peak + 1]) > 0).all() and (np.diff(rates[peak:]) < 0).all()
    assert rates[-1] < 0.01 / 1000


def test_one_cycle_training_is_deterministic_and_differs_from_constant(splits):
    def run(schedule):
        torch.manual_seed(0)
        model = build("simple_cnn")
        result = train_model(
            model,
            splits["train"],
            splits["val"],
            TrainConfig(epochs=2, batch_size=128, lr=5e-3, seed=1, lr_schedule=schedule),
            progress=False,
        )
        return model.head.weight.detach().clone(), result.history

    weights_a, history_a = run("one_cycle")
    weights_b, history_b = run("one_cycle")
    assert torch.equal(weights_a, weights_b) and history_a == history_b
    assert not torch.equal(weights_a, run("constant")[0])


def test_another_seed_gives_other_weights(splits):
    model_a, _ = _train("simple_cnn", splits, seed=3)
    model_b, _ = _train("simple_cnn", splits, seed=4)
    assert not torch.equal(model_a.head.weight, model_b.head.weight)


def test_history_has_one_finite_record_per_epoch(splits):
    _, result = _train("mlp", splits, seed=0, epochs=2)
    curve = result.curve()
    assert curve.columns.tolist() == ["epoch", "train_loss", "train_acc", "val_acc"]
    assert curve.epoch.tolist() == [1, 2]
    assert np.isfinite(curve.to_numpy(float)).all()
    assert curve.train_acc.between(0, 1).all() and curve.val_acc.between(0, 1).all()
    assert curve.train_loss.iloc[1] < curve.train_loss.iloc[0]
    assert result.device == "cpu" and result.seconds > 0


class _NaNAfterFirstStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 56 * 56, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        logits = self.linear(x.flatten(1))
        return logits * float("nan") if self.calls > 1 else logits


def test_nan_loss_stops_training_with_a_clear_error(splits):
    model = _NaNAfterFirstStep()
    with pytest.raises(NonFiniteLossError, match="training loss became nan in epoch 1.*lower train.lr"):
        train_model(
            model, splits["train"], splits["val"], TrainConfig(epochs=3, batch_size=32, lr=1e-3), progress=False
        )
    assert model.calls <= 10  # stopped at the first check, not after three epochs
