"""Biased-MNIST: dataset ids, params, factor sampling (Shrestha et al. 2021), renderer."""

from __future__ import annotations

import copy
import subprocess
import sys

import numpy as np
import pytest
import torch

import shortcut_audit  # noqa: F401
from shortcut_audit.config import ParamError
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.data import mnist

FACTORS = bm.FACTORS


@pytest.fixture(scope="module")
def real_mnist() -> dict[str, np.ndarray]:
    return mnist.load_mnist(None).arrays


@pytest.fixture(scope="module")
def params() -> dict:
    return {
        "seed": 0,
        "biased_mnist": {
            "datasets": ["p0.1", "p0.5", "bg_color-p0.9"],
            "biased_factors": list(FACTORS),
            "canvas": 56,
            "n_train": 1000,
            "n_val": 200,
            "n_test": 300,
        },
    }


# --------------------------------------------------------------------------- ids and params
@pytest.mark.parametrize(
    "dataset_id, p, biased",
    [
        ("p0.5", 0.5, FACTORS),
        ("p1", 1.0, FACTORS),
        ("p0.99", 0.99, FACTORS),
        ("bg_color-p0.9", 0.9, ("bg_color",)),
        ("position+digit_color-p0.7", 0.7, ("digit_color", "position")),
    ],
)
def test_parse_dataset_id(dataset_id, p, biased):
    assert bm.parse_dataset_id(dataset_id) == bm.DatasetSpec(p=p, biased=biased)


def test_parse_dataset_id_uses_default_biased_factors():
    assert bm.parse_dataset_id("p0.5", default_biased=["position"]).biased == ("position",)
    params = {"biased_mnist": {"biased_factors": ["bg_color"]}}
    assert bm.dataset_spec(params, "p0.8") == bm.DatasetSpec(0.8, ("bg_color",))


@pytest.mark.parametrize(
    "dataset_id, message",
    [
        ("p0", "outside"),
        ("p1.5", "outside"),
        ("0.5", "malformed"),
        ("p-0.5", "malformed"),
        ("hue-p0.5", "unknown factor"),
        ("bg_color+bg_color-p0.5", "named twice"),
    ],
)
def test_parse_dataset_id_rejects(dataset_id, message):
    with pytest.raises(ValueError, match=message):
        bm.parse_dataset_id(dataset_id)


def test_check_params_accepts_the_defaults(params):
    config = bm.check_params(params)
    assert config.datasets == ("p0.1", "p0.5", "bg_color-p0.9")
    assert config.specs[2] == bm.DatasetSpec(0.9, ("bg_color",))
    assert (config.canvas, config.n_train, config.n_val, config.n_test) == (56, 1000, 200, 300)


@pytest.mark.parametrize(
    "key, value, named",
    [
        ("datasets", [], "biased_mnist.datasets"),
        ("datasets", "p0.5", "biased_mnist.datasets"),
        ("datasets", ["p0.5", "p1.2"], r"biased_mnist.datasets\[1\]"),
        ("datasets", ["p0.5", "p0"], r"biased_mnist.datasets\[1\]"),
        ("datasets", ["hue-p0.5"], r"biased_mnist.datasets\[0\]"),
        ("datasets", ["p0.5", "p0.5"], "biased_mnist.datasets: dataset ids must be unique"),
        ("datasets", ["p0.5", "p0.50"], "biased_mnist.datasets: two ids describe the same dataset"),
        ("biased_factors", ["hue"], "biased_mnist.biased_factors"),
        ("biased_factors", [], "biased_mnist.biased_factors"),
        ("canvas", 27, "biased_mnist.canvas"),
        ("canvas", 56.0, "biased_mnist.canvas"),
        ("n_train", 0, "biased_mnist.n_train"),
        ("n_train", 50001, "biased_mnist.n_train"),
        ("n_val", 10001, "biased_mnist.n_val"),
        ("n_test", True, "biased_mnist.n_test"),
        ("n_test", None, "biased_mnist.n_test"),
    ],
)
def test_check_params_names_the_bad_key(params, key, value, named):
    bad = copy.deepcopy(params)
    bad["biased_mnist"][key] = value
    with pytest.raises(ParamError, match=named):
        bm.check_params(bad)


def test_check_params_missing_section_or_key(params):
    with pytest.raises(ParamError, match="biased_mnist: missing"):
        bm.check_params({"seed": 0})
    bad = copy.deepcopy(params)
    del bad["biased_mnist"]["n_val"]
    with pytest.raises(ParamError, match="biased_mnist.n_val: missing"):
        bm.check_params(bad)


# --------------------------------------------------------------------------- sampling
def test_linked_values():
    labels = torch.arange(10)
    assert bm.linked_value("digit_color", labels).tolist() == list(range(10))
    assert bm.linked_value("bg_color", labels).tolist() == list(range(10))
    assert bm.linked_value("position", labels).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 0]
    with pytest.raises(ValueError, match="unknown factor"):
        bm.linked_value("hue", labels)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_linked_rate_matches_p_on_10000_samples(real_mnist, p):
    """Biased factors take the linked value with probability p; non-linked values are
    uniform over the other N - 1; unbiased factors are uniform (Shrestha et al. 2021)."""
    labels = real_mnist["test_labels"].astype(np.int64)  # 10,000 real MNIST labels
    for biased in (FACTORS, ("bg_color",)):
        spec = bm.DatasetSpec(p=p, biased=biased)
        table = bm.sample_factor_table(np.arange(len(labels)), labels, spec, bm.stable_rng(0, "t", str(p)))
        assert len(table) == 10_000
        for factor in FACTORS:
            rate = bm.linked_rate(table, factor)
            expected = p if factor in biased else 1.0 / bm.N_VALUES[factor]
            assert abs(rate - expected) < 0.02, (biased, factor, rate)
    # Non-linked draws are uniform over the other values: offsets 1..N-1 from the linked value.
    offsets = (table["digit_color"] - labels) % 10
    counts = np.bincount(offsets[offsets > 0], minlength=10)[1:]
    assert np.all(np.abs(counts / counts.sum() - 1 / 9) < 0.02)


def test_unbiased_factors_are_uniform(real_mnist):
    labels = real_mnist["test_labels"].astype(np.int64)
    table = bm.sample_factor_table(np.arange(10_000), labels, bm.DatasetSpec(0.9, ("bg_color",)), bm.stable_rng(1))
    for factor in ("digit_color", "position"):
        freq = np.bincount(table[factor], minlength=bm.N_VALUES[factor]) / len(table)
        assert np.all(np.abs(freq - 1 / bm.N_VALUES[factor]) < 0.02), factor


def _dataset(real_mnist, dataset_id, seed=0, n=(1000, 200, 300)):
    return bm.make_dataset(
        dataset_id, bm.parse_dataset_id(dataset_id), real_mnist["train_labels"], real_mnist["test_labels"], seed, *n
    )


def test_splits_follow_the_contract(real_mnist):
    tables = _dataset(real_mnist, "p0.9")
    assert list(tables) == list(bm.SPLITS)
    for split, table in tables.items():
        assert list(table.columns) == list(bm.TABLE_COLUMNS)
        assert [str(t) for t in table.dtypes] == ["int64"] * 5 + ["bool"] * 3
        assert table["mnist_index"].is_unique
        part = "train" if split in ("train", "val") else "test"
        assert np.array_equal(table["label"], real_mnist[f"{part}_labels"][table["mnist_index"]])
        for factor in FACTORS:
            linked = bm.linked_value(factor, table["label"].to_numpy()).numpy()
            assert np.array_equal(table[f"{factor}_aligned"], table[factor] == linked)
            assert table[factor].between(0, bm.N_VALUES[factor] - 1).all()
    assert (len(tables["train"]), len(tables["val"]), len(tables["test_unbiased"])) == (1000, 200, 300)
    assert tables["train"]["mnist_index"].max() < 50_000
    assert tables["val"]["mnist_index"].between(50_000, 59_999).all()
    assert np.array_equal(tables["test_unbiased"]["mnist_index"], tables["test_aligned"]["mnist_index"])
    # test_aligned follows p = 0.9, test_unbiased p = 0.1.
    assert tables["test_aligned"]["bg_color_aligned"].mean() > 0.8
    assert tables["test_unbiased"]["bg_color_aligned"].mean() < 0.2


def test_generation_is_deterministic_and_keyed_by_dataset(real_mnist):
    first, again = _dataset(real_mnist, "p0.5"), _dataset(real_mnist, "p0.5")
    for split in bm.SPLITS:
        assert first[split].equals(again[split])
    other = _dataset(real_mnist, "p0.6")
    assert not first["train"]["bg_color"].equals(other["train"]["bg_color"])
    assert first["train"]["mnist_index"].equals(other["train"]["mnist_index"])  # same digits, other factors
    assert first["test_unbiased"].equals(other["test_unbiased"])  # shared unbiased test set
    reseeded = _dataset(real_mnist, "p0.5", seed=1)
    assert not first["train"]["mnist_index"].equals(reseeded["train"]["mnist_index"])


def test_seeding_is_stable_across_processes():
    code = (
        "import shortcut_audit.data.biased_mnist as bm;"
        "print(bm.stable_rng(7, 'p0.5', 'train').integers(0, 10**9, 4).tolist())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": s}
        ).stdout
        for s in ("1", "2")
    }
    assert outputs == {str(bm.stable_rng(7, "p0.5", "train").integers(0, 10**9, 4).tolist()) + "\n"}


def test_summary_rows(real_mnist):
    spec = bm.parse_dataset_id("bg_color-p0.9")
    rows = bm.summary_rows("bg_color-p0.9", spec, _dataset(real_mnist, "bg_color-p0.9"))
    assert len(rows) == len(bm.SPLITS) * len(FACTORS)
    by_key = {(r["split"], r["factor"]): r for r in rows}
    assert by_key[("train", "bg_color")]["biased"] and by_key[("train", "bg_color")]["p"] == 0.9
    assert not by_key[("train", "position")]["biased"]
    assert by_key[("train", "position")]["expected_linked_rate"] == pytest.approx(1 / 9)
    assert by_key[("test_unbiased", "position")]["p"] == 0.1 and by_key[("test_unbiased", "position")]["biased"]


# --------------------------------------------------------------------------- palettes
def test_palettes_are_distinct_and_bg_never_resembles_a_digit_colour():
    for palette in (bm.DIGIT_PALETTE, bm.BG_PALETTE):
        assert palette.shape == (10, 3) and palette.dtype == torch.float32
        assert palette.min() >= 0 and palette.max() <= 1
        within = torch.cdist(palette, palette) + torch.eye(10) * 9
        assert within.min() > 0.2
    across = torch.cdist(bm.BG_PALETTE, bm.DIGIT_PALETTE)
    assert across.min() > 0.5  # every background colour is far from every digit colour
    assert bm.DIGIT_PALETTE.max(dim=1).values.min() >= 0.9 and bm.BG_PALETTE.max(dim=1).values.max() <= 0.45


# --------------------------------------------------------------------------- renderer
def _inputs(real_mnist, n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    digits = torch.from_numpy(real_mnist["test_images"][:n].copy())
    return (
        digits,
        torch.randint(0, 10, (n,), generator=g),
        torch.randint(0, 10, (n,), generator=g),
        torch.randint(0, 9, (n,), generator=g),
    )


@pytest.mark.parametrize("canvas", [28, 56, 84])
def test_render_known_answers(real_mnist, canvas):
    digits, dc, bc, pos = _inputs(real_mnist)
    images = bm.render(digits, dc, bc, pos, canvas=canvas)
    assert images.shape == (64, 3, canvas, canvas) and images.dtype == torch.float32
    assert images.min() >= 0 and images.max() <= 1
    offsets = bm.position_offsets(canvas).tolist()
    cell = canvas / 3
    for i in range(64):
        r, c = offsets[pos[i] // 3], offsets[pos[i] % 3]
        ink = torch.zeros(canvas, canvas)
        ink[r : r + 28, c : c + 28] = digits[i].float() / 255
        fg, bg = bm.DIGIT_PALETTE[dc[i]], bm.BG_PALETTE[bc[i]]
        img = images[i].permute(1, 2, 0)
        assert torch.allclose(img[ink == 1], fg.expand((ink == 1).sum(), 3))  # full ink = digit colour
        assert torch.allclose(img[ink == 0], bg.expand((ink == 0).sum(), 3))  # no ink = background colour
        assert torch.allclose(img, bg + ink[..., None] * (fg - bg), atol=1e-6)  # alpha compositing
        rows, cols = torch.nonzero(ink > 0, as_tuple=True)
        centre_row, centre_col = (r + 13.5), (c + 13.5)
        if canvas > 28:  # the digit box's centre lies in cell k of the 3x3 grid
            assert int(centre_row // cell) * 3 + int(centre_col // cell) == pos[i]
        assert rows.min() >= r and rows.max() < r + 28 and cols.min() >= c and cols.max() < c + 28


def test_render_places_digit_in_each_cell(real_mnist):
    digits = torch.from_numpy(real_mnist["test_images"][:1].copy()).expand(9, 28, 28)
    images = bm.render(digits, torch.full((9,), 9), torch.zeros(9, dtype=torch.long), torch.arange(9), canvas=84)
    for k in range(9):
        bright = images[k].min(dim=0).values > 0.5  # white digit ink on a dark background
        rows, cols = torch.nonzero(bright, as_tuple=True)
        assert int(rows.float().mean() // 28) == k // 3 and int(cols.float().mean() // 28) == k % 3


def test_render_is_deterministic_and_accepts_arrays(real_mnist):
    digits, dc, bc, pos = _inputs(real_mnist)
    first = bm.render(digits, dc, bc, pos)
    assert torch.equal(first, bm.render(digits.clone(), dc.clone(), bc.clone(), pos.clone()))
    assert torch.equal(first, bm.render(digits.numpy(), dc.numpy(), bc.numpy(), pos.numpy()))
    # Rendering a batch equals rendering its parts.
    assert torch.equal(first[10:20], bm.render(digits[10:20], dc[10:20], bc[10:20], pos[10:20]))


def test_render_rejects_bad_inputs(real_mnist):
    digits, dc, bc, pos = _inputs(real_mnist, n=4)
    with pytest.raises(ValueError, match="position values must lie in 0..8"):
        bm.render(digits, dc, bc, torch.tensor([0, 1, 2, 9]))
    with pytest.raises(ValueError, match="digit_color must have shape"):
        bm.render(digits, dc[:3], bc, pos)
    with pytest.raises(ValueError, match=r"digits must have shape \(N, 28, 28\)"):
        bm.render(digits[:, :27], dc, bc, pos)
    with pytest.raises(ValueError, match="canvas must be >= 28"):
        bm.render(digits, dc, bc, pos, canvas=20)


def test_render_empty_batch(real_mnist):
    empty = torch.zeros(0, dtype=torch.long)
    assert bm.render(torch.zeros(0, 28, 28, dtype=torch.uint8), empty, empty, empty).shape == (0, 3, 56, 56)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_render_cpu_and_cuda_agree(real_mnist):
    digits, dc, bc, pos = _inputs(real_mnist, n=256)
    cpu = bm.render(digits, dc, bc, pos)
    gpu = bm.render(digits.cuda(), dc.cuda(), bc.cuda(), pos.cuda())
    assert gpu.device.type == "cuda"
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-6)
    mask_gpu = bm.digit_mask(digits.cuda(), pos.cuda())
    assert mask_gpu.device.type == "cuda" and torch.equal(bm.digit_mask(digits, pos), mask_gpu.cpu())


def test_digit_mask_marks_mostly_digit_coloured_pixels(real_mnist):
    digits, dc, bc, pos = _inputs(real_mnist)
    mask = bm.digit_mask(digits, pos)
    assert mask.shape == (64, 56, 56) and mask.dtype == torch.bool
    images = bm.render(digits, dc, bc, pos)
    fg = bm.DIGIT_PALETTE[dc][:, :, None, None]
    bg = bm.BG_PALETTE[bc][:, :, None, None]
    closer_to_digit = ((images - fg) ** 2).sum(1) < ((images - bg) ** 2).sum(1)
    assert torch.equal(mask, closer_to_digit)
    assert mask.sum() == (digits > 127).sum()  # every pixel of ink > 0.5, and only those
    assert mask.any(dim=(1, 2)).all()
