"""The decisions of the training loop, as pure functions of immutable values.

The trainer (the shell) feeds events in — a batch was trained on, an epoch ended, a
validation pass ended — and gets back the next `TrainingState` plus what to do next.
"""

from __future__ import annotations

import math
import re
from typing import Any

import attrs

from helios.core._checks import is_a, positive_int, positive_int_or_none
from helios.core._state import TrainingState, TrainingUnit

__all__ = [
    "BatchOutcome",
    "EpochOutcome",
    "LoopConfig",
    "ValidationOutcome",
    "after_batch",
    "after_epoch",
    "after_validation",
    "checkpoint_name",
    "is_done",
    "parse_checkpoint_name",
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


@attrs.frozen
class BatchOutcome:
    """What follows a training batch."""

    state: TrainingState
    #: The batch closed an accumulation window (an optimiser step happened).
    stepped: bool
    should_log: bool
    should_validate: bool
    should_checkpoint: bool
    #: ``total_steps`` is reached.
    done: bool


@attrs.frozen
class EpochOutcome:
    """What follows the end of an epoch."""

    state: TrainingState
    should_validate: bool
    should_checkpoint: bool
    done: bool


@attrs.frozen
class ValidationOutcome:
    """What follows a validation pass."""

    state: TrainingState
    #: ``early_stop_cycles`` validations in a row brought no improvement.
    stop_early: bool


def _due(count: int, frequency: int | None) -> bool:
    return frequency is not None and count % frequency == 0


def after_batch(state: TrainingState, config: LoopConfig, seconds: float) -> BatchOutcome:
    """Count one training batch that took ``seconds``.

    ``global_iteration`` counts every batch; ``current_iteration`` counts optimiser steps
    (closed accumulation windows), as in Helios. Returns the new state and whether to
    log, validate or checkpoint now and whether training is done. With
    ``TrainingUnit.EPOCH`` only logging is decided per batch.
    """
    global_iteration = state.global_iteration + 1
    running = state.running_iter + 1
    stepped = global_iteration % config.accumulation_steps == 0
    current = state.current_iteration + 1 if stepped else state.current_iteration
    average = state.average_iter_time + (seconds - state.average_iter_time) / running
    new = TrainingState(
        current,
        global_iteration,
        state.global_epoch,
        state.validation_cycles,
        state.dataset_iter + 1,
        state.early_stop_count,
        average,
        running,
    )
    should_log = stepped and _due(current, config.print_frequency)
    if config.unit is TrainingUnit.ITERATION and stepped:
        return BatchOutcome(
            new,
            stepped,
            should_log,
            _due(current, config.valid_frequency),
            _due(current, config.chkpt_frequency),
            current >= config.total_steps,
        )
    return BatchOutcome(new, stepped, should_log, False, False, False)


def after_epoch(state: TrainingState, config: LoopConfig) -> EpochOutcome:
    """Count a completed epoch (the data ran out)."""
    epoch = state.global_epoch + 1
    new = attrs.evolve(state, global_epoch=epoch, dataset_iter=0)
    if config.unit is TrainingUnit.EPOCH:
        return EpochOutcome(
            new,
            _due(epoch, config.valid_frequency),
            _due(epoch, config.chkpt_frequency),
            epoch >= config.total_steps,
        )
    return EpochOutcome(new, False, False, False)


def after_validation(
    state: TrainingState, config: LoopConfig, improved: bool
) -> ValidationOutcome:
    """Count a validation pass; ``improved`` is the model's `have_metrics_improved()`."""
    count = 0 if improved else state.early_stop_count + 1
    new = attrs.evolve(
        state, validation_cycles=state.validation_cycles + 1, early_stop_count=count
    )
    cycles = config.early_stop_cycles
    return ValidationOutcome(new, cycles is not None and count >= cycles)


def is_done(state: TrainingState, config: LoopConfig) -> bool:
    """Whether ``state`` has already reached ``total_steps`` (e.g. a finished run resumed)."""
    if config.unit is TrainingUnit.EPOCH:
        return state.global_epoch >= config.total_steps
    return state.current_iteration >= config.total_steps


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
        >>> from helios.core import parse_checkpoint_name
        >>> parse_checkpoint_name("epoch_3_iter_120.pth")
        (3, 120)
        >>> parse_checkpoint_name(".epoch_3_iter_120.pth.x1.tmp") is None
        True
    """
    match = _CHECKPOINT_NAME.match(name)
    return None if match is None else (int(match[1]), int(match[2]))
