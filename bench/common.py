"""Pieces shared by the benchmarks: the small CNN they explain, a forward-pass timer, and the
harness that makes timings on a shared machine reproducible.

Harness
-------
:func:`interleaved` runs every contender once per round, alternating the order between
rounds (listed order, then reversed), so a change of load hits all alike and none is
always first. Each comparison is then a list of per-round ratios ``ours / reference``
(same round, so the same load), summarised by :func:`ratio_summary`: the median, the
full range (min-max) and the interquartile range. The verdict is "faster" or "slower"
only when the full range excludes 1, i.e. every one of the ``n`` rounds agrees on the
direction, and there are at least :data:`MIN_ROUNDS` rounds (a two-sided sign test,
p = 2^(1-n) < 0.05 from 6 rounds; 0.016 for the default 7); otherwise "on par" ("too
few rounds" below 6, as in ``--quick`` runs). Only such ratios are stated as faster or
slower in the README.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

RESULTS_DIR = Path(__file__).resolve().parent / "results"
VERDICTS = ("faster", "slower", "on par", "too few rounds")
#: fewest rounds whose unanimous direction is significant (two-sided sign test, p = 2^(1-n) < 0.05)
MIN_ROUNDS = 6


class SmallCNN(nn.Module):
    """Four conv+ReLU+pool blocks and a linear head on the global average (10 classes)."""

    def __init__(self):
        super().__init__()
        layers, channels = [], 3
        for width in (16, 32, 32, 64):
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, 10)

    def forward(self, x):
        return self.head(self.features(x).mean(dim=(2, 3)))


class TimedModel:
    """Counts model inputs and accumulates the wall time of forward passes (synchronised on CUDA)."""

    def __init__(self, model: nn.Module, device: torch.device | None = None):
        self.model, self.device, self.seconds, self.inputs = model, device, 0.0, 0

    def _sync(self):
        if self.device is not None and self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._sync()
        start = time.perf_counter()
        with torch.no_grad():
            out = self.model(x)
        self._sync()
        self.seconds += time.perf_counter() - start
        self.inputs += x.shape[0]
        return out

    def reset(self) -> None:
        self.seconds, self.inputs = 0.0, 0


# ----------------------------------------------------------------------- harness


def round_order(names: Sequence[str], round_index: int) -> list[str]:
    """The order of round ``round_index``: as listed on even rounds, reversed on odd ones."""
    names = list(names)
    return names if round_index % 2 == 0 else names[::-1]


def interleaved(runs: dict[str, Callable[[], dict]], rounds: int, warmup: int = 1) -> dict[str, list[dict]]:
    """Run every contender once per round, ``rounds`` times after ``warmup`` untimed rounds.

    Each callable returns a dict of its measurements (at least ``wall_s``); the result
    maps each name to its list of per-round dicts, round ``k`` at index ``k``.
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    results: dict[str, list[dict]] = {name: [] for name in runs}
    for index in range(-warmup, rounds):
        for name in round_order(list(runs), index):
            measurement = runs[name]()
            if index >= 0:
                results[name].append(measurement)
    return results


def timed_call(fn: Callable[[], object], timer: TimedModel | None = None) -> Callable[[], dict]:
    """Wrap ``fn`` so that each call returns its wall time, and the forward time and inputs of ``timer``."""

    def run() -> dict:
        if timer is not None:
            timer.reset()
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
        if timer is None:
            return {"wall_s": wall}
        return {"wall_s": wall, "forward_s": timer.seconds, "inputs": timer.inputs}

    return run


@dataclass(frozen=True)
class RatioSummary:
    """Per-round ratios ``ours / reference`` of one comparison."""

    n: int
    median: float
    low: float
    high: float
    q1: float
    q3: float
    verdict: str

    def text(self, digits: int = 2) -> str:
        """``0.62x (0.58-0.66), faster`` or ``on par (0.91-1.07)``: what the README may state."""
        spread = f"{self.low:.{digits}f}-{self.high:.{digits}f}"
        if self.verdict in ("faster", "slower"):
            return f"{self.median:.{digits}f}x ({spread}), {self.verdict}"
        return f"{self.verdict} ({spread})"

    def as_dict(self) -> dict:
        return {**asdict(self), "text": self.text()}


def verdict(low: float, high: float, n: int) -> str:
    """ "faster" when all ``n`` ratios are below 1, "slower" when all are above, else "on par";
    "too few rounds" when ``n < MIN_ROUNDS`` (a ``--quick`` run decides nothing)."""
    if n < MIN_ROUNDS:
        return "too few rounds"
    if high < 1.0:
        return "faster"
    if low > 1.0:
        return "slower"
    return "on par"


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """First and third quartiles (inclusive method; both the value itself for one value)."""
    if len(values) == 1:
        return float(values[0]), float(values[0])
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def ratio_summary(ours: Sequence[float], reference: Sequence[float]) -> RatioSummary:
    """Summary of the per-round ratios ``ours[k] / reference[k]`` (times; < 1: ours is faster)."""
    if len(ours) != len(reference) or not ours:
        raise ValueError(f"need the same number (>= 1) of paired timings, got {len(ours)} and {len(reference)}")
    if min(reference) <= 0 or min(ours) <= 0:
        raise ValueError("timings must be positive")
    ratios = [a / b for a, b in zip(ours, reference)]
    low, high = min(ratios), max(ratios)
    q1, q3 = quartiles(ratios)
    return RatioSummary(len(ratios), statistics.median(ratios), low, high, q1, q3, verdict(low, high, len(ratios)))


def spread(values: Sequence[float]) -> dict:
    """Median, min, max of repeated measurements of one quantity."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def column(measurements: list[dict], key: str) -> list[float]:
    return [m[key] for m in measurements]


# ------------------------------------------------------------------- reporting


def output_path(name: str, quick: bool, output: str | None) -> Path:
    """Where a benchmark writes: ``--output``, else ``results/<name>.json`` (``results/quick/`` for ``--quick``,
    so a check run never replaces the recorded results)."""
    if output:
        return Path(output)
    return RESULTS_DIR / ("quick" if quick else "") / f"{name}.json"


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return tuple(round(v, 2) for v in os.getloadavg())
    except (AttributeError, OSError):
        return None


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(load_before) -> dict:
    """What a reader needs to judge a timing: software, processor, threads, and how loaded the machine was."""
    from shortcut_audit._cpu_kernels import kernel_settings

    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "kernels": kernel_settings(),
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """Print ``rows`` as a table; ``columns`` are (key, header, format spec)."""
    widths = [max(len(header), *(len(format(row[key], spec)) for row in rows)) for key, header, spec in columns]
    print("  ".join(header.rjust(w) for (_, header, _), w in zip(columns, widths)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(format(row[key], spec).rjust(w) for (key, _, spec), w in zip(columns, widths)))
