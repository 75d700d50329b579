"""Run watchers (`helios.plugins.RunWatcher`): what a plug-in gives `Trainer.watch` in its
``setup`` is told of the run, where the plug-in protocol has no hook."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState
from tests.trainer.helpers import ClassifierData, ClassifierModel


class Watching(hlp.Plugin):
    """Records what its watcher is told, and what the model's metrics held each time."""

    def __init__(self, calls: list[tuple[Any, ...]], plug_id: str = "watching") -> None:
        super().__init__(plug_id)
        self.calls = calls

    def setup(self) -> None:
        watcher = hlp.RunWatcher(
            on_log=self._logged,
            on_metrics=self._metrics,
            on_checkpoint=self._saved,
            on_end=lambda: self.calls.append(("end",)),
        )
        self.trainer.watch(self.plug_id, watcher)

    def _logged(self, state: TrainingState) -> None:
        self.calls.append(("log", state.current_iteration))

    def on_validation_end(self, validation_cycle: int, /) -> None:
        model = self.trainer.model
        assert model is not None
        self.calls.append(("validation_end", validation_cycle, dict(model.metrics)))

    def _metrics(self, validation_cycle: int) -> None:
        model = self.trainer.model
        assert model is not None
        self.calls.append(("metrics", validation_cycle, dict(model.metrics)))

    def _saved(self, path: Path, state: TrainingState) -> None:
        assert path.is_file()
        assert path.name == hlt.checkpoint_name(state)
        self.calls.append(("saved", path.name))


class CycleModel(ClassifierModel):
    """Its metric is the validation cycle, so each record shows which cycle filled it."""

    def on_validation_end(self, validation_cycle: int) -> None:
        self.metrics["cycle"] = validation_cycle


def trainer(tmp_path: Path, **options: Any) -> hlt.Trainer:
    settings: dict[str, Any] = {
        "train_unit": "iteration",
        "total_steps": 6,
        "valid_frequency": 3,
        "chkpt_frequency": 2,
        "print_frequency": 4,
        "use_cpu": True,
        "chkpt_root": tmp_path,
    }
    settings.update(options)
    return hlt.Trainer(**settings)


def test_each_callback_runs_where_it_says(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    run = trainer(tmp_path)
    Watching(calls).configure_trainer(run)
    run.fit(CycleModel("watched"), ClassifierData(size=48))
    assert calls == [
        ("saved", "epoch_0_iter_2.pth"),
        ("validation_end", 1, {}),  # the plug-in's hook: before the model's ...
        ("metrics", 1, {"cycle": 1}),  # ... the watcher: after it
        ("log", 4),
        ("saved", "epoch_0_iter_4.pth"),
        ("validation_end", 2, {"cycle": 1}),
        ("metrics", 2, {"cycle": 2}),
        ("saved", "epoch_0_iter_6.pth"),
        ("end",),
    ]


def test_validate_and_test_end_the_watchers_but_tell_no_training(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    run = trainer(tmp_path)
    Watching(calls).configure_trainer(run)
    run.fit(CycleModel("watched"), ClassifierData(size=48))
    calls.clear()
    run.validate(CycleModel("watched"), ClassifierData(size=48))
    assert calls == [("validation_end", 2, {}), ("end",)]
    calls.clear()
    run.test(CycleModel("watched"), ClassifierData(size=48))
    assert calls == [("end",)]


class Failing(ClassifierModel):
    def train_step(self, batch: Any, state: TrainingState) -> None:
        raise RuntimeError("the model failed")


def test_every_watcher_ends_after_a_failure_in_order(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    run = trainer(tmp_path)
    Watching(calls, "first").configure_trainer(run)
    Watching(calls, "second").configure_trainer(run)
    with pytest.raises(RuntimeError, match="the model failed"):
        run.fit(Failing("failing"), ClassifierData(size=48))
    assert calls == [("end",), ("end",)]


def test_a_watcher_is_replaced_or_removed_by_its_key(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    run = trainer(tmp_path, valid_frequency=None, chkpt_frequency=None, chkpt_root=None)
    run.watch("mine", hlp.RunWatcher(on_end=lambda: calls.append(("first",))))
    run.watch("mine", hlp.RunWatcher(on_end=lambda: calls.append(("second",))))
    run.fit(ClassifierModel("plain"), ClassifierData(size=48))
    assert calls == [("second",)]
    run.watch("mine", None)
    run.fit(ClassifierModel("plain"), ClassifierData(size=48))
    assert calls == [("second",)]


def test_a_plugin_that_watches_still_has_only_the_protocols_hooks() -> None:
    # Watching is asked for, never guessed from method names: these are not hooks.
    assert not hasattr(hlp.Plugin("p"), "on_training_log")
    assert "watching  Watching" in _described(Watching([]))


def _described(plugin: hlp.Plugin) -> str:
    run = hlt.Trainer(use_cpu=True)
    plugin.configure_trainer(run)
    return run.describe()
