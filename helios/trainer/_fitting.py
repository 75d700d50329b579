"""One training run in this process: the shell that performs the loop core's actions.

Every decision (when to validate, checkpoint, log or stop; whether a stop answer needs a
collective; what the state becomes) is made by `helios.core.loop.step`. `TrainingRun`
reports what happened and does what it is told: it draws batches, runs the hooks, times
each batch, asks the stop question, validates and writes checkpoints.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import attrs
import torch
from torch.utils.data import DataLoader

import helios.core.loop as lp
from helios.core import TrainingState
from helios.core.loop import checkpoint_name, state_to_dict
from helios.data import ResumableSampler
from helios.model import Model
from helios.plugins import MapLocation
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
from helios.trainer._logging import logger
from helios.trainer._plan import DispatchPlan
from helios.trainer._progress import Progress

__all__ = ["Collectives", "RunCheckpoints", "TrainingRun", "evaluate", "run_testing"]


@attrs.frozen
class Collectives:
    """What a run needs of the other processes (identity functions in one process)."""

    #: True on every rank when true on any rank.
    any: Callable[[bool], bool]
    #: Every rank's value, in rank order.
    gather: Callable[[Any], list[Any]]
    distributed: bool = False


@attrs.frozen
class RunCheckpoints:
    """Writing and resuming a model's checkpoints from one process of a run."""

    folder: Path | None
    rank: int
    map_loc: MapLocation
    collectives: Collectives

    def resume(
        self, model: Model, plan: DispatchPlan
    ) -> tuple[TrainingState, dict[str, Any] | None]:
        """Load the newest checkpoint into the model and plug-ins; its state and this
        rank's random-generator states (a fresh state and ``None`` without one)."""
        folder = self.folder
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
        if self.rank == 0:
            logger.info("resuming %s from checkpoint %s", model.save_name, newest)
        rng_states = content["rng"]
        if not isinstance(rng_states, list) or not rng_states:
            raise CheckpointError(f"checkpoint {newest} has no random-generator states")
        # Each rank continues its own random stream (a smaller run reuses rank 0's).
        rng = rng_states[self.rank] if self.rank < len(rng_states) else rng_states[0]
        return training_state_of(content), rng

    def load_for_testing(self, model: Model) -> None:
        """Load the newest checkpoint's model state for testing, or call
        ``model.load_for_testing()`` when there is none."""
        found = find_checkpoints(self.folder) if self.folder is not None else []
        if not found:
            model.load_for_testing()
            return
        content = load_checkpoint(found[-1], self.map_loc)
        try:
            model.load_state_dict(content["model"], fast_init=True)
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {found[-1]} does not fit model {model.save_name!r}: {error}"
            ) from error

    def save(self, model: Model, plan: DispatchPlan, state: TrainingState) -> None:
        """Write a checkpoint of ``state`` (rank 0 writes; every rank's RNG is kept)."""
        rng_states = self.collectives.gather(capture_rng())
        if self.rank != 0:
            return
        assert self.folder is not None
        content = {
            "version": FORMAT_VERSION,
            "training_state": state_to_dict(state),
            "model": model.state_dict(),
            "plugins": {plugin.plug_id: plugin.state_dict() for plugin in plan.plugins},
            "rng": rng_states,
            "data": {"epoch": state.global_epoch, "position": state.dataset_iter},
        }
        save_checkpoint(self.folder / checkpoint_name(state), content)


def evaluate(
    batches: Iterable[Any],
    process: Callable[[Any, int], Any],
    before: Callable[[int], None],
    run_step: Callable[[Any, int], None],
    after: Callable[[int], None],
) -> None:
    """The validation / testing loop: no gradients, the plug-in's batch, the model's hooks."""
    with torch.no_grad():
        for index, batch in enumerate(batches):
            processed = process(batch, index)
            before(index)
            run_step(processed, index)
            after(index)


def run_testing(model: Model, plan: DispatchPlan, batches: Iterable[Any]) -> None:
    """The test pass: plug-ins' then the model's start hooks, the batches, the end hooks."""
    for plugin in plan.plugins:
        plugin.on_testing_start()
    model.on_testing_start()
    model.eval()
    evaluate(
        batches,
        plan.testing_batch,
        model.on_testing_batch_start,
        model.test_step,
        model.on_testing_batch_end,
    )
    for plugin in plan.plugins:
        plugin.on_testing_end()
    model.on_testing_end()


def _epoch_batches(loader: DataLoader[Any], epoch: int, skip: int) -> Iterator[Any]:
    sampler = loader.sampler
    set_epoch = getattr(sampler, "set_epoch", None)
    if callable(set_epoch):
        set_epoch(epoch)
    if skip and isinstance(sampler, ResumableSampler) and loader.batch_size is not None:
        sampler.set_start(skip * loader.batch_size)
        return iter(loader)
    iterator = iter(loader)
    return itertools.islice(iterator, skip, None) if skip else iterator


class TrainingRun:
    """Performs the actions of `helios.core.loop.step` for one `fit` in this process."""

    def __init__(
        self,
        *,
        config: lp.LoopConfig,
        model: Model,
        plan: DispatchPlan,
        loader: DataLoader[Any],
        valid_loader: DataLoader[Any] | None,
        checkpoints: RunCheckpoints,
        progress: Progress | None,
        log: Callable[[Model, TrainingState], None],
        on_state: Callable[[TrainingState], None],
    ) -> None:
        self._config = config
        self._model = model
        self._plan = plan
        self._loader = loader
        self._valid_loader = valid_loader
        self._checkpoints = checkpoints
        self._progress = progress
        self._log = log
        self._on_state = on_state
        self._collectives = checkpoints.collectives
        self._batches: Iterator[Any] = iter(())
        self._drawn = 0
        self._epoch = 0
        self._rng: dict[str, Any] | None = None

    def run(self, state: TrainingState, rng: dict[str, Any] | None) -> TrainingState:
        """Train from ``state`` (``rng``: the generators to restore on resuming)."""
        self._rng = rng
        model, plan = self._model, self._plan
        for plugin in plan.plugins:
            plugin.on_training_start()
        model.on_training_start()
        model.train()
        # One collective per batch only when some party can ask to stop mid-epoch.
        overridden = type(model).should_training_stop is not Model.should_training_stop
        start = lp.Start(
            distributed=self._collectives.distributed,
            stops_per_batch=plan.stops_per_batch or overridden,
        )
        config, on_state, perform = self._config, self._on_state, self._perform
        run_batch = self._batch_runner()
        loop, actions = lp.step(lp.Loop(state), config, start)
        run_batch_action = lp.RunBatch
        while True:
            on_state(loop.state)
            event = None
            for action in actions:
                # The action of almost every step, taken first.
                if type(action) is run_batch_action:
                    event = run_batch(*action)
                else:
                    event = perform(action, loop.state)
            if event is None:
                break
            loop, actions = lp.step(loop, config, event)
        if self._progress is not None:
            self._progress.close(loop.state)
        for plugin in plan.plugins:
            plugin.on_training_end()
        model.on_training_end()
        return loop.state

    def _perform(self, action: lp.Action, state: TrainingState) -> lp.Event | None:
        match action:
            case lp.StartEpoch(epoch, skip):
                self._start_epoch(epoch, skip, state)
            case lp.Log(logged):
                self._log(self._model, logged)
            case lp.AskStop(combine, early):
                return lp.StopAnswered(self._ask_stop(combine, early))
            case lp.Validate(cycle):
                return lp.ValidationRan(self._validate(cycle))
            case lp.Checkpoint(saved):
                self._checkpoints.save(self._model, self._plan, saved)
            case lp.EndTraining(mid_epoch):
                if mid_epoch:
                    self._model.on_training_epoch_end(self._epoch)
        return None

    def _start_epoch(self, epoch: int, skip: int, state: TrainingState) -> None:
        self._epoch, self._drawn = epoch, 0
        self._model.on_training_epoch_start(epoch)
        self._batches = _epoch_batches(self._loader, epoch, skip)
        if self._rng is not None:
            # After the loader's iterator exists: creating it draws from the generators,
            # which the interrupted run had already done before this point.
            restore_rng(self._rng)
            self._rng = None
        if self._progress is not None:
            self._progress.start_epoch(epoch, self._loader, state)

    def _ask_stop(self, combine: bool, early: bool) -> bool:
        # Both are asked every time: a request is never skipped by a short-circuit.
        from_plugin = self._plan.should_stop()
        from_model = self._model.should_training_stop()
        stop = from_plugin or from_model or early
        return self._collectives.any(stop) if combine else stop

    def _batch_runner(self) -> Callable[[TrainingState, bool, bool], lp.Event]:
        """The work of one batch, with what it touches bound once: the hot path."""
        model, progress, clock = self._model, self._progress, time.perf_counter
        process, plugin_stop = self._plan.training_batch, self._plan.should_stop
        before, train, after = (
            model.on_training_batch_start,
            model.train_step,
            model.on_training_batch_end,
        )
        model_stop, combine_all = model.should_training_stop, self._collectives.any
        accumulation = self._config.accumulation_steps
        ran, exhausted = lp.BatchRan, lp.EpochExhausted

        def run_batch(state: TrainingState, should_log: bool, combine: bool) -> lp.Event:
            try:
                batch = next(self._batches)
            except StopIteration:
                model.on_training_epoch_end(self._epoch)
                return exhausted(self._drawn)
            self._drawn += 1
            start = clock()
            batch = process(batch, state)
            before(state)
            train(batch, state)
            after(state, should_log)
            # Both are asked every time: a request is never skipped by a short-circuit.
            from_plugin = plugin_stop()
            stop = model_stop() or from_plugin
            if combine:
                stop = combine_all(stop)
            seconds = clock() - start
            if progress is not None:
                progress.batch(state, model, state.global_iteration % accumulation == 0)
            return ran(seconds, stop)

        return run_batch

    def _validate(self, cycle: int) -> bool:
        model, plan, loader = self._model, self._plan, self._valid_loader
        assert loader is not None  # the trainer refuses valid_frequency without a loader
        for plugin in plan.plugins:
            plugin.on_validation_start(cycle)
        model.on_validation_start(cycle)
        model.eval()
        batches = Progress.wrap(loader, "validation") if self._progress is not None else loader
        evaluate(
            batches,
            plan.validation_batch,
            model.on_validation_batch_start,
            model.valid_step,
            model.on_validation_batch_end,
        )
        for plugin in plan.plugins:
            plugin.on_validation_end(cycle)
        model.on_validation_end(cycle)
        model.train()
        return model.have_metrics_improved()
