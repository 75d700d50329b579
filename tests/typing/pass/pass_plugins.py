"""Plug-ins in both forms, registration and typed lookups, under mypy --strict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_type

import torch

import helios.core as hlc
import helios.model as hlm
import helios.plugins as hlp
import helios.trainer as hlt

# -- the seed's form: subclass hlp.Plugin ----------------------------------------------


class MyPlugin(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("my_plugin")
        self.unique_overrides.training_batch = True

    def configure_trainer(self, trainer: hlt.Trainer) -> None:
        self._register_in_trainer(trainer)

    def process_training_batch(
        self, batch: list[torch.Tensor], state: hlp.TrainingState
    ) -> list[torch.Tensor]:
        return batch[:2]


class EarlyStopper(hlp.Plugin):
    """The seed's "Unique Traits" example: a batch hook and a stop hook."""

    def __init__(self, patience: int) -> None:
        super().__init__("early_stopper")
        self.unique_overrides.validation_batch = True
        self.unique_overrides.should_training_stop = True
        self.patience = patience
        self.cycles = 0

    def on_validation_end(self, validation_cycle: int) -> None:
        self.cycles = validation_cycle

    def process_validation_batch(self, batch: Any, step: int) -> Any:
        return batch

    def should_training_stop(self) -> bool:
        return self.cycles >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"cycles": self.cycles}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        self.cycles = int(state_dict["cycles"])


# -- the structural form: inherit nothing -----------------------------------------------


class Counter:
    """Counts testing batches; a plug-in without inheriting anything."""

    trainer: hlt.Trainer  # set by the trainer before setup()

    def __init__(self) -> None:
        self.unique_overrides = hlp.UniquePluginOverrides(testing_batch=True)
        self.device = torch.device("cpu")
        self.rank = 0
        self.is_distributed = False
        self.map_loc: hlp.MapLocation = "cpu"
        self.batches = 0

    @property
    def plug_id(self) -> str:
        return "counter"

    def configure_trainer(self, trainer: hlt.Trainer, /) -> None:
        trainer.register_plugin(self)

    def configure_model(self, model: hlm.Model, /) -> None:
        return None

    def setup(self) -> None:
        self.batches = 0

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

    def process_training_batch(self, batch: Any, state: hlp.TrainingState, /) -> Any:
        return batch

    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        return batch

    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        self.batches += 1
        return batch

    def should_training_stop(self) -> bool:
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"batches": self.batches}

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None:
        self.batches = int(state_dict["batches"])


# Both forms are PluginProtocols; a subclass of hlp.Plugin is also an hlp.Plugin.
as_protocol: hlp.PluginProtocol = Counter()
as_plugin: hlp.Plugin = MyPlugin()
also_protocol: hlp.PluginProtocol = EarlyStopper(patience=2)

# -- registration -----------------------------------------------------------------------
trainer = hlt.Trainer(use_cpu=True)
mine = MyPlugin()
mine.configure_trainer(trainer)  # the seed's way: the plug-in registers itself
trainer.register_plugin(Counter())  # or the user registers it
trainer.register_plugin(EarlyStopper(patience=3))
device = hlp.DevicePlugin("cpu")
assert_type(hlp.DevicePlugin.plugin_id, str)
assert_type(hlp.CUDAPlugin.plugin_id, str)

other = hlt.Trainer(use_cpu=True)
device.configure_trainer(other)

# -- lookups ----------------------------------------------------------------------------
assert_type(trainer.plugins, hlp.PluginTable)
assert_type(trainer.plugins["my_plugin"], hlp.PluginProtocol)
assert_type(trainer.plugins["my_plugin"].plug_id, str)
assert_type(trainer.plugins.get("counter"), hlp.PluginProtocol | None)
assert_type(trainer.plugin("my_plugin", MyPlugin), MyPlugin)
assert_type(trainer.plugin("counter", Counter).batches, int)
assert_type(trainer.plugins.get_as("early_stopper", EarlyStopper).patience, int)
assert_type(other.plugin(hlp.DevicePlugin.plugin_id, hlp.DevicePlugin), hlp.DevicePlugin)
assert_type(other.plugin("device", hlp.DevicePlugin).target_device, torch.device)
assert_type(other.plugins[hlp.DevicePlugin.plugin_id], hlp.PluginProtocol)
assert_type(trainer.plugins.claims("my_plugin"), frozenset[str])
assert_type(trainer.plugins.claimant("training_batch"), hlp.PluginProtocol | None)
for plug_id, plugin in trainer.plugins.items():
    assert_type(plug_id, str)
    assert_type(plugin, hlp.PluginProtocol)
    assert_type(plugin.unique_overrides, hlp.UniquePluginOverrides)

# -- the unique overrides ---------------------------------------------------------------
flags = hlp.UniquePluginOverrides(training_batch=True)
assert_type(flags.training_batch, bool)
assert_type(flags.should_training_stop, bool)
assert_type(flags.claimed(), frozenset[str])

# -- the registry and create_plugin -----------------------------------------------------


class TypingPassPlugin(hlp.Plugin):
    def __init__(self, plug_id: str = "typing_pass") -> None:
        super().__init__(plug_id)


if "TypingPassPlugin" not in hlp.PLUGIN_REGISTRY:
    registered = hlp.PLUGIN_REGISTRY.register(TypingPassPlugin)
    assert_type(registered, type[TypingPassPlugin])
assert_type(hlp.PLUGIN_REGISTRY, hlc.Registry[hlp.Plugin])
assert_type(hlp.PLUGIN_REGISTRY.create("TypingPassPlugin", "made"), hlp.Plugin)
assert_type(hlp.create_plugin("DevicePlugin", "cpu"), hlp.Plugin)
created = hlp.create_plugin("DevicePlugin", device="cpu")
if isinstance(created, hlp.DevicePlugin):
    assert_type(created.target_device, torch.device)

# -- the device plug-ins' override point, in the seed's form ----------------------------


class MyCUDAPlugin(hlp.CUDAPlugin):
    def _move_collection_to_device(
        self, batch: dict[str, list[torch.Tensor]]
    ) -> dict[str, list[torch.Tensor]]:
        for key, value in batch.items():
            for i in range(len(value)):
                value[i] = value[i].to(self.device)
            batch[key] = value
        return batch


class ListsToDevice(hlp.DevicePlugin):
    def _move_collection_to_device(
        self, batch: dict[str, list[torch.Tensor]]
    ) -> dict[str, list[torch.Tensor]]:
        return {key: [t.to(self.target_device) for t in value] for key, value in batch.items()}


lists_mover = ListsToDevice("cpu")
assert_type(lists_mover.plug_id, str)
moved = lists_mover.process_testing_batch({"x": [torch.ones(1)]}, 0)

# The runtime agrees with the types.
assert list(trainer.plugins) == ["my_plugin", "counter", "early_stopper"]
assert trainer.plugins.claimant("testing_batch") is trainer.plugin("counter", Counter)
assert len(mine.process_training_batch([torch.ones(1)] * 3, hlp.TrainingState())) == 2
