"""The study's storage: which one (chosen as Optuna's command line chooses), opening it, and
showing its address without the password.

``--storage`` is a database URL or the path of a journal file; ``--storage-class``
(``RDBStorage`` or ``JournalFileBackend``) says which when the text alone cannot (a new
journal file). Without ``--storage``, ``OPTUNA_STORAGE`` is read (`options.parse_args`).

Databases (SQLite, PostgreSQL, MySQL, ...) get heartbeats: a trial whose process stops
beating is failed and queued again. Workers that start at the same moment on an empty
database would each create Optuna's tables (``RDBStorage`` runs SQLAlchemy's
``create_all``, then inserts its version row and stamps alembic's revision, none of it
guarded against a concurrent creator), and all but one would fail. `make_storage`
serialises that step with an advisory lock on PostgreSQL, and elsewhere (a new SQLite
file) tries again when another process created the tables meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import time
import urllib.parse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import optuna
import sqlalchemy
import sqlalchemy.exc
from optuna.storages import RetryHeartbeatStaleTrialCallback

from helios.examples.tune.data import MissingDependencyError
from helios.examples.tune.options import Options

__all__ = [
    "Location",
    "StorageError",
    "advisory_lock",
    "close_storage",
    "locate",
    "make_storage",
    "mask_password",
    "redact",
]

_QUERY_PASSWORD = re.compile(r"(?i)([?&]password=)([^&#]*)")
_DEPRECATED_JOURNAL = "journal:"
#: Tries at creating an RDB storage while other processes create the same tables.
_CREATE_ATTEMPTS = 10


class StorageError(RuntimeError):
    """The storage cannot be reached, or refuses this worker (the message says which)."""


@attrs.frozen
class Location:
    """Where the study lives.

    Attributes:
        target: The database URL, or the journal file's path.
        journal: Whether ``target`` is a journal file.
        note: A message for the user (a deprecated spelling), or ``None``.
    """

    target: str
    journal: bool = False
    note: str | None = None


def locate(storage: str, storage_class: str = "") -> Location:
    """Which storage ``--storage`` / ``--storage-class`` name, as Optuna's command line reads them.

    With no class: an existing file is a journal, a URL a database. ``journal:PATH``,
    this example's older spelling, still names a journal file (with a note).

    Raises:
        ValueError: neither a URL nor an existing file, or a storage this example lacks.
    """
    if storage.startswith(_DEPRECATED_JOURNAL) and storage_class != "RDBStorage":
        path = storage.removeprefix(_DEPRECATED_JOURNAL).removeprefix("//")
        note = (
            f"--storage journal:PATH is deprecated: write --storage {path} "
            "--storage-class JournalFileBackend (as Optuna's command line does)"
        )
        return Location(path, journal=True, note=note)
    if storage_class == "JournalFileBackend" or (not storage_class and os.path.isfile(storage)):
        return Location(storage, journal=True)
    if storage.startswith("redis"):
        raise ValueError("this example does not support Redis journal storages")
    if "://" not in storage:
        raise ValueError(
            f"--storage {mask_password(storage)!r} is neither a database URL nor an existing "
            "journal file: use e.g. sqlite:///study.db, postgresql+psycopg://user@host:5432/db, "
            "or add --storage-class JournalFileBackend to create a journal file there"
        )
    return Location(storage)


def _password_span(url: str) -> tuple[int, int] | None:
    """Where the password of ``scheme://user:password@host...`` is, or ``None``.

    It ends at the last ``@``: a password with a bare ``@`` (which should be written
    ``%40``) is masked whole, and a stray ``@`` further on masks too much, never too little.
    """
    start = url.find("://")
    if start < 0:
        return None
    start += 3
    colon = url.find(":", start)
    at = url.rfind("@")
    if colon < 0 or at < colon or any(char in url[start:colon] for char in "/@"):
        return None
    return colon + 1, at


def mask_password(url: str) -> str:
    """``url`` with its password (in the user part or a ``password=`` parameter) as ``***``.

    Examples:
        >>> mask_password("postgresql+psycopg://ann:s3cret@db.example.org:5432/tuning")
        'postgresql+psycopg://ann:***@db.example.org:5432/tuning'
        >>> mask_password("postgresql+psycopg://ann@db/tuning?password=s3cret&sslmode=require")
        'postgresql+psycopg://ann@db/tuning?password=***&sslmode=require'
    """
    span = _password_span(url)
    if span is not None:
        url = url[: span[0]] + "***" + url[span[1] :]
    return _QUERY_PASSWORD.sub(r"\1***", url)


def _secrets(url: str) -> set[str]:
    found = set()
    span = _password_span(url)
    if span is not None:
        found.add(url[span[0] : span[1]])
    found.update(match[2] for match in _QUERY_PASSWORD.finditer(url))
    found |= {urllib.parse.unquote(secret) for secret in found}
    return {secret for secret in found if secret}


def redact(text: str, url: str) -> str:
    """``text`` with every copy of ``url``'s password replaced by ``***``."""
    text = text.replace(url, mask_password(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def _lock_key(name: str) -> int:
    """A signed 64-bit advisory-lock key for ``name`` (the same in every process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextlib.contextmanager
def advisory_lock(url: str, name: str) -> Iterator[None]:
    """Hold PostgreSQL's advisory lock ``name`` in ``url``'s database; nothing elsewhere.

    Workers on every machine that use the same name take turns inside the ``with`` block.
    The lock lives in its own connection, so it is released if the process dies.
    """
    if not url.startswith("postgresql"):
        yield
        return
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            key = {"key": _lock_key(name)}
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), key)
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), key)
    finally:
        engine.dispose()


def _reason(error: BaseException, url: str) -> str:
    """The driver's own words about ``error``, on one line, without the password."""
    cause = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return redact("; ".join(lines[:2]) or type(cause).__name__, url)


def storage_error(url: str, error: BaseException) -> StorageError:
    """A one-line `StorageError` for a database that refused or could not be reached."""
    return StorageError(
        f"cannot use the study storage {mask_password(url)}: {_reason(error, url)}. Check that "
        "the database server runs and accepts connections from this machine (host and "
        "port), that the database exists, and the user name and password (~/.pgpass, "
        "PGPASSFILE, or the URL in OPTUNA_STORAGE)"
    )


def _missing_driver(url: str, error: ImportError) -> MissingDependencyError:
    return MissingDependencyError(
        f"the storage {mask_password(url)} needs a database driver that is not installed "
        f"({error.__cause__ or error}): for PostgreSQL, pip install -e '.[postgres]' and "
        "write the URL as postgresql+psycopg://USER@HOST:PORT/DB"
    )


def _created_meanwhile(error: sqlalchemy.exc.DBAPIError) -> bool:
    """Whether ``error`` says another process was creating the same tables just then."""
    return isinstance(error, sqlalchemy.exc.IntegrityError) or "already exists" in str(error)


def _create_database_storage(url: str, options: Options) -> optuna.storages.RDBStorage:
    """`RDBStorage` for ``url``, created again while another process was creating its tables.

    On PostgreSQL an advisory lock lets one worker at a time create the schema; other
    databases (SQLite files shared by processes that start together) fail the loser with
    "already exists" or a duplicate key, and a second try finds the tables made.
    """
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        # Several workers write to one file: wait for the lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    for attempt in range(1, _CREATE_ATTEMPTS + 1):
        try:
            with advisory_lock(url, "optuna storage schema"), warnings.catch_warnings():
                # Heartbeats and the retry callback are marked experimental by Optuna.
                warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=options.heartbeat,
                    grace_period=options.grace_period,
                    heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                        max_retry=options.max_retry
                    ),
                )
        except sqlalchemy.exc.DBAPIError as error:
            if attempt == _CREATE_ATTEMPTS or not _created_meanwhile(error):
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def open_database(url: str, options: Options) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats, its tables created by one worker at a time.

    A trial whose process stops beating for ``grace_period`` seconds is failed and queued
    again (up to ``max_retry`` times) with its parameters and its original number.

    Raises:
        StorageError: the database refused the connection or could not be reached.
        MissingDependencyError: the URL's driver is not installed.
    """
    try:
        return _create_database_storage(url, options)
    except ImportError as error:
        raise _missing_driver(url, error) from None
    except sqlalchemy.exc.ArgumentError as error:
        raise ValueError(f"--storage {mask_password(url)!r} is not a database URL") from error
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as error:
        raise storage_error(url, error) from None


def make_storage(options: Options) -> optuna.storages.BaseStorage:
    """The study's storage: a database (with heartbeats) or a journal file (without).

    A journal file has no heartbeats: only trials stopped with Ctrl-C are retried.

    Raises:
        ValueError: ``--storage`` names no storage.
        StorageError: the storage refused the connection or could not be reached.
        MissingDependencyError: the URL's driver is not installed.
    """
    location = locate(options.storage_url, options.storage_class)
    if location.journal:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(location.target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))
        except OSError as error:
            raise StorageError(f"cannot use the journal file {path}: {error}") from None
    if location.target.startswith("sqlite:"):
        options.workdir.mkdir(parents=True, exist_ok=True)
    return open_database(location.target, options)


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Release the storage's database connections."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.engine.dispose()
