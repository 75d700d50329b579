"""Running the trainer in several processes with ``torch.distributed``.

Two ways in: `spawn` starts the workers itself (one per GPU id, or ``cpu_processes`` gloo
processes on the CPU); or the user's script runs under ``torchrun``, which sets ``RANK``,
``LOCAL_RANK`` and ``WORLD_SIZE`` and the trainer joins that group.
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
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import attrs
import torch
import torch.distributed as dist
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
)

from helios.data import ResumableSampler

if TYPE_CHECKING:
    from helios.data import DataModule
    from helios.model import Model
    from helios.trainer._trainer import Trainer

__all__ = [
    "Context",
    "ResultQueue",
    "WorkerError",
    "context_from_environment",
    "reduce_metrics",
    "shard_loader",
    "spawn",
]

T = TypeVar("T")

#: Seconds the parent waits for the other workers to end after one has failed.
_GRACE = 3.0


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

    def __init__(self, context: Any) -> None:
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
def process_group(trainer: Trainer) -> Iterator[None]:
    """Join the default process group for a ``torchrun`` worker while the block runs.

    A group that already exists (made by the user) is used and left alone; one made here
    is left again at the end, all ranks together after a success.
    """
    context = trainer._context
    if not context.in_process_group or dist.is_initialized():
        yield
        return
    backend = "gloo" if trainer.use_cpu else "nccl"
    if backend == "nccl":
        torch.cuda.set_device(trainer.device)
    dist.init_process_group(
        backend,
        rank=context.rank,
        world_size=context.world_size,
        timeout=datetime.timedelta(seconds=trainer.collective_timeout),
    )
    succeeded = False
    try:
        yield
        succeeded = True
    finally:
        leave_group(together=succeeded)


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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _worker(
    rank: int,
    world_size: int,
    port: int,
    trainer: Trainer,
    method: str,
    model: Model,
    datamodule: DataModule,
    errors: Any,
) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    trainer._context = Context(rank, rank, world_size, True)
    try:
        if not trainer.use_cpu:
            torch.cuda.set_device(trainer.device)
        dist.init_process_group(
            "gloo" if trainer.use_cpu else "nccl",
            init_method=f"tcp://127.0.0.1:{port}",
            rank=rank,
            world_size=world_size,
            timeout=datetime.timedelta(seconds=trainer.collective_timeout),
        )
        succeeded = False
        try:
            trainer._run_here(method, model, datamodule)
            succeeded = True
        finally:
            leave_group(together=succeeded)
    except BaseException as error:
        try:
            payload: bytes | None = pickle.dumps(error)
        except Exception:
            payload = None
        errors.put((rank, type(error).__qualname__, str(error), traceback.format_exc(), payload))
        _exit_worker(1, trainer, errors)
    _exit_worker(0, trainer, errors)


def _exit_worker(code: int, trainer: Trainer, errors: Any) -> NoReturn:
    """End a spawned worker once what it sent has reached the pipes.

    The interpreter's own teardown is skipped: the work is done and flushed, and freeing
    a process group's gloo threads during teardown can abort the process.
    """
    for queue in (trainer.queue._queue if trainer.queue is not None else None, errors):
        if queue is not None:
            queue.close()
            queue.join_thread()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def spawn(trainer: Trainer, method: str, model: Model, datamodule: DataModule) -> bool:
    """Run ``trainer.<method>(model, datamodule)`` in ``trainer.world_size`` new processes.

    Returns ``True`` when every worker succeeds. If one fails (an exception or a signal),
    the others are ended and the failure is raised here: a registered exception of the
    worker is re-raised as it is; anything else becomes a `WorkerError` naming the rank
    and carrying the worker's traceback.
    """
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    world_size = trainer.world_size
    results = ResultQueue(context)
    trainer.queue = results
    errors = context.Queue()
    port = _free_port()
    processes = [
        context.Process(
            target=_worker,
            args=(rank, world_size, port, trainer, method, model, datamodule, errors),
            name=f"helios-rank-{rank}",
            daemon=False,
        )
        for rank in range(world_size)
    ]
    started = []
    try:
        for process in processes:
            process.start()
            started.append(process)
    except (AttributeError, TypeError, pickle.PicklingError) as error:
        _end_all(started)
        raise TypeError(
            f"cannot start the worker processes: the trainer, model and data module (and "
            f"everything they hold, plug-ins included) must be picklable to run in several "
            f"processes, and their classes importable from a module ({error})"
        ) from error
    failed: tuple[int, int] | None = None
    while failed is None and any(p.exitcode is None for p in processes):
        results.drain()
        for process in processes:
            process.join(timeout=0.05)
            if process.exitcode not in (None, 0):
                failed = _root_cause(processes)
                break
    if failed is None:
        failed = _root_cause(processes)
    if failed is not None:
        _end_all(processes)
    results.drain()
    reports = _drain(errors)
    if failed is None:
        return True
    _raise_failure(trainer, method, failed, reports)
    return False  # pragma: no cover - _raise_failure always raises


def _root_cause(processes: list[Any]) -> tuple[int, int] | None:
    """The rank whose exit explains the failure: one killed by a signal, else the first
    that exited with an error (ranks that fail later usually echo a broken collective)."""
    codes = [(rank, p.exitcode) for rank, p in enumerate(processes) if p.exitcode not in (None, 0)]
    for rank, code in codes:
        if code < 0:
            return rank, code
    return codes[0] if codes else None


def _end_all(processes: list[Any]) -> None:
    deadline = time.monotonic() + _GRACE
    for process in processes:
        if process.exitcode is None:
            process.join(timeout=max(deadline - time.monotonic(), 0.0))
    for process in processes:
        if process.exitcode is None:
            process.terminate()
    for process in processes:
        process.join(timeout=2.0)
        if process.exitcode is None:
            process.kill()
            process.join()


def _drain(errors: Any) -> list[tuple[int, str, str, str, bytes | None]]:
    reports = []
    while True:
        try:
            reports.append(errors.get(timeout=0.2))
        except queue_module.Empty:
            return reports


def _raise_failure(
    trainer: Trainer,
    method: str,
    failed: tuple[int, int],
    reports: list[tuple[int, str, str, str, bytes | None]],
) -> None:
    rank, exitcode = failed
    if exitcode < 0:
        try:
            cause = signal.Signals(-exitcode).name
        except ValueError:
            cause = f"signal {-exitcode}"
        echoes = "".join(
            f"\n\nrank {r} then failed with {name}: {message}"
            for r, name, message, _, _ in reports
        )
        raise WorkerError(f"{method} failed: rank {rank} was killed by {cause}{echoes}", rank)
    # Prefer the failed rank's exception; the others are usually its echo.
    reports.sort(key=lambda report: (report[0] != rank, report[0]))
    passthrough = trainer._passthrough(method)
    for report_rank, name, message, worker_traceback, payload in reports:
        original = None
        if payload is not None:
            try:
                original = pickle.loads(payload)
            except Exception:
                original = None
        if original is not None and passthrough and isinstance(original, passthrough):
            raise original
        error = WorkerError(
            f"{method} failed on rank {report_rank}: {name}: {message}\n\n"
            f"traceback of rank {report_rank}:\n{worker_traceback}",
            report_rank,
        )
        if isinstance(original, BaseException):
            raise error from original
        raise error
    raise WorkerError(
        f"{method} failed: rank {rank} exited with code {exitcode} before it could report an "
        "exception (see its output above). A worker that dies while starting often means the "
        "script that calls fit lacks an `if __name__ == '__main__':` guard, or the model or "
        "data module class cannot be imported by the worker.",
        rank,
    )
