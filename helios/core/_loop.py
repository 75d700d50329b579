"""The decisions of the training loop, as one pure transition over events.

The trainer (the shell) reports events — training started, a batch was drawn, it ran
(and what the stop question got), a stop question was answered after validation, a
validation pass ended, the epoch's data ran out — and `step` answers with the next `Loop`
(the training state and what is decided) and the actions to perform. Every decision of
the loop is made here; the shell only performs.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from helios.core._checks import is_a, positive_int, positive_int_or_none
from helios.core._events import (
    LATER_CHECKPOINT,
    NEXT_BATCH,
    NEXT_EPOCH,
    Action,
    AskStop,
    BatchRan,
    Checkpoint,
    EndTraining,
    EpochExhausted,
    Event,
    Later,
    Log,
    Loop,
    RunBatch,
    Start,
    StartEpoch,
    StopAnswered,
    Validate,
    ValidationRan,
)
from helios.core._state import TrainingState, TrainingUnit

__all__ = ["LoopConfig", "checkpoint_name", "is_done", "parse_checkpoint_name", "step"]


def _check_total_steps(_: object, __: attrs.Attribute[Any], steps: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int | float):
        raise ValueError(f"total_steps must be a positive int or float('inf'), got {steps!r}")
    if isinstance(steps, float) and steps != math.inf:
        raise ValueError(f"total_steps must be an int or float('inf'), got the float {steps!r}")
    if steps < 1:
        raise ValueError(f"total_steps must be at least 1, got {steps!r}")


@attrs.frozen
class LoopConfig:
    """The schedule of a training run.

    Attributes:
        unit: What ``total_steps`` and the valid/checkpoint frequencies count.
        total_steps: Epochs or optimiser steps to train for; ``math.inf`` trains until
            early stopping (``early_stop_cycles`` is then required).
        valid_frequency: Validate every this many units (``None``: never).
        chkpt_frequency: Checkpoint every this many units (``None``: never).
        print_frequency: Log every this many optimiser steps (``None``: never).
        accumulation_steps: Batches per optimiser step.
        early_stop_cycles: Stop after this many validations in a row without improvement.

    Raises:
        ValueError: naming the argument that is out of range.
    """

    unit: TrainingUnit = attrs.field(
        default=TrainingUnit.EPOCH,
        validator=is_a(TrainingUnit, "a TrainingUnit", "train_unit"),
    )
    total_steps: int | float = attrs.field(default=1, validator=_check_total_steps)
    valid_frequency: int | None = attrs.field(default=None, validator=positive_int_or_none())
    chkpt_frequency: int | None = attrs.field(default=None, validator=positive_int_or_none())
    print_frequency: int | None = attrs.field(default=None, validator=positive_int_or_none())
    accumulation_steps: int = attrs.field(default=1, validator=positive_int())
    early_stop_cycles: int | None = attrs.field(default=None, validator=positive_int_or_none())

    def __attrs_post_init__(self) -> None:
        if self.total_steps == math.inf and self.early_stop_cycles is None:
            raise ValueError(
                "total_steps=float('inf') trains forever unless early_stop_cycles is set"
            )
        if self.early_stop_cycles is not None and self.valid_frequency is None:
            raise ValueError(
                "early_stop_cycles needs valid_frequency: early stopping counts validations"
            )


_ITERATION = TrainingUnit.ITERATION


def _due(count: int, frequency: int | None) -> bool:
    return frequency is not None and count % frequency == 0


def is_done(state: TrainingState, config: LoopConfig) -> bool:
    """Whether ``state`` has already reached ``total_steps`` (e.g. a finished run resumed)."""
    if config.unit is TrainingUnit.EPOCH:
        return state.global_epoch >= config.total_steps
    return state.current_iteration >= config.total_steps


def step(loop: Loop, config: LoopConfig, event: Event) -> tuple[Loop, tuple[Action, ...]]:
    """The loop's transition: the next loop state and the actions to perform, in order.

    The actions end with the one whose outcome the loop waits for (it reports the next
    event) or with `EndTraining`; those before it (`StartEpoch`, `Log`, `Checkpoint`)
    report nothing. The input ``loop`` is left as it is.

    Raises:
        ValueError: a whole epoch yielded no batch (training could never progress).
        TypeError: ``event`` is not a loop event.
    """
    if isinstance(event, BatchRan):
        return _batch_ran(loop, config, event)
    if isinstance(event, StopAnswered):
        return _follow(Loop(loop.state, loop.stop or event.stop, loop.facts, loop.then), config)
    if isinstance(event, ValidationRan):
        return _validation_ran(loop, config, event.improved)
    if isinstance(event, EpochExhausted):
        return _epoch_ended(loop, config, event.batches)
    if not isinstance(event, Start):
        raise TypeError(f"step takes a loop event, got {event!r}")
    # A resumed run starts its timing afresh: the old process's is not ours.
    state = attrs.evolve(loop.state, running_iter=0, average_iter_time=0.0)
    return _follow(Loop(state, False, event, (NEXT_EPOCH,)), config)


def _follow(loop: Loop, config: LoopConfig) -> tuple[Loop, tuple[Action, ...]]:
    """Issue the decided actions up to the next one that reports an event."""
    issued: list[Action] = []
    then = loop.then
    for index, action in enumerate(then):
        if action is LATER_CHECKPOINT:
            issued.append(Checkpoint(loop.state))  # the state as it is now, validated
            continue
        if isinstance(action, Later):
            state = loop.state
            if loop.stop or is_done(state, config):
                issued.append(EndTraining(mid_epoch=action is NEXT_BATCH))
                return Loop(state, loop.stop, loop.facts), tuple(issued)
            if action is NEXT_EPOCH:
                issued.append(StartEpoch(state.global_epoch, state.dataset_iter))
            run = _run_next(state, loop.facts, config)
            issued.append(run)
            return Loop(state, loop.stop, loop.facts, (), run.state), tuple(issued)
        issued.append(action)
        if isinstance(action, AskStop | Validate):
            return Loop(loop.state, loop.stop, loop.facts, then[index + 1 :]), tuple(issued)
    raise AssertionError("a decided sequence always ends with what comes next")


def _run_next(s: TrainingState, facts: Start, config: LoopConfig) -> RunBatch:
    """Run the next batch with the state that counts it."""
    batches = s.global_iteration + 1
    stepped = batches % config.accumulation_steps == 0
    steps = s.current_iteration + stepped
    state = TrainingState(
        steps,
        batches,
        s.global_epoch,
        s.validation_cycles,
        s.dataset_iter + 1,
        s.early_stop_count,
        s.average_iter_time,
        s.running_iter,
    )
    log = stepped and _due(steps, config.print_frequency)
    return RunBatch(state, log, facts.distributed and facts.stops_per_batch)


def _batch_ran(loop: Loop, config: LoopConfig, ran: BatchRan) -> tuple[Loop, tuple[Action, ...]]:
    s = loop.running
    assert s is not None, "BatchRan reported with no batch asked for"
    running = s.running_iter + 1
    average = s.average_iter_time + (ran.seconds - s.average_iter_time) / running
    steps, batches, epoch = s.current_iteration, s.global_iteration, s.global_epoch
    cycles, drawn, waited = s.validation_cycles, s.dataset_iter, s.early_stop_count
    state = TrainingState(steps, batches, epoch, cycles, drawn, waited, average, running)
    stop = loop.stop or ran.stop
    facts = loop.facts
    accumulation, printing = config.accumulation_steps, config.print_frequency
    if batches % accumulation == 0:  # an optimiser step: something may be due
        by_iteration = config.unit is _ITERATION
        log = _due(steps, printing)
        validate = by_iteration and _due(steps, config.valid_frequency)
        checkpoint = by_iteration and _due(steps, config.chkpt_frequency)
        if log or validate or checkpoint:
            return _after_step(Loop(state, stop, facts), config, log, validate, checkpoint)
        if stop or (by_iteration and steps >= config.total_steps):
            return Loop(state, stop, facts), (EndTraining(True),)
    elif stop:
        return Loop(state, stop, facts), (EndTraining(True),)
    # The common case, kept short: the next batch (`_run_next`, written out).
    batches += 1
    stepped = batches % accumulation == 0
    steps += stepped
    after = TrainingState(steps, batches, epoch, cycles, drawn + 1, waited, average, running)
    should_log = stepped and printing is not None and steps % printing == 0
    run = RunBatch(after, should_log, facts.distributed and facts.stops_per_batch)
    return Loop(state, stop, facts, (), after), (run,)


def _after_step(
    loop: Loop, config: LoopConfig, log: bool, validate: bool, checkpoint: bool
) -> tuple[Loop, tuple[Action, ...]]:
    """What follows an optimiser step at which something is due."""
    state = loop.state
    then: list[Action | Later] = [Log(state)] if log else []
    if validate:
        then.append(Validate(state.validation_cycles + 1))
    if checkpoint:
        then.append(LATER_CHECKPOINT)
    then.append(NEXT_BATCH)
    return _follow(loop._replace(then=tuple(then)), config)


def _validation_ran(
    loop: Loop, config: LoopConfig, improved: bool
) -> tuple[Loop, tuple[Action, ...]]:
    old = loop.state
    count = 0 if improved else old.early_stop_count + 1
    state = attrs.evolve(old, validation_cycles=old.validation_cycles + 1, early_stop_count=count)
    cycles = config.early_stop_cycles
    # The observe-after-model point: the model's metrics for this cycle are final. Every
    # rank must agree to stop, so the answer (early stopping included) is combined.
    ask = AskStop(combine=loop.facts.distributed, early=cycles is not None and count >= cycles)
    return Loop(state, loop.stop, loop.facts, loop.then), (ask,)


def _epoch_ended(loop: Loop, config: LoopConfig, batches: int) -> tuple[Loop, tuple[Action, ...]]:
    old = loop.state
    if batches == 0 and old.dataset_iter == 0:
        raise ValueError(
            "the training loader yielded no batches in a whole epoch (train_dataloader()); "
            "training cannot make progress. Check the dataset size, batch_size and drop_last."
        )
    epoch = old.global_epoch + 1
    state = attrs.evolve(old, global_epoch=epoch, dataset_iter=0)
    then: list[Action | Later] = []
    if config.unit is TrainingUnit.EPOCH:
        if _due(epoch, config.valid_frequency):
            then.append(Validate(state.validation_cycles + 1))
        if _due(epoch, config.chkpt_frequency):
            then.append(LATER_CHECKPOINT)
    then.append(NEXT_EPOCH)
    return _follow(Loop(state, loop.stop, loop.facts, tuple(then)), config)


def checkpoint_name(state: TrainingState) -> str:
    """The checkpoint file name for ``state``: ``epoch_<e>_iter_<i>.pth``, with ``e`` the
    completed epochs and ``i`` the optimiser steps (``current_iteration``)."""
    return f"epoch_{state.global_epoch}_iter_{state.current_iteration}.pth"


_CHECKPOINT_NAME = re.compile(r"^epoch_(\d+)_iter_(\d+)\.pth$")


def parse_checkpoint_name(name: str) -> tuple[int, int] | None:
    """The ``(epoch, iteration)`` a checkpoint file name records, or ``None``.

    The inverse of `checkpoint_name`: ``epoch_<e>_iter_<i>.pth`` gives ``(e, i)``; any
    other name (a temporary file, a foreign file) gives ``None``.

    Examples:
        >>> from helios.core.loop import parse_checkpoint_name
        >>> parse_checkpoint_name("epoch_3_iter_120.pth")
        (3, 120)
        >>> parse_checkpoint_name(".epoch_3_iter_120.pth.x1.tmp") is None
        True
    """
    match = _CHECKPOINT_NAME.match(name)
    return None if match is None else (int(match[1]), int(match[2]))
