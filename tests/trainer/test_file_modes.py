"""Files helios writes are no more open than the user's umask allows, and the temporary
file of a checkpoint write cut short by SIGKILL is readable by its owner alone."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=[0o077, 0o022, 0o002], ids=lambda mask: f"umask-{mask:03o}")
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    mask: int = request.param
    old = os.umask(mask)
    try:
        yield mask
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_checkpoints_and_logs_follow_the_umask(umask: int, tmp_path: Path) -> None:
    chkpt_root = tmp_path / "made" / "chkpts"
    log_root = tmp_path / "made" / "logs"
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=2,
        chkpt_frequency=1,
        chkpt_root=chkpt_root,
        enable_file_logging=True,
        log_root=log_root,
        print_frequency=1,
        use_cpu=True,
    )
    trainer.fit(ClassifierModel("modes"), ClassifierData(32, 8))
    files = [*(chkpt_root / "modes").iterdir(), *log_root.iterdir()]
    assert sorted(path.name for path in files) == [
        "epoch_0_iter_1.pth",
        "epoch_0_iter_2.pth",
        "modes.log",
    ]
    for path in files:
        assert mode(path) == 0o666 & ~umask, f"{path.name}: {mode(path):o}"
    for folder in (chkpt_root, chkpt_root / "modes", log_root):
        assert mode(folder) == 0o777 & ~umask, f"{folder}: {mode(folder):o}"


#: Writes one checkpoint, then starts a second whose content blocks while it is pickled
#: (the temporary file exists by then), and says so through a file.
WRITER = """
import os, sys, time
from pathlib import Path
import torch
from helios.trainer._checkpoint import save_checkpoint

folder, ready = Path(sys.argv[1]), Path(sys.argv[2])
os.umask(int(sys.argv[3], 8))

class Blocks:
    def __reduce__(self):
        ready.write_text("writing")
        time.sleep(600)
        raise AssertionError("not killed")

save_checkpoint(folder / "epoch_0_iter_1.pth", {"weights": torch.ones(1000)})
save_checkpoint(folder / "epoch_0_iter_2.pth", {"weights": torch.ones(1000), "x": Blocks()})
"""


@pytest.mark.parametrize("mask", [0o022, 0o000], ids=lambda mask: f"umask-{mask:03o}")
def test_a_write_killed_midway_leaves_an_owner_only_temporary_file(
    mask: int, tmp_path: Path
) -> None:
    folder = tmp_path / "chkpts"
    ready = tmp_path / "ready"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(folder), str(ready), f"{mask:o}"], cwd=ROOT
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), f"the writer ended early ({child.returncode})"
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    names = {path.name for path in folder.iterdir()}
    leftovers = names - {"epoch_0_iter_1.pth"}
    assert len(leftovers) == 1, names
    leftover = folder / leftovers.pop()
    assert leftover.name.startswith(".epoch_0_iter_2.pth.")
    assert leftover.name.endswith(".tmp")
    assert mode(leftover) == 0o600, f"{leftover.name}: {mode(leftover):o}"
    assert mode(folder / "epoch_0_iter_1.pth") == 0o666 & ~mask
