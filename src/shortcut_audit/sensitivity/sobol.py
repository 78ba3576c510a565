"""Variance-based (Sobol) sensitivity indices, batched and streamed on any device.

Public API
----------
``sobol(f, d, n=1024, estimator="jansen", sampler="sobol", seed=0, batch_size=4096,
device=None, first_order=True, conf_level=0.95, n_resamples=100, names=None,
output_names=None, dtype=torch.float32) -> SobolResult``

``saltelli_rows(a, b, start, stop, first_order=True)``: rows ``start:stop`` of the
stacked design ``[A; B; AB_1; ...; AB_d]`` (``B`` left out when ``first_order`` is
False) built from the base matrices, without building the rest.

``sobol_indices(outputs, estimator, first_order, ...) -> SobolIndices``: indices and bootstrap
intervals from the outputs ``(d + 2, N, k)`` (or ``(d + 1, N, k)``) of that design,
so other code (and tests) can feed outputs of their own.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TypedDict

import torch

from shortcut_audit.runtime import resolve_device
from shortcut_audit.sensitivity.estimators import SobolEstimator, get_estimator, output_variance
from shortcut_audit.sensitivity.evaluation import check_batch_size, evaluate_in_batches
from shortcut_audit.sensitivity.results import SobolResult
from shortcut_audit.sensitivity.samplers import check_sampler, sample

__all__ = [
    "SobolIndices",
    "constant_outputs",
    "normal_quantile",
    "power_of_two_scale",
    "saltelli_rows",
    "sobol",
    "sobol_indices",
]

# Bootstrap resamples are processed in chunks of at most this many output values.
_BOOTSTRAP_CHUNK_ELEMENTS = 1 << 18


class SobolIndices(TypedDict):
    """What :func:`sobol_indices` returns: indices ``(d, k)``, output variance ``(k,)``, warnings."""

    first: torch.Tensor
    total: torch.Tensor
    first_conf: torch.Tensor
    total_conf: torch.Tensor
    variance: torch.Tensor
    warnings: list[str]


def saltelli_rows(a: torch.Tensor, b: torch.Tensor, start: int, stop: int, first_order: bool = True) -> torch.Tensor:
    """Rows ``start:stop`` of the stacked Saltelli (2010) design.

    The design is ``[A; B; AB_1; ...; AB_d]`` with ``AB_i`` = ``A`` whose column ``i``
    comes from ``B``; without first order ``B`` is not evaluated and the design is
    ``[A; AB_1; ...; AB_d]``. Only the requested rows are built.
    """
    n, d = a.shape
    flat = torch.arange(start, stop, device=a.device)
    block, row = flat // n, flat % n
    first_ab_block = 2 if first_order else 1
    column_from_b = (block - first_ab_block).unsqueeze(1) == torch.arange(d, device=a.device)
    if first_order:
        column_from_b |= (block == 1).unsqueeze(1)
    return torch.where(column_from_b, b[row], a[row])


def normal_quantile(conf_level: float) -> float:
    """Two-sided standard-normal quantile ``z`` of a ``conf_level`` interval."""
    if not 0.0 < conf_level < 1.0:
        raise ValueError(f"conf_level must lie strictly between 0 and 1, got {conf_level}")
    return float(torch.special.ndtri(torch.tensor(0.5 + conf_level / 2.0, dtype=torch.float64)))


def power_of_two_scale(values: torch.Tensor, dim: int | tuple[int, ...]) -> torch.Tensor:
    """A power of two at least ``max |values|`` along ``dim`` (1 where every value is 0).

    Statistics of ``values / scale`` (magnitudes at most 1, at most 2 for values beyond
    ``2^1023``) cannot overflow when squared or summed, and since the scale is a power of
    two the division and the rescaling are exact: ordinary outputs give bit-identical
    results, outputs near the float64 limit (e.g. ``1e155``, whose square is not
    representable) give the same numbers scaled.
    """
    peak = values.abs().amax(dim=dim)
    _, exponent = torch.frexp(peak)  # peak = m 2^e with 0.5 <= m < 1, so peak < 2^e
    exponent = exponent.clamp(max=1023)  # 2^1024 is not a float64
    return torch.where(peak > 0, torch.ldexp(torch.ones_like(peak), exponent), torch.ones_like(peak))


def constant_outputs(outputs: torch.Tensor, rel_tol: float = 1e-10) -> torch.Tensor:
    """Which output columns are constant: spread ``<= rel_tol * max|y|`` over all rows, ``(k,)`` bool."""
    flat = outputs.reshape(-1, outputs.shape[-1])
    spread = flat.amax(dim=0) - flat.amin(dim=0)
    return spread <= rel_tol * flat.abs().amax(dim=0)


def _indices(
    outputs: torch.Tensor, estimator: SobolEstimator, first_order: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(first, total, variance) from outputs ``(..., blocks, N, k)``; first is zeros without B."""
    ya = outputs[..., 0, :, :]
    if not first_order:
        yab = outputs[..., 1:, :, :]
        variance = output_variance(ya, None)
        total = estimator.total(ya, yab, variance)
        return torch.zeros_like(total), total, variance
    yb = outputs[..., 1, :, :]
    yab = outputs[..., 2:, :, :]
    variance = output_variance(ya, yb)
    total = estimator.total(ya, yab, variance)
    first = estimator.first(ya, yb, yab, variance)
    return first, total, variance


def _bootstrap_conf(
    outputs: torch.Tensor,
    estimator: SobolEstimator,
    first_order: bool,
    n_resamples: int,
    z: float,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Half-widths ``z * sd`` of the bootstrap distributions of first and total indices.

    Rows ``1..N`` are resampled with replacement jointly over A, B and every AB_i
    (they are paired), as in Saltelli et al. (2010) and SALib.
    """
    blocks, n, k = outputs.shape
    d = blocks - (2 if first_order else 1)
    if n_resamples < 2:
        zeros = torch.zeros(d, k, dtype=outputs.dtype, device=outputs.device)
        return zeros, zeros.clone()
    generator = torch.Generator().manual_seed(seed)
    resample_rows = torch.randint(n, (n_resamples, n), generator=generator)
    chunk = max(1, _BOOTSTRAP_CHUNK_ELEMENTS // (blocks * n * k))
    firsts, totals = [], []
    for start in range(0, n_resamples, chunk):
        rows = resample_rows[start : start + chunk].to(outputs.device)
        resampled = outputs[:, rows].movedim(1, 0)  # (chunk, blocks, N, k)
        first, total, _ = _indices(resampled, estimator, first_order)
        firsts.append(first)
        totals.append(total)
    first_sd = torch.cat(firsts).std(dim=0, unbiased=True)
    total_sd = torch.cat(totals).std(dim=0, unbiased=True)
    return z * first_sd, z * total_sd


def sobol_indices(
    outputs: torch.Tensor,
    estimator: str = "jansen",
    first_order: bool = True,
    conf_level: float = 0.95,
    n_resamples: int = 100,
    seed: int = 0,
) -> SobolIndices:
    """First-order and total Sobol indices from the outputs of the Saltelli design.

    Parameters
    ----------
    outputs : torch.Tensor
        ``(d + 2, N, k)`` outputs on ``[A; B; AB_1..AB_d]``, or ``(d + 1, N, k)`` on
        ``[A; AB_1..AB_d]`` when ``first_order`` is False.
    estimator : str
        A name from :data:`~shortcut_audit.sensitivity.estimators.ESTIMATORS`.
    first_order, conf_level, n_resamples, seed
        As in :func:`sobol`.

    Returns
    -------
    SobolIndices
        ``first``, ``total``, ``first_conf``, ``total_conf`` ``(d, k)``, ``variance``
        ``(k,)`` (float64, on the outputs' device) and ``warnings`` (list of str).
        Output columns with zero variance get indices and intervals of 0, and a
        warning, never NaN. The indices are computed on the outputs divided by a power
        of two >= their largest magnitude (exact, and scale invariant), so huge but
        finite outputs (``|y|`` near ``1e155`` and beyond, whose squares overflow) give
        the indices of the same outputs at scale 1; only a variance beyond the float64
        range is inf, with a warning.
    """
    pair = get_estimator(estimator)
    z = normal_quantile(conf_level)
    if outputs.dim() != 3 or outputs.shape[0] < (3 if first_order else 2) or outputs.shape[1] < 2:
        raise ValueError(
            f"outputs must have shape (d + {2 if first_order else 1}, N >= 2, k), got {tuple(outputs.shape)}"
        )
    # Indices are ratios, invariant to the output scale: computing them on outputs divided by a
    # power of two >= max |y| keeps squares and sums finite for huge but finite outputs.
    scale = power_of_two_scale(outputs.to(torch.float64), dim=(0, 1))
    outputs = outputs.to(torch.float64) / scale
    constant = constant_outputs(outputs)
    # Centring by the grand mean (as SALib does) leaves Jansen's differences unchanged and
    # keeps the product-based estimators (Saltelli, Homma) away from cancellation.
    outputs = outputs - outputs.mean(dim=(0, 1))
    first, total, variance = _indices(outputs, pair, first_order)
    first_conf, total_conf = _bootstrap_conf(outputs, pair, first_order, int(n_resamples), z, seed)
    messages: list[str] = []
    if bool(constant.any()):
        columns = constant.nonzero().flatten().tolist()
        messages.append(f"model output(s) {columns} are constant over the design; their Sobol indices are set to 0")
        keep = ~constant
        first, total = first * keep, total * keep
        first_conf, total_conf, variance = first_conf * keep, total_conf * keep, variance * keep
    variance = variance * scale * scale  # in two steps: scale ** 2 alone may overflow
    if not bool(torch.isfinite(variance).all()):
        columns = (~torch.isfinite(variance)).nonzero().flatten().tolist()
        messages.append(
            f"the output variance of output(s) {columns} exceeds the float64 range (outputs up to "
            f"{float(scale.max()):.3g}); it is reported as inf, the indices (computed on rescaled "
            "outputs) are unaffected"
        )
    return {
        "first": first,
        "total": total,
        "first_conf": first_conf,
        "total_conf": total_conf,
        "variance": variance,
        "warnings": messages,
    }


def _names(names: Sequence[str] | None, count: int, prefix: str, what: str) -> tuple[str, ...]:
    if names is None:
        return tuple(f"{prefix}{i}" for i in range(count))
    names = tuple(str(n) for n in names)
    if len(names) != count:
        raise ValueError(f"{len(names)} {what} names given for {count} {what}s")
    return names


def _output_names(output_names: Sequence[str] | None, k: int, scalar: bool) -> tuple[str, ...]:
    if output_names is None and scalar:
        return ("y",)
    return _names(output_names, k, "y", "output")


def _shape_result(x: torch.Tensor, scalar: bool) -> torch.Tensor:
    x = x.detach().to("cpu", torch.float64)
    return x.squeeze(-1) if scalar else x


def sobol(
    f: Callable[[torch.Tensor], torch.Tensor],
    d: int,
    n: int = 1024,
    estimator: str = "jansen",
    sampler: str = "sobol",
    seed: int = 0,
    batch_size: int = 4096,
    device: str | torch.device | None = None,
    first_order: bool = True,
    conf_level: float = 0.95,
    n_resamples: int = 100,
    names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    dtype: torch.dtype = torch.float32,
) -> SobolResult:
    """First-order and total Sobol indices of ``f`` on the unit hypercube.

    Implements the design of Saltelli et al. (2010): two independent ``N x d``
    matrices A and B (the two halves of one ``2d``-dimensional point set) and the
    ``d`` matrices ``AB_i``; ``f`` is evaluated ``N (d + 2)`` times, or ``N (d + 1)``
    when ``first_order`` is False (B itself is then never evaluated). Indices come
    from the chosen estimator (Jansen 1999 by default) and their confidence intervals
    from a paired bootstrap over the ``N`` rows.

    Parameters
    ----------
    f : callable
        ``f(x) -> (B,)`` or ``(B, k)`` for ``x`` a ``(B, d)`` tensor in ``[0, 1)^d`` on
        ``device``; ``B <= batch_size`` on every call.
    d : int
        Number of inputs.
    n : int
        Base sample size ``N`` (a power of two keeps the Sobol sequence balanced).
    estimator : {"jansen", "saltelli", "homma", "janon", "glen"}
    sampler : {"sobol", "halton", "latin", "monte_carlo"}
    seed : int
        Seeds the sampler and the bootstrap; same seed, same numbers on the CPU.
    batch_size : int
        Maximum number of points per call of ``f``; the design rows are built batch by
        batch, so memory does not grow with ``N (d + 2)``.
    device : str, torch.device or None
        Where points, outputs and estimator arithmetic live (None: CUDA if available).
    first_order : bool
        Also estimate first-order indices (costs the ``N`` evaluations on B).
    conf_level : float
        Level of the bootstrap intervals.
    n_resamples : int
        Bootstrap resamples (0 or 1: intervals of 0).
    names, output_names : sequence of str, optional
        Labels for the result tables.
    dtype : torch.dtype
        Floating dtype of the points given to ``f``; estimators always use float64.

    Returns
    -------
    SobolResult
        Tensors on the CPU of shape ``(d,)`` for scalar ``f``, ``(d, k)`` otherwise.
    """
    if int(d) < 1:
        raise ValueError(f"d must be >= 1, got {d}")
    if int(n) < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    get_estimator(estimator)
    check_sampler(sampler)
    normal_quantile(conf_level)
    check_batch_size(batch_size)
    d, n = int(d), int(n)
    names = _names(names, d, "x", "input")
    device = resolve_device(device)
    base = sample(sampler, n, 2 * d, seed=seed, device=device, dtype=dtype)
    a, b = base[:, :d], base[:, d:]
    blocks = d + 2 if first_order else d + 1

    def rows(start: int, stop: int) -> torch.Tensor:
        return saltelli_rows(a, b, start, stop, first_order)

    outputs, scalar = evaluate_in_batches(f, rows, blocks * n, batch_size, device)
    k = outputs.shape[1]
    indices = sobol_indices(outputs.view(blocks, n, k), estimator, first_order, conf_level, n_resamples, seed)
    for message in indices["warnings"]:
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return SobolResult(
        first=_shape_result(indices["first"], scalar),
        total=_shape_result(indices["total"], scalar),
        first_conf=_shape_result(indices["first_conf"], scalar),
        total_conf=_shape_result(indices["total_conf"], scalar),
        variance=_shape_result(indices["variance"], scalar),
        names=names,
        output_names=_output_names(output_names, k, scalar),
        n=n,
        n_evaluations=blocks * n,
        estimator=estimator,
        sampler=sampler,
        has_first=first_order,
        conf_level=conf_level,
        warnings=tuple(indices["warnings"]),
    )
