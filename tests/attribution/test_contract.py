"""The shared contract of every method: black-box purity, batching, determinism, bounded batches."""

import warnings

import numpy as np
import pytest
import torch

from shortcut_audit import attribution as A

from .conftest import LinearModel, NoBackwardTorchModel, NoGradientsNumpyModel, RegionModel, TinyCNN, quadrant

SMALL_BLACK_BOX = {
    "sobol": dict(grid_size=3, nb_design=4),
    "sobol_signed": dict(grid_size=3, nb_design=4, index="signed_total"),
    "sobol_first_blurring": dict(grid_size=3, nb_design=4, index="first", perturbation="blurring"),
    "sobol_amplitude": dict(grid_size=3, nb_design=4, perturbation="amplitude"),
    "morris_grid": dict(grid_size=2, n_trajectories=3, levels=4),
    "rise": dict(nb_masks=20, grid_size=3),
    "occlusion": dict(patch_size=4, stride=3),
    "geex": dict(n_samples=6),
    "gers": dict(n_samples=6, noise_size=3),
    "igeex": dict(n_samples=3, steps=3),
}
SMALL_WHITE_BOX = {
    "saliency": dict(),
    "gradient_input": dict(),
    "integrated_gradients": dict(steps=5),
    "integrated_gradients_blur": dict(steps=5, baseline="blur", blur_sigma=1.0),
    "smoothgrad": dict(n_samples=5),
    "expected_gradients": dict(n_samples=6, references=torch.rand(4, 3, 12, 12)),
    "gradcam": dict(),
}


def method_name(key: str) -> str:
    for name in sorted(A.METHODS, key=len, reverse=True):
        if key.startswith(name):
            return name
    raise KeyError(key)


def make(key, model, **overrides):
    params = {**SMALL_BLACK_BOX, **SMALL_WHITE_BOX}[key]
    return A.build(method_name(key), model, **{**params, **overrides})


def model_for(key):
    if key in SMALL_WHITE_BOX:
        return TinyCNN().eval()
    return RegionModel(quadrant(12))


IMAGES = torch.rand(5, 3, 12, 12, generator=torch.Generator().manual_seed(3))
TARGETS = torch.tensor([0, 1, 0, 1, 1])


@pytest.mark.parametrize("key", sorted(SMALL_BLACK_BOX))
@pytest.mark.parametrize("wrapper", ["numpy", "torch_no_backward"])
def test_black_box_methods_never_call_backward_or_read_parameters(key, wrapper):
    region = quadrant(12)
    model = NoGradientsNumpyModel(region.numpy()) if wrapper == "numpy" else NoBackwardTorchModel(region)
    maps = make(key, model, batch_size=7)(IMAGES, TARGETS)
    assert maps.shape == (5, 12, 12) and torch.isfinite(maps).all()


def test_registry_lists_black_box_methods_and_rejects_unknown_names():
    assert set(A.BLACK_BOX) == {"sobol", "morris_grid", "rise", "occlusion", "geex", "gers", "igeex"}
    assert all(not A.METHODS[n].requires_gradients for n in A.BLACK_BOX)
    with pytest.raises(ValueError, match="known: .*sobol"):
        A.build("lime", RegionModel(quadrant(4)))


@pytest.mark.parametrize("key", sorted({**SMALL_BLACK_BOX, **SMALL_WHITE_BOX}))
def test_batched_equals_one_by_one_and_is_deterministic_and_bounded(key):
    model = model_for(key)
    full = make(key, model, batch_size=16)(IMAGES, TARGETS)
    again = make(key, model, batch_size=16)(IMAGES, TARGETS)
    torch.testing.assert_close(full, again, rtol=0, atol=0)
    singles = torch.cat([make(key, model, batch_size=16)(IMAGES[i : i + 1], TARGETS[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(full, singles, rtol=1e-4, atol=1e-5)
    recorder = _BatchRecorder(model)
    small = make(key, recorder, batch_size=3)(IMAGES, TARGETS)
    assert recorder.max_batch <= 3
    torch.testing.assert_close(full, small, rtol=1e-4, atol=1e-5)


class _BatchRecorder(torch.nn.Module):
    """Wraps a model and records the largest batch it is ever given."""

    def __init__(self, model):
        super().__init__()
        self.inner = model if isinstance(model, torch.nn.Module) else None
        self.fn = model
        self.max_batch = 0

    def forward(self, x):
        self.max_batch = max(self.max_batch, x.shape[0])
        return self.fn(x)


@pytest.mark.parametrize("key", sorted(SMALL_BLACK_BOX))
def test_constant_model_gives_zero_maps_with_a_warning(key):
    def constant(x):
        return torch.ones(x.shape[0], 2)

    with pytest.warns(RuntimeWarning, match="constant"):
        maps = make(key, constant)(IMAGES[:2], TARGETS[:2])
    assert (maps == 0).all()


@pytest.mark.parametrize("key", sorted(SMALL_BLACK_BOX))
def test_nan_model_output_is_a_clear_error(key):
    def nan_model(x):
        return torch.full((x.shape[0], 2), float("nan"))

    with pytest.raises(ValueError, match="NaN"):
        make(key, nan_model)(IMAGES[:2], TARGETS[:2])


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("sobol", dict(grid_size=0)),
        ("sobol", dict(nb_design=1)),
        ("sobol", dict(perturbation="noise")),
        ("sobol", dict(index="second")),
        ("sobol", dict(estimator="nope")),
        ("sobol", dict(sampler="nope")),
        ("rise", dict(keep_prob=1.0)),
        ("rise", dict(keep_prob=0.0)),
        ("rise", dict(nb_masks=0)),
        ("occlusion", dict(patch_size=0)),
        ("occlusion", dict(stride=(1, 2, 3))),
        ("geex", dict(sigma=0.0)),
        ("geex", dict(loss="mse")),
        ("gers", dict(noise_size=0)),
        ("geex", dict(noise="pixel")),
        ("geex", dict(model_output="scores")),
        ("sobol", dict(map_upsampling="cubic")),
        ("sobol", dict(variance="population")),
        ("smoothgrad", dict(channel_reduction="max")),
        ("igeex", dict(steps=0)),
        ("morris_grid", dict(levels=3)),
        ("morris_grid", dict(sampling="global")),
        ("morris_grid", dict(n_trajectories=1)),
        ("morris_grid", dict(statistic="mu")),
        ("integrated_gradients", dict(baseline="noise")),
        ("smoothgrad", dict(noise_level=-1.0)),
        ("rise", dict(batch_size=0)),
    ],
)
def test_invalid_arguments_are_rejected(name, kwargs):
    with pytest.raises(ValueError):
        A.build(name, TinyCNN(), **kwargs)


def test_shape_errors_name_the_problem():
    explainer = A.Occlusion(RegionModel(quadrant(12)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        explainer(IMAGES[0], TARGETS[:1])
    with pytest.raises(ValueError, match="targets"):
        explainer(IMAGES, TARGETS[:2])


def test_non_square_images_keep_their_orientation():
    region = torch.zeros(8, 16, dtype=torch.bool)
    region[:4, 12:] = True
    x = torch.rand(2, 1, 8, 16, generator=torch.Generator().manual_seed(0)) + 0.5
    maps = A.SobolAttribution(RegionModel(region), grid_size=(2, 4), nb_design=8, map_upsampling="nearest")(x, [0, 0])
    assert maps.shape == (2, 8, 16)
    assert (maps[:, region] > 0).all() and (maps[:, ~region].abs() < 1e-6).all()


def test_numpy_inputs_and_scalar_target_are_accepted():
    maps = A.Occlusion(RegionModel(quadrant(12)), patch_size=6, stride=6)(IMAGES.numpy(), 0)
    assert maps.shape == (5, 12, 12)


def test_white_box_linear_baselines():
    w = torch.randn(2, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    x = torch.rand(3, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([1, 0, 1])
    model = LinearModel(w)
    torch.testing.assert_close(A.Saliency(model)(x, t), w[t].abs().amax(1))
    torch.testing.assert_close(A.GradientInput(model)(x, t), (x * w[t]).sum(1))
    torch.testing.assert_close(A.SmoothGrad(model, n_samples=4)(x, t), w[t].abs().amax(1))
    torch.testing.assert_close(A.SmoothGrad(model, n_samples=4, channel_reduction="sum")(x, t), w[t].sum(1))
    ref = torch.rand(1, 3, 6, 6)
    eg = A.ExpectedGradients(model, references=ref, n_samples=5)(x, t)
    torch.testing.assert_close(eg, ((x - ref) * w[t]).sum(1), rtol=1e-5, atol=1e-5)


def test_gradcam_matches_its_definition_on_the_last_conv_layer():
    model = TinyCNN().eval()
    x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([2, 0])
    layer = model.features[2]
    assert A.gradcam.last_conv_layer(model) is layer
    acts = layer(model.features[1](model.features[0](x))).detach().requires_grad_(True)
    scores = model.head(torch.relu(acts).mean(dim=(2, 3)))
    (grads,) = torch.autograd.grad(scores.gather(1, t[:, None]).sum(), acts)
    cam = torch.relu((grads.mean(dim=(2, 3), keepdim=True) * acts.detach()).sum(1))
    torch.testing.assert_close(A.GradCAM(model)(x, t), cam)  # same spatial size: upsampling is the identity


def test_gradcam_needs_a_module():
    with pytest.raises(TypeError):
        A.GradCAM(lambda x: x)


def test_white_box_needs_torch_outputs():
    def numpy_model(x):
        return np.zeros((x.shape[0], 2))

    with pytest.raises(TypeError):
        A.Saliency(numpy_model)(IMAGES[:1], TARGETS[:1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert A.Saliency.requires_gradients and not A.RISE.requires_gradients


@pytest.mark.parametrize("patch_size, stride", [(3, 5), ((4, 2), (4, 3)), (2, (1, 3))])
def test_occlusion_refuses_a_stride_that_skips_pixels(patch_size, stride):
    """Windows farther apart than their size leave pixels never occluded (their mean drop is 0/0)."""
    with pytest.raises(ValueError, match=r"stride .* larger than patch_size .* never be occluded"):
        A.Occlusion(RegionModel(quadrant(12)), patch_size=patch_size, stride=stride)


def test_occlusion_with_stride_equal_to_patch_tiles_the_image():
    region = quadrant(12)
    maps = A.Occlusion(RegionModel(region), patch_size=5, stride=5)(IMAGES[:2], TARGETS[:2])
    assert torch.isfinite(maps).all() and (maps[:, region].sum() > 0)
