"""Logging, retention, validation and run watchers, under mypy --strict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal, assert_type

import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState, logging


class Watcher(hlp.Plugin):
    """Watches the run with callbacks of the watcher's types."""

    def setup(self) -> None:
        self.trainer.watch(self.plug_id, hlp.RunWatcher(on_log=self.log, on_checkpoint=self.saw))

    def log(self, state: TrainingState) -> None:
        self.last = state.current_iteration

    def saw(self, path: Path, state: TrainingState) -> None:
        self.saved = path


trainer = hlt.Trainer(use_cpu=True, valid_frequency=1)
board = hlp.TensorBoardPlugin(Path("runs"), hparams={"lr": 0.1, "optimizer": "sgd"})
table = hlp.CSVLoggerPlugin("logs")
retention = hlp.RetentionPlugin(2, keep_best=1, metric="loss", mode="min")
for plugin in (board, table, retention, Watcher("watcher")):
    plugin.configure_trainer(trainer)
assert_type(hlp.RunWatcher(on_end=lambda: None).on_end, Callable[[], None] | None)
assert_type(trainer.describe(), str)
assert_type(retention.mode, Literal["min", "max"])
assert_type(hlp.retained(["epoch_1_iter_2.pth"], {}, keep_newest=1), frozenset[str])
assert_type(logging.get_tensorboard_writer(), logging.TensorBoardWriter | None)
writer = logging.get_tensorboard_writer()
if writer is not None:
    writer.add_scalar("mine", 1.0, 3)
checkpoints: list[Literal["newest", "best"] | Path] = ["newest", "best", Path("x.pth")]
assert len(checkpoints) == 3
