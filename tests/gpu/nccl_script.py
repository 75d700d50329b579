"""helios over a one-process NCCL group; run in a process of its own by ``test_nccl.py``.

Usage: ``python -m tests.gpu.nccl_script CHECKPOINT_FOLDER PORT``. Prints ``NCCL OK`` at
the end; any failed check raises.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

import helios.plugins as hlp
import helios.trainer as hlt
from helios.trainer._distributed import Context
from tests.gpu.models import PinnedData, RecordingClassifier

CUDA = torch.device("cuda", 0)


class AsksEveryBatch(RecordingClassifier):
    """Overrides ``should_training_stop``, so the trainer agrees on it every batch."""

    def should_training_stop(self) -> bool:
        return False


def check_collectives(context: Context) -> None:
    assert dist.get_backend() == "nccl", dist.get_backend()
    assert context.any(True) is True
    assert context.any(False) is False
    assert context.gather({"rank": 0, "tensor": torch.ones(2)})[0]["rank"] == 0


def check_trainer(context: Context, root: Path) -> None:
    trainer = hlt.Trainer(
        gpus=[0],
        train_unit="iteration",
        total_steps=12,
        valid_frequency=4,
        chkpt_frequency=5,
        chkpt_root=root,
        random_seed=2,
    )
    # What each rank of a multi-GPU run is given: its place in the group, so that the stop
    # votes and the checkpoints' random states go through NCCL.
    trainer._context = context
    hlp.CUDAPlugin(prefetch=True).configure_trainer(trainer)
    model = AsksEveryBatch()
    assert trainer.fit(model, PinnedData()) is True
    assert trainer.state.global_iteration == 12
    written = sorted(path.name for path in (root / model.save_name).glob("*.pth"))
    assert written == ["epoch_0_iter_10.pth", "epoch_0_iter_5.pth"], written
    assert model.devices == {CUDA}


def check_ddp() -> None:
    torch.manual_seed(0)
    net = torch.nn.Linear(8, 3).to(CUDA)
    twin = torch.nn.Linear(8, 3).to(CUDA)
    twin.load_state_dict(net.state_dict())
    model = RecordingClassifier()
    model.device = CUDA
    model.is_distributed = True
    wrapped = model.wrap_distributed(net)
    assert isinstance(wrapped, DistributedDataParallel)
    inputs = torch.randn(16, 8, device=CUDA)
    torch.autograd.backward(wrapped(inputs).square().sum())
    torch.autograd.backward(twin(inputs).square().sum())
    for mine, theirs in zip(net.parameters(), twin.parameters(), strict=True):
        assert mine.grad is not None
        assert theirs.grad is not None
        torch.testing.assert_close(mine.grad, theirs.grad)


def main(root: Path, port: int) -> None:
    torch.cuda.set_device(CUDA)
    dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        context = Context(rank=0, local_rank=0, world_size=1, in_process_group=True)
        check_collectives(context)
        check_trainer(context, root)
        check_ddp()
    finally:
        dist.destroy_process_group()
    print("NCCL OK", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
