"""The dispatch plan: which plug-in handles what, resolved once per run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from helios.core import TrainingState
from helios.plugins import PluginProtocol, PluginTable, decides_stop_at_validation
from helios.plugins._plugin import is_default_hook

__all__ = ["DispatchPlan"]


def _keep_batch(batch: Any, _: Any) -> Any:
    return batch


def _never() -> bool:
    return False


def _observers(plugins: tuple[PluginProtocol, ...], hook: str) -> tuple[Any, ...]:
    """The plug-ins' optional ``hook``, bound, in call order (those that have one)."""
    found = (getattr(plugin, hook, None) for plugin in plugins)
    return tuple(bound for bound in found if callable(bound) and not is_default_hook(bound))


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
    #: The optional hooks (`helios.plugins.ObserverHooks`) of the plug-ins that have them.
    on_training_log: tuple[Callable[[TrainingState], None], ...] = ()
    on_validation_metrics: tuple[Callable[[int], None], ...] = ()
    on_checkpoint_saved: tuple[Callable[[Path, TrainingState], None], ...] = ()
    teardown: tuple[Callable[[], None], ...] = ()

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
            on_training_log=_observers(plugins, "on_training_log"),
            on_validation_metrics=_observers(plugins, "on_validation_metrics"),
            on_checkpoint_saved=_observers(plugins, "on_checkpoint_saved"),
            teardown=_observers(plugins, "teardown"),
        )
