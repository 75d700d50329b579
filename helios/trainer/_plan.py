"""The dispatch plan: which plug-in handles what, resolved once per run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs

from helios.core import TrainingState
from helios.plugins import PluginProtocol, PluginTable, RunWatcher, decides_stop_at_validation

__all__ = ["DispatchPlan", "describe_plugins"]


def _keep_batch(batch: Any, _: Any) -> Any:
    return batch


def _never() -> bool:
    return False


@attrs.frozen
class DispatchPlan:
    """Bound hooks in call order, taken from a `PluginTable` and its override claims."""

    plugins: tuple[PluginProtocol, ...]
    training_batch: Callable[[Any, TrainingState], Any]
    validation_batch: Callable[[Any, int], Any]
    testing_batch: Callable[[Any, int], Any]
    should_stop: Callable[[], bool]
    #: A plug-in claimed ``should_training_stop`` and may answer yes after any batch.
    stops_per_batch: bool
    #: What the plug-ins asked, with `helios.plugins.RunWatcher`, to be told of the run.
    watchers: tuple[RunWatcher, ...] = ()

    @classmethod
    def build(cls, table: PluginTable) -> DispatchPlan:
        """Resolve the hooks of ``table``; the claims snapshot decides who is called."""
        trainer_batch = table.claimant("training_batch")
        valid_batch = table.claimant("validation_batch")
        test_batch = table.claimant("testing_batch")
        stopper = table.claimant("should_training_stop")
        plugins = tuple(table.values())
        return cls(
            plugins=plugins,
            training_batch=(
                _keep_batch if trainer_batch is None else trainer_batch.process_training_batch
            ),
            validation_batch=(
                _keep_batch if valid_batch is None else valid_batch.process_validation_batch
            ),
            testing_batch=_keep_batch if test_batch is None else test_batch.process_testing_batch,
            should_stop=_never if stopper is None else stopper.should_training_stop,
            stops_per_batch=stopper is not None
            and not decides_stop_at_validation(stopper.should_training_stop),
        )


#: The table's columns for the unique slots, in `OVERRIDE_FLAGS` order.
_SLOT_HEADINGS = {
    "training_batch": "training batch",
    "validation_batch": "validation batch",
    "testing_batch": "testing batch",
    "should_training_stop": "stop",
}


def describe_plugins(table: PluginTable) -> str:
    """The plug-ins of ``table`` in call order, with the unique slot(s) each owns (``x``),
    as a plain-text table."""
    headings = ("id", "class", *_SLOT_HEADINGS.values())
    if not table:
        return (
            "no plug-ins registered: batches reach the model unchanged and the model "
            "alone decides to stop"
        )
    rows = [headings]
    for plug_id, plugin in table.items():
        claims = table.claims(plug_id)
        slots = ("x" if flag in claims else "-" for flag in _SLOT_HEADINGS)
        rows.append((plug_id, type(plugin).__qualname__, *slots))
    widths = [max(len(row[column]) for row in rows) for column in range(len(headings))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    free = [flag for flag in _SLOT_HEADINGS if table.claimant(flag) is None]
    notes = []
    if batches := [_SLOT_HEADINGS[flag] for flag in free if flag != "should_training_stop"]:
        notes.append(f"{', '.join(batches)} (passed to the model unchanged)")
    if "should_training_stop" in free:
        notes.append("stop (the model alone decides)")
    if notes:
        lines.append("unclaimed: " + "; ".join(notes))
    return "\n".join(lines)
