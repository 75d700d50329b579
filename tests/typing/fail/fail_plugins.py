"""Plug-ins that mypy --strict must refuse. Each erroring line ends in `# E: <code>`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

import helios.model as hlm
import helios.plugins as hlp
import helios.trainer as hlt

Batch = list[torch.Tensor]


class WrongArity:
    """Structural, but process_training_batch forgets the state argument."""

    trainer: hlt.Trainer

    def __init__(self) -> None:
        self.unique_overrides = hlp.UniquePluginOverrides(training_batch=True)
        self.device = torch.device("cpu")
        self.rank = 0
        self.is_distributed = False
        self.map_loc: hlp.MapLocation = "cpu"

    @property
    def plug_id(self) -> str:
        return "wrong_arity"

    def configure_trainer(self, trainer: hlt.Trainer, /) -> None:
        trainer.register_plugin(self)  # E: arg-type

    def configure_model(self, model: hlm.Model, /) -> None:
        return None

    def setup(self) -> None:
        return None

    def on_training_start(self) -> None:
        return None

    def on_training_end(self) -> None:
        return None

    def on_validation_start(self, validation_cycle: int, /) -> None:
        return None

    def on_validation_end(self, validation_cycle: int, /) -> None:
        return None

    def on_testing_start(self) -> None:
        return None

    def on_testing_end(self) -> None:
        return None

    def process_training_batch(self, batch: Any, /) -> Any:
        return batch

    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        return batch

    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        return batch

    def should_training_stop(self) -> bool:
        return False

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None:
        return None


class WrongStopType(WrongArity):
    """Fixes the arity, but should_training_stop answers with a string."""

    def process_training_batch(  # type: ignore[override]
        self, batch: Any, state: hlp.TrainingState, /
    ) -> Any:
        return batch

    def should_training_stop(self) -> str:  # type: ignore[override]
        return "no"


class MissingHooks:
    """Has an id and flags but none of the hooks."""

    plug_id = "missing"
    unique_overrides = hlp.UniquePluginOverrides()


trainer = hlt.Trainer(use_cpu=True)
trainer.register_plugin(WrongArity())  # E: arg-type
trainer.register_plugin(WrongStopType())  # E: arg-type
trainer.register_plugin(MissingHooks())  # E: arg-type
trainer.register_plugin(hlp.UniquePluginOverrides())  # E: arg-type


class SeedShorthand(hlp.Plugin):
    """The seed's `batch[:2]` example taken literally: the state argument is missing."""

    def __init__(self) -> None:
        super().__init__("shorthand")
        self.unique_overrides.training_batch = True

    def process_training_batch(self, batch: Batch) -> Batch:  # E: override
        return batch[:2]


class StopsWithInt(hlp.Plugin):
    def should_training_stop(self) -> int:  # E: override
        return 0


plugin = hlp.DevicePlugin("cpu")
plugin.configure_trainer(trainer)
trainer.plugins["device"] = plugin  # E: index
trainer.plugins = trainer.plugins  # E: assignment
plugin.plug_id = "renamed"  # E: misc
trainer.plugin("device", hlp.DevicePlugin).no_such_member  # E: attr-defined
device: hlp.DevicePlugin = trainer.plugins["device"]  # E: assignment
flags = hlp.UniquePluginOverrides(training_batch="yes")  # E: arg-type
