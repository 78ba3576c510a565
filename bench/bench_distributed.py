"""Wall time of the explain_imagenet stage on 1 and on 2 processes (torchrun, CPU), same work.

Each repetition runs the stage command as a user would (``python stages/explain_imagenet.py``,
a fresh interpreter, the whole stage: model loading, every step, the merge and the
writes), once per configuration, the configurations in alternating order from one
repetition to the next so that a change of machine load hits both alike:

- ``1 process``: ``launcher.nproc_per_node: 1`` (torch's default intra-op threads);
- ``2 processes``: ``launcher.nproc_per_node: 2`` (torchrun's default, one thread each);
- with ``--one-thread``, also ``1 process, 1 thread`` (``OMP_NUM_THREADS=1``), which
  separates the gain of the processes from that of dropping intra-op threading.

Reported: median and spread (min, max) of the wall times, the ratio of the medians and
the median and spread of the per-repetition ratios (each configuration / 2 processes), the
machine's 1-minute load average as each run starts, and the largest difference between the tables the two
configurations wrote (float rounding only: see :mod:`shortcut_audit.distributed.shards`).
Writes ``bench/results/distributed.json``. Run from the repository root::

    python bench/bench_distributed.py --quick          # 2 images, small budgets, 2 repetitions
    python bench/bench_distributed.py                  # 4 images, every step at 64 px, 3 repetitions
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "distributed.json"
TIMING_COLUMNS = {"seconds", "forward_seconds", "explain_seconds"}


def stage_params(images: int, quick: bool) -> dict:
    """The repository's params, the ImageNet section cut to one offline model and ``images`` photos."""
    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    imagenet = params["imagenet"]
    imagenet.update(models=["efficientnet_lite0"], max_images=images, val_dir=None)
    if quick:
        imagenet.update(input_size=64, forwards=80, methods=["sobol", "rise", "occlusion", "morris_grid"])
        imagenet["morris"].update(grid_size=4, n_trajectories=2)
        imagenet["fidelity"].update(steps=4, protocols=["rise"])
        imagenet["ensembles"].update(steps=3, aggregations=["mean", "ucb"])
        imagenet["convergence"].update(grid_size=4, budgets=[40], reference_forwards=80)
    else:  # every step of the default CPU profile, at 64 px and with fewer ensemble combinations
        imagenet.update(input_size=64, forwards=100)
        imagenet["fidelity"].update(protocols=["rise", "region"])
        imagenet["ensembles"].update(normalisations=["z", "l1"], aggregations=["mean", "ucb", "pi", "rbm"])
        imagenet["convergence"].update(budgets=[100], reference_forwards=200)
    params["device"] = "cpu"
    return params


def run_stage(params_file: Path, output: Path, env: dict) -> float:
    """Wall seconds of one stage run (raises with its output when it fails)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "stages/explain_imagenet.py", "--params", str(params_file), "--output", str(output)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"stage failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return seconds


def table_differences(a: Path, b: Path) -> dict[str, float | str]:
    """Largest absolute difference of the numbers of each table of two outputs (wall times left out).

    A table whose columns, rows or text, integer or boolean values differ is reported as such.
    """
    out: dict[str, float | str] = {}
    for path in sorted(a.glob("*.csv")):
        x, y = pd.read_csv(path, keep_default_na=False), pd.read_csv(b / path.name, keep_default_na=False)
        if list(x.columns) != list(y.columns) or len(x) != len(y):
            out[path.stem] = "different rows or columns"
            continue
        worst = 0.0
        for column in x.columns:
            if column in TIMING_COLUMNS:
                continue
            if x[column].dtype.kind == "f" or y[column].dtype.kind == "f":
                if len(x):
                    worst = max(worst, float(np.max(np.abs(x[column].to_numpy(float) - y[column].to_numpy(float)))))
            elif x[column].tolist() != y[column].tolist():
                out[path.stem] = f"column {column} differs"
                break
        else:
            out[path.stem] = worst
    return out


def spread(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": [round(v, 3) for v in values],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 images, small budgets, 2 repetitions")
    parser.add_argument("--repetitions", type=int, default=None, help="runs per configuration (default 3; quick 2)")
    parser.add_argument("--images", type=int, default=None, help="sample photos explained (default 4; quick 2)")
    parser.add_argument("--one-thread", action="store_true", help="also time 1 process with OMP_NUM_THREADS=1")
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed first run of each configuration")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    repetitions = args.repetitions or (2 if args.quick else 3)
    images = args.images or (2 if args.quick else 4)

    base_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")])}
    base_env.pop("OMP_NUM_THREADS", None)
    configs = {"1 process": (1, {}), "2 processes": (2, {})}
    if args.one_thread:
        configs["1 process, 1 thread"] = (1, {"OMP_NUM_THREADS": "1"})
    times: dict[str, list[float]] = {name: [] for name in configs}
    loads: dict[str, list[float]] = {name: [] for name in configs}  # 1-minute load average as each run starts
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        params = stage_params(images, args.quick)
        files = {}
        for name, (processes, _) in configs.items():
            files[name] = tmp / f"{processes}-{len(files)}.yaml"
            files[name].write_text(yaml.safe_dump({**params, "launcher": {"nproc_per_node": processes}}))
        order = list(configs)
        if not args.no_warmup:  # first runs pay for cold caches (libraries, compiled files); not timed
            for name in order:
                run_stage(files[name], tmp / "warmup", {**base_env, **configs[name][1]})
        for repetition in range(repetitions):
            for name in order if repetition % 2 == 0 else order[::-1]:
                loads[name].append(os.getloadavg()[0])
                seconds = run_stage(files[name], tmp / f"out-{order.index(name)}", {**base_env, **configs[name][1]})
                times[name].append(seconds)
                print(
                    f"repetition {repetition + 1}/{repetitions}, {name}: {seconds:.1f} s "
                    f"(load average {loads[name][-1]:.1f} at its start)",
                    flush=True,
                )
        differences = table_differences(tmp / "out-0", tmp / "out-1")
    load_after = os.getloadavg()

    ratios = {
        f"{name} / 2 processes": [one / two for one, two in zip(values, times["2 processes"])]
        for name, values in times.items()
        if name != "2 processes"
    }
    two = statistics.median(times["2 processes"])
    result = {
        "command": " ".join(["python bench/bench_distributed.py", *(argv if argv is not None else sys.argv[1:])]),
        "workload": {
            "model": "efficientnet_lite0",
            "images": images,
            "quick": args.quick,
            "imagenet": params["imagenet"],
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": [round(v, 2) for v in load_before],
            "load_average_after": [round(v, 2) for v in load_after],
        },
        "repetitions": repetitions,
        "wall_seconds": {name: spread(values) for name, values in times.items()},
        "load_average_at_start": {name: [round(v, 2) for v in values] for name, values in loads.items()},
        "ratio_of_medians": {key: statistics.median(times[key.split(" / ")[0]]) / two for key in ratios},
        "ratio_per_repetition": {key: spread(values) for key, values in ratios.items()},
        "max_abs_difference_1_vs_2_processes": differences,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    for name in times:
        s = result["wall_seconds"][name]
        print(f"{name}: median {s['median']:.1f} s (min {s['min']:.1f}, max {s['max']:.1f})")
    for key, values in ratios.items():
        print(
            f"{key}: {result['ratio_of_medians'][key]:.2f} (medians); per repetition median "
            f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"
        )
    print(
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after on {os.cpu_count()} CPUs -> {args.output}"
    )
    print("largest difference of the tables, 1 vs 2 processes:", json.dumps(differences))
    return 0


if __name__ == "__main__":
    sys.exit(main())
