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
from typing import Any, NamedTuple

import attrs

from helios.core._checks import is_a, positive_int, positive_int_or_none
from helios.core._state import TrainingState, TrainingUnit

__all__ = [
    "Action",
    "AskStop",
    "BatchRan",
    "Checkpoint",
    "EndTraining",
    "EpochExhausted",
    "Event",
    "Log",
    "Loop",
    "LoopConfig",
    "RunBatch",
    "Start",
    "StartEpoch",
    "StopAnswered",
    "Validate",
    "ValidationRan",
    "checkpoint_name",
    "is_done",
    "parse_checkpoint_name",
    "step",
]


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


# Events and actions are named tuples: a training step makes a few of them, and tuples
# are the cheapest immutable records Python has (the step-overhead benchmark counts).

# -- events: what the shell reports ------------------------------------------------------


class Start(NamedTuple):
    """Training starts (or resumes) from the loop's state.

    Attributes:
        distributed: Several processes train together (stop answers must agree).
        stops_per_batch: Some party (a plug-in that claimed ``should_training_stop``, or
            the model) may ask to stop after any batch, not only after validation.
    """

    distributed: bool = False
    stops_per_batch: bool = True


class BatchRan(NamedTuple):
    """The batch `RunBatch` drew was trained on and the stop question answered.

    Attributes:
        seconds: The batch's own time: its plug-in processing, hooks and step.
        stop: The answer to the stop question `RunBatch` asked for.
    """

    seconds: float
    stop: bool


class StopAnswered(NamedTuple):
    """What the plug-ins and the model answered to `AskStop` (combined if asked)."""

    stop: bool


class ValidationRan(NamedTuple):
    """A validation pass ended; ``improved`` is the model's `have_metrics_improved()`."""

    improved: bool


class EpochExhausted(NamedTuple):
    """The epoch's data ran out after ``batches`` batches were drawn in this process."""

    batches: int


Event = Start | BatchRan | StopAnswered | ValidationRan | EpochExhausted


# -- actions: what the shell does ----------------------------------------------------------


class StartEpoch(NamedTuple):
    """Start epoch ``epoch`` (the model's epoch-start hook), skipping its first ``skip``
    batches (a resumed epoch). Reports nothing."""

    epoch: int
    skip: int


class RunBatch(NamedTuple):
    """Draw the epoch's next batch, train on it, then ask whether to stop; report
    `BatchRan`. When the epoch has no batch left, run the model's epoch-end hook and
    report `EpochExhausted` instead.

    Attributes:
        state: The state the hooks see (it counts the batch).
        should_log: This batch closes a ``print_frequency``-th optimiser step (the
            model's ``on_training_batch_end`` is told).
        combine: Combine the stop answer across processes (true on every rank if true on
            any): only when some party may ask to stop after a batch.
    """

    state: TrainingState
    should_log: bool
    combine: bool


class Log(NamedTuple):
    """Log the progress of ``state``. Reports nothing."""

    state: TrainingState


class AskStop(NamedTuple):
    """Ask the plug-in that decides stops and the model; report `StopAnswered`.

    Attributes:
        combine: Combine the answer across processes.
        early: Early stopping wants to stop as well (part of the answer).
    """

    combine: bool
    early: bool


class Validate(NamedTuple):
    """Run validation cycle ``cycle`` (1 for the first); report `ValidationRan`."""

    cycle: int


class Checkpoint(NamedTuple):
    """Write a checkpoint of ``state``. Reports nothing."""

    state: TrainingState


class EndTraining(NamedTuple):
    """Training is over; with ``mid_epoch`` the epoch in progress ends early, and its
    end hook has not run yet."""

    mid_epoch: bool


Action = StartEpoch | RunBatch | Log | AskStop | Validate | Checkpoint | EndTraining


class _Later(NamedTuple):
    """A step decided now and made concrete when reached: what it becomes depends on the
    answers that arrive in between."""

    what: str


_CHECKPOINT = _Later("a checkpoint of the state of that moment")
_NEXT_BATCH = _Later("the next batch, unless training stops")
_NEXT_EPOCH = _Later("the next epoch, unless training stops")


class Loop(NamedTuple):
    """The loop's own state: the training state and what is decided but not yet done.

    Attributes:
        state: Where training stands (the last batch that ran is counted).
        stop: A stop was requested (by a party or by early stopping).
        facts: The run's facts given at `Start`.
        then: What follows once the answer the loop waits for has come.
        running: The state of the batch `RunBatch` asked for, while it runs (it counts
            only once the batch is known to exist).
    """

    state: TrainingState
    stop: bool = False
    facts: Start = Start()
    then: tuple[Action | _Later, ...] = ()
    running: TrainingState | None = None


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
    """
    if isinstance(event, BatchRan):
        return _batch_ran(loop, config, event)
    if isinstance(event, StopAnswered):
        return _follow(Loop(loop.state, loop.stop or event.stop, loop.facts, loop.then), config)
    if isinstance(event, ValidationRan):
        return _validation_ran(loop, config, event.improved)
    if isinstance(event, EpochExhausted):
        return _epoch_ended(loop, config, event.batches)
    # Start: a resumed run starts its timing afresh, the old process's is not ours.
    state = attrs.evolve(loop.state, running_iter=0, average_iter_time=0.0)
    return _follow(Loop(state, False, event, (_NEXT_EPOCH,)), config)


def _follow(loop: Loop, config: LoopConfig) -> tuple[Loop, tuple[Action, ...]]:
    """Issue the decided actions up to the next one that reports an event."""
    issued: list[Action] = []
    then = loop.then
    for index, action in enumerate(then):
        if action is _CHECKPOINT:
            issued.append(Checkpoint(loop.state))  # the state as it is now, validated
            continue
        if isinstance(action, _Later):
            state = loop.state
            if loop.stop or is_done(state, config):
                issued.append(EndTraining(mid_epoch=action is _NEXT_BATCH))
                return Loop(state, loop.stop, loop.facts), tuple(issued)
            if action is _NEXT_EPOCH:
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
    steps = s.current_iteration
    state = TrainingState(
        steps,
        s.global_iteration,
        s.global_epoch,
        s.validation_cycles,
        s.dataset_iter,
        s.early_stop_count,
        average,
        running,
    )
    stop = loop.stop or ran.stop
    facts = loop.facts
    stepped = s.global_iteration % config.accumulation_steps == 0
    if not stepped:  # inside an accumulation window: nothing is due
        if stop:
            return Loop(state, stop, facts), (EndTraining(True),)
        run = _run_next(state, facts, config)
        return Loop(state, stop, facts, (), run.state), (run,)
    log = _due(steps, config.print_frequency)
    by_iteration = config.unit is TrainingUnit.ITERATION
    validate = by_iteration and _due(steps, config.valid_frequency)
    checkpoint = by_iteration and _due(steps, config.chkpt_frequency)
    if not (log or validate or checkpoint):  # the common case, kept short
        if stop or (by_iteration and steps >= config.total_steps):
            return Loop(state, stop, facts), (EndTraining(True),)
        run = _run_next(state, facts, config)
        return Loop(state, stop, facts, (), run.state), (run,)
    then: list[Action | _Later] = [Log(state)] if log else []
    if validate:
        then.append(Validate(state.validation_cycles + 1))
    if checkpoint:
        then.append(_CHECKPOINT)
    then.append(_NEXT_BATCH)
    return _follow(Loop(state, stop, facts, tuple(then)), config)


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
    then: list[Action | _Later] = []
    if config.unit is TrainingUnit.EPOCH:
        if _due(epoch, config.valid_frequency):
            then.append(Validate(state.validation_cycles + 1))
        if _due(epoch, config.chkpt_frequency):
            then.append(_CHECKPOINT)
    then.append(_NEXT_EPOCH)
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
