"""The trainer: the imperative shell around the pure loop core."""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal, Never, TypeVar

import attrs
import torch
from torch.utils.data import DataLoader

from helios.core import (
    LoopConfig,
    TrainingState,
    TrainingUnit,
    after_batch,
    after_epoch,
    after_validation,
    checkpoint_name,
    is_done,
    state_to_dict,
)
from helios.data import DataModule, ResumableSampler
from helios.model import Model
from helios.plugins import MapLocation, PluginProtocol, PluginTable, register_plugin
from helios.trainer import _distributed as dist_support
from helios.trainer._checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    capture_rng,
    find_checkpoints,
    load_checkpoint,
    remove_partial_writes,
    restore_rng,
    save_checkpoint,
    training_state_of,
)
from helios.trainer._plan import DispatchPlan
from helios.trainer._progress import Progress
from helios.trainer._spawn import Launch, spawn

__all__ = ["Trainer"]

logger = logging.getLogger("helios")

P = TypeVar("P")

#: The trainer's entry points, as a job names them.
EntryPoint = Literal["fit", "test"]


def _check_exceptions(name: str, values: Iterable[object]) -> list[type[BaseException]]:
    if isinstance(values, type) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a list of exception classes, got {values!r}")
    out: list[type[BaseException]] = []
    for value in values:
        if not (isinstance(value, type) and issubclass(value, BaseException)):
            raise ValueError(f"{name} must hold exception classes, got {value!r}")
        out.append(value)
    return out


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
        early_stop_cycles: Stop after this many validations without improvement.
        use_cpu: Train on the CPU. ``None`` picks the GPU when CUDA is available.
        gpus: GPU ids to train on, one process each (several ids: distributed).
        cpu_processes: With ``use_cpu``, the number of processes (gloo; above 1 the run
            is distributed).
        random_seed: Seed for Python, NumPy and torch (and for `ResumableSampler`).
        enable_progress_bar: Show tqdm bars (on rank 0).
        enable_file_logging: Log to ``<log_root>/<run_name>.log``.
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
        early_stop_cycles: int | None = None,
        use_cpu: bool | None = None,
        gpus: Sequence[int] | None = None,
        cpu_processes: int = 1,
        random_seed: int | None = None,
        enable_progress_bar: bool = False,
        enable_file_logging: bool = False,
        chkpt_root: str | Path | None = None,
        log_root: str | Path | None = None,
        train_exceptions: Iterable[type[BaseException]] = (),
        test_exceptions: Iterable[type[BaseException]] = (),
        collective_timeout: float = 300.0,
    ) -> None:
        if not isinstance(run_name, str):
            raise ValueError(f"run_name must be a string, got {run_name!r}")
        self._config = LoopConfig(
            unit=TrainingUnit.parse(train_unit),
            total_steps=total_steps,
            valid_frequency=valid_frequency,
            chkpt_frequency=chkpt_frequency,
            print_frequency=print_frequency,
            accumulation_steps=accumulation_steps,
            early_stop_cycles=early_stop_cycles,
        )
        for name, flag in (
            ("enable_deterministic", enable_deterministic),
            ("enable_progress_bar", enable_progress_bar),
            ("enable_file_logging", enable_file_logging),
        ):
            if not isinstance(flag, bool):
                raise ValueError(f"{name} must be True or False, got {flag!r}")
        if use_cpu is not None and not isinstance(use_cpu, bool):
            raise ValueError(f"use_cpu must be True, False or None, got {use_cpu!r}")
        if random_seed is not None and (
            isinstance(random_seed, bool) or not isinstance(random_seed, int) or random_seed < 0
        ):
            raise ValueError(f"random_seed must be an int >= 0 or None, got {random_seed!r}")
        if (
            isinstance(cpu_processes, bool)
            or not isinstance(cpu_processes, int)
            or cpu_processes < 1
        ):
            raise ValueError(f"cpu_processes must be a positive int, got {cpu_processes!r}")
        if gpus is not None:
            if not isinstance(gpus, Iterable):
                raise ValueError(f"gpus must be a list of GPU ids, got {gpus!r}")
            gpus = list(gpus)
            if use_cpu:
                raise ValueError("use_cpu=True and gpus were both given; choose one")
            if not gpus or any(
                isinstance(g, bool) or not isinstance(g, int) or g < 0 for g in gpus
            ):
                raise ValueError(f"gpus must be a non-empty list of GPU ids >= 0, got {gpus!r}")
            if len(set(gpus)) != len(gpus):
                raise ValueError(f"gpus lists an id twice: {gpus!r}")
        if cpu_processes > 1 and use_cpu is False:
            raise ValueError("cpu_processes > 1 needs use_cpu=True (or use_cpu=None)")
        for name, folder in (("chkpt_root", chkpt_root), ("log_root", log_root)):
            if folder is not None and not isinstance(folder, str | os.PathLike):
                raise ValueError(f"{name} must be a folder path (str or Path), got {folder!r}")
        if chkpt_frequency is not None and chkpt_root is None:
            raise ValueError("chkpt_frequency needs chkpt_root: where should checkpoints go?")
        if enable_file_logging and log_root is None:
            raise ValueError("enable_file_logging=True needs log_root: where should logs go?")
        if (
            isinstance(collective_timeout, bool)
            or not isinstance(collective_timeout, int | float)
            or not 0 < collective_timeout < float("inf")
        ):
            raise ValueError(
                f"collective_timeout must be > 0 seconds (and finite), got {collective_timeout!r}"
            )

        self.run_name: str = run_name
        self.enable_deterministic: bool = enable_deterministic
        self.random_seed: int | None = random_seed
        self.enable_progress_bar: bool = enable_progress_bar
        self.enable_file_logging: bool = enable_file_logging
        self.chkpt_root: Path | None = None if chkpt_root is None else Path(chkpt_root)
        self.log_root: Path | None = None if log_root is None else Path(log_root)
        self.collective_timeout: float = float(collective_timeout)
        self.train_exceptions: list[type[BaseException]] = _check_exceptions(
            "train_exceptions", train_exceptions
        )
        self.test_exceptions: list[type[BaseException]] = _check_exceptions(
            "test_exceptions", test_exceptions
        )

        self._context = dist_support.context_from_environment()
        if gpus is None and use_cpu is None:
            use_cpu = not torch.cuda.is_available()
        self.use_cpu: bool = bool(use_cpu) if gpus is None else False
        if not self.use_cpu:
            if not torch.cuda.is_available():
                raise ValueError(
                    "GPU training was asked for (use_cpu=False or gpus given) but CUDA is not "
                    "available; pass use_cpu=True"
                )
            if gpus is None:
                # Under torchrun each process takes the GPU of its local rank.
                launched = self._context.in_process_group
                gpus = list(range(torch.cuda.device_count())) if launched else [0]
            if max(gpus) >= torch.cuda.device_count():
                raise ValueError(
                    f"gpus={gpus!r} but only {torch.cuda.device_count()} GPU(s) are visible"
                )
        self.gpus: list[int] = [] if gpus is None else list(gpus)
        self.cpu_processes: int = cpu_processes if self.use_cpu else 1

        self._plugins = PluginTable()
        #: Carries values from rank 0 to the main process; set by `fit` when it spawns
        #: worker processes, ``None`` otherwise.
        self.queue: dist_support.ResultQueue | None = None
        #: The training state of the current (or last) run.
        self.state: TrainingState = TrainingState()
        #: The model of the current (or last) `fit` / `test`.
        self.model: Model | None = None

    # -- configuration ------------------------------------------------------------------

    @property
    def config(self) -> LoopConfig:
        """The training schedule."""
        return self._config

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

    def plugin(self, plug_id: str, cls: type[P]) -> P:
        """The plug-in ``plug_id``, checked to be a ``cls`` (typed lookup)."""
        return self._plugins.get_as(plug_id, cls)

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
        return state.current_iteration % self._config.accumulation_steps == 0

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
        """
        return self._enter("fit", model, datamodule)

    def test(self, model: Model, datamodule: DataModule) -> bool:
        """Test ``model`` on ``datamodule``'s test data.

        Loads the newest checkpoint, or calls ``model.load_for_testing()`` when there is
        none.
        """
        return self._enter("test", model, datamodule)

    def _enter(self, method: EntryPoint, model: Model, datamodule: DataModule) -> bool:
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
            spawn(_EntryJob(self, method, model, datamodule), launch, self.queue)
            return True
        with dist_support.process_group(
            self._context, backend=backend, timeout=self.collective_timeout, device=self.device
        ):
            return self._run_here(method, model, datamodule)

    def _needs_spawn(self) -> bool:
        return self.world_size > 1 and not self._context.in_process_group

    def _passthrough(self, method: EntryPoint) -> tuple[type[BaseException], ...]:
        """The exceptions that leave ``method`` unchanged."""
        return tuple(self.train_exceptions if method == "fit" else self.test_exceptions)

    def _run_here(self, method: EntryPoint, model: Model, datamodule: DataModule) -> bool:
        """Run ``fit`` or ``test`` in this process: a registered exception passes through
        unlogged, any other is logged with its traceback and re-raised."""
        run = self._fit if method == "fit" else self._test
        handler = self._start_logging(model)
        try:
            return run(model, datamodule)
        except self._passthrough(method):
            raise
        except Exception:
            logger.exception("%s failed on rank %d", method, self.rank)
            raise
        finally:
            if handler is not None:
                logger.removeHandler(handler)
                handler.close()

    def _start_logging(self, model: Model) -> logging.Handler | None:
        if not self.enable_file_logging or self.rank != 0:
            return None
        assert self.log_root is not None
        self.log_root.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(self.log_root / f"{self.run_name or model.save_name}.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        if logger.level == logging.NOTSET or logger.level > logging.INFO:
            logger.setLevel(logging.INFO)
        return handler

    def _prepare(self, model: Model, datamodule: DataModule, fast_init: bool) -> DispatchPlan:
        if not isinstance(model, Model):
            raise TypeError(f"model must be a helios.model.Model, got {type(model).__name__}")
        if not isinstance(datamodule, DataModule):
            raise TypeError(
                f"datamodule must be a helios.data.DataModule, got {type(datamodule).__name__}"
            )
        self._seed_and_determinism()
        self.model = model
        model.trainer = self
        model.device = self.device
        model.rank = self.rank
        model.is_distributed = self.is_distributed
        model.map_loc = self.map_loc
        datamodule.is_distributed = self.is_distributed
        datamodule.rank = self.rank
        datamodule.world_size = self.world_size
        plan = DispatchPlan.build(self._plugins)
        for plugin in plan.plugins:
            plugin.trainer = self
            plugin.device = self.device
            plugin.rank = self.rank
            plugin.is_distributed = self.is_distributed
            plugin.map_loc = self.map_loc
        datamodule.prepare_data()
        datamodule.setup()
        for plugin in plan.plugins:
            plugin.setup()
        model.setup(fast_init)
        return plan

    def _seed_and_determinism(self) -> None:
        if self.random_seed is not None:
            random.seed(self.random_seed)
            torch.manual_seed(self.random_seed)
            with contextlib.suppress(ImportError):
                import numpy as np

                np.random.seed(self.random_seed)
        if self.enable_deterministic:
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False

    def _loader(self, loader: DataLoader[Any] | None, what: str) -> DataLoader[Any] | None:
        if loader is None:
            return None
        if not isinstance(loader, DataLoader):
            raise TypeError(f"{what} must return a torch DataLoader or None, got {loader!r}")
        sampler = loader.sampler
        if isinstance(sampler, ResumableSampler) and self.random_seed is not None:
            sampler.seed = self.random_seed
        if self.is_distributed:
            return dist_support.shard_loader(loader, self.rank, self.world_size)
        return loader

    # -- fit ----------------------------------------------------------------------------

    def _fit(self, model: Model, datamodule: DataModule) -> bool:
        plan = self._prepare(model, datamodule, fast_init=False)
        try:
            train_loader = self._loader(datamodule.train_dataloader(), "train_dataloader()")
            if train_loader is None:
                raise ValueError(
                    "the data module returned no training data: train_dataloader() gave None"
                )
            valid_loader = self._loader(datamodule.valid_dataloader(), "valid_dataloader()")
            if valid_loader is None and self._config.valid_frequency is not None:
                raise ValueError(
                    "valid_frequency is set but valid_dataloader() returned None; return a "
                    "validation loader or drop valid_frequency"
                )
            state, rng = self._resume(model, plan)
            self._train(model, plan, train_loader, valid_loader, state, rng)
        finally:
            datamodule.teardown()
        return True

    def _resume(
        self, model: Model, plan: DispatchPlan
    ) -> tuple[TrainingState, dict[str, Any] | None]:
        folder = self.checkpoint_folder(model)
        if folder is None:
            return TrainingState(), None
        if self.rank == 0:
            remove_partial_writes(folder)
        found = find_checkpoints(folder)
        if not found:
            return TrainingState(), None
        newest = found[-1]
        content = load_checkpoint(newest, self.map_loc)
        try:
            model.load_state_dict(content["model"])
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {newest} does not fit model {model.save_name!r}: {error}. Was it "
                "written by another model? Use another save_name or chkpt_root to start over."
            ) from error
        saved_plugins = content["plugins"]
        for plugin in plan.plugins:
            if plugin.plug_id in saved_plugins:
                plugin.load_state_dict(saved_plugins[plugin.plug_id])
        state = training_state_of(content)
        logger.info("resuming %s from %s", model.save_name, newest)
        rng_states = content["rng"]
        if not isinstance(rng_states, list) or not rng_states:
            raise CheckpointError(f"checkpoint {newest} has no random-generator states")
        # Each rank continues its own random stream (a smaller run reuses rank 0's).
        rng = rng_states[self.rank] if self.rank < len(rng_states) else rng_states[0]
        return attrs.evolve(state, running_iter=0, average_iter_time=0.0), rng

    def _save(self, model: Model, plan: DispatchPlan, state: TrainingState) -> None:
        # Every rank's generators are kept, so a resumed rank continues its own stream.
        rng_states = self._context.gather(capture_rng())
        if self.rank != 0:
            return
        folder = self.checkpoint_folder(model)
        assert folder is not None
        content = {
            "version": FORMAT_VERSION,
            "training_state": state_to_dict(state),
            "model": model.state_dict(),
            "plugins": {plugin.plug_id: plugin.state_dict() for plugin in plan.plugins},
            "rng": rng_states,
            "data": {"epoch": state.global_epoch, "position": state.dataset_iter},
        }
        save_checkpoint(folder / checkpoint_name(state), content)

    def _epoch_batches(self, loader: DataLoader[Any], epoch: int, skip: int) -> Iterator[Any]:
        sampler = loader.sampler
        set_epoch = getattr(sampler, "set_epoch", None)
        if callable(set_epoch):
            set_epoch(epoch)
        if skip and isinstance(sampler, ResumableSampler) and loader.batch_size is not None:
            sampler.set_start(skip * loader.batch_size)
            return iter(loader)
        iterator = iter(loader)
        return itertools.islice(iterator, skip, None) if skip else iterator

    def _ask_stop(self, model: Model, plan: DispatchPlan) -> bool:
        # Both are asked every time: a stop request is never skipped by a short-circuit.
        from_plugin = plan.should_stop()
        from_model = model.should_training_stop()
        return from_plugin or from_model

    def _train(
        self,
        model: Model,
        plan: DispatchPlan,
        loader: DataLoader[Any],
        valid_loader: DataLoader[Any] | None,
        state: TrainingState,
        rng: dict[str, Any] | None,
    ) -> None:
        config = self._config
        process = plan.training_batch
        # One collective per batch only when some party can ask to stop mid-epoch.
        may_stop = plan.stops_per_batch or (
            type(model).should_training_stop is not Model.should_training_stop
        )
        progress = Progress(self, state) if self.enable_progress_bar and self.rank == 0 else None
        self.state = state

        for plugin in plan.plugins:
            plugin.on_training_start()
        model.on_training_start()
        model.train()
        stop = is_done(state, config)
        seconds = 0.0
        while not stop:
            epoch = state.global_epoch
            model.on_training_epoch_start(epoch)
            batches = self._epoch_batches(loader, epoch, state.dataset_iter)
            if rng is not None:
                # After the loader's iterator exists: creating it draws from the RNG,
                # which the interrupted run had already done before this point.
                restore_rng(rng)
                rng = None
            if progress is not None:
                progress.start_epoch(epoch, loader, state)
            ended_early = False
            skipped = state.dataset_iter
            drawn = 0
            for batch in batches:
                drawn += 1
                start = time.perf_counter()
                outcome = after_batch(state, config, seconds)
                state = outcome.state
                self.state = state
                batch = process(batch, state)
                model.on_training_batch_start(state)
                model.train_step(batch, state)
                model.on_training_batch_end(state, outcome.should_log)
                if outcome.should_log:
                    self._log_progress(model, state)
                if progress is not None:
                    progress.batch(state, model, outcome.stepped)
                stop = self._ask_stop(model, plan)
                if may_stop:
                    stop = self._context.any(stop)
                if outcome.should_validate and valid_loader is not None:
                    state, stop_now = self._validate(model, plan, valid_loader, state, progress)
                    stop = stop or stop_now
                if outcome.should_checkpoint:
                    self._save(model, plan, state)
                seconds = time.perf_counter() - start
                if stop or outcome.done:
                    stop = True
                    ended_early = True
                    break
            model.on_training_epoch_end(epoch)
            if ended_early:
                break
            if drawn == 0 and skipped == 0:
                # An empty loader would otherwise loop forever.
                _check_nonempty(loader)
            epoch_outcome = after_epoch(state, config)
            state = epoch_outcome.state
            self.state = state
            if epoch_outcome.should_validate and valid_loader is not None:
                state, stop_now = self._validate(model, plan, valid_loader, state, progress)
                stop = stop or stop_now
            if epoch_outcome.should_checkpoint:
                self._save(model, plan, state)
            stop = stop or epoch_outcome.done
        if progress is not None:
            progress.close(state)
        for plugin in plan.plugins:
            plugin.on_training_end()
        model.on_training_end()

    def _validate(
        self,
        model: Model,
        plan: DispatchPlan,
        loader: DataLoader[Any],
        state: TrainingState,
        progress: Progress | None,
    ) -> tuple[TrainingState, bool]:
        cycle = state.validation_cycles + 1
        process = plan.validation_batch
        for plugin in plan.plugins:
            plugin.on_validation_start(cycle)
        model.on_validation_start(cycle)
        model.eval()
        batches = Progress.wrap(loader, "validation") if progress is not None else loader
        _evaluate(
            batches,
            process,
            model.on_validation_batch_start,
            model.valid_step,
            model.on_validation_batch_end,
        )
        for plugin in plan.plugins:
            plugin.on_validation_end(cycle)
        model.on_validation_end(cycle)
        model.train()
        outcome = after_validation(state, self._config, model.have_metrics_improved())
        self.state = outcome.state
        # The observe-after-model point: the model's metrics for this cycle are final.
        stop = self._ask_stop(model, plan) or outcome.stop_early
        return outcome.state, self._context.any(stop)

    def _log_progress(self, model: Model, state: TrainingState) -> None:
        if self.rank != 0:
            return
        loss = model.running_loss()
        logger.info(
            "epoch %d iteration %d%s (%.2f ms/batch)",
            state.global_epoch,
            state.global_iteration,
            "" if loss is None else f" loss {loss:.6g}",
            state.average_iter_time * 1e3,
        )

    # -- test ---------------------------------------------------------------------------

    def _test(self, model: Model, datamodule: DataModule) -> bool:
        plan = self._prepare(model, datamodule, fast_init=True)
        try:
            loader = self._loader(datamodule.test_dataloader(), "test_dataloader()")
            if loader is None:
                raise ValueError(
                    "the data module returned no test data: test_dataloader() gave None"
                )
            folder = self.checkpoint_folder(model)
            found = find_checkpoints(folder) if folder is not None else []
            if found:
                content = load_checkpoint(found[-1], self.map_loc)
                try:
                    model.load_state_dict(content["model"], fast_init=True)
                except Exception as error:
                    raise CheckpointError(
                        f"checkpoint {found[-1]} does not fit model {model.save_name!r}: {error}"
                    ) from error
            else:
                model.load_for_testing()
            process = plan.testing_batch
            for plugin in plan.plugins:
                plugin.on_testing_start()
            model.on_testing_start()
            model.eval()
            show = self.enable_progress_bar and self.rank == 0
            _evaluate(
                Progress.wrap(loader, "testing") if show else loader,
                process,
                model.on_testing_batch_start,
                model.test_step,
                model.on_testing_batch_end,
            )
            for plugin in plan.plugins:
                plugin.on_testing_end()
            model.on_testing_end()
        finally:
            datamodule.teardown()
        return True


@attrs.frozen
class _EntryJob:
    """``fit`` or ``test`` as a job for spawned processes (it pickles with its parts)."""

    trainer: Trainer
    method: EntryPoint
    model: Model
    datamodule: DataModule

    def __call__(self, context: dist_support.Context, /) -> bool:
        self.trainer._context = context
        return self.trainer._run_here(self.method, self.model, self.datamodule)


def _evaluate(
    batches: Iterable[Any],
    process: Callable[[Any, int], Any],
    before: Callable[[int], None],
    step: Callable[[Any, int], None],
    after: Callable[[int], None],
) -> None:
    """The validation / testing loop: no gradients, the plug-in's batch, the model's hooks."""
    with torch.no_grad():
        for index, batch in enumerate(batches):
            processed = process(batch, index)
            before(index)
            step(processed, index)
            after(index)


def _check_nonempty(loader: DataLoader[Any]) -> None:
    raise ValueError(
        f"the training loader yielded no batches in a whole epoch ({loader!r}); training "
        "cannot make progress. Check the dataset size, batch_size and drop_last."
    )
