"""Trials per minute of the example study with 1, 2 and 4 workers, on three storages.

Usage::

    python benchmarks/study_throughput.py              # 24 trials of 3 epochs per cell
    python benchmarks/study_throughput.py --quick      # 8 trials of 1 epoch: a sanity run

Every cell runs ``python -m helios.examples.tune --workers N`` on a new, empty storage:
SQLite (a file in the working folder), PostgreSQL (a new database on a private server
on 127.0.0.1, started once for the whole run as the tests start theirs) and a journal
file. The trials are the same work everywhere: no pruning, the same seed, and the sampler
seeded by trial number, so trial *n* trains the same network whichever storage or
worker runs it. The cells run in one process, storage after storage for each worker
count, so the columns are comparable.

Trials per minute counts, from the storage's own records, the trials that started once
every worker had finished its first trial (a worker's first trial also pays for lazy
imports and loading the data: ten times a later one here), from the earliest of their
starts to the last end. Beside it, the mean time of a trial, first trials left out:
when it grows with the workers, they contend (for the cores, or for the storage).
``wall`` is the whole command, start-up and the closing test included.
Needs PostgreSQL's server programs and ``pip install -e '.[postgres]'``.
"""

from __future__ import annotations

import argparse
import datetime
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import attrs
import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from helios.examples.postgres import Cluster, private_cluster
from helios.examples.tune.study import ATTR_WORKER

ROOT = Path(__file__).resolve().parents[1]
STORAGES = ("sqlite", "postgresql", "journal")
STUDY = "throughput"


@attrs.frozen
class Cell:
    """One measured run: a storage, a worker count, and what it did.

    Attributes:
        per_minute: Trials per minute once every worker is warm (see `measure`).
        trial_s: The mean time of one trial, start to end (the storage's clock), leaving
            out each worker's first.
        wall_s: The whole command's wall time.
    """

    storage: str
    workers: int
    finished: int
    per_minute: float
    trial_s: float
    wall_s: float


def measure(kind: str, workers: int, trials: Sequence[FrozenTrial], wall: float) -> Cell:
    """Steady throughput and mean trial time of the finished ``trials``.

    A worker's first trial also pays for one-off start-up work in the process (lazy
    imports of torch and scikit-learn, loading the data): over ten times a later trial
    here, so it is left out. The throughput counts the trials that started once every
    worker had finished its first, from the earliest of their starts to the last end.
    """
    timed = [t for t in trials if t.datetime_start is not None and t.datetime_complete]
    firsts: dict[str, FrozenTrial] = {}
    for trial in sorted(timed, key=lambda t: t.number):
        firsts.setdefault(str(trial.user_attrs[ATTR_WORKER]), trial)
    warm_from = max(_end(t) for t in firsts.values())
    steady = [t for t in timed if _start(t) >= warm_from]
    later = [t for t in timed if t not in firsts.values()]
    span = (max(_end(t) for t in steady) - min(_start(t) for t in steady)).total_seconds()
    rate = 60 * len(steady) / span if steady and span > 0 else float("nan")
    mean = sum((_end(t) - _start(t)).total_seconds() for t in later) / max(len(later), 1)
    return Cell(kind, workers, len(trials), rate, mean, wall)


def _start(trial: FrozenTrial) -> datetime.datetime:
    assert trial.datetime_start is not None
    return trial.datetime_start


def _end(trial: FrozenTrial) -> datetime.datetime:
    assert trial.datetime_complete is not None
    return trial.datetime_complete


def _storage_flags(kind: str, folder: Path, cluster: Cluster, name: str) -> tuple[list[str], str]:
    """The command-line flags for a new storage of ``kind``, and how to read it back."""
    if kind == "sqlite":
        return [], f"sqlite:///{folder / 'helios-tune.db'}"
    if kind == "postgresql":
        url = cluster.create_database(name)
        return ["--storage", url], url
    path = str(folder / "study.log")
    return ["--storage", path, "--storage-class", "JournalFileBackend"], path


def _read_back(kind: str, where: str) -> optuna.Study:
    if kind == "journal":
        storage: optuna.storages.BaseStorage = JournalStorage(JournalFileBackend(where))
    else:
        storage = optuna.storages.RDBStorage(where)
    return optuna.load_study(study_name=STUDY, storage=storage)


def run_cell(
    kind: str, workers: int, root: Path, cluster: Cluster, trials: int, epochs: int
) -> Cell:
    """Run one study of ``trials`` trials with ``workers`` processes on a new storage."""
    folder = root / f"{kind}-{workers}"
    database = f"throughput_{folder.parent.name}_{workers}"
    storage, where = _storage_flags(kind, folder, cluster, database)
    command = [sys.executable, "-m", "helios.examples.tune", "--workdir", str(folder)]
    command += [*storage, "--study-name", STUDY, "--workers", str(workers)]
    command += ["--n-trials", str(trials), "--epochs", str(epochs), "--pruner", "none"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{kind}, {workers} workers failed:\n{done.stderr}")
    finished = [
        t
        for t in _read_back(kind, where).get_trials(deepcopy=False)
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED)
    ]
    return measure(kind, workers, finished, wall)


def table(cells: Sequence[Cell], counts: Sequence[int]) -> list[str]:
    """A Markdown table: trials per minute and seconds per trial, by storage and workers."""
    head = "| storage | " + " | ".join(f"{n} worker{'s' * (n > 1)}" for n in counts) + " |"
    lines = [head, "|---" * (len(counts) + 1) + "|"]
    for kind in STORAGES:
        row = {cell.workers: cell for cell in cells if cell.storage == kind}
        shown = [f"{row[n].per_minute:.1f} /min, {row[n].trial_s:.2f} s/trial" for n in counts]
        lines.append(f"| {kind} | " + " | ".join(shown) + " |")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="8 trials of 1 epoch per cell")
    parser.add_argument("--trials", type=int, default=None, help="trials per cell (default 24)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 3)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=1, help="runs of every cell (median)")
    args = parser.parse_args(argv)
    # A plain kill still stops the private server and removes its folder.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    trials = args.trials or (8 if args.quick else 24)
    epochs = args.epochs or (1 if args.quick else 3)
    runs: dict[tuple[str, int], list[Cell]] = {}
    with private_cluster() as cluster, tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.rounds):
            for workers in args.workers:
                for kind in STORAGES:
                    folder = Path(scratch) / str(round_)
                    cell = run_cell(kind, workers, folder, cluster, trials, epochs)
                    print(
                        f"round {round_}: {kind:>10}, {workers} worker(s): {cell.finished} "
                        f"trials, {cell.per_minute:.1f} /min, {cell.trial_s:.2f} s/trial, "
                        f"{cell.wall_s:.1f} s wall",
                        flush=True,
                    )
                    runs.setdefault((kind, workers), []).append(cell)
    medians = [
        sorted(cells, key=lambda c: c.per_minute)[len(cells) // 2] for cells in runs.values()
    ]
    print()
    print(
        f"{trials} trials of {epochs} epoch(s) per cell, no pruning, one torch thread each; "
        f"median of {args.rounds} round(s)"
    )
    print("\n".join(table(medians, args.workers)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
