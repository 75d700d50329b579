"""The immutable training state and the training unit."""

from __future__ import annotations

import enum

import attrs

__all__ = ["TrainingState", "TrainingUnit"]


class TrainingUnit(enum.Enum):
    """What ``total_steps`` and the frequencies count."""

    EPOCH = "epoch"
    ITERATION = "iteration"

    @classmethod
    def parse(cls, value: TrainingUnit | str) -> TrainingUnit:
        """Accept a member or its name (``"epoch"`` / ``"iteration"``, any case).

        Raises:
            ValueError: for anything else, listing the accepted values.
        """
        if isinstance(value, TrainingUnit):
            return value
        if isinstance(value, str):
            try:
                return cls(value.lower())
            except ValueError:
                pass
        raise ValueError(
            f"train_unit must be a TrainingUnit or one of {[m.value for m in cls]}, got {value!r}"
        )


# Not slotted: a frozen attrs class with a __dict__ is built about twice as fast, and the
# loop builds a state or two for every training batch.
@attrs.frozen(slots=False)
class TrainingState:
    """Where training stands. Immutable: the trainer makes a new one with `attrs.evolve`.

    Attributes:
        current_iteration: Optimiser steps (closed accumulation windows) since training
            began: ``global_iteration // accumulation_steps``. What ``total_steps`` and the
            valid / checkpoint / print frequencies count with ``TrainingUnit.ITERATION``,
            and the ``iter_<i>`` of checkpoint names (as in Helios).
        global_iteration: Training batches since training began (each batch of an
            accumulation window counts).
        global_epoch: Completed epochs.
        validation_cycles: Completed validation passes.
        dataset_iter: Batches drawn from the training data in the current epoch (where a
            resumed run continues).
        early_stop_count: Validation cycles in a row without improvement.
        average_iter_time: Running mean of seconds per batch in this process.
        running_iter: Batches run since this process started (or resumed).

    Examples:
        >>> import attrs
        >>> from helios.core import TrainingState
        >>> state = TrainingState()
        >>> attrs.evolve(state, global_iteration=5).global_iteration
        5
    """

    current_iteration: int = 0
    global_iteration: int = 0
    global_epoch: int = 0
    validation_cycles: int = 0
    dataset_iter: int = 0
    early_stop_count: int = 0
    average_iter_time: float = 0.0
    running_iter: int = 0


_INT_FIELDS: tuple[str, ...] = (
    "current_iteration",
    "global_iteration",
    "global_epoch",
    "validation_cycles",
    "dataset_iter",
    "early_stop_count",
    "running_iter",
)


def state_to_dict(state: TrainingState) -> dict[str, int | float]:
    """The state as a plain dict (for checkpoints)."""
    return attrs.asdict(state)


def state_from_dict(values: object) -> TrainingState:
    """Rebuild a state from `state_to_dict`'s output, checking every field.

    Raises:
        ValueError: if a field is missing, unknown, negative or of the wrong type.
    """
    if not isinstance(values, dict):
        raise ValueError(f"a training state must be a dict, got {type(values).__name__}")
    expected = {field.name for field in attrs.fields(TrainingState)}
    if set(values) != expected:
        raise ValueError(
            f"a training state needs exactly the fields {sorted(expected)}, got {sorted(values)}"
        )
    for name in _INT_FIELDS:
        value = values[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"training state field {name} must be an int >= 0, got {value!r}")
    average = values["average_iter_time"]
    if isinstance(average, bool) or not isinstance(average, int | float) or not average >= 0:
        raise ValueError(f"training state field average_iter_time must be >= 0, got {average!r}")
    return TrainingState(**values)
