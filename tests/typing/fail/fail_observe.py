"""Logging, retention and validation calls that mypy --strict must refuse."""

from __future__ import annotations

from pathlib import Path

import helios.model as hlm
import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState
from helios.data import DataModule


def saved(path: Path) -> None:
    return None


def logged(state: int) -> None:
    return None


hlp.RunWatcher(on_checkpoint=saved)  # E: arg-type
hlp.RunWatcher(on_log=logged)  # E: arg-type


hlp.RetentionPlugin(mode="lowest")  # E: arg-type
hlp.TensorBoardPlugin(root=3)  # E: arg-type
trainer = hlt.Trainer(use_cpu=True)
trainer.validate(hlm.Model("m"), DataModule(), checkpoint="latest")  # E: arg-type
trainer.validate(hlm.Model("m"), DataModule(), checkpoint="chkpt/m/epoch_1_iter_2.pth")  # E: arg-type
state: TrainingState = trainer.describe()  # E: assignment
