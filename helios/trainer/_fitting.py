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
from typing import Any

import torch
from torch.utils.data import DataLoader

import helios.core.loop as lp
from helios.core import TrainingState
from helios.data import ResumableSampler
from helios.model import Model
from helios.trainer._checkpoint import restore_rng
from helios.trainer._plan import DispatchPlan
from helios.trainer._progress import Progress
from helios.trainer._run_checkpoints import RunCheckpoints

__all__ = ["TrainingRun", "evaluate", "run_testing", "run_validation"]


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


def run_validation(model: Model, plan: DispatchPlan, batches: Iterable[Any], cycle: int) -> None:
    """A validation pass: plug-ins' then the model's start hooks, the batches (no
    gradients), the end hooks; the model is left in evaluation mode."""
    for plugin in plan.plugins:
        plugin.on_validation_start(cycle)
    model.on_validation_start(cycle)
    model.eval()
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
        self._on_state(state)  # hooks from on_training_start on see where the run stands
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
                for watcher in self._plan.watchers:
                    if watcher.on_log is not None:
                        watcher.on_log(logged)
            case lp.AskStop(combine, early):
                return lp.StopAnswered(self._ask_stop(combine, early))
            case lp.Validate(cycle):
                return lp.ValidationRan(self._validate(cycle))
            case lp.Checkpoint(saved):
                self._on_state(saved)  # plug-ins' state_dict may read what is recorded
                path = self._checkpoints.save(self._model, self._plan, saved)
                if path is not None:
                    for watcher in self._plan.watchers:
                        if watcher.on_checkpoint is not None:
                            watcher.on_checkpoint(path, saved)
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
        batches = Progress.wrap(loader, "validation") if self._progress is not None else loader
        run_validation(model, plan, batches, cycle)
        for watcher in plan.watchers:
            if watcher.on_metrics is not None:
                watcher.on_metrics(cycle)
        model.train()
        return model.have_metrics_improved()
