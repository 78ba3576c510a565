"""Peak memory of a Sobol mask explanation does not grow with N: it is bounded by one batch.

The measurement runs in a fresh interpreter. Peak resident memory is reset before each
run (Linux ``/proc/self/clear_refs``) and glibc is told to serve large blocks with
``mmap`` so that freed memory leaves the process at once and the peak reflects what
the code holds, not what the allocator caches.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BATCH_SIZE = 256
IMAGE_SHAPE = (3, 56, 56)

_PROBE = textwrap.dedent(
    f"""
    import json, torch
    torch.set_num_threads(1)
    from shortcut_audit.sensitivity import MaskPartition, compose, sobol

    def resident(field):
        for line in open("/proc/self/status"):
            if line.startswith(field):
                return int(line.split()[1]) * 1024

    image = torch.rand{IMAGE_SHAPE}
    partition = MaskPartition(image, 3)
    largest = []
    def model(images):
        largest.append(images.shape[0])
        return images.mean(dim=(1, 2, 3))
    f = compose(model, partition)
    sobol(f, partition.d, n=16, batch_size={BATCH_SIZE})  # warm-up
    peaks = {{}}
    for n in (64, 1024):
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        before = resident("VmRSS:")
        sobol(f, partition.d, n=n, batch_size={BATCH_SIZE})
        peaks[n] = resident("VmHWM:") - before
    print(json.dumps({{"peaks": peaks, "largest_batch": max(largest)}}))
    """
)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux peak-RSS reset")
def test_peak_memory_for_n_64_and_1024_differs_by_less_than_one_batch_of_inputs():
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    peaks = {int(n): bytes_ for n, bytes_ in report["peaks"].items()}
    batch_bytes = BATCH_SIZE * IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2] * 4
    materialised_bytes = 1024 * (9 + 2) * batch_bytes // BATCH_SIZE
    assert report["largest_batch"] <= BATCH_SIZE
    assert abs(peaks[1024] - peaks[64]) < batch_bytes, (peaks, batch_bytes)
    # The peak is a few batches at most, far below the N (d + 2) images of the design.
    assert peaks[1024] < 3 * batch_bytes < materialised_bytes / 10, (peaks, batch_bytes)
