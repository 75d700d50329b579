"""The plug-in table: an immutable mapping, grown by a pure registration function."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, TypeVar, cast

from helios._callsite import warn
from helios.core._names import misnamed_members
from helios.plugins._plugin import (
    DATA_MEMBERS,
    HOOK_PARAMETERS,
    OVERRIDE_FLAGS,
    TRAINER_SET_MEMBERS,
    Plugin,
    PluginProtocol,
    UniquePluginOverrides,
)

__all__ = [
    "PluginTable",
    "check_plugin",
    "decides_stop_at_validation",
    "pass_through",
    "register_plugin",
    "stop_decided_at_validation",
]

P = TypeVar("P")
F = TypeVar("F", bound=Callable[..., object])

_PASS_THROUGH: Final = "__helios_pass_through__"
_AT_VALIDATION: Final = "__helios_stop_decided_at_validation__"


def pass_through(fn: F) -> F:
    """Mark a batch or stop hook as harmless to leave unclaimed (no warning is raised)."""
    setattr(fn, _PASS_THROUGH, True)
    return fn


def stop_decided_at_validation(fn: F) -> F:
    """Mark a ``should_training_stop`` whose answer changes only after validation cycles.

    Its answer after a training batch repeats the one given after the last validation,
    so in distributed runs the trainer needs no collective per batch to keep the ranks
    in step: one per validation cycle suffices.
    """
    setattr(fn, _AT_VALIDATION, True)
    return fn


def decides_stop_at_validation(hook: Callable[[], bool]) -> bool:
    """Whether ``hook`` was marked with `stop_decided_at_validation`."""
    return bool(getattr(hook, _AT_VALIDATION, False))


for _hook in OVERRIDE_FLAGS.values():
    pass_through(getattr(Plugin, _hook))


def _declares(cls: type, name: str) -> bool:
    return any(
        name in vars(base) or name in getattr(base, "__annotations__", {}) for base in cls.__mro__
    )


def _describe(plugin: object) -> str:
    plug_id = inspect.getattr_static(plugin, "_plug_id", None)
    if plug_id is None:
        plug_id = inspect.getattr_static(plugin, "plug_id", None)
    if isinstance(plug_id, str):
        return f"{plug_id!r} ({type(plugin).__qualname__})"
    return type(plugin).__qualname__


def check_plugin(plugin: object) -> None:
    """Raise `TypeError` unless ``plugin`` provides every member of the plug-in protocol.

    Names are not enough: each hook must accept the positional arguments the trainer
    passes (extra optional parameters are fine).
    """
    if isinstance(plugin, type):
        raise TypeError(
            f"{plugin.__qualname__} is a class, not a plug-in: register an instance of it "
            f"(e.g. {plugin.__qualname__}(...))"
        )
    cls = type(plugin)
    # Only the trainer-set members may be merely declared: the id, the flags and the hooks
    # are read at registration, so they must really be there (a `Plugin` subclass that
    # skipped ``super().__init__`` has no id yet).
    missing = [
        name
        for name in (*DATA_MEMBERS, *TRAINER_SET_MEMBERS, *HOOK_PARAMETERS)
        if not (
            _declares(cls, name) or name in getattr(plugin, "__dict__", {})
            if name in TRAINER_SET_MEMBERS
            else hasattr(plugin, name)
        )
    ]
    if missing:
        raise TypeError(
            f"{_describe(plugin)} is not a plug-in: it lacks {', '.join(missing)}. "
            "Subclass helios.plugins.Plugin (and call super().__init__(plug_id)), or "
            "provide every member of helios.plugins.PluginProtocol."
        )
    bad = _bad_hooks(plugin)
    if bad:
        raise TypeError(
            f"{_describe(plugin)} has hooks with the wrong signature: " + "; ".join(bad)
        )
    _check_data_members(plugin)


def _bad_hooks(plugin: object) -> list[str]:
    """What is wrong with each hook that cannot be called as the trainer calls it."""
    bad: list[str] = []
    for name, params in HOOK_PARAMETERS.items():
        hook = getattr(plugin, name)
        expected = f"{name}(self{''.join(', ' + p for p in params)})"
        if not callable(hook):
            bad.append(f"{name} is not callable; expected {expected}")
            continue
        try:
            signature = inspect.signature(hook)
        except (TypeError, ValueError):  # builtins without signatures: trust them
            continue
        try:
            signature.bind(*params)
        except TypeError:
            bad.append(f"{name}{signature} cannot be called as {expected}")
    return bad


def _check_data_members(plugin: object) -> None:
    plug_id = plugin.plug_id  # type: ignore[attr-defined]
    if not isinstance(plug_id, str) or not plug_id:
        raise TypeError(f"{_describe(plugin)} has plug_id {plug_id!r}; it must be a non-empty str")
    overrides = plugin.unique_overrides  # type: ignore[attr-defined]
    if not isinstance(overrides, UniquePluginOverrides):
        raise TypeError(
            f"{_describe(plugin)}.unique_overrides is {overrides!r}; it must be a "
            "helios.plugins.UniquePluginOverrides"
        )
    for flag in OVERRIDE_FLAGS:
        if not isinstance(getattr(overrides, flag), bool):
            raise TypeError(
                f"{_describe(plugin)}.unique_overrides.{flag} is "
                f"{getattr(overrides, flag)!r}; it must be True or False"
            )


class PluginTable(Mapping[str, PluginProtocol]):
    """Registered plug-ins by id, in registration order, with their claimed overrides.

    A table never changes: `register_plugin` returns a new one. The claims are the
    ``unique_overrides`` flags as they were when each plug-in was registered.
    """

    __slots__ = ("_claims", "_plugins")

    def __init__(self) -> None:
        self._plugins: dict[str, PluginProtocol] = {}
        self._claims: dict[str, frozenset[str]] = {}

    def __getitem__(self, plug_id: str) -> PluginProtocol:
        try:
            return self._plugins[plug_id]
        except KeyError:
            raise KeyError(
                f"no plug-in with id {plug_id!r} is registered; registered ids: "
                f"{list(self._plugins)}"
            ) from None

    def __contains__(self, plug_id: object) -> bool:
        return plug_id in self._plugins

    def __iter__(self) -> Iterator[str]:
        return iter(self._plugins)

    def __len__(self) -> int:
        return len(self._plugins)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PluginTable):
            return NotImplemented
        return (
            list(self._plugins) == list(other._plugins)
            and all(self._plugins[k] is other._plugins[k] for k in self._plugins)
            and self._claims == other._claims
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(
            f"{k!r}: {_describe(p)} claims {sorted(self._claims[k])}"
            for k, p in self._plugins.items()
        )
        return f"PluginTable({{{inner}}})"

    def claims(self, plug_id: str) -> frozenset[str]:
        """The override flags ``plug_id`` claimed when it was registered."""
        self[plug_id]
        return self._claims[plug_id]

    def claimant(self, flag: str) -> PluginProtocol | None:
        """The plug-in that claimed ``flag``, or ``None``."""
        if flag not in OVERRIDE_FLAGS:
            raise KeyError(f"unknown override {flag!r}; the overrides are {list(OVERRIDE_FLAGS)}")
        for plug_id, claims in self._claims.items():
            if flag in claims:
                return self._plugins[plug_id]
        return None

    def get_as(self, plug_id: str, cls: type[P]) -> P:
        """Return the plug-in ``plug_id``, checked to be an instance of ``cls``.

        Raises:
            KeyError: if no plug-in has that id.
            TypeError: if it is not a ``cls``.

        Examples:
            >>> import helios.plugins as hlp
            >>> from helios.plugins import PluginTable, register_plugin
            >>> table = register_plugin(PluginTable(), hlp.DevicePlugin("cpu"))
            >>> table.get_as("device", hlp.DevicePlugin).plug_id
            'device'
        """
        plugin = self[plug_id]
        if not isinstance(plugin, cls):
            raise TypeError(
                f"plug-in {plug_id!r} is a {type(plugin).__qualname__}, not a {cls.__qualname__}"
            )
        return plugin

    def _with(self, plugin: PluginProtocol, claims: frozenset[str]) -> PluginTable:
        new = PluginTable()
        new._plugins = {**self._plugins, plugin.plug_id: plugin}
        new._claims = {**self._claims, plugin.plug_id: claims}
        return new


def register_plugin(table: PluginTable, plugin: object) -> PluginTable:
    """Return a new table with ``plugin`` added; ``table`` itself never changes.

    Raises:
        TypeError: if ``plugin`` is not a plug-in (names the missing members or the hooks
            with the wrong signature).
        KeyError: if its id is taken.
        ValueError: if it claims a unique override that another plug-in has claimed.

    Warns:
        UserWarning: if a `Plugin` subclass overrides a batch or stop hook without
            claiming its flag (that hook will not be called).
    """
    check_plugin(plugin)
    checked = cast(PluginProtocol, plugin)
    plug_id = checked.plug_id
    if plug_id in table:
        raise KeyError(
            f"a plug-in with id {plug_id!r} is already registered "
            f"({_describe(table[plug_id])}); each id may appear once"
        )
    claims = checked.unique_overrides.claimed()
    for flag in sorted(claims):
        owner = table.claimant(flag)
        if owner is not None:
            raise ValueError(
                f"unique override {flag!r} is claimed by both {_describe(owner)} and "
                f"{_describe(plugin)}; only one registered plug-in may claim it. Combine "
                "their work in one plug-in (e.g. helios.plugins.BatchPlugin with "
                "helios.core.compose) or drop one of them."
            )
    if Plugin in type(plugin).__mro__:
        _warn_unclaimed(checked, claims)
    _warn_misnamed(checked)
    return table._with(checked, claims)


def _warn_unclaimed(plugin: PluginProtocol, claims: frozenset[str]) -> None:
    for flag, hook in OVERRIDE_FLAGS.items():
        if flag in claims:
            continue
        implementation: Any = inspect.getattr_static(type(plugin), hook, None)
        if getattr(implementation, _PASS_THROUGH, False):
            continue
        warn(
            f"plug-in {_describe(plugin)} overrides {hook} but does not claim "
            f"unique_overrides.{flag}, so {hook} will never be called; set "
            f"self.unique_overrides.{flag} = True in its constructor"
        )


def _warn_misnamed(plugin: PluginProtocol) -> None:
    cls = type(plugin)
    base = Plugin if Plugin in cls.__mro__ else None
    for problem in misnamed_members(cls, base, HOOK_PARAMETERS, {}):
        warn(f"plug-in {_describe(plugin)}: {problem}")
