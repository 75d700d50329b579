"""``average_iter_time`` is the mean of each batch's own time: a validation pass or a
checkpoint that a batch triggers is not part of it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel

STEP = 0.02  # seconds each training step sleeps
VALIDATION = 0.5  # seconds each validation pass sleeps


class Sleepy(ClassifierModel):
    def __init__(self) -> None:
        super().__init__("sleepy")
        self.timings: list[tuple[int, float]] = []

    def train_step(self, batch: Any, state: hlt.TrainingState) -> None:
        super().train_step(batch, state)
        time.sleep(STEP)

    def on_training_batch_start(self, state: hlt.TrainingState) -> None:
        self.timings.append((state.running_iter, state.average_iter_time))

    def on_validation_end(self, validation_cycle: int) -> None:
        super().on_validation_end(validation_cycle)
        time.sleep(VALIDATION)


def test_validation_and_checkpoints_are_not_counted_as_batch_time(tmp_path: Path) -> None:
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=8,
        valid_frequency=2,
        chkpt_frequency=2,
        chkpt_root=tmp_path,
        use_cpu=True,
    )
    model = Sleepy()
    trainer.fit(model, ClassifierData())
    final = trainer.state
    assert final.running_iter == 8
    # Each batch sleeps STEP; four validations sleep VALIDATION each (2 s in all). Had
    # they been counted, the mean would be at least (8 * STEP + 4 * VALIDATION) / 8.
    assert STEP <= final.average_iter_time < STEP + VALIDATION / 4
    # The hooks of batch n see the mean of batches 1 .. n-1.
    assert [running for running, _ in model.timings] == list(range(8))
    assert all(STEP <= mean < STEP + VALIDATION / 4 for _, mean in model.timings[1:])
