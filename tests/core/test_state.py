"""Tests of the immutable training state and the training unit."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest
from hypothesis import given

from helios.core import TrainingState, TrainingUnit
from helios.core.loop import state_from_dict, state_to_dict
from tests.strategies import training_states

FIELDS = [
    "current_iteration",
    "global_iteration",
    "global_epoch",
    "validation_cycles",
    "dataset_iter",
    "early_stop_count",
    "average_iter_time",
    "running_iter",
]


def test_fields_and_defaults() -> None:
    state = TrainingState()
    assert [field.name for field in attrs.fields(TrainingState)] == FIELDS
    assert all(getattr(state, name) == 0 for name in FIELDS)


@pytest.mark.parametrize("name", FIELDS)
def test_state_is_frozen(name: str) -> None:
    state = TrainingState()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(state, name, 1)
    assert getattr(state, name) == 0


def test_evolve_returns_a_new_state_and_leaves_the_old_one() -> None:
    state = TrainingState(global_iteration=3)
    new = attrs.evolve(state, global_iteration=4, global_epoch=1)
    assert new is not state
    assert (new.global_iteration, new.global_epoch) == (4, 1)
    assert (state.global_iteration, state.global_epoch) == (3, 0)
    assert new == TrainingState(global_iteration=4, global_epoch=1)
    assert hash(new) == hash(TrainingState(global_iteration=4, global_epoch=1))


@given(training_states())
def test_dict_round_trip(state: TrainingState) -> None:
    values = state_to_dict(state)
    assert list(values) == FIELDS
    assert state_from_dict(values) == state


def valid() -> dict[str, Any]:
    return state_to_dict(TrainingState(global_epoch=2, average_iter_time=0.5))


def with_changes(**changes: Any) -> dict[str, Any]:
    return {**valid(), **changes}


def without(name: str) -> dict[str, Any]:
    values = valid()
    del values[name]
    return values


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([("global_epoch", 1)], "must be a dict, got list"),
        (None, "must be a dict, got NoneType"),
        (without("running_iter"), "needs exactly the fields"),
        (with_changes(extra=1), "needs exactly the fields"),
        (with_changes(global_epoch=-1), "global_epoch must be an int >= 0, got -1"),
        (with_changes(dataset_iter=1.0), "dataset_iter must be an int >= 0, got 1.0"),
        (with_changes(running_iter=True), "running_iter must be an int >= 0, got True"),
        (with_changes(current_iteration="3"), "current_iteration must be an int >= 0"),
        (with_changes(average_iter_time=-0.1), "average_iter_time must be >= 0, got -0.1"),
        (with_changes(average_iter_time=math.nan), "average_iter_time must be >= 0, got nan"),
        (with_changes(average_iter_time="1"), "average_iter_time must be >= 0"),
        (with_changes(average_iter_time=False), "average_iter_time must be >= 0"),
    ],
)
def test_state_from_dict_rejects_bad_values(values: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        state_from_dict(values)


def test_state_from_dict_accepts_an_int_average() -> None:
    assert state_from_dict(with_changes(average_iter_time=2)).average_iter_time == 2


# -- TrainingUnit ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "unit"),
    [
        (TrainingUnit.EPOCH, TrainingUnit.EPOCH),
        (TrainingUnit.ITERATION, TrainingUnit.ITERATION),
        ("epoch", TrainingUnit.EPOCH),
        ("iteration", TrainingUnit.ITERATION),
        ("EPOCH", TrainingUnit.EPOCH),
        ("Iteration", TrainingUnit.ITERATION),
    ],
)
def test_training_unit_parse(value: TrainingUnit | str, unit: TrainingUnit) -> None:
    assert TrainingUnit.parse(value) is unit


@pytest.mark.parametrize("value", ["epochs", "", "step", 1, None, True])
def test_training_unit_parse_rejects_other_values(value: Any) -> None:
    with pytest.raises(ValueError, match=r"one of \['epoch', 'iteration'\], got"):
        TrainingUnit.parse(value)
