"""A private PostgreSQL server for the tests marked ``postgres``: one per test session."""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from helios.examples.postgres import Cluster, PostgresUnavailableError, private_cluster

_databases = itertools.count()


def _unavailable(reason: str) -> NoReturn:
    """Skip where PostgreSQL is missing; fail on CI, where these tests must run."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests, but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    """A PostgreSQL server on 127.0.0.1, started once, stopped at the end of the session."""
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("the PostgreSQL driver is not installed: pip install -e '.[postgres]'")
    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(private_cluster())
        except PostgresUnavailableError as error:
            _unavailable(str(error))
        yield cluster


@pytest.fixture
def postgres_url(postgres: Cluster) -> str:
    """The storage URL of a new, empty database on the session's server."""
    return postgres.create_database(f"study_{next(_databases)}")


@pytest.fixture(autouse=True)
def _no_storage_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example reads OPTUNA_STORAGE when --storage is absent: not the tester's own."""
    monkeypatch.delenv("OPTUNA_STORAGE", raising=False)
