"""`hlp.Plugin` is an ordinary base class: ``isinstance`` works, ``configure_trainer``
registers by default, and a plug-in left unregistered or a misspelt hook is reported."""

from __future__ import annotations

import inspect
import warnings
from typing import Any

import pytest

import helios.plugins as hlp
import helios.trainer as hlt
from helios.plugins import register_plugin
from helios.plugins._plugin import HOOK_PARAMETERS
from tests.strategies import StructuralPlugin


class Quiet(hlp.Plugin):
    """Overrides no hook and no configure_trainer: attached the seed's way."""

    def __init__(self) -> None:
        super().__init__("quiet")


class Forgetful(hlp.Plugin):
    """Overrides configure_trainer and forgets to register."""

    def __init__(self) -> None:
        super().__init__("forgetful")
        self.configured = False

    def configure_trainer(self, trainer: hlt.Trainer, /) -> None:
        self.configured = True


class Careful(Forgetful):
    """Extends a configure_trainer that does not register, and registers itself."""

    def configure_trainer(self, trainer: hlt.Trainer, /) -> None:
        super().configure_trainer(trainer)
        self._register_in_trainer(trainer)


class Polite(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("polite")

    def configure_trainer(self, trainer: hlt.Trainer, /) -> None:
        super().configure_trainer(trainer)
        trainer.train_exceptions.append(KeyError)


def test_isinstance_works_for_subclasses_only() -> None:
    assert isinstance(Quiet(), hlp.Plugin)
    assert isinstance(hlp.DevicePlugin("cpu"), hlp.Plugin)
    assert not isinstance(StructuralPlugin("s"), hlp.Plugin)
    assert not isinstance(object(), hlp.Plugin)
    assert issubclass(Quiet, hlp.Plugin)


def test_structural_plugins_still_register() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    structural = StructuralPlugin("s")
    trainer.register_plugin(structural)
    assert trainer.plugins["s"] is structural


def test_configure_trainer_registers_by_default() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    plugin = Quiet()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugin.configure_trainer(trainer)
    assert trainer.plugins["quiet"] is plugin
    with pytest.raises(KeyError, match="'quiet' is already registered"):
        Quiet().configure_trainer(trainer)


def test_an_override_that_calls_super_registers_without_a_warning() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Polite().configure_trainer(trainer)
        Careful().configure_trainer(trainer)
    assert list(trainer.plugins) == ["polite", "forgetful"]
    assert KeyError in trainer.train_exceptions


def test_an_override_that_forgets_to_register_is_reported() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    plugin = Forgetful()
    with pytest.warns(UserWarning, match=r"returned without registering plug-in 'forgetful'") as w:
        plugin.configure_trainer(trainer)
    assert plugin.configured
    assert "forgetful" not in trainer.plugins
    assert w[0].filename == __file__  # points at the user's call


# -- misspelt hooks ---------------------------------------------------------------------


class Misspelt(hlp.Plugin):
    def __init__(self) -> None:
        super().__init__("misspelt")

    def on_train_start(self) -> None: ...
    def process_train_batch(self, batch: Any, state: hlp.TrainingState) -> Any: ...
    def should_stop_training(self) -> bool:
        return False

    def helper(self) -> int:
        return 1


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("on_train_start", "on_training_start"),
        ("process_train_batch", "process_training_batch"),
        ("should_stop_training", "should_training_stop"),
    ],
)
def test_a_misspelt_hook_is_named_at_registration(name: str, meant: str) -> None:
    with pytest.warns(UserWarning, match="is not a hook") as caught:
        register_plugin(hlp.PluginTable(), Misspelt())
    messages = [str(w.message) for w in caught]
    assert any(f"{name} is not a hook" in m and f"did you mean {meant}?" in m for m in messages)
    assert not any("helper" in m for m in messages)
    assert all(w.filename == __file__ for w in caught)


def test_a_structural_plugin_with_a_misspelt_hook_is_named_too() -> None:
    class Typo(StructuralPlugin):
        def on_validaton_end(self, validation_cycle: int, /) -> None: ...

    with pytest.warns(UserWarning, match="did you mean on_validation_end"):
        register_plugin(hlp.PluginTable(), Typo("typo"))


def test_correct_plugins_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = register_plugin(hlp.PluginTable(), Quiet())
        table = register_plugin(table, hlp.DevicePlugin("cpu"))
        register_plugin(table, StructuralPlugin("s"))


# -- one list of hooks ------------------------------------------------------------------


def test_the_hook_table_is_read_from_the_role_protocols() -> None:
    roles = (hlp.LifecycleHooks, hlp.BatchHooks, hlp.StopHook, hlp.StateHooks)
    declared = [name for role in roles for name in vars(role) if not name.startswith("_")]
    assert list(HOOK_PARAMETERS) == declared
    assert set(hlp.OVERRIDE_FLAGS.values()) <= set(HOOK_PARAMETERS)


@pytest.mark.parametrize("hook", sorted(HOOK_PARAMETERS))
def test_every_hook_has_a_default_on_plugin_that_takes_its_arguments(hook: str) -> None:
    default = inspect.signature(getattr(Quiet(), hook))
    default.bind(*HOOK_PARAMETERS[hook])
    assert hook in vars(hlp.Plugin)
