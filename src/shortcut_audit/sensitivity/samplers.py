"""Point sets in the unit hypercube for Sobol and Morris designs.

Public API
----------
``sample(name, n, d, seed=0, device=None, dtype=torch.float32) -> Tensor (n, d)``
    Draw ``n`` points of ``[0, 1)^d`` with the named sampler.
``SAMPLERS``
    Registry ``name -> function(n, d, generator_seed) -> CPU tensor``; the known
    names are ``"sobol"`` (scrambled Sobol, the default everywhere), ``"halton"``
    (randomly digit-permuted Halton), ``"latin"`` (Latin hypercube) and
    ``"monte_carlo"`` (independent uniforms).
``check_sampler(name)``
    Raise ``ValueError`` listing the known names when ``name`` is not one of them.

Every sampler draws on the CPU from a generator seeded with ``seed`` and the
(small, ``n x d``) result is then moved to ``device``: the same seed gives the same
points on every device, bit for bit. The large objects built from these points
(images) are created on the device by the partitions, never here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from shortcut_audit.runtime import resolve_device

__all__ = ["SAMPLERS", "check_sampler", "sample"]

_SamplerFn = Callable[[int, int, int], torch.Tensor]


def _scrambled_sobol(n: int, d: int, seed: int) -> torch.Tensor:
    """Owen-scrambled Sobol sequence (Sobol 1967; Owen 1998) via ``torch.quasirandom``.

    Balance properties hold for ``n`` a power of two; other ``n`` are accepted.
    """
    engine = torch.quasirandom.SobolEngine(dimension=d, scramble=True, seed=seed)
    return engine.draw(n, dtype=torch.float64)


def _first_primes(count: int) -> list[int]:
    primes: list[int] = []
    candidate = 2
    while len(primes) < count:
        if all(candidate % p for p in primes if p * p <= candidate):
            primes.append(candidate)
        candidate += 1
    return primes


def _scrambled_halton(n: int, d: int, seed: int) -> torch.Tensor:
    """Halton sequence (Halton 1960) with random digit permutations (Braaten & Weller 1979).

    Dimension ``j`` is the radical inverse of the point index in the ``j``-th prime
    base ``b``; every digit position ``k`` uses its own random permutation of
    ``{0, ..., b-1}``, which removes the strong correlations between high
    dimensions of the plain sequence. Digits are expanded until ``b^-K`` is below
    float64 resolution of interest (2^-40), so points stay in ``[0, 1)``.
    """
    generator = torch.Generator().manual_seed(seed)
    index = torch.arange(n, dtype=torch.int64)
    out = torch.zeros(n, d, dtype=torch.float64)
    for j, base in enumerate(_first_primes(d)):
        n_digits = max(1, math.ceil(40 / math.log2(base)))
        remaining = index.clone()
        scale = 1.0 / base
        for _ in range(n_digits):
            digit = remaining % base
            remaining = remaining // base
            permutation = torch.randperm(base, generator=generator)
            out[:, j] += permutation[digit].to(torch.float64) * scale
            scale /= base
    return out.clamp_(max=1.0 - 2.0**-53)


def _latin_hypercube(n: int, d: int, seed: int) -> torch.Tensor:
    """Latin hypercube (McKay, Beckman & Conover 1979): one point per ``1/n`` stratum per axis."""
    generator = torch.Generator().manual_seed(seed)
    strata = torch.argsort(torch.rand(d, n, generator=generator, dtype=torch.float64), dim=1).T
    jitter = torch.rand(n, d, generator=generator, dtype=torch.float64)
    return (strata.to(torch.float64) + jitter) / n


def _monte_carlo(n: int, d: int, seed: int) -> torch.Tensor:
    """Independent uniform points (plain Monte Carlo)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=generator, dtype=torch.float64)


SAMPLERS: dict[str, _SamplerFn] = {
    "sobol": _scrambled_sobol,
    "halton": _scrambled_halton,
    "latin": _latin_hypercube,
    "monte_carlo": _monte_carlo,
}


def check_sampler(name: str) -> str:
    """Return ``name`` if it is a known sampler, else raise ``ValueError`` listing the known ones."""
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; choose one of {sorted(SAMPLERS)}")
    return name


def sample(
    name: str,
    n: int,
    d: int,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Draw ``n`` points of the unit hypercube ``[0, 1)^d``.

    Parameters
    ----------
    name : str
        One of ``SAMPLERS``: ``"sobol"``, ``"halton"``, ``"latin"``, ``"monte_carlo"``.
    n, d : int
        Number of points and dimension, both positive.
    seed : int
        Seed of the scrambling / randomisation; same seed, same points.
    device : str, torch.device or None
        Where the returned tensor lives (``None`` = CUDA when available, else CPU).
    dtype : torch.dtype
        Floating dtype of the result.

    Returns
    -------
    torch.Tensor
        Shape ``(n, d)`` on ``device``.
    """
    check_sampler(name)
    if int(n) < 1 or int(d) < 1:
        raise ValueError(f"sample needs n >= 1 and d >= 1, got n={n}, d={d}")
    points = SAMPLERS[name](int(n), int(d), int(seed))
    return points.to(device=resolve_device(device), dtype=dtype)
