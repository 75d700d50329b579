"""The bad-input matrix: plug-in registration, the plug-in table and the registries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import helios.core as hlc
import helios.plugins as hlp
import helios.trainer as hlt
from tests.faults.bad_input.parts import (
    NO_CUDA,
    Row,
    Workspace,
    wrong,
)
from tests.faults.bad_input.runner import assert_refused, parametrize

# -- plug-ins and the registry ---------------------------------------------------------


class NotAPlugin:
    plug_id = "nope"


class NoInit(hlp.Plugin):
    def __init__(self) -> None:  # forgets super().__init__(plug_id)
        self.ready = True


class WrongArity(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("arity")
        self.unique_overrides.training_batch = True

    def process_training_batch(self, batch: Any) -> Any:  # type: ignore[override]
        return batch


class DictOverrides(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("dict")
        self.unique_overrides = wrong({"training_batch": True})


class StringFlag(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("string")
        self.unique_overrides.training_batch = wrong("yes")


def _register_row(
    bad: str, make: Callable[[], object], error: type[BaseException], match: str
) -> Row:
    def call(ws: Workspace) -> None:
        run = hlt.Trainer(use_cpu=True)
        run.register_plugin(hlp.DevicePlugin("cpu"))
        ws.extra["trainer"] = run
        ws.extra["table"] = run.plugins
        run.register_plugin(wrong(make()))

    def after(ws: Workspace) -> list[str]:
        if ws.extra["trainer"].plugins is not ws.extra["table"]:
            return [f"the plug-in table changed: {ws.extra['trainer'].plugins!r}"]
        return []

    return Row("Trainer.register_plugin", bad, call, error, match, after=after)


def _registry_row(
    bad: str, call: Callable[[], object], error: type[BaseException], match: str
) -> Row:
    def run(ws: Workspace) -> object:
        ws.extra["names"] = hlp.PLUGIN_REGISTRY.names()
        return call()

    def after(ws: Workspace) -> list[str]:
        if hlp.PLUGIN_REGISTRY.names() != ws.extra["names"]:
            return [f"PLUGIN_REGISTRY changed: {hlp.PLUGIN_REGISTRY.names()}"]
        return []

    return Row("PLUGIN_REGISTRY", bad, run, error, match, after=after)


def _assign(mapping: object, key: str, value: object) -> None:
    wrong(mapping)[key] = value


def _trainer_with_device() -> hlt.Trainer:
    run = hlt.Trainer(use_cpu=True)
    run.register_plugin(hlp.DevicePlugin("cpu"))
    return run


PLUGIN_ROWS = [
    _register_row(
        "a duplicate id",
        lambda: hlp.DevicePlugin("cpu"),
        KeyError,
        r"a plug-in with id 'device' is already registered .*each id may appear once",
    ),
    _register_row(
        "an override conflict",
        lambda: hlp.BatchPlugin("prep", training=hlc.identity),
        ValueError,
        r"unique override 'training_batch' is claimed by both 'device' \(DevicePlugin\) and "
        r"'prep' \(BatchPlugin\).*Combine their work in one plug-in",
    ),
    _register_row(
        "object()",
        object,
        TypeError,
        r"object is not a plug-in: it lacks plug_id, unique_overrides, .*Subclass "
        r"helios.plugins.Plugin",
    ),
    _register_row(
        "a class with a plug_id only",
        NotAPlugin,
        TypeError,
        r"'nope' \(NotAPlugin\) is not a plug-in: it lacks unique_overrides",
    ),
    _register_row(
        "the class, not an instance",
        lambda: hlp.DevicePlugin,
        TypeError,
        r"DevicePlugin is a class, not a plug-in: register an instance of it",
    ),
    _register_row(
        "a subclass that skipped super().__init__",
        NoInit,
        TypeError,
        r"NoInit is not a plug-in: it lacks plug_id, unique_overrides.*call "
        r"super\(\).__init__\(plug_id\)",
    ),
    _register_row(
        "a batch hook with the wrong arity",
        WrongArity,
        TypeError,
        r"'arity' \(WrongArity\) has hooks with the wrong signature: "
        r"process_training_batch\(batch\b.* cannot be called as "
        r"process_training_batch\(self, batch, state\)",
    ),
    _register_row(
        "unique_overrides is a dict",
        DictOverrides,
        TypeError,
        r"unique_overrides is \{'training_batch': True\}; it must be a "
        r"helios.plugins.UniquePluginOverrides",
    ),
    _register_row(
        "an override flag that is a string",
        StringFlag,
        TypeError,
        r"unique_overrides.training_batch is 'yes'; it must be True or False",
    ),
    Row(
        "Plugin()",
        "plug_id=''",
        lambda ws: wrong(hlp.Plugin)(""),
        ValueError,
        r"a plug-in id must be a non-empty string",
    ),
    Row(
        "BatchPlugin()",
        "training=3",
        lambda ws: hlp.BatchPlugin("p", training=wrong(3)),
        TypeError,
        r"BatchPlugin training= must be callable, got 3",
    ),
    Row(
        "CUDAPlugin()",
        "no CUDA",
        lambda ws: hlp.CUDAPlugin(),
        RuntimeError,
        r"CUDAPlugin needs CUDA, which is not available here .*Use helios.plugins.DevicePlugin",
        skip=NO_CUDA,
    ),
    Row(
        "Trainer.plugins",
        "item assignment",
        lambda ws: _assign(hlt.Trainer(use_cpu=True).plugins, "x", hlp.DevicePlugin()),
        TypeError,
        r"'PluginTable' object does not support item assignment",
    ),
    Row(
        "Trainer.plugins",
        "replaced by a dict",
        lambda ws: setattr(hlt.Trainer(use_cpu=True), "plugins", {}),
        TypeError,
        r"trainer.plugins is read-only: add plug-ins with trainer.register_plugin\(plugin\)",
    ),
    Row(
        "Trainer.plugins",
        "an unknown id",
        lambda ws: _trainer_with_device().plugins["nope"],
        KeyError,
        r"no plug-in with id 'nope' is registered; registered ids: \['device'\]",
    ),
    Row(
        "Trainer.plugin",
        "the wrong class",
        lambda ws: _trainer_with_device().plugin("device", hlp.BatchPlugin),
        TypeError,
        r"plug-in 'device' is a DevicePlugin, not a BatchPlugin",
    ),
    Row(
        "Plugin.trainer",
        "read before registration",
        lambda ws: wrong(hlp.Plugin)("x").trainer,
        RuntimeError,
        r"plug-in 'x' has no trainer yet.*register the plug-in first",
    ),
    _registry_row(
        "an unknown name",
        lambda: hlp.create_plugin("NoSuchPlugin"),
        KeyError,
        r"no plug-in named 'NoSuchPlugin' is registered; known names: \[.*'DevicePlugin'",
    ),
    _registry_row(
        "a name taken by another class",
        lambda: hlp.PLUGIN_REGISTRY.register(
            type("DevicePlugin", (hlp.Plugin,), {"__module__": "elsewhere"})
        ),
        KeyError,
        r"a plug-in named 'DevicePlugin' is already registered .*pick another class name",
    ),
    _registry_row(
        "a class that is not a plug-in",
        lambda: hlp.PLUGIN_REGISTRY.register(int),
        TypeError,
        r"int is not a plug-in class: it lacks configure_trainer",
    ),
    _registry_row(
        "a function",
        lambda: hlp.PLUGIN_REGISTRY.register(lambda: None),
        TypeError,
        r"only plug-in classes can be registered",
    ),
    _registry_row(
        "a number",
        lambda: hlp.PLUGIN_REGISTRY.register(wrong(3)),
        TypeError,
        r"cannot register 3 as a plug-in: it is not callable",
    ),
    Row(
        "Registry.get",
        "an unknown name",
        lambda ws: hlc.Registry[object]("shape").get("circle"),
        KeyError,
        r"no shape named 'circle' is registered; known names: \[\]",
    ),
]


@parametrize(PLUGIN_ROWS)
def test_plugins_refused(row: Row, matrix_template: Path, tmp_path: Path) -> None:
    assert_refused(row, matrix_template, tmp_path)
