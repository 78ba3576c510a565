"""The ``params.yaml`` values the validation suites read, checked before any work."""

from __future__ import annotations

from dataclasses import dataclass, field

from shortcut_audit.config import require
from shortcut_audit.data import biased_mnist as bm
from shortcut_audit.data.biased_mnist import DatasetSpec
from shortcut_audit.factors import builtin_registry, factor_registry
from shortcut_audit.training.settings import check_params as check_train_params


def _fraction(params: dict, key: str) -> float:
    return require(params, key, float, lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")


def _positive_int(params: dict, key: str) -> int:
    return require(params, key, int, lambda v: v > 0, "a positive integer")


@dataclass(frozen=True)
class ValidationSettings:
    """Everything the suites need from ``params.yaml``.

    Attributes mirror ``biased_mnist.*``, ``train.architectures``, ``train.seeds``,
    ``audit.morris.sampling`` and ``validation.*``; see the comments in ``params.yaml``.
    ``factor_names`` are the registered factors: the built-in ones and those of the
    ``factors`` section.
    """

    dataset_ids: tuple[str, ...]
    dataset_specs: tuple[DatasetSpec, ...]
    architectures: tuple[str, ...]
    seeds: tuple[int, ...]
    split_sizes: dict[str, int]
    canvas: int
    mnist_counts: dict[str, int]
    tolerance: float
    linked_rate_z: float
    label_share: tuple[float, float]
    sobol_tolerance: float
    abs_tolerance: float
    min_morris_auroc: float
    primary_sampling: str
    factor_names: tuple[str, ...] = field(default_factory=lambda: builtin_registry().names)

    @property
    def specs(self) -> dict[str, DatasetSpec]:
        """``dataset_id -> DatasetSpec`` of the sweep."""
        return dict(zip(self.dataset_ids, self.dataset_specs))

    @property
    def models(self) -> tuple[str, ...]:
        """``<dataset_id>/<arch>/seed<seed>`` for every model of the sweep."""
        return tuple(f"{d}/{a}/seed{s}" for d in self.dataset_ids for a in self.architectures for s in self.seeds)

    @classmethod
    def from_params(cls, params: dict) -> ValidationSettings:
        """Validate and collect the settings; raise :class:`ParamError` naming the bad key."""
        from shortcut_audit.audit.model_audit import check_samplings

        data = bm.check_params(params)
        train = check_train_params(params)
        label_share = require(
            params,
            "validation.label_share",
            list,
            lambda v: len(v) == 2
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            and 0 <= v[0] <= v[1] <= 1,
            "[low, high] with 0 <= low <= high <= 1",
        )
        return cls(
            dataset_ids=data.datasets,
            dataset_specs=data.specs,
            architectures=train.architectures,
            seeds=train.seeds,
            split_sizes={
                "train": data.n_train,
                "val": data.n_val,
                "test_unbiased": data.n_test,
                "test_aligned": data.n_test,
            },
            canvas=data.canvas,
            mnist_counts={
                split: _positive_int(params, f"validation.mnist_counts.{split}") for split in ("train", "test")
            },
            tolerance=_fraction(params, "validation.tolerance"),
            linked_rate_z=require(params, "validation.linked_rate_z", float, lambda v: v >= 0, "a number >= 0"),
            label_share=(float(label_share[0]), float(label_share[1])),
            sobol_tolerance=_fraction(params, "validation.sobol_tolerance"),
            abs_tolerance=require(
                params, "validation.abs_tolerance", float, lambda v: 0 <= v < 0.01, "a number in [0, 0.01)"
            ),
            min_morris_auroc=_fraction(params, "validation.min_morris_auroc"),
            primary_sampling=check_samplings(params)[0],
            factor_names=factor_registry(params).names,
        )
