"""Spearman-to-converged of Sobol vs RISE as a function of forward passes (Fel et al. 2021, Sec. 4.3, Fig. 2).

The paper's protocol (see :mod:`shortcut_audit.metrics.convergence`): for each method a
"converged" map is computed with ``reference_forwards`` passes (10,000 in the paper),
then the method is re-run at each budget and compared with its own converged map by
the Spearman rank correlation, per image (the paper reports mean and variance over
images). Both methods use the mask grid ``imagenet.convergence.grid_size`` (the paper's
7 x 7 for Sobol and RISE alike), whatever the grids of the fidelity runs.

The text does not say whether the cheap runs share samples with the converged one,
so two kinds of reference are offered:

- ``"independent"`` (default): another seed, so the cheap maps share no samples with
  it (strict: agreement can only come from convergence);
- ``"nested"``: the same seed; the QMC design of a small budget is then a prefix of
  the reference's, i.e. the convergence of one estimator sequence as N grows (what the
  authors' code does with its unscrambled Sobol sequence).

Budgets are forward passes per image as this library spends them: Sobol total indices
cost ``N (d + 1)``, where the paper counts ``N (d + 2)``.
"""

from __future__ import annotations

import functools

import torch

from shortcut_audit.imagenet.explain import MethodRun, method_settings, run_method
from shortcut_audit.metrics import convergence_curve
from shortcut_audit.metrics.convergence import ConvergencePoint

REFERENCE_SEED_OFFSET = 10_007
REFERENCE_KINDS = ("independent", "nested")


def _maps_and_cost(runs: dict[int, MethodRun], budget: int) -> tuple[torch.Tensor, float]:
    """Maps and forwards per image of the run at ``budget``."""
    return runs[budget].maps, runs[budget].forwards_per_image


def convergence_results(
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    methods: list[str],
    budgets: list[int],
    reference_forwards: int,
    config,
    batch_size: int,
    seed: int,
    output: str = "logit",
    reference_kinds: tuple[str, ...] = ("independent",),
) -> dict[tuple[str, str], tuple[list[ConvergencePoint], int]]:
    """Per ``(method, reference kind)``: the points at each budget (Spearman per image) and the
    reference's forwards per image.

    Sobol and RISE use ``config.convergence_grid`` masks; other settings are those of
    :func:`~shortcut_audit.imagenet.explain.method_settings` at each budget. Every draw is
    shared by the images (masks, designs), so an image's numbers do not depend on the others.
    """
    unknown = set(reference_kinds) - set(REFERENCE_KINDS)
    if unknown:
        raise ValueError(f"unknown reference kind(s) {sorted(unknown)}; known: {REFERENCE_KINDS}")
    size = images.shape[-1]

    def explain(method, budget, run_seed):
        settings = method_settings(method, budget, size, config, grid_size=config.convergence_grid)
        return run_method(method, scorer, images, targets, settings, batch_size, run_seed, output)

    results = {}
    for method in methods:
        cheap = {budget: explain(method, budget, seed) for budget in budgets}
        for kind in reference_kinds:
            reference = explain(
                method, reference_forwards, seed + (REFERENCE_SEED_OFFSET if kind == "independent" else 0)
            )
            points = convergence_curve(functools.partial(_maps_and_cost, cheap), budgets, reference.maps)
            results[(method, kind)] = (points, int(round(reference.forwards_per_image)))
    return results


def convergence_table(
    model: str,
    image_ids: list[str],
    budgets: list[int],
    results: dict[tuple[str, str], tuple[list[ConvergencePoint], int]],
) -> list[dict]:
    """Rows ``model, method, reference_kind, image_id, budget, forwards, reference_forwards, spearman``."""
    rows = []
    for (method, kind), (points, reference_forwards) in results.items():
        for budget, point in zip(budgets, points):
            for image_id, rho in zip(image_ids, point.spearman.tolist()):
                rows.append(
                    {
                        "model": model,
                        "method": method,
                        "reference_kind": kind,
                        "image_id": image_id,
                        "budget": int(budget),
                        "forwards": int(point.forwards),
                        "reference_forwards": int(reference_forwards),
                        "spearman": float(rho),
                    }
                )
    return rows


def convergence_rows(
    model: str,
    scorer,
    images: torch.Tensor,
    targets: torch.Tensor,
    image_ids: list[str],
    methods: list[str],
    budgets: list[int],
    reference_forwards: int,
    config,
    batch_size: int,
    seed: int,
    output: str = "logit",
    reference_kinds: tuple[str, ...] = ("independent",),
) -> list[dict]:
    """Rows ``model, method, reference_kind, image_id, budget, forwards, reference_forwards, spearman``.

    Sobol and RISE use ``config.convergence_grid`` masks; other settings are those of
    :func:`~shortcut_audit.imagenet.explain.method_settings` at each budget.
    """
    results = convergence_results(
        scorer, images, targets, methods, budgets, reference_forwards, config, batch_size, seed, output, reference_kinds
    )
    return convergence_table(model, image_ids, budgets, results)
