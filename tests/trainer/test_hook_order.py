"""Hook order, as the seed's loop listing gives it, for any plug-in set and schedule."""

from __future__ import annotations

from typing import Any

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import example, given

import helios.trainer as hlt
from tests.trainer.helpers import (
    Events,
    IntData,
    RecordingModel,
    RecordingPlugin,
    StructuralRecordingPlugin,
)

PAIRS = {
    "on_training_start": "on_training_end",
    "on_training_epoch_start": "on_training_epoch_end",
    "on_training_batch_start": "on_training_batch_end",
    "on_validation_start": "on_validation_end",
    "on_testing_start": "on_testing_end",
}
PLUGIN_FIRST = (
    "setup",
    "on_training_start",
    "on_training_end",
    "on_validation_start",
    "on_validation_end",
    "on_testing_start",
    "on_testing_end",
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(st.lists(st.sampled_from(["explicit", "structural"]), max_size=3))
    claim_index = draw(st.one_of(st.none(), st.integers(0, 2)))
    stop_index = draw(st.one_of(st.none(), st.integers(0, 2)))
    return {
        "kinds": kinds,
        "claim": claim_index if claim_index is not None and claim_index < len(kinds) else None,
        "stopper": stop_index if stop_index is not None and stop_index < len(kinds) else None,
        "stop_after": draw(st.integers(1, 12)),
        "unit": draw(st.sampled_from(["epoch", "iteration"])),
        "total": draw(st.integers(1, 6)),
        "size": draw(st.integers(1, 5)),
        "valid_frequency": draw(st.one_of(st.none(), st.integers(1, 3))),
        "model_stop_at": draw(st.one_of(st.none(), st.integers(1, 10))),
        "early_stop": draw(st.one_of(st.none(), st.integers(1, 2))),
        "improves": draw(st.booleans()),
    }


def run(scenario: dict[str, Any]) -> tuple[Events, RecordingModel, list[str], int | None]:
    events: Events = []
    trainer = hlt.Trainer(
        train_unit=scenario["unit"],
        total_steps=scenario["total"],
        valid_frequency=scenario["valid_frequency"],
        early_stop_cycles=scenario["early_stop"] if scenario["valid_frequency"] else None,
        use_cpu=True,
    )
    ids: list[str] = []
    claimant: int | None = None
    for index, kind in enumerate(scenario["kinds"]):
        plug_id = f"p{index}"
        ids.append(plug_id)
        if kind == "structural" and index != scenario["claim"] and index != scenario["stopper"]:
            StructuralRecordingPlugin(plug_id, events).configure_trainer(trainer)
            continue
        plugin = RecordingPlugin(
            plug_id,
            events,
            claim_batches=index == scenario["claim"],
            stop_after=scenario["stop_after"] if index == scenario["stopper"] else None,
        )
        if index == scenario["claim"]:
            claimant = index
        trainer.register_plugin(plugin)
    model = RecordingModel(
        events, stop_at=scenario["model_stop_at"], improves=scenario["improves"]
    )
    assert trainer.fit(model, IntData(scenario["size"])) is True
    return events, model, ids, claimant


def check_pairs(events: Events) -> None:
    stack: list[str] = []
    closers = {end: start for start, end in PAIRS.items()}
    for who, name in events:
        if who != "model":
            continue
        if name in PAIRS:
            stack.append(name)
        elif name in closers:
            assert stack, f"{name} without a start"
            assert stack.pop() == closers[name], f"{name} closes the wrong scope"
    assert stack == [], f"unclosed: {stack}"


def check_plugins_first(events: Events, ids: list[str]) -> None:
    for index, (who, name) in enumerate(events):
        if who == "model" and name in PLUGIN_FIRST:
            before = events[index - len(ids) : index] if ids else []
            assert before == [(plug_id, name) for plug_id in ids], (name, before)


@given(scenarios())
@example(
    {
        "kinds": ["explicit", "structural", "explicit"],
        "claim": 0,
        "stopper": 2,
        "stop_after": 3,
        "unit": "iteration",
        "total": 6,
        "size": 2,
        "valid_frequency": 2,
        "model_stop_at": None,
        "early_stop": None,
        "improves": True,
    }
)
def test_hook_order_holds_for_any_plugins_and_schedule(scenario: dict[str, Any]) -> None:
    events, model, ids, claimant = run(scenario)
    model_events = [name for who, name in events if who == "model"]

    # Set-up comes first, and nothing runs after the model's on_training_end.
    assert events[-1] == ("model", "on_training_end")
    assert model_events[0] == "setup"
    check_pairs(events)
    check_plugins_first(events, ids)

    # The model receives what the claiming plug-in returned, and only then.
    for received in model.received:
        if claimant is None:
            assert isinstance(received, torch.Tensor)
        else:
            assert received[0] == "processed"

    # Stop is asked after every training batch and after every validation cycle.
    for index, (who, name) in enumerate(events):
        if who == "model" and name in ("on_training_batch_end", "on_validation_end"):
            following = [n for _, n in events[index + 1 : index + 1 + len(ids) + 2]]
            assert "should_training_stop" in following

    # Training ends exactly at total_steps, or at the first stop request.
    steps = model_events.count("train_step")
    total = scenario["total"] * (scenario["size"] if scenario["unit"] == "epoch" else 1)
    assert steps <= total
    if scenario["model_stop_at"] is not None:
        assert steps <= scenario["model_stop_at"]
    stop_plugin = f"p{scenario['stopper']}" if scenario["stopper"] is not None else None
    asks = [i for i, event in enumerate(events) if event == (stop_plugin, "should_training_stop")]
    if len(asks) >= scenario["stop_after"]:
        first_yes = asks[scenario["stop_after"] - 1]
        assert ("model", "train_step") not in events[first_yes:]
    stopped = steps < total
    if stopped:
        model_asked_yes = (
            scenario["model_stop_at"] is not None and steps >= scenario["model_stop_at"]
        )
        plugin_asked_yes = len(asks) >= scenario["stop_after"]
        early = (
            scenario["early_stop"] is not None
            and scenario["valid_frequency"] is not None
            and not scenario["improves"]
            and model_events.count("on_validation_end") >= scenario["early_stop"]
        )
        assert model_asked_yes or plugin_asked_yes or early

    # Validation happens exactly every valid_frequency units.
    frequency = scenario["valid_frequency"]
    steps_so_far = 0
    epochs_so_far = 0
    for name in model_events:
        if name == "train_step":
            steps_so_far += 1
        elif name == "on_training_epoch_end":
            epochs_so_far += 1
        elif name == "on_validation_start":
            assert frequency is not None
            if scenario["unit"] == "iteration":
                assert steps_so_far % frequency == 0
            else:
                assert epochs_so_far % frequency == 0
                assert steps_so_far == epochs_so_far * scenario["size"]


@pytest.mark.parametrize("structural", [False, True])
def test_testing_hooks_run_plugin_first(structural: bool) -> None:
    events: Events = []
    trainer = hlt.Trainer(use_cpu=True)
    plugin: Any = (
        StructuralRecordingPlugin("p", events)
        if structural
        else RecordingPlugin("p", events, claim_batches=True)
    )
    trainer.register_plugin(plugin)
    model = RecordingModel(events)
    assert trainer.test(model, IntData(3, valid_size=3)) is True
    names = [event for event in events if event[1] != "setup"]
    assert names[:2] == [("p", "on_testing_start"), ("model", "on_testing_start")]
    assert names[-2:] == [("p", "on_testing_end"), ("model", "on_testing_end")]
    assert [n for w, n in names if w == "model"].count("test_step") == 3
    if not structural:
        assert [n for w, n in names if w == "p"].count("process_testing_batch") == 3
