"""The factor audit of one trained model: Morris, interventions, verdicts, interaction, pixel view.

:class:`AuditConfig` validates the ``audit`` params section before any work;
:func:`audit_model` runs the whole audit on two digit samples (held-out digits
for Morris and the pixel view, digits of the training distribution for the
interventions); :func:`write_model_audit` writes the artefacts of
``data/audit/<dataset_id>/<arch>/`` atomically (schema: docs/architecture.md).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from shortcut_audit.audit.factor_morris import FactorMorris, factor_morris
from shortcut_audit.audit.interaction import interaction_table
from shortcut_audit.audit.interventions import InterventionResult, run_interventions
from shortcut_audit.audit.pixel_view import PixelView, pixel_view
from shortcut_audit.audit.verdicts import VERDICT_OUTPUT, VerdictRule, verdict_table
from shortcut_audit.config import ParamError, get, require, require_choice
from shortcut_audit.data.biased_mnist import FACTORS
from shortcut_audit.factors.registry import FactorRegistry, factor_registry
from shortcut_audit.factors.scene import ProbabilityReader, Scene
from shortcut_audit.io import atomic_dir, write_json, write_table
from shortcut_audit.sensitivity.morris import DESIGNS

__all__ = ["AuditConfig", "ModelAudit", "audit_model", "write_model_audit"]

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


@dataclass(frozen=True)
class AuditConfig:
    """The validated ``audit`` section (plus ``seed`` and ``biased_mnist.canvas``)."""

    factors: tuple[str, ...]
    n_digits: int
    batch_size: int
    n_trajectories: int
    levels: int
    design: str
    intervention_digits: int
    repetitions: int
    rule: VerdictRule
    pixel_images: int
    grid_size: int
    nb_design: int
    seed: int
    canvas: int

    @classmethod
    def from_params(cls, params: Mapping, registry: FactorRegistry | None = None) -> "AuditConfig":
        """Validate every key the audit reads; ParamError names the first bad key.

        Digit counts are checked against ``biased_mnist.n_test`` (the size of both
        test splits), image counts against ``audit.n_digits`` and the grid against
        the canvas.
        """
        registry = factor_registry(params) if registry is None else registry
        n_test = _positive_int(params, "biased_mnist.n_test")
        canvas = _positive_int(params, "biased_mnist.canvas", 28)
        n_digits = _positive_int(params, "audit.n_digits", 1, n_test)
        levels = require(
            params, "audit.morris.levels", int, lambda v: v >= 2 and v % 2 == 0, "an even integer >= 2"
        )
        return cls(
            factors=_check_factors(params, registry),
            n_digits=n_digits,
            batch_size=_positive_int(params, "audit.batch_size"),
            n_trajectories=_positive_int(params, "audit.morris.n_trajectories", 2),
            levels=levels,
            design=require_choice(params, "audit.morris.design", DESIGNS),
            intervention_digits=_positive_int(params, "audit.interventions.n_digits", 1, n_test),
            repetitions=_positive_int(params, "audit.interventions.repetitions", 2),
            rule=VerdictRule.from_params(params),
            pixel_images=_positive_int(params, "audit.pixel_view.n_images", 1, n_digits),
            grid_size=_positive_int(params, "audit.pixel_view.grid_size", 1, canvas),
            nb_design=_positive_int(params, "audit.pixel_view.nb_design", 2),
            seed=require(params, "seed", int, lambda v: v >= 0, "a non-negative integer"),
            canvas=canvas,
        )


@dataclass(frozen=True)
class ModelAudit:
    """Every result of one model's audit."""

    morris: FactorMorris
    interventions: InterventionResult
    verdicts: pd.DataFrame
    interaction: pd.DataFrame
    pixel: PixelView
    seconds: float
    n_forwards: int

    def metrics(self, identity: Mapping[str, object]) -> dict:
        """``metrics.json``: identity keys, then per-factor headline numbers.

        Wall time is left out so that the file is a deterministic function of the
        seed (the stage prints it).
        """
        screened = self.morris.table[self.morris.table["output"] == VERDICT_OUTPUT].set_index("factor")
        normalised = self.morris.table[self.morris.table["output"] == "normalised_mean"].set_index("factor")
        verdicts = self.verdicts.set_index("factor")
        factors = {
            factor: {
                "mu_star": float(screened.at[factor, "mu_star"]),
                "mu_star_share": float(screened.at[factor, "mu_star_share"]),
                "normalised_mu_star": float(normalised.at[factor, "mu_star"]),
                "sigma_over_mu_star": float(screened.at[factor, "sigma_over_mu_star"]),
                "drop": float(verdicts.at[factor, "drop"]),
                "single_drop": float(verdicts.at[factor, "single_drop"]),
                "morris_relied_on": bool(verdicts.at[factor, "morris_relied_on"]),
                "intervention_relied_on": bool(verdicts.at[factor, "intervention_relied_on"]),
            }
            for factor in screened.index
        }
        return {
            **dict(identity),
            "factors": factors,
            "verdict_agreement": float(self.verdicts["agree"].mean()),
            "importance_order": list(self.interventions.order),
            "interaction_reading": str(self.interaction["reading"].iloc[0]),
            "background_share": float(self.pixel.table["background_share"].mean()),
            "background_pixel_fraction": float(self.pixel.table["background_pixel_fraction"].mean()),
            "n_intervention_digits": self.interventions.n_digits,
            "n_correct": self.interventions.n_correct,
            "n_forwards": self.n_forwards,
        }


def audit_model(
    model: Callable[[torch.Tensor], torch.Tensor],
    heldout: Scene,
    aligned: Scene,
    config: AuditConfig,
) -> ModelAudit:
    """Run the factor audit of one model.

    Parameters
    ----------
    model : callable
        Images ``(N, 3, H, W)`` in [0, 1] -> logits ``(N, 10)``, on the samples' device.
    heldout : Scene
        ``config.n_digits`` held-out digits (``test_unbiased``) for Morris; its first
        ``config.pixel_images`` digits are explained in the pixel view.
    aligned : Scene
        ``config.intervention_digits`` digits of the training distribution
        (``test_aligned``) for the interventions.
    config : AuditConfig

    Returns
    -------
    ModelAudit
    """
    start = time.perf_counter()
    reader = ProbabilityReader(model, batch_size=config.batch_size)
    morris = factor_morris(
        reader, heldout, config.factors, config.n_trajectories, config.levels, config.design,
        seed=config.seed, conf_level=CONF_LEVEL,
    )
    interventions = run_interventions(
        reader, aligned, morris.mu_star(VERDICT_OUTPUT), config.factors, config.repetitions,
        seed=config.seed + 1, conf_level=CONF_LEVEL,
    )
    verdicts = verdict_table(morris.table, interventions.shapley_drop, config.rule, interventions.single_drop)
    interaction = interaction_table(morris.table, interventions.subset_accuracy, config.rule, CONF_LEVEL)
    pixels = pixel_view(
        model, heldout, config.pixel_images, config.grid_size, config.nb_design,
        batch_size=config.batch_size, seed=config.seed + 2,
    )
    pixel_forwards = config.pixel_images * config.nb_design * (config.grid_size**2 + 1)
    return ModelAudit(
        morris=morris,
        interventions=interventions,
        verdicts=verdicts,
        interaction=interaction,
        pixel=pixels,
        seconds=time.perf_counter() - start,
        n_forwards=reader.n_images + pixel_forwards,
    )


def write_model_audit(audit: ModelAudit, identity: Mapping[str, object], folder: str | Path) -> Path:
    """Write the per-model artefacts into ``folder``, all or nothing.

    ``morris.parquet``, ``interventions.parquet``, ``single_drop.parquet``,
    ``verdicts.parquet``, ``interaction.parquet``, ``pixel_view.parquet``,
    ``maps.npz`` and ``metrics.json``.
    """
    folder = Path(folder)
    with atomic_dir(folder) as tmp:
        write_table(audit.morris.table, tmp / "morris.parquet")
        write_table(audit.interventions.sequential, tmp / "interventions.parquet")
        write_table(audit.interventions.single_drop, tmp / "single_drop.parquet")
        write_table(audit.verdicts, tmp / "verdicts.parquet")
        write_table(audit.interaction, tmp / "interaction.parquet")
        write_table(audit.pixel.table, tmp / "pixel_view.parquet")
        arrays = audit.pixel.arrays()
        if not all(np.isfinite(a).all() for a in arrays.values() if a.dtype != bool):
            raise ValueError("pixel-view arrays contain non-finite values")
        np.savez_compressed(tmp / "maps.npz", **arrays)
        write_json(audit.metrics(identity), tmp / "metrics.json")
    return folder
