"""Batched, streaming evaluation of a model function over a design.

The design is never passed whole: ``points(start, stop)`` builds the rows
``start:stop`` on demand, ``f`` sees at most ``batch_size`` of them per call, and only
the (small) outputs are kept, in float64 on the device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["check_batch_size", "evaluate_in_batches"]

ModelFunction = Callable[[torch.Tensor], torch.Tensor]


def check_batch_size(batch_size: int) -> int:
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


def _as_output_matrix(y: torch.Tensor, n_rows: int) -> tuple[torch.Tensor, bool]:
    """Check one batch of ``f``'s outputs and return it as ``(B, k)`` plus whether it was 1-D."""
    if not isinstance(y, torch.Tensor):
        raise TypeError(f"f must return a torch.Tensor, got {type(y).__name__}")
    if y.dim() not in (1, 2) or y.shape[0] != n_rows:
        raise ValueError(f"f must return shape ({n_rows},) or ({n_rows}, k) for {n_rows} points, got {tuple(y.shape)}")
    if not bool(torch.isfinite(y).all()):
        raise ValueError("f returned NaN or infinite values; sensitivity indices would be undefined")
    return (y.unsqueeze(1) if y.dim() == 1 else y), y.dim() == 1


def evaluate_in_batches(
    f: ModelFunction,
    points: Callable[[int, int], torch.Tensor],
    n_points: int,
    batch_size: int,
    device: torch.device,
) -> tuple[torch.Tensor, bool]:
    """Evaluate ``f`` on design rows ``0 .. n_points-1``, ``batch_size`` rows per call.

    Parameters
    ----------
    f : callable
        ``f(x (B, d)) -> (B,) or (B, k)``.
    points : callable
        ``points(start, stop) -> (stop - start, d)`` tensor of design rows on ``device``.
    n_points, batch_size : int
    device : torch.device
        Where the outputs are stored.

    Returns
    -------
    outputs : torch.Tensor
        ``(n_points, k)`` float64 on ``device``.
    scalar : bool
        True when ``f`` returned 1-D outputs.
    """
    batch_size = check_batch_size(batch_size)
    if n_points < 1:
        raise ValueError(f"the design has no points (n_points={n_points})")
    outputs: torch.Tensor | None = None
    scalar = True
    for start in range(0, n_points, batch_size):
        stop = min(start + batch_size, n_points)
        y, scalar = _as_output_matrix(f(points(start, stop)), stop - start)
        if outputs is None:
            outputs = torch.empty(n_points, y.shape[1], dtype=torch.float64, device=device)
        elif y.shape[1] != outputs.shape[1]:
            raise ValueError(f"f returned {y.shape[1]} outputs for one batch and {outputs.shape[1]} for another")
        outputs[start:stop] = y.detach().to(device=device, dtype=torch.float64)
    if outputs is None:
        raise ValueError(f"the design produced no batches (n_points={n_points})")
    return outputs, scalar
