"""A private PostgreSQL server on loopback, for trying and testing study workers on one machine.

`private_cluster` creates a throw-away database cluster in a temporary folder, starts its
server on a free port of 127.0.0.1 and stops it (and removes the folder) at the end:

    with private_cluster() as cluster:
        url = cluster.create_database("tuning")  # postgresql+psycopg://helios@127.0.0.1:PORT/tuning
        ...  # python -m helios.examples.tune --storage URL, in as many processes as wanted

It needs PostgreSQL's server programs (``initdb``, ``pg_ctl``; Debian and Ubuntu:
``apt-get install postgresql``) and, to connect from Python, ``pip install -e '.[postgres]'``.
The server refuses to run as root, so under root it runs as the ``postgres`` user (which
the Debian package creates) through ``runuser``. Every connection from 127.0.0.1 is
trusted, except for roles made with `Cluster.add_password_role`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

__all__ = ["Cluster", "PostgresUnavailableError", "find_server_programs", "private_cluster"]

#: The superuser of a private cluster.
SUPERUSER = "helios"
#: The user a server runs as when this process is root.
SERVER_USER = "postgres"

INSTALL_HINT = (
    "install PostgreSQL's server programs (initdb, pg_ctl, postgres): on Debian or Ubuntu "
    "`apt-get install postgresql`, elsewhere your system's postgresql server package, "
    "and put its bin folder (e.g. /usr/lib/postgresql/15/bin) on PATH"
)


class PostgresUnavailableError(RuntimeError):
    """PostgreSQL's programs are not installed, or the server would not start."""


def find_server_programs() -> Path:
    """The folder holding ``initdb`` and ``pg_ctl``: on ``PATH``, or Debian's folder.

    Raises:
        PostgresUnavailableError: neither has them; the message says what to install.
    """
    found = shutil.which("initdb")
    if found is not None and shutil.which("pg_ctl") is not None:
        return Path(found).resolve().parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    raise PostgresUnavailableError(f"PostgreSQL is not installed here: {INSTALL_HINT}")


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on (at the time of asking)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@attrs.frozen
class Cluster:
    """A running private cluster: its programs, folder and port.

    Attributes:
        programs: The folder of ``initdb``, ``pg_ctl``, ``createdb``, ``psql``.
        folder: The cluster's folder (data in ``data/``, the server's socket beside it).
        port: The TCP port of 127.0.0.1 the server listens on.
    """

    programs: Path
    folder: Path
    port: int

    @property
    def data(self) -> Path:
        """The cluster's data folder."""
        return self.folder / "data"

    def url(self, database: str, user: str = SUPERUSER, password: str | None = None) -> str:
        """An Optuna (SQLAlchemy) storage URL for ``database``, through psycopg 3."""
        login = user if password is None else f"{user}:{password}"
        return f"postgresql+psycopg://{login}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create the empty database ``name``; returns its storage URL."""
        self._client("createdb", name)
        return self.url(name)

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one SQL statement as the superuser; returns what ``psql`` printed."""
        return self._client("psql", "-X", "-q", "-At", "-d", database, "-c", statement)

    def add_password_role(self, name: str, password: str) -> None:
        """Create a login role that must give ``password`` (SCRAM) over TCP.

        Its ``pg_hba.conf`` line goes first, so the trust rule below does not apply to it.
        """
        self.sql(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' SUPERUSER")
        rules = self.data / "pg_hba.conf"
        line = f"host all {name} 127.0.0.1/32 scram-sha-256\n"
        rules.write_text(line + rules.read_text())
        self.sql("SELECT pg_reload_conf()")

    def _client(self, program: str, *args: str) -> str:
        command = [str(self.programs / program), "-h", "127.0.0.1", "-p", str(self.port)]
        done = subprocess.run(
            [*command, "-U", SUPERUSER, *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout


def _as_server_user(command: Sequence[str]) -> list[str]:
    """``command`` run as the ``postgres`` user when this process is root (initdb refuses root)."""
    if os.geteuid() != 0:
        return list(command)
    if shutil.which("runuser") is None:
        raise PostgresUnavailableError("running as root needs `runuser` (util-linux)")
    return ["runuser", "-u", SERVER_USER, "--", *command]


def _run_server_program(command: Sequence[str], folder: Path) -> None:
    # Run from the cluster's folder: the server's user may not enter the caller's one.
    done = subprocess.run(
        _as_server_user(command), cwd=folder, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise PostgresUnavailableError(
            f"{Path(command[0]).name} failed ({done.returncode}): "
            f"{(done.stderr or done.stdout).strip()}"
        )


def _make_folder() -> Path:
    """A new temporary folder that the server's user owns (and root's 0700 parents don't hide)."""
    folder = Path(tempfile.mkdtemp(prefix="helios-pg-", dir="/tmp"))
    if os.geteuid() == 0:
        try:
            shutil.chown(folder, user=SERVER_USER, group=SERVER_USER)
        except LookupError as error:
            folder.rmdir()
            raise PostgresUnavailableError(
                f"running as root, the server needs the user {SERVER_USER!r} ({error}): "
                f"{INSTALL_HINT}"
            ) from None
    return folder


def _start(programs: Path, folder: Path, attempts: int = 3) -> Cluster:
    """Start the server on a free port (another process may take the port first: retry)."""
    for attempt in range(attempts):
        cluster = Cluster(programs, folder, free_port())
        options = f"-p {cluster.port} -k {folder} -c listen_addresses=127.0.0.1"
        log = folder / "server.log"
        try:
            pg_ctl = [str(programs / "pg_ctl"), "-D", str(cluster.data), "-l", str(log)]
            _run_server_program([*pg_ctl, "-o", options, "-w", "-t", "60", "start"], folder)
        except PostgresUnavailableError:
            if attempt == attempts - 1:
                raise
            continue
        return cluster
    raise AssertionError("unreachable")  # pragma: no cover


@contextlib.contextmanager
def private_cluster() -> Iterator[Cluster]:
    """A new cluster, started; stopped and deleted when the ``with`` block ends.

    Raises:
        PostgresUnavailableError: the programs are missing or the server did not start.
    """
    programs = find_server_programs()
    folder = _make_folder()
    try:
        initdb = [str(programs / "initdb"), "-D", str(folder / "data"), "-A", "trust"]
        _run_server_program([*initdb, "-U", SUPERUSER, "--no-sync"], folder)
        cluster = _start(programs, folder)
        try:
            yield cluster
        finally:
            pg_ctl = [str(programs / "pg_ctl"), "-D", str(cluster.data)]
            _run_server_program([*pg_ctl, "-m", "immediate", "-w", "stop"], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
