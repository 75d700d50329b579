"""helios's messages are seen: on the console when logging is not set up, once through
the user's set-up when it is (each run in a fresh interpreter, as a user's script)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import logging
import sys

if sys.argv[2] == "configured":
    logging.basicConfig(level=logging.INFO, format="user: %(name)s %(message)s")

import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel

trainer = hlt.Trainer(
    train_unit="iteration",
    total_steps=int(sys.argv[3]),
    chkpt_frequency=2,
    print_frequency=2,
    chkpt_root=sys.argv[1],
    use_cpu=True,
)
trainer.fit(ClassifierModel("logged"), ClassifierData())
"""


def _run(root: Path, mode: str, steps: int) -> str:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), mode, str(steps)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    return done.stderr


def test_resuming_and_progress_reach_the_console_without_logging_set_up(tmp_path: Path) -> None:
    first = _run(tmp_path, "plain", 4)
    assert "resuming" not in first
    progress = [line for line in first.splitlines() if "iteration" in line]
    assert [line.split(" loss ")[0] for line in progress] == [
        "helios: epoch 0 iteration 2",
        "helios: epoch 0 iteration 4",
    ]
    second = _run(tmp_path, "plain", 6)
    newest = tmp_path / "logged" / "epoch_0_iter_4.pth"
    assert f"helios: resuming logged from checkpoint {newest}\n" in second
    assert "iteration 6" in second


def test_with_logging_set_up_each_message_appears_once(tmp_path: Path) -> None:
    _run(tmp_path, "configured", 4)
    second = _run(tmp_path, "configured", 6)
    lines = second.splitlines()
    resumed = [line for line in lines if "resuming logged" in line]
    assert resumed == [
        f"user: helios resuming logged from checkpoint {tmp_path}/logged/epoch_0_iter_4.pth"
    ]
    assert sum("iteration 6" in line for line in lines) == 1
    assert not any(line.startswith("helios: ") for line in lines)
