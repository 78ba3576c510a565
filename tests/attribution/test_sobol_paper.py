"""Sobol attribution against Fel et al. (NeurIPS 2021), Sec. 3.3, Eq. 6, written out here.

The model sees a constant-one image inpainted towards 0, so each input *is* its
upsampled mask: the test reads the design back from the inputs, checks its structure
(C(i) = A with column i from B) and computes the paper's estimator on the outputs.
"""

import numpy as np
import pytest
import torch

from shortcut_audit import attribution as A

GRID, SIZE, N = 2, 8, 16
CELL = SIZE // GRID


class RecordingMaskModel:
    """Records the mask cells it sees (constant-one inputs) and returns f(cells) for 2 classes."""

    def __init__(self):
        self.cells, self.outputs = [], []

    def __call__(self, x):
        cells = x[:, 0, ::CELL, ::CELL].reshape(x.shape[0], -1)  # nearest masks: one value per cell
        m = cells.double()
        f = torch.tanh(1.5 * m[:, 0] - m[:, 3]) + 2.0 * m[:, 1] * m[:, 2] + 0.3 * m[:, 3] ** 2
        self.cells.append(cells.clone())
        self.outputs.append(f.clone())
        return torch.stack([f, -f], dim=1).float()


def paper_total_indices(model: RecordingMaskModel, n: int, d: int) -> np.ndarray:
    """Eq. 6 / Algorithm 1: S_Ti = sum_j (f(A_j) - f(C(i)_j))^2 / (2N) / V, V the sample variance of f(A)."""
    cells = torch.cat(model.cells).numpy()
    y = torch.cat(model.outputs).float().double().numpy()
    assert len(y) == n * (d + 1)
    a_cells, f_a = cells[:n], y[:n]
    for i in range(d):  # C(i) shares every column with A but column i
        c_cells = cells[n * (1 + i) : n * (2 + i)]
        assert np.array_equal(np.delete(c_cells, i, axis=1), np.delete(a_cells, i, axis=1))
    f0 = f_a.sum() / n
    v = ((f_a - f0) ** 2).sum() / (n - 1)
    return np.array([((f_a - y[n * (1 + i) : n * (2 + i)]) ** 2).sum() / (2 * n) / v for i in range(d)])


def bilinear(cells: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a (g, g) grid to (size, size), cell values at the cell centres."""
    g = cells.shape[0]
    coords = np.clip((np.arange(size) + 0.5) * g / size - 0.5, 0, g - 1)
    low = np.floor(coords).astype(int)
    high = np.minimum(low + 1, g - 1)
    frac = coords - low
    rows = cells[low] * (1 - frac)[:, None] + cells[high] * frac[:, None]
    return rows[:, low] * (1 - frac)[None, :] + rows[:, high] * frac[None, :]


def _explain(**kwargs):
    model = RecordingMaskModel()
    maps = A.SobolAttribution(model, grid_size=GRID, nb_design=N, batch_size=1024, **kwargs)(
        torch.ones(1, 1, SIZE, SIZE), [0]
    )
    return model, maps[0].double().numpy()


def test_total_indices_use_eq6_with_the_sample_variance_of_a():
    model, maps = _explain()
    expected = paper_total_indices(model, N, GRID * GRID)
    corners = maps[[0, 0, -1, -1], [0, -1, 0, -1]]  # on a 2 x 2 grid each image corner carries its cell's index
    np.testing.assert_allclose(corners, expected, rtol=1e-5, atol=1e-7)


def test_final_map_is_the_bilinear_upsampling_of_the_indices_by_default():
    model, maps = _explain()
    expected = bilinear(paper_total_indices(model, N, GRID * GRID).reshape(GRID, GRID), SIZE)
    np.testing.assert_allclose(maps, expected, rtol=1e-5, atol=1e-7)


def test_nearest_map_upsampling_keeps_cells_constant():
    _, maps = _explain(map_upsampling="nearest")
    blocks = maps.reshape(GRID, CELL, GRID, CELL)
    assert np.ptp(blocks, axis=(1, 3)).max() == 0.0


def test_pooled_variance_rescales_total_indices_by_n_over_n_minus_one():
    # without B the pooled (1/n) variance is that of f(A) alone: V_pooled = V (N - 1) / N
    _, sample = _explain(map_upsampling="nearest")
    _, pooled = _explain(map_upsampling="nearest", variance="pooled")
    np.testing.assert_allclose(pooled, sample * N / (N - 1), rtol=1e-5)


@pytest.mark.parametrize("variance", ["sample_a", "pooled"])
def test_constant_model_gives_zero_indices_with_either_variance(variance):
    with pytest.warns(RuntimeWarning, match="constant"):
        maps = A.SobolAttribution(lambda x: torch.ones(x.shape[0], 2), grid_size=2, nb_design=4, variance=variance)(
            torch.ones(1, 1, 8, 8), [0]
        )
    assert (maps == 0).all()
