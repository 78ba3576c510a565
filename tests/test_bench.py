"""The benchmark harness (``bench/common.py``): interleaving and the ratio statistics, on synthetic timings;
and each benchmark script's ``--quick`` run (slow)."""

import importlib
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture
def common(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("common")


def test_rounds_alternate_the_order_and_drop_the_warmup(common):
    calls = []

    def contender(name):
        def run():
            calls.append(name)
            return {"wall_s": 1.0, "call": len(calls)}

        return run

    results = common.interleaved({"a": contender("a"), "b": contender("b"), "c": contender("c")}, rounds=3, warmup=1)
    # warm-up round (index -1, odd: reversed), then rounds 0 (listed), 1 (reversed), 2 (listed)
    assert calls == list("cba") + list("abc") + list("cba") + list("abc")
    assert {name: [m["call"] for m in runs] for name, runs in results.items()} == {
        "a": [4, 9, 10],
        "b": [5, 8, 11],
        "c": [6, 7, 12],
    }


def _ratios_by_hand(ours, reference):
    ratios = sorted(a / b for a, b in zip(ours, reference))
    n = len(ratios)
    median = ratios[n // 2] if n % 2 else (ratios[n // 2 - 1] + ratios[n // 2]) / 2
    return ratios, median


def test_ratio_summary_reports_median_range_and_quartiles(common):
    reference = [2.0, 2.5, 1.8, 3.0, 2.2, 2.1, 2.4]
    ours = [1.2, 1.6, 1.0, 1.9, 1.3, 1.4, 1.3]
    summary = common.ratio_summary(ours, reference)
    ratios, median = _ratios_by_hand(ours, reference)
    assert summary.n == 7 and summary.median == pytest.approx(median)
    assert (summary.low, summary.high) == pytest.approx((ratios[0], ratios[-1]))
    # inclusive quartiles = linear interpolation between order statistics (numpy's default)
    assert (summary.q1, summary.q3) == pytest.approx(tuple(np.percentile(ratios, [25, 75])))
    assert summary.verdict == "faster" and summary.text().startswith(f"{median:.2f}x (")


@pytest.mark.parametrize(
    "ratios, expected",
    [
        ([0.6, 0.7, 0.65, 0.62, 0.58, 0.66, 0.61], "faster"),
        ([1.2, 1.3, 1.25, 1.1, 1.4, 1.22], "slower"),
        ([0.6, 0.7, 0.65, 1.02, 0.58, 0.66, 0.61], "on par"),  # one round the other way: no claim
        ([0.95, 1.05, 0.98, 1.01, 0.97, 1.03, 0.99], "on par"),
        ([0.5, 0.5, 0.5, 0.5, 0.5], "too few rounds"),  # unanimous but p = 2^(1-5) > 0.05
    ],
)
def test_faster_or_slower_only_when_every_round_of_enough_rounds_agrees(common, ratios, expected):
    reference = [1.0 + 0.1 * k for k in range(len(ratios))]
    summary = common.ratio_summary([r * t for r, t in zip(ratios, reference)], reference)
    assert summary.verdict == expected
    assert summary.text().startswith("on par" if expected == "on par" else "")
    assert summary.as_dict()["text"] == summary.text()


def test_interleaved_rounds_cancel_a_load_drift_that_biases_back_to_back_runs(common):
    """A machine whose load rises during the benchmark: timed back to back, the later contender
    looks slower; per-round ratios of interleaved runs recover the true ratio (0.9)."""
    clock = {"calls": 0}

    def contender(base):
        def run():
            clock["calls"] += 1
            load = 1.0 + 0.02 * clock["calls"]  # slows everything down as time goes on
            return {"wall_s": base * load}

        return run

    results = common.interleaved({"ours": contender(0.9), "reference": contender(1.0)}, rounds=7, warmup=0)
    summary = common.ratio_summary([m["wall_s"] for m in results["ours"]], [m["wall_s"] for m in results["reference"]])
    assert summary.median == pytest.approx(0.9, abs=0.02) and summary.low < 0.9 < summary.high
    clock["calls"] = 0
    ours = [contender(0.9)()["wall_s"] for _ in range(7)]
    reference = [contender(1.0)()["wall_s"] for _ in range(7)]
    assert statistics.median(ours) / statistics.median(reference) < 0.82  # back to back: biased


def test_ratio_summary_refuses_unpaired_or_empty_timings(common):
    with pytest.raises(ValueError, match="same number"):
        common.ratio_summary([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="same number"):
        common.ratio_summary([], [])
    with pytest.raises(ValueError, match="positive"):
        common.ratio_summary([1.0], [0.0])
    with pytest.raises(ValueError, match="rounds"):
        common.interleaved({"a": lambda: {"wall_s": 1.0}}, rounds=0)


def test_quick_runs_never_replace_the_recorded_results(common, tmp_path):
    assert common.output_path("attribution", False, None) == BENCH / "results" / "attribution.json"
    assert common.output_path("attribution", True, None) == BENCH / "results" / "quick" / "attribution.json"
    assert common.output_path("attribution", True, str(tmp_path / "x.json")) == tmp_path / "x.json"


@pytest.mark.slow
@pytest.mark.parametrize(
    "script, needs",
    [
        ("bench_attribution", "captum"),
        ("bench_sensitivity", "SALib"),
        ("bench_precision", None),
        ("bench_imagenet", None),
    ],
)
def test_each_benchmark_runs_quick(common, monkeypatch, tmp_path, script, needs):
    if needs:
        pytest.importorskip(needs)
    import torch

    monkeypatch.setenv("SHORTCUT_AUDIT_CPU_KERNELS", "portable")  # as this test process runs
    threads = torch.get_num_threads()
    module = importlib.import_module(script)
    output = tmp_path / f"{script}.json"
    extra = ["--emulated-bf16", "--methods", "rise", "geex"] if script == "bench_precision" else []
    try:
        assert module.main(["--quick", "--output", str(output), *extra]) == 0
    finally:
        sys.modules.pop(script, None)
        torch.set_num_threads(threads)
    assert json.loads(output.read_text())


def test_agreement_rows_of_one_setting_accumulate_and_another_setting_replaces_them(common, monkeypatch):
    monkeypatch.setenv("SHORTCUT_AUDIT_CPU_KERNELS", "portable")  # the script sets native when unset
    precision = importlib.import_module("bench_precision")
    setting = {"images": ["chelsea"], "cpu": "X", "torch": "2"}
    first = {"setting": setting, "rows": [{"path": "bf16", "method": "rise", "min_spearman": 0.9}]}
    second = {
        "setting": dict(setting),
        "rows": [
            {"path": "bf16", "method": "sobol", "min_spearman": 0.8},
            {"path": "bf16", "method": "rise", "min_spearman": 0.95},
        ],
    }
    merged = precision.merged_agreement(first, second)
    assert sorted((r["method"], r["min_spearman"]) for r in merged["rows"]) == [("rise", 0.95), ("sobol", 0.8)]
    other_machine = {"setting": {**setting, "cpu": "Y"}, "rows": []}
    assert precision.merged_agreement(merged, other_machine) == other_machine
    sys.modules.pop("bench_precision", None)
