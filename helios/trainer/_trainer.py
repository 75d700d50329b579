"""The trainer: the imperative shell around the pure loop core."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal, Never, TypeVar

import attrs
import torch

from helios.core import TrainingState, TrainingUnit
from helios.core.loop import LoopConfig
from helios.data import DataModule, LoaderWrapper
from helios.model import Model
from helios.plugins import (
    MapLocation,
    PluginProtocol,
    PluginTable,
    RunWatcher,
    register_plugin,
)
from helios.trainer import _distributed as dist_support
from helios.trainer._entry_checks import check_entry
from helios.trainer._logging import logger, run_logging
from helios.trainer._plan import describe_plugins
from helios.trainer._run_checkpoints import Collectives, checkpoint_to_validate
from helios.trainer._runs import Extensions, ProcessRun
from helios.trainer._settings import TrainerSettings, resolve_devices
from helios.trainer._spawn import Launch, spawn

__all__ = ["Trainer"]


P = TypeVar("P")

#: The trainer's entry points, as a job names them.
EntryPoint = Literal["fit", "test", "validate"]


#: Settings copied to the trainer's attributes of the same names.
_SETTINGS_SHOWN = (
    "run_name",
    "enable_deterministic",
    "enable_cudnn_benchmark",
    "random_seed",
    "enable_progress_bar",
    "enable_file_logging",
    "capture_warnings",
    "chkpt_root",
    "log_root",
)


class Trainer:
    """Runs a `Model` on the data of a `DataModule`, with plug-ins.

    Args:
        run_name: Name of the run (log file name; defaults to the model's save name).
        train_unit: ``TrainingUnit.EPOCH`` / ``"epoch"`` or ``TrainingUnit.ITERATION`` /
            ``"iteration"``: what ``total_steps`` and the frequencies count.
        total_steps: Epochs or optimiser steps to train for, or ``float("inf")`` to train
            until early stopping (needs ``early_stop_cycles``).
        valid_frequency: Validate every this many units.
        chkpt_frequency: Save a checkpoint every this many units (needs ``chkpt_root``).
        print_frequency: Log the running loss every this many optimiser steps.
        accumulation_steps: Batches per optimiser step.
        enable_deterministic: Ask torch for deterministic algorithms.
        enable_cudnn_benchmark: Let cuDNN time its algorithms and keep the fastest
            (``torch.backends.cudnn.benchmark``); not with ``enable_deterministic``.
        early_stop_cycles: Stop after this many validations without improvement.
        use_cpu: Train on the CPU. ``None`` picks the GPU when CUDA is available.
        gpus: GPU ids to train on, one process each (several ids: distributed).
        cpu_processes: With ``use_cpu``, the number of processes (gloo; above 1 the run
            is distributed).
        random_seed: Seed for Python, NumPy and torch (and for `ResumableSampler`).
        enable_progress_bar: Show tqdm bars (on rank 0).
        enable_file_logging: Log to ``<log_root>/<run_name>.log``.
        capture_warnings: Route Python warnings into the log while a run lasts
            (`logging.captureWarnings`).
        chkpt_root: Folder for checkpoints: ``<chkpt_root>/<save_name>/``.
        log_root: Folder for log files.
        train_exceptions: Exceptions that leave `fit` as they are, without being logged.
        test_exceptions: Likewise for `test`.
        collective_timeout: Seconds a distributed collective may wait before the run is
            ended as hung.

    Raises:
        ValueError: naming the first invalid argument.

    Examples:
        >>> import helios.trainer as hlt
        >>> trainer = hlt.Trainer(train_unit="iteration", total_steps=10, use_cpu=True)
        >>> trainer.device, len(trainer.plugins)
        (device(type='cpu'), 0)
    """

    # The settings, also readable as attributes (as in Helios).
    run_name: str
    enable_deterministic: bool
    enable_cudnn_benchmark: bool
    random_seed: int | None
    enable_progress_bar: bool
    enable_file_logging: bool
    capture_warnings: bool
    chkpt_root: Path | None
    log_root: Path | None
    collective_timeout: float

    def __init__(
        self,
        *,
        run_name: str = "",
        train_unit: TrainingUnit | str = TrainingUnit.EPOCH,
        total_steps: int | float = 1,
        valid_frequency: int | None = None,
        chkpt_frequency: int | None = None,
        print_frequency: int | None = None,
        accumulation_steps: int = 1,
        enable_deterministic: bool = False,
        enable_cudnn_benchmark: bool = False,
        early_stop_cycles: int | None = None,
        use_cpu: bool | None = None,
        gpus: Sequence[int] | None = None,
        cpu_processes: int = 1,
        random_seed: int | None = None,
        enable_progress_bar: bool = False,
        enable_file_logging: bool = False,
        capture_warnings: bool = False,
        chkpt_root: str | Path | None = None,
        log_root: str | Path | None = None,
        train_exceptions: Iterable[type[BaseException]] = (),
        test_exceptions: Iterable[type[BaseException]] = (),
        collective_timeout: float = 300.0,
    ) -> None:
        # The keywords are the settings' fields, one for one; the record checks them.
        arguments = {name: value for name, value in locals().items() if name != "self"}
        settings = TrainerSettings(**arguments)
        self._settings = settings
        self._config = settings.loop
        self._context = dist_support.context_from_environment()
        devices = resolve_devices(
            settings,
            cuda_available=torch.cuda.is_available(),
            device_count=torch.cuda.device_count(),
            launched=self._context.in_process_group,
        )
        for name in _SETTINGS_SHOWN:
            setattr(self, name, getattr(settings, name))
        self.collective_timeout = float(settings.collective_timeout)
        self.train_exceptions: list[type[BaseException]] = list(settings.train_exceptions)
        self.test_exceptions: list[type[BaseException]] = list(settings.test_exceptions)
        self.use_cpu: bool = devices.use_cpu
        self.gpus: list[int] = list(devices.gpus)
        self.cpu_processes: int = devices.cpu_processes

        self._plugins = PluginTable()
        #: Carries values from rank 0 to the main process; set by `fit` when it spawns
        #: worker processes, ``None`` otherwise.
        self.queue: dist_support.ResultQueue | None = None
        #: The training state of the current (or last) run.
        self.state: TrainingState = TrainingState()
        #: The model of the current (or last) `fit` / `test`.
        self.model: Model | None = None
        self._extensions = Extensions()

    # -- configuration ------------------------------------------------------------------

    @property
    def config(self) -> LoopConfig:
        """The training schedule."""
        return self._config

    @property
    def settings(self) -> TrainerSettings:
        """Everything the trainer was asked for, as it was checked at construction."""
        return self._settings

    @property
    def plugins(self) -> PluginTable:
        """Registered plug-ins by id (read-only; add them with `register_plugin`)."""
        return self._plugins

    @plugins.setter
    def plugins(self, _: Never) -> None:
        raise TypeError(
            "trainer.plugins is read-only: add plug-ins with trainer.register_plugin(plugin) "
            "or plugin.configure_trainer(trainer)"
        )

    def register_plugin(self, plugin: PluginProtocol) -> None:
        """Add ``plugin`` to `plugins`; on refusal the table is unchanged.

        Raises:
            TypeError: if it is not a plug-in.
            KeyError: if its id is taken.
            ValueError: if it claims a unique override already claimed.
        """
        self._plugins = register_plugin(self._plugins, plugin)
        plugin.trainer = self

    def describe(self) -> str:
        """The registered plug-ins as a plain-text table: in call order, the unique slot
        each owns (training, validation or testing batch, stop). Print it before `fit`
        to see who does what."""
        return describe_plugins(self._plugins)

    def plugin(self, plug_id: str, cls: type[P]) -> P:
        """The plug-in ``plug_id``, checked to be a ``cls`` (typed lookup)."""
        return self._plugins.get_as(plug_id, cls)

    def set_loader_wrapper(self, key: str, wrapper: LoaderWrapper | None) -> None:
        """Pass every data loader of the following runs through ``wrapper``.

        The trainer wraps each loader the data module returns, after giving it this
        rank's shard of the data, with each wrapper in the order their keys were first
        set. Setting a key again replaces its wrapper; ``None`` removes it. A device
        plug-in with ``prefetch=True`` sets one (under its id) in its ``setup``.
        """
        Extensions.put(self._extensions.wrappers, key, wrapper)

    def watch(self, key: str, watcher: RunWatcher | None) -> None:
        """Tell ``watcher`` of the following runs (see `helios.plugins.RunWatcher`).

        Watchers are called in the order their keys were first given; giving a key again
        replaces its watcher, ``None`` removes it. A plug-in gives its watcher under its
        id, in its ``setup``.
        """
        Extensions.put(self._extensions.watchers, key, watcher)

    @property
    def world_size(self) -> int:
        """Number of training processes."""
        if self._context.world_size > 1:
            return self._context.world_size
        return max(len(self.gpus), 1) if not self.use_cpu else self.cpu_processes

    @property
    def is_distributed(self) -> bool:
        """Whether training runs in several processes."""
        return self.world_size > 1

    @property
    def rank(self) -> int:
        """This process's global rank (0 in the main process)."""
        return self._context.rank

    @property
    def local_rank(self) -> int:
        """This process's rank on its machine."""
        return self._context.local_rank

    @property
    def device(self) -> torch.device:
        """The device of this process: the CPU, or the local rank's GPU."""
        if self.use_cpu:
            return torch.device("cpu")
        return torch.device("cuda", self.gpus[self.local_rank % len(self.gpus)])

    @property
    def map_loc(self) -> MapLocation:
        """``map_location`` for loading checkpoints saved by rank 0 on this process."""
        if self.use_cpu:
            return "cpu"
        return {"cuda:0": str(self.device), f"cuda:{self.gpus[0]}": str(self.device)}

    def is_accumulation_boundary(self, state: TrainingState) -> bool:
        """Whether the batch ``state`` counts closes an accumulation window (step now)."""
        return state.global_iteration % self._config.accumulation_steps == 0

    def checkpoint_folder(self, model: Model) -> Path | None:
        """Where ``model``'s checkpoints go (``None`` without ``chkpt_root``)."""
        return None if self.chkpt_root is None else self.chkpt_root / model.save_name

    # -- entry points -------------------------------------------------------------------

    def fit(self, model: Model, datamodule: DataModule) -> bool:
        """Train ``model`` on ``datamodule``'s data, resuming from its newest checkpoint.

        Returns:
            ``True`` when training ended (completed, stopped early, or a distributed
            trial was pruned).

        Raises:
            Exception: Whatever the model, the data or a plug-in raises: an exception
                listed in `train_exceptions` unchanged and unlogged, any other logged and
                re-raised.
            ValueError: before any training step, for a setting under which something
                could never happen (early stopping with a model that never reports an
                improvement, ...).
        """
        check_entry(model, datamodule, self._config, training=True)
        return self._enter(_Entry("fit", model, datamodule))

    def test(self, model: Model, datamodule: DataModule) -> bool:
        """Test ``model`` on ``datamodule``'s test data.

        Loads the newest checkpoint, or calls ``model.load_for_testing()`` when there is
        none.
        """
        check_entry(model, datamodule, self._config, training=False)
        return self._enter(_Entry("test", model, datamodule))

    def validate(
        self,
        model: Model,
        datamodule: DataModule,
        *,
        checkpoint: Literal["newest", "best"] | Path = "newest",
    ) -> bool:
        """One validation pass over ``datamodule``'s validation data on a checkpoint of
        ``model``, set up for inference as `test` does; the result is in ``model.metrics``.

        Args:
            checkpoint: ``"newest"`` (with none, ``model.load_for_testing()`` is called),
                ``"best"`` (by the registered `helios.plugins.RetentionPlugin`'s metric),
                or the path of a checkpoint file.

        Raises:
            ValueError: a ``checkpoint`` that is none of these, or ``"best"`` that cannot
                be found (see `checkpoint_to_validate`).
            FileNotFoundError: a path that is not a file.
        """
        check_entry(model, datamodule, self._config, training=False)
        path = checkpoint_to_validate(self._plugins, self.checkpoint_folder(model), checkpoint)
        return self._enter(_Entry("validate", model, datamodule, path))

    def _enter(self, entry: _Entry) -> bool:
        method = entry.method
        backend = "gloo" if self.use_cpu else "nccl"
        if self._needs_spawn():
            self.queue = dist_support.ResultQueue()
            launch = Launch(
                world_size=self.world_size,
                backend=backend,
                timeout=self.collective_timeout,
                gpus=tuple(self.gpus),
                label=method,
                passthrough=self._passthrough(method),
            )
            spawn(_EntryJob(self, entry), launch, self.queue)
            return True
        with dist_support.process_group(
            self._context, backend=backend, timeout=self.collective_timeout, device=self.device
        ):
            return self._run_here(entry)

    def _needs_spawn(self) -> bool:
        return self.world_size > 1 and not self._context.in_process_group

    def _passthrough(self, method: EntryPoint) -> tuple[type[BaseException], ...]:
        """The exceptions that leave ``method`` unchanged."""
        return tuple(self.train_exceptions if method == "fit" else self.test_exceptions)

    def _run_here(self, entry: _Entry) -> bool:
        """Run ``fit``, ``test`` or ``validate`` in this process: a registered exception
        passes through unlogged, any other is logged with its traceback and re-raised."""
        here = ProcessRun(
            self,
            Collectives(self._context.any, self._context.gather, distributed=self.is_distributed),
            self._extensions,
        )
        method, model, datamodule = entry.method, entry.model, entry.datamodule
        runs: dict[str, Callable[[Model, DataModule], bool]] = {
            "fit": here.fit,
            "test": here.test,
            "validate": functools.partial(here.validate, checkpoint=entry.checkpoint),
        }
        run = runs[method]
        log_file = None
        if self.enable_file_logging and self.rank == 0:
            assert self.log_root is not None
            log_file = self.log_root / f"{self.run_name or model.save_name}.log"
        with run_logging(
            console=self.rank == 0, log_file=log_file, capture_warnings=self.capture_warnings
        ):
            try:
                return run(model, datamodule)
            except self._passthrough(method):
                raise
            except Exception:
                logger.exception("%s failed on rank %d", method, self.rank)
                raise


@attrs.frozen
class _Entry:
    """One call of an entry point: which, on what (and, to validate, which checkpoint)."""

    method: EntryPoint
    model: Model
    datamodule: DataModule
    checkpoint: Path | None = None


@attrs.frozen
class _EntryJob:
    """An entry point as a job for spawned processes (it pickles with its parts)."""

    trainer: Trainer
    entry: _Entry

    def __call__(self, context: dist_support.Context, /) -> bool:
        self.trainer._context = context
        return self.trainer._run_here(self.entry)
