"""The logging plug-ins (`TensorBoardPlugin`, `CSVLoggerPlugin`) on real runs: the event
files are read back with TensorBoard's own reader, every scalar and its step checked;
resuming after a real SIGKILL; Optuna trials; two gloo ranks."""

from __future__ import annotations

import csv
import sys
import warnings
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback
from tensorboard.backend.event_processing.event_accumulator import (
    STORE_EVERYTHING_SIZE_GUIDANCE,
    EventAccumulator,
)
from tensorboard.plugins.hparams import metadata

import helios.plugins as hlp
import helios.trainer as hlt
from benchmarks.campaign.processes import run_forked, sigkill_self
from helios.core import TrainingState, logging
from helios.plugins.optuna import OptunaPlugin
from tests.trainer.helpers import ClassifierData, ClassifierModel

#: The model's "accuracy" at validation cycles 1, 2, ...
SCORES = [0.25, 0.5, 0.75, 0.625, 0.875, 0.375]


class Logged(ClassifierModel):
    """Its running loss is the number of batches so far and its accuracy follows `SCORES`,
    so every value says where it was written; it also writes a scalar of its own."""

    def __init__(self, save_name: str = "logged", *, kill_at: int | None = None) -> None:
        super().__init__(save_name)
        self.kill_at = kill_at
        self.loss = 0.0

    def train_step(self, batch: Any, state: TrainingState) -> None:
        if state.global_iteration == self.kill_at:
            sigkill_self()
        super().train_step(batch, state)
        self.loss = float(state.global_iteration)
        writer = logging.get_tensorboard_writer()
        assert writer is not None
        writer.add_scalar("model/batch", float(state.global_iteration), state.global_iteration)

    def running_loss(self) -> float | None:
        return self.loss

    def on_validation_end(self, validation_cycle: int) -> None:
        # Something that is no number, which the loggers skip.
        self.metrics = {"accuracy": SCORES[validation_cycle - 1], "name": "text"}  # type: ignore[dict-item]


def make_trainer(root: Path, steps: int = 12, **options: Any) -> hlt.Trainer:
    settings: dict[str, Any] = {
        "train_unit": "iteration",
        "total_steps": steps,
        "valid_frequency": 3,
        "chkpt_frequency": 3,
        "print_frequency": 2,
        "use_cpu": True,
        "chkpt_root": root / "checkpoints",
        "random_seed": 4,
    }
    settings.update(options)
    return hlt.Trainer(**settings)


def with_loggers(trainer: hlt.Trainer, root: Path, **hparams: Any) -> hlt.Trainer:
    hlp.TensorBoardPlugin(root / "runs", hparams=hparams or None).configure_trainer(trainer)
    hlp.CSVLoggerPlugin(root / "logs", hparams=hparams or None).configure_trainer(trainer)
    return trainer


def scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of the run folder, by tag, as TensorBoard reads it."""
    events = EventAccumulator(str(run), size_guidance=STORE_EVERYTHING_SIZE_GUIDANCE).Reload()
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def hparams_of(run: Path) -> dict[str, Any]:
    """The hyper-parameters of the run's HParams record (one record, or an error)."""
    events = EventAccumulator(str(run)).Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)
    info = metadata.parse_session_start_info_plugin_data(content[metadata.SESSION_START_INFO_TAG])
    return {
        name: value.number_value if value.HasField("number_value") else value.string_value
        for name, value in info.hparams.items()
    }


def csv_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as stream:
        return list(csv.reader(stream))


def expected_scalars(steps: int, print_every: int = 2, accumulation: int = 1) -> dict[str, Any]:
    cycles = steps // 3
    return {
        # The running loss (batches so far) at the optimiser step it was logged at.
        "train/loss": [
            (s, float(s * accumulation)) for s in range(print_every, steps + 1, print_every)
        ],
        "valid/accuracy": [(c, SCORES[c - 1]) for c in range(1, cycles + 1)],
        "final/accuracy": [(steps, SCORES[cycles - 1])],
        "model/batch": [(b, float(b)) for b in range(1, steps * accumulation + 1)],
    }


def test_every_scalar_is_written_once_at_its_step(tmp_path: Path) -> None:
    trainer = with_loggers(make_trainer(tmp_path), tmp_path, lr=0.1, optimizer="sgd")
    trainer.fit(Logged(), ClassifierData(size=64))
    assert scalars(tmp_path / "runs" / "logged") == expected_scalars(12)
    assert hparams_of(tmp_path / "runs" / "logged") == {"lr": 0.1, "optimizer": "sgd"}
    assert csv_rows(tmp_path / "logs" / "logged.csv") == [
        ["tag", "step", "value"],
        ["train/loss", "2", "2.0"],
        ["valid/accuracy", "1", "0.25"],
        ["train/loss", "4", "4.0"],
        ["train/loss", "6", "6.0"],  # logged before validating, at the same step
        ["valid/accuracy", "2", "0.5"],
        ["train/loss", "8", "8.0"],
        ["valid/accuracy", "3", "0.75"],
        ["train/loss", "10", "10.0"],
        ["train/loss", "12", "12.0"],
        ["valid/accuracy", "4", "0.625"],
        ["hparam/lr", "12", "0.1"],
        ["hparam/optimizer", "12", "sgd"],
        ["final/accuracy", "12", "0.625"],
    ]
    assert logging.get_tensorboard_writer() is None  # only while fit runs


def test_the_step_is_the_optimiser_step_with_accumulation(tmp_path: Path) -> None:
    trainer = with_loggers(make_trainer(tmp_path, accumulation_steps=2), tmp_path)
    trainer.fit(Logged(), ClassifierData(size=64))
    assert scalars(tmp_path / "runs" / "logged") == expected_scalars(12, accumulation=2)


def _fit(root: str, steps: int, kill_at: int | None) -> None:
    """In a forked child: train with both loggers (to be killed at batch ``kill_at``)."""
    trainer = with_loggers(make_trainer(Path(root), steps), Path(root), lr=0.1)
    trainer.fit(Logged(kill_at=kill_at), ClassifierData(size=64))


@pytest.mark.faults
def test_a_run_killed_and_resumed_writes_each_step_once(tmp_path: Path) -> None:
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    assert run_forked(_fit, str(whole), 12, None) == 0
    # Killed at batch 11: the newest checkpoint is at 9, the logs had reached 10.
    assert run_forked(_fit, str(killed), 12, 11) == -9
    before = scalars(killed / "runs" / "logged")
    assert before["train/loss"][-1] == (10, 10.0)
    assert run_forked(_fit, str(killed), 12, None) == 0
    assert scalars(killed / "runs" / "logged") == scalars(whole / "runs" / "logged")
    assert scalars(killed / "runs" / "logged") == expected_scalars(12)
    assert csv_rows(killed / "logs" / "logged.csv") == csv_rows(whole / "logs" / "logged.csv")
    # Started again when finished, it trains nothing and leaves the logs as they are.
    assert run_forked(_fit, str(killed), 12, None) == 0
    assert scalars(killed / "runs" / "logged") == expected_scalars(12)
    assert csv_rows(killed / "logs" / "logged.csv") == csv_rows(whole / "logs" / "logged.csv")
    # Training further later appends to the same curves; the first end's record goes.
    assert run_forked(_fit, str(killed), 18, None) == 0
    assert scalars(killed / "runs" / "logged") == expected_scalars(18)
    assert hparams_of(killed / "runs" / "logged") == {"lr": 0.1}
    rows = csv_rows(killed / "logs" / "logged.csv")
    assert [row[0] for row in rows].count("final/accuracy") == 1
    assert len({tuple(row[:2]) for row in rows}) == len(rows)  # no (tag, step) twice


def test_a_fresh_start_replaces_the_logs_of_an_earlier_one(tmp_path: Path) -> None:
    with_loggers(make_trainer(tmp_path, chkpt_frequency=None), tmp_path).fit(
        Logged(), ClassifierData(size=64)
    )
    with_loggers(make_trainer(tmp_path, 6, chkpt_frequency=None), tmp_path).fit(
        Logged(), ClassifierData(size=64)
    )
    assert scalars(tmp_path / "runs" / "logged") == expected_scalars(6)
    assert len(csv_rows(tmp_path / "logs" / "logged.csv")) == 1 + 3 + 2 + 1


def test_a_checkpoint_without_a_record_is_appended_to(tmp_path: Path) -> None:
    make_trainer(tmp_path, 6).fit(
        Logged.__new__(Logged) if False else _Quiet(), ClassifierData(size=64)
    )
    with_loggers(make_trainer(tmp_path, 12), tmp_path).fit(Logged(), ClassifierData(size=64))
    assert scalars(tmp_path / "runs" / "logged")["train/loss"] == [
        (s, float(s)) for s in (8, 10, 12)
    ]


class _Quiet(Logged):
    """`Logged` without the TensorBoard writer (trained with no logging plug-in)."""

    def train_step(self, batch: Any, state: TrainingState) -> None:
        ClassifierModel.train_step(self, batch, state)
        self.loss = float(state.global_iteration)


class PruneAtOnce(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


def test_a_pruned_trial_is_recorded_with_its_parameters(tmp_path: Path) -> None:
    study = optuna.create_study(direction="maximize", pruner=PruneAtOnce())
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(0.01, 0.1)})
    trainer = make_trainer(tmp_path)
    optuna_plugin = OptunaPlugin(trial, "accuracy")
    optuna_plugin.configure_trainer(trainer)
    with_loggers(trainer, tmp_path)  # after the Optuna plug-in, which ends a pruned trial
    model = Logged()
    optuna_plugin.configure_model(model)
    with pytest.raises(optuna.TrialPruned):
        trainer.fit(model, ClassifierData(size=64))
    run = tmp_path / "runs" / "logged_trial-0"
    assert hparams_of(run) == {"lr": trial.params["lr"]}
    assert scalars(run)["final/accuracy"] == [(3, SCORES[0])]
    assert csv_rows(tmp_path / "logs" / "logged_trial-0.csv")[-2:] == [
        ["hparam/lr", "3", str(trial.params["lr"])],
        ["final/accuracy", "3", str(SCORES[0])],
    ]


class FailAt(Logged):
    def train_step(self, batch: Any, state: TrainingState) -> None:
        if state.global_iteration == 8:
            raise RuntimeError("the machine went away")
        super().train_step(batch, state)


def test_a_retried_trial_continues_its_own_run(tmp_path: Path) -> None:
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    study = optuna.create_study(storage=storage, direction="maximize")
    first = study.ask({"lr": optuna.distributions.FloatDistribution(0.01, 0.1)})
    for attempt, model in ((first, FailAt()), (None, Logged())):
        trial = attempt or study.ask()
        trainer = make_trainer(tmp_path)
        plugin = OptunaPlugin(trial, "accuracy")
        plugin.configure_trainer(trainer)
        with_loggers(trainer, tmp_path)
        plugin.configure_model(model)
        if attempt is None:
            assert trial.number == 1
            trainer.fit(model, ClassifierData(size=64))
            study.tell(trial, model.metrics["accuracy"])
            continue
        with pytest.raises(RuntimeError, match="went away"):
            trainer.fit(model, ClassifierData(size=64))
        study.tell(trial, state=optuna.trial.TrialState.FAIL)
        frozen = study.get_trials()[trial.number]
        with warnings.catch_warnings():  # Optuna marks the callback experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            RetryHeartbeatStaleTrialCallback(max_retry=1)(study, frozen)
    storage.engine.dispose()
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["logged_trial-0"]
    assert scalars(tmp_path / "runs" / "logged_trial-0") == expected_scalars(12)
    assert hparams_of(tmp_path / "runs" / "logged_trial-0") == {"lr": first.params["lr"]}


@pytest.mark.distributed
def test_only_rank_0_writes(tmp_path: Path) -> None:
    trainer = make_trainer(tmp_path, cpu_processes=2, collective_timeout=60)
    with_loggers(trainer, tmp_path, lr=0.1)
    hlp.RetentionPlugin(2).configure_trainer(trainer)
    assert trainer.fit(Logged(), ClassifierData(size=64)) is True
    run = tmp_path / "runs" / "logged"
    assert len(list(run.iterdir())) == 1  # one event file: one process wrote
    assert scalars(run) == expected_scalars(12)
    rows = csv_rows(tmp_path / "logs" / "logged.csv")
    assert len({tuple(row[:2]) for row in rows}) == len(rows) == 1 + 6 + 4 + 2
    kept = hlt.find_checkpoints(tmp_path / "checkpoints" / "logged")
    assert [hlt.parse_checkpoint_name(p.name)[1] for p in kept] == [9, 12]  # type: ignore[index]


def test_the_registry_creates_them_and_tensorboard_is_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = hlp.create_plugin("TensorBoardPlugin", tmp_path)
    table = hlp.create_plugin("CSVLoggerPlugin", tmp_path, hparams={"a": 1})
    assert isinstance(board, hlp.TensorBoardPlugin)
    assert isinstance(table, hlp.CSVLoggerPlugin)
    assert (board.root, table.hparams) == (tmp_path, {"a": 1})
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'helios-train\[tensorboard\]'"):
        hlp.TensorBoardPlugin()
