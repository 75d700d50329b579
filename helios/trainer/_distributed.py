"""Running the trainer in several processes with ``torch.distributed``.

Two ways in: `helios.trainer._spawn.spawn` starts the workers itself (one per GPU id, or
``cpu_processes`` gloo processes on the CPU); or the user's script runs under
``torchrun``, which sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``, and `process_group`
joins that group. This module holds what both share: the process context, the result
queue, the error type, and sharding and metric reduction.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import datetime
import gc
import os
import pickle
import queue as queue_module
import secrets
import time
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

import attrs
import torch
import torch.distributed as dist

# torch.distributed re-exports the stores without marking them public for type checkers.
from torch._C._distributed_c10d import TCPStore
from torch.distributed.distributed_c10d import PrefixStore, Store
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
)

from helios.data import ResumableSampler

__all__ = [
    "Context",
    "ResultQueue",
    "WorkerError",
    "context_from_environment",
    "leave_group",
    "process_group",
    "reduce_metrics",
    "shard_loader",
]

T = TypeVar("T")


class WorkerError(RuntimeError):
    """A worker process failed; the message names its rank and carries its traceback."""

    def __init__(self, message: str, rank: int) -> None:
        super().__init__(message)
        self.rank = rank


class ResultQueue:
    """Carries values from the worker processes to the main process.

    Values are pickled by value (tensors are copied, not shared through handles that die
    with the worker), and the main process keeps draining the pipe while it waits for
    the workers, so a large value never blocks a worker's exit.
    """

    def __init__(self, context: Any = None) -> None:
        if context is None:
            import multiprocessing

            # The start method of the processes helios starts itself.
            context = multiprocessing.get_context("spawn")
        self._queue = context.Queue()
        self._buffer: collections.deque[bytes] = collections.deque()

    def __getstate__(self) -> dict[str, Any]:
        return {"_queue": self._queue}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._queue = state["_queue"]
        self._buffer = collections.deque()

    def put(self, value: object) -> None:
        """Send ``value`` (picklable) to the main process."""
        self._queue.put(pickle.dumps(value))

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        """Receive the next value.

        Raises:
            queue.Empty: if nothing arrives in ``timeout`` seconds (or at once when
                ``block`` is false).
        """
        if self._buffer:
            return pickle.loads(self._buffer.popleft())
        return pickle.loads(self._queue.get(block, timeout))

    def get_nowait(self) -> Any:
        """`get` without waiting."""
        return self.get(block=False)

    def empty(self) -> bool:
        """Whether nothing is waiting (a snapshot; other processes may add values)."""
        self.drain()
        return not self._buffer

    def drain(self) -> None:
        """Move what has arrived from the pipe into this process's buffer."""
        while True:
            try:
                self._buffer.append(self._queue.get_nowait())
            except queue_module.Empty:
                return

    def close(self) -> None:
        """Wait until what this process put has reached the pipe; put nothing after.

        A process about to end with `os._exit` calls it, so nothing it sent is lost.
        """
        self._queue.close()
        self._queue.join_thread()


@attrs.frozen
class Context:
    """Where this process stands in the run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    #: This process is one of several joined in a process group.
    in_process_group: bool = False

    def any(self, flag: bool) -> bool:
        """``True`` on every rank when ``flag`` is true on any rank (one collective)."""
        if not self.in_process_group:
            return flag
        value = torch.tensor([1 if flag else 0], dtype=torch.int32)
        backend = dist.get_backend()
        if backend == "nccl":
            value = value.cuda()
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def gather(self, value: T) -> list[T]:
        """Every rank's ``value``, in rank order (``[value]`` in a single process)."""
        if not self.in_process_group:
            return [value]
        values: list[Any] = [None] * self.world_size
        dist.all_gather_object(values, value)
        return values


def context_from_environment() -> Context:
    """The context ``torchrun`` (or an initialised process group) describes, if any."""
    if dist.is_available() and dist.is_initialized():
        local = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        return Context(dist.get_rank(), local, dist.get_world_size(), dist.get_world_size() > 1)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and "RANK" in os.environ:
        rank = int(os.environ["RANK"])
        local = int(os.environ.get("LOCAL_RANK", rank))
        return Context(rank, local, world, True)
    return Context()


@contextlib.contextmanager
def process_group(
    context: Context, *, backend: str, timeout: float, device: torch.device
) -> Iterator[None]:
    """Join the default process group for a ``torchrun`` worker while the block runs.

    A group that already exists (made by the user) is used and left alone; one made here
    is left again at the end, all ranks together after a success.

    Args:
        context: This process's place in the run (`context_from_environment`).
        backend: ``"gloo"`` or ``"nccl"``.
        timeout: Seconds a collective may wait.
        device: This process's device (made current for NCCL).
    """
    if not context.in_process_group or dist.is_initialized():
        yield
        return
    if backend == "nccl":
        torch.cuda.set_device(device)
    delta = datetime.timedelta(seconds=timeout)
    dist.init_process_group(
        backend,
        store=_launcher_store(delta),
        rank=context.rank,
        world_size=context.world_size,
        timeout=delta,
    )
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        leave_group(together=succeeded)


def _launcher_store(timeout: datetime.timedelta) -> Store | None:
    """The store of this generation of ``torchrun`` workers (``None``: torch's default).

    torchrun's launchers keep one store server for the whole run and point every generation
    of workers at it (``TORCHELASTIC_USE_AGENT_STORE``), without a prefix per generation:
    after a restart the new workers would find the keys the old ones wrote, and gloo
    would dial the address a dead worker published. So the workers of a generation first
    agree on a fresh prefix (`_generation_token`) and keep their keys under it.
    """
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    server = TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        is_master=False,
        timeout=timeout,
    )
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    token = _generation_token(server, rank, world_size, timeout.total_seconds())
    return PrefixStore(f"helios/{token}", server)


def _generation_token(store: Store, rank: int, world_size: int, timeout: float) -> str:
    """A token every worker of this generation learns, and no earlier worker knew.

    Each worker announces a fresh nonce under its rank; rank 0 answers every nonce it
    sees with its own fresh token and waits until the other ranks confirm they have it.
    Announcements left by dead workers of earlier generations get answers nobody reads.
    (The restart count cannot serve: a launcher that restarts its workers because another
    node rejoined does not count it, so two nodes may disagree.)
    """
    nonce = secrets.token_hex(8)
    if rank != 0:
        store.set(f"helios/hello/{rank}", nonce)
        token = store.get(f"helios/answer/{nonce}").decode()
        store.add(f"helios/{token}/joined", 1)
        return token
    hellos = [f"helios/hello/{other}" for other in range(1, world_size)]
    answered: set[bytes] = set()
    deadline = time.monotonic() + timeout
    while (joined := store.add(f"helios/{nonce}/joined", 0)) < world_size - 1:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"only {joined} of the {world_size - 1} other ranks joined rank 0 within "
                f"{timeout:g} s"
            )
        if store.check(hellos):  # every rank has announced itself, now or in the past
            for hello in set(store.multi_get(hellos)) - answered:
                store.set(f"helios/answer/{hello.decode()}", nonce)
                answered.add(hello)
        time.sleep(0.01)
    return nonce


def leave_group(*, together: bool) -> None:
    """Destroy the default process group; with ``together``, after a barrier.

    Rank 0 hosts the rendezvous store, and a rank still talking to it while another
    tears its group down can abort in gloo's C++ layer; after a failure another rank may
    be gone, so there is no barrier then.
    """
    if not dist.is_initialized():
        return
    try:
        if together:
            dist.barrier()
    finally:
        dist.destroy_process_group()
        _collect_before_exit()


def _collect_before_exit() -> None:
    """Make sure garbage is collected while the interpreter is still whole.

    A destroyed group lives on while something holds it (a `DistributedDataParallel`
    wrapper does); if it is only freed during interpreter shutdown, gloo's worker threads
    release tensors without a working interpreter and the process aborts. Collecting at
    exit (objects in reference cycles with the model included) frees it in time.
    """
    global _collect_registered
    if not _collect_registered:
        atexit.register(gc.collect)
        _collect_registered = True


_collect_registered = False


def shard_loader(loader: DataLoader[Any], rank: int, world_size: int) -> DataLoader[Any]:
    """Give ``rank`` its share of ``loader``'s data (a new loader where one is needed)."""
    sampler = loader.sampler
    if isinstance(sampler, ResumableSampler):
        sampler.shard(rank, world_size)
        return loader
    if isinstance(sampler, DistributedSampler) or isinstance(loader.dataset, IterableDataset):
        return loader
    if type(loader.batch_sampler) is not BatchSampler:
        raise ValueError(
            "cannot shard a DataLoader with a custom batch_sampler across processes; give it "
            "a DistributedSampler, or build it with DataModule.create_dataloader"
        )
    if not isinstance(sampler, RandomSampler | SequentialSampler):
        raise ValueError(
            f"cannot shard a DataLoader whose sampler is a {type(sampler).__name__}; give it a "
            "DistributedSampler, or build it with DataModule.create_dataloader"
        )
    distributed: DistributedSampler[Any] = DistributedSampler(
        loader.dataset,
        num_replicas=world_size,
        rank=rank,
        shuffle=isinstance(sampler, RandomSampler),
        drop_last=loader.drop_last,
    )
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=distributed,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        persistent_workers=loader.persistent_workers,
    )


def reduce_metrics(metrics: Mapping[str, float], op: str = "mean") -> dict[str, float]:
    """Combine per-rank metric values across processes; a no-op in a single process.

    Args:
        metrics: This rank's values.
        op: ``"mean"``, ``"sum"``, ``"max"`` or ``"min"``.

    Returns:
        A new dict with the combined values (the same on every rank).

    Examples:
        >>> import helios.trainer as hlt
        >>> hlt.reduce_metrics({"accuracy": 0.5})
        {'accuracy': 0.5}
    """
    ops = {
        "mean": dist.ReduceOp.SUM,
        "sum": dist.ReduceOp.SUM,
        "max": dist.ReduceOp.MAX,
        "min": dist.ReduceOp.MIN,
    }
    if op not in ops:
        raise ValueError(f"op must be one of {sorted(ops)}, got {op!r}")
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return dict(metrics)
    keys = sorted(metrics)
    values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        values = values.cuda()
    dist.all_reduce(values, op=ops[op])
    if op == "mean":
        values /= dist.get_world_size()
    return dict(zip(keys, values.tolist(), strict=True))
