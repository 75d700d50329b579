"""A training process killed with SIGKILL resumes from its newest checkpoint, exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import helios.trainer as hlt

ROOT = Path(__file__).resolve().parents[2]


def _command(root: Path, steps: int, out: Path, *flags: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "tests.trainer.resume_script",
        str(root),
        str(steps),
        str(out),
        *flags,
    ]


def _run(root: Path, steps: int, out: Path, *flags: str) -> None:
    subprocess.run(_command(root, steps, out, *flags), cwd=ROOT, check=True, timeout=120)


@pytest.mark.parametrize("flags", [(), ("plain",), ("accumulate",)])
def test_sigkill_after_checkpoint_then_resume_matches_uninterrupted(
    tmp_path: Path, flags: tuple[str, ...]
) -> None:
    steps = 25  # epochs of 10 batches: checkpoints fall mid-epoch too
    straight = tmp_path / "straight.pt"
    _run(tmp_path / "a", steps, straight, *flags)

    killed_root = tmp_path / "b"
    process = subprocess.Popen(
        _command(killed_root, steps, tmp_path / "never.pt", *flags, "slow"), cwd=ROOT
    )
    deadline = time.monotonic() + 60
    try:
        while len(hlt.find_checkpoints(killed_root / "resumable")) < 3:
            assert process.poll() is None, "training ended before it could be killed"
            assert time.monotonic() < deadline, "no checkpoint appeared"
            time.sleep(0.005)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (tmp_path / "never.pt").exists()
    newest = hlt.find_checkpoints(killed_root / "resumable")[-1]
    hlt.load_checkpoint(newest)  # whole and readable
    assert hlt.load_checkpoint(newest)["training_state"].global_iteration < steps

    resumed = tmp_path / "resumed.pt"
    _run(killed_root, steps, resumed, *flags)
    expected = torch.load(straight, weights_only=True)
    actual = torch.load(resumed, weights_only=True)
    assert expected.keys() == actual.keys()
    for key in expected:
        assert torch.equal(expected[key], actual[key]), key
