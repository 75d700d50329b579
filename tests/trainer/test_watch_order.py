"""Where run watchers (`helios.plugins.RunWatcher`) fall in the hook order, for any
plug-in set and schedule (the scenarios of ``test_hook_order``)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

import helios.plugins as hlp
import helios.trainer as hlt
from tests.trainer.helpers import Events, IntData, RecordingModel, RecordingPlugin
from tests.trainer.test_hook_order import scenarios


class Watching(RecordingPlugin):
    """A recording plug-in that also records what its watcher is told."""

    def setup(self) -> None:
        super().setup()
        watcher = hlp.RunWatcher(
            on_log=lambda state: self._log("on_log"),
            on_metrics=lambda cycle: self._log("on_metrics"),
            on_checkpoint=lambda path, state: self._log("on_checkpoint"),
            on_end=lambda: self._log("on_end"),
        )
        self.trainer.watch(self.plug_id, watcher)


@settings(max_examples=40)
@given(scenario=scenarios())
def test_watchers_run_after_the_model_and_end_last(
    scenario: dict[str, Any], tmp_path_factory: Any
) -> None:
    events: Events = []
    trainer = hlt.Trainer(
        train_unit=scenario["unit"],
        total_steps=scenario["total"],
        valid_frequency=scenario["valid_frequency"],
        early_stop_cycles=scenario["early_stop"] if scenario["valid_frequency"] else None,
        print_frequency=1,
        chkpt_frequency=1,
        chkpt_root=tmp_path_factory.mktemp("watch"),
        use_cpu=True,
    )
    ids = [f"p{index}" for index in range(len(scenario["kinds"]))]
    for index, plug_id in enumerate(ids):
        stopper = index == scenario["stopper"]
        trainer.register_plugin(
            Watching(
                plug_id,
                events,
                claim_batches=index == scenario["claim"],
                stop_after=scenario["stop_after"] if stopper else None,
            )
        )
    model = RecordingModel(
        events, stop_at=scenario["model_stop_at"], improves=scenario["improves"]
    )
    trainer.fit(model, IntData(scenario["size"]))

    # Every plug-in watches, in registration order, right where the table says.
    def runs_of(name: str) -> list[list[str]]:
        found, run = [], []
        for who, hook in events:
            if hook == name:
                run.append(who)
            elif run:
                found.append(run)
                run = []
        return found + ([run] if run else [])

    for name in ("on_log", "on_metrics", "on_checkpoint"):
        assert all(run == ids for run in runs_of(name)), name
    if not ids:
        return
    # The end comes last, after the model's on_training_end.
    assert events[-len(ids) - 1 :] == [("model", "on_training_end")] + [(p, "on_end") for p in ids]
    # print_frequency=1: every optimiser step is logged; chkpt_frequency=1: every unit
    # ends with a checkpoint.
    steps = events.count(("model", "train_step"))
    assert events.count((ids[0], "on_log")) == steps
    # The metrics hook follows the model's on_validation_end, before the stop question.
    for index, event in enumerate(events):
        if event == ("model", "on_validation_end"):
            after = events[index + 1 : index + 1 + len(ids)]
            assert after == [(p, "on_metrics") for p in ids]
