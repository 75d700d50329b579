"""The Helios 1.4.1 tutorials, ported (``docs/examples/``), run as a user runs them and
compute what they log and report.

Each runs in its own interpreter from a temporary folder (its data, checkpoints, logs and
SQLite study go there), with warnings as errors. The metric each logs or reports is then
checked against the network of its last checkpoint, evaluated here on the whole
validation set.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present

import helios.trainer as hlt

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"
CLASSIFIER = EXAMPLES / "classifier_tutorial.py"
OPTUNA = EXAMPLES / "optuna_tutorial.py"

#: Warnings are errors, as in the rest of the suite; torch's advice against more loader
#: workers than CPUs (the tutorials ask for two) depends on the machine, not the code.
PYTHON = [sys.executable, "-W", "error", "-W", "ignore:This DataLoader will create:UserWarning"]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # One thread per process: the runs are tiny, and the CI machine has two cores.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("OPTUNA_STORAGE", None)
    done = subprocess.run(
        [*PYTHON, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _load(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _accuracy(net: torch.nn.Module, dataset: Any) -> tuple[int, int]:
    """(correct, total) of ``net`` on every sample of ``dataset``."""
    images, labels = dataset.tensors
    net.eval()
    with torch.no_grad():
        predicted = net(images).argmax(dim=1)
    return int((predicted == labels).sum()), int(labels.numel())


def _net_of(checkpoint: Path, net: torch.nn.Module) -> torch.nn.Module:
    weights = dict(hlt.load_checkpoint(checkpoint)["model"]["net"])
    consume_prefix_in_state_dict_if_present(weights, "module.")  # saved from DDP
    net.load_state_dict(weights)
    return net


@pytest.mark.slow
def test_classifier_tutorial_trains_logs_and_resumes(tmp_path: Path) -> None:
    first = _run([str(CLASSIFIER)], tmp_path)
    folder = tmp_path / "chkpt" / "classifier"
    # 32 synthetic samples in batches of 4: 8 optimiser steps an epoch, two epochs.
    assert sorted(p.name for p in folder.iterdir()) == [
        "epoch_1_iter_8.pth",
        "epoch_2_iter_16.pth",
    ]
    log = (tmp_path / "logs" / "cifar10.log").read_text()
    # print_frequency=10: the tenth step, in the second epoch (global_epoch counts
    # completed epochs, and the tutorial prints it + 1).
    assert "[2,    10] loss: " in log
    tutorial = _load(CLASSIFIER)
    correct, total = _accuracy(
        _net_of(folder / "epoch_2_iter_16.pth", tutorial.Net()),
        tutorial.synthetic_cifar10(train=False),
    )
    assert total == 16
    assert f"[Validation 2] accuracy: {100 * correct // total}" in log
    assert "[Validation 1] accuracy: " in log
    assert "[Validation 0]" not in log
    assert "[Validation 2]" in first.stderr  # on the console too
    # Its own TensorBoard calls, unchanged, wrote into the plug-in's run folder.
    board = _scalars(tmp_path / "runs" / "classifier")
    assert board["val"][-1] == (2, float(100 * correct // total))
    assert [step for step, _ in board["val"]] == [1, 2]
    assert [step for step, _ in board["train/loss"]] == [10]
    assert board["hparam/accuracy"] == [(0, float(100 * correct // total))]

    second = _run([str(CLASSIFIER)], tmp_path)
    newest = folder / "epoch_2_iter_16.pth"
    assert f"helios: resuming classifier from checkpoint {newest}" in second.stderr
    assert _scalars(tmp_path / "runs" / "classifier") == board  # finished: left alone
    assert sorted(p.name for p in folder.iterdir()) == [
        "epoch_1_iter_8.pth",
        "epoch_2_iter_16.pth",
    ]


def _scalars(run: Path) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run)).Reload()
    assert events.Tags()["graph"] or "classifier_trial" in run.name  # add_graph: classifier
    return {
        tag: [(event.step, event.value) for event in events.Scalars(tag)]
        for tag in events.Tags()["scalars"]
    }


def _check_trial(
    trial: optuna.trial.FrozenTrial, tmp_path: Path, tutorial: Any, *, distributed: bool
) -> None:
    """A finished trial reported, for validation cycles 1 and 2, the accuracy of its
    network on the whole validation set, and returned it (as ``model.metrics`` has it in
    one process, as ``on_training_end`` sent it through ``trainer.queue`` otherwise)."""
    assert sorted(trial.intermediate_values) == [1, 2]
    folder = tmp_path / "chkpt" / f"classifier_trial-{trial.number}"
    newest = hlt.find_checkpoints(folder)[-1]
    assert newest.name.startswith("epoch_2_")
    net = tutorial.Net(l1=trial.params["l1"], l2=trial.params["l2"])
    correct, total = _accuracy(_net_of(newest, net), tutorial.synthetic_cifar10(train=False))
    assert total == 16
    assert trial.intermediate_values[2] == 100 * correct // total
    if distributed:
        assert trial.value == pytest.approx(100 * correct / total)
    else:
        assert trial.value == 100 * correct // total
    # What the model wrote to TensorBoard itself went to the trial's own run, once.
    board = _scalars(tmp_path / "runs" / f"classifier_trial-{trial.number}")
    assert board["validation/accuracy"] == [
        (c, v) for c, v in sorted(trial.intermediate_values.items())
    ]


@pytest.mark.slow
def test_optuna_tutorial_runs_its_study_on_sqlite(tmp_path: Path) -> None:
    done = _run([str(OPTUNA)], tmp_path)
    assert "  Number of finished trials: 10" in done.stdout
    study = optuna.load_study(
        study_name="classifier", storage=f"sqlite:///{tmp_path}/classifier.db"
    )
    states = [trial.state for trial in study.trials]
    assert len(states) == 10
    assert set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED}
    tutorial = _load(OPTUNA)
    for trial in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        _check_trial(trial, tmp_path, tutorial, distributed=False)
    for trial in study.get_trials(states=[optuna.trial.TrialState.PRUNED]):
        # Pruned after its first validation cycle (steps are numbered from 1).
        assert sorted(trial.intermediate_values) == [1]
        board = _scalars(tmp_path / "runs" / f"classifier_trial-{trial.number}")
        assert board["validation/accuracy"] == [(1, trial.intermediate_values[1])]
        assert "hparam/accuracy" in board  # its on_training_end ran, writing hparams


TWO_PROCESSES = """
import functools
import sys

import optuna

sys.path.insert(0, {examples!r})
import optuna_tutorial

import attrs

import helios.data as hld


# The tutorial asks for two loader workers; in two training processes that is four more
# interpreters importing torch (tens of seconds on a small machine). The single-process
# run keeps them; this one is about the two training processes, so they load in-process.
def _in_process(self, dataset, params):
    return hld.DataModule._create_dataset(self, dataset, attrs.evolve(params, debug_mode=True))


optuna_tutorial.CIFARDataModule._create_dataset = _in_process

if __name__ == "__main__":
    study = optuna.create_study(
        direction="maximize", study_name="classifier", storage="sqlite:///classifier.db"
    )
    objective = functools.partial(optuna_tutorial.objective, use_cpu=True, cpu_processes=2)
    study.optimize(objective, n_trials=1)
"""


@pytest.mark.slow
@pytest.mark.distributed
def test_optuna_tutorial_trains_a_trial_on_two_cpu_processes(tmp_path: Path) -> None:
    script = tmp_path / "two_processes.py"
    script.write_text(textwrap.dedent(TWO_PROCESSES.format(examples=str(EXAMPLES))))
    _run([str(script)], tmp_path)
    study = optuna.load_study(
        study_name="classifier", storage=f"sqlite:///{tmp_path}/classifier.db"
    )
    (trial,) = study.trials
    assert trial.state == optuna.trial.TrialState.COMPLETE
    # Rank 0 validated on all of the data (is_distributed=False: not sharded), reported
    # it once per cycle, and sent the final value through trainer.queue.
    _check_trial(trial, tmp_path, _load(OPTUNA), distributed=True)
