"""The trainer shell: arguments, exceptions, checkpoints, testing, logs."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState
from tests.trainer.helpers import ClassifierData, ClassifierModel, IntData, RecordingModel


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"train_unit": "fortnight"}, "train_unit"),
        ({"total_steps": 0}, "total_steps"),
        ({"total_steps": 1.5}, "total_steps"),
        ({"total_steps": math.inf}, "early_stop_cycles"),
        ({"valid_frequency": 0}, "valid_frequency"),
        ({"chkpt_frequency": -2, "chkpt_root": "x"}, "chkpt_frequency"),
        ({"chkpt_frequency": 2}, "chkpt_root"),
        ({"print_frequency": 0}, "print_frequency"),
        ({"accumulation_steps": 0}, "accumulation_steps"),
        ({"use_cpu": True, "gpus": [0]}, "use_cpu"),
        ({"use_cpu": False}, "CUDA"),
        ({"gpus": [0]}, "CUDA"),
        ({"enable_file_logging": True}, "log_root"),
        ({"random_seed": -1}, "random_seed"),
        ({"cpu_processes": 0}, "cpu_processes"),
        ({"enable_progress_bar": "yes"}, "enable_progress_bar"),
        ({"train_exceptions": [42]}, "train_exceptions"),
        ({"collective_timeout": 0}, "collective_timeout"),
        ({"run_name": 3}, "run_name"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_them(
    kwargs: dict[str, Any], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        hlt.Trainer(**kwargs)


def test_fit_returns_true_and_trains() -> None:
    model = ClassifierModel()
    trainer = hlt.Trainer(
        train_unit="epoch", total_steps=3, valid_frequency=1, use_cpu=True, random_seed=3
    )
    assert trainer.fit(model, ClassifierData()) is True
    assert trainer.state.global_epoch == 3
    assert trainer.state.validation_cycles == 3
    assert trainer.state.global_iteration == 3 * 12
    assert 0.0 <= model.metrics["accuracy"] <= 1.0


def test_state_is_immutable() -> None:
    state = TrainingState()
    with pytest.raises(AttributeError):
        state.global_iteration = 3  # type: ignore[misc]


class Boom(Exception):
    pass


class ExplodingModel(RecordingModel):
    def train_step(self, batch: Any, state: TrainingState) -> None:
        raise Boom("exploded on purpose")


def test_registered_exception_propagates_unlogged(caplog: pytest.LogCaptureFixture) -> None:
    trainer = hlt.Trainer(use_cpu=True, train_exceptions=[Boom])
    with caplog.at_level(logging.ERROR, logger="helios"), pytest.raises(Boom, match="purpose"):
        trainer.fit(ExplodingModel([]), IntData(3))
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_other_exception_is_logged_and_reraised(caplog: pytest.LogCaptureFixture) -> None:
    trainer = hlt.Trainer(use_cpu=True)
    with caplog.at_level(logging.ERROR, logger="helios"), pytest.raises(Boom):
        trainer.fit(ExplodingModel([]), IntData(3))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is Boom


def test_train_exceptions_list_can_grow_after_construction() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    trainer.train_exceptions.append(Boom)
    with pytest.raises(Boom):
        trainer.fit(ExplodingModel([]), IntData(3))


def test_no_training_data_is_a_clear_error() -> None:
    class Empty(IntData):
        def train_dataloader(self) -> Any:
            return None

    with pytest.raises(ValueError, match="no training data"):
        hlt.Trainer(use_cpu=True).fit(RecordingModel([]), Empty(2))


def test_empty_loader_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no batches"):
        hlt.Trainer(use_cpu=True, total_steps=2).fit(RecordingModel([]), IntData(0))


def test_checkpoints_are_written_every_chkpt_frequency(tmp_path: Path) -> None:
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=20,
        chkpt_frequency=5,
        chkpt_root=tmp_path,
        use_cpu=True,
    )
    trainer.fit(ClassifierModel("net"), ClassifierData())
    names = [p.name for p in hlt.find_checkpoints(tmp_path / "net")]
    assert names == [
        "epoch_0_iter_5.pth",
        "epoch_0_iter_10.pth",
        "epoch_1_iter_15.pth",
        "epoch_1_iter_20.pth",
    ]
    content = hlt.load_checkpoint(tmp_path / "net" / names[-1])
    assert content["training_state"].global_iteration == 20
    assert set(content) >= {"version", "model", "plugins", "rng", "data"}
    assert not list((tmp_path / "net").glob("*.tmp"))


def test_plugin_state_is_saved_under_its_id(tmp_path: Path) -> None:
    class Counting(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("counting")
            self.starts = 0

        def on_training_start(self) -> None:
            self.starts += 1

        def state_dict(self) -> dict[str, Any]:
            return {"starts": self.starts}

        def load_state_dict(self, state_dict: Any, /) -> None:
            self.starts = state_dict["starts"]

    trainer = hlt.Trainer(total_steps=2, chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True)
    plugin = Counting()
    trainer.register_plugin(plugin)
    trainer.fit(ClassifierModel("p"), ClassifierData())
    content = hlt.load_checkpoint(hlt.find_checkpoints(tmp_path / "p")[-1])
    assert content["plugins"] == {"counting": {"starts": 1}}

    # A new run resumes the plug-in's state from the checkpoint.
    again = hlt.Trainer(total_steps=3, chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True)
    fresh = Counting()
    again.register_plugin(fresh)
    again.fit(ClassifierModel("p"), ClassifierData())
    assert fresh.starts == 2


def test_resume_in_process_matches_uninterrupted(tmp_path: Path) -> None:
    def run(root: Path, steps: int) -> dict[str, torch.Tensor]:
        model = ClassifierModel("m")
        trainer = hlt.Trainer(
            train_unit="iteration",
            total_steps=steps,
            chkpt_frequency=5,
            chkpt_root=root,
            use_cpu=True,
            random_seed=11,
            enable_deterministic=True,
        )
        trainer.fit(model, ClassifierData(size=60))
        return {k: v.clone() for k, v in model.net.state_dict().items()}

    straight = run(tmp_path / "a", 23)
    run(tmp_path / "b", 10)  # stops mid-epoch (epoch length 8)
    resumed = run(tmp_path / "b", 23)
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_test_loads_newest_checkpoint_or_calls_load_for_testing(tmp_path: Path) -> None:
    class Tracking(ClassifierModel):
        loaded_for_testing = False

        def load_for_testing(self) -> None:
            self.loaded_for_testing = True

    fresh = Tracking("t")
    assert hlt.Trainer(use_cpu=True, chkpt_root=tmp_path).test(fresh, ClassifierData())
    assert fresh.loaded_for_testing

    trained = ClassifierModel("t")
    trainer = hlt.Trainer(total_steps=1, chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True)
    trainer.fit(trained, ClassifierData())
    tester = Tracking("t")
    assert hlt.Trainer(use_cpu=True, chkpt_root=tmp_path).test(tester, ClassifierData())
    assert not tester.loaded_for_testing
    for key, value in trained.net.state_dict().items():
        assert torch.equal(value, tester.net.state_dict()[key])


def test_unsafe_checkpoint_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "u"
    folder.mkdir()
    torch.save({"version": 1, "payload": Boom("pickled object")}, folder / "epoch_1_iter_1.pth")
    trainer = hlt.Trainer(total_steps=2, chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True)
    with pytest.raises(hlt.CheckpointError, match="refused"):
        trainer.fit(ClassifierModel("u"), ClassifierData())


def test_corrupt_checkpoint_is_reported_and_left_alone(tmp_path: Path) -> None:
    folder = tmp_path / "c"
    folder.mkdir()
    path = folder / "epoch_1_iter_1.pth"
    path.write_bytes(b"not a checkpoint at all")
    trainer = hlt.Trainer(total_steps=2, chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True)
    with pytest.raises(hlt.CheckpointError, match="corrupt"):
        trainer.fit(ClassifierModel("c"), ClassifierData())
    assert path.read_bytes() == b"not a checkpoint at all"


def test_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    trainer = hlt.Trainer(total_steps=1, chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True)
    trainer.fit(ClassifierModel("shared"), ClassifierData())

    class Wider(ClassifierModel):
        def setup(self, fast_init: bool = False) -> None:
            super().setup(fast_init)
            self.net = torch.nn.Sequential(torch.nn.Linear(8, 5))
            self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1)

    again = hlt.Trainer(total_steps=2, chkpt_frequency=1, chkpt_root=tmp_path, use_cpu=True)
    with pytest.raises(hlt.CheckpointError, match="does not fit"):
        again.fit(Wider("shared"), ClassifierData())


def test_file_logging_writes_progress_lines(tmp_path: Path) -> None:
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=6,
        print_frequency=2,
        use_cpu=True,
        enable_file_logging=True,
        log_root=tmp_path,
        run_name="logged",
    )
    trainer.fit(ClassifierModel(), ClassifierData())
    lines = (tmp_path / "logged.log").read_text().splitlines()
    progress = [line for line in lines if "iteration" in line and "loss" in line]
    assert len(progress) == 3


def test_progress_bars_run(capsys: pytest.CaptureFixture[str]) -> None:
    trainer = hlt.Trainer(
        train_unit="epoch",
        total_steps=2,
        valid_frequency=1,
        use_cpu=True,
        enable_progress_bar=True,
    )
    trainer.fit(ClassifierModel(), ClassifierData())
    trainer.test(ClassifierModel(), ClassifierData())
    err = capsys.readouterr().err
    assert "epochs" in err
    assert "validation" in err
    assert "testing" in err


def test_plugin_table_cannot_be_replaced() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    with pytest.raises(TypeError, match="read-only"):
        trainer.plugins = hlp.PluginTable()  # type: ignore[assignment]
    with pytest.raises(TypeError):
        trainer.plugins["x"] = hlp.DevicePlugin()  # type: ignore[index]
    assert len(trainer.plugins) == 0
