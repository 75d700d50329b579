"""The Optuna plug-in against real studies on SQLite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback

import helios.plugins as hlp
import helios.plugins.optuna as hlpo
import helios.trainer as hlt
from tests.plugins.optuna_helpers import AlwaysPrune, ManualReporter, MetricModel
from tests.trainer.helpers import ClassifierData

optuna.logging.set_verbosity(optuna.logging.WARNING)


def sqlite_study(tmp_path: Path, pruner: optuna.pruners.BasePruner | None = None) -> optuna.Study:
    return optuna.create_study(
        storage=f"sqlite:///{tmp_path / 'study.db'}",
        study_name="tests",
        pruner=pruner or optuna.pruners.NopPruner(),
        direction="maximize",
    )


def trainer(**kwargs: object) -> hlt.Trainer:
    options: dict[str, object] = {
        "train_unit": "iteration",
        "total_steps": 8,
        "valid_frequency": 2,
        "use_cpu": True,
        "random_seed": 1,
    }
    options.update(kwargs)
    return hlt.Trainer(**options)  # type: ignore[arg-type]


def test_reports_model_metric_after_every_validation_cycle(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path)
    trial = study.ask()
    plugin = hlpo.OptunaPlugin(trial, "score")
    run = trainer()
    plugin.configure_trainer(run)
    model = MetricModel()
    plugin.configure_model(model)
    assert run.fit(model, ClassifierData()) is True
    frozen = study.get_trials()[0]
    assert frozen.intermediate_values == {1: 10.0, 2: 20.0, 3: 30.0, 4: 40.0}
    assert model.save_name == f"metric_trial-{trial.number}"
    assert optuna.TrialPruned in run.train_exceptions
    assert run.plugins[hlpo.OptunaPlugin.plugin_id] is plugin


def test_nothing_is_reported_when_the_metric_is_missing(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path, AlwaysPrune())
    plugin = hlpo.OptunaPlugin(study.ask(), "accuracy_that_is_never_set")
    run = trainer()
    plugin.configure_trainer(run)
    model = MetricModel()
    assert run.fit(model, ClassifierData()) is True
    assert study.get_trials()[0].intermediate_values == {}
    plugin.check_pruned()  # not pruned: nothing to raise


def test_pruned_single_process_trial_ends_model_then_raises(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path, AlwaysPrune())
    plugin = hlpo.OptunaPlugin(study.ask(), "score")
    run = trainer()
    plugin.configure_trainer(run)
    model = MetricModel()
    with pytest.raises(optuna.TrialPruned, match="validation cycle 1"):
        run.fit(model, ClassifierData())
    assert model.ended == 1
    assert run.state.current_iteration == 2  # stopped at the first validation
    assert study.get_trials()[0].intermediate_values == {1: 10.0}
    with pytest.raises(optuna.TrialPruned):
        plugin.check_pruned()


@pytest.mark.distributed
def test_pruned_distributed_trial_returns_then_check_pruned_raises(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path, AlwaysPrune())
    trial = study.ask()
    plugin = hlpo.OptunaPlugin(trial, "score")
    run = trainer(cpu_processes=2, total_steps=20, collective_timeout=60)
    plugin.configure_trainer(run)
    model = MetricModel(every_rank=True)
    assert run.fit(model, ClassifierData()) is True
    assert run.queue is not None
    ends = sorted((run.queue.get(timeout=30) for _ in range(2)), key=lambda r: r["rank"])
    assert [r["global_iteration"] for r in ends] == [2, 2]
    with pytest.raises(optuna.TrialPruned):
        plugin.check_pruned()
    assert study.get_trials()[0].intermediate_values == {1: 10.0}
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)


@pytest.mark.distributed
def test_a_model_reporting_by_hand_on_every_rank_reports_rank_0s_values(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path)
    trial = study.ask()
    plugin = hlpo.OptunaPlugin(trial, "score")
    run = trainer(cpu_processes=2, collective_timeout=60)
    plugin.configure_trainer(run)
    assert run.fit(ManualReporter(), ClassifierData()) is True
    # Rank 1 reported 11, 21, ... too; a storage keeps the last value written for a step.
    assert study.get_trials()[0].intermediate_values == {1: 10.0, 2: 20.0, 3: 30.0, 4: 40.0}


def test_reporting_by_hand_and_automatically_reports_once(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path)
    plugin = hlpo.OptunaPlugin(study.ask(), "score")
    run = trainer()
    plugin.configure_trainer(run)
    run.fit(ManualReporter(), ClassifierData())  # a second report would warn (an error here)
    assert study.get_trials()[0].intermediate_values == {1: 10.0, 2: 20.0, 3: 30.0, 4: 40.0}


def test_distributed_tuning_refuses_in_memory_storage() -> None:
    study = optuna.create_study()
    plugin = hlpo.OptunaPlugin(study.ask(), "score")
    with pytest.raises(ValueError, match="persistent storage"):
        plugin.configure_trainer(trainer(cpu_processes=2))


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_retried_trial_keeps_the_original_number_in_the_save_name(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path)
    first = study.ask({"lr": optuna.distributions.FloatDistribution(0.01, 0.1)})
    study.tell(first, state=optuna.trial.TrialState.FAIL)
    # What the storage's heartbeat does for a trial whose worker died.
    RetryHeartbeatStaleTrialCallback(max_retry=2)(study, study.get_trials()[0])
    retried = study.ask()
    assert retried.number != first.number
    assert retried.params == first.params
    plugin = hlpo.OptunaPlugin(retried, "score")
    model = MetricModel("net")
    plugin.configure_model(model)
    assert model.save_name == f"net_trial-{first.number}"


def test_state_dict_is_the_params_and_mismatch_is_refused(tmp_path: Path) -> None:
    study = sqlite_study(tmp_path)
    trial = study.ask()
    plugin = hlpo.OptunaPlugin(trial, "score")
    assert plugin.suggest("float", "lr", low=0.1, high=0.1) == 0.1
    assert plugin.suggest("int", "width", low=4, high=4) == 4
    assert plugin.suggest("categorical", "act", choices=["relu"]) == "relu"
    assert plugin.state_dict() == {"lr": 0.1, "width": 4, "act": "relu"}
    plugin.load_state_dict({"lr": 0.1})
    with pytest.raises(ValueError, match="other parameters"):
        plugin.load_state_dict({"lr": 0.5})
    with pytest.raises(KeyError, match="categorical"):
        plugin.suggest("uniform", "old", low=0, high=1)


def test_trial_property_and_registry() -> None:
    trial = optuna.create_study().ask()
    plugin = hlpo.OptunaPlugin(trial, "score")
    assert plugin.trial is trial
    assert "OptunaPlugin" in hlp.PLUGIN_REGISTRY
    created = hlp.create_plugin("OptunaPlugin", trial, "score")
    assert isinstance(created, hlpo.OptunaPlugin)
    with pytest.raises(ValueError, match="metric_name"):
        hlpo.OptunaPlugin(trial, "")
    with pytest.raises(TypeError, match=r"optuna\.Trial"):
        hlpo.OptunaPlugin("not a trial", "score")  # type: ignore[arg-type]


def test_importing_helios_does_not_import_optuna() -> None:
    code = "import sys, helios, helios.plugins, helios.trainer; print('optuna' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"
