"""What the trainer checks of the user's model and data module before a run starts."""

from __future__ import annotations

from helios._callsite import warn
from helios.core._names import misnamed_members
from helios.core.loop import LoopConfig
from helios.data import DATA_HOOKS, DataModule
from helios.model import MODEL_HOOKS, RETIRED_MODEL_HOOKS, Model

__all__ = ["check_entry"]


def check_entry(
    model: Model, datamodule: DataModule, config: LoopConfig, *, training: bool
) -> None:
    """Refuse what cannot work and warn about hooks that would never be called.

    Raises:
        TypeError: ``model`` or ``datamodule`` is not a helios one.
        ValueError: a setting under which something could never happen.
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a helios.model.Model, got {type(model).__name__}")
    if not isinstance(datamodule, DataModule):
        raise TypeError(
            f"datamodule must be a helios.data.DataModule, got {type(datamodule).__name__}"
        )
    cycles = config.early_stop_cycles
    if training and cycles is not None and not _overrides(model, "have_metrics_improved"):
        raise ValueError(
            f"early_stop_cycles={cycles} stops training after {cycles} validations without "
            f"improvement, but {type(model).__qualname__} does not override "
            "have_metrics_improved(), which always answers True: training would never "
            "stop early. Override have_metrics_improved() or drop early_stop_cycles."
        )
    for problem in misnamed_members(type(model), Model, MODEL_HOOKS, RETIRED_MODEL_HOOKS):
        warn(f"model {type(model).__qualname__}: {problem}")
    for problem in misnamed_members(type(datamodule), DataModule, DATA_HOOKS, {}):
        warn(f"data module {type(datamodule).__qualname__}: {problem}")


def _overrides(model: Model, hook: str) -> bool:
    return getattr(type(model), hook) is not getattr(Model, hook)
