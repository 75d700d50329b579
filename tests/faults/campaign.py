"""The campaign's crash scenarios: real processes, real SIGKILLs, full disks.

Each scenario does real damage to a real training run, inspects what is left on disk,
resumes, and compares the result with a run that was never interrupted. A case comes back
as a `CaseResult`; `Tally` adds cases up into an `Outcome` (tried, survived, data lost,
hangs, seconds). The tests of ``tests/faults`` assert on the cases, and
``benchmarks/faults.py`` runs the same functions and prints the outcomes as a table.

Single-process runs happen in children forked from the caller, which has imported torch
already, with one torch thread: a run costs a fork, not a new interpreter. The faults
inside a child (dying halfway through a checkpoint write, a disk that fills up) are made
there by replacing what ``helios/trainer/_checkpoint.py`` calls (``torch.save``,
``os.replace``, ``os.fsync``, ``os.fdopen``, ``tempfile.mkstemp``) or by mounting a small
tmpfs in a private mount namespace; helios itself has no hooks for any of this.

This module imports neither pytest nor hypothesis: the 2-rank scenario's worker
processes import it (for `PacedReporter`) when they start.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import multiprocessing
import os
import queue
import random
import re
import shutil
import signal
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, NoReturn

import attrs
import torch

import helios.trainer as hlt
from helios.core import TrainingState
from tests.trainer.helpers import ClassifierData, ClassifierModel, ReportingClassifier, weights

__all__ = [
    "DISK_FULL_KINDS",
    "REPORT_BOUND",
    "SEED",
    "CaseResult",
    "DiskFullSetup",
    "KillPoint",
    "Outcome",
    "Reference",
    "Tally",
    "child_processes",
    "disk_full",
    "disk_full_case",
    "distributed_case",
    "distributed_kill",
    "inspect_checkpoints",
    "kill_points",
    "prepare_disk_full",
    "prepare_distributed",
    "prepare_sweep",
    "sigkill_sweep",
    "sweep_case",
]

#: Seed of the kill points, ranks and delays; set HELIOS_FAULT_SEED to try others.
SEED = int(os.environ.get("HELIOS_FAULT_SEED", "20240607"))
#: A forked child that runs longer than this has hung (it is killed and counted).
CHILD_TIMEOUT = 120.0
#: Collective timeout of the 2-rank runs (``Trainer(collective_timeout=...)``).
COLLECTIVE_TIMEOUT = 60.0
#: The parent must report a killed rank within this many seconds of the kill: well
#: within the collective timeout (helios ends the other ranks after a short grace).
REPORT_BOUND = 10.0
#: After this many seconds without `fit` returning, a killed 2-rank run has hung.
HANG_LIMIT = 30.0

FORK = multiprocessing.get_context("fork")
Weights = dict[str, torch.Tensor]


# -- results ---------------------------------------------------------------------------


@attrs.frozen
class CaseResult:
    """One case: what went wrong (nothing, ideally), whether data was lost or it hung."""

    name: str
    problems: tuple[str, ...] = ()
    lost: bool = False
    hung: bool = False
    #: Why the case could not run here (it then counts as not tried).
    skipped: str | None = None
    note: str = ""

    @property
    def survived(self) -> bool:
        return self.skipped is None and not self.problems


@attrs.frozen
class Outcome:
    """A scenario's figures: the row of the campaign table."""

    scenario: str
    tried: int
    survived: int
    data_lost: int
    hangs: int
    seconds: float
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


@attrs.define
class Tally:
    """Adds `CaseResult` values up into an `Outcome`."""

    scenario: str
    started: float = attrs.field(factory=time.perf_counter)
    cases: list[CaseResult] = attrs.field(factory=list)

    def add(self, case: CaseResult) -> CaseResult:
        self.cases.append(case)
        return case

    def outcome(self) -> Outcome:
        tried = [case for case in self.cases if case.skipped is None]
        return Outcome(
            scenario=self.scenario,
            tried=len(tried),
            survived=sum(case.survived for case in tried),
            data_lost=sum(case.lost for case in tried),
            hangs=sum(case.hung for case in tried),
            seconds=time.perf_counter() - self.started,
            problems=tuple(f"{case.name}: {p}" for case in tried for p in case.problems),
            notes=tuple(
                f"{case.name}: {case.skipped or case.note}"
                for case in self.cases
                if case.skipped or case.note
            ),
        )


# -- processes -------------------------------------------------------------------------


def _child_main(target: Callable[..., None], args: tuple[Any, ...]) -> None:
    # Forked from a process whose thread pools may be running: one thread, as torch's
    # own forked DataLoader workers do.
    torch.set_num_threads(1)
    target(*args)


def start_forked(target: Callable[..., None], *args: Any) -> BaseProcess:
    """Start ``target(*args)`` in a child forked from this process."""
    process = FORK.Process(target=_child_main, args=(target, args), daemon=True)
    process.start()
    return process


def finish(process: BaseProcess, timeout: float = CHILD_TIMEOUT) -> int | None:
    """Wait for ``process``; its exit code, or ``None`` if it hung (it is then killed)."""
    process.join(timeout)
    if process.exitcode is None:
        process.kill()
        process.join()
        return None
    return process.exitcode


def warm_up() -> None:
    """Import here, once, what every forked child would otherwise import on its own.

    ``torch.use_deterministic_algorithms`` (``enable_deterministic=True``) imports torch's
    compiler stack the first time it is called: over a second per child. Setting the
    flag to its current value does the import and changes nothing.
    """
    torch.use_deterministic_algorithms(
        torch.are_deterministic_algorithms_enabled(),
        warn_only=torch.is_deterministic_algorithms_warn_only_enabled(),
    )


def run_forked(target: Callable[..., None], *args: Any) -> int | None:
    """`start_forked` then `finish`."""
    return finish(start_forked(target, *args))


def sigkill_self() -> NoReturn:
    """Die at once, as a machine losing power or the OOM killer would end the process."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)
    raise AssertionError("SIGKILL did not end the process")


def _replace(owner: object, name: str, value: object) -> Callable[[], None]:
    """Set ``owner.name`` to ``value`` (test-side patching); return the undo."""
    old = getattr(owner, name)
    setattr(owner, name, value)

    def undo() -> None:
        setattr(owner, name, old)

    return undo


def child_processes() -> dict[int, str]:
    """Children of this process (zombies included): pid -> state and command line."""
    me = os.getpid()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = status[status.rindex(")") + 2 :].split()
        if int(fields[1]) == me:
            found[int(entry.name)] = f"[{fields[0]}] " + command.replace(b"\0", b" ").decode(
                errors="replace"
            )
    return found


# -- checkpoints -----------------------------------------------------------------------

_COUNTERS = (
    "current_iteration",
    "global_iteration",
    "global_epoch",
    "validation_cycles",
    "dataset_iter",
    "early_stop_count",
)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return (
            isinstance(b, torch.Tensor)
            and a.dtype == b.dtype
            and a.shape == b.shape
            and torch.equal(a, b)
        )
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping)
            and list(a) == list(b)
            and all(_same(a[key], b[key]) for key in a)
        )
    if isinstance(a, list | tuple):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(_same(x, y) for x, y in zip(a, b, strict=True))
        )
    return bool(a == b)


def same_checkpoint(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Whether two loaded checkpoints hold the same run at the same point (timings aside)."""
    state_a: TrainingState = a["training_state"]
    state_b: TrainingState = b["training_state"]
    return all(getattr(state_a, name) == getattr(state_b, name) for name in _COUNTERS) and all(
        _same(a[key], b[key]) for key in ("version", "model", "plugins", "rng", "data")
    )


def same_weights(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    return list(a) == list(b) and all(torch.equal(a[key], b[key]) for key in a)


def leftovers(folder: Path) -> list[str]:
    """Temporary files of checkpoint writes in ``folder``."""
    return sorted(path.name for path in folder.glob(".epoch_*.tmp")) if folder.is_dir() else []


def inspect_checkpoints(
    folder: Path, reference: Mapping[int, Mapping[str, Any]]
) -> tuple[list[int], list[str]]:
    """Load every checkpoint under a final name and compare it with the uninterrupted
    run's checkpoint of the same iteration.

    Returns:
        The iterations found, and what is damaged (unreadable or different files).
    """
    found: list[int] = []
    damaged: list[str] = []
    for path in hlt.find_checkpoints(folder):
        try:
            content = hlt.load_checkpoint(path)
        except hlt.CheckpointError as error:
            damaged.append(f"{path.name} sits under a final name but cannot be loaded: {error}")
            continue
        iteration = content["training_state"].global_iteration
        found.append(iteration)
        expected = reference.get(iteration)
        if expected is None or not same_checkpoint(content, expected):
            damaged.append(f"{path.name} differs from the uninterrupted run's checkpoint")
    return found, damaged


@attrs.frozen
class Reference:
    """An uninterrupted run: its final weights and its checkpoints by iteration."""

    weights: Weights
    checkpoints: Mapping[int, Mapping[str, Any]]

    @property
    def iterations(self) -> list[int]:
        return sorted(self.checkpoints)

    @classmethod
    def read(cls, weights_file: Path, folder: Path) -> Reference:
        loaded: Weights = torch.load(weights_file, weights_only=True)
        checkpoints = {}
        for path in hlt.find_checkpoints(folder):
            content = hlt.load_checkpoint(path)
            checkpoints[content["training_state"].global_iteration] = content
        return cls(loaded, checkpoints)


# -- 1. SIGKILL sweep, one process -----------------------------------------------------

SWEEP_NAME = "swept"
SWEEP_STEPS = 25
SWEEP_EVERY = 3
SWEEP_VALID_EVERY = 4
_WRITE_KINDS = ("mid-write", "before-rename", "after-rename")


def sweep_trainer(root: Path, steps: int = SWEEP_STEPS) -> hlt.Trainer:
    """Deterministic CPU training with checkpoints every 3 iterations (mid-epoch)."""
    return hlt.Trainer(
        train_unit="iteration",
        total_steps=steps,
        chkpt_frequency=SWEEP_EVERY,
        valid_frequency=SWEEP_VALID_EVERY,
        chkpt_root=root,
        use_cpu=True,
        random_seed=5,
        enable_deterministic=True,
    )


def sweep_data() -> ClassifierData:
    """80 samples in shuffled batches of 8 from `DataModule.create_dataloader`."""
    return ClassifierData(size=80, batch_size=8)


class KillableModel(ClassifierModel):
    """The helper classifier (dropout included) that SIGKILLs its own process at a
    training step or halfway through a validation pass; ``pace`` slows it down."""

    def __init__(
        self,
        save_name: str,
        *,
        kill_at_iteration: int | None = None,
        kill_in_cycle: int | None = None,
        pace: float = 0.0,
    ) -> None:
        super().__init__(save_name)
        self.kill_at_iteration = kill_at_iteration
        self.kill_in_cycle = kill_in_cycle
        self.pace = pace
        self.cycle = 0

    def train_step(self, batch: Any, state: TrainingState) -> None:
        if state.global_iteration == self.kill_at_iteration:
            sigkill_self()
        super().train_step(batch, state)
        if self.pace:
            time.sleep(self.pace)

    def on_validation_start(self, validation_cycle: int) -> None:
        super().on_validation_start(validation_cycle)
        self.cycle = validation_cycle

    def valid_step(self, batch: Any, step: int) -> None:
        if self.cycle == self.kill_in_cycle and step == 1:
            sigkill_self()
        super().valid_step(batch, step)


@attrs.frozen
class KillPoint:
    """Where a run dies.

    ``kind`` and ``at``: ``train-step`` (before training step ``at``), ``validation``
    (halfway through validation pass ``at``), ``mid-write`` (checkpoint write ``at`` has
    put half its bytes in the temporary file), ``before-rename`` (write ``at`` is
    complete and flushed, not yet renamed), ``after-rename`` (write ``at`` is renamed, the
    folder not yet flushed), ``external`` (the parent sends SIGKILL ``at`` ms after the
    first checkpoint appears, to a run slowed down to 30 ms a step).
    """

    kind: str
    at: int

    def __str__(self) -> str:
        return {
            "train-step": f"before training step {self.at}",
            "validation": f"inside validation pass {self.at}",
            "mid-write": f"checkpoint write {self.at}: half the bytes written",
            "before-rename": f"checkpoint write {self.at}: written, not renamed",
            "after-rename": f"checkpoint write {self.at}: renamed, folder not synced",
            "external": f"from outside, {self.at} ms after the first checkpoint",
        }[self.kind]

    def completed_writes(self) -> int | None:
        """How many checkpoint writes end before the kill (``None``: not known)."""
        if self.kind == "train-step":
            return (self.at - 1) // SWEEP_EVERY
        if self.kind == "validation":
            # A validation pass comes before the checkpoint of the same iteration.
            return (SWEEP_VALID_EVERY * self.at - 1) // SWEEP_EVERY
        if self.kind in ("mid-write", "before-rename"):
            return self.at - 1
        if self.kind == "after-rename":
            return self.at
        return None


def kill_points(seed: int = SEED, count: int = 12) -> list[KillPoint]:
    """A seeded sweep: each kind of checkpoint-write kill, a validation kill, a kill from
    outside, and training steps drawn at random for the rest."""
    writes = SWEEP_STEPS // SWEEP_EVERY
    if not 5 < count <= 5 + SWEEP_STEPS:
        raise ValueError(f"count must be in 6..{5 + SWEEP_STEPS}, got {count}")
    rng = random.Random(seed)
    points = [KillPoint(kind, rng.randint(1, writes)) for kind in _WRITE_KINDS]
    points.append(KillPoint("validation", rng.randint(1, SWEEP_STEPS // SWEEP_VALID_EVERY)))
    points.append(KillPoint("external", rng.randint(0, 250)))
    steps = rng.sample(range(1, SWEEP_STEPS + 1), count - len(points))
    points.extend(KillPoint("train-step", step) for step in sorted(steps))
    return points


def _arm_write_kill(point: KillPoint) -> None:
    """In the child: SIGKILL this process at ``point``'s checkpoint write."""
    calls = 0
    if point.kind == "mid-write":
        real_save = torch.save

        def save(obj: object, f: Any, *args: Any, **kwargs: Any) -> None:
            nonlocal calls
            calls += 1
            if calls != point.at:
                real_save(obj, f, *args, **kwargs)
                return
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            sigkill_self()

        _replace(torch, "save", save)
        return

    real_rename = os.replace

    def replace(src: Any, dst: Any, **kwargs: Any) -> None:
        nonlocal calls
        if not str(dst).endswith(".pth"):
            real_rename(src, dst, **kwargs)
            return
        calls += 1
        if calls == point.at and point.kind == "before-rename":
            sigkill_self()
        real_rename(src, dst, **kwargs)
        if calls == point.at:
            sigkill_self()

    _replace(os, "replace", replace)


def _train(root: str, out: str, point: KillPoint | None) -> None:
    """Child: train (to die at ``point``), then save the final weights to ``out``."""
    if point is not None and point.kind in _WRITE_KINDS:
        _arm_write_kill(point)
    model = KillableModel(
        SWEEP_NAME,
        kill_at_iteration=point.at if point and point.kind == "train-step" else None,
        kill_in_cycle=point.at if point and point.kind == "validation" else None,
        pace=0.03 if point and point.kind == "external" else 0.0,
    )
    sweep_trainer(Path(root)).fit(model, sweep_data())
    torch.save(weights(model), out)


def prepare_sweep(workdir: Path) -> Reference:
    """The uninterrupted run the sweep's cases are compared with."""
    warm_up()
    root = workdir / "reference"
    out = workdir / "reference.pt"
    code = run_forked(_train, str(root), str(out), None)
    if code != 0:
        raise RuntimeError(f"the uninterrupted run failed (exit code {code})")
    return Reference.read(out, root / SWEEP_NAME)


def _kill_after_first_checkpoint(process: BaseProcess, folder: Path, delay: float) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT
    while (
        not hlt.find_checkpoints(folder)
        and process.exitcode is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.002)
    time.sleep(delay)
    if process.exitcode is None and process.pid is not None:
        os.kill(process.pid, signal.SIGKILL)


def sweep_case(reference: Reference, point: KillPoint, case_dir: Path) -> CaseResult:
    """Kill a training process at ``point``, inspect the checkpoints, resume, compare."""
    root = case_dir / "run"
    folder = root / SWEEP_NAME
    process = start_forked(_train, str(root), str(case_dir / "never.pt"), point)
    if point.kind == "external":
        _kill_after_first_checkpoint(process, folder, point.at / 1000)
    code = finish(process)
    if code is None:
        return CaseResult(str(point), ("the run to be killed hung",), hung=True)
    problems: list[str] = []
    note = ""
    if code != -signal.SIGKILL:
        if point.kind == "external" and code == 0:
            note = "the run ended before the kill landed"
        else:
            problems.append(f"the run to be killed exited with code {code}, not by SIGKILL")

    found, damaged = inspect_checkpoints(folder, reference.checkpoints)
    if found:
        newest = hlt.find_checkpoints(folder)[-1]
        try:
            hlt.load_checkpoint(newest)
        except hlt.CheckpointError as error:
            damaged.append(f"the newest checkpoint {newest.name} cannot be loaded: {error}")
    completed = point.completed_writes()
    if completed is not None:
        expected = reference.iterations[:completed]
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        if missing:
            damaged.append(f"checkpoints written before the kill are missing: {missing}")
        if extra:
            problems.append(f"checkpoints exist that the kill came before: {extra}")
    if point.kind in ("mid-write", "before-rename") and not leftovers(folder):
        problems.append("no temporary file: the kill missed the checkpoint write")

    out = case_dir / "resumed.pt"
    code = run_forked(_train, str(root), str(out), None)
    if code is None:
        return CaseResult(
            str(point), (*problems, *damaged, "the resumed run hung"), bool(damaged), True
        )
    if code != 0:
        problems.append(f"the resumed run failed (exit code {code})")
    elif not same_weights(torch.load(out, weights_only=True), reference.weights):
        damaged.append("the resumed run ends with other weights than the uninterrupted one")
    found, later = inspect_checkpoints(folder, reference.checkpoints)
    damaged.extend(later)
    if found != reference.iterations:
        damaged.append(f"after resuming the checkpoints are {found}, not {reference.iterations}")
    if leftovers(folder):
        problems.append(f"temporary files remain after resuming: {leftovers(folder)}")
    return CaseResult(str(point), (*problems, *damaged), lost=bool(damaged), note=note)


def sigkill_sweep(workdir: Path, seed: int = SEED, count: int = 12) -> Outcome:
    """Every case of `kill_points` against one uninterrupted run."""
    tally = Tally("SIGKILL sweep, 1 process")
    reference = prepare_sweep(workdir)
    for index, point in enumerate(kill_points(seed, count)):
        tally.add(sweep_case(reference, point, workdir / f"kill-{index:02d}"))
    return tally.outcome()


# -- 2. SIGKILL one rank of two --------------------------------------------------------

DIST_NAME = "ranked"
DIST_STEPS = 12


def two_rank_trainer(root: Path) -> hlt.Trainer:
    """2 gloo processes on the CPU; checkpoints every 3 iterations (8 a rank an epoch)."""
    return hlt.Trainer(
        train_unit="iteration",
        total_steps=DIST_STEPS,
        chkpt_frequency=3,
        chkpt_root=root,
        use_cpu=True,
        cpu_processes=2,
        random_seed=2,
        collective_timeout=COLLECTIVE_TIMEOUT,
    )


def two_rank_data() -> ClassifierData:
    """64 samples, shuffled, sharded per rank by the loader of `create_dataloader`."""
    return ClassifierData(size=64, batch_size=4)


class PacedReporter(ReportingClassifier):
    """Sends its weights to the parent at the end (rank 0), writes its pid to
    ``<pid_dir>/rank<r>.pid`` in `setup`, and sleeps ``pace`` seconds after each step."""

    def __init__(self, save_name: str, *, pid_dir: str = "", pace: float = 0.0) -> None:
        super().__init__(save_name, dropout=0.2)
        self.pid_dir = pid_dir
        self.pace = pace

    def setup(self, fast_init: bool = False) -> None:
        super().setup(fast_init)
        if self.pid_dir:
            path = Path(self.pid_dir) / f"rank{self.rank}.pid"
            path.with_suffix(".tmp").write_text(str(os.getpid()))
            os.replace(path.with_suffix(".tmp"), path)

    def train_step(self, batch: Any, state: TrainingState) -> None:
        super().train_step(batch, state)
        if self.pace:
            time.sleep(self.pace)


def _worker_pids() -> list[int]:
    return [pid for pid, line in child_processes().items() if "spawn_main" in line]


def _end_workers() -> None:
    for pid in _worker_pids():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class _Watchdog:
    """Kills the worker processes of a `fit` that outlives ``limit`` seconds (a hang)."""

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        if not self._done.wait(self.limit):
            self.fired = True
            _end_workers()

    def __enter__(self) -> _Watchdog:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()


def _two_rank_fit(root: Path, model: PacedReporter) -> tuple[Weights | None, str | None, bool]:
    """Fit on two ranks; the final weights (or why there are none) and whether it hung."""
    trainer = two_rank_trainer(root)
    with _Watchdog(CHILD_TIMEOUT) as watchdog:
        try:
            trainer.fit(model, two_rank_data())
        except Exception as error:
            return None, f"{type(error).__name__}: {error}", watchdog.fired
    assert trainer.queue is not None
    try:
        result = trainer.queue.get(timeout=30)
    except queue.Empty:
        return None, "rank 0 sent no weights", watchdog.fired
    found: Weights = result["weights"]
    return found, None, watchdog.fired


def prepare_distributed(workdir: Path) -> Reference:
    """The uninterrupted 2-rank run the killed ones are compared with."""
    root = workdir / "reference"
    found, error, _ = _two_rank_fit(root, PacedReporter(DIST_NAME))
    if found is None:
        raise RuntimeError(f"the uninterrupted 2-rank run failed: {error}")
    out = workdir / "reference.pt"
    torch.save(found, out)
    return Reference.read(out, root / DIST_NAME)


class _Killer(threading.Thread):
    """Sends SIGKILL to one rank's process, from outside, ``delay`` seconds after the
    run's first checkpoint appears; then waits for `fit` to return, and ends every
    worker (a hang) if it has not after `HANG_LIMIT` seconds."""

    def __init__(self, pid_dir: Path, folder: Path, rank: int, delay: float) -> None:
        super().__init__(daemon=True)
        self.pid_file = pid_dir / f"rank{rank}.pid"
        self.pid_dir = pid_dir
        self.folder = folder
        self.delay = delay
        self.returned = threading.Event()
        self.killed_at: float | None = None
        self.pids: list[int] = []
        self.hung = False

    def run(self) -> None:
        deadline = time.monotonic() + CHILD_TIMEOUT
        while not (
            len(list(self.pid_dir.glob("rank*.pid"))) == 2 and hlt.find_checkpoints(self.folder)
        ):
            if self.returned.is_set():
                return
            if time.monotonic() > deadline:
                self.hung = True
                _end_workers()
                return
            time.sleep(0.005)
        self.pids = [int(path.read_text()) for path in sorted(self.pid_dir.glob("rank*.pid"))]
        time.sleep(self.delay)
        self.killed_at = time.monotonic()
        os.kill(int(self.pid_file.read_text()), signal.SIGKILL)
        if not self.returned.wait(HANG_LIMIT):
            self.hung = True
            _end_workers()


def distributed_case(reference: Reference, rank: int, delay: float, case_dir: Path) -> CaseResult:
    """SIGKILL ``rank`` of a 2-rank run from outside; check the parent's report, the
    processes and the checkpoints; resume on two ranks; compare with ``reference``."""
    name = f"rank {rank} killed {delay * 1000:.0f} ms after the first checkpoint"
    root = case_dir / "run"
    folder = root / DIST_NAME
    pid_dir = case_dir / "pids"
    pid_dir.mkdir(parents=True)
    before = set(child_processes())
    killer = _Killer(pid_dir, folder, rank, delay)
    killer.start()
    error: BaseException | None = None
    try:
        two_rank_trainer(root).fit(
            PacedReporter(DIST_NAME, pid_dir=str(pid_dir), pace=0.1), two_rank_data()
        )
    except Exception as caught:
        error = caught
    returned = time.monotonic()
    killer.returned.set()
    killer.join()
    if killer.hung:
        return CaseResult(name, ("fit did not return after the kill",), hung=True)

    problems: list[str] = []
    note = ""
    if killer.killed_at is None:
        problems.append("the run ended before the kill")
    else:
        took = returned - killer.killed_at
        note = f"fit raised {took:.1f} s after the kill"
        if took > REPORT_BOUND:
            problems.append(f"fit reported the kill only after {took:.1f} s")
    pattern = rf"rank {rank} was killed by SIGKILL"
    if not isinstance(error, hlt.WorkerError) or not re.search(pattern, str(error)):
        problems.append(f"fit raised {error!r}, not a WorkerError matching {pattern!r}")
    elif error.rank != rank:
        problems.append(f"WorkerError.rank is {error.rank}, not {rank}")
    left = {
        pid: line
        for pid, line in child_processes().items()
        if pid not in before and "resource_tracker" not in line
    }
    left.update({pid: "a worker" for pid in killer.pids if Path(f"/proc/{pid}").exists()})
    active = [p.name for p in multiprocessing.active_children() if p.name.startswith("helios")]
    if left or active:
        problems.append(f"processes left behind: {sorted(left.items())} {active}")

    found, damaged = inspect_checkpoints(folder, reference.checkpoints)
    resumed, failure, hung = _two_rank_fit(root, PacedReporter(DIST_NAME))
    if hung:
        return CaseResult(name, (*problems, *damaged, "the resumed run hung"), bool(damaged), True)
    if resumed is None:
        problems.append(f"the resumed run failed: {failure}")
    elif not same_weights(resumed, reference.weights):
        damaged.append("the resumed run ends with other weights than the uninterrupted one")
    found, later = inspect_checkpoints(folder, reference.checkpoints)
    damaged.extend(later)
    if found != reference.iterations:
        damaged.append(f"after resuming the checkpoints are {found}, not {reference.iterations}")
    if leftovers(folder):
        problems.append(f"temporary files remain after resuming: {leftovers(folder)}")
    return CaseResult(name, (*problems, *damaged), lost=bool(damaged), note=note)


def distributed_kill(workdir: Path, seed: int = SEED, rounds: int = 2) -> Outcome:
    """Kill rank 0, then rank 1, ... (``rounds`` cases), each at a seeded random time."""
    tally = Tally("SIGKILL 1 of 2 gloo ranks")
    rng = random.Random(seed)
    reference = prepare_distributed(workdir)
    for index in range(rounds):
        case = distributed_case(reference, index % 2, rng.uniform(0, 0.5), workdir / f"k{index}")
        tally.add(case)
    return tally.outcome()


# -- 3. a disk that fills up during a checkpoint write ---------------------------------

FULL_NAME = "filled"
FULL_STEPS = 12
#: The first write after resuming from iteration 6 is the one that fails.
FULL_FAILS_AT = 9
DISK_FULL_KINDS = ("torch.save", "write", "fsync", "mkstemp", "tmpfs")
#: What the CheckpointError of a full disk must say.
FULL_MESSAGE = (
    rf"could not write checkpoint \S*epoch_0_iter_{FULL_FAILS_AT}\.pth: .*No space left on "
    r"device.*earlier checkpoints are intact; free disk space"
)


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FillingFile(io.FileIO):
    """A file on a disk with ``room`` bytes left: writes beyond it fail with ENOSPC."""

    def __init__(self, fd: int, room: int) -> None:
        super().__init__(fd, "wb", closefd=True)
        self.room = room

    def write(self, data: Any, /) -> int:
        if self.room <= 0:
            raise _enospc()
        view = memoryview(data).cast("B")[: self.room]
        written = super().write(view)
        self.room -= written
        return written


def _inject_full_disk(kind: str) -> Callable[[], None]:
    """In the child: make checkpoint writes fail with ENOSPC; return the undo."""
    if kind == "torch.save":
        real_save = torch.save

        def save(obj: object, f: Any, *args: Any, **kwargs: Any) -> None:
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            raise _enospc()

        return _replace(torch, "save", save)
    if kind == "write":
        real_fdopen = os.fdopen

        def fdopen(fd: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
            if mode != "wb":
                return real_fdopen(fd, mode, *args, **kwargs)
            return io.BufferedWriter(_FillingFile(fd, room=8192))

        return _replace(os, "fdopen", fdopen)
    if kind == "fsync":
        real_fsync = os.fsync

        def fsync(fd: Any) -> None:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                raise _enospc()
            real_fsync(fd)

        return _replace(os, "fsync", fsync)
    if kind == "mkstemp":

        def mkstemp(*args: Any, **kwargs: Any) -> NoReturn:
            raise _enospc()

        return _replace(tempfile, "mkstemp", mkstemp)
    raise ValueError(f"unknown kind {kind!r}")


_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_MS_REMOUNT = 32
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18


def _mount_private_tmpfs(target: Path, size: int) -> Callable[[], None] | str:
    """In a (single-threaded) child: mount a ``size``-byte tmpfs on ``target`` in a mount
    namespace of its own (and a user namespace when not root). Returns the function that
    grows it to 64 MiB ("frees space"), or why it could not be mounted."""
    libc = ctypes.CDLL(None, use_errno=True)

    def failed(what: str) -> str:
        return f"{what}: {os.strerror(ctypes.get_errno())}"

    try:
        if os.geteuid() != 0:
            uid, gid = os.getuid(), os.getgid()
            if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNS) != 0:
                return failed("unshare(CLONE_NEWUSER | CLONE_NEWNS)")
            Path("/proc/self/setgroups").write_text("deny")
            Path("/proc/self/uid_map").write_text(f"0 {uid} 1")
            Path("/proc/self/gid_map").write_text(f"0 {gid} 1")
        elif libc.unshare(_CLONE_NEWNS) != 0:
            return failed("unshare(CLONE_NEWNS)")
    except OSError as error:
        return f"cannot enter a user namespace: {error}"
    if libc.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return failed("mount --make-rprivate /")
    where = os.fsencode(target)
    if libc.mount(b"tmpfs", where, b"tmpfs", 0, f"size={size}".encode()) != 0:
        return failed("mount -t tmpfs")

    def grow() -> None:
        if libc.mount(b"tmpfs", where, b"tmpfs", _MS_REMOUNT, b"size=64m") != 0:
            raise OSError(ctypes.get_errno(), "remounting the tmpfs failed")

    return grow


def _pages(size: int) -> int:
    return -(-size // 4096) * 4096


def _fill_disk(kind: str, template: str, place: str, out: str, report: str) -> None:
    """Child: resume the template's run on a disk that fills at the next checkpoint
    write; check what is on disk; free the space; resume; write a JSON report."""
    result: dict[str, Any] = {}
    root = Path(place)
    root.mkdir(parents=True)
    free_space: Callable[[], None]
    if kind == "tmpfs":
        files = sorted((Path(template) / FULL_NAME).iterdir())
        # Room for the checkpoints there are and half of the next one.
        size = sum(_pages(f.stat().st_size) for f in files) + files[-1].stat().st_size // 2
        mounted = _mount_private_tmpfs(root, size)
        if isinstance(mounted, str):
            Path(report).write_text(json.dumps({"unavailable": mounted}))
            return
        free_space = mounted
    shutil.copytree(template, root, dirs_exist_ok=True)
    folder = root / FULL_NAME
    before = {path.name: path.read_bytes() for path in folder.iterdir()}
    if kind != "tmpfs":
        free_space = _inject_full_disk(kind)
    try:
        sweep_trainer(root, FULL_STEPS).fit(ClassifierModel(FULL_NAME), sweep_data())
        result["error"] = None
    except Exception as error:
        result["error"] = f"{type(error).__module__}.{type(error).__qualname__}"
        result["message"] = str(error)
    after = {path.name: path.read_bytes() for path in folder.iterdir()}
    result["changed"] = sorted(name for name in before if after.get(name) != before[name])
    result["new"] = sorted(set(after) - set(before))
    free_space()
    model = ClassifierModel(FULL_NAME)
    try:
        sweep_trainer(root, FULL_STEPS).fit(model, sweep_data())
        torch.save(weights(model), out)
    except Exception as error:
        result["resume_error"] = f"{type(error).__name__}: {error}"
    result["checkpoints"] = [path.name for path in hlt.find_checkpoints(folder)]
    result["leftovers"] = leftovers(folder)
    Path(report).write_text(json.dumps(result))


@attrs.frozen
class DiskFullSetup:
    """Checkpoints at iterations 3 and 6 to resume from, and the uninterrupted run."""

    template: Path
    weights: Weights
    checkpoints: list[str]


def _train_plain(root: str, steps: int, out: str) -> None:
    model = ClassifierModel(FULL_NAME)
    sweep_trainer(Path(root), steps).fit(model, sweep_data())
    torch.save(weights(model), out)


def prepare_disk_full(workdir: Path) -> DiskFullSetup:
    """Make the template checkpoints and run the uninterrupted run."""
    warm_up()
    template = workdir / "template"
    if run_forked(_train_plain, str(template), 6, str(workdir / "six.pt")) != 0:
        raise RuntimeError("the run that makes the template checkpoints failed")
    reference = workdir / "reference"
    out = workdir / "reference.pt"
    if run_forked(_train_plain, str(reference), FULL_STEPS, str(out)) != 0:
        raise RuntimeError("the uninterrupted run failed")
    return DiskFullSetup(
        template,
        torch.load(out, weights_only=True),
        [path.name for path in hlt.find_checkpoints(reference / FULL_NAME)],
    )


def disk_full_case(setup: DiskFullSetup, kind: str, case_dir: Path) -> CaseResult:
    """Fill the disk at a checkpoint write (``kind``: see `DISK_FULL_KINDS`)."""
    name = {
        "torch.save": "torch.save writes half, then ENOSPC",
        "write": "a write inside torch.save hits ENOSPC",
        "fsync": "fsync reports ENOSPC (delayed allocation)",
        "mkstemp": "no room for the temporary file",
        "tmpfs": "a real tmpfs fills up",
    }[kind]
    case_dir.mkdir(parents=True)
    report = case_dir / "report.json"
    out = case_dir / "resumed.pt"
    code = run_forked(
        _fill_disk, kind, str(setup.template), str(case_dir / "disk"), str(out), str(report)
    )
    if code is None:
        return CaseResult(name, ("the run hung",), hung=True)
    if code != 0 or not report.exists():
        return CaseResult(name, (f"the child failed (exit code {code})",))
    result = json.loads(report.read_text())
    if "unavailable" in result:
        return CaseResult(name, skipped=f"no tmpfs here ({result['unavailable']})")
    problems: list[str] = []
    damaged: list[str] = []
    if result["error"] != "helios.trainer._checkpoint.CheckpointError":
        problems.append(f"fit raised {result['error']}: {result.get('message')}")
    elif not re.search(FULL_MESSAGE, result["message"]):
        problems.append(f"the message does not say what happened: {result['message']!r}")
    if result["changed"]:
        damaged.append(f"earlier checkpoints changed: {result['changed']}")
    if result["new"]:
        problems.append(f"files appeared although the write failed: {result['new']}")
    if "resume_error" in result:
        problems.append(f"resuming after freeing space failed: {result['resume_error']}")
    elif not same_weights(torch.load(out, weights_only=True), setup.weights):
        damaged.append("the resumed run ends with other weights than the uninterrupted one")
    if result["checkpoints"] != setup.checkpoints:
        damaged.append(f"checkpoints after resuming: {result['checkpoints']}")
    if result["leftovers"]:
        problems.append(f"temporary files remain: {result['leftovers']}")
    return CaseResult(name, (*problems, *damaged), lost=bool(damaged))


def disk_full(workdir: Path, kinds: Sequence[str] = DISK_FULL_KINDS) -> Outcome:
    tally = Tally("disk full during a checkpoint write")
    setup = prepare_disk_full(workdir)
    for kind in kinds:
        tally.add(disk_full_case(setup, kind, workdir / kind))
    return tally.outcome()
