"""Result containers of the Morris and Sobol analyses.

Every index is a float64 CPU tensor of shape ``(d,)`` for a scalar model output or
``(d, k)`` for ``k`` outputs (``d`` = number of inputs, or of groups). ``to_frame()``
returns one row per (input, output) pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import torch

__all__ = ["MorrisResult", "SobolResult"]


def _tidy(names: tuple[str, ...], output_names: tuple[str, ...], columns: dict[str, torch.Tensor]) -> pd.DataFrame:
    """Long table with columns ``name``, ``output`` and one column per index."""
    rows = {"name": [n for n in names for _ in output_names], "output": list(output_names) * len(names)}
    for key, values in columns.items():
        rows[key] = values.reshape(len(names), len(output_names)).double().flatten().tolist()
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class MorrisResult:
    """Morris elementary-effect statistics (Morris 1991; Campolongo et al. 2007).

    Attributes
    ----------
    mu, mu_star, sigma, mu_star_conf : torch.Tensor
        Mean elementary effect, mean absolute effect, standard deviation (ddof = 1)
        and the half-width of the bootstrap confidence interval of ``mu_star``.
    elementary_effects : torch.Tensor
        ``(r, d)`` or ``(r, d, k)``: one effect per trajectory (or radial base point).
    names, output_names : tuple of str
        Inputs (or groups) and outputs, in index order.
    n_evaluations : int
        Number of model evaluations spent.
    design : str
        ``"trajectory"`` or ``"radial"``.
    """

    mu: torch.Tensor
    mu_star: torch.Tensor
    sigma: torch.Tensor
    mu_star_conf: torch.Tensor
    elementary_effects: torch.Tensor
    names: tuple[str, ...]
    output_names: tuple[str, ...] = ("y",)
    n_evaluations: int = 0
    design: str = "trajectory"
    conf_level: float = 0.95
    warnings: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``name, output, mu, mu_star, sigma, mu_star_conf``."""
        return _tidy(
            self.names,
            self.output_names,
            {"mu": self.mu, "mu_star": self.mu_star, "sigma": self.sigma, "mu_star_conf": self.mu_star_conf},
        )


@dataclass(frozen=True)
class SobolResult:
    """First-order and total Sobol indices (Saltelli et al. 2010).

    Attributes
    ----------
    first, total : torch.Tensor
        Index estimates; ``first`` is all zeros when first order was not asked for
        (``first_order=False``; then ``has_first`` is False).
    first_conf, total_conf : torch.Tensor
        Half-widths ``z * sd`` of the bootstrap confidence intervals: the interval is
        ``index +- conf``.
    variance : torch.Tensor
        Output variance estimate, ``()`` or ``(k,)``.
    names, output_names : tuple of str
    n : int
        Base sample size ``N``.
    n_evaluations : int
        ``N (d + 2)`` with first order, ``N (d + 1)`` without.
    estimator, sampler : str
    """

    first: torch.Tensor
    total: torch.Tensor
    first_conf: torch.Tensor
    total_conf: torch.Tensor
    variance: torch.Tensor
    names: tuple[str, ...]
    output_names: tuple[str, ...] = ("y",)
    n: int = 0
    n_evaluations: int = 0
    estimator: str = "jansen"
    sampler: str = "sobol"
    has_first: bool = True
    conf_level: float = 0.95
    warnings: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: ``name, output, total, total_conf`` (+ ``first, first_conf`` when estimated)."""
        columns = {"total": self.total, "total_conf": self.total_conf}
        if self.has_first:
            columns = {"first": self.first, "first_conf": self.first_conf, **columns}
        return _tidy(self.names, self.output_names, columns)
