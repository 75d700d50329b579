"""The private PostgreSQL server's helper, where PostgreSQL is missing."""

from __future__ import annotations

import glob

import pytest

from helios.examples import postgres


def test_missing_programs_name_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A machine without PostgreSQL: nothing on PATH, no Debian folder.
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(glob, "glob", lambda pattern: [])
    with pytest.raises(postgres.PostgresUnavailableError) as refused:
        postgres.find_server_programs()
    message = str(refused.value)
    assert "PostgreSQL is not installed here" in message
    assert "apt-get install postgresql" in message
    assert "initdb, pg_ctl, postgres" in message
