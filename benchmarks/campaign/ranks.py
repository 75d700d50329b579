"""Scenario 2: one of two gloo ranks SIGKILLed from outside."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import random
import re
import signal
import threading
import time
from pathlib import Path
from typing import Any

import torch

import helios.trainer as hlt
from benchmarks.campaign.checkpoints import (
    Reference,
    Weights,
    inspect_checkpoints,
)
from benchmarks.campaign.processes import (
    CHILD_TIMEOUT,
    SEED,
    child_processes,
)
from benchmarks.campaign.results import CaseResult, Outcome, Tally
from benchmarks.campaign.workload import Classifier, ClassifierData, weights
from helios.core import TrainingState

#: Collective timeout of the 2-rank runs (``Trainer(collective_timeout=...)``).
COLLECTIVE_TIMEOUT = 60.0
#: The parent must report a killed rank within this many seconds of the kill: well
#: within the collective timeout (helios ends the other ranks after a short grace).
REPORT_BOUND = 10.0
#: After this many seconds without `fit` returning, a killed 2-rank run has hung.
HANG_LIMIT = 30.0


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


class PacedReporter(Classifier):
    """Sends its weights to the parent at the end (rank 0), writes its pid to
    ``<pid_dir>/rank<r>.pid`` in `setup`, and sleeps ``pace`` seconds after each step."""

    def __init__(self, save_name: str, *, pid_dir: str = "", pace: float = 0.0) -> None:
        super().__init__(save_name)
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

    def on_training_end(self) -> None:
        results = self.trainer.queue
        if results is not None and self.rank == 0:
            results.put({"weights": weights(self)})


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

    _, damaged = inspect_checkpoints(folder, reference.checkpoints)
    resumed, failure, hung = _two_rank_fit(root, PacedReporter(DIST_NAME))
    if hung:
        return CaseResult(name, (*problems, *damaged, "the resumed run hung"), bool(damaged), True)
    if resumed is None:
        problems.append(f"the resumed run failed: {failure}")
    more_problems, more_damaged = reference.after_resuming(folder, resumed)
    problems.extend(more_problems)
    damaged.extend(more_damaged)
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
