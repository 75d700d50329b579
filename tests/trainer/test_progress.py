"""Progress bars, in one process and in worker processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys

import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel

if __name__ == "__main__":
    trainer = hlt.Trainer(
        total_steps=1,
        valid_frequency=1,
        use_cpu=True,
        cpu_processes=int(sys.argv[1]),
        enable_progress_bar=True,
    )
    trainer.fit(ClassifierModel(), ClassifierData())
"""


def _fit(tmp_path: Path, processes: int) -> str:
    script = tmp_path / "fit_with_bars.py"
    script.write_text(SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(processes)],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_bars_are_drawn_in_one_process(tmp_path: Path) -> None:
    err = _fit(tmp_path, 1)
    assert "epochs: 100%" in err
    assert "leaked" not in err


@pytest.mark.distributed
def test_a_distributed_fit_with_bars_leaks_no_semaphore(tmp_path: Path) -> None:
    err = _fit(tmp_path, 2)
    assert "epochs: 100%" in err  # rank 0 drew them
    assert "leaked semaphore" not in err
    assert "resource_tracker" not in err
