"""Train the helper classifier with checkpoints; run as a separate process by the tests.

Usage: python -m tests.trainer.resume_script CHKPT_ROOT TOTAL_STEPS OUT_FILE [plain] [slow]
"""

from __future__ import annotations

import sys
import time
from typing import Any

import torch

import helios.trainer as hlt
from helios.core import TrainingState
from tests.trainer.helpers import ClassifierData, ClassifierModel, weights


class SlowModel(ClassifierModel):
    def train_step(self, batch: Any, state: TrainingState) -> None:
        super().train_step(batch, state)
        time.sleep(0.05)


def main(argv: list[str]) -> None:
    root, steps, out = argv[0], int(argv[1]), argv[2]
    flags = set(argv[3:])
    model = SlowModel("resumable") if "slow" in flags else ClassifierModel("resumable")
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=steps,
        chkpt_frequency=3,
        valid_frequency=4,
        accumulation_steps=2 if "accumulate" in flags else 1,
        chkpt_root=root,
        use_cpu=True,
        random_seed=5,
        enable_deterministic=True,
    )
    trainer.fit(model, ClassifierData(size=80, batch_size=8, plain="plain" in flags))
    torch.save(weights(model), out)


if __name__ == "__main__":
    main(sys.argv[1:])
