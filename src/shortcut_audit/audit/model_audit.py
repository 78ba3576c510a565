"""The factor audit of one trained model: Morris, interventions, verdicts, interaction, pixel view.

:class:`AuditConfig` validates the ``audit`` params section before any work;
:func:`audit_model` runs the whole audit on two scenes (held-out items with uniform
factors for the global Morris analysis and the pixel view; a pool of items from the
training distribution for the local Morris analysis and the interventions);
:func:`write_model_audit` writes the artefacts of ``data/audit/<dataset_id>/<arch>/seed<seed>/``
atomically (schema: docs/architecture.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from shortcut_audit import schema
from shortcut_audit.audit.factor_morris import (
    SAMPLINGS,
    FactorMorris,
    factor_changes,
    morris_from_changes,
    mu_star_by_sampling,
)
from shortcut_audit.audit.interaction import interaction_table
from shortcut_audit.audit.interventions import Budget, InterventionResult, importance_order, run_interventions
from shortcut_audit.audit.pixel_view import PixelView, pixel_view
from shortcut_audit.audit.verdicts import VERDICT_OUTPUT, VerdictRule, verdict_table
from shortcut_audit.config import ParamError, get, require, require_choice
from shortcut_audit.data.biased_mnist import FACTORS
from shortcut_audit.distributed.shards import Shard, ShardData, merge
from shortcut_audit.factors.registry import FactorRegistry, factor_registry
from shortcut_audit.factors.scene import ProbabilityReader, Scene
from shortcut_audit.io import atomic_dir, save_npz, write_json
from shortcut_audit.sensitivity.morris import DESIGNS

__all__ = ["AuditConfig", "ModelAudit", "audit_model", "order_check_table", "write_model_audit"]

CONF_LEVEL = 0.95  # MoSIP Fig. 3b: 95 % intervals


def _positive_int(params: Mapping, key: str, minimum: int = 1, maximum: int | None = None) -> int:
    bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    return require(
        params, key, int, lambda v: v >= minimum and (maximum is None or v <= maximum), f"an integer {bound}"
    )


def _check_factors(params: Mapping, registry: FactorRegistry) -> tuple[str, ...]:
    value = get(params, "audit.factors", list(FACTORS))
    if not isinstance(value, list):
        raise ParamError("audit.factors", f"expected a list of factors from {list(registry.names)}, got {value!r}")
    return registry.check(value, key="audit.factors")


def check_samplings(params: Mapping) -> tuple[str, ...]:
    """``audit.morris.sampling``: one of :data:`SAMPLINGS` or a list of them (the first is the primary one)."""
    key = "audit.morris.sampling"
    value = get(params, key, "global")
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list)
        or not values
        or any(v not in SAMPLINGS for v in values)
        or len(set(values)) != len(values)
    ):
        raise ParamError(key, f"expected one of {list(SAMPLINGS)} or a list of them without repeats, got {value!r}")
    return tuple(values)


@dataclass(frozen=True)
class AuditConfig:
    """The validated ``audit`` section (plus ``seed`` and ``biased_mnist.canvas``)."""

    factors: tuple[str, ...]
    n_digits: int
    batch_size: int
    n_trajectories: int
    levels: int
    design: str
    samplings: tuple[str, ...]
    budget: Budget
    n_bootstrap: int
    rule: VerdictRule
    interaction_min_mu_star: float
    pixel_images: int
    grid_size: int
    nb_design: int
    seed: int
    canvas: int

    @property
    def primary_sampling(self) -> str:
        """The sampling whose Morris results explain the verdicts (the first listed)."""
        return self.samplings[0]

    @classmethod
    def from_params(cls, params: Mapping, registry: FactorRegistry | None = None) -> AuditConfig:
        """Validate every key the audit reads; ParamError names the first bad key.

        Digit counts are checked against ``biased_mnist.n_test`` (the size of both
        test splits), image counts against ``audit.n_digits`` and the grid against
        the canvas.
        """
        registry = factor_registry(params) if registry is None else registry
        n_test = _positive_int(params, "biased_mnist.n_test")
        canvas = _positive_int(params, "biased_mnist.canvas", 28)
        n_digits = _positive_int(params, "audit.n_digits", 1, n_test)
        levels = require(params, "audit.morris.levels", int, lambda v: v >= 2 and v % 2 == 0, "an even integer >= 2")
        budget = Budget(
            n_items=_positive_int(params, "audit.interventions.n_digits", 1, n_test),
            repetitions=_positive_int(params, "audit.interventions.repetitions", 1),
            max_doublings=_positive_int(params, "audit.interventions.max_doublings", 0, 10),
        )
        return cls(
            factors=_check_factors(params, registry),
            n_digits=n_digits,
            batch_size=_positive_int(params, "audit.batch_size"),
            n_trajectories=_positive_int(params, "audit.morris.n_trajectories", 2),
            levels=levels,
            design=require_choice(params, "audit.morris.design", DESIGNS),
            samplings=check_samplings(params),
            budget=budget,
            n_bootstrap=_positive_int(params, "audit.interventions.n_bootstrap", 100),
            rule=VerdictRule.from_params(params),
            interaction_min_mu_star=require(
                params, "audit.interaction.min_mu_star", float, lambda v: v >= 0.0, "a number >= 0"
            ),
            pixel_images=_positive_int(params, "audit.pixel_view.n_images", 1, n_digits),
            grid_size=_positive_int(params, "audit.pixel_view.grid_size", 1, canvas),
            nb_design=_positive_int(params, "audit.pixel_view.nb_design", 2),
            seed=require(params, "seed", int, lambda v: v >= 0, "a non-negative integer"),
            canvas=canvas,
        )


def order_check_table(result: InterventionResult, morris: pd.DataFrame) -> pd.DataFrame:
    """MoSIP's own check (Fig. 3b) for every sampling: re-drawing in ``mu*`` order loses accuracy at least as fast.

    ``area`` is :meth:`InterventionResult.order_check` (mean gap between the reverse
    and the ``mu*``-order curves over the intermediate steps). The check ``holds``
    unless the interval lies wholly below 0, i.e. the data contradict "at least as fast".
    """
    rows = []
    for sampling, mu_star in mu_star_by_sampling(morris, VERDICT_OUTPUT).items():
        order = importance_order(mu_star, result.factors)
        area, low, high = result.order_check(order)
        rows.append(
            {
                "sampling": sampling,
                "order": ">".join(order),
                "area": area,
                "ci_low": low,
                "ci_high": high,
                "holds": bool(high >= 0.0),
            }
        )
    return pd.DataFrame(rows, columns=["sampling", "order", "area", "ci_low", "ci_high", "holds"])


@dataclass(frozen=True)
class ModelAudit:
    """Every result of one model's audit."""

    morris: FactorMorris
    interventions: InterventionResult
    sequential: pd.DataFrame
    order_check: pd.DataFrame
    verdicts: pd.DataFrame
    interaction: pd.DataFrame
    pixel: PixelView
    seconds: float
    n_forwards: int

    def metrics(self, identity: Mapping[str, object]) -> dict:
        """``metrics.json``: identity keys, per-factor headline numbers, budget and checks.

        Wall time is left out so that the file is a deterministic function of the
        seed (the stage prints it).
        """
        verdicts = self.verdicts.set_index("factor")
        morris = self.morris.table[self.morris.table["output"] == VERDICT_OUTPUT]
        factors = {}
        for factor in verdicts.index:
            row = verdicts.loc[factor]
            factors[factor] = {
                "state": str(row["state"]),
                "drop": float(row["drop"]),
                "ci_low": float(row["ci_low"]),
                "ci_high": float(row["ci_high"]),
                "single_drop": float(row["single_drop"]),
                **{
                    f"mu_star_{s}": float(g.loc[g["factor"] == factor, "mu_star"].iloc[0])
                    for s, g in morris.groupby("sampling", sort=False)
                },
                "sigma": float(row["sigma"]),
            }
        result = self.interventions
        total, total_low, total_high = result.total_drop
        return {
            **dict(identity),
            "factors": factors,
            "relied_on": [f for f in verdicts.index if verdicts.at[f, "state"] == "relied_on"],
            "inconclusive": [f for f in verdicts.index if verdicts.at[f, "state"] == "inconclusive"],
            "total_drop": {"drop": total, "ci_low": total_low, "ci_high": total_high},
            "order_check": {
                str(r.sampling): {
                    "area": float(r.area),
                    "ci_low": float(r.ci_low),
                    "ci_high": float(r.ci_high),
                    "holds": bool(r.holds),
                }
                for r in self.order_check.itertuples()
            },
            "budget": {
                "rounds": result.rounds,
                "n_items": result.n_items,
                "repetitions": result.repetitions,
                "n_pool": result.n_pool,
                "n_correct": result.n_correct,
            },
            "interaction_reading": str(self.interaction["reading"].iloc[0]),
            "background_share": float(self.pixel.table["background_share"].mean()),
            "background_pixel_fraction": float(self.pixel.table["background_pixel_fraction"].mean()),
            "n_forwards": self.n_forwards,
        }


def audit_model(
    model: Callable[[torch.Tensor], torch.Tensor],
    heldout: Scene,
    pool: Scene,
    config: AuditConfig,
    shard: Shard | None = None,
) -> ModelAudit | None:
    """Run the factor audit of one model.

    Parameters
    ----------
    model : callable
        Images ``(N, 3, H, W)`` in [0, 1] -> logits ``(N, 10)``, on the scenes' device.
    heldout : Scene
        ``config.n_digits`` held-out digits with uniform factors (``test_unbiased``) for
        the global Morris analysis; its first ``config.pixel_images`` digits are
        explained in the pixel view.
    pool : Scene
        Digits of the training distribution (``test_aligned``) in a seeded order: the
        interventions draw their correctly classified digits from it, and its first
        ``config.n_digits`` digits start the local Morris trajectories.
    config : AuditConfig
    shard : Shard, optional
        A process of a sharded run (:mod:`shortcut_audit.distributed`): it evaluates its
        share of the digits of every step (Morris, interventions, pixel view); rank 0
        merges the shares and returns the audit, the other ranks return None. Every
        digit's draws derive from the seed and its position in its sample, never from
        the rank, so the audit is that of a single process.

    Returns
    -------
    ModelAudit or None
    """
    shard = shard or Shard.single()
    start = time.perf_counter()
    reader = ProbabilityReader(model, batch_size=config.batch_size)
    scenes = {"global": heldout, "local": pool.select(torch.arange(min(config.n_digits, len(pool))))}
    for what, n in (
        ("held-out digits", len(heldout)),
        ("pool digits", min(config.n_digits, len(pool))),
        ("pixel-view images (audit.pixel_view.n_images)", config.pixel_images),
    ):
        shard.check_items(n, what)
    parts = {s: ShardData(shard.items(len(scenes[s]))) for s in config.samplings}
    for sampling, part in parts.items():
        changes, n_images = factor_changes(
            reader,
            scenes[sampling],
            config.factors,
            config.n_trajectories,
            config.levels,
            config.design,
            config.seed,
            sampling,
            items=part.index,
        )
        part.put("changes", changes.permute(2, 0, 1, 3))  # items first
        part.add("n_images", n_images)
    interventions = run_interventions(
        reader,
        pool,
        config.factors,
        config.budget,
        config.rule.drop_threshold,
        seed=config.seed + 1,
        conf_level=CONF_LEVEL,
        n_resamples=config.n_bootstrap,
        shard=shard,
    )
    parts["pixel"] = ShardData(shard.items(config.pixel_images))
    pixels = pixel_view(
        model,
        heldout,
        config.pixel_images,
        config.grid_size,
        config.nb_design,
        batch_size=config.batch_size,
        seed=config.seed + 2,
        index=parts["pixel"].index,
    )
    for key, values in pixels.per_image().items():
        parts["pixel"].put(key, values)
    parts["pixel"].add("reader_images", reader.n_images)
    gathered = shard.gather_to_root(parts)
    if gathered is None:
        return None
    sizes = {**{s: len(scenes[s]) for s in config.samplings}, "pixel": config.pixel_images}
    merged = {name: merge([g[name] for g in gathered], sizes[name]) for name in parts}
    runs = [
        morris_from_changes(
            merged[s].per_item["changes"].permute(1, 2, 0, 3),
            scenes[s].labels,
            config.factors,
            int(merged[s].totals["n_images"]),
            CONF_LEVEL,
            seed=config.seed,
            sampling=s,
        )
        for s in config.samplings
    ]
    return _combine(
        config,
        runs,
        interventions,
        PixelView.from_per_image(merged["pixel"].per_item),
        time.perf_counter() - start,
        int(merged["pixel"].totals["reader_images"]),
    )


def _combine(
    config: AuditConfig,
    runs: list[FactorMorris],
    interventions: InterventionResult,
    pixels: PixelView,
    seconds: float,
    reader_images: int,
) -> ModelAudit:
    """The audit from the Morris runs (one per sampling), the interventions and the pixel view of every digit."""
    morris = FactorMorris(
        table=pd.concat([r.table for r in runs], ignore_index=True),
        changes=runs[0].changes,
        n_evaluations=sum(r.n_evaluations for r in runs),
    )
    mu_stars = mu_star_by_sampling(morris.table, VERDICT_OUTPUT)
    sequential = pd.concat(
        [interventions.sequential(importance_order(mu_stars[s], config.factors), s) for s in config.samplings],
        ignore_index=True,
    )
    primary = config.primary_sampling
    verdicts = verdict_table(
        morris.table,
        interventions.shapley_drop,
        interventions.single_drop,
        primary,
        interventions.n_items,
        interventions.repetitions,
        interventions.first_states,
    )
    primary_rows = morris.table[(morris.table["output"] == VERDICT_OUTPUT) & (morris.table["sampling"] == primary)]
    interaction = interaction_table(
        primary_rows, interventions, config.rule.drop_threshold, config.interaction_min_mu_star
    )
    pixel_forwards = config.pixel_images * config.nb_design * (config.grid_size**2 + 1)
    return ModelAudit(
        morris=morris,
        interventions=interventions,
        sequential=sequential,
        order_check=order_check_table(interventions, morris.table),
        verdicts=verdicts,
        interaction=interaction,
        pixel=pixels,
        seconds=seconds,
        n_forwards=reader_images + pixel_forwards,
    )


def write_model_audit(audit: ModelAudit, identity: Mapping[str, object], folder: str | Path) -> Path:
    """Write the per-model artefacts into ``folder``, all or nothing.

    ``morris.parquet``, ``interventions.parquet``, ``order_check.parquet``,
    ``verdicts.parquet``, ``interaction.parquet``, ``pixel_view.parquet``,
    ``maps.npz`` and ``metrics.json``.
    """
    folder = Path(folder)
    tables = {
        "morris": audit.morris.table,
        "interventions": audit.sequential,
        "order_check": audit.order_check,
        "verdicts": audit.verdicts,
        "interaction": audit.interaction,
        "pixel_view": audit.pixel.table,
    }
    with atomic_dir(folder) as tmp:
        for name, frame in tables.items():
            schema.write_into(f"audit/{name}", frame, tmp)
        arrays = audit.pixel.arrays()
        if not all(np.isfinite(a).all() for a in arrays.values() if a.dtype != bool):
            raise ValueError("pixel-view arrays contain non-finite values")
        save_npz(tmp / "maps.npz", arrays)
        write_json(audit.metrics(identity), tmp / "metrics.json")
    return folder
