"""Tests of plug-in registration: the protocol check, the table and the unique overrides."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch
from hypothesis import example, given

import helios.plugins as hlp
import helios.trainer as hlt
from helios.plugins import PluginTable, register_plugin
from tests.strategies import (
    PluginSpec,
    SpecPlugin,
    StructuralPlugin,
    make_plugin,
    plugin_specs,
)

FLAGS = sorted(hlp.OVERRIDE_FLAGS)


def table_of(*plugins: object) -> PluginTable:
    table = PluginTable()
    for plugin in plugins:
        table = register_plugin(table, plugin)
    return table


def contents(table: PluginTable) -> list[tuple[str, object, frozenset[str]]]:
    return [(plug_id, plugin, table.claims(plug_id)) for plug_id, plugin in table.items()]


# -- the registration property --------------------------------------------------------


def spec(plug_id: str, *flags: str, structural: bool = False) -> PluginSpec:
    return PluginSpec(plug_id, frozenset(flags), structural)


@given(plugin_specs())
@example([spec("a", "training_batch"), spec("a"), spec("b", "training_batch")])
@example([spec("a", *FLAGS), spec("b", structural=True), spec("c", "should_training_stop")])
@example([spec("a", "testing_batch", structural=True), spec("a", "testing_batch")])
def test_registration_succeeds_iff_neither_id_nor_flag_is_taken(specs: list[PluginSpec]) -> None:
    table = PluginTable()
    accepted: list[Any] = []
    owners: dict[str, Any] = {}
    for item in specs:
        plugin = make_plugin(item)
        before = contents(table)
        id_taken = item.plug_id in table
        conflicts = sorted(item.flags & owners.keys())
        if id_taken:
            with pytest.raises(KeyError) as key_info:
                register_plugin(table, plugin)
            assert f"id {item.plug_id!r} is already registered" in key_info.value.args[0]
        elif conflicts:
            with pytest.raises(ValueError, match="only one registered plug-in") as info:
                register_plugin(table, plugin)
            message = str(info.value)
            flag = conflicts[0]
            assert f"unique override {flag!r}" in message
            assert f"{owners[flag].plug_id!r} ({type(owners[flag]).__qualname__})" in message
            assert f"{item.plug_id!r} ({type(plugin).__qualname__})" in message
        else:
            new = register_plugin(table, plugin)
            assert new is not table
            assert contents(table) == before  # the old table is never changed
            table = new
            accepted.append(plugin)
            owners.update(dict.fromkeys(item.flags, plugin))
            continue
        assert contents(table) == before
        assert table == table_of(*accepted)

    assert list(table) == [plugin.plug_id for plugin in accepted]
    assert list(table.values()) == accepted
    assert len(table) == len(accepted)
    assert table == table_of(*accepted)
    for plugin in accepted:
        assert table[plugin.plug_id] is plugin
        assert table.claims(plugin.plug_id) == plugin.unique_overrides.claimed()
    for flag in FLAGS:
        assert table.claimant(flag) is owners.get(flag)


@given(plugin_specs(max_size=5))
def test_trainer_registration_matches_the_table(specs: list[PluginSpec]) -> None:
    trainer = hlt.Trainer(use_cpu=True)
    expected = PluginTable()
    for item in specs:
        plugin = make_plugin(item)
        try:
            expected = register_plugin(expected, plugin)
        except (KeyError, ValueError) as error:
            before = trainer.plugins
            with pytest.raises(type(error)):
                trainer.register_plugin(plugin)
            assert trainer.plugins is before
        else:
            trainer.register_plugin(plugin)
        assert trainer.plugins == expected


# -- what is (not) a plug-in ----------------------------------------------------------


def test_an_object_that_is_not_a_plugin_is_refused_naming_what_is_missing() -> None:
    with pytest.raises(TypeError, match="object is not a plug-in: it lacks plug_id, ") as info:
        register_plugin(PluginTable(), object())
    for member in ("unique_overrides", "map_loc", "process_testing_batch", "load_state_dict"):
        assert member in str(info.value)


def test_missing_members_are_named_exactly() -> None:
    members = {
        name: value
        for name, value in vars(StructuralPlugin).items()
        if name not in ("setup", "on_testing_end", "__dict__", "__weakref__")
    }
    partial = type("Partial", (), members)("partial")

    class Incomplete:
        plug_id = "incomplete"
        unique_overrides = hlp.UniquePluginOverrides()

    with pytest.raises(
        TypeError,
        match=r"'partial' \(Partial\) is not a plug-in: it lacks setup, on_testing_end\.",
    ):
        register_plugin(PluginTable(), partial)
    with pytest.raises(
        TypeError, match=r"'incomplete' \(.*Incomplete\) is not a plug-in: it lacks tr"
    ):
        register_plugin(PluginTable(), Incomplete())


def test_a_declared_but_unset_id_is_reported_as_missing() -> None:
    members = {
        name: value
        for name, value in vars(StructuralPlugin).items()
        if name not in ("plug_id", "__init__", "__dict__", "__weakref__")
    }
    members["__annotations__"] = {**StructuralPlugin.__annotations__, "plug_id": "str"}
    plugin = type("Declared", (), members)()
    plugin.unique_overrides = hlp.UniquePluginOverrides()
    with pytest.raises(TypeError, match=r"Declared is not a plug-in: it lacks plug_id\."):
        register_plugin(PluginTable(), plugin)


def test_a_subclass_that_skipped_super_init_is_refused() -> None:
    class Forgetful(hlp.Plugin):
        def __init__(self) -> None:
            pass

    with pytest.raises(
        TypeError, match=r"lacks plug_id, unique_overrides\. .*super\(\)\.__init__"
    ):
        register_plugin(PluginTable(), Forgetful())


def test_structural_plugin_registers() -> None:
    plugin = StructuralPlugin("structural", frozenset({"training_batch"}))
    assert hlp.Plugin not in type(plugin).__mro__
    table = register_plugin(PluginTable(), plugin)
    assert table["structural"] is plugin
    assert table.claimant("training_batch") is plugin

    trainer = hlt.Trainer(use_cpu=True)
    plugin.configure_trainer(trainer)
    assert trainer.plugins["structural"] is plugin


def test_structural_plugin_works_without_warnings_when_it_claims_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = register_plugin(PluginTable(), StructuralPlugin("quiet"))
    assert table.claims("quiet") == frozenset()


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("unique_overrides", {"training_batch": True}, "must be a helios.plugins.Unique"),
        ("_plug_id", "", "has plug_id ''; it must be a non-empty str"),
        ("_plug_id", 7, "has plug_id 7"),
    ],
)
def test_bad_id_or_flags_are_refused(attribute: str, value: Any, message: str) -> None:
    plugin = StructuralPlugin("x")
    setattr(plugin, attribute, value)
    with pytest.raises(TypeError, match=message):
        register_plugin(PluginTable(), plugin)


def test_a_non_bool_flag_is_refused() -> None:
    plugin = SpecPlugin("x")
    plugin.unique_overrides.testing_batch = 1  # type: ignore[assignment]
    with pytest.raises(TypeError, match=r"unique_overrides.testing_batch is 1; it must be True"):
        register_plugin(PluginTable(), plugin)


def test_the_plugin_id_is_read_only_and_must_be_a_non_empty_string() -> None:
    plugin = SpecPlugin("fixed")
    with pytest.raises(AttributeError):
        plugin.plug_id = "other"  # type: ignore[misc]
    with pytest.raises(ValueError, match="non-empty string"):
        SpecPlugin("")


def test_the_trainer_member_before_registration_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="'lonely' has no trainer yet"):
        _ = SpecPlugin("lonely").trainer


# -- hook signatures ------------------------------------------------------------------


def test_a_batch_hook_with_the_wrong_arity_is_refused_showing_the_signature() -> None:
    class SeedShorthand(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("short")
            self.unique_overrides.training_batch = True

        def process_training_batch(self, batch: Any) -> Any:  # type: ignore[override]
            return batch[:2]

    with pytest.raises(TypeError) as info:
        register_plugin(PluginTable(), SeedShorthand())
    message = str(info.value)
    assert message.startswith("'short' (")
    assert "SeedShorthand) has hooks with the wrong signature: process_training_batch(batch" in (
        message
    )
    assert message.endswith("cannot be called as process_training_batch(self, batch, state)")


def test_every_bad_hook_is_listed() -> None:
    class TooMany(StructuralPlugin):
        def on_validation_start(self) -> None:  # type: ignore[override]
            pass

        def process_testing_batch(self, batch: Any, step: int, extra: int, /) -> Any:  # type: ignore[override]
            return batch

        def should_training_stop(self, *, force: bool) -> bool:  # type: ignore[override]
            return force

    with pytest.raises(TypeError) as info:
        register_plugin(PluginTable(), TooMany("bad"))
    message = str(info.value)
    assert "on_validation_start(self, validation_cycle)" in message
    assert "process_testing_batch(self, batch, step)" in message
    assert "should_training_stop(self)" in message
    assert "process_training_batch" not in message


def test_a_hook_that_is_not_callable_is_refused() -> None:
    plugin = StructuralPlugin("x")
    plugin.setup = 3  # type: ignore[assignment, method-assign]
    with pytest.raises(TypeError, match=r"setup is not callable; expected setup\(self\)"):
        register_plugin(PluginTable(), plugin)


def test_extra_optional_parameters_are_fine() -> None:
    class Flexible(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("flexible")
            self.unique_overrides.training_batch = True
            self.unique_overrides.validation_batch = True
            self.unique_overrides.should_training_stop = True

        def process_training_batch(
            self, batch: Any, state: hlp.TrainingState, /, scale: int = 1, *, tag: str = ""
        ) -> Any:
            return batch

        def process_validation_batch(self, *args: Any, **kwargs: Any) -> Any:
            return args[0]

        def should_training_stop(self, verbose: bool = False) -> bool:
            return False

    plugin = Flexible()
    assert register_plugin(PluginTable(), plugin)["flexible"] is plugin


# -- flags ----------------------------------------------------------------------------


def test_flags_are_snapshotted_at_registration() -> None:
    plugin = SpecPlugin("first", frozenset({"training_batch"}))
    table = register_plugin(PluginTable(), plugin)

    plugin.unique_overrides.training_batch = False
    plugin.unique_overrides.validation_batch = True

    assert table.claims("first") == frozenset({"training_batch"})
    assert table.claimant("training_batch") is plugin
    assert table.claimant("validation_batch") is None
    with pytest.raises(ValueError, match="'training_batch' is claimed by both 'first'"):
        register_plugin(table, SpecPlugin("second", frozenset({"training_batch"})))
    other = SpecPlugin("third", frozenset({"validation_batch"}))
    assert register_plugin(table, other).claimant("validation_batch") is other


def test_trainer_snapshot_survives_mutation() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    plugin = SpecPlugin("p", frozenset({"should_training_stop"}))
    trainer.register_plugin(plugin)
    plugin.unique_overrides.should_training_stop = False
    assert trainer.plugins.claimant("should_training_stop") is plugin
    with pytest.raises(ValueError, match="should_training_stop"):
        trainer.register_plugin(SpecPlugin("q", frozenset({"should_training_stop"})))
    assert list(trainer.plugins) == ["p"]


def test_claimant_of_an_unknown_flag_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="unknown override 'training'"):
        PluginTable().claimant("training")


def test_unique_overrides_defaults_and_claimed() -> None:
    overrides = hlp.UniquePluginOverrides()
    assert overrides.claimed() == frozenset()
    overrides.training_batch = True
    overrides.should_training_stop = True
    assert overrides.claimed() == {"training_batch", "should_training_stop"}
    assert set(hlp.OVERRIDE_FLAGS) == {
        "training_batch",
        "validation_batch",
        "testing_batch",
        "should_training_stop",
    }


# -- unclaimed hooks ------------------------------------------------------------------


@pytest.mark.parametrize(("flag", "hook"), sorted(hlp.OVERRIDE_FLAGS.items()))
def test_an_overridden_hook_without_its_flag_warns(flag: str, hook: str) -> None:
    def implementation(self: Any, *args: Any) -> Any:
        return args[0] if args else False

    cls = type("Forgot", (hlp.Plugin,), {hook: implementation})
    plugin = cls("forgot")
    with pytest.warns(UserWarning, match="does not claim") as record:
        table = register_plugin(PluginTable(), plugin)
    assert len(record) == 1
    message = str(record[0].message)
    assert f"overrides {hook} but does not claim unique_overrides.{flag}" in message
    assert "'forgot'" in message
    assert table.claims("forgot") == frozenset()


def test_the_warning_points_at_the_caller() -> None:
    class Forgot(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("forgot")

        def process_training_batch(self, batch: Any, state: hlp.TrainingState, /) -> Any:
            return batch

    with pytest.warns(UserWarning, match="process_training_batch") as record:
        hlt.Trainer(use_cpu=True).register_plugin(Forgot())
    assert record[0].filename != hlp.__file__


def test_a_claimed_override_and_pass_through_hooks_do_not_warn() -> None:
    class Claims(hlp.Plugin):
        def __init__(self) -> None:
            super().__init__("claims")
            self.unique_overrides.training_batch = True

        def process_training_batch(self, batch: Any, state: hlp.TrainingState, /) -> Any:
            return batch

        @hlp.pass_through
        def process_testing_batch(self, batch: Any, step: int, /) -> Any:
            return batch

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        register_plugin(PluginTable(), Claims())


def test_batch_plugin_claims_exactly_the_phases_given_and_never_warns() -> None:
    double = hlp.BatchPlugin("double", validation=lambda b: [x * 2 for x in b])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = register_plugin(PluginTable(), double)
        table = register_plugin(table, hlp.BatchPlugin("train", training=hlp.take(1)))
    assert table.claims("double") == {"validation_batch"}
    assert table.claims("train") == {"training_batch"}
    assert double.process_validation_batch([1, 2], 0) == [2, 4]
    assert double.process_training_batch([1, 2], hlp.TrainingState()) == [1, 2]


def test_batch_plugin_rejects_non_callable_transforms() -> None:
    with pytest.raises(TypeError, match="BatchPlugin testing= must be callable"):
        hlp.BatchPlugin("bad", testing=3)  # type: ignore[arg-type]


def test_one_batch_plugin_carries_a_composed_transform() -> None:
    pipeline = hlp.compose(hlp.to_device("cpu"), hlp.cast(torch.float64), hlp.take(2))
    plugin = hlp.BatchPlugin("prep", training=pipeline)
    batch = [torch.ones(1), torch.zeros(1), torch.ones(1)]
    out = plugin.process_training_batch(batch, hlp.TrainingState())
    assert [t.dtype for t in out] == [torch.float64, torch.float64]
    assert [t.dtype for t in batch] == [torch.float32] * 3


# -- the table and the trainer --------------------------------------------------------


def test_the_trainer_table_is_read_only() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    plugin = SpecPlugin("p")
    with pytest.raises(TypeError):
        trainer.plugins["p"] = plugin  # type: ignore[index]
    trainer.register_plugin(plugin)
    with pytest.raises(TypeError):
        del trainer.plugins["p"]  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="read-only"):
        trainer.plugins = PluginTable()  # type: ignore[assignment]
    assert list(trainer.plugins) == ["p"]
    assert isinstance(trainer.plugins, PluginTable)


def test_trainer_register_plugin_refuses_duplicates_and_keeps_the_table() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    first = SpecPlugin("dup", frozenset({"training_batch"}))
    trainer.register_plugin(first)
    before = trainer.plugins
    with pytest.raises(KeyError, match="id 'dup' is already registered"):
        trainer.register_plugin(SpecPlugin("dup"))
    with pytest.raises(ValueError, match="'training_batch' is claimed by both 'dup'"):
        trainer.register_plugin(SpecPlugin("other", frozenset({"training_batch"})))
    with pytest.raises(TypeError, match="is not a plug-in"):
        trainer.register_plugin(object())  # type: ignore[arg-type]
    assert trainer.plugins is before
    assert trainer.plugins["dup"] is first
    assert trainer.plugins.claims("dup") == {"training_batch"}


def test_table_lookup_errors() -> None:
    table = table_of(SpecPlugin("a"), hlp.DevicePlugin("cpu"))
    with pytest.raises(
        KeyError, match=r"no plug-in with id 'b' is registered; registered ids: \['a', 'device'\]"
    ):
        table["b"]
    with pytest.raises(KeyError):
        table.claims("b")
    assert table.get_as("device", hlp.DevicePlugin).plug_id == "device"
    with pytest.raises(TypeError, match="plug-in 'a' is a SpecPlugin, not a DevicePlugin"):
        table.get_as("a", hlp.DevicePlugin)
    assert "b" not in table
    assert table.get("b") is None
    assert "'device': 'device' (DevicePlugin) claims" in repr(table)


def test_tables_compare_by_content_and_are_unhashable() -> None:
    a, b = SpecPlugin("a"), SpecPlugin("b")
    assert table_of(a, b) == table_of(a, b)
    assert table_of(a, b) != table_of(b, a)
    assert table_of(a) != table_of(SpecPlugin("a"))
    assert table_of() != {}
    with pytest.raises(TypeError):
        hash(table_of(a))


# -- the seed's forms -----------------------------------------------------------------


class MyPlugin(hlp.Plugin):
    """The seed's plug-in, word for word (plus the state argument of the batch hook)."""

    def __init__(self) -> None:
        super().__init__("my_plugin")
        self.unique_overrides.training_batch = True
        self.unique_overrides.should_training_stop = True

    def configure_trainer(self, trainer: hlt.Trainer) -> None:
        self._register_in_trainer(trainer)  # <- Automatically registers the plug-in.

    def process_training_batch(
        self, batch: list[torch.Tensor], state: hlp.TrainingState
    ) -> list[torch.Tensor]:
        return batch[:2]  # <- Take the first two elements of the batch.

    def should_training_stop(self) -> bool:
        return False


def test_the_seed_form_registers_itself() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    plugin = MyPlugin()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plugin.configure_trainer(trainer)
    assert trainer.plugins["my_plugin"] is plugin
    assert plugin.plug_id == "my_plugin"
    assert trainer.plugins.claims("my_plugin") == {"training_batch", "should_training_stop"}
    batch = [torch.ones(1), torch.zeros(1), torch.ones(2)]
    assert plugin.process_training_batch(batch, hlp.TrainingState()) == batch[:2]
    with pytest.raises(KeyError, match="'my_plugin' is already registered"):
        MyPlugin().configure_trainer(trainer)


def test_plugin_defaults_are_no_ops() -> None:
    plugin = SpecPlugin("defaults")
    batch = {"x": [1]}
    assert plugin.process_training_batch(batch, hlp.TrainingState()) is batch
    assert plugin.process_validation_batch(batch, 0) is batch
    assert plugin.process_testing_batch(batch, 0) is batch
    assert plugin.should_training_stop() is False
    assert plugin.state_dict() == {}
    plugin.load_state_dict({})
    plugin.setup()
    plugin.on_training_start()
    plugin.on_training_end()
    plugin.on_validation_start(0)
    plugin.on_validation_end(0)
    plugin.on_testing_start()
    plugin.on_testing_end()
    assert plugin.device == torch.device("cpu")
    assert (plugin.rank, plugin.is_distributed, plugin.map_loc) == (0, False, "cpu")
