"""Tune a small classifier of handwritten digits with Optuna and helios.

Run ``python -m helios.examples.tune`` (``--help`` lists the options). The study:

- data: scikit-learn's ``load_digits`` (1797 8x8 images, shipped with scikit-learn), split
  once with a fixed seed into training, validation and test sets;
- model: an MLP whose width, learning rate, dropout and optimiser come from the trial,
  read in `DigitsClassifier.setup` through the `OptunaPlugin` in the trainer's table;
- search: Optuna's TPE sampler with a `MedianPruner` that stops unpromising trials after
  any epoch (the plug-in reports the validation accuracy after every validation cycle);
- storage: SQLite in ``--workdir`` by default, or any Optuna storage URL (``--storage``);
  several worker processes (``--workers``) and several machines can share one storage;
- resuming: run the command again and the study continues. A trial whose process died
  (a kill, a crash, a lost machine) is noticed through the storage's heartbeat and queued
  again; a trial stopped with Ctrl-C is queued again at the next start. The retried trial
  has a new number but keeps the original's save name (``digits_trial-<original>``), so
  it continues from the last checkpoint of the trial it retries;
- at the end, a summary: the best parameters, the best validation accuracy, the test
  accuracy of the best trial's checkpoint (nothing is retrained), the trial counts and
  what pruning saved.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import importlib
import importlib.util
import math
import multiprocessing
import re
import sys
import time
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.storages import RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState
from torch.utils.data import DataLoader, TensorDataset

import helios.data as hld
import helios.model as hlm
import helios.trainer as hlt
from helios.plugins.optuna import OptunaPlugin

__all__ = [
    "DigitsClassifier",
    "DigitsData",
    "Hyper",
    "Objective",
    "Options",
    "Splits",
    "load_splits",
    "main",
    "make_storage",
    "open_study",
    "parse_args",
    "suggest_hyper",
]

#: The metric the plug-in reports and the study maximises.
METRIC = "accuracy"
#: The model's save name before the plug-in appends ``_trial-<n>``.
SAVE_NAME = "digits"
#: Seed of the training / validation / test split: fixed, so that every run of a study
#: (whatever its ``--seed``) tests on images no trial was trained or selected on.
SPLIT_SEED = 0

# User attributes this example keeps on every trial.
ATTR_SAVE_NAME = "tune:save_name"  # the checkpoint folder of the trial
ATTR_START = "tune:start_epoch"  # epochs already done when this attempt began
ATTR_FULL = "tune:full_epochs"  # epochs of a trial that is never pruned
ATTR_INTERRUPTED = "tune:interrupted"  # stopped by Ctrl-C: queue it again at the next start

_CHECKPOINT = re.compile(r"^epoch_(\d+)_iter_\d+\.pth$")


class MissingDependencyError(RuntimeError):
    """An optional package the example needs is not installed."""


# -- options -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Options:
    """What to run (the command line, parsed)."""

    workdir: Path = Path("helios-tune")
    storage: str = ""
    study_name: str = "helios-digits"
    n_trials: int = 30
    timeout: float | None = None
    workers: int = 1
    procs: int = 1
    seed: int = 0
    epochs: int = 20
    batch_size: int = 64
    pruner: str = "median"
    plot: bool = False
    heartbeat: int = 5
    grace: int = 0
    max_retry: int = 3
    step_delay: float = 0.0
    threads: int = 1

    @property
    def storage_url(self) -> str:
        """``--storage``, or SQLite in the working folder."""
        return self.storage or f"sqlite:///{self.workdir / 'helios-tune.db'}"

    @property
    def grace_period(self) -> int:
        """Seconds without a heartbeat after which a running trial counts as dead."""
        return self.grace or 3 * self.heartbeat

    @property
    def checkpoints(self) -> Path:
        """Where every trial keeps its checkpoints (``<save name>/`` below)."""
        return self.workdir / "checkpoints"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
    return value


def parse_args(argv: Sequence[str] | None = None) -> Options:
    """Parse the command line (``sys.argv[1:]`` when ``argv`` is ``None``)."""
    parser = argparse.ArgumentParser(
        prog="python -m helios.examples.tune",
        description=(
            "Tune an MLP on scikit-learn's digits with Optuna and helios: pruning, a "
            "persistent study that resumes, and resumable trials."
        ),
    )
    add = parser.add_argument
    add(
        "--workdir",
        type=Path,
        default=Options.workdir,
        help="folder for the study and checkpoints (default: %(default)s)",
    )
    add(
        "--storage",
        default="",
        help=(
            "Optuna storage URL, e.g. postgresql://user:password@host/db, or journal:PATH "
            "for a journal file (default: sqlite:///<workdir>/helios-tune.db)"
        ),
    )
    add(
        "--study-name",
        default=Options.study_name,
        help="study to create or continue (default: %(default)s)",
    )
    add(
        "--n-trials",
        type=_positive_int,
        default=Options.n_trials,
        help="trials to run now, over all workers (default: %(default)s)",
    )
    add(
        "--timeout",
        type=_seconds,
        default=None,
        help="stop starting trials after this many seconds",
    )
    add(
        "--workers",
        type=_positive_int,
        default=1,
        help="worker processes sharing the storage (default: 1)",
    )
    add(
        "--procs",
        type=_positive_int,
        default=1,
        help=(
            "training processes per trial; above 1, each trial trains distributed over "
            "gloo CPU processes (default: 1)"
        ),
    )
    add(
        "--seed",
        type=int,
        default=Options.seed,
        help="seed of the sampler and of training; the data split is fixed (default: 0)",
    )
    add(
        "--epochs",
        type=_positive_int,
        default=Options.epochs,
        help="epochs of a trial that is not pruned (default: %(default)s)",
    )
    add(
        "--batch-size",
        type=_positive_int,
        default=Options.batch_size,
        help="training batch size (default: %(default)s)",
    )
    add(
        "--pruner",
        choices=["median", "none"],
        default=Options.pruner,
        help="'none' trains every trial to the end, to compare (default: %(default)s)",
    )
    add(
        "--plot",
        action="store_true",
        help=(
            "write optimisation-history and parameter-importance plots to the workdir "
            "(needs matplotlib: pip install -e '.[plot]')"
        ),
    )
    add(
        "--heartbeat",
        type=_positive_int,
        default=Options.heartbeat,
        help="seconds between a running trial's heartbeats (RDB storages; default: %(default)s)",
    )
    add(
        "--grace",
        type=_positive_int,
        default=None,
        help=(
            "seconds without a heartbeat before a trial counts as dead and is retried "
            "(default: 3 x heartbeat)"
        ),
    )
    add(
        "--max-retry",
        type=int,
        default=Options.max_retry,
        help="times one trial may be retried (default: %(default)s)",
    )
    add(
        "--step-delay",
        type=_seconds,
        default=0.0,
        help=(
            "sleep this long after every training batch, to slow training down for a "
            "demonstration of interrupting and resuming (default: 0)"
        ),
    )
    add(
        "--threads",
        type=_positive_int,
        default=Options.threads,
        help=(
            "torch threads per training process; the MLP is too small to gain from more, "
            "and one leaves the other cores to other workers (default: %(default)s)"
        ),
    )
    args = parser.parse_args(argv)
    if args.grace is not None and args.grace <= args.heartbeat:
        parser.error(f"--grace ({args.grace}) must be longer than --heartbeat ({args.heartbeat})")
    if args.seed < 0:
        parser.error(f"--seed must be >= 0, got {args.seed}")
    if args.max_retry < 0:
        parser.error(f"--max-retry must be >= 0, got {args.max_retry}")
    return Options(
        workdir=args.workdir,
        storage=args.storage,
        study_name=args.study_name,
        n_trials=args.n_trials,
        timeout=args.timeout,
        workers=args.workers,
        procs=args.procs,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        pruner=args.pruner,
        plot=args.plot,
        heartbeat=args.heartbeat,
        grace=args.grace or 0,
        max_retry=args.max_retry,
        step_delay=args.step_delay,
        threads=args.threads,
    )


def check_requirements(options: Options) -> None:
    """Fail early, with the command that fixes it, when an optional package is missing.

    Raises:
        MissingDependencyError: scikit-learn (always) or matplotlib (``--plot``) is missing.
    """
    _sklearn_datasets()
    if options.plot and importlib.util.find_spec("matplotlib") is None:
        raise MissingDependencyError(
            "--plot needs matplotlib, which is not installed: pip install -e '.[plot]' "
            "(or pip install matplotlib), or leave out --plot"
        )


# -- data --------------------------------------------------------------------------------


def _sklearn_datasets() -> Any:
    try:
        return importlib.import_module("sklearn.datasets")
    except ImportError as error:
        raise MissingDependencyError(
            "this example needs scikit-learn for its data set (load_digits): "
            "pip install scikit-learn (or pip install -e '.[examples]')"
        ) from error


@dataclasses.dataclass(frozen=True)
class Splits:
    """The digits, split once: 1077 training, 360 validation and 360 test images."""

    train: TensorDataset
    valid: TensorDataset
    test: TensorDataset


@functools.cache
def load_splits(seed: int) -> Splits:
    """scikit-learn's digits as tensors (pixels scaled to [0, 1]), split with ``seed``.

    Every class is spread evenly over the three sets (a stratified split).
    """
    digits = _sklearn_datasets().load_digits()
    inputs = torch.as_tensor(digits.data, dtype=torch.float32) / 16.0
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    parts: list[list[int]] = [[], [], []]
    for label in range(10):
        found = torch.nonzero(labels == label).flatten()
        members: list[int] = found[torch.randperm(len(found), generator=generator)].tolist()
        # 20 % validation, 20 % test, the rest training (per class).
        n_valid = n_test = round(0.2 * len(members))
        parts[1] += members[:n_valid]
        parts[2] += members[n_valid : n_valid + n_test]
        parts[0] += members[n_valid + n_test :]
    # Exactly 360 validation and test images, so that 2, 3, 4, 5 or 6 processes split
    # them evenly (no padded duplicates); rounding differences move to or from training.
    for part in (1, 2):
        while len(parts[part]) > 360:
            parts[0].append(parts[part].pop())
        while len(parts[part]) < 360:
            parts[part].append(parts[0].pop())
    train, valid, test = (torch.tensor(sorted(part)) for part in parts)
    return Splits(
        TensorDataset(inputs[train], labels[train]),
        TensorDataset(inputs[valid], labels[valid]),
        TensorDataset(inputs[test], labels[test]),
    )


class DigitsData(hld.DataModule):
    """The digits split: loaders from `create_dataloader` (sharded and resumable).

    The training order is shuffled every epoch with the trainer's ``random_seed``.
    """

    def __init__(self, batch_size: int = 64, split_seed: int = SPLIT_SEED) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.split_seed = split_seed

    def setup(self) -> None:
        self.splits = load_splits(self.split_seed)

    def train_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.splits.train, batch_size=self.batch_size, shuffle=True)

    def valid_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.splits.valid, batch_size=360)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.splits.test, batch_size=360)


# -- model -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Hyper:
    """The tuned hyper-parameters."""

    hidden: int
    lr: float
    dropout: float
    optimizer: str

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Hyper:
        """The hyper-parameters a finished trial recorded (``trial.params``)."""
        return cls(
            hidden=int(params["hidden"]),
            lr=float(params["lr"]),
            dropout=float(params["dropout"]),
            optimizer=str(params["optimizer"]),
        )


def suggest_hyper(plugin: OptunaPlugin) -> Hyper:
    """Ask the plug-in's trial for the hyper-parameters (the same values on every call)."""
    return Hyper(
        hidden=plugin.suggest("int", "hidden", low=16, high=256, log=True),
        lr=plugin.suggest("float", "lr", low=1e-4, high=0.3, log=True),
        dropout=plugin.suggest("float", "dropout", low=0.0, high=0.5),
        optimizer=str(plugin.suggest("categorical", "optimizer", choices=["adam", "sgd"])),
    )


class DigitsClassifier(hlm.Model):
    """An MLP for 8x8 digits whose hyper-parameters come from the trial.

    Args:
        hyper: Fixed hyper-parameters (testing a finished trial); ``None`` reads them from
            the `OptunaPlugin` registered in the trainer, in `setup`.
        step_delay: Seconds to sleep after every training batch (demonstrations).
        threads: Torch threads of each worker process in a distributed run (the
            processes the trainer starts are the model's own).
    """

    def __init__(
        self, hyper: Hyper | None = None, *, step_delay: float = 0.0, threads: int | None = None
    ) -> None:
        super().__init__(SAVE_NAME)
        self.hyper = hyper
        self.step_delay = step_delay
        self.threads = threads
        self.correct = 0
        self.total = 0
        self.loss = math.nan

    def setup(self, fast_init: bool = False) -> None:
        if self.is_distributed and self.threads is not None:
            torch.set_num_threads(self.threads)
        hyper = self.hyper
        if hyper is None:
            plugin = self.trainer.plugin(OptunaPlugin.plugin_id, OptunaPlugin)
            hyper = self.hyper = suggest_hyper(plugin)
        self.plain_net = torch.nn.Sequential(
            torch.nn.Linear(64, hyper.hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(hyper.dropout),
            torch.nn.Linear(hyper.hidden, 10),
        ).to(self.device)
        self.net = self.wrap_distributed(self.plain_net)
        self.optimizer: torch.optim.Optimizer | None = None
        if not fast_init:
            if hyper.optimizer == "adam":
                self.optimizer = torch.optim.Adam(self.net.parameters(), lr=hyper.lr)
            else:
                self.optimizer = torch.optim.SGD(self.net.parameters(), lr=hyper.lr, momentum=0.9)

    def train(self) -> None:
        self.net.train()

    def eval(self) -> None:
        self.net.eval()

    def train_step(self, batch: Any, state: hlt.TrainingState) -> None:
        assert self.optimizer is not None
        inputs, labels = batch
        loss = torch.nn.functional.cross_entropy(self.net(inputs), labels)
        self.optimizer.zero_grad()
        torch.autograd.backward(loss)
        self.optimizer.step()
        self.loss = float(loss.item())
        if self.step_delay:
            time.sleep(self.step_delay)

    def running_loss(self) -> float | None:
        return None if math.isnan(self.loss) else self.loss

    # Validation and testing count correct predictions; in a distributed run each rank
    # sees its shard, so the counts are summed over the ranks before dividing.

    def _count(self, batch: Any) -> None:
        inputs, labels = batch
        predicted = self.net(inputs).argmax(dim=1)
        self.correct += int((predicted == labels).sum())
        self.total += int(labels.numel())

    def _accuracy(self) -> float:
        counts = hlt.reduce_metrics({"correct": self.correct, "total": self.total}, op="sum")
        return counts["correct"] / max(counts["total"], 1.0)

    def on_validation_start(self, validation_cycle: int) -> None:
        self.correct = self.total = 0

    def valid_step(self, batch: Any, step: int) -> None:
        self._count(batch)

    def on_validation_end(self, validation_cycle: int) -> None:
        # The Optuna plug-in reports this value right after this hook returns.
        self.metrics[METRIC] = self._accuracy()

    def on_training_end(self) -> None:
        # Distributed: the main process has no model state, so rank 0 sends the result.
        if self.is_distributed and self.rank == 0:
            assert self.trainer.queue is not None
            self.trainer.queue.put({METRIC: self.metrics.get(METRIC, math.nan)})

    def on_testing_start(self) -> None:
        self.correct = self.total = 0

    def test_step(self, batch: Any, step: int) -> None:
        self._count(batch)

    def on_testing_end(self) -> None:
        self.metrics["test_" + METRIC] = self._accuracy()

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"net": self.plain_net.state_dict(), "metrics": dict(self.metrics)}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], fast_init: bool = False) -> None:
        self.plain_net.load_state_dict(state_dict["net"])
        self.metrics.update(state_dict["metrics"])
        if self.optimizer is not None and not fast_init:
            self.optimizer.load_state_dict(state_dict["optimizer"])

    def load_for_testing(self) -> None:
        raise FileNotFoundError(
            f"no checkpoint of {self.save_name!r} to test: were the checkpoints in the "
            "working folder removed? Run the study again to train new trials."
        )


# -- study -------------------------------------------------------------------------------


def is_journal(url: str) -> bool:
    """Whether ``url`` names a journal file (``journal:PATH``)."""
    return url.startswith("journal:")


def make_storage(options: Options) -> optuna.storages.BaseStorage:
    """The study's storage.

    An RDB URL (SQLite, PostgreSQL, MySQL, ...) gets heartbeats: a trial whose process
    stops beating for ``grace_period`` seconds is failed and queued again (up to
    ``max_retry`` times) with its parameters and its original number. ``journal:PATH``
    is an append-only journal file (no heartbeats: only Ctrl-C'd trials are retried).
    """
    url = options.storage_url
    if is_journal(url):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:").removeprefix("//"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    if "://" not in url:
        raise ValueError(
            f"--storage {url!r} is not an Optuna storage URL: use e.g. sqlite:///study.db, "
            "postgresql://user:password@host/database or journal:study.log"
        )
    if url.startswith("sqlite:"):
        Path(options.workdir).mkdir(parents=True, exist_ok=True)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        # Several workers write to one file: wait for the lock instead of failing.
        engine_kwargs["connect_args"] = {"timeout": 60}
    with warnings.catch_warnings():
        # Heartbeats and the retry callback are marked experimental by Optuna.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=options.heartbeat,
            grace_period=options.grace_period,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=options.max_retry
            ),
        )


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Release the storage's database connections."""
    if isinstance(storage, optuna.storages.RDBStorage):
        storage.engine.dispose()


def make_pruner(options: Options) -> optuna.pruners.BasePruner:
    """Median pruning after 5 finished trials and 3 epochs of the trial, or none."""
    if options.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=3)


def open_study(
    options: Options, storage: optuna.storages.BaseStorage, worker: int = 0
) -> optuna.Study:
    """Create the study, or load it when it exists (``load_if_exists``).

    The sampler's seed depends on ``--seed``, the worker and the trials already in the
    study, so a rerun or a second worker does not repeat the same suggestions.
    """
    study = optuna.create_study(
        storage=storage,
        study_name=options.study_name,
        direction="maximize",
        pruner=make_pruner(options),
        load_if_exists=True,
    )
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        # Optuna loads an existing study with its own direction, silently.
        raise ValueError(
            f"study {options.study_name!r} in {options.storage_url} already exists and "
            f"{study.direction.name.lower()}s its objective, but this example maximises "
            "accuracy: pick another --study-name or --storage (the study is left as it is)"
        )
    seed = options.seed + 1000 * worker + len(study.get_trials(deepcopy=False))
    study.sampler = optuna.samplers.TPESampler(seed=seed)
    return study


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
    if folder is None:
        return 0
    newest = hlt.find_checkpoints(folder)
    match = _CHECKPOINT.match(newest[-1].name) if newest else None
    return int(match[1]) if match else 0


def keep_newest_checkpoint(folder: Path | None) -> None:
    """Delete all but the newest checkpoint of a finished trial (the one to test)."""
    if folder is None:
        return
    for path in hlt.find_checkpoints(folder)[:-1]:
        path.unlink(missing_ok=True)


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
        trainer = make_trainer(options)
        plugin = OptunaPlugin(trial, METRIC)
        plugin.configure_trainer(trainer)  # registers; TrialPruned leaves fit as it is
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
        datamodule = DigitsData(options.batch_size)
        try:
            trainer.fit(model, datamodule)
            plugin.check_pruned()  # distributed: fit returned, the trial may be pruned
        except KeyboardInterrupt:
            trial.set_user_attr(ATTR_INTERRUPTED, True)
            raise
        except optuna.TrialPruned:
            keep_newest_checkpoint(folder)
            raise
        keep_newest_checkpoint(folder)
        if trainer.queue is None:
            return model.metrics[METRIC]
        return float(trainer.queue.get(timeout=60)[METRIC])


# -- progress and summary ----------------------------------------------------------------


def epochs_run(trial: FrozenTrial) -> int:
    """Epochs this attempt trained (validation runs, and is reported, after every one)."""
    start = int(trial.user_attrs.get(ATTR_START, 0))
    reached = max(trial.intermediate_values, default=start)
    return max(reached - start, 0)


def format_params(params: Mapping[str, Any]) -> str:
    """``name=value`` pairs, floats to 3 significant digits."""
    return " ".join(
        f"{name}={value:.3g}" if isinstance(value, float) else f"{name}={value}"
        for name, value in params.items()
    )


def trial_line(trial: FrozenTrial) -> str:
    """One line about a finished trial."""
    value = trial.value
    if value is None and trial.intermediate_values:
        value = trial.intermediate_values[max(trial.intermediate_values)]
    shown = "   -  " if value is None else f"{value:.4f}"
    full = int(trial.user_attrs.get(ATTR_FULL, 0))
    start = int(trial.user_attrs.get(ATTR_START, 0))
    epochs = f"epochs {start + epochs_run(trial):>3}/{full}"
    if start:
        epochs += f" (resumed at {start})"
    retried = original_number(trial)
    origin = f" [retries trial {retried}]" if retried != trial.number else ""
    return (
        f"trial {trial.number:>3} {trial.state.name:<8} accuracy {shown}  {epochs}  "
        f"{format_params(trial.params)}{origin}"
    )


def print_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """`Study.optimize` callback: one line per finished trial."""
    print(trial_line(trial), flush=True)


@dataclasses.dataclass(frozen=True)
class Tested:
    """The best trial, tested."""

    trial: FrozenTrial
    accuracy: float
    checkpoint: Path


def evaluate_best(options: Options, study: optuna.Study) -> Tested | None:
    """Test the best trial's newest checkpoint on the test set (no retraining).

    Returns ``None`` when no trial has completed or its checkpoint is gone.
    """
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = study.best_trial
    model = DigitsClassifier(Hyper.from_params(best.params))
    model.save_name = str(best.user_attrs.get(ATTR_SAVE_NAME, f"{SAVE_NAME}_trial-{best.number}"))
    trainer = make_trainer(options, cpu_processes=1)
    folder = trainer.checkpoint_folder(model)
    found = hlt.find_checkpoints(folder) if folder is not None else []
    if not found:
        return None
    trainer.test(model, DigitsData(options.batch_size))
    return Tested(best, model.metrics["test_" + METRIC], found[-1])


def summary(
    options: Options, study: optuna.Study, tested: Tested | None, wall: float, new: int
) -> str:
    """The closing report: best trial, test accuracy, counts, what pruning saved."""
    trials = study.get_trials(deepcopy=False)
    counts = {state: sum(t.state == state for t in trials) for state in TrialState}
    lines = [
        "",
        f"== study {study.study_name!r}: {len(trials)} trials "
        f"({new} finished in this run, {wall:.1f} s wall time) ==",
        "trials: "
        + ", ".join(
            f"{counts[state]} {state.name.lower()}"
            for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
        )
        + "".join(
            f", {counts[state]} {state.name.lower()}"
            for state in (TrialState.RUNNING, TrialState.WAITING)
            if counts[state]
        ),
    ]
    if counts[TrialState.COMPLETE]:
        best = study.best_trial
        lines.append(
            f"best trial: {best.number} (checkpoints {best.user_attrs.get(ATTR_SAVE_NAME)})"
        )
        lines.append(f"best params: {format_params(best.params)}")
        lines.append(f"best validation accuracy: {best.value:.4f}")
    else:
        lines.append("best trial: none completed yet")
    if tested is not None:
        lines.append(
            f"test accuracy of trial {tested.trial.number}: {tested.accuracy:.4f} "
            f"({tested.checkpoint.name}, not retrained)"
        )
    elif counts[TrialState.COMPLETE]:
        lines.append("test accuracy: the best trial's checkpoint is missing")
    lines.extend(_savings(trials))
    return "\n".join(lines)


def _savings(trials: Sequence[FrozenTrial]) -> list[str]:
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    attempts = [t for t in trials if t.state.is_finished() and ATTR_FULL in t.user_attrs]
    run = sum(epochs_run(t) for t in attempts)
    full = sum(int(t.user_attrs.get(ATTR_FULL, 0)) for t in finished)
    if not full:
        return []
    seconds = sum(_seconds_of(t) for t in attempts)
    saved = max(full - run, 0)
    per_epoch = seconds_per_epoch(attempts)
    return [
        f"training: {run} epochs run in {seconds:.1f} s; without pruning the "
        f"{len(finished)} finished trials need {full} epochs",
        f"pruning saved {saved} epochs ({saved / full:.0%}), about {saved * per_epoch:.1f} s "
        f"(estimated at {per_epoch:.3f} s per epoch)",
    ]


def _seconds_of(trial: FrozenTrial) -> float:
    if trial.datetime_complete is None or trial.datetime_start is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def seconds_per_epoch(trials: Sequence[FrozenTrial]) -> float:
    """What one more epoch costs: the slope of a trial's duration over its epochs.

    A trial also has fixed costs (building the model and trainer, storage writes); a
    least-squares line through (epochs, seconds) separates them from the cost per epoch,
    which plain division would overstate for short, pruned trials.
    """
    points = [(epochs_run(t), _seconds_of(t)) for t in trials if epochs_run(t)]
    if not points:
        return 0.0
    xs = [float(x) for x, _ in points]
    ys = [y for _, y in points]
    ratio = sum(ys) / sum(xs)  # fixed costs included: an upper bound
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread > 0:
        slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / spread
        if 0 < slope < ratio:  # a noisy fit can say anything; fixed costs are not negative
            return slope
    return ratio


def write_plots(study: optuna.Study, folder: Path) -> list[Path]:
    """Save the optimisation history and the parameter importances as PNG files."""
    matplotlib = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # files only, no window
    pyplot = importlib.import_module("matplotlib.pyplot")
    from optuna.visualization import matplotlib as optuna_plots

    written = []
    with warnings.catch_warnings():
        # Optuna marks its matplotlib back end experimental.
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        plots: list[tuple[str, Any]] = [
            ("optimization-history.png", optuna_plots.plot_optimization_history)
        ]
        if len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))) > 1:
            plots.append(("param-importances.png", optuna_plots.plot_param_importances))
        for name, plot in plots:
            axes: Any = plot(study)
            path = folder / name
            axes.figure.savefig(path, bbox_inches="tight")
            pyplot.close(axes.figure)
            written.append(path)
    return written


# -- running -----------------------------------------------------------------------------


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Use ``threads`` torch threads in this process for a while."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_trials(options: Options, n_trials: int, worker: int = 0) -> None:
    """Run ``n_trials`` trials of the study in this process."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = make_storage(options)
    try:
        study = open_study(options, storage, worker)
        study.optimize(
            Objective(options), n_trials=n_trials, timeout=options.timeout, callbacks=[print_trial]
        )
    finally:
        close_storage(storage)


def _worker_main(options: Options, n_trials: int, worker: int) -> None:
    try:
        with torch_threads(options.threads):
            run_trials(options, n_trials, worker)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except BaseException:
        print(f"worker {worker} failed:\n{traceback.format_exc()}", file=sys.stderr, flush=True)
        raise SystemExit(1) from None


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` near-equal positive shares (fewer if too few).

    Examples:
        >>> shares(5, 2), shares(1, 3)
        ([3, 2], [1])
    """
    base, extra = divmod(total, parts)
    return [n for n in (base + (i < extra) for i in range(parts)) if n]


def run_workers(options: Options) -> list[int]:
    """Run the trials in ``options.workers`` processes; returns the workers that failed."""
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_worker_main, args=(options, n, worker), name=f"helios-tune-worker-{worker}"
        )
        for worker, n in enumerate(shares(options.n_trials, options.workers))
    ]
    for process in processes:
        process.start()
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:  # they got the Ctrl-C too: let them record it
            process.join(timeout=30)
        raise
    return [worker for worker, process in enumerate(processes) if process.exitcode != 0]


def _header(options: Options, study: optuna.Study, queued: list[int]) -> str:
    trials = study.get_trials(deepcopy=False)
    known = f"continuing, {len(trials)} trials so far" if trials else "new study"
    lines = [
        f"study {study.study_name!r} in {options.storage_url} ({known})",
        f"running {options.n_trials} trials: {options.workers} worker(s), "
        f"{options.procs} training process(es) per trial, {options.epochs} epochs per trial, "
        f"pruner {options.pruner}, seed {options.seed}",
    ]
    waiting = [t.number for t in trials if t.state == TrialState.WAITING]
    running = [t.number for t in trials if t.state == TrialState.RUNNING]
    if queued:
        lines.append(f"queued again after Ctrl-C: trials {queued}")
    if waiting:
        lines.append(f"waiting to be retried or run first: trials {waiting}")
    if running and not is_journal(options.storage_url):
        lines.append(
            f"still marked running: trials {running}; if their process is gone they are "
            f"retried once their heartbeat is {options.grace_period} s old"
        )
    return "\n".join(lines)


def run_study(options: Options, storage: optuna.storages.BaseStorage) -> int:
    """Continue or start the study, run the trials, print the summary."""
    study = open_study(options, storage)
    fail_dead_trials(study)
    queued = retry_interrupted(study, options.max_retry)
    print(_header(options, study, queued), flush=True)
    since = datetime.datetime.now()  # Optuna stamps trials with naive local times
    started = time.perf_counter()
    failed: list[int] = []
    try:
        if options.workers == 1:
            study.optimize(
                Objective(options),
                n_trials=options.n_trials,
                timeout=options.timeout,
                callbacks=[print_trial],
            )
        else:
            failed = run_workers(options)
    except KeyboardInterrupt:
        print(
            "\ninterrupted: run the same command again to continue; the interrupted "
            "trials resume from their checkpoints",
            file=sys.stderr,
        )
        return 130
    wall = time.perf_counter() - started
    new = sum(
        t.datetime_complete is not None and t.datetime_complete >= since
        for t in study.get_trials(deepcopy=False)
    )
    tested = evaluate_best(options, study)
    print(summary(options, study, tested, wall, new), flush=True)
    if options.plot:
        for path in write_plots(study, options.workdir):
            print(f"plot: {path}")
    if failed:
        print(f"error: worker(s) {failed} failed (see above)", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the study from the command line ``argv``; returns the exit status.

    0: done; 1: a worker failed; 2: bad input or a missing package; 130: interrupted.
    """
    options = parse_args(argv)
    try:
        check_requirements(options)
        if options.workers > 1 and ":memory:" in options.storage_url:
            raise ValueError("--workers needs a storage the processes share, not :memory:")
        storage = make_storage(options)
    except (MissingDependencyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with torch_threads(options.threads):
            return run_study(options, storage)
    finally:
        optuna.logging.set_verbosity(verbosity)
        close_storage(storage)


if __name__ == "__main__":
    raise SystemExit(main())
