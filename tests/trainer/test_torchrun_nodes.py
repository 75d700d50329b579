"""``torchrun`` across two nodes (two launchers on loopback, as two machines would be
started), and an elastic restart after a worker is SIGKILLed."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import torch

import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ReportingClassifier, weights

pytestmark = [pytest.mark.distributed, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STEPS = 6
#: Samples a rank takes a step.
BATCH = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def two_nodes(
    args: list[str], *, per_node: int, max_restarts: int = 0
) -> list[subprocess.CompletedProcess[str]]:
    """Start the two launchers at once (node A hosts the rendezvous); wait for both."""
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).with_name("torchrun"))
    endpoint = f"127.0.0.1:{free_port()}"
    run_id = uuid.uuid4().hex[:8]
    launchers = [
        subprocess.Popen(
            [
                torchrun,
                "--nnodes=2",
                f"--nproc-per-node={per_node}",
                "--rdzv-backend=c10d",
                f"--rdzv-endpoint={endpoint}",
                f"--rdzv-id={run_id}",
                f"--rdzv-conf=is_host={is_host}",
                "--local-addr=127.0.0.1",
                f"--max-restarts={max_restarts}",
                "--monitor-interval=0.1",
                "-m",
                "tests.trainer.nodes_script",
                *args,
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for is_host in ("true", "false")
    ]
    done = []
    for launcher in launchers:
        try:
            stdout, stderr = launcher.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            for each in launchers:
                each.terminate()  # torchrun ends its workers on SIGTERM
            for each in launchers:
                each.communicate(timeout=60)
            raise
        done.append(
            subprocess.CompletedProcess(launcher.args, launcher.returncode, stdout, stderr)
        )
    return done


def single_process_weights(world_size: int) -> dict[str, torch.Tensor]:
    """One process fed the same global batches as ``world_size`` ranks."""
    model = ReportingClassifier("single")
    trainer = hlt.Trainer(train_unit="iteration", total_steps=STEPS, use_cpu=True, random_seed=2)
    trainer.fit(model, ClassifierData(size=64, batch_size=BATCH * world_size, plain=True))
    return weights(model)


def checkpoints(world_size: int) -> list[str]:
    """The names of the checkpoints (every 2 iterations) of a run on ``world_size`` ranks."""
    per_epoch = 64 // (BATCH * world_size)
    return [f"epoch_{(i - 1) // per_epoch}_iter_{i}.pth" for i in (2, 4, 6)]


def assert_close(expected: dict[str, torch.Tensor], actual: dict[str, torch.Tensor]) -> None:
    assert expected.keys() == actual.keys()
    for key in expected:
        torch.testing.assert_close(actual[key], expected[key], rtol=1e-5, atol=1e-6)


def finished(launchers: list[subprocess.CompletedProcess[str]]) -> list[tuple[int, int, int]]:
    """(rank, restart, batches trained) of every worker that finished, in rank order."""
    for launcher in launchers:
        assert launcher.returncode == 0, launcher.stderr[-4000:]
    lines = "".join(launcher.stdout for launcher in launchers)
    found = re.findall(r"rank (\d) of \d restart (\d) batches (\d+) done", lines)
    return sorted((int(rank), int(restart), int(batches)) for rank, restart, batches in found)


def test_two_nodes_train_one_model_and_rank_zero_alone_writes(tmp_path: Path) -> None:
    out = tmp_path / "weights.pt"
    args = [str(out), str(STEPS), str(tmp_path / "chkpts-of-rank-{rank}")]
    launchers = two_nodes(args, per_node=2)
    assert finished(launchers) == [(rank, 0, STEPS) for rank in range(4)]
    saved = torch.load(out, weights_only=True)
    assert saved["world"] == 4
    assert_close(single_process_weights(4), saved["weights"])
    # Each rank was given its own folder: checkpoints are found in rank 0's alone.
    written = sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*.pth"))
    assert written == [f"chkpts-of-rank-0/nodes/{name}" for name in checkpoints(4)]


def test_a_worker_killed_after_a_checkpoint_is_restarted_and_the_run_completes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "weights.pt"
    folder = tmp_path / "shared-chkpts"
    # One process a node, to keep it lean. Rank 1 (the second node's) dies at iteration
    # 4: after the checkpoint of iteration 2.
    args = [str(out), str(STEPS), str(folder), "1", "4"]
    launchers = two_nodes(args, per_node=1, max_restarts=1)
    # Every worker that finished is of the second generation: it trained only the batches
    # after the checkpoint of iteration 2. (The launcher of the node that lost a worker
    # counts a restart; the other may restart its workers for the rejoining node, which
    # torchrun does not count.)
    found = finished(launchers)
    assert [(rank, batches) for rank, _, batches in found] == [(0, STEPS - 2), (1, STEPS - 2)]
    assert (1, 1, STEPS - 2) in found
    saved = torch.load(out, weights_only=True)
    assert saved["world"] == 2
    assert_close(single_process_weights(2), saved["weights"])
    names = [path.name for path in hlt.find_checkpoints(folder / "nodes")]
    assert names == checkpoints(2)
