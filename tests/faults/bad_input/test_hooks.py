"""The bad-input matrix: plug-in, model and data-module hooks that raise inside `fit` and
`test`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import helios.trainer as hlt
from helios.core import TrainingState
from tests.faults.bad_input.parts import (
    NAME,
    BadData,
    FaultyPlugin,
    Injected,
    Row,
    Workspace,
    fit,
    run_test,
)
from tests.faults.bad_input.runner import assert_refused, parametrize
from tests.trainer.helpers import ClassifierModel


class FaultyModel(ClassifierModel):
    """The helper classifier, raising `Injected` in ``hook`` (late, as `FaultyPlugin`)."""

    def __init__(self, ws: Workspace, hook: str) -> None:
        super().__init__(NAME)
        self.ws = ws
        self.hook = hook
        self.cycle = 0

    def setup(self, fast_init: bool = False) -> None:
        super().setup(fast_init)
        if self.hook == "setup":
            self.ws.fail("model hook setup")

    def train_step(self, batch: Any, state: TrainingState) -> None:
        if self.hook == "train_step" and state.global_iteration >= 10:
            self.ws.fail("model hook train_step")
        super().train_step(batch, state)

    def on_validation_start(self, validation_cycle: int) -> None:
        super().on_validation_start(validation_cycle)
        self.cycle = validation_cycle

    def valid_step(self, batch: Any, step: int) -> None:
        if self.hook == "valid_step" and self.cycle >= 3:
            self.ws.fail("model hook valid_step")
        super().valid_step(batch, step)

    def on_training_end(self) -> None:
        if self.hook == "on_training_end":
            self.ws.fail("model hook on_training_end")

    def test_step(self, batch: Any, step: int) -> None:
        if self.hook == "test_step":
            self.ws.fail("model hook test_step")

    def load_state_dict(self, state_dict: Mapping[str, Any], fast_init: bool = False) -> None:
        if self.hook == "load_state_dict":
            self.ws.fail("model hook load_state_dict")
        super().load_state_dict(state_dict, fast_init)


def _raising_row(who: str, hook: str, *, testing: bool = False) -> Row:
    """``fit`` (``test`` if ``testing``) with a ``"plug-in"`` or a ``"model"`` that raises in
    ``hook``."""
    run = run_test if testing else fit

    def call(ws: Workspace) -> bool:
        if who == "plug-in":
            return run(ws, plugin=FaultyPlugin(ws, hook))
        return run(ws, model=FaultyModel(ws, hook))

    return Row(
        "Trainer.test" if testing else "Trainer.fit",
        f"{who} raises in {hook}",
        call,
        Injected,
        rf"{who} hook {hook} failed on purpose",
        unchanged=True,
    )


def _cause_is_thrown(ws: Workspace) -> list[str]:
    # Set by `check_row`: the exception the row raised.
    raised = ws.extra.get("raised")
    if raised is None or not ws.thrown or raised.__cause__ is not ws.thrown[-1]:
        return ["the model's own exception is not the cause of the CheckpointError"]
    return []


HOOK_ROWS = [
    *(
        _raising_row("plug-in", hook)
        for hook in (
            "setup",
            "on_training_start",
            "process_training_batch",
            "on_validation_start",
            "process_validation_batch",
            "on_validation_end",
            "should_training_stop",
            "state_dict",
            "on_training_end",
            "load_state_dict",
        )
    ),
    *(
        _raising_row("plug-in", hook, testing=True)
        for hook in ("setup", "on_testing_start", "process_testing_batch", "on_testing_end")
    ),
    *(
        _raising_row("model", hook)
        for hook in ("setup", "train_step", "valid_step", "on_training_end")
    ),
    _raising_row("model", "test_step", testing=True),
    Row(
        "Trainer.fit",
        "model.load_state_dict raises on resume",
        lambda ws: fit(ws, model=FaultyModel(ws, "load_state_dict")),
        hlt.CheckpointError,
        r"does not fit model 'net': model hook load_state_dict failed on purpose",
        after=_cause_is_thrown,
    ),
    Row(
        "Trainer.fit",
        "DataModule.prepare_data raises",
        lambda ws: fit(ws, data=BadData(ws, "prepare_data raises")),
        Injected,
        r"DataModule.prepare_data failed on purpose",
        unchanged=True,
    ),
]


@parametrize(HOOK_ROWS)
def test_a_raising_hook_leaves_unchanged(row: Row, matrix_template: Path, tmp_path: Path) -> None:
    assert_refused(row, matrix_template, tmp_path)
