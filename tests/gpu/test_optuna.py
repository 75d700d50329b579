"""The Optuna plug-in in trials that train on the GPU, with a study in SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

import helios.plugins as hlp
import helios.trainer as hlt
from tests.gpu.models import PinnedData, RecordingClassifier

pytest.importorskip(
    "optuna",
    reason="Optuna is not installed here; scripts/gpu-wheels fetches wheels for it, which "
    "scripts/gpu-check installs",
)

import optuna  # after the check above, so that its absence is a skip, not an error

import helios.plugins.optuna as hlpo


class Scored(RecordingClassifier):
    """Reports the validation accuracy as ``metrics["accuracy"]``."""

    def __init__(self) -> None:
        super().__init__("scored")
        self.validation_devices: set[torch.device] = set()

    def valid_step(self, batch: Any, step: int) -> None:
        self.validation_devices.add(batch[0].device)
        super().valid_step(batch, step)


def trial_trainer(root: Path) -> hlt.Trainer:
    return hlt.Trainer(
        gpus=[0],
        train_unit="iteration",
        total_steps=12,
        valid_frequency=3,
        chkpt_frequency=6,
        chkpt_root=root,
        random_seed=0,
    )


def test_a_gpu_trial_reports_every_validation_and_checkpoints(tmp_path: Path) -> None:
    study = optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'study.db'}", study_name="gpu", direction="maximize"
    )

    def objective(trial: optuna.Trial) -> float:
        trainer = trial_trainer(tmp_path / "chkpts")
        hlp.CUDAPlugin(prefetch=True).configure_trainer(trainer)
        plugin = hlpo.OptunaPlugin(trial, "accuracy")
        plugin.configure_trainer(trainer)
        model = Scored()
        model.lr = plugin.suggest("float", "lr", low=0.05, high=0.2)
        plugin.configure_model(model)
        trainer.fit(model, PinnedData())
        assert model.devices == model.validation_devices == {torch.device("cuda", 0)}
        return float(model.metrics["accuracy"])

    study.optimize(objective, n_trials=2)
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for trial in trials:
        assert sorted(trial.intermediate_values) == [1, 2, 3, 4]
        assert trial.value == trial.intermediate_values[4]
        folder = tmp_path / "chkpts" / f"scored_trial-{trial.number}"
        assert sorted(p.name for p in folder.glob("*.pth")) == [
            "epoch_0_iter_12.pth",
            "epoch_0_iter_6.pth",
        ]


class PruneAll(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_a_pruned_gpu_trial_leaves_fit_with_trial_pruned(tmp_path: Path) -> None:
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", pruner=PruneAll())
    trial = study.ask()
    trainer = trial_trainer(tmp_path)
    hlp.CUDAPlugin().configure_trainer(trainer)
    plugin = hlpo.OptunaPlugin(trial, "accuracy")
    plugin.configure_trainer(trainer)
    model = Scored()
    with pytest.raises(optuna.TrialPruned):
        trainer.fit(model, PinnedData())
    assert trainer.state.global_iteration == 3
    assert list(study.get_trials()[0].intermediate_values) == [1]
