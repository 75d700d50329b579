"""The optional hooks (`helios.plugins.ObserverHooks`): when they run, who gets them, and
how registration checks them."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import torch

import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState
from helios.plugins._plugin import OPTIONAL_HOOK_PARAMETERS, is_default_hook
from tests.trainer.helpers import ClassifierData, ClassifierModel


class Watcher(hlp.Plugin):
    """Records its optional hooks, and what the model's metrics held at each."""

    def __init__(self, calls: list[tuple[Any, ...]], plug_id: str = "watcher") -> None:
        super().__init__(plug_id)
        self.calls = calls

    def on_training_log(self, state: TrainingState, /) -> None:
        self.calls.append(("log", state.current_iteration))

    def on_validation_end(self, validation_cycle: int, /) -> None:
        model = self.trainer.model
        assert model is not None
        self.calls.append(("validation_end", validation_cycle, dict(model.metrics)))

    def on_validation_metrics(self, validation_cycle: int, /) -> None:
        model = self.trainer.model
        assert model is not None
        self.calls.append(("metrics", validation_cycle, dict(model.metrics)))

    def on_checkpoint_saved(self, path: Path, state: TrainingState, /) -> None:
        assert path.is_file()
        assert path.name == hlt.checkpoint_name(state)
        self.calls.append(("saved", path.name))

    def teardown(self) -> None:
        self.calls.append(("teardown",))


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


def test_each_optional_hook_runs_where_it_says(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    run = trainer(tmp_path)
    Watcher(calls).configure_trainer(run)
    run.fit(CycleModel("watched"), ClassifierData(size=48))
    assert calls == [
        ("saved", "epoch_0_iter_2.pth"),
        ("validation_end", 1, {}),  # before the model's on_validation_end ...
        ("metrics", 1, {"cycle": 1}),  # ... and after it
        ("log", 4),
        ("saved", "epoch_0_iter_4.pth"),
        ("validation_end", 2, {"cycle": 1}),
        ("metrics", 2, {"cycle": 2}),
        ("saved", "epoch_0_iter_6.pth"),
        ("teardown",),
    ]


def test_validate_and_test_call_teardown_but_no_training_watchers(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    run = trainer(tmp_path)
    Watcher(calls).configure_trainer(run)
    run.fit(CycleModel("watched"), ClassifierData(size=48))
    calls.clear()
    run.validate(CycleModel("watched"), ClassifierData(size=48))
    assert calls == [("validation_end", 2, {}), ("teardown",)]
    calls.clear()
    run.test(CycleModel("watched"), ClassifierData(size=48))
    assert calls == [("teardown",)]


class Failing(ClassifierModel):
    def train_step(self, batch: Any, state: TrainingState) -> None:
        raise RuntimeError("the model failed")


def test_teardown_runs_after_a_failure_in_every_plug_in_in_order(tmp_path: Path) -> None:
    calls: list[tuple[Any, ...]] = []
    run = trainer(tmp_path)
    Watcher(calls, "first").configure_trainer(run)
    Watcher(calls, "second").configure_trainer(run)
    with pytest.raises(RuntimeError, match="the model failed"):
        run.fit(Failing("failing"), ClassifierData(size=48))
    assert calls == [("teardown",), ("teardown",)]


def test_the_base_class_defaults_are_not_dispatched(tmp_path: Path) -> None:
    for hook in OPTIONAL_HOOK_PARAMETERS:
        assert is_default_hook(getattr(hlp.Plugin("p"), hook))
        assert not is_default_hook(getattr(Watcher([]), hook))
    plain = trainer(tmp_path)
    hlp.Plugin("plain").configure_trainer(plain)
    assert "plain  Plugin" in plain.describe()
    assert plain.describe().splitlines()[1].endswith("-")  # watches nothing


class StructuralWatcher:
    """A structural plug-in with the full protocol and one optional hook."""

    trainer: hlt.Trainer

    def __init__(self) -> None:
        self.unique_overrides = hlp.UniquePluginOverrides()
        self.device = torch.device("cpu")
        self.rank = 0
        self.is_distributed = False
        self.map_loc: hlp.MapLocation = "cpu"
        self.logged: list[int] = []

    @property
    def plug_id(self) -> str:
        return "structural"

    def on_training_log(self, state: TrainingState, /) -> None:
        self.logged.append(state.current_iteration)

    # The rest of the protocol: no-ops.
    def configure_trainer(self, trainer: hlt.Trainer, /) -> None: ...
    def configure_model(self, model: Any, /) -> None: ...
    def setup(self) -> None: ...
    def on_training_start(self) -> None: ...
    def on_training_end(self) -> None: ...
    def on_validation_start(self, validation_cycle: int, /) -> None: ...
    def on_validation_end(self, validation_cycle: int, /) -> None: ...
    def on_testing_start(self) -> None: ...
    def on_testing_end(self) -> None: ...
    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        return batch

    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        return batch

    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        return batch

    def should_training_stop(self) -> bool:
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: Any, /) -> None: ...


def test_a_structural_plug_in_gets_the_optional_hooks_it_has(tmp_path: Path) -> None:
    watcher = StructuralWatcher()
    run = trainer(tmp_path, print_frequency=2)
    run.register_plugin(watcher)
    run.fit(ClassifierModel("structural"), ClassifierData(size=48))
    assert watcher.logged == [2, 4, 6]


class WrongArity(hlp.Plugin):
    def on_checkpoint_saved(self, path: Path) -> None:  # type: ignore[override]
        return None


class Misspelt(hlp.Plugin):
    def on_checkpoint_save(self, path: Path, state: TrainingState) -> None:
        return None


def test_registration_checks_the_optional_hooks_a_plug_in_has() -> None:
    run = hlt.Trainer(use_cpu=True)
    with pytest.raises(TypeError, match=r"on_checkpoint_saved\(self, path, state\)"):
        run.register_plugin(WrongArity("wrong"))
    assert len(run.plugins) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.register_plugin(Misspelt("misspelt"))
    assert [str(w.message) for w in caught] == [
        "plug-in 'misspelt' (Misspelt): on_checkpoint_save is not a hook and is never "
        "called; did you mean on_checkpoint_saved?"
    ]
