"""What the rows of the bad-input matrix are made of: the workspace a row runs in, the
row, and the trainer, plug-in and data module that fail on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs
import torch
from torch.utils.data import DataLoader

import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState
from tests.trainer.helpers import ClassifierData, ClassifierModel, make_dataset

NAME = "net"
STUDY = "existing"
HAS_CUDA = torch.cuda.is_available()
NO_CUDA = "CUDA is available here" if HAS_CUDA else None


def wrong(value: object) -> Any:
    """``value``, typed ``Any``: the rows pass wrong types on purpose."""
    return value


class Injected(Exception):
    """What a row's plug-in or model raises on purpose."""


# -- the workspace ---------------------------------------------------------------------


@attrs.define
class Workspace:
    """A folder with checkpoints and a study; what a row's exceptions were; scratch."""

    root: Path
    thrown: list[BaseException] = attrs.field(factory=list)
    #: Files a row planted on purpose (bad checkpoints): they must stay as planted.
    planted: set[Path] = attrs.field(factory=set)
    extra: dict[str, Any] = attrs.field(factory=dict)

    @property
    def chkpt_root(self) -> Path:
        return self.root / "checkpoints"

    @property
    def folder(self) -> Path:
        return self.chkpt_root / NAME

    @property
    def study_url(self) -> str:
        return f"sqlite:///{self.root / 'study.db'}"

    @property
    def newest(self) -> Path:
        return hlt.find_checkpoints(self.folder)[-1]

    def fail(self, where: str) -> NoReturn:
        error = Injected(f"{where} failed on purpose")
        self.thrown.append(error)
        raise error

    def plant(self, name: str, data: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(data)
        self.planted.add(path)
        return path

    def plant_saved(self, name: str, content: object) -> Path:
        path = self.folder / name
        torch.save(content, path)
        self.planted.add(path)
        return path

    def newest_content(self) -> dict[str, Any]:
        """The newest checkpoint as torch saved it (not checked by helios)."""
        content: dict[str, Any] = torch.load(self.newest, weights_only=True)
        return content


def trainer(ws: Workspace, **overrides: Any) -> hlt.Trainer:
    """What the fit rows train with: resumes from the workspace's iteration 6."""
    options: dict[str, Any] = {
        "train_unit": "iteration",
        "total_steps": 12,
        "chkpt_frequency": 3,
        "valid_frequency": 4,
        "chkpt_root": ws.chkpt_root,
        "use_cpu": True,
        "random_seed": 3,
    }
    options.update(overrides)
    return hlt.Trainer(**options)


class FaultyPlugin(hlp.Plugin):
    """Claims every unique override and raises `Injected` in ``hook`` (late in the run,
    after it has written a checkpoint of its own, where the hook runs that often)."""

    def __init__(self, ws: Workspace, hook: str | None = None) -> None:
        super().__init__("faulty")
        self.ws = ws
        self.hook = hook
        self.cycle = 0
        for flag in hlp.OVERRIDE_FLAGS:
            setattr(self.unique_overrides, flag, True)

    def _hook(self, name: str, due: bool = True) -> None:
        if name == self.hook and due:
            self.ws.fail(f"plug-in hook {name}")

    def _late(self) -> bool:
        return self.trainer.state.global_iteration >= 10

    def setup(self) -> None:
        self._hook("setup")

    def on_training_start(self) -> None:
        self._hook("on_training_start")

    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        self._hook("process_training_batch", state.global_iteration >= 10)
        return batch

    def on_validation_start(self, validation_cycle: int, /) -> None:
        self.cycle = validation_cycle
        self._hook("on_validation_start", validation_cycle >= 3)

    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        self._hook("process_validation_batch", self.cycle >= 3)
        return batch

    def on_validation_end(self, validation_cycle: int, /) -> None:
        self._hook("on_validation_end", validation_cycle >= 3)

    def should_training_stop(self) -> bool:
        self._hook("should_training_stop", self._late())
        return False

    def on_training_end(self) -> None:
        self._hook("on_training_end")

    def on_testing_start(self) -> None:
        self._hook("on_testing_start")

    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        self._hook("process_testing_batch", step >= 1)
        return batch

    def on_testing_end(self) -> None:
        self._hook("on_testing_end")

    def state_dict(self) -> dict[str, Any]:
        self._hook("state_dict", self.trainer.state.global_iteration >= 12)
        return {"format": 1}

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None:
        self._hook("load_state_dict")


def cyclic_batch(samples: list[Any]) -> dict[str, Any]:
    batch: dict[str, Any] = {"x": torch.stack([s[0] for s in samples])}
    batch["self"] = batch
    return batch


class BadData(ClassifierData):
    """The helper data, broken as ``how`` says."""

    def __init__(self, ws: Workspace, how: str) -> None:
        super().__init__(80, 8)
        self.ws = ws
        self.how = how

    def prepare_data(self) -> None:
        if self.how == "prepare_data raises":
            self.ws.fail("DataModule.prepare_data")

    def train_dataloader(self) -> Any:
        if self.how == "no training data":
            return None
        if self.how == "a list, not a loader":
            return [torch.zeros(2)]
        if self.how == "empty":
            return DataLoader(make_dataset(0), batch_size=8)
        if self.how == "cyclic batches":
            return DataLoader(self.train_set, batch_size=8, collate_fn=cyclic_batch)
        return super().train_dataloader()

    def valid_dataloader(self) -> Any:
        return None if self.how == "no validation data" else super().valid_dataloader()

    def test_dataloader(self) -> Any:
        return None if self.how == "no test data" else super().test_dataloader()


def _run(
    ws: Workspace,
    phase: Callable[[hlt.Trainer, ClassifierModel, ClassifierData], bool],
    plugin: Any,
    model: Any,
    data: Any,
) -> bool:
    run = trainer(ws)
    if plugin is not None:
        run.register_plugin(plugin)
    return phase(
        run,
        model if model is not None else ClassifierModel(NAME),
        data if data is not None else ClassifierData(80, 8),
    )


def fit(ws: Workspace, *, plugin: Any = None, model: Any = None, data: Any = None) -> bool:
    return _run(ws, hlt.Trainer.fit, plugin, model, data)


def run_test(ws: Workspace, *, plugin: Any = None, model: Any = None, data: Any = None) -> bool:
    return _run(ws, hlt.Trainer.test, plugin, model, data)


# -- the table -------------------------------------------------------------------------


@attrs.frozen
class Row:
    entry: str
    bad: str
    call: Callable[[Workspace], object]
    error: type[BaseException]
    match: str
    #: The exception must be the very object the hook raised (`Workspace.thrown`).
    unchanged: bool = False
    prepare: Callable[[Workspace], object] | None = None
    after: Callable[[Workspace], list[str]] | None = None
    skip: str | None = None

    @property
    def id(self) -> str:
        return f"{self.entry} <- {self.bad}"
