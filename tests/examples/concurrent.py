"""Study workers that open one storage at the same moment (real processes)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from helios.examples import tune


def _open_at_once(url: str, workdir: Path, barrier: Barrier, results: Queue[str]) -> None:
    options = tune.Options(workdir=workdir, storage=url)
    barrier.wait(timeout=60)
    try:
        storage = tune.make_storage(options)
        try:
            tune.study.open_study(options, storage)
        finally:
            tune.close_storage(storage)
    except Exception as error:  # reported to the test, which shows it
        results.put(f"{type(error).__name__}: {error}")
    else:
        results.put("ok")


def open_together(url: str, workdir: Path, processes: int = 3) -> list[str]:
    """Open the example's study in ``url`` from ``processes`` processes released at once.

    Returns what each reported: ``"ok"``, or its exception. Workers on several machines
    start like this on an empty database, and each finds no tables and creates them.
    """
    # Forked: the children start at once, without importing torch again (they only open
    # the storage).
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes)
    results: Queue[str] = context.Queue()
    started = [
        context.Process(target=_open_at_once, args=(url, workdir, barrier, results))
        for _ in range(processes)
    ]
    for process in started:
        process.start()
    outcomes = [results.get(timeout=120) for _ in started]
    for process in started:
        process.join(timeout=30)
    return outcomes
