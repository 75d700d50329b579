"""The hand-written stubs in stubs/ agree with the libraries they describe."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_sklearn_and_tensorboard_stubs_match_runtime() -> None:
    # Only what the stubs declare is checked (--ignore-missing-stub): they are minimal.
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "sklearn.datasets",
            "sklearn.utils",
            "tensorboard.backend.event_processing.event_accumulator",
            "tensorboard.plugins.hparams.metadata",
            "--mypy-config-file",
            "mypy.ini",
            "--ignore-missing-stub",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
