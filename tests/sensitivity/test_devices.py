"""Device handling: f sees points on the requested device, results come back on the CPU."""

import pytest
import torch

from shortcut_audit.sensitivity import MaskPartition, compose, morris, sobol

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _recording(device_types):
    def f(x):
        device_types.add(x.device.type)
        return torch.sin(6 * x[:, 0]) + x[:, 1] * x[:, 2]

    return f


def test_cpu_run_keeps_points_on_the_cpu_and_returns_cpu_tensors():
    seen = set()
    result = sobol(_recording(seen), 3, n=64, device="cpu")
    screening = morris(_recording(seen), 3, n_trajectories=4, device="cpu")
    assert seen == {"cpu"}
    assert result.total.device.type == screening.mu_star.device.type == "cpu"


@cuda
@pytest.mark.parametrize("method", ["sobol", "morris"])
def test_cuda_run_matches_the_cpu_run(method):
    seen = set()
    run = {
        "sobol": lambda device: sobol(_recording(seen), 3, n=256, device=device, seed=1).total,
        "morris": lambda device: morris(_recording(seen), 3, n_trajectories=20, device=device, seed=1).mu_star,
    }[method]
    on_cuda, on_cpu = run("cuda"), run("cpu")
    assert "cuda" in seen and on_cuda.device.type == "cpu"
    torch.testing.assert_close(on_cuda, on_cpu, rtol=1e-4, atol=1e-5)


@cuda
def test_cuda_peak_memory_does_not_grow_with_n():
    image = torch.rand(3, 56, 56, device="cuda")
    partition = MaskPartition(image, 3)
    f = compose(lambda images: images.mean(dim=(1, 2, 3)), partition)
    batch_bytes = 256 * image.numel() * 4
    peaks = {}
    for n in (64, 1024):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        sobol(f, partition.d, n=n, batch_size=256, device="cuda")
        peaks[n] = torch.cuda.max_memory_allocated() - base
    assert abs(peaks[1024] - peaks[64]) < batch_bytes, peaks
