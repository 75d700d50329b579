"""Run under ``torchrun``, one launcher per node: train, and rank 0 saves the weights.

Usage::

    torchrun ... -m tests.trainer.nodes_script OUT STEPS CHKPT_ROOT [KILL_RANK KILL_AT]

``CHKPT_ROOT`` may hold ``{rank}``: each rank is then given its own folder (so the
folders show which ranks wrote checkpoints). With ``KILL_RANK`` / ``KILL_AT``, that rank
SIGKILLs itself at that iteration, in the first generation of workers only.
"""

from __future__ import annotations

import os
import sys

import torch

import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ReportingClassifier, weights


def main(out: str, steps: int, chkpt_root: str, kill: list[str]) -> None:
    rank = int(os.environ["RANK"])
    restart = int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0"))
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=steps,
        chkpt_frequency=2,
        chkpt_root=chkpt_root.format(rank=rank),
        use_cpu=True,
        random_seed=2,
        collective_timeout=60,
    )
    doomed = bool(kill) and restart == 0
    model = ReportingClassifier(
        "nodes",
        fail_rank=int(kill[0]) if doomed else None,
        fail_at=int(kill[1]) if doomed else 0,
        kill=True,
    )
    assert trainer.fit(model, ClassifierData(size=64, batch_size=4, plain=True)) is True
    if trainer.rank == 0:
        torch.save({"weights": weights(model), "world": trainer.world_size}, out)
    place = f"rank {trainer.rank} of {trainer.world_size} restart {restart}"
    print(f"{place} batches {model.batches} done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:])
