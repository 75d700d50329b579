"""Running the study: `main` (the command), its worker processes, and the exit statuses."""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import multiprocessing
import sys
import time
import traceback
from collections.abc import Iterator, Sequence

import optuna
import sqlalchemy.exc
import torch

from helios.examples.tune.data import MissingDependencyError, sklearn_datasets
from helios.examples.tune.options import Options, parse_args
from helios.examples.tune.report import evaluate_best, header, print_trial, summary, write_plots
from helios.examples.tune.storage import (
    StorageError,
    advisory_lock,
    close_storage,
    locate,
    make_storage,
    redact,
    storage_error,
)
from helios.examples.tune.study import Objective, fail_dead_trials, open_study, retry_interrupted

__all__ = ["check_requirements", "main", "run_study", "run_trials", "run_workers", "shares"]

#: Exit statuses of `main`.
DONE, WORKER_FAILED, BAD_INPUT, STORAGE_UNUSABLE, INTERRUPTED = 0, 1, 2, 3, 130


def check_requirements(options: Options) -> None:
    """Fail early, with the command that fixes it, when an optional package is missing.

    Raises:
        MissingDependencyError: scikit-learn (always) or matplotlib (``--plot``) is missing.
    """
    sklearn_datasets()
    if options.plot and importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError(
            "--plot needs matplotlib, which is not installed: pip install -e '.[plot]' "
            "(or pip install matplotlib), or leave out --plot"
        )


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Use ``threads`` torch threads in this process for a while."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_trials(options: Options, n_trials: int) -> None:
    """Run ``n_trials`` trials of the study in this process."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(options)
    try:
        study = open_study(options, storage)
        study.optimize(
            Objective(options), n_trials=n_trials, timeout=options.timeout, callbacks=[print_trial]
        )
    finally:
        close_storage(storage)


def _worker_main(options: Options, n_trials: int, worker: int) -> None:
    try:
        with torch_threads(options.threads):
            run_trials(options, n_trials)
    except KeyboardInterrupt:
        raise SystemExit(INTERRUPTED) from None
    except StorageError as error:
        print(f"worker {worker} failed: {error}", file=sys.stderr, flush=True)
        raise SystemExit(STORAGE_UNUSABLE) from None
    except BaseException:
        shown = redact(traceback.format_exc(), options.storage_url)
        print(f"worker {worker} failed:\n{shown}", file=sys.stderr, flush=True)
        raise SystemExit(WORKER_FAILED) from None


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal positive shares (fewer if too few).

    Examples:
        >>> shares(5, 2), shares(1, 3)
        ([3, 2], [1])
    """
    base, extra = divmod(total, parts)
    return [n for n in (base + (i < extra) for i in range(parts)) if n]


def run_workers(options: Options) -> list[int]:
    """Run the trials in ``options.workers`` processes; returns the workers that failed."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker_main, args=(options, n, worker), name=f"helios-tune-worker-{worker}"
        )
        for worker, n in enumerate(shares(options.n_trials, options.workers))
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:  # they got the Ctrl-C too: let them record it
            process.join(timeout=30)
        raise
    return [worker for worker, process in enumerate(processes) if process.exitcode != 0]


def _start(options: Options, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Open the study, retry dead and interrupted trials, print the header.

    Workers that start together take turns here (on PostgreSQL), so an interrupted trial
    is queued again once, not once per worker.
    """
    with advisory_lock(options.storage_url, f"helios-tune start {options.study_name}"):
        study = open_study(options, storage)
        fail_dead_trials(study)
        queued = retry_interrupted(study, options.max_retry)
    print(header(options, study, queued), flush=True)
    return study


def run_study(options: Options, study: optuna.Study) -> int:
    """Run the trials of the opened study, print the summary."""
    since = datetime.datetime.now()  # Optuna stamps trials with naive local times
    started = time.perf_counter()
    failed: list[int] = []
    try:
        if options.workers == 1:
            study.optimize(
                Objective(options),
                n_trials=options.n_trials,
                timeout=options.timeout,
                callbacks=[print_trial],
            )
        else:
            failed = run_workers(options)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: run the same command again to continue; the interrupted "
            "trials resume from their checkpoints",
            file=sys.stderr,
        )
        return INTERRUPTED
    wall = time.perf_counter() - started
    new = sum(
        t.datetime_complete is not None and t.datetime_complete >= since
        for t in study.get_trials(deepcopy=False)
    )
    tested = evaluate_best(options, study)
    print(summary(options, study, tested, wall, new), flush=True)
    if options.plot:
        for path in write_plots(study, options.workdir, options.seed):
            print(f"plot: {path}")
    if failed:
        print(f"error: worker(s) {failed} failed (see above)", file=sys.stderr)
        return WORKER_FAILED
    return DONE


def _open(options: Options) -> optuna.storages.BaseStorage:
    """Check the options and open the storage (errors: see `main`)."""
    check_requirements(options)
    location = locate(options.storage_url, options.storage_class)
    if location.note is not None:
        print(f"warning: {location.note}", file=sys.stderr)
    if options.workers > 1 and ":memory:" in options.storage_url:
        raise ValueError("--workers needs a storage the processes share, not :memory:")
    return make_storage(options)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study from the command line ``argv``; returns the exit status.

    0: done; 1: a worker failed; 2: bad input or a missing package; 3: the storage could
    not be reached or refused this worker; 130: interrupted. Errors are one line on
    standard error, and never show the storage's password.
    """
    options = parse_args(argv)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage: optuna.storages.BaseStorage | None = None
    try:
        try:
            storage = _open(options)
            study = _start(options, storage)
        except (MissingDependencyError, ValueError) as error:
            print(f"error: {redact(str(error), options.storage_url)}", file=sys.stderr)
            return BAD_INPUT
        with torch_threads(options.threads):
            return run_study(options, study)
    except StorageError as error:
        print(f"error: {error}", file=sys.stderr)
        return STORAGE_UNUSABLE
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as error:
        # The database refused a statement, or went away while the study ran.
        print(f"error: {storage_error(options.storage_url, error)}", file=sys.stderr)
        return STORAGE_UNUSABLE
    finally:
        optuna.logging.set_verbosity(verbosity)
        if storage is not None:
            close_storage(storage)
