"""The ``params.yaml`` values the validation suites read, checked before any work."""
from __future__ import annotations

from dataclasses import dataclass

from shortcut_audit.config import ParamError, require
from shortcut_audit.validation.derived import FACTOR_LEVELS, DatasetSpec, parse_dataset_id


def _non_empty_str_list(params: dict, key: str) -> tuple[str, ...]:
    values = require(params, key, list, lambda v: len(v) > 0 and all(isinstance(x, str) and x for x in v),
                     "a non-empty list of names")
    return tuple(values)


def _fraction(params: dict, key: str) -> float:
    return require(params, key, float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def _positive_int(params: dict, key: str) -> int:
    return require(params, key, int, lambda v: v > 0, "a positive integer")


@dataclass(frozen=True)
class ValidationSettings:
    """Everything the suites need from ``params.yaml``.

    Attributes mirror ``biased_mnist.*``, ``train.architectures`` and ``validation.*``;
    see the comments in ``params.yaml`` for their meaning.
    """

    datasets: tuple[DatasetSpec, ...]
    architectures: tuple[str, ...]
    split_sizes: dict[str, int]
    canvas: int
    mnist_counts: dict[str, int]
    tolerance: float
    linked_rate_z: float
    label_share: tuple[float, float]
    sobol_tolerance: float
    abs_tolerance: float
    min_verdict_agreement: float
    monotonic_tolerance: float
    morris_output: str

    @property
    def specs(self) -> dict[str, DatasetSpec]:
        return {spec.dataset_id: spec for spec in self.datasets}

    @property
    def models(self) -> tuple[str, ...]:
        """``<dataset_id>/<arch>`` for every model of the sweep."""
        return tuple(f"{d.dataset_id}/{a}" for d in self.datasets for a in self.architectures)

    @classmethod
    def from_params(cls, params: dict) -> "ValidationSettings":
        """Validate and collect the settings; raise :class:`ParamError` naming the bad key."""
        biased = _non_empty_str_list(params, "biased_mnist.biased_factors")
        unknown = [f for f in biased if f not in FACTOR_LEVELS]
        if unknown:
            raise ParamError("biased_mnist.biased_factors", f"unknown factor(s) {unknown}; known: {list(FACTOR_LEVELS)}")
        specs = []
        for dataset_id in _non_empty_str_list(params, "biased_mnist.datasets"):
            try:
                specs.append(parse_dataset_id(dataset_id, biased))
            except ValueError as err:
                raise ParamError("biased_mnist.datasets", str(err)) from None
        n_test = _positive_int(params, "biased_mnist.n_test")
        split_sizes = {"train": _positive_int(params, "biased_mnist.n_train"),
                       "val": _positive_int(params, "biased_mnist.n_val"),
                       "test_unbiased": n_test, "test_aligned": n_test}
        label_share = require(params, "validation.label_share", list,
                              lambda v: len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                              and 0 <= v[0] <= v[1] <= 1, "[low, high] with 0 <= low <= high <= 1")
        output = require(params, "validation.morris_output", str, lambda v: v in ("normalised_mean", "true_class_prob"),
                         "normalised_mean or true_class_prob")
        return cls(
            datasets=tuple(specs),
            architectures=_non_empty_str_list(params, "train.architectures"),
            split_sizes=split_sizes,
            canvas=_positive_int(params, "biased_mnist.canvas"),
            mnist_counts={split: _positive_int(params, f"validation.mnist_counts.{split}") for split in ("train", "test")},
            tolerance=_fraction(params, "validation.tolerance"),
            linked_rate_z=require(params, "validation.linked_rate_z", float, lambda v: v >= 0, "a number >= 0"),
            label_share=(float(label_share[0]), float(label_share[1])),
            sobol_tolerance=_fraction(params, "validation.sobol_tolerance"),
            abs_tolerance=require(params, "validation.abs_tolerance", float, lambda v: 0 <= v < 0.01, "a number in [0, 0.01)"),
            min_verdict_agreement=_fraction(params, "validation.min_verdict_agreement"),
            monotonic_tolerance=_fraction(params, "validation.monotonic_tolerance"),
            morris_output=output,
        )
