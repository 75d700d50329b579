"""The loop core (`helios.core.loop.step`) against a small reference simulator.

`reference` is the schedule written the plain imperative way, knowing nothing of the
core; `drive` feeds the same run to `step` the way the trainer does. For any schedule,
data length, resume point, stop requests and validation results, both must produce the
same trace (every batch, log, validation, checkpoint and the end, with the states they
carry) and the same final state.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import hypothesis.strategies as st
import pytest
from hypothesis import example, given

from helios.core import TrainingState, TrainingUnit
from helios.core.loop import (
    AskStop,
    BatchRan,
    Checkpoint,
    EndTraining,
    EpochExhausted,
    Event,
    Log,
    Loop,
    LoopConfig,
    RunBatch,
    Start,
    StartEpoch,
    StopAnswered,
    Validate,
    ValidationRan,
    checkpoint_name,
    is_done,
    parse_checkpoint_name,
    step,
)

Trace = list[tuple[str, TrainingState | int | bool]]


@attrs.frozen
class Run:
    """What happens outside the loop: the data, the answers, the clock."""

    config: LoopConfig
    epoch_length: int
    #: Batches (by ``global_iteration``) after which a party asks to stop.
    stop_after: frozenset[int]
    improvements: tuple[bool, ...]
    start: TrainingState

    def seconds(self, batch: int) -> float:
        return 0.001 * (1 + batch % 7)  # each batch's own time, known in advance

    def improved(self, cycle: int) -> bool:
        return self.improvements[cycle - 1] if cycle <= len(self.improvements) else False


def _due(count: int, frequency: int | None) -> bool:
    return frequency is not None and count % frequency == 0


def reference(run: Run, limit: int = 400) -> tuple[Trace, TrainingState]:
    """The schedule the plain way: counters, then validation, checkpoint and the end."""
    c = run.config
    s: dict[str, Any] = {**attrs.asdict(run.start), "running_iter": 0, "average_iter_time": 0.0}
    trace: Trace = []
    by_iteration = c.unit is TrainingUnit.ITERATION
    stop = False

    def state() -> TrainingState:
        return TrainingState(**s)

    def validate() -> bool:
        s["validation_cycles"] += 1
        improved = run.improved(s["validation_cycles"])
        s["early_stop_count"] = 0 if improved else s["early_stop_count"] + 1
        trace.append(("validate", state()))
        cycles = c.early_stop_cycles
        count: int = s["early_stop_count"]
        return cycles is not None and count >= cycles

    def finished() -> bool:
        count: int = s["current_iteration"] if by_iteration else s["global_epoch"]
        return count >= c.total_steps

    if finished():
        trace.append(("end", False))
        return trace, state()
    while len(trace) < limit:
        trace.append(("epoch", s["global_epoch"]))
        if run.epoch_length == 0 and s["dataset_iter"] == 0:
            raise ValueError("yielded no batches in a whole epoch")
        for _ in range(s["dataset_iter"], run.epoch_length):
            s["global_iteration"] += 1
            stepped = s["global_iteration"] % c.accumulation_steps == 0
            s["current_iteration"] += stepped
            s["dataset_iter"] += 1
            trace.append(("batch", state()))
            # The model's batch-end hook is told when this batch closes a logged step.
            trace.append(
                ("batch logs", stepped and _due(s["current_iteration"], c.print_frequency))
            )
            s["running_iter"] += 1
            seconds = run.seconds(s["global_iteration"])
            s["average_iter_time"] += (seconds - s["average_iter_time"]) / s["running_iter"]
            stop = stop or s["global_iteration"] in run.stop_after
            steps = s["current_iteration"]
            if stepped and _due(steps, c.print_frequency):
                trace.append(("log", state()))
            if by_iteration and stepped and _due(steps, c.valid_frequency):
                stop = validate() or stop
            if by_iteration and stepped and _due(steps, c.chkpt_frequency):
                trace.append(("checkpoint", state()))
            if stop or finished():
                trace.append(("end", True))
                return trace, state()
        s["global_epoch"] += 1
        s["dataset_iter"] = 0
        if not by_iteration and _due(s["global_epoch"], c.valid_frequency):
            stop = validate() or stop
        if not by_iteration and _due(s["global_epoch"], c.chkpt_frequency):
            trace.append(("checkpoint", state()))
        if stop or finished():
            trace.append(("end", False))
            return trace, state()
    trace.append(("limit", False))
    return trace, state()


def drive(run: Run, limit: int = 400) -> tuple[Trace, TrainingState]:
    """Feed the run to `step` as the trainer does (no data, no model: the answers)."""
    config, trace = run.config, Trace()
    loop, actions = step(Loop(run.start), config, Start(distributed=False, stops_per_batch=True))
    left = drawn = 0
    while len(trace) < limit:
        event: Event | None = None
        for action in actions:
            match action:
                case StartEpoch(epoch, skip):
                    trace.append(("epoch", epoch))
                    left, drawn = run.epoch_length - skip, 0
                case RunBatch(state, should_log, _):
                    if left == 0:
                        event = EpochExhausted(drawn)
                        continue
                    left, drawn = left - 1, drawn + 1
                    trace.append(("batch", state))
                    trace.append(("batch logs", should_log))
                    batch = state.global_iteration
                    event = BatchRan(run.seconds(batch), batch in run.stop_after)
                case Log(state):
                    trace.append(("log", state))
                case Validate(cycle):
                    event = ValidationRan(run.improved(cycle))
                case AskStop(_, early):
                    trace.append(("validate", loop.state))
                    event = StopAnswered(early)
                case Checkpoint(state):
                    trace.append(("checkpoint", state))
                case EndTraining(mid_epoch):
                    trace.append(("end", mid_epoch))
                    return trace, loop.state
        assert event is not None, actions
        loop, actions = step(loop, config, event)
    trace.append(("limit", False))
    return trace, loop.state


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


@st.composite
def runs(draw: st.DrawFn) -> Run:
    config = draw(configs())
    length = draw(st.integers(1, 6))
    # A resume point: one the trainer could have checkpointed at (an epoch boundary, or
    # mid-epoch after a closed accumulation window).
    epochs = draw(st.integers(0, 3))
    within = draw(st.integers(0, length - 1)) if config.unit is TrainingUnit.ITERATION else 0
    within -= within % config.accumulation_steps
    batches = epochs * length + within
    start = TrainingState(
        current_iteration=batches // config.accumulation_steps,
        global_iteration=batches,
        global_epoch=epochs,
        dataset_iter=within,
        validation_cycles=draw(st.integers(0, 3)),
        average_iter_time=draw(st.floats(0, 1)),
        running_iter=draw(st.integers(0, 9)),
    )
    return Run(
        config,
        length,
        frozenset(draw(st.lists(st.integers(1, 60), max_size=3))),
        tuple(draw(st.lists(st.booleans(), max_size=20))),
        start,
    )


def _one(unit: TrainingUnit, **kwargs: object) -> Run:
    config = LoopConfig(unit=unit, **kwargs)  # type: ignore[arg-type]
    return Run(config, 4, frozenset(), (), TrainingState())


@given(runs())
@example(_one(TrainingUnit.ITERATION, total_steps=6, valid_frequency=2, accumulation_steps=2))
@example(_one(TrainingUnit.EPOCH, total_steps=3, valid_frequency=1, chkpt_frequency=1))
@example(_one(TrainingUnit.EPOCH, total_steps=math.inf, valid_frequency=1, early_stop_cycles=2))
def test_step_follows_the_reference_schedule(run: Run) -> None:
    expected, expected_state = reference(run)
    actual, actual_state = drive(run)
    assert actual == expected
    assert actual_state == expected_state


@given(runs())
def test_counters_never_go_backwards_and_mean_what_they_mean(run: Run) -> None:
    trace, _ = drive(run)
    acc = run.config.accumulation_steps
    previous = run.start
    for kind, state in trace:
        if not isinstance(state, TrainingState):
            continue
        for name in ("current_iteration", "global_iteration", "global_epoch"):
            assert getattr(state, name) >= getattr(previous, name), (kind, name)
        assert state.current_iteration == state.global_iteration // acc
        previous = state


@given(runs())
def test_timing_is_each_batch_own_time(run: Run) -> None:
    trace, final = drive(run)
    ran = [s.global_iteration for kind, s in trace if kind == "batch"]  # type: ignore[union-attr]
    if not ran:
        assert final.running_iter == 0
        return
    assert final.running_iter == len(ran)  # a resumed run times only its own batches
    mean = sum(run.seconds(batch) for batch in ran) / len(ran)
    assert final.average_iter_time == pytest.approx(mean)


def test_an_empty_epoch_is_refused() -> None:
    config = LoopConfig(total_steps=2)
    loop, _ = step(Loop(TrainingState()), config, Start())
    with pytest.raises(ValueError, match="yielded no batches in a whole epoch"):
        step(loop, config, EpochExhausted(0))


def test_what_is_not_an_event_is_refused() -> None:
    with pytest.raises(TypeError, match="step takes a loop event"):
        step(Loop(TrainingState()), LoopConfig(), EndTraining(True))  # type: ignore[arg-type]


def test_a_finished_run_ends_at_once() -> None:
    config = LoopConfig(unit=TrainingUnit.EPOCH, total_steps=2)
    done = TrainingState(global_epoch=2, current_iteration=8, global_iteration=8)
    assert is_done(done, config)
    _, actions = step(Loop(done), config, Start())
    assert actions == (EndTraining(mid_epoch=False),)


@pytest.mark.parametrize(
    ("distributed", "stops_per_batch", "combine"),
    [(False, True, False), (True, False, False), (True, True, True)],
)
def test_a_batch_needs_a_collective_only_when_someone_may_stop_after_it(
    distributed: bool, stops_per_batch: bool, combine: bool
) -> None:
    config = LoopConfig(total_steps=2, valid_frequency=1)
    _, actions = step(Loop(TrainingState()), config, Start(distributed, stops_per_batch))
    assert isinstance(actions[-1], RunBatch)
    assert actions[-1].combine is combine


def test_after_validation_the_stop_answer_is_combined_in_distributed_runs() -> None:
    config = LoopConfig(unit=TrainingUnit.EPOCH, total_steps=3, valid_frequency=1)
    loop, _ = step(Loop(TrainingState()), config, Start(True, False))
    loop, actions = step(loop, config, BatchRan(0.1, False))
    loop, actions = step(loop, config, EpochExhausted(1))
    assert actions == (Validate(1),)
    _, actions = step(loop, config, ValidationRan(improved=True))
    assert actions == (AskStop(combine=True, early=False),)


def test_checkpoint_name_counts_epochs_and_optimiser_steps() -> None:
    state = TrainingState(global_epoch=3, current_iteration=120, global_iteration=240)
    assert checkpoint_name(state) == "epoch_3_iter_120.pth"
    assert parse_checkpoint_name(checkpoint_name(state)) == (3, 120)
    assert parse_checkpoint_name("epoch_3_iter_120.pth.tmp") is None


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
        ({"unit": "epoch"}, "train_unit"),
    ],
)
def test_bad_configs_name_the_argument(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        LoopConfig(**kwargs)  # type: ignore[arg-type]
