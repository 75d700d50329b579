"""The bad-input matrix: the Optuna plug-in and the example's study."""

from __future__ import annotations

from pathlib import Path

import optuna

import helios.plugins.optuna as hlpo
import helios.trainer as hlt
from helios.examples import tune
from tests.faults.bad_input.parts import (
    STUDY,
    Row,
    Workspace,
    wrong,
)
from tests.faults.bad_input.runner import assert_refused, parametrize

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
        tune.study.open_study(options, storage)
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


@parametrize(OPTUNA_ROWS)
def test_optuna_refuses(row: Row, matrix_template: Path, tmp_path: Path) -> None:
    assert_refused(row, matrix_template, tmp_path)
