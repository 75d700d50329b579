"""Starting the processes of a run on this machine, and surfacing how they ended.

`spawn` runs a *job* (any picklable callable of the process `Context`) in several new
processes joined in one process group, and raises in the calling process when one of
them fails. It knows nothing of trainers: the trainer hands it a job.

A run that stays on one machine opens nothing to the network: the processes meet
through a `torch.distributed.FileStore` in a private temporary folder (mode 0700,
removed at the end) instead of a TCP store, and gloo's own connections are pinned to
the loopback interface.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
import queue as queue_module
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn, Protocol

import attrs
import torch
import torch.distributed as dist

# torch.distributed re-exports it without marking it public for type checkers.
from torch._C._distributed_c10d import FileStore

from helios.trainer._distributed import Context, ResultQueue, WorkerError, leave_group

__all__ = ["Job", "Launch", "WorkerReport", "loopback_interface", "root_cause", "spawn"]

#: Seconds the parent waits for the other workers to end after one has failed.
_GRACE = 3.0

#: The flag of a loopback interface in ``/sys/class/net/<name>/flags`` (Linux).
_IFF_LOOPBACK = 0x8


class Job(Protocol):
    """The work each spawned process does, given where it stands in the run.

    It must pickle (it is sent to the new processes), and so must everything it holds.
    """

    def __call__(self, context: Context, /) -> object:
        """Run this process's share of the work."""
        ...


@attrs.frozen
class Launch:
    """How `spawn` starts the processes, and how it reports a failure."""

    #: Number of processes.
    world_size: int
    #: ``"gloo"`` or ``"nccl"``.
    backend: str = "gloo"
    #: Seconds a collective (and the rendezvous) may wait.
    timeout: float = 300.0
    #: With NCCL, the GPU of rank ``r`` is ``gpus[r % len(gpus)]``.
    gpus: tuple[int, ...] = ()
    #: What the job is called in error messages (``"fit failed on rank 1 ..."``).
    label: str = "job"
    #: Exceptions of a worker that are re-raised in the parent as they are.
    passthrough: tuple[type[BaseException], ...] = ()


@attrs.frozen
class WorkerReport:
    """How a worker failed, as it tells the parent."""

    rank: int
    #: The exception's class name.
    kind: str
    message: str
    traceback: str
    #: `time.monotonic` when the exception reached the top of the worker, before the
    #: worker left the process group; a clock all processes of a machine share.
    raised_at: float
    #: The pickled exception (``None`` when it does not pickle).
    payload: bytes | None = None

    @classmethod
    def of(cls, rank: int, error: BaseException, raised_at: float) -> WorkerReport:
        """The report of ``error``, raised on ``rank`` at ``raised_at``."""
        try:
            payload: bytes | None = pickle.dumps(error)
        except Exception:
            payload = None
        return cls(
            rank,
            type(error).__qualname__,
            str(error),
            "".join(traceback.format_exception(error)),
            raised_at,
            payload,
        )

    def exception(self) -> BaseException | None:
        """The worker's exception, rebuilt here (``None`` when that is impossible)."""
        if self.payload is None:
            return None
        try:
            error = pickle.loads(self.payload)
        except Exception:
            return None
        return error if isinstance(error, BaseException) else None


def loopback_interface() -> str | None:
    """The name of this machine's loopback network interface (``lo`` on Linux)."""
    names = [name for _, name in socket.if_nameindex()]
    for name in names:
        with contextlib.suppress(OSError, ValueError):
            if int(Path(f"/sys/class/net/{name}/flags").read_text(), 16) & _IFF_LOOPBACK:
                return name
    return next((name for name in ("lo", "lo0") if name in names), None)


def spawn(job: Job, launch: Launch, results: ResultQueue | None = None) -> None:
    """Run ``job`` in ``launch.world_size`` new processes, one process group.

    Returns when every process has succeeded. If one fails (an exception or a signal),
    the others get a grace period to end by themselves and are then ended, and the
    failure is raised here: a ``launch.passthrough`` exception of the worker as it is;
    anything else as a `WorkerError` naming the rank and carrying the worker's traceback.
    When several ranks fail, the error is about the one that failed first (see
    `root_cause`); the others usually echo a broken collective.

    Args:
        job: What each process runs; it must pickle.
        launch: How many processes, which backend, and how to report.
        results: Drained while the workers run (so a large value never blocks a worker's
            exit) and flushed by each worker before it ends; the job may hold it.

    Raises:
        TypeError: if the job cannot be sent to the new processes.
        WorkerError: when a worker fails (unless its exception passes through).
    """
    import torch.multiprocessing as mp

    context = mp.get_context("spawn")
    reports = context.Queue()
    with _private_folder() as folder:
        processes = [
            context.Process(
                target=_worker,
                args=(rank, launch, str(folder / "store"), job, results, reports),
                name=f"helios-rank-{rank}",
                daemon=False,
            )
            for rank in range(launch.world_size)
        ]
        _start(processes, job)
        received: list[WorkerReport] = []
        failed = _wait(processes, results, reports, received)
        ended = _end_all(processes) if failed else set()
    if results is not None:
        results.drain()
    _take(reports, received, wait=0.2)
    if failed:
        _raise_failure(launch, processes, ended, received)


@contextlib.contextmanager
def _private_folder() -> Iterator[Path]:
    """A temporary folder only this user can enter (``mkdtemp`` makes it 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="helios-run-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _start(processes: list[Any], job: Job) -> None:
    started = []
    try:
        for process in processes:
            process.start()
            started.append(process)
    except (AttributeError, TypeError, pickle.PicklingError) as error:
        _end_all(started)
        raise TypeError(
            f"cannot start the worker processes: what they run ({type(job).__name__}: for "
            f"fit and test the trainer, model and data module, and everything they hold, "
            f"plug-ins included) must be picklable, and its classes importable from a "
            f"module ({error})"
        ) from error


def _wait(
    processes: list[Any], results: ResultQueue | None, reports: Any, received: list[WorkerReport]
) -> bool:
    """Wait until every process has ended or one has failed; ``True`` if one failed.

    The pipes are read meanwhile, so that a worker never blocks on a full one.
    """
    while any(process.exitcode is None for process in processes):
        if results is not None:
            results.drain()
        _take(reports, received, wait=0.0)
        for process in processes:
            process.join(timeout=0.05)
            if process.exitcode not in (None, 0):
                return True
    return any(process.exitcode != 0 for process in processes)


def _end_all(processes: list[Any]) -> set[int]:
    """Give the processes a grace period, then end them; the ranks ended here."""
    deadline = time.monotonic() + _GRACE
    for process in processes:
        if process.exitcode is None:
            process.join(timeout=max(deadline - time.monotonic(), 0.0))
    ended = {rank for rank, process in enumerate(processes) if process.exitcode is None}
    for rank in ended:
        processes[rank].terminate()
    for rank in ended:
        processes[rank].join(timeout=2.0)
        if processes[rank].exitcode is None:
            processes[rank].kill()
            processes[rank].join()
    return ended


def _take(reports: Any, received: list[WorkerReport], *, wait: float) -> None:
    """Move the reports that have arrived (waiting up to ``wait`` s for each) to ``received``."""
    while True:
        try:
            received.append(reports.get(timeout=wait) if wait else reports.get_nowait())
        except queue_module.Empty:
            return


def root_cause(exitcodes: Mapping[int, int], reports: Iterable[WorkerReport]) -> int:
    """The rank whose failure explains the others' (they usually echo a broken collective).

    A rank killed by a signal first (lowest rank first), then one that exited with an
    error without reporting why: neither could say when it failed, and its death breaks
    the others' collectives. Otherwise the rank whose exception was raised first, in
    whatever order the reports arrived.

    Args:
        exitcodes: The non-zero exit codes of the ranks that ended by themselves.
        reports: The reports the workers sent.
    """
    reports = list(reports)
    reported = {report.rank for report in reports}
    killed = sorted(rank for rank, code in exitcodes.items() if code < 0)
    silent = sorted(rank for rank in exitcodes if rank not in reported)
    if killed:
        return killed[0]
    if silent or not reports:
        return silent[0] if silent else min(exitcodes, default=0)
    return min(reports, key=lambda report: (report.raised_at, report.rank)).rank


def _raise_failure(
    launch: Launch, processes: list[Any], ended: set[int], reports: list[WorkerReport]
) -> NoReturn:
    codes: dict[int, int] = {
        rank: process.exitcode
        for rank, process in enumerate(processes)
        if rank not in ended and process.exitcode not in (None, 0)
    }
    rank = root_cause(codes, reports)
    reports = sorted(reports, key=lambda report: report.raised_at)
    own = next((report for report in reports if report.rank == rank), None)
    echoes = "".join(
        f"\n\nrank {report.rank} then failed with {report.kind}: {report.message}"
        for report in reports
        if report is not own
    )
    code = codes.get(rank)
    if own is None and code is not None and code < 0:
        try:
            cause = signal.Signals(-code).name
        except ValueError:
            cause = f"signal {-code}"
        raise WorkerError(
            f"{launch.label} failed: rank {rank} was killed by {cause}{echoes}", rank
        )
    if own is None:
        raise WorkerError(
            f"{launch.label} failed: rank {rank} exited with code {code} before it could "
            "report an exception (see its output above). A worker that dies while starting "
            "often means the script that calls fit lacks an `if __name__ == '__main__':` "
            f"guard, or the model or data module class cannot be imported by the "
            f"worker.{echoes}",
            rank,
        )
    original = own.exception()
    if launch.passthrough and isinstance(original, launch.passthrough):
        raise original
    raise WorkerError(
        f"{launch.label} failed on rank {rank}: {own.kind}: {own.message}\n\n"
        f"traceback of rank {rank}:\n{own.traceback}{echoes}",
        rank,
    ) from original


# -- in the worker ----------------------------------------------------------------------


def _worker(
    rank: int,
    launch: Launch,
    store_path: str,
    job: Job,
    results: ResultQueue | None,
    reports: Any,
) -> None:
    interface = loopback_interface()
    if interface is not None:
        # Every process of this run is on this machine: gloo listens on loopback only.
        os.environ["GLOO_SOCKET_IFNAME"] = interface
        os.environ.setdefault("NCCL_SOCKET_IFNAME", interface)
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(launch.world_size))
    failure: WorkerReport | None = None
    try:
        _join_group(rank, launch, store_path)
        job(Context(rank, rank, launch.world_size, True))
    except BaseException as error:
        # Stamped before this rank leaves the group: the others can only notice the
        # failure (and echo it) after that, so their stamps are later.
        failure = WorkerReport.of(rank, error, time.monotonic())
    try:
        leave_group(together=failure is None)
    except BaseException as error:
        failure = failure or WorkerReport.of(rank, error, time.monotonic())
    if failure is not None:
        reports.put(failure)
    _exit_worker(0 if failure is None else 1, results, reports)


def _join_group(rank: int, launch: Launch, store_path: str) -> None:
    timeout = datetime.timedelta(seconds=launch.timeout)
    store = FileStore(store_path, launch.world_size)
    store.set_timeout(timeout)
    if launch.backend == "nccl":
        torch.cuda.set_device(launch.gpus[rank % len(launch.gpus)])
    dist.init_process_group(
        launch.backend,
        store=store,
        rank=rank,
        world_size=launch.world_size,
        timeout=timeout,
    )


def _exit_worker(code: int, results: ResultQueue | None, reports: Any) -> NoReturn:
    """End a spawned worker once what it sent has reached the pipes.

    The interpreter's own teardown is skipped: the work is done and flushed, and freeing
    a process group's gloo threads during teardown can abort the process.
    """
    if results is not None:
        results.close()
    reports.close()
    reports.join_thread()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
