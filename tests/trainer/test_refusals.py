"""Settings under which something could never happen are refused before training starts,
with a `ValueError` naming the setting; nothing is changed by the refusal."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
import torch

import helios.plugins as hlp
import helios.plugins.optuna as hlpo
import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel

optuna.logging.set_verbosity(optuna.logging.WARNING)


class Recording(ClassifierModel):
    def __init__(self) -> None:
        super().__init__("recording")
        self.steps = 0

    def train_step(self, batch: object, state: hlt.TrainingState) -> None:
        self.steps += 1
        super().train_step(batch, state)


def _study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}")


def test_optuna_plugin_on_a_trainer_that_never_validates(tmp_path: Path) -> None:
    trainer = hlt.Trainer(total_steps=2, use_cpu=True)
    plugin = hlpo.OptunaPlugin(_study(tmp_path).ask(), "accuracy")
    with pytest.raises(ValueError, match=r"valid_frequency=None.*never report a value or prune"):
        plugin.configure_trainer(trainer)
    assert "optuna" not in trainer.plugins
    assert optuna.TrialPruned not in trainer.train_exceptions


def test_optuna_plugin_registered_directly_is_refused_before_any_step(tmp_path: Path) -> None:
    trainer = hlt.Trainer(total_steps=2, use_cpu=True)
    trainer.register_plugin(hlpo.OptunaPlugin(_study(tmp_path).ask(), "accuracy"))
    model = Recording()
    with pytest.raises(ValueError, match="valid_frequency"):
        trainer.fit(model, ClassifierData())
    assert model.steps == 0


def test_early_stopping_needs_a_model_that_reports_improvement() -> None:
    trainer = hlt.Trainer(
        total_steps=float("inf"), early_stop_cycles=2, valid_frequency=1, use_cpu=True
    )
    model = Recording()
    with pytest.raises(ValueError, match=r"early_stop_cycles=2.*have_metrics_improved"):
        trainer.fit(model, ClassifierData())
    assert model.steps == 0


def test_cpu_processes_with_gpus_is_refused() -> None:
    with pytest.raises(ValueError, match=r"cpu_processes=2 and gpus=\[0\]"):
        hlt.Trainer(cpu_processes=2, gpus=[0])


def test_cpu_processes_with_use_cpu_none_on_a_cpu_machine_runs_on_cpus() -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: use_cpu=None picks the GPU")
    trainer = hlt.Trainer(cpu_processes=2)
    assert (trainer.use_cpu, trainer.world_size) == (True, 2)


def test_a_batch_plugin_without_transforms_is_refused() -> None:
    with pytest.raises(ValueError, match=r"BatchPlugin 'empty' was given no transform"):
        hlp.BatchPlugin("empty")
