"""Benchmark: the sensitivity engine against SALib, and its overhead around a CNN.

(a) Wall time of ``morris`` and ``sobol`` on Sobol's g-function against SALib's
    ``sample`` + ``analyze`` at the same N, d, number of bootstrap resamples and
    evaluations (both vectorised: numpy for SALib, torch for us), measured in the
    same run, both single-threaded; the ratio is SALib time / our time (> 1: we are
    faster).
(b) With a small CNN (4 conv layers, 56 x 56 RGB) as ``f`` and images built inside
    ``f`` by a partition (Sobol masks: 8 x 8 cells, inpainting to 0; MoSIP grid:
    8 x 8 regions, local sampling), the share of the wall time spent outside the
    forward passes (design rows, image building, estimators, bootstrap).

Run: ``python bench/bench_sensitivity.py`` (writes ``bench/results/sensitivity.json``).
"""
from __future__ import annotations

import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import shortcut_audit  # noqa: F401  (torchvision shim first)
from shortcut_audit.io import write_json
from shortcut_audit.sensitivity import GridPartition, ImageGrid, MaskPartition, compose, morris, sobol
from common import SmallCNN, TimedModel  # noqa: E402  (bench/ is on sys.path when run as a script)

RESULTS = Path(__file__).parent / "results" / "sensitivity.json"
REPEATS = 3
RESAMPLES = 100


def g_coefficients(d: int) -> np.ndarray:
    return np.array([(i - 2) / 2 if i > 2 else 0.0 for i in range(d)], dtype=np.float64)


def g_function_numpy(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.prod((np.abs(4.0 * x - 2.0) + a) / (1.0 + a), axis=1)


def g_function_torch(a: np.ndarray):
    coefficients = torch.from_numpy(a)

    def f(x: torch.Tensor) -> torch.Tensor:
        c = coefficients.to(x.device)
        return ((torch.abs(4.0 * x.double() - 2.0) + c) / (1.0 + c)).prod(dim=1)

    return f


def best_time(run) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def analytic_rows() -> list[dict]:
    from SALib.analyze import morris as salib_morris_analyze
    from SALib.analyze import sobol as salib_sobol_analyze
    from SALib.sample import morris as salib_morris_sample
    from SALib.sample import sobol as salib_sobol_sample

    rows = []
    d, trajectories, levels = 20, 1000, 4
    a = g_coefficients(d)
    problem = {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": [[0.0, 1.0]] * d}

    def salib_morris():
        x = salib_morris_sample.sample(problem, trajectories, num_levels=levels, seed=0)
        salib_morris_analyze.analyze(problem, x, g_function_numpy(x, a), num_levels=levels, num_resamples=RESAMPLES, seed=0)

    def ours_morris():
        morris(g_function_torch(a), d, n_trajectories=trajectories, levels=levels, seed=0, n_resamples=RESAMPLES)

    rows.append(_compare("morris", d, trajectories, trajectories * (d + 1), ours_morris, salib_morris))

    d, n = 8, 2**14
    a = g_coefficients(d)
    problem = {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": [[0.0, 1.0]] * d}

    def salib_sobol():
        x = salib_sobol_sample.sample(problem, n, calc_second_order=False, seed=0)
        salib_sobol_analyze.analyze(problem, g_function_numpy(x, a), calc_second_order=False, num_resamples=RESAMPLES, seed=0)

    def ours_sobol():
        sobol(g_function_torch(a), d, n=n, seed=0, n_resamples=RESAMPLES, estimator="saltelli")

    rows.append(_compare("sobol", d, n, n * (d + 2), ours_sobol, salib_sobol))
    return rows


def _compare(method: str, d: int, n: int, evaluations: int, ours, reference) -> dict:
    ours_s, salib_s = best_time(ours), best_time(reference)
    return {
        "method": method,
        "d": d,
        "n": n,
        "evaluations": evaluations,
        "ours_s": round(ours_s, 4),
        "salib_s": round(salib_s, 4),
        "salib_over_ours": round(salib_s / ours_s, 2),
    }


def cnn_rows(device: torch.device) -> list[dict]:
    torch.manual_seed(0)
    model = SmallCNN().to(device).eval()
    image = torch.rand(3, 56, 56, device=device)
    target = 3
    mask_partition = MaskPartition(image, 8)
    grid_partition = GridPartition.local(ImageGrid(56, 56, 8), image, radius=0.5)
    cases = [
        ("sobol", mask_partition, lambda f, d: sobol(f, d, n=32, batch_size=512, device=device, seed=0)),
        ("morris", grid_partition, lambda f, d: morris(f, d, n_trajectories=32, levels=8, batch_size=512, device=device, seed=0)),
    ]
    rows = []
    for method, partition, run in cases:
        timed = TimedModel(model, device)
        f = compose(timed, partition, output=lambda logits: logits.softmax(dim=1)[:, target])
        run(f, partition.d)  # warm-up
        shares, totals, forwards = [], [], []
        for _ in range(REPEATS):
            timed.seconds, timed.inputs = 0.0, 0
            start = time.perf_counter()
            run(f, partition.d)
            total = time.perf_counter() - start
            totals.append(total)
            forwards.append(timed.seconds)
            shares.append(1.0 - timed.seconds / total)
        rows.append(
            {
                "method": method,
                "partition": type(partition).__name__,
                "d": partition.d,
                "forwards": timed.inputs,
                "total_s": round(statistics.median(totals), 4),
                "forward_s": round(statistics.median(forwards), 4),
                "outside_forward_share": round(statistics.median(shares), 4),
            }
        )
    return rows


def main() -> None:
    # One thread on both sides: SALib's numpy runs single-threaded, and a busy shared CPU
    # makes multi-threaded timings of small ops erratic.
    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    analytic = analytic_rows()
    cnn = cnn_rows(device)
    print(f"(a) analytic g-function, best of {REPEATS}, {RESAMPLES} bootstrap resamples")
    print(f"{'method':8} {'d':>3} {'N':>6} {'evals':>7} {'ours s':>8} {'SALib s':>8} {'SALib/ours':>10}")
    for row in analytic:
        print(
            f"{row['method']:8} {row['d']:>3} {row['n']:>6} {row['evaluations']:>7} "
            f"{row['ours_s']:>8.3f} {row['salib_s']:>8.3f} {row['salib_over_ours']:>10.2f}"
        )
    print(f"(b) small CNN on 56x56 RGB ({device.type}), median of {REPEATS}")
    print(f"{'method':8} {'partition':14} {'d':>3} {'forwards':>8} {'total s':>8} {'forward s':>9} {'outside':>8}")
    for row in cnn:
        print(
            f"{row['method']:8} {row['partition']:14} {row['d']:>3} {row['forwards']:>8} "
            f"{row['total_s']:>8.3f} {row['forward_s']:>9.3f} {row['outside_forward_share']:>8.1%}"
        )
    write_json(
        {
            "environment": {
                "torch": torch.__version__,
                "device": device.type,
                "threads": torch.get_num_threads(),
                "python": platform.python_version(),
                "machine": platform.machine(),
            },
            "analytic_vs_salib": analytic,
            "cnn_overhead": cnn,
            "target_outside_forward_share": 0.10,
        },
        RESULTS,
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
