"""The bad-input matrix: every public entry point, fed what it must refuse.

Each `Row` names the entry point, the bad input, the exception type expected and a regex
its message must match (the problem, and where it helps, what to do). Every row runs in
a `Workspace` that already holds what a user would not want to lose: two checkpoints of
a real run (iterations 3 and 6, with a plug-in state) and an Optuna study in SQLite. After
the row, every file that was there is byte-identical, every checkpoint under a final
name loads, and no temporary file is left. Exceptions raised by a plug-in's or a model's
hook must leave ``fit`` / ``test`` as the very same object.

`run_matrix` runs the whole table for ``benchmarks/faults.py``.
"""

from __future__ import annotations

import collections
import dataclasses
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs
import optuna
import pytest
import torch
from torch.utils.data import DataLoader, IterableDataset

import helios.core as hlc
import helios.data as hld
import helios.model as hlm
import helios.plugins as hlp
import helios.plugins.optuna as hlpo
import helios.trainer as hlt
from helios.core import TrainingState
from helios.examples import tune
from tests.faults.campaign import CaseResult, Outcome, Tally, leftovers
from tests.trainer.helpers import ClassifierData, ClassifierModel, make_dataset

NAME = "net"
#: A row running longer than this has hung.
ROW_LIMIT = 60.0
STUDY = "existing"
HAS_CUDA = torch.cuda.is_available()


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


class WiderModel(ClassifierModel):
    """Another network under the same save name."""

    def setup(self, fast_init: bool = False) -> None:
        super().setup(fast_init)
        self.plain_net = torch.nn.Sequential(torch.nn.Linear(8, 5))
        self.net = self.plain_net
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1)


def _cyclic(samples: list[Any]) -> dict[str, Any]:
    batch: dict[str, Any] = {"x": torch.stack([s[0] for s in samples])}
    batch["self"] = batch
    return batch


class Stream(IterableDataset[int]):
    def __iter__(self) -> Iterator[int]:
        return iter(range(3))


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
            return DataLoader(self.train_set, batch_size=8, collate_fn=_cyclic)
        return super().train_dataloader()

    def valid_dataloader(self) -> Any:
        return None if self.how == "no validation data" else super().valid_dataloader()

    def test_dataloader(self) -> Any:
        return None if self.how == "no test data" else super().test_dataloader()


def fit(ws: Workspace, *, plugin: Any = None, model: Any = None, data: Any = None) -> bool:
    run = trainer(ws)
    if plugin is not None:
        run.register_plugin(plugin)
    return run.fit(
        model if model is not None else ClassifierModel(NAME),
        data if data is not None else ClassifierData(80, 8),
    )


def run_test(ws: Workspace, *, plugin: Any = None, model: Any = None, data: Any = None) -> bool:
    run = trainer(ws)
    if plugin is not None:
        run.register_plugin(plugin)
    return run.test(
        model if model is not None else ClassifierModel(NAME),
        data if data is not None else ClassifierData(80, 8),
    )


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


def _trainer_row(bad: str, match: str, skip: str | None = None, **kwargs: Any) -> Row:
    return Row("Trainer()", bad, lambda ws: hlt.Trainer(**kwargs), ValueError, match, skip=skip)


NO_CUDA = "CUDA is available here" if HAS_CUDA else None

TRAINER_ROWS = [
    _trainer_row(
        "train_unit='fortnight'", r"train_unit must be .*'fortnight'", train_unit="fortnight"
    ),
    _trainer_row("train_unit=3", r"train_unit must be a TrainingUnit or one of", train_unit=3),
    _trainer_row("total_steps=0", r"total_steps must be at least 1, got 0", total_steps=0),
    _trainer_row("total_steps=1.5", r"total_steps must be an int .*1\.5", total_steps=1.5),
    _trainer_row("total_steps='5'", r"total_steps must be a positive int", total_steps="5"),
    _trainer_row(
        "total_steps=inf without early stopping",
        r"total_steps=float\('inf'\) trains forever unless early_stop_cycles is set",
        total_steps=float("inf"),
    ),
    _trainer_row(
        "valid_frequency=0", r"valid_frequency must be a positive int", valid_frequency=0
    ),
    _trainer_row(
        "valid_frequency=1.5", r"valid_frequency must be a positive int", valid_frequency=1.5
    ),
    _trainer_row(
        "chkpt_frequency=-2",
        r"chkpt_frequency must be a positive int",
        chkpt_frequency=-2,
        chkpt_root="x",
    ),
    _trainer_row(
        "chkpt_frequency without chkpt_root",
        r"chkpt_frequency needs chkpt_root: where should checkpoints go",
        chkpt_frequency=2,
    ),
    _trainer_row(
        "print_frequency=0", r"print_frequency must be a positive int", print_frequency=0
    ),
    _trainer_row(
        "accumulation_steps=0", r"accumulation_steps must be a positive int", accumulation_steps=0
    ),
    _trainer_row(
        "accumulation_steps=True",
        r"accumulation_steps must be a positive int",
        accumulation_steps=True,
    ),
    _trainer_row(
        "early_stop_cycles=0", r"early_stop_cycles must be a positive int", early_stop_cycles=0
    ),
    _trainer_row(
        "use_cpu='yes'", r"use_cpu must be True, False or None, got 'yes'", use_cpu="yes"
    ),
    _trainer_row(
        "use_cpu=True and gpus",
        r"use_cpu=True and gpus were both given; choose one",
        use_cpu=True,
        gpus=[0],
    ),
    _trainer_row("gpus=[]", r"gpus must be a non-empty list of GPU ids >= 0", gpus=[]),
    _trainer_row(
        "gpus=[-1]", r"gpus must be a non-empty list of GPU ids >= 0, got \[-1\]", gpus=[-1]
    ),
    _trainer_row("gpus=[0, 0]", r"gpus lists an id twice", gpus=[0, 0]),
    _trainer_row("gpus=0", r"gpus must be a list of GPU ids, got 0", gpus=0),
    _trainer_row(
        "gpus=[0] without CUDA",
        r"CUDA is not available; pass use_cpu=True",
        skip=NO_CUDA,
        gpus=[0],
    ),
    _trainer_row(
        "use_cpu=False without CUDA",
        r"CUDA is not available; pass use_cpu=True",
        skip=NO_CUDA,
        use_cpu=False,
    ),
    _trainer_row(
        "cpu_processes=0", r"cpu_processes must be a positive int, got 0", cpu_processes=0
    ),
    _trainer_row(
        "cpu_processes=True", r"cpu_processes must be a positive int", cpu_processes=True
    ),
    _trainer_row("cpu_processes=2.0", r"cpu_processes must be a positive int", cpu_processes=2.0),
    _trainer_row(
        "cpu_processes=2 with use_cpu=False",
        r"cpu_processes > 1 needs use_cpu=True",
        cpu_processes=2,
        use_cpu=False,
    ),
    _trainer_row(
        "random_seed=-1", r"random_seed must be an int >= 0 or None, got -1", random_seed=-1
    ),
    _trainer_row("random_seed='1'", r"random_seed must be an int >= 0", random_seed="1"),
    _trainer_row("random_seed=True", r"random_seed must be an int >= 0", random_seed=True),
    _trainer_row(
        "enable_deterministic='yes'",
        r"enable_deterministic must be True or False",
        enable_deterministic="yes",
    ),
    _trainer_row(
        "enable_progress_bar=1",
        r"enable_progress_bar must be True or False",
        enable_progress_bar=1,
    ),
    _trainer_row(
        "enable_file_logging without log_root",
        r"enable_file_logging=True needs log_root: where should logs go",
        enable_file_logging=True,
    ),
    _trainer_row("chkpt_root=3", r"chkpt_root must be a folder path", chkpt_root=3),
    _trainer_row(
        "log_root=5", r"log_root must be a folder path", log_root=5, enable_file_logging=True
    ),
    _trainer_row(
        "train_exceptions=[42]",
        r"train_exceptions must hold exception classes, got 42",
        train_exceptions=[42],
    ),
    _trainer_row(
        "train_exceptions=ValueError (not a list)",
        r"train_exceptions must be a list of exception classes",
        train_exceptions=ValueError,
    ),
    _trainer_row(
        "test_exceptions=['x']",
        r"test_exceptions must hold exception classes",
        test_exceptions=["x"],
    ),
    _trainer_row(
        "collective_timeout=0", r"collective_timeout must be > 0 seconds", collective_timeout=0
    ),
    _trainer_row(
        "collective_timeout=nan",
        r"collective_timeout must be > 0 seconds",
        collective_timeout=float("nan"),
    ),
    _trainer_row(
        "collective_timeout=inf",
        r"collective_timeout must be .*finite",
        collective_timeout=float("inf"),
    ),
    _trainer_row(
        "collective_timeout='5'", r"collective_timeout must be > 0 seconds", collective_timeout="5"
    ),
    _trainer_row("run_name=3", r"run_name must be a string, got 3", run_name=3),
]


def _hook_row(hook: str, *, testing: bool = False) -> Row:
    run = run_test if testing else fit
    return Row(
        "Trainer.test" if testing else "Trainer.fit",
        f"plug-in raises in {hook}",
        lambda ws: run(ws, plugin=FaultyPlugin(ws, hook)),
        Injected,
        rf"plug-in hook {hook} failed on purpose",
        unchanged=True,
    )


def _model_row(hook: str, *, testing: bool = False) -> Row:
    run = run_test if testing else fit
    return Row(
        "Trainer.test" if testing else "Trainer.fit",
        f"model raises in {hook}",
        lambda ws: run(ws, model=FaultyModel(ws, hook)),
        Injected,
        rf"model hook {hook} failed on purpose",
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
        _hook_row(hook)
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
        _hook_row(hook, testing=True)
        for hook in ("setup", "on_testing_start", "process_testing_batch", "on_testing_end")
    ),
    *(_model_row(hook) for hook in ("setup", "train_step", "valid_step", "on_training_end")),
    _model_row("test_step", testing=True),
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


def _data_row(how: str, error: type[BaseException], match: str, *, testing: bool = False) -> Row:
    run = run_test if testing else fit
    return Row(
        "Trainer.test" if testing else "Trainer.fit",
        f"data module: {how}",
        lambda ws: run(ws, data=BadData(ws, how), model=ClassifierModel("fresh")),
        error,
        match,
    )


DATA_ROWS = [
    Row(
        "Trainer.fit",
        "model is not a Model",
        lambda ws: trainer(ws).fit(wrong(object()), ClassifierData()),
        TypeError,
        r"model must be a helios.model.Model, got object",
    ),
    Row(
        "Trainer.fit",
        "datamodule is not a DataModule",
        lambda ws: trainer(ws).fit(ClassifierModel(NAME), wrong([1, 2])),
        TypeError,
        r"datamodule must be a helios.data.DataModule, got list",
    ),
    Row(
        "Trainer.test",
        "model is a string",
        lambda ws: trainer(ws).test(wrong(NAME), ClassifierData()),
        TypeError,
        r"model must be a helios.model.Model, got str",
    ),
    _data_row(
        "no training data",
        ValueError,
        r"the data module returned no training data: train_dataloader\(\) gave None",
    ),
    _data_row(
        "a list, not a loader",
        TypeError,
        r"train_dataloader\(\) must return a torch DataLoader or None",
    ),
    _data_row(
        "no validation data",
        ValueError,
        r"valid_frequency is set but valid_dataloader\(\) returned None; return a validation "
        r"loader or drop valid_frequency",
    ),
    _data_row(
        "empty",
        ValueError,
        r"yielded no batches in a whole epoch .*Check the dataset size, batch_size and drop_last",
    ),
    _data_row(
        "no test data",
        ValueError,
        r"the data module returned no test data",
        testing=True,
    ),
    Row(
        "DataModule.create_dataloader",
        "an iterable dataset",
        lambda ws: hld.DataModule.create_dataloader(wrong(Stream())),
        TypeError,
        r"create_dataloader needs a map-style dataset with a length",
    ),
    Row(
        "ResumableSampler.shard",
        "rank 2 of 2",
        lambda ws: hld.ResumableSampler(10).shard(2, 2),
        ValueError,
        r"rank must be in \[0, 2\), got 2",
    ),
    Row(
        "ResumableSampler.set_start",
        "start=-1",
        lambda ws: hld.ResumableSampler(10).set_start(-1),
        ValueError,
        r"start must be >= 0, got -1",
    ),
    Row(
        "Model()",
        "save_name=''",
        lambda ws: hlm.Model(""),
        ValueError,
        r"save_name must be a non-empty string",
    ),
    Row(
        "Model()",
        "save_name=3",
        lambda ws: hlm.Model(wrong(3)),
        ValueError,
        r"save_name must be a non-empty string, got 3",
    ),
    Row(
        "Model.save_name",
        "set to ''",
        lambda ws: setattr(hlm.Model("x"), "save_name", ""),
        ValueError,
        r"save_name must be a non-empty string",
    ),
    Row(
        "Model.trainer",
        "read before fit",
        lambda ws: hlm.Model("x").trainer,
        RuntimeError,
        r"model 'x' has no trainer yet; it gets one when passed to Trainer.fit or Trainer.test",
    ),
    Row(
        "TrainingState",
        "assigned to",
        lambda ws: setattr(TrainingState(), "global_iteration", 3),
        AttributeError,
        r"can't set attribute",
    ),
]


# -- checkpoints -----------------------------------------------------------------------


def _truncated(ws: Workspace) -> bytes:
    data = ws.newest.read_bytes()
    return data[: len(data) // 2]


def _tail_zeroed(ws: Workspace) -> bytes:
    data = ws.newest.read_bytes()
    return data[:-64] + bytes(64)


class Payload:
    """An arbitrary pickled object: loading it could run code."""


def _with(ws: Workspace, **changes: Any) -> dict[str, Any]:
    content = ws.newest_content()
    content.update(changes)
    return content


def _load_row(bad: str, plant: Callable[[Workspace], Path], match: str) -> Row:
    def call(ws: Workspace) -> object:
        return hlt.load_checkpoint(ws.extra["path"])

    def prepare(ws: Workspace) -> None:
        ws.extra["path"] = plant(ws)

    return Row("load_checkpoint", bad, call, hlt.CheckpointError, match, prepare=prepare)


CORRUPT = r"is truncated or corrupt and cannot be read .*Delete it to resume from the previous"
FOREIGN = r"is not a helios checkpoint \(expected the keys"
UNSAFE = (
    r"is refused: it holds objects other than tensors and plain containers, which could run "
    r"code when loaded .*Only load files you trust"
)
NEXT = "epoch_0_iter_7.pth"  # newer than the workspace's newest: what fit resumes from


def _fit_row(
    bad: str, plant: Callable[[Workspace], Path], match: str, *, testing: bool = False
) -> Row:
    run = run_test if testing else fit
    return Row(
        "Trainer.test" if testing else "Trainer.fit",
        f"newest checkpoint {bad}",
        lambda ws: run(ws),
        hlt.CheckpointError,
        match,
        prepare=plant,
    )


CHECKPOINT_ROWS = [
    Row(
        "load_checkpoint",
        "a missing file, as str",
        lambda ws: hlt.load_checkpoint(str(ws.folder / "epoch_9_iter_99.pth")),
        hlt.CheckpointError,
        r"checkpoint \S+epoch_9_iter_99.pth does not exist",
    ),
    _load_row("truncated to half", lambda ws: ws.plant(NEXT, _truncated(ws)), CORRUPT),
    _load_row("empty (0 bytes)", lambda ws: ws.plant(NEXT, b""), CORRUPT),
    _load_row("garbage", lambda ws: ws.plant(NEXT, b"not a checkpoint at all" * 9), CORRUPT),
    _load_row("last 64 bytes zeroed", lambda ws: ws.plant(NEXT, _tail_zeroed(ws)), CORRUPT),
    _load_row(
        "a foreign torch file (a dict of weights)",
        lambda ws: ws.plant_saved(NEXT, {"weights": torch.ones(3)}),
        FOREIGN,
    ),
    _load_row(
        "a foreign torch file (a tensor)", lambda ws: ws.plant_saved(NEXT, torch.ones(3)), FOREIGN
    ),
    _load_row(
        "a module's state dict",
        lambda ws: ws.plant_saved(NEXT, torch.nn.Linear(2, 2).state_dict()),
        FOREIGN,
    ),
    _load_row(
        "unsafe: a pickled object",
        lambda ws: ws.plant_saved(NEXT, {"version": 1, "payload": Payload()}),
        UNSAFE,
    ),
    _load_row(
        "unsafe: a helios checkpoint carrying an object",
        lambda ws: ws.plant_saved(NEXT, _with(ws, model={"net": Payload()})),
        UNSAFE,
    ),
    _load_row(
        "format version 99",
        lambda ws: ws.plant_saved(NEXT, _with(ws, version=99)),
        r"has format version 99; this helios reads version 1",
    ),
    _load_row(
        "a negative iteration",
        lambda ws: ws.plant_saved(
            NEXT,
            _with(
                ws,
                training_state={**ws.newest_content()["training_state"], "global_iteration": -1},
            ),
        ),
        r"has a bad training state: training state field global_iteration must be an int >= 0",
    ),
    _load_row(
        "a training state that is a list",
        lambda ws: ws.plant_saved(NEXT, _with(ws, training_state=[1, 2])),
        r"has a bad training state: a training state must be a dict, got list",
    ),
    _fit_row("truncated", lambda ws: ws.plant(NEXT, _truncated(ws)), CORRUPT),
    _fit_row("unsafe", lambda ws: ws.plant_saved(NEXT, {"version": 1, "x": Payload()}), UNSAFE),
    _fit_row("foreign", lambda ws: ws.plant_saved(NEXT, {"weights": torch.ones(3)}), FOREIGN),
    _fit_row(
        "without RNG states",
        lambda ws: ws.plant_saved(NEXT, _with(ws, rng=[])),
        r"has no random-generator states",
    ),
    _fit_row("truncated", lambda ws: ws.plant(NEXT, _truncated(ws)), CORRUPT, testing=True),
    Row(
        "Trainer.fit",
        "a checkpoint of another model",
        lambda ws: fit(ws, model=WiderModel(NAME)),
        hlt.CheckpointError,
        r"checkpoint \S+epoch_0_iter_6.pth does not fit model 'net': .*Was it written by another "
        r"model\? Use another save_name or chkpt_root to start over",
    ),
    Row(
        "Trainer.test",
        "a checkpoint of another model",
        lambda ws: run_test(ws, model=WiderModel(NAME)),
        hlt.CheckpointError,
        r"does not fit model 'net'",
    ),
]


# -- batches and transforms ------------------------------------------------------------


def _cyclic_list() -> list[Any]:
    tree: list[Any] = [torch.zeros(2)]
    tree.append(tree)
    return tree


@dataclasses.dataclass
class Node:
    value: Any
    next: Any = None


def _cyclic_record() -> dict[str, Any]:
    node = Node(torch.ones(1))
    node.next = {"back": [node]}
    return {"head": node}


CYCLE = (
    r"the batch contains a reference cycle: %s.*break the cycle \(or treat that object as a leaf"
)

TREE_ROWS = [
    Row(
        "tree_map",
        "a list that contains itself",
        lambda ws: hlc.tree_map(lambda x: x, _cyclic_list()),
        hlc.TreeCycleError,
        CYCLE % r"batch\[1\] is batch",
    ),
    Row(
        "tree_map",
        "a dict that contains itself",
        lambda ws: hlc.tree_map(lambda x: x, _cyclic([(torch.zeros(1),)])),
        hlc.TreeCycleError,
        CYCLE % r"batch\['self'\] is batch",
    ),
    Row(
        "to_device('cpu')",
        "a dataclass cycle",
        lambda ws: hlc.to_device("cpu")(_cyclic_record()),
        hlc.TreeCycleError,
        CYCLE % r"batch\['head'\]\[1\]\['back'\]\[0\] is batch\['head'\]",
    ),
    Row(
        "cast(float64)",
        "a list that contains itself",
        lambda ws: hlc.cast(torch.float64)([_cyclic_list()]),
        hlc.TreeCycleError,
        CYCLE % r"batch\[0\]\[1\] is batch\[0\]",
    ),
    Row(
        "DevicePlugin.process_training_batch",
        "a cyclic batch",
        lambda ws: hlp.DevicePlugin("cpu").process_training_batch(
            _cyclic_record(), TrainingState()
        ),
        hlc.TreeCycleError,
        CYCLE % r"batch\['head'\]",
    ),
    Row(
        "Trainer.fit",
        "a loader of cyclic batches, DevicePlugin",
        lambda ws: fit(ws, plugin=hlp.DevicePlugin(), data=BadData(ws, "cyclic batches")),
        hlc.TreeCycleError,
        CYCLE % r"batch\['self'\] is batch",
    ),
    Row(
        "tree_map",
        "fn=3",
        lambda ws: hlc.tree_map(wrong(3), [1]),
        TypeError,
        r"'int' object is not callable",
    ),
    Row(
        "register_container",
        "cls=3",
        lambda ws: hlc.register_container(wrong(3), lambda x: ([], None), lambda a, c: None),
        TypeError,
        r"register_container expects a class, got 3",
    ),
    Row(
        "register_container",
        "flatten=None",
        lambda ws: hlc.register_container(Node, wrong(None), lambda a, c: None),
        TypeError,
        r"register_container expects callable flatten and unflatten functions",
    ),
    Row(
        "compose",
        "a non-callable",
        lambda ws: hlc.compose(wrong(1)),
        TypeError,
        r"compose expects callables, got 1",
    ),
    Row("take", "n=-1", lambda ws: hlc.take(-1), ValueError, r"take\(n\) expects n >= 0, got -1"),
    Row(
        "take",
        "n=1.5",
        lambda ws: hlc.take(wrong(1.5)),
        TypeError,
        r"take\(n\) expects an integer, got 1\.5",
    ),
    Row(
        "take",
        "n=True",
        lambda ws: hlc.take(True),
        TypeError,
        r"take\(n\) expects an integer, got True",
    ),
    Row(
        "select_keys",
        "a missing key",
        lambda ws: hlc.select_keys("z")({"x": 1}),
        KeyError,
        r"select_keys: the batch has no key\(s\) 'z'; its keys are \['x'\]",
    ),
    Row(
        "select_keys",
        "a list batch",
        lambda ws: hlc.select_keys("x")(wrong([1])),
        TypeError,
        r"select_keys works on mapping batches \(dicts\), got list",
    ),
    Row(
        "drop_keys",
        "a tuple batch",
        lambda ws: hlc.drop_keys("x")(wrong((1,))),
        TypeError,
        r"drop_keys works on mapping batches \(dicts\), got tuple",
    ),
    Row(
        "cast",
        "an integer dtype",
        lambda ws: hlc.cast(torch.int64),
        TypeError,
        r"cast expects a floating-point torch.dtype, got torch.int64",
    ),
    Row(
        "cast",
        "a string",
        lambda ws: hlc.cast(wrong("float64")),
        TypeError,
        r"cast expects a floating-point",
    ),
    Row(
        "to_device",
        "'nonsense'",
        lambda ws: hlc.to_device("nonsense"),
        RuntimeError,
        r"device type at start of device string: nonsense",
    ),
    Row(
        "TrainingUnit.parse",
        "'fortnight'",
        lambda ws: hlc.TrainingUnit.parse("fortnight"),
        ValueError,
        r"train_unit must be a TrainingUnit or one of \['epoch', 'iteration'\], got 'fortnight'",
    ),
    Row(
        "state_from_dict",
        "a missing field",
        lambda ws: hlc.state_from_dict({"global_iteration": 1}),
        ValueError,
        r"a training state needs exactly the fields",
    ),
    Row(
        "reduce_metrics",
        "op='median'",
        lambda ws: hlt.reduce_metrics({"a": 1.0}, "median"),
        ValueError,
        r"op must be one of \['max', 'mean', 'min', 'sum'\], got 'median'",
    ),
]


# -- plug-ins and the registry ---------------------------------------------------------


class NotAPlugin:
    plug_id = "nope"


class NoInit(hlp.Plugin):
    def __init__(self) -> None:  # forgets super().__init__(plug_id)
        self.ready = True


class WrongArity(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("arity")
        self.unique_overrides.training_batch = True

    def process_training_batch(self, batch: Any) -> Any:  # type: ignore[override]
        return batch


class DictOverrides(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("dict")
        self.unique_overrides = wrong({"training_batch": True})


class StringFlag(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("string")
        self.unique_overrides.training_batch = wrong("yes")


def _register_row(
    bad: str, make: Callable[[], object], error: type[BaseException], match: str
) -> Row:
    def call(ws: Workspace) -> None:
        run = hlt.Trainer(use_cpu=True)
        run.register_plugin(hlp.DevicePlugin("cpu"))
        ws.extra["trainer"] = run
        ws.extra["table"] = run.plugins
        run.register_plugin(wrong(make()))

    def after(ws: Workspace) -> list[str]:
        if ws.extra["trainer"].plugins is not ws.extra["table"]:
            return [f"the plug-in table changed: {ws.extra['trainer'].plugins!r}"]
        return []

    return Row("Trainer.register_plugin", bad, call, error, match, after=after)


def _registry_row(
    bad: str, call: Callable[[], object], error: type[BaseException], match: str
) -> Row:
    def run(ws: Workspace) -> object:
        ws.extra["names"] = hlp.PLUGIN_REGISTRY.names()
        return call()

    def after(ws: Workspace) -> list[str]:
        if hlp.PLUGIN_REGISTRY.names() != ws.extra["names"]:
            return [f"PLUGIN_REGISTRY changed: {hlp.PLUGIN_REGISTRY.names()}"]
        return []

    return Row("PLUGIN_REGISTRY", bad, run, error, match, after=after)


def _assign(mapping: object, key: str, value: object) -> None:
    wrong(mapping)[key] = value


def _trainer_with_device() -> hlt.Trainer:
    run = hlt.Trainer(use_cpu=True)
    run.register_plugin(hlp.DevicePlugin("cpu"))
    return run


PLUGIN_ROWS = [
    _register_row(
        "a duplicate id",
        lambda: hlp.DevicePlugin("cpu"),
        KeyError,
        r"a plug-in with id 'device' is already registered .*each id may appear once",
    ),
    _register_row(
        "an override conflict",
        lambda: hlp.BatchPlugin("prep", training=hlc.identity),
        ValueError,
        r"unique override 'training_batch' is claimed by both 'device' \(DevicePlugin\) and "
        r"'prep' \(BatchPlugin\).*Combine their work in one plug-in",
    ),
    _register_row(
        "object()",
        object,
        TypeError,
        r"object is not a plug-in: it lacks plug_id, unique_overrides, .*Subclass "
        r"helios.plugins.Plugin",
    ),
    _register_row(
        "a class with a plug_id only",
        NotAPlugin,
        TypeError,
        r"'nope' \(NotAPlugin\) is not a plug-in: it lacks unique_overrides",
    ),
    _register_row(
        "the class, not an instance",
        lambda: hlp.DevicePlugin,
        TypeError,
        r"DevicePlugin is a class, not a plug-in: register an instance of it",
    ),
    _register_row(
        "a subclass that skipped super().__init__",
        NoInit,
        TypeError,
        r"NoInit is not a plug-in: it lacks plug_id, unique_overrides.*call "
        r"super\(\).__init__\(plug_id\)",
    ),
    _register_row(
        "a batch hook with the wrong arity",
        WrongArity,
        TypeError,
        r"'arity' \(WrongArity\) has hooks with the wrong signature: "
        r"process_training_batch\(batch\b.* cannot be called as "
        r"process_training_batch\(self, batch, state\)",
    ),
    _register_row(
        "unique_overrides is a dict",
        DictOverrides,
        TypeError,
        r"unique_overrides is \{'training_batch': True\}; it must be a "
        r"helios.plugins.UniquePluginOverrides",
    ),
    _register_row(
        "an override flag that is a string",
        StringFlag,
        TypeError,
        r"unique_overrides.training_batch is 'yes'; it must be True or False",
    ),
    Row(
        "Plugin()",
        "plug_id=''",
        lambda ws: wrong(hlp.Plugin)(""),
        ValueError,
        r"a plug-in id must be a non-empty string",
    ),
    Row(
        "BatchPlugin()",
        "training=3",
        lambda ws: hlp.BatchPlugin("p", training=wrong(3)),
        TypeError,
        r"BatchPlugin training= must be callable, got 3",
    ),
    Row(
        "CUDAPlugin()",
        "no CUDA",
        lambda ws: hlp.CUDAPlugin(),
        RuntimeError,
        r"CUDAPlugin needs CUDA, which is not available here .*Use helios.plugins.DevicePlugin",
        skip=NO_CUDA,
    ),
    Row(
        "Trainer.plugins",
        "item assignment",
        lambda ws: _assign(hlt.Trainer(use_cpu=True).plugins, "x", hlp.DevicePlugin()),
        TypeError,
        r"'PluginTable' object does not support item assignment",
    ),
    Row(
        "Trainer.plugins",
        "replaced by a dict",
        lambda ws: setattr(hlt.Trainer(use_cpu=True), "plugins", {}),
        TypeError,
        r"trainer.plugins is read-only: add plug-ins with trainer.register_plugin\(plugin\)",
    ),
    Row(
        "Trainer.plugins",
        "an unknown id",
        lambda ws: _trainer_with_device().plugins["nope"],
        KeyError,
        r"no plug-in with id 'nope' is registered; registered ids: \['device'\]",
    ),
    Row(
        "Trainer.plugin",
        "the wrong class",
        lambda ws: _trainer_with_device().plugin("device", hlp.BatchPlugin),
        TypeError,
        r"plug-in 'device' is a DevicePlugin, not a BatchPlugin",
    ),
    Row(
        "Plugin.trainer",
        "read before registration",
        lambda ws: wrong(hlp.Plugin)("x").trainer,
        RuntimeError,
        r"plug-in 'x' has no trainer yet.*register the plug-in first",
    ),
    _registry_row(
        "an unknown name",
        lambda: hlp.create_plugin("NoSuchPlugin"),
        KeyError,
        r"no plug-in named 'NoSuchPlugin' is registered; known names: \[.*'DevicePlugin'",
    ),
    _registry_row(
        "a name taken",
        lambda: hlp.PLUGIN_REGISTRY.register(hlp.DevicePlugin),
        KeyError,
        r"a plug-in named 'DevicePlugin' is already registered .*pick another class name",
    ),
    _registry_row(
        "a class that is not a plug-in",
        lambda: hlp.PLUGIN_REGISTRY.register(int),
        TypeError,
        r"int is not a plug-in class: it lacks configure_trainer",
    ),
    _registry_row(
        "a function",
        lambda: hlp.PLUGIN_REGISTRY.register(lambda: None),
        TypeError,
        r"only plug-in classes can be registered",
    ),
    _registry_row(
        "a number",
        lambda: hlp.PLUGIN_REGISTRY.register(wrong(3)),
        TypeError,
        r"cannot register 3 as a plug-in: it is not callable",
    ),
    Row(
        "Registry.get",
        "an unknown name",
        lambda ws: hlc.Registry[object]("shape").get("circle"),
        KeyError,
        r"no shape named 'circle' is registered; known names: \[\]",
    ),
]


# -- Optuna ----------------------------------------------------------------------------


def _trial() -> optuna.Trial:
    return optuna.create_study().ask()


def _in_memory_distributed(ws: Workspace) -> None:
    run = hlt.Trainer(use_cpu=True, cpu_processes=2)
    ws.extra["trainer"] = run
    hlpo.OptunaPlugin(_trial(), "accuracy").configure_trainer(run)


def _trainer_untouched(ws: Workspace) -> list[str]:
    run: hlt.Trainer = ws.extra["trainer"]
    problems = []
    if len(run.plugins):
        problems.append(f"the refused plug-in was registered anyway: {run.plugins!r}")
    if run.train_exceptions:
        problems.append(f"train_exceptions changed: {run.train_exceptions}")
    return problems


def _reuse_study(ws: Workspace) -> None:
    options = tune.Options(workdir=ws.root, storage=ws.study_url, study_name=STUDY)
    storage = tune.make_storage(options)
    try:
        tune.open_study(options, storage)
    finally:
        tune.close_storage(storage)


def _study_untouched(ws: Workspace) -> list[str]:
    study = optuna.load_study(study_name=STUDY, storage=ws.study_url)
    values = [trial.value for trial in study.get_trials()]
    if study.direction != optuna.study.StudyDirection.MINIMIZE or values != [0.5]:
        return [f"the study changed: {study.direction}, {values}"]
    return []


def _other_params(ws: Workspace) -> None:
    study = optuna.create_study()
    trial = study.ask()
    trial.suggest_float("lr", 0.01, 0.1)
    hlpo.OptunaPlugin(trial, "accuracy").load_state_dict({"lr": 5.0})


def _attached_late(ws: Workspace) -> None:
    plugin = hlpo.OptunaPlugin(_trial(), "accuracy")
    plugin.is_distributed = True
    plugin.setup()


OPTUNA_ROWS = [
    Row(
        "OptunaPlugin()",
        "trial is a string",
        lambda ws: hlpo.OptunaPlugin(wrong("trial"), "accuracy"),
        TypeError,
        r"OptunaPlugin needs an optuna.Trial, got str",
    ),
    Row(
        "OptunaPlugin()",
        "metric_name=''",
        lambda ws: hlpo.OptunaPlugin(_trial(), ""),
        ValueError,
        r"metric_name must be a non-empty string",
    ),
    Row(
        "OptunaPlugin.suggest",
        "'loguniform'",
        lambda ws: hlpo.OptunaPlugin(_trial(), "a").suggest("loguniform", "lr", low=0.1, high=1),
        KeyError,
        r"unknown suggestion type 'loguniform'; use one of \['categorical', 'float', 'int'\]",
    ),
    Row(
        "OptunaPlugin.configure_trainer",
        "distributed, in-memory study",
        _in_memory_distributed,
        ValueError,
        r"distributed tuning needs a storage that every process shares.*Create the study with a "
        r"persistent storage",
        after=_trainer_untouched,
    ),
    Row(
        "OptunaPlugin.setup",
        "distributed, never configure_trainer'd",
        _attached_late,
        ValueError,
        r"must be attached with plugin.configure_trainer\(trainer\) before fit",
    ),
    Row(
        "OptunaPlugin.load_state_dict",
        "a checkpoint of a trial with other parameters",
        _other_params,
        ValueError,
        r"the checkpoint was written by a trial with other parameters \(lr: checkpoint 5\.0, "
        r"trial .*\).*Give this trial its own save name",
    ),
    Row(
        "tune.open_study",
        "an existing study that minimises",
        _reuse_study,
        ValueError,
        r"study 'existing' in sqlite:\S+ already exists and minimizes its objective, but this "
        r"example maximises accuracy: pick another --study-name or --storage",
        after=_study_untouched,
    ),
]

ROWS: list[Row] = [
    *TRAINER_ROWS,
    *DATA_ROWS,
    *HOOK_ROWS,
    *CHECKPOINT_ROWS,
    *TREE_ROWS,
    *PLUGIN_ROWS,
    *OPTUNA_ROWS,
]


# -- running a row ---------------------------------------------------------------------


def make_template(root: Path) -> Path:
    """A real run's checkpoints (iterations 3 and 6, with the "faulty" plug-in's state)
    and a SQLite study with one finished trial, as the rows' starting point."""
    ws = Workspace(root)
    run = trainer(ws, total_steps=6)
    run.register_plugin(FaultyPlugin(ws))
    run.fit(ClassifierModel(NAME), ClassifierData(80, 8))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.create_study(study_name=STUDY, storage=ws.study_url, direction="minimize")
        trial = study.ask()
        trial.suggest_float("lr", 0.01, 0.1)
        study.tell(trial, 0.5)
    finally:
        optuna.logging.set_verbosity(verbosity)
    return root


def _files(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


class RowHung(BaseException):
    """Raised by the SIGALRM deadline of a row."""


def _on_alarm(signum: int, frame: object) -> None:
    raise RowHung


def _raise_within(ws: Workspace, row: Row) -> BaseException | None:
    deadline = threading.current_thread() is threading.main_thread()
    if deadline:
        previous = signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, ROW_LIMIT)
    try:
        row.call(ws)
    except BaseException as error:
        return error
    finally:
        if deadline:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return None


def check_row(row: Row, ws: Workspace) -> CaseResult:
    """Run ``row`` in ``ws``: the exception and its message, and what is on disk after."""
    if row.prepare is not None:
        row.prepare(ws)
    before = _files(ws.root)
    raised = _raise_within(ws, row)
    if isinstance(raised, RowHung):
        return CaseResult(row.id, (f"no answer within {ROW_LIMIT:.0f} s",), hung=True)
    ws.extra["raised"] = raised
    problems: list[str] = []
    damaged: list[str] = []
    if raised is None:
        problems.append(f"nothing was raised; expected {row.error.__name__}")
    elif not isinstance(raised, row.error):
        problems.append(f"raised {type(raised).__name__}: {raised}; expected {row.error.__name__}")
    elif not re.search(row.match, str(raised), re.DOTALL):
        problems.append(f"the message {str(raised)!r} does not match {row.match!r}")
    if row.unchanged and (not ws.thrown or raised is not ws.thrown[-1]):
        problems.append("the hook's exception did not leave unchanged (replaced or wrapped)")
    after = _files(ws.root)
    changed = sorted(
        str(path.relative_to(ws.root)) for path in before if after.get(path) != before[path]
    )
    if changed:
        damaged.append(f"files already written changed: {changed}")
    for path in hlt.find_checkpoints(ws.folder):
        if path not in ws.planted:
            try:
                hlt.load_checkpoint(path)
            except hlt.CheckpointError as error:
                damaged.append(f"{path.name} cannot be loaded any more: {error}")
    if leftovers(ws.folder):
        problems.append(f"temporary files remain: {leftovers(ws.folder)}")
    if row.after is not None:
        problems.extend(row.after(ws))
    return CaseResult(row.id, (*problems, *damaged), lost=bool(damaged))


def workspace(template: Path, where: Path) -> Workspace:
    """A copy of ``template`` (see `make_template`) for one row."""
    shutil.copytree(template, where)
    return Workspace(where)


def run_matrix(workdir: Path) -> Outcome:
    """Every row of the table (rows that do not apply here are left out)."""
    tally = Tally("bad-input matrix")
    template = make_template(workdir / "template")
    for index, row in enumerate(ROWS):
        if row.skip is not None:
            tally.add(CaseResult(row.id, skipped=row.skip))
            continue
        tally.add(check_row(row, workspace(template, workdir / f"row-{index:03d}")))
    return tally.outcome()


# -- the test --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def matrix_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_template(tmp_path_factory.mktemp("matrix") / "template")


@pytest.mark.parametrize(
    "row",
    [
        pytest.param(
            row, id=row.id, marks=pytest.mark.skipif(row.skip is not None, reason=str(row.skip))
        )
        for row in ROWS
    ],
)
def test_bad_input(row: Row, matrix_template: Path, tmp_path: Path) -> None:
    case = check_row(row, workspace(matrix_template, tmp_path / "ws"))
    assert case.problems == ()


def test_the_matrix_covers_every_public_entry_point() -> None:
    entries = {row.entry.split(".")[0].split("(")[0] for row in ROWS}
    assert entries >= {
        "Trainer",
        "load_checkpoint",
        "tree_map",
        "to_device",
        "cast",
        "DevicePlugin",
        "PLUGIN_REGISTRY",
        "Registry",
        "OptunaPlugin",
        "Model",
        "DataModule",
        "tune",
    }
    assert len({row.id for row in ROWS}) == len(ROWS), "row ids must be unique"
    counts = collections.Counter(row.error for row in ROWS)
    assert counts[Injected] >= 15
