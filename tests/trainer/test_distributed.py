"""Distributed training with real processes: 2 ranks, gloo, CPU."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import helios.plugins as hlp
import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ReportingClassifier, weights

pytestmark = pytest.mark.distributed

ROOT = Path(__file__).resolve().parents[2]
STEPS = 6


def two_ranks(**kwargs: Any) -> hlt.Trainer:
    options: dict[str, Any] = {
        "train_unit": "iteration",
        "total_steps": STEPS,
        "use_cpu": True,
        "cpu_processes": 2,
        "random_seed": 2,
        "collective_timeout": 60,
    }
    options.update(kwargs)
    return hlt.Trainer(**options)


def single_process_weights(steps: int = STEPS) -> dict[str, torch.Tensor]:
    """One process fed the same global batches (8 = 2 ranks x 4) as the 2-rank runs."""
    model = ReportingClassifier("single")
    trainer = hlt.Trainer(train_unit="iteration", total_steps=steps, use_cpu=True, random_seed=2)
    trainer.fit(model, ClassifierData(size=64, batch_size=8, plain=True))
    return weights(model)


def assert_close(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> None:
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-6)


def test_spawned_ranks_match_single_process_and_use_the_queue() -> None:
    trainer = two_ranks()
    plugin = hlp.DevicePlugin()
    plugin.configure_trainer(trainer)
    assert two_ranks().queue is None  # created by fit when it spawns
    assert trainer.fit(ReportingClassifier(), ClassifierData(64, 4, plain=True)) is True
    assert trainer.queue is not None
    result = trainer.queue.get(timeout=30)
    assert result["rank"] == 0
    assert result["world_size"] == 2
    assert result["global_iteration"] == STEPS
    assert result["device"] == "cpu"
    assert_close(single_process_weights(), result["weights"])


def test_resumable_loader_shards_match_single_process() -> None:
    trainer = two_ranks()
    assert trainer.fit(ReportingClassifier(every_rank=True), ClassifierData(64, 4))
    assert trainer.queue is not None
    results = sorted((trainer.queue.get(timeout=30) for _ in range(2)), key=lambda r: r["rank"])
    # DDP keeps the replicas equal.
    assert_close(results[0]["weights"], results[1]["weights"])


def test_stop_on_one_rank_stops_both_at_the_same_step() -> None:
    trainer = two_ranks(total_steps=20)
    model = ReportingClassifier(every_rank=True, stop_rank=1, stop_at=3)
    assert trainer.fit(model, ClassifierData(64, 4, plain=True)) is True
    assert trainer.queue is not None
    results = [trainer.queue.get(timeout=30) for _ in range(2)]
    assert {r["rank"] for r in results} == {0, 1}
    assert [r["global_iteration"] for r in results] == [3, 3]


def test_exception_on_rank_one_surfaces_in_the_parent() -> None:
    trainer = two_ranks()
    model = ReportingClassifier(fail_rank=1, fail_at=2)
    with pytest.raises(hlt.WorkerError, match="rank 1") as caught:
        trainer.fit(model, ClassifierData(64, 4, plain=True))
    message = str(caught.value)
    assert "failed on purpose" in message
    assert "Traceback" in message
    assert "train_step" in message
    assert caught.value.rank == 1


def test_killed_rank_is_reported_and_the_run_resumes(tmp_path: Path) -> None:
    uninterrupted = two_ranks(total_steps=12, chkpt_frequency=3, chkpt_root=tmp_path / "a")
    uninterrupted.fit(ReportingClassifier("r", dropout=0.2), ClassifierData(64, 4))
    assert uninterrupted.queue is not None
    expected = uninterrupted.queue.get(timeout=30)["weights"]

    root = tmp_path / "b"
    killed = two_ranks(total_steps=12, chkpt_frequency=3, chkpt_root=root)
    doomed = ReportingClassifier("r", dropout=0.2, fail_rank=1, fail_at=7, kill=True)
    with pytest.raises(hlt.WorkerError, match="rank 1 was killed by SIGKILL"):
        killed.fit(doomed, ClassifierData(64, 4))
    names = [p.name for p in hlt.find_checkpoints(root / "r")]
    assert names[-1] == "epoch_0_iter_6.pth"

    resumed = two_ranks(total_steps=12, chkpt_frequency=3, chkpt_root=root)
    resumed.fit(ReportingClassifier("r", dropout=0.2), ClassifierData(64, 4))
    assert resumed.queue is not None
    result = resumed.queue.get(timeout=30)
    for key in expected:
        assert torch.equal(expected[key], result["weights"][key]), key


def test_torchrun_two_processes(tmp_path: Path) -> None:
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    out = tmp_path / "weights.pt"
    completed = subprocess.run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "tests.trainer.dist_script",
            str(out),
            str(STEPS),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "rank 0 of 2" in completed.stdout
    assert "rank 1 of 2" in completed.stdout
    saved = torch.load(out, weights_only=True)
    assert saved["world"] == 2
    assert_close(single_process_weights(), saved["weights"])
