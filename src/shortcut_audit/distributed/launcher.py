"""Run a stage on several processes, GPUs or nodes with torchrun (``torch.distributed``).

The ``launcher`` section of ``params.yaml`` says how many processes a sharded stage
(``explain_imagenet``, ``audit_factors``, ``audit_watermark``) runs on: ``nproc_per_node``
processes on each of ``nnodes`` nodes. With one process in all (the default) nothing here
runs: no ``torch.distributed`` initialisation, no shard files.

Why the stage re-launches itself instead of a ``torchrun`` command in ``dvc.yaml``
---------------------------------------------------------------------------------
A stage's ``main`` calls :func:`relaunch` when the params ask for more than one process
and the process is not already a torchrun worker (:func:`is_worker`). :func:`relaunch`
runs torchrun's own entry point (:func:`torch.distributed.run.main`) on
``python -m <stage module> <same arguments>``; the workers find themselves torchrun
workers and run the stage on their shard. The alternative, ``${launcher...}``
interpolated into the ``cmd`` of ``dvc.yaml``, was rejected:

- the command would change with the number of processes, and DVC would re-run a stage
  whose results do not depend on it (``launcher`` is deliberately not among the stages'
  DVC params);
- DVC's interpolation has no conditional, so the single-process default would also go
  through torchrun and pay for a process group it does not need;
- ``python stages/<name>.py`` and the stage's ``main`` in tests behave exactly as
  ``dvc repro`` does, and the parent turns a worker failure into one message naming
  the rank, then removes the shards.

A process started by torchrun directly (``torchrun ... -m shortcut_audit.stages.explain_imagenet``)
is a worker and runs as one whatever the params say.

The run
-------
Workers join a gloo process group (:func:`worker_session`): the exchanges between ranks
are small CPU-side objects, so the GPUs' NCCL would add nothing; each worker computes
on ``cuda:LOCAL_RANK`` (or the CPU). Per-rank results go to the run's shard folder,
``.tmp-<output>.shards-<run id>`` next to the output (so on a filesystem every node
sees when the output folder's parent is shared); rank 0 merges them, writes the output
atomically and removes the folder.

Failures: a worker that raises records its rank and error in the shard folder (and in
torchrun's error file) and exits; torchrun stops the other workers, and
:func:`relaunch` raises :class:`DistributedRunError` naming the first rank that failed
and its error (the earliest record: the ranks that stopped because a peer vanished
fail after it), then removes the shard folder. The output is written by rank 0 only
after every rank has delivered its part, so a failed run writes no output.

Several nodes
-------------
Set ``nnodes`` and ``rdzv_endpoint`` (``host:port`` on one of the nodes, reachable from
all; that node's torchrun hosts the rendezvous) and start the same stage on every node,
in the same working directory on a filesystem all nodes share (the shards are written
next to the output): ``dvc repro <stage>`` on one node (DVC's lock allows one ``repro``
per workspace) and the stage's command from ``dvc.yaml`` (``python stages/<name>.py
...``) on each of the others. Node ranks are assigned at the rendezvous (torchrun's c10d
backend; the run id is derived from the stage and its output, so equal on every node).
Every process waits until rank 0, wherever it runs, has written the output, so the
``dvc repro`` node records a complete output.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from shortcut_audit.config import ParamError, get, require
from shortcut_audit.distributed.shards import Shard, env_int, shard_file
from shortcut_audit.runtime import resolve_device

__all__ = ["DistributedRunError", "Launcher", "is_worker", "relaunch", "shard_folder", "worker_session"]

#: Environment variables torchrun sets for every worker.
WORKER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
#: The shard folder a re-launching parent hands to its workers.
FOLDER_VARIABLE = "SHORTCUT_AUDIT_SHARD_FOLDER"
_ENDPOINT = re.compile(r"^[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")
_ERROR_PREFIX = "error-rank-"


class DistributedRunError(RuntimeError):
    """A sharded stage failed; the message names the first rank that failed and its error."""


@dataclass(frozen=True)
class Launcher:
    """The validated ``launcher`` section.

    Attributes
    ----------
    nproc_per_node : int
        Processes per node (one per GPU on a GPU node).
    nnodes : int
        Nodes; each runs the same command (module docstring).
    rdzv_endpoint : str or None
        ``host:port`` of the rendezvous; required when ``nnodes > 1``.
    timeout_minutes : float
        Longest a process waits for the others at an exchange before the run fails.
    """

    nproc_per_node: int = 1
    nnodes: int = 1
    rdzv_endpoint: str | None = None
    timeout_minutes: float = 60.0

    @classmethod
    def from_params(cls, params: Mapping) -> Launcher:
        nproc = require(params, "launcher.nproc_per_node", int, lambda v: v >= 1, "an integer >= 1", default=1)
        nnodes = require(params, "launcher.nnodes", int, lambda v: v >= 1, "an integer >= 1", default=1)
        endpoint = get(params, "launcher.rdzv_endpoint", None)
        if endpoint is not None and not (isinstance(endpoint, str) and _ENDPOINT.match(endpoint)):
            raise ParamError("launcher.rdzv_endpoint", f"expected host:port or null, got {endpoint!r}")
        if nnodes > 1 and endpoint is None:
            raise ParamError(
                "launcher.rdzv_endpoint",
                f"launcher.nnodes is {nnodes}: set the host:port of the "
                "rendezvous, on one of the nodes and reachable from all",
            )
        timeout = require(
            params, "launcher.timeout_minutes", float, lambda v: v > 0, "a number of minutes > 0", default=60.0
        )
        return cls(nproc, nnodes, endpoint, timeout)

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def check_device(self, requested: str) -> None:
        """Fail before any work when the processes of a GPU node would outnumber its GPUs (one GPU each)."""
        import torch

        if self.nproc_per_node > 1 and resolve_device(requested).type == "cuda":
            count = torch.cuda.device_count()
            if self.nproc_per_node > count:
                raise ParamError(
                    "launcher.nproc_per_node",
                    f"{self.nproc_per_node} processes on a node with {count} "
                    "GPU(s): each process takes one GPU (cuda:LOCAL_RANK)",
                )

    def wants_relaunch(self) -> bool:
        """More than one process asked for, and this process is not a torchrun worker already."""
        return self.world_size > 1 and not is_worker()

    def run_id(self, module: str, output: str | os.PathLike) -> str:
        """The rendezvous id: fresh for one node; derived from the stage and its output on several.

        Every node computes the same id from the same command, so their agents meet.
        """
        if self.nnodes == 1:
            return f"{os.getpid()}x{secrets.token_hex(4)}"
        return hashlib.sha256(f"{module}\0{Path(output)}".encode()).hexdigest()[:16]

    def torchrun_args(self, run_id: str, module: str, argv: Sequence[str]) -> list[str]:
        """torchrun's arguments for ``python -m module argv`` (c10d rendezvous; no restarts)."""
        endpoint = self.rdzv_endpoint if self.nnodes > 1 else "localhost:0"
        return [
            f"--nnodes={self.nnodes}",
            f"--nproc-per-node={self.nproc_per_node}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={endpoint}",
            f"--rdzv-id={run_id}",
            "--max-restarts=0",
            "-m",
            module,
            *argv,
        ]


def is_worker() -> bool:
    """Whether this process was started by torchrun (its worker variables are set)."""
    return all(name in os.environ for name in WORKER_VARIABLES)


def shard_folder(output: str | os.PathLike, run_id: str) -> Path:
    """The run's shard folder: a temporary sibling of ``output`` (ignored by DVC and readers)."""
    output = Path(output)
    return output.parent / f".tmp-{output.name}.shards-{run_id}"


# --------------------------------------------------------------------------- parent


@contextlib.contextmanager
def _kept_process_state() -> Iterator[None]:
    """torchrun's agent sets OMP_NUM_THREADS and signal handlers in its process; undo both after."""
    names = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT")
    handlers = {n: signal.getsignal(getattr(signal, n)) for n in names if hasattr(signal, n)}
    omp = os.environ.get("OMP_NUM_THREADS")
    try:
        yield
    finally:
        for name, handler in handlers.items():
            if handler is not None:
                signal.signal(getattr(signal, name), handler)
        if omp is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp


def relaunch(module: str, argv: Sequence[str], launcher: Launcher, output: str | os.PathLike) -> int:
    """Run ``python -m module argv`` on ``launcher.world_size`` torchrun workers; return 0 when all succeed.

    Raises
    ------
    DistributedRunError
        Some worker failed: names the first rank that failed and its error. The shard
        folder is removed and no output is written.
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    run_id = launcher.run_id(module, output)
    folder = shard_folder(output, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get(FOLDER_VARIABLE)
    os.environ[FOLDER_VARIABLE] = str(folder.resolve())
    failed = True
    try:
        with _kept_process_state():
            torchrun(launcher.torchrun_args(run_id, module, list(argv)))
        failed = False
    except ChildFailedError as exc:
        raise DistributedRunError(failure_message(folder, exc)) from None
    except SystemExit as exc:  # torchrun's argument errors
        raise DistributedRunError(f"torchrun refused the launch ({exc})") from None
    finally:
        if previous is None:
            os.environ.pop(FOLDER_VARIABLE, None)
        else:
            os.environ[FOLDER_VARIABLE] = previous
        if failed:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def failure_message(folder: Path, exc: Exception) -> str:
    """One line naming the first rank that failed and its error (the earliest record in ``folder``).

    Without a record (a worker killed by a signal), torchrun's own first failure is named.
    """
    records = []
    for path in folder.glob(f"{_ERROR_PREFIX}*.json"):
        with contextlib.suppress(OSError, ValueError):
            records.append(json.loads(path.read_text()))
    if records:
        records.sort(key=lambda r: (r["time"], r["rank"]))
        first = records[0]
        others = sorted({r["rank"] for r in records[1:]})
        after = f"; rank(s) {', '.join(map(str, others))} failed after it" if others else ""
        return (
            f"rank {first['rank']} of {first['world_size']} (local rank {first['local_rank']} on "
            f"{first['host']}) failed: {first['error']}{after}"
        )
    failures = getattr(exc, "failures", {})
    if failures:
        rank, failure = min(failures.items(), key=lambda item: (item[1].timestamp, item[0]))
        message = failure.message
        if isinstance(message, dict):
            message = message.get("message", message)
        return f"rank {rank} (local rank {failure.local_rank}) failed with exit code {failure.exitcode}: {message}"
    return f"the sharded run failed: {exc}"


# --------------------------------------------------------------------------- workers


def _record_failure(folder: Path | None, shard: Shard, exc: BaseException) -> None:
    """Write this rank's error where the parent finds it (``folder``), and into torchrun's error file."""
    record = {
        "rank": shard.rank,
        "world_size": shard.world_size,
        "local_rank": shard.local_rank,
        "host": socket.gethostname(),
        "time": time.time(),
        "error": f"{type(exc).__name__}: {exc}",
    }
    if folder is not None:
        with contextlib.suppress(OSError):
            (folder / f"{_ERROR_PREFIX}{shard.rank:05d}.json").write_text(json.dumps(record))
    if isinstance(exc, Exception):
        from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

        with contextlib.suppress(Exception):
            ErrorHandler().record_exception(exc)


@contextlib.contextmanager
def worker_session(output: str | os.PathLike, launcher: Launcher | None = None) -> Iterator[Shard]:
    """This process's :class:`Shard`: a torchrun worker's rank in a gloo group, or the single process.

    Outside torchrun the block gets :meth:`Shard.single` and nothing else happens. A worker
    joins the process group, takes its rank from torchrun's variables and the shard folder
    from its parent (or from the rendezvous id when torchrun was started by hand). After a
    successful block every process waits for the others (rank 0 writes the output in the
    block), so a node's stage command never ends before the output exists; rank 0 then
    removes the folder. A failing rank records its error there first (module docstring).
    """
    if not is_worker():
        yield Shard.single()
        return
    import torch.distributed as dist

    launcher = launcher or Launcher()
    managed = FOLDER_VARIABLE in os.environ  # a re-launching parent reads the error records and cleans up
    folder = Path(os.environ.get(FOLDER_VARIABLE) or shard_folder(output, os.environ["TORCHELASTIC_RUN_ID"]))
    folder.mkdir(parents=True, exist_ok=True)
    shard = Shard(env_int("RANK"), env_int("WORLD_SIZE"), env_int("LOCAL_RANK"), folder)
    dist.init_process_group(
        "gloo", rank=shard.rank, world_size=shard.world_size, timeout=timedelta(minutes=launcher.timeout_minutes)
    )
    succeeded = False
    try:
        yield shard
        # nobody leaves before rank 0 has written the output: a node's stage ends with the output in place
        shard.barrier()
        succeeded = True
    except BaseException as exc:
        _record_failure(folder if managed else None, shard, exc)
        raise
    finally:
        dist.destroy_process_group()
        if succeeded and shard.is_root:
            shutil.rmtree(folder, ignore_errors=True)
        elif not succeeded and not managed:  # started by hand: nobody else will clean up
            with contextlib.suppress(OSError):
                shard_file(folder, shard.rank).unlink(missing_ok=True)
                folder.rmdir()  # the last rank to leave finds it empty
