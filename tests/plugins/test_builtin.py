"""Tests of the built-in plug-ins and the plug-in registry."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import helios.data as hld
import helios.model as hlm
import helios.plugins as hlp
import helios.trainer as hlt
from helios.plugins import PluginTable, register_plugin
from tests.helpers import assert_unchanged, reference_leaves, snapshot
from tests.strategies import FrozenBox, SpecPlugin


class Sample(NamedTuple):
    image: torch.Tensor
    label: torch.Tensor
    name: str


@dataclasses.dataclass
class Record:
    inputs: dict[str, list[torch.Tensor]]
    sample: Sample
    weight: float = 1.0


def nested_batch() -> dict[str, Any]:
    return {
        "lists": {"a": [torch.ones(2), torch.zeros(1, dtype=torch.long)], "b": []},
        "sample": Sample(torch.ones(1, 2), torch.tensor([3]), "cat"),
        "record": Record({"x": [torch.ones(3)]}, Sample(torch.zeros(1), torch.tensor(1), "dog")),
        "frozen": FrozenBox(torch.ones(1), None),
        "meta": ("id-7", 3, None, 0.5),
    }


def assert_moved(out: Any, batch: Any, device: str) -> None:
    for new, old in zip(reference_leaves(out), reference_leaves(batch), strict=True):
        if isinstance(old, torch.Tensor):
            assert new.device.type == device
            assert new.dtype == old.dtype
            assert new.shape == old.shape
        else:
            assert new is old


def with_cuda_reported(monkeypatch: pytest.MonkeyPatch, available: bool) -> None:
    """Make ``torch.cuda`` report (un)availability, so both branches run on any machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    if available:
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


# -- DevicePlugin ---------------------------------------------------------------------


def test_device_plugin_moves_nested_batches_and_leaves_the_input_alone() -> None:
    plugin = hlp.DevicePlugin("meta")
    batch = nested_batch()
    before = snapshot(batch)
    for out in (
        plugin.process_training_batch(batch, hlp.TrainingState()),
        plugin.process_validation_batch(batch, 0),
        plugin.process_testing_batch(batch, 1),
    ):
        assert_moved(out, batch, "meta")
        assert type(out["sample"]) is Sample
        assert type(out["record"]) is Record
        assert out["record"].sample.name == "dog"
        assert out["lists"]["b"] == []
    assert_unchanged(batch, before)


def test_device_plugin_does_not_copy_tensors_already_on_the_device() -> None:
    batch = nested_batch()
    out = hlp.DevicePlugin("cpu").process_training_batch(batch, hlp.TrainingState())
    assert out["lists"]["a"][0] is batch["lists"]["a"][0]
    assert out["record"].inputs["x"][0] is batch["record"].inputs["x"][0]
    assert out is not batch


def test_device_plugin_claims_the_three_batch_overrides() -> None:
    plugin = hlp.DevicePlugin()
    assert plugin.plug_id == hlp.DevicePlugin.plugin_id == "device"
    assert plugin.unique_overrides.claimed() == {
        "training_batch",
        "validation_batch",
        "testing_batch",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = register_plugin(PluginTable(), plugin)
    with pytest.raises(ValueError, match="'testing_batch' is claimed by both 'device'"):
        register_plugin(table, SpecPlugin("tester", frozenset({"testing_batch"})))


def test_device_plugin_without_a_device_follows_the_device_the_trainer_sets() -> None:
    plugin = hlp.DevicePlugin()
    trainer = hlt.Trainer(use_cpu=True)
    plugin.configure_trainer(trainer)
    assert trainer.plugins[hlp.DevicePlugin.plugin_id] is plugin
    batch = [torch.ones(1)]
    assert plugin.process_training_batch(batch, hlp.TrainingState())[0] is batch[0]
    # What the trainer does before setup() (on a GPU machine this would be the GPU).
    plugin.device = torch.device("meta")
    assert plugin.target_device == torch.device("meta")
    assert plugin.process_testing_batch(batch, 0)[0].device.type == "meta"
    plugin.device = torch.device("cpu")
    assert plugin.process_testing_batch(batch, 0)[0] is batch[0]


def test_device_plugin_with_a_device_ignores_the_trainer_device() -> None:
    plugin = hlp.DevicePlugin(torch.device("meta"))
    plugin.device = torch.device("cpu")
    assert plugin.target_device == torch.device("meta")
    assert plugin.process_validation_batch((torch.ones(1),), 0)[0].device.type == "meta"


class _Dataset(hld.DataModule):
    def test_dataloader(self) -> DataLoader[Any]:
        data = TensorDataset(torch.arange(6, dtype=torch.float32), torch.arange(6))
        return DataLoader(data, batch_size=2)


class _Recorder(hlm.Model):
    def __init__(self) -> None:
        super().__init__("recorder")
        self.seen: list[Any] = []

    def test_step(self, batch: Any, step: int) -> None:
        self.seen.append(batch)


def test_device_plugin_in_a_trainer_moves_batches_to_the_trainer_device(tmp_path: Path) -> None:
    trainer = hlt.Trainer(use_cpu=True, chkpt_root=tmp_path / "chkpt")
    plugin = hlp.DevicePlugin()
    plugin.configure_trainer(trainer)
    model = _Recorder()
    assert trainer.test(model, _Dataset())
    assert plugin.trainer is trainer
    assert plugin.device == trainer.device == torch.device("cpu")
    assert plugin.target_device == trainer.device
    assert len(model.seen) == 3
    for batch in model.seen:
        assert all(t.device == trainer.device for t in batch)


# -- CUDAPlugin -----------------------------------------------------------------------


def test_cuda_plugin_without_cuda_raises_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    with_cuda_reported(monkeypatch, available=False)
    with pytest.raises(RuntimeError, match=r"CUDAPlugin needs CUDA.*Use helios.plugins.Device"):
        hlp.CUDAPlugin()


def test_cuda_plugin_here() -> None:
    if torch.cuda.is_available():
        plugin = hlp.CUDAPlugin()
        assert plugin.device.type == "cuda"
        out = plugin.process_training_batch(
            {"x": [torch.ones(1).pin_memory()]}, hlp.TrainingState()
        )
        assert out["x"][0].device == plugin.device
    else:
        with pytest.raises(RuntimeError, match="not available here"):
            hlp.CUDAPlugin()


def test_cuda_plugin_is_a_device_plugin_with_its_own_id(monkeypatch: pytest.MonkeyPatch) -> None:
    with_cuda_reported(monkeypatch, available=True)
    plugin = hlp.CUDAPlugin()
    assert plugin.plug_id == hlp.CUDAPlugin.plugin_id == "cuda"
    assert plugin.device == torch.device("cuda", 0)
    assert plugin.unique_overrides.claimed() == {
        "training_batch",
        "validation_batch",
        "testing_batch",
    }
    trainer = hlt.Trainer(use_cpu=True)
    plugin.configure_trainer(trainer)
    assert trainer.plugins[hlp.CUDAPlugin.plugin_id] is plugin
    with pytest.raises(ValueError, match="claimed by both 'cuda'"):
        hlp.DevicePlugin().configure_trainer(trainer)
    plugin.device = torch.device("cpu")  # what a CPU trainer would set
    with pytest.raises(RuntimeError, match="the trainer must train on a GPU"):
        plugin.setup()


class MyCUDAPlugin(hlp.CUDAPlugin):
    """The seed's subclass: only the mover is overridden. (It mutates its input, as allowed.)"""

    def _move_collection_to_device(
        self, batch: dict[str, list[torch.Tensor]]
    ) -> dict[str, list[torch.Tensor]]:
        for key, value in batch.items():
            for i in range(len(value)):
                value[i] = value[i].to(self.device)
            batch[key] = value
        return batch


def test_the_seeds_move_override_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with_cuda_reported(monkeypatch, available=True)
    plugin = MyCUDAPlugin()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_plugin(PluginTable(), plugin)
    plugin.device = torch.device("meta")  # stands in for the GPU the trainer would set
    batch = {"a": [torch.ones(1), torch.zeros(2)]}
    out = plugin.process_training_batch(batch, hlp.TrainingState())
    assert out is batch  # the override ran: it edits and returns the same dict
    assert all(t.device.type == "meta" for t in out["a"])
    assert plugin.process_validation_batch({"b": [torch.ones(1)]}, 0)["b"][0].device.type == (
        "meta"
    )


def test_a_device_plugin_subclass_can_override_the_mover() -> None:
    class Tagging(hlp.DevicePlugin):
        def _move_collection_to_device(self, batch: Any) -> Any:
            return ("moved", super()._move_collection_to_device(batch))

    plugin = Tagging("meta")
    tag, out = plugin.process_testing_batch([torch.ones(1)], 0)
    assert tag == "moved"
    assert out[0].device.type == "meta"


# -- the registry ---------------------------------------------------------------------


def test_builtins_are_registered() -> None:
    names = hlp.PLUGIN_REGISTRY.names()
    for name in ("CUDAPlugin", "DevicePlugin", "BatchPlugin"):
        assert name in names
    assert hlp.PLUGIN_REGISTRY.get("CUDAPlugin") is hlp.CUDAPlugin


def test_create_plugin_builds_registered_plugins() -> None:
    device = hlp.create_plugin("DevicePlugin", "meta")
    assert isinstance(device, hlp.DevicePlugin)
    assert device.target_device == torch.device("meta")
    batch = hlp.create_plugin("BatchPlugin", "prep", training=hlp.take(1))
    assert isinstance(batch, hlp.BatchPlugin)
    assert batch.process_training_batch([1, 2], hlp.TrainingState()) == [1]


def test_create_plugin_unknown_name_lists_the_known_names() -> None:
    with pytest.raises(KeyError) as info:
        hlp.create_plugin("NoSuchPlugin")
    message = info.value.args[0]
    assert "no plug-in named 'NoSuchPlugin' is registered; known names:" in message
    for name in ("BatchPlugin", "CUDAPlugin", "DevicePlugin"):
        assert f"'{name}'" in message


def test_create_plugin_of_cuda_without_cuda_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    with_cuda_reported(monkeypatch, available=False)
    with pytest.raises(RuntimeError, match="CUDAPlugin needs CUDA"):
        hlp.create_plugin("CUDAPlugin")


def test_registry_decorator_forms_register_by_class_name() -> None:
    @hlp.PLUGIN_REGISTRY
    class BuiltinTestsDecoratedPlugin(hlp.Plugin):
        def __init__(self, plug_id: str = "decorated") -> None:
            super().__init__(plug_id)

    @hlp.PLUGIN_REGISTRY.register
    class BuiltinTestsRegisteredPlugin(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("registered")

    class BuiltinTestsCalledPlugin(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("called")

    assert hlp.PLUGIN_REGISTRY.register(BuiltinTestsCalledPlugin) is BuiltinTestsCalledPlugin

    decorated = hlp.create_plugin("BuiltinTestsDecoratedPlugin", plug_id="custom")
    assert type(decorated) is BuiltinTestsDecoratedPlugin
    assert decorated.plug_id == "custom"
    assert type(hlp.create_plugin("BuiltinTestsRegisteredPlugin")) is BuiltinTestsRegisteredPlugin
    assert hlp.create_plugin("BuiltinTestsCalledPlugin").plug_id == "called"

    other = type("BuiltinTestsCalledPlugin", (hlp.Plugin,), {"__module__": "elsewhere"})
    with pytest.raises(KeyError, match="'BuiltinTestsCalledPlugin' is already registered"):
        hlp.PLUGIN_REGISTRY.register(other)


def test_registry_refuses_what_is_not_a_plugin_class() -> None:
    class BuiltinTestsNotAPlugin:
        pass

    with pytest.raises(TypeError, match="BuiltinTestsNotAPlugin is not a plug-in class: it lacks"):
        hlp.PLUGIN_REGISTRY.register(BuiltinTestsNotAPlugin)
    with pytest.raises(TypeError, match="only plug-in classes can be registered"):
        hlp.PLUGIN_REGISTRY.register(lambda: hlp.DevicePlugin())
    assert "BuiltinTestsNotAPlugin" not in hlp.PLUGIN_REGISTRY
    assert "<lambda>" not in hlp.PLUGIN_REGISTRY


def test_create_plugin_checks_what_the_factory_built() -> None:
    @hlp.PLUGIN_REGISTRY
    class BuiltinTestsBrokenPlugin(hlp.Plugin):
        def __init__(self) -> None:
            pass  # forgot super().__init__

    with pytest.raises(TypeError, match="lacks plug_id, unique_overrides"):
        hlp.create_plugin("BuiltinTestsBrokenPlugin")
