"""The counters mean what they mean in Helios: ``global_iteration`` counts batches,
``current_iteration`` optimiser steps, and the schedule counts ``current_iteration``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState
from tests.trainer.helpers import ClassifierData, ClassifierModel


class Recorder(hlp.Plugin):
    """Records the state each training batch is processed with (as a logger would)."""

    def __init__(self) -> None:
        super().__init__("recorder")
        self.unique_overrides.training_batch = True
        self.states: list[TrainingState] = []
        self.validated_at: list[int] = []

    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        self.states.append(state)
        return batch

    def on_validation_start(self, validation_cycle: int, /) -> None:
        self.validated_at.append(self.trainer.state.current_iteration)


class SchedulerModel(ClassifierModel):
    """Steps a learning-rate schedule once per optimiser step, as a ported 1.x model does:
    when ``current_iteration`` has moved on."""

    def __init__(self) -> None:
        super().__init__("scheduled")
        self.schedule_steps: list[int] = []
        self.logged_at: list[int] = []

    def on_training_batch_end(self, state: TrainingState, should_log: bool = False) -> None:
        if self.trainer.is_accumulation_boundary(state):
            self.schedule_steps.append(state.current_iteration)
        if should_log:
            self.logged_at.append(state.current_iteration)


@pytest.mark.parametrize("accumulation", [1, 2, 3])
def test_iteration_unit_counts_optimiser_steps(tmp_path: Path, accumulation: int) -> None:
    recorder = Recorder()
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=6,
        accumulation_steps=accumulation,
        valid_frequency=2,
        chkpt_frequency=3,
        print_frequency=2,
        chkpt_root=tmp_path,
        use_cpu=True,
        random_seed=0,
    )
    recorder.configure_trainer(trainer)
    model = SchedulerModel()
    trainer.fit(model, ClassifierData(size=200))

    batches = 6 * accumulation
    assert [s.global_iteration for s in recorder.states] == list(range(1, batches + 1))
    assert [s.current_iteration for s in recorder.states] == [
        n // accumulation for n in range(1, batches + 1)
    ]
    assert (trainer.state.global_iteration, trainer.state.current_iteration) == (batches, 6)
    assert model.schedule_steps == [1, 2, 3, 4, 5, 6]
    assert model.logged_at == [2, 4, 6]
    assert recorder.validated_at == [2, 4, 6]
    names = [path.name for path in hlt.find_checkpoints(tmp_path / "scheduled")]
    assert [name.split("_iter_")[1] for name in names] == ["3.pth", "6.pth"]
    newest = hlt.load_checkpoint(tmp_path / "scheduled" / names[-1])["training_state"]
    assert (newest.current_iteration, newest.global_iteration) == (6, batches)


def test_epoch_unit_with_accumulation_counts_both(tmp_path: Path) -> None:
    recorder = Recorder()
    trainer = hlt.Trainer(
        train_unit="epoch",
        total_steps=2,
        accumulation_steps=3,
        chkpt_frequency=1,
        chkpt_root=tmp_path,
        use_cpu=True,
    )
    recorder.configure_trainer(trainer)
    trainer.fit(ClassifierModel("epochs"), ClassifierData(size=96, batch_size=8))
    # 12 batches an epoch, 4 optimiser steps an epoch.
    assert (trainer.state.global_iteration, trainer.state.current_iteration) == (24, 8)
    names = [path.name for path in hlt.find_checkpoints(tmp_path / "epochs")]
    assert names == ["epoch_1_iter_4.pth", "epoch_2_iter_8.pth"]
