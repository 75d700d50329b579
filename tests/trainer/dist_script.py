"""Run under ``torchrun --nproc_per_node=2``: train, and rank 0 saves the weights.

Usage: torchrun --standalone --nproc_per_node=2 -m tests.trainer.dist_script OUT_FILE STEPS
"""

from __future__ import annotations

import os
import sys

import torch

import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ReportingClassifier, weights


def main(out: str, steps: int) -> None:
    trainer = hlt.Trainer(train_unit="iteration", total_steps=steps, use_cpu=True, random_seed=2)
    assert trainer.is_distributed
    assert trainer.queue is None
    model = ReportingClassifier("torchrun")
    data = ClassifierData(size=64, batch_size=4, plain=True)
    assert trainer.fit(model, data) is True
    if trainer.rank == 0:
        torch.save({"weights": weights(model), "world": trainer.world_size}, out)
    print(f"rank {trainer.rank} of {trainer.world_size} pid {os.getpid()} done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
