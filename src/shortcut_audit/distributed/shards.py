"""One process's share of a sharded run, and how the shares are put back together.

A sharded run splits its items (images, digits) over ``world_size`` processes
(ranks). Items are dealt round-robin, rank ``r`` taking items ``r, r + W, r + 2W, ...``
(:meth:`Shard.items`): every rank gets the same number of items, give or take one, and
the first items, which some steps use alone (the convergence study's first images),
are spread over the ranks instead of all landing on rank 0.

Three kinds of exchange, all in item order so that the result is what one process
computes:

- :class:`ShardData` collects what a rank computed for its items: per-item tensors (first
  axis = the rank's items), totals that add up over ranks (forward passes, seconds) and
  values every rank computes alike (shapes, settings). :func:`merge` puts the parts of
  all ranks back into item order.
- :meth:`Shard.gather_to_root` brings every rank's :class:`ShardData` to rank 0 through
  files in the run's shard folder (on a filesystem all nodes share); rank 0 then runs the
  combine step (tables, statistics over all items) and writes the stage's output.
- :meth:`Shard.all_gather` and :meth:`Shard.gather_items` exchange the few small
  results some steps need from every item while the run goes on (MoSIP's global bounds
  and rankings, the ensemble-size ordering, the adaptive budget of the interventions);
  every rank then computes the same global quantity from the same numbers.

A single process (:meth:`Shard.single`, the default everywhere) takes every item, and
the exchanges return their input: no ``torch.distributed`` call, no file.

Randomness never depends on the rank: every random draw of an item derives from the
seed and the item (its id, or its position in the full sample), and draws shared by all
items (masks, designs) from the seed alone. What can differ between world sizes is the
last bits of a forward pass: a model's output for one input may differ in the last
digits with the number of inputs batched with it (measured up to about 1e-7 relative on
CPU; larger under bfloat16 autocast on GPUs, not measured here), and a rank batches fewer
items together than a single process does. Measured on EfficientNet-Lite0 on CPU: the
tables of 1 and 2 processes differed by at most 3e-6 (``bench/bench_distributed.py``);
in a smaller setting, where a map ties some pixels within 1e-5, a pixel-wise deletion path
took them in another order and deletion/insertion AUCs differed by up to 1e-4 (their
two-image Student-t bounds by up to 1e-3). Row sets, predictions and region rankings were equal.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import reduce
from pathlib import Path
from typing import Any

import torch

from shortcut_audit.io import atomic_path
from shortcut_audit.runtime import resolve_device

__all__ = ["Shard", "ShardData", "merge"]


def shard_file(folder: Path, rank: int) -> Path:
    """The file of rank ``rank``'s part in the shard folder."""
    return folder / f"rank-{rank:05d}.pt"


class Shard:
    """The view of one process on a (possibly) sharded run.

    Parameters
    ----------
    rank, world_size : int
        This process's global rank and the number of processes.
    local_rank : int
        Rank on this node (selects the GPU).
    folder : Path, optional
        The run's shard folder (required when ``world_size > 1``).
    """

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, folder: Path | None = None):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, {world_size})")
        if world_size > 1 and folder is None:
            raise ValueError("a sharded run needs a shard folder")
        self.rank, self.world_size, self.local_rank = int(rank), int(world_size), int(local_rank)
        self.folder = None if folder is None else Path(folder)

    @classmethod
    def single(cls) -> Shard:
        """The whole run in this process: every item, no exchange."""
        return cls()

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_root(self) -> bool:
        """Rank 0 runs the combine step and writes the output."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Shard(rank={self.rank}, world_size={self.world_size})"

    # ------------------------------------------------------------------ items
    def items(self, n: int) -> torch.Tensor:
        """This rank's item indices among ``n`` items (round-robin), int64 ``(ceil((n - rank) / W),)``."""
        return torch.arange(self.rank, int(n), self.world_size, dtype=torch.int64)

    def check_items(self, n: int, what: str) -> None:
        """Fail before any work when some rank would get no item (``n < world_size``)."""
        if n < self.world_size:
            raise ValueError(
                f"{self.world_size} processes for {n} {what}: every process needs one at least; "
                "lower launcher.nproc_per_node or launcher.nnodes, or add items"
            )

    # ------------------------------------------------------------------ device and log
    def device(self, requested: str | torch.device | None) -> torch.device:
        """The device of this process: ``resolve_device(requested)``, pinned to ``cuda:LOCAL_RANK`` on GPUs.

        A single process keeps ``resolve_device``'s answer unchanged.
        """
        device = resolve_device(requested)
        if device.type != "cuda" or not self.distributed:
            return device
        count = torch.cuda.device_count()
        if self.local_rank >= count:
            raise ValueError(
                f"local rank {self.local_rank} has no GPU: this node has {count}; "
                "set launcher.nproc_per_node to at most the number of GPUs"
            )
        device = torch.device("cuda", self.local_rank)
        torch.cuda.set_device(device)
        return device

    def logger(self, log: Callable[[str], None]) -> Callable[[str], None]:
        """``log`` with a ``[rank r/W]`` prefix in a sharded run (unchanged for a single process)."""
        if not self.distributed:
            return log
        prefix = f"[rank {self.rank}/{self.world_size}] "
        return lambda message: log(prefix + message)

    # ------------------------------------------------------------------ exchanges
    def all_gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (pickled; keep it small), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def gather_items(self, values: torch.Tensor, n: int) -> torch.Tensor:
        """Per-item ``values`` (first axis = this rank's items) of every rank, in item order: ``(n, ...)``.

        Every rank gets the same tensor (on the CPU); a single process gets ``values`` back.
        """
        if not self.distributed:
            return values
        parts = self.all_gather((self.items(n), values.detach().cpu()))
        return _place([index for index, _ in parts], [part for _, part in parts], n)

    def reduce(self, value: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``combine`` folded over every rank's ``value`` in rank order (exact for min and max)."""
        return reduce(combine, self.all_gather(value))

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def gather_to_root(self, data: ShardData | dict[str, ShardData]) -> list | None:
        """Every rank's ``data`` (a :class:`ShardData`, or a dict of them) on rank 0 in rank order; None elsewhere.

        Each rank writes its part into the shard folder; once every rank has written
        (a barrier: a rank that failed never arrives, and the others fail here) rank 0
        reads them all. A single process gets ``[data]`` without writing anything.
        """
        if not self.distributed:
            return [data]
        folder = self.folder
        if folder is None:
            raise ValueError("a sharded run needs a shard folder")
        single = isinstance(data, ShardData)
        state = data.state() if isinstance(data, ShardData) else {name: part.state() for name, part in data.items()}
        with atomic_path(shard_file(folder, self.rank)) as tmp:
            torch.save(state, tmp)
        self.barrier()
        if not self.is_root:
            return None
        parts = []
        for rank in range(self.world_size):
            state = torch.load(shard_file(folder, rank), weights_only=True)
            parts.append(
                ShardData.from_state(state) if single else {name: ShardData.from_state(s) for name, s in state.items()}
            )
        return parts


def _place(indices: Sequence[torch.Tensor], parts: Sequence[torch.Tensor], n: int) -> torch.Tensor:
    """Put per-item ``parts`` (first axis = ``indices``) into one ``(n, ...)`` tensor in item order."""
    first = parts[0]
    for index, part in zip(indices, parts):
        if part.shape[0] != index.numel() or part.shape[1:] != first.shape[1:] or part.dtype != first.dtype:
            raise ValueError(
                f"per-item parts disagree: shape {tuple(part.shape)} {part.dtype} for "
                f"{index.numel()} items, first part {tuple(first.shape)} {first.dtype}"
            )
    full = torch.empty((n, *first.shape[1:]), dtype=first.dtype)
    for index, part in zip(indices, parts):
        full[index] = part
    return full


@dataclass
class ShardData:
    """What one rank computed for its items.

    Attributes
    ----------
    index : Tensor (n_items,)
        The rank's item indices in the full sample (:meth:`Shard.items`).
    per_item : dict of Tensor
        First axis = the rank's items, in ``index`` order (:meth:`put`).
    totals : dict of float
        Added up over ranks (:meth:`add`): forward passes, seconds.
    shared : dict
        Values every rank computes alike (:meth:`set`); the merge keeps rank 0's.
        Tensors, numbers, strings, lists and dicts of these (the shard files are read
        with ``weights_only=True``).
    """

    index: torch.Tensor
    per_item: dict[str, torch.Tensor] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    shared: dict[str, Any] = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return int(self.index.numel())

    def put(self, key: str, values: torch.Tensor) -> None:
        """Store per-item ``values`` (first axis = this rank's items) under ``key`` (once)."""
        values = torch.as_tensor(values)
        if values.ndim == 0 or values.shape[0] != self.n_items:
            raise ValueError(f"{key}: expected a first axis of {self.n_items} items, got shape {tuple(values.shape)}")
        if key in self.per_item:
            raise KeyError(f"{key}: stored twice")
        self.per_item[key] = values.detach().cpu()

    def add(self, key: str, value: float) -> None:
        """Add ``value`` to the total ``key`` (summed over ranks by :func:`merge`)."""
        self.totals[key] = self.totals.get(key, 0) + value

    def set(self, key: str, value: Any) -> None:
        """Store a value every rank computes alike."""
        self.shared[key] = value.detach().cpu() if torch.is_tensor(value) else value

    def state(self) -> dict:
        return {"index": self.index, "per_item": self.per_item, "totals": self.totals, "shared": self.shared}

    @classmethod
    def from_state(cls, state: dict) -> ShardData:
        return cls(state["index"], dict(state["per_item"]), dict(state["totals"]), dict(state["shared"]))


def merge(parts: Sequence[ShardData], n: int) -> ShardData:
    """The parts of every rank as one :class:`ShardData` over all ``n`` items, in item order.

    The ranks' indices must cover ``0 .. n - 1`` exactly once and every part must hold
    the same per-item keys. Totals are summed in rank order; shared values are rank 0's.
    A single part over all items merges to an equal copy of itself.
    """
    if not parts:
        raise ValueError("nothing to merge")
    index = torch.cat([p.index for p in parts])
    if index.numel() != n or not torch.equal(index.sort().values, torch.arange(n)):
        raise ValueError(f"the parts do not cover the {n} items exactly once")
    keys = list(parts[0].per_item)
    for rank, part in enumerate(parts):
        if list(part.per_item) != keys:
            missing = sorted(set(keys) ^ set(part.per_item))
            raise ValueError(f"rank {rank}'s part differs from rank 0's in per-item keys {missing}")
    merged = ShardData(torch.arange(n))
    for key in keys:
        merged.per_item[key] = _place([p.index for p in parts], [p.per_item[key] for p in parts], n)
    for part in parts:
        for key, value in part.totals.items():
            merged.add(key, value)
        for key, value in part.shared.items():
            merged.shared.setdefault(key, value)
    return merged


def env_int(name: str, default: int | None = None) -> int:
    """An integer environment variable set by torchrun (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``)."""
    value = os.environ.get(name)
    if value is None:
        if default is None:
            raise KeyError(f"{name} is not set: not a torchrun worker")
        return default
    return int(value)
