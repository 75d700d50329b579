"""The example's storages: chosen as Optuna's command line chooses them, shown without
passwords, and created with the modes the user's umask allows (SQLite and journal files)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from helios.examples import tune
from helios.examples.tune.storage import Location, locate, redact
from tests.examples.concurrent import open_together


def test_storage_is_located_as_optunas_command_line_does(tmp_path: Path) -> None:
    journal = tmp_path / "study.log"
    assert locate("sqlite:///study.db") == Location("sqlite:///study.db")
    assert locate(str(journal), "JournalFileBackend") == Location(str(journal), journal=True)
    with pytest.raises(ValueError, match=r"neither a database URL nor an existing journal file"):
        locate(str(journal))  # a new journal file needs the class
    journal.touch()
    assert locate(str(journal)) == Location(str(journal), journal=True)  # guessed: a file
    with pytest.raises(ValueError, match="neither a database URL"):
        locate(str(journal), "RDBStorage")  # the class wins over the guess
    old = locate(f"journal:{journal}")
    assert (old.target, old.journal) == (str(journal), True)
    assert old.note is not None
    assert f"write --storage {journal} --storage-class JournalFileBackend" in old.note
    assert locate("journal://rel/study.log").target == "rel/study.log"


def test_optuna_storage_variable_is_read_when_storage_is_absent() -> None:
    environ = {"OPTUNA_STORAGE": "postgresql+psycopg://ann@db:5432/tuning"}
    assert tune.parse_args([], environ).storage == environ["OPTUNA_STORAGE"]
    assert tune.parse_args(["--storage", "sqlite:///x.db"], environ).storage == "sqlite:///x.db"
    assert tune.parse_args([], {}).storage_url == "sqlite:///helios-tune/helios-tune.db"


def test_a_journal_needs_its_path(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        tune.parse_args(["--storage-class", "JournalFileBackend"], {})
    assert "--storage-class JournalFileBackend needs --storage PATH" in capsys.readouterr().err


users = st.text("abcdefghijklmnopqrstuvwxyz0123456789_.-", min_size=1, max_size=12)
passwords = st.text(st.characters(codec="utf-8", exclude_characters="\n"), min_size=1)


@given(users, passwords)
def test_passwords_are_masked(user: str, password: str) -> None:
    url = f"postgresql+psycopg://{user}:{password}@db.example.org:5432/tuning"
    shown = f"postgresql+psycopg://{user}:***@db.example.org:5432/tuning"
    assume(password not in shown)
    assert tune.mask_password(url) == shown
    message = f"cannot connect to {url} (password {password!s}, again {password})"
    assert password not in redact(message, url)


@given(passwords)
def test_query_passwords_are_masked(password: str) -> None:
    assume("&" not in password and "#" not in password)
    url = f"postgresql+psycopg://ann@db/tuning?password={password}&sslmode=require"
    shown = tune.mask_password(url)
    assume(password not in "postgresql+psycopg://ann@db/tuning?password=***&sslmode=require")
    assert shown == "postgresql+psycopg://ann@db/tuning?password=***&sslmode=require"


def test_journal_files_old_and_new_spellings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "study.log"
    base = ["--workdir", str(tmp_path), "--epochs", "1", "--n-trials", "1"]
    new = ["--storage", str(journal), "--storage-class", "JournalFileBackend"]
    assert tune.main([*base, *new]) == 0
    assert "(new study)" in capsys.readouterr().out
    assert tune.main([*base, "--storage", str(journal)]) == 0  # an existing file: a journal
    assert "(continuing, 1 trials so far)" in capsys.readouterr().out
    assert tune.main([*base, "--storage", f"journal:{journal}"]) == 0
    out, err = capsys.readouterr()
    assert "(continuing, 2 trials so far)" in out
    assert "warning: --storage journal:PATH is deprecated" in err
    assert not (tmp_path / "helios-tune.db").exists()


@pytest.fixture(params=[0o077, 0o022], ids=["umask-077", "umask-022"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    mask: int = request.param
    before = os.umask(mask)
    try:
        yield mask
    finally:
        os.umask(before)


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_study_files_keep_to_the_umask(tmp_path: Path, umask: int, kind: str) -> None:
    path = tmp_path / "work" / ("helios-tune.db" if kind == "sqlite" else "study.log")
    storage = "" if kind == "sqlite" else str(path)
    options = tune.Options(
        workdir=tmp_path / "work",
        storage=storage,
        storage_class="JournalFileBackend" if kind == "journal" else "",
    )
    opened = tune.make_storage(options)
    try:
        tune.study.open_study(options, opened)
    finally:
        tune.close_storage(opened)
    allowed = 0o666 & ~umask
    created = [path, *path.parent.iterdir()]
    for found in created:
        mode = stat.S_IMODE(found.lstat().st_mode)
        if found.is_file():
            assert mode & ~allowed == 0, f"{found.name}: {oct(mode)} under umask {oct(umask)}"
    assert stat.S_IMODE((tmp_path / "work").stat().st_mode) & umask == 0


def test_processes_starting_at_once_share_a_new_sqlite_file(tmp_path: Path) -> None:
    # Two commands started together on one machine: both find no tables and create them.
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert open_together(url, tmp_path, processes=6) == ["ok"] * 6
