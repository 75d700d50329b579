"""The example study on a real PostgreSQL server (a private one, see conftest.py)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from helios.examples import tune

pytestmark = pytest.mark.postgres


def _open_at_once(url: str, workdir: Path, barrier: Barrier, results: Queue[str]) -> None:
    options = tune.Options(workdir=workdir, storage=url)
    barrier.wait(timeout=60)
    try:
        storage = tune.make_storage(options)
        try:
            tune.open_study(options, storage)
        finally:
            tune.close_storage(storage)
    except Exception as error:  # reported to the test, which shows it
        results.put(f"{type(error).__name__}: {error}")
    else:
        results.put("ok")


def test_workers_starting_at_once_create_the_schema_once(
    postgres_url: str, tmp_path: Path
) -> None:
    # Processes on several machines start together on an empty database: each finds no
    # tables and creates them. Released by one barrier, they race for real.
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(3)
    results: Queue[str] = context.Queue()
    processes = [
        context.Process(target=_open_at_once, args=(postgres_url, tmp_path, barrier, results))
        for _ in range(3)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    assert outcomes == ["ok"] * 3
