"""Sharding a stage over processes, GPUs and nodes with torchrun (``torch.distributed``).

- :mod:`~shortcut_audit.distributed.launcher`: the ``launcher`` params, the stage's
  re-launch through torchrun, a worker's session (process group, device, shard folder,
  failures).
- :mod:`~shortcut_audit.distributed.shards`: a process's items, the exchanges between
  processes and the merge of their parts in item order.
"""

from shortcut_audit.distributed.launcher import (
    DistributedRunError,
    Launcher,
    is_worker,
    relaunch,
    shard_folder,
    worker_session,
)
from shortcut_audit.distributed.shards import Shard, ShardData, merge

__all__ = [
    "DistributedRunError",
    "Launcher",
    "Shard",
    "ShardData",
    "is_worker",
    "merge",
    "relaunch",
    "shard_folder",
    "worker_session",
]
