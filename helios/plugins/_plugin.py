"""The plug-in protocol and the unique-override flags."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, Protocol

import attrs
import torch

from helios._callsite import warn
from helios.core import TrainingState

if TYPE_CHECKING:
    from helios.model import Model
    from helios.trainer import Trainer

__all__ = [
    "BatchHooks",
    "LifecycleHooks",
    "MapLocation",
    "Plugin",
    "PluginProtocol",
    "StateHooks",
    "StopHook",
    "UniquePluginOverrides",
    "DATA_MEMBERS",
    "HOOK_PARAMETERS",
    "OVERRIDE_FLAGS",
    "TRAINER_SET_MEMBERS",
]

#: What ``torch.load`` accepts as ``map_location``.
MapLocation = str | torch.device | dict[str, str]


@attrs.define
class UniquePluginOverrides:
    """Which *unique* hooks a plug-in claims. At most one registered plug-in may claim each.

    A plug-in sets these in its constructor. The trainer copies them when the plug-in is
    registered; the copy decides both the uniqueness check and which hooks are called, so
    changing a flag after registration has no effect.

    Attributes:
        training_batch: The plug-in's `process_training_batch` is used.
        validation_batch: The plug-in's `process_validation_batch` is used.
        testing_batch: The plug-in's `process_testing_batch` is used.
        should_training_stop: The plug-in's `should_training_stop` is asked.
    """

    training_batch: bool = False
    validation_batch: bool = False
    testing_batch: bool = False
    should_training_stop: bool = False

    def claimed(self) -> frozenset[str]:
        """The names of the flags that are set."""
        return frozenset(name for name in OVERRIDE_FLAGS if getattr(self, name) is True)


#: Each unique-override flag and the hook it governs.
OVERRIDE_FLAGS: Mapping[str, str] = {
    "training_batch": "process_training_batch",
    "validation_batch": "process_validation_batch",
    "testing_batch": "process_testing_batch",
    "should_training_stop": "should_training_stop",
}


class LifecycleHooks(Protocol):
    """Hooks called around training, validation and testing (no return value)."""

    def configure_trainer(self, trainer: Trainer, /) -> None: ...
    def configure_model(self, model: Model, /) -> None: ...
    def setup(self) -> None: ...
    def on_training_start(self) -> None: ...
    def on_training_end(self) -> None: ...
    def on_validation_start(self, validation_cycle: int, /) -> None: ...
    def on_validation_end(self, validation_cycle: int, /) -> None: ...
    def on_testing_start(self) -> None: ...
    def on_testing_end(self) -> None: ...


class BatchHooks(Protocol):
    """Hooks that receive a batch and return the (new) batch the model will see."""

    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any: ...
    def process_validation_batch(self, batch: Any, step: int, /) -> Any: ...
    def process_testing_batch(self, batch: Any, step: int, /) -> Any: ...


class StopHook(Protocol):
    """The hook that can ask training to stop early."""

    def should_training_stop(self) -> bool: ...


class StateHooks(Protocol):
    """What a plug-in stores in (and restores from) checkpoints."""

    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None: ...


class PluginProtocol(LifecycleHooks, BatchHooks, StopHook, StateHooks, Protocol):
    """Everything the trainer uses of a plug-in; what a structural plug-in must provide.

    The trainer sets `trainer`, `device`, `rank`, `is_distributed` and `map_loc` before it
    calls `setup`.
    """

    @property
    def plug_id(self) -> str:
        """The plug-in's key in ``trainer.plugins``."""
        ...

    unique_overrides: UniquePluginOverrides
    trainer: Trainer
    device: torch.device
    rank: int
    is_distributed: bool
    map_loc: MapLocation


def _hook_parameters(protocol: type) -> dict[str, tuple[str, ...]]:
    """Each hook ``protocol``'s roles declare, with the positional parameters the trainer
    calls it with (``self`` excluded), in declaration order."""
    hooks: dict[str, tuple[str, ...]] = {}
    for role in protocol.__mro__[1:]:
        for name, member in vars(role).items():
            if inspect.isfunction(member) and not name.startswith("_"):
                hooks[name] = tuple(inspect.signature(member).parameters)[1:]
    return hooks


#: Each hook and the positional arguments it is called with (``self`` excluded): read
#: from the role protocols, so that the protocol is the one list of hooks.
HOOK_PARAMETERS: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    _hook_parameters(PluginProtocol)
)
#: Data members read at registration.
DATA_MEMBERS: Final = ("plug_id", "unique_overrides")
#: The members the trainer sets before `setup` (they may be declared and not yet set).
TRAINER_SET_MEMBERS: Final = tuple(
    name for name in PluginProtocol.__annotations__ if name not in DATA_MEMBERS
)

_Configure = Callable[["Plugin", "Trainer"], None]


def _checks_registration(configure: _Configure) -> _Configure:
    """Wrap a subclass's ``configure_trainer`` to warn when it leaves its plug-in out."""

    @functools.wraps(configure)
    def configure_trainer(self: Plugin, trainer: Trainer, /) -> None:
        configure(self, trainer)
        # Only the most derived override decides: it may register after its super() call.
        if getattr(type(self), "configure_trainer", None) is not configure_trainer:
            return
        plugins = getattr(trainer, "plugins", None)
        if isinstance(plugins, Mapping) and plugins.get(self.plug_id) is not self:
            warn(
                f"{type(self).__qualname__}.configure_trainer returned without registering "
                f"plug-in {self.plug_id!r}, so the trainer will never call it; call "
                "super().configure_trainer(trainer) (or self._register_in_trainer(trainer)) "
                "in it"
            )

    return configure_trainer


class Plugin(PluginProtocol):
    """The plug-in base class: every member of `PluginProtocol`, hooks as no-ops.

    Subclass it and call ``super().__init__("my_id")``; override the hooks you need and
    claim the unique ones in ``self.unique_overrides``. Attach it the seed's way,
    ``plugin.configure_trainer(trainer)``, which registers it (override
    `configure_trainer` to do more, and call ``super().configure_trainer(trainer)`` or
    ``self._register_in_trainer(trainer)`` in it). A class that provides every member of
    `PluginProtocol` without inheriting anything is a plug-in too; ``isinstance(x,
    Plugin)`` is true only for subclasses.

    Examples:
        >>> import helios.plugins as hlp
        >>> class Halve(hlp.Plugin):
        ...     def __init__(self) -> None:
        ...         super().__init__("halve")
        ...         self.unique_overrides.training_batch = True
        ...     def process_training_batch(self, batch, state):
        ...         return batch[: len(batch) // 2]
        >>> plugin = Halve()
        >>> plugin.plug_id, isinstance(plugin, hlp.Plugin)
        ('halve', True)
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "configure_trainer" in vars(cls):
            cls.configure_trainer = _checks_registration(  # type: ignore[method-assign]
                vars(cls)["configure_trainer"]
            )

    # Set by the trainer before `setup` (declared here so that they count as present).
    device: torch.device
    rank: int
    is_distributed: bool
    map_loc: MapLocation

    def __init__(self, plug_id: str) -> None:
        if not isinstance(plug_id, str) or not plug_id:
            raise ValueError(f"a plug-in id must be a non-empty string, got {plug_id!r}")
        self._plug_id = plug_id
        self.unique_overrides: UniquePluginOverrides = UniquePluginOverrides()
        self._trainer: Trainer | None = None
        self.device = torch.device("cpu")
        self.rank = 0
        self.is_distributed = False
        self.map_loc = "cpu"

    @property
    def plug_id(self) -> str:
        return self._plug_id

    @property
    def trainer(self) -> Trainer:
        """The trainer the plug-in is registered with, set when ``fit`` / ``test`` starts.

        Raises:
            RuntimeError: before the trainer has set it.
        """
        trainer: Trainer | None = self.__dict__.get("_trainer")
        if trainer is None:
            raise RuntimeError(
                f"plug-in {self.__dict__.get('_plug_id', type(self).__name__)!r} has no "
                "trainer yet: the trainer sets it (with device, rank, ...) when fit() or "
                "test() starts, before calling setup(); register the plug-in first "
                "(plugin.configure_trainer(trainer) or trainer.register_plugin(plugin))"
            )
        return trainer

    @trainer.setter
    def trainer(self, trainer: Trainer) -> None:
        self._trainer = trainer

    def _register_in_trainer(self, trainer: Trainer) -> None:
        """Register this plug-in in ``trainer.plugins`` under its id."""
        trainer.register_plugin(self)

    def configure_trainer(self, trainer: Trainer, /) -> None:
        """Called by the user to attach the plug-in: registers it in ``trainer.plugins``.

        Raises:
            TypeError: if the plug-in is not complete (see `register_plugin`).
            KeyError: if its id is already registered.
            ValueError: if it claims a unique override another plug-in has claimed.
        """
        self._register_in_trainer(trainer)

    def configure_model(self, model: Model, /) -> None:
        """Called by the user to adapt the model to the plug-in."""
        return None

    def setup(self) -> None:
        """Called once the trainer has set `trainer`, `device`, `rank` and friends."""
        return None

    def on_training_start(self) -> None:
        """Called before the model's ``on_training_start``."""
        return None

    def on_training_end(self) -> None:
        """Called before the model's ``on_training_end``."""
        return None

    def on_validation_start(self, validation_cycle: int, /) -> None:
        """Called before the model's ``on_validation_start``."""
        return None

    def on_validation_end(self, validation_cycle: int, /) -> None:
        """Called before the model's ``on_validation_end``."""
        return None

    def on_testing_start(self) -> None:
        """Called before the model's ``on_testing_start``."""
        return None

    def on_testing_end(self) -> None:
        """Called before the model's ``on_testing_end``."""
        return None

    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        """Return the training batch the model will see (claims ``training_batch``)."""
        return batch

    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        """Return the validation batch the model will see (claims ``validation_batch``)."""
        return batch

    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        """Return the testing batch the model will see (claims ``testing_batch``)."""
        return batch

    def should_training_stop(self) -> bool:
        """Return ``True`` to stop training (claims ``should_training_stop``)."""
        return False

    def state_dict(self) -> dict[str, Any]:
        """What to store in checkpoints under this plug-in's id."""
        return {}

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None:
        """Restore what `state_dict` returned."""
        return None
