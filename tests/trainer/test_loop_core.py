"""Properties of the pure loop core (helios.core._loop)."""

from __future__ import annotations

import math

import attrs
import hypothesis.strategies as st
import pytest
from hypothesis import given

from helios.core import (
    LoopConfig,
    TrainingState,
    TrainingUnit,
    after_batch,
    after_epoch,
    after_validation,
    checkpoint_name,
    is_done,
    parse_checkpoint_name,
)

MONOTONE = ("current_iteration", "global_iteration", "global_epoch", "validation_cycles")


@st.composite
def configs(draw: st.DrawFn) -> LoopConfig:
    valid = draw(st.one_of(st.none(), st.integers(1, 4)))
    early = draw(st.one_of(st.none(), st.integers(1, 3))) if valid else None
    infinite = early is not None and draw(st.booleans())
    return LoopConfig(
        unit=draw(st.sampled_from(TrainingUnit)),
        total_steps=math.inf if infinite else draw(st.integers(1, 12)),
        valid_frequency=valid,
        chkpt_frequency=draw(st.one_of(st.none(), st.integers(1, 4))),
        print_frequency=draw(st.one_of(st.none(), st.integers(1, 4))),
        accumulation_steps=draw(st.integers(1, 3)),
        early_stop_cycles=early,
    )


def simulate(
    config: LoopConfig,
    epoch_length: int,
    improvements: list[bool],
    stop_at: int | None,
    limit: int = 500,
) -> tuple[TrainingState, list[tuple[str, TrainingState]], str]:
    """Drive the core as the trainer does; return the final state, the events, and why."""
    state = TrainingState()
    events: list[tuple[str, TrainingState]] = []
    improvement = iter(improvements)

    def validate(current: TrainingState) -> tuple[TrainingState, bool]:
        outcome = after_validation(current, config, next(improvement, False))
        events.append(("validate", outcome.state))
        return outcome.state, outcome.stop_early

    batches = 0
    while batches < limit:
        for _ in range(epoch_length):
            outcome = after_batch(state, config, 0.001)
            state = outcome.state
            batches += 1
            events.append(("batch", state))
            stop = stop_at is not None and batches >= stop_at
            if outcome.should_validate:
                state, early = validate(state)
                stop = stop or early
            if outcome.should_checkpoint:
                events.append(("checkpoint", state))
            if stop:
                return state, events, "stop"
            if outcome.done:
                return state, events, "done"
        epoch = after_epoch(state, config)
        state = epoch.state
        events.append(("epoch", state))
        stop = False
        if epoch.should_validate:
            state, stop = validate(state)
        if epoch.should_checkpoint:
            events.append(("checkpoint", state))
        if stop:
            return state, events, "stop"
        if epoch.done:
            return state, events, "done"
    return state, events, "limit"


schedules = st.tuples(
    configs(),
    st.integers(1, 5),
    st.lists(st.booleans(), max_size=50),
    st.one_of(st.none(), st.integers(1, 40)),
)


@given(schedules)
def test_counters_never_go_backwards(
    schedule: tuple[LoopConfig, int, list[bool], int | None],
) -> None:
    config, length, improvements, stop_at = schedule
    _, events, _ = simulate(config, length, improvements, stop_at)
    previous = TrainingState()
    for _, state in events:
        for name in MONOTONE:
            assert getattr(state, name) >= getattr(previous, name), name
        previous = state


@given(schedules)
def test_validation_happens_exactly_every_valid_frequency_units(
    schedule: tuple[LoopConfig, int, list[bool], int | None],
) -> None:
    config, length, improvements, stop_at = schedule
    _, events, _ = simulate(config, length, improvements, stop_at)
    validations = [state for kind, state in events if kind == "validate"]
    if config.valid_frequency is None:
        assert validations == []
        return
    unit = "current_iteration" if config.unit is TrainingUnit.ITERATION else "global_epoch"
    points = [getattr(state, unit) for state in validations]
    assert points == [config.valid_frequency * (i + 1) for i in range(len(points))]
    # ...and none is missed: the next multiple was never reached.
    final = getattr(events[-1][1], unit)
    assert final < config.valid_frequency * (len(points) + 1)


@given(schedules)
def test_training_ends_at_total_steps_or_first_stop(
    schedule: tuple[LoopConfig, int, list[bool], int | None],
) -> None:
    config, length, improvements, stop_at = schedule
    state, events, why = simulate(config, length, improvements, stop_at)
    batches = sum(1 for kind, _ in events if kind == "batch")
    unit = "current_iteration" if config.unit is TrainingUnit.ITERATION else "global_epoch"
    if why == "done":
        assert getattr(state, unit) == config.total_steps
        assert is_done(state, config)
    elif why == "stop":
        requested = stop_at is not None and batches == stop_at
        early = config.early_stop_cycles is not None and (
            state.early_stop_count >= config.early_stop_cycles
        )
        assert requested or early
        assert getattr(state, unit) <= config.total_steps
    else:
        assert config.total_steps == math.inf


@given(schedules)
def test_early_stop_count_resets_on_improvement(
    schedule: tuple[LoopConfig, int, list[bool], int | None],
) -> None:
    config, length, improvements, stop_at = schedule
    _, events, _ = simulate(config, length, improvements, stop_at)
    validations = [state for kind, state in events if kind == "validate"]
    expected = 0
    padded = improvements + [False] * len(validations)
    for improved, state in zip(padded, validations, strict=False):
        expected = 0 if improved else expected + 1
        assert state.early_stop_count == expected


@given(configs(), st.integers(0, 30))
def test_optimiser_steps_count_closed_accumulation_windows(config: LoopConfig, n: int) -> None:
    state = TrainingState()
    stepped = 0
    for _ in range(n):
        outcome = after_batch(state, config, 0.0)
        stepped += outcome.stepped
        state = outcome.state
    # As in Helios: current_iteration counts optimiser steps, global_iteration batches.
    assert state.current_iteration == stepped == n // config.accumulation_steps
    assert state.global_iteration == n


def test_checkpoint_name_counts_epochs_and_iterations() -> None:
    state = attrs.evolve(
        TrainingState(), global_epoch=3, current_iteration=120, global_iteration=240
    )
    assert checkpoint_name(state) == "epoch_3_iter_120.pth"
    assert parse_checkpoint_name(checkpoint_name(state)) == (3, 120)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"total_steps": 0}, "total_steps"),
        ({"total_steps": 2.5}, "total_steps"),
        ({"total_steps": math.inf}, "early_stop_cycles"),
        ({"valid_frequency": 0}, "valid_frequency"),
        ({"chkpt_frequency": -1}, "chkpt_frequency"),
        ({"print_frequency": 0}, "print_frequency"),
        ({"accumulation_steps": 0}, "accumulation_steps"),
        ({"early_stop_cycles": 2}, "valid_frequency"),
    ],
)
def test_bad_configs_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        LoopConfig(**kwargs)  # type: ignore[arg-type]
