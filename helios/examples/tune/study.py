"""The study: opening it, queueing interrupted trials again, and the objective.

A trial trains `DigitsClassifier` with a checkpoint after every epoch, under
``<checkpoints>/digits_trial-<n>/``, where a `RetentionPlugin` keeps the newest alone. A
retried trial (its process died, or Ctrl-C) gets a new number but keeps the original's
save name, so it resumes from those checkpoints.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

import helios.trainer as hlt
from helios.examples.tune.data import DigitsData
from helios.examples.tune.model import METRIC, DigitsClassifier, suggest_hyper
from helios.examples.tune.options import Options
from helios.examples.tune.storage import mask_password
from helios.plugins import RetentionPlugin
from helios.plugins.optuna import OptunaPlugin
from helios.trainer import parse_checkpoint_name

__all__ = [
    "ATTR_FULL",
    "ATTR_INTERRUPTED",
    "ATTR_SAVE_NAME",
    "ATTR_START",
    "ATTR_WORKER",
    "Objective",
    "fail_dead_trials",
    "make_pruner",
    "make_trainer",
    "open_study",
    "original_number",
    "resume_epoch",
    "retry_interrupted",
    "seed_sampler",
]

# User attributes this example keeps on every trial.
ATTR_SAVE_NAME = "tune:save_name"  # the checkpoint folder of the trial
ATTR_START = "tune:start_epoch"  # epochs already done when this attempt began
ATTR_FULL = "tune:full_epochs"  # epochs of a trial that is never pruned
ATTR_INTERRUPTED = "tune:interrupted"  # stopped by Ctrl-C: queue it again at the next start
ATTR_WORKER = "tune:worker"  # <host>:<process id> of the study worker that ran this attempt


def make_pruner(options: Options) -> optuna.pruners.BasePruner:
    """Median pruning after 5 finished trials and 3 epochs of the trial, or none."""
    if options.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)


def open_study(options: Options, storage: optuna.storages.BaseStorage) -> optuna.Study:
    """Create the study, or load it when it exists (``load_if_exists``).

    Raises:
        ValueError: the study exists and minimises its objective (it is left as it is).
    """
    study = optuna.create_study(
        storage=storage,
        study_name=options.study_name,
        direction="maximize",
        pruner=make_pruner(options),
        sampler=optuna.samplers.TPESampler(seed=options.seed),
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        # Optuna loads an existing study with its own direction, silently.
        raise ValueError(
            f"study {options.study_name!r} in {mask_password(options.storage_url)} already "
            f"exists and {study.direction.name.lower()}s its objective, but this example "
            "maximises accuracy: pick another --study-name or --storage (the study is left "
            "as it is)"
        )
    return study


def seed_sampler(trial: optuna.Trial, seed: int) -> None:
    """Seed the study's sampler for ``trial`` from ``--seed`` and the trial's number.

    Workers on several machines start together with the same options: a seed made of
    what they know (options, trials so far) would be the same for all of them, and so
    would their suggestions. A trial's number is unique in the study, whoever runs it.
    """
    trial.study.sampler = optuna.samplers.TPESampler(seed=seed + trial.number)


def fail_dead_trials(study: optuna.Study) -> None:
    """Fail (and so queue again) running trials whose heartbeat is too old.

    `Study.optimize` does the same before every trial; doing it once at the start shows
    the retried trials in the header.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def retry_interrupted(study: optuna.Study, max_retry: int) -> list[int]:
    """Queue again the trials that a Ctrl-C stopped, once each (returns their numbers).

    The heartbeat only notices processes that vanished; a trial stopped with Ctrl-C is
    told FAIL by Optuna at once, so this gives it the same treatment.
    """
    trials = study.get_trials(deepcopy=False)
    retried = {number for t in trials for number in t.system_attrs.get("retry_history", [])}
    queued = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        callback = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        for trial in trials:
            if (
                trial.state == TrialState.FAIL
                and trial.user_attrs.get(ATTR_INTERRUPTED)
                and trial.number not in retried
            ):
                callback(study, trial)
                queued.append(trial.number)
    return queued


def original_number(trial: FrozenTrial) -> int:
    """The number of the trial that ``trial`` retries (its own number if none)."""
    failed = trial.system_attrs.get("failed_trial")
    return trial.number if failed is None else int(failed)


def resume_epoch(folder: Path | None) -> int:
    """Epochs done by the newest checkpoint in ``folder`` (0 if there is none)."""
    newest = hlt.find_checkpoints(folder) if folder is not None else []
    parsed = parse_checkpoint_name(newest[-1].name) if newest else None
    return 0 if parsed is None else parsed[0]


def make_trainer(options: Options, **overrides: Any) -> hlt.Trainer:
    """The trainer of one trial: epochs, validation and a checkpoint after each."""
    settings: dict[str, Any] = {
        "train_unit": "epoch",
        "total_steps": options.epochs,
        "valid_frequency": 1,
        "chkpt_frequency": 1,
        "chkpt_root": options.checkpoints,
        "use_cpu": True,
        "cpu_processes": options.procs,
        "random_seed": options.seed,
        "collective_timeout": 120.0,
    }
    settings.update(overrides)
    return hlt.Trainer(**settings)


@dataclasses.dataclass(frozen=True)
class Objective:
    """Train one trial; return its final validation accuracy."""

    options: Options

    def __call__(self, trial: optuna.Trial) -> float:
        options = self.options
        seed_sampler(trial, options.seed)
        trainer = make_trainer(options)
        plugin = OptunaPlugin(trial, METRIC)
        plugin.configure_trainer(trainer)  # registers; TrialPruned leaves fit as it is
        # After each epoch's checkpoint, the older ones go: a trial resumes from, and is
        # tested with, its newest.
        RetentionPlugin(keep_newest=1).configure_trainer(trainer)
        model = DigitsClassifier(step_delay=options.step_delay, threads=options.threads)
        plugin.configure_model(model)  # save name digits_trial-<original number>
        if trainer.is_distributed:
            # Fix the parameters in the storage before the workers start, so that every
            # rank's setup() reads the same values instead of sampling its own.
            suggest_hyper(plugin)
        folder = trainer.checkpoint_folder(model)
        trial.set_user_attr(ATTR_SAVE_NAME, model.save_name)
        trial.set_user_attr(ATTR_START, resume_epoch(folder))
        trial.set_user_attr(ATTR_FULL, options.epochs)
        trial.set_user_attr(ATTR_INTERRUPTED, False)
        trial.set_user_attr(ATTR_WORKER, f"{socket.gethostname()}:{os.getpid()}")
        datamodule = DigitsData(options.batch_size)
        try:
            trainer.fit(model, datamodule)
            plugin.check_pruned()  # distributed: fit returned, the trial may be pruned
        except KeyboardInterrupt:
            trial.set_user_attr(ATTR_INTERRUPTED, True)
            raise
        if trainer.queue is None:
            return model.metrics[METRIC]
        return float(trainer.queue.get(timeout=60)[METRIC])
