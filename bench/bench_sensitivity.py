"""Benchmark: the sensitivity engine against SALib, and its overhead around a CNN.

(a) Wall time of ``morris`` and ``sobol`` on Sobol's g-function against SALib's
    ``sample`` + ``analyze`` at the same N, d, number of bootstrap resamples and
    evaluations (both vectorised: numpy for SALib, torch for us), both single-threaded,
    in interleaved rounds (see ``common.py``); the per-round ratio is our time / SALib's
    (< 1: we are faster), summarised by its median and spread.
(b) With a small CNN (4 conv layers, 56 x 56 RGB) as ``f`` and images built inside
    ``f`` by a partition (Sobol masks: 8 x 8 cells, inpainting to 0; MoSIP grid:
    8 x 8 regions, local sampling), the share of the wall time spent outside the
    forward passes (design rows, image building, estimators, bootstrap) and that
    overhead per forward pass in milliseconds, over the same rounds.

Run: ``python bench/bench_sensitivity.py`` (writes ``bench/results/sensitivity.json``);
``--quick`` runs a tiny setting to check that the script works.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from common import (  # noqa: E402  (bench/ is on sys.path when run as a script)
    SmallCNN,
    TimedModel,
    column,
    environment,
    interleaved,
    load_average,
    output_path,
    print_table,
    ratio_summary,
    spread,
    timed_call,
)

import shortcut_audit  # noqa: F401  (kernel pins and torchvision shim first)
from shortcut_audit.io import write_json
from shortcut_audit.sensitivity import GridPartition, ImageGrid, MaskPartition, compose, morris, sobol

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


def problem(d: int) -> dict:
    return {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": [[0.0, 1.0]] * d}


def analytic_cases(quick: bool) -> dict[str, dict]:
    """Ours and SALib's sample + analyze at the same design size, for Morris and Sobol."""
    from SALib.analyze import morris as salib_morris_analyze
    from SALib.analyze import sobol as salib_sobol_analyze
    from SALib.sample import morris as salib_morris_sample
    from SALib.sample import sobol as salib_sobol_sample

    d_m, trajectories, levels = (6, 50, 4) if quick else (20, 1000, 4)
    d_s, n = (4, 2**8) if quick else (8, 2**14)
    a_m, a_s = g_coefficients(d_m), g_coefficients(d_s)

    def salib_morris():
        x = salib_morris_sample.sample(problem(d_m), trajectories, num_levels=levels, seed=0)
        salib_morris_analyze.analyze(
            problem(d_m), x, g_function_numpy(x, a_m), num_levels=levels, num_resamples=RESAMPLES, seed=0
        )

    def ours_morris():
        morris(g_function_torch(a_m), d_m, n_trajectories=trajectories, levels=levels, seed=0, n_resamples=RESAMPLES)

    def salib_sobol():
        x = salib_sobol_sample.sample(problem(d_s), n, calc_second_order=False, seed=0)
        salib_sobol_analyze.analyze(
            problem(d_s), g_function_numpy(x, a_s), calc_second_order=False, num_resamples=RESAMPLES, seed=0
        )

    def ours_sobol():
        sobol(g_function_torch(a_s), d_s, n=n, seed=0, n_resamples=RESAMPLES, estimator="saltelli")

    return {
        "morris": {
            "d": d_m,
            "n": trajectories,
            "evaluations": trajectories * (d_m + 1),
            "ours": ours_morris,
            "salib": salib_morris,
        },
        "sobol": {"d": d_s, "n": n, "evaluations": n * (d_s + 2), "ours": ours_sobol, "salib": salib_sobol},
    }


def cnn_cases(device: torch.device, quick: bool) -> dict[str, tuple[TimedModel, callable, dict]]:
    """Sobol (mask partition) and MoSIP grid Morris (grid partition) with a small CNN as f."""
    torch.manual_seed(0)
    model = SmallCNN().to(device).eval()
    image = torch.rand(3, 56, 56, device=device)
    target = 3
    n, trajectories = (4, 4) if quick else (32, 32)
    cases = {
        "sobol": (MaskPartition(image, 8), lambda f, d: sobol(f, d, n=n, batch_size=512, device=device, seed=0)),
        "morris": (
            GridPartition.local(ImageGrid(56, 56, 8), image, radius=0.5),
            lambda f, d: morris(f, d, n_trajectories=trajectories, levels=8, batch_size=512, device=device, seed=0),
        ),
    }
    out = {}
    for method, (partition, run) in cases.items():
        timed = TimedModel(model, device)
        f = compose(timed, partition, output=lambda logits: logits.softmax(dim=1)[:, target])
        out[method] = (
            timed,
            lambda run=run, f=f, d=partition.d: run(f, d),
            {"partition": type(partition).__name__, "d": partition.d},
        )
    return out


def analytic_rows(cases: dict, measured: dict) -> list[dict]:
    rows = []
    for method, case in cases.items():
        ours, salib = column(measured[f"ours_{method}"], "wall_s"), column(measured[f"salib_{method}"], "wall_s")
        summary = ratio_summary(ours, salib)
        rows.append(
            {
                "method": method,
                "d": case["d"],
                "n": case["n"],
                "evaluations": case["evaluations"],
                "ours_s": spread(ours),
                "salib_s": spread(salib),
                "ours_over_salib": summary.as_dict(),
                "salib_over_ours_median": 1.0 / summary.median,
            }
        )
    return rows


def cnn_rows(cases: dict, measured: dict) -> list[dict]:
    rows = []
    for method, (_, _, info) in cases.items():
        runs = measured[f"cnn_{method}"]
        walls, forwards, inputs = column(runs, "wall_s"), column(runs, "forward_s"), runs[0]["inputs"]
        rows.append(
            {
                "method": method,
                **info,
                "forwards": inputs,
                "total_s": spread(walls),
                "forward_s": spread(forwards),
                "outside_forward_share": spread([1.0 - f / w for w, f in zip(walls, forwards)]),
                "overhead_ms_per_forward": spread([1000 * (w - f) / inputs for w, f in zip(walls, forwards)]),
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (7: every-round agreement p = 0.016)")
    parser.add_argument("--quick", action="store_true", help="tiny setting, 2 rounds: checks the script runs")
    parser.add_argument("--output", help="default: bench/results/sensitivity.json (quick: bench/results/quick/)")
    args = parser.parse_args(argv)
    rounds = 2 if args.quick else args.rounds
    load_before = load_average()
    # One thread on both sides: SALib's numpy runs single-threaded, and a busy shared CPU
    # makes multi-threaded timings of small ops erratic.
    torch.set_num_threads(1)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    analytic, cnn = analytic_cases(args.quick), cnn_cases(device, args.quick)
    runs = {}
    for method, case in analytic.items():
        runs[f"ours_{method}"] = timed_call(case["ours"])
        runs[f"salib_{method}"] = timed_call(case["salib"])
    for method, (timed, run, _) in cnn.items():
        runs[f"cnn_{method}"] = timed_call(run, timed)
    measured = interleaved(runs, rounds)
    analytic_table, cnn_table = analytic_rows(analytic, measured), cnn_rows(cnn, measured)

    print(
        f"(a) analytic g-function, {rounds} interleaved rounds, {RESAMPLES} bootstrap resamples; "
        f"load average before {load_before}"
    )
    print_table(
        [
            {**r, "ours": r["ours_s"]["median"], "salib": r["salib_s"]["median"], "ratio": r["ours_over_salib"]["text"]}
            for r in analytic_table
        ],
        [
            ("method", "method", ""),
            ("d", "d", "d"),
            ("n", "N", "d"),
            ("evaluations", "evals", "d"),
            ("ours", "ours s", ".3f"),
            ("salib", "SALib s", ".3f"),
            ("ratio", "ours/SALib (min-max)", ""),
        ],
    )
    print(f"\n(b) small CNN on 56x56 RGB ({device.type}), median of {rounds} rounds")
    print_table(
        [
            {
                **r,
                "total": r["total_s"]["median"],
                "outside": r["outside_forward_share"]["median"],
                "outside_range": f"{r['outside_forward_share']['min']:.1%}-{r['outside_forward_share']['max']:.1%}",
                "overhead": r["overhead_ms_per_forward"]["median"],
            }
            for r in cnn_table
        ],
        [
            ("method", "method", ""),
            ("partition", "partition", ""),
            ("d", "d", "d"),
            ("forwards", "forwards", "d"),
            ("total", "total s", ".3f"),
            ("outside", "outside", ".1%"),
            ("outside_range", "min-max", ""),
            ("overhead", "overhead ms/fwd", ".3f"),
        ],
    )
    output = output_path("sensitivity", args.quick, args.output)
    write_json(
        {
            "environment": {**environment(load_before), "device": device.type},
            "setup": {
                "rounds": rounds,
                "warmup_rounds": 1,
                "order": "alternating (listed, reversed)",
                "quick": args.quick,
            },
            "analytic_vs_salib": analytic_table,
            "cnn_overhead": cnn_table,
            "target_outside_forward_share": 0.10,
            "raw": measured,
        },
        output,
    )
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
