"""The workspace every row of the bad-input matrix starts from."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.bad_input.runner import make_template


@pytest.fixture(scope="session")
def matrix_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once for all the rows: each row runs in a copy of its own."""
    return make_template(tmp_path_factory.mktemp("matrix") / "template")
