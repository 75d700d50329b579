"""What a plug-in may ask to be told about a run, beyond the hooks of the protocol."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import attrs

from helios.core import TrainingState

__all__ = ["RunWatcher"]


@attrs.frozen(kw_only=True)
class RunWatcher:
    """Callbacks a plug-in hands to `Trainer.watch` to follow a run.

    The plug-in protocol has no hook after the model's ``on_validation_end``, at
    ``print_frequency`` or when a checkpoint is on disk; a plug-in that needs one (a
    logger, checkpoint retention) gives the trainer a watcher, usually in its ``setup``,
    under its id. The trainer calls what the watcher holds, watchers in the order they
    were first given, after the plug-ins' and the model's hooks of that moment.

    Attributes:
        on_log: Every ``print_frequency`` optimiser steps, after the batch's hooks, with
            the state of that batch.
        on_metrics: After a validation cycle, once the model's ``on_validation_end`` has
            filled ``model.metrics``, with the cycle's number.
        on_checkpoint: On rank 0, once a checkpoint is on disk, with its path and state.
        on_end: At the very end of ``fit``, ``validate`` or ``test``, also after a
            failure (release files here).

    Examples:
        >>> import helios.plugins as hlp
        >>> watcher = hlp.RunWatcher(on_metrics=lambda cycle: print("cycle", cycle))
        >>> watcher.on_metrics(1)
        cycle 1
    """

    on_log: Callable[[TrainingState], None] | None = None
    on_metrics: Callable[[int], None] | None = None
    on_checkpoint: Callable[[Path, TrainingState], None] | None = None
    on_end: Callable[[], None] | None = None
