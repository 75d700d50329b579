"""What the logging plug-ins write and when; where and in what format is up to each one."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from helios.core import TrainingState
from helios.core.loop import is_done
from helios.plugins._plugin import Plugin
from helios.plugins._watch import RunWatcher

__all__ = ["ScalarLoggerPlugin", "as_number", "numbers"]

#: The id under which `helios.plugins.optuna.OptunaPlugin` registers (not imported here:
#: importing it imports Optuna).
_OPTUNA_ID = "optuna"


def as_number(value: object) -> float | None:
    """``value`` as a float, or ``None`` when it is no real number: strings, booleans, NaN
    and tensors of more than one element are not; an int, a float (infinities included),
    a NumPy scalar or a one-element tensor is.

    Examples:
        >>> from helios.plugins._scalars import as_number
        >>> as_number(3), as_number(float("nan")), as_number("0.5"), as_number(True)
        (3.0, None, None, None)
    """
    if not isinstance(value, int | float) or isinstance(value, bool):
        item = getattr(value, "item", None)  # a one-element tensor or a NumPy scalar
        value = item() if callable(item) and getattr(value, "ndim", None) == 0 else None
    if not isinstance(value, int | float) or isinstance(value, bool) or math.isnan(value):
        return None
    return float(value)


def numbers(metrics: Mapping[str, object]) -> dict[str, float]:
    """The entries of ``metrics`` that are numbers (see `as_number`), in order."""
    found = {name: as_number(value) for name, value in metrics.items()}
    return {name: value for name, value in found.items() if value is not None}


class ScalarLoggerPlugin(Plugin):
    """The base of the logging plug-ins: what is written, when, and by which process.

    Rank 0 alone writes. The records, and the step each is written at:

    - ``train/loss``: ``model.running_loss()`` every ``print_frequency`` optimiser steps,
      at step ``current_iteration`` (the optimiser steps so far);
    - ``valid/<name>``: every number in ``model.metrics`` after each validation cycle
      (once the model's ``on_validation_end`` has filled it), at step = the cycle
      (1, 2, ...);
    - at the end of training, once: ``final/<name>`` for every number in
      ``model.metrics``, at step ``current_iteration``, with the hyper-parameters (given
      to the plug-in, or else the trial's parameters when an ``OptunaPlugin`` is
      registered).

    Resuming: a finished run started again (it trains no further) leaves its logs as they
    are. Otherwise each checkpoint records (under the plug-in's id) how far the logs had got
    when it was written. A run that resumes from it first cuts the logs back to that
    point, so what the killed run wrote after the checkpoint is written once, by the
    resumed run. A run that starts from scratch (no checkpoint) removes the records of
    an earlier start of the same save name. A run resumed from a checkpoint that holds
    no record of this plug-in appends.

    Subclasses decide where and how records are stored: `run_path`, `_open`, `_write`,
    `_write_final`, `_flush`, `_record`, `_rewind`, `_restart` and `_close`.

    Args:
        plug_id: The plug-in's id.
        root: The folder the logs go in (one run per model save name).
        hparams: The hyper-parameters to record; ``None`` takes the Optuna trial's.
    """

    def __init__(
        self, plug_id: str, root: str | Path, *, hparams: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(plug_id)
        self.root = Path(root)
        self.hparams = None if hparams is None else dict(hparams)
        self._record_loaded: dict[str, Any] | None = None
        self._writing = False

    @property
    def run_path(self) -> Path:
        """Where the run's logs go (a file or a folder named after the model's save name)."""
        raise NotImplementedError

    # -- what subclasses provide ------------------------------------------------------------

    def _open(self) -> None:
        """Get ready to write (rank 0, when training starts)."""

    def _follow(self) -> None:
        """When training starts on a rank other than 0, which writes nothing."""

    def _write(self, tag: str, value: float, step: int) -> None:
        raise NotImplementedError

    def _write_final(
        self, hparams: Mapping[str, Any], metrics: Mapping[str, float], step: int
    ) -> None:
        for tag, value in metrics.items():
            self._write(tag, value, step)

    def _flush(self) -> None:
        """Make what was written reach the disk."""

    def _record(self) -> dict[str, Any]:
        """How far the logs have got (flushed first): what `_rewind` cuts back to."""
        raise NotImplementedError

    def _rewind(self, record: Mapping[str, Any]) -> None:
        """Cut the logs back to what ``record`` says they held."""
        raise NotImplementedError

    def _restart(self) -> None:
        """Remove the logs of an earlier start of this run."""
        raise NotImplementedError

    def _close(self) -> None:
        """Release what `_open` took (also after a failure)."""

    # -- hooks ------------------------------------------------------------------------------

    def setup(self) -> None:
        self._record_loaded = None
        self._writing = False
        watcher = RunWatcher(on_log=self._log_loss, on_metrics=self._log_metrics, on_end=self._end)
        self.trainer.watch(self.plug_id, watcher)

    def on_training_start(self) -> None:
        if self.rank != 0:
            self._follow()
            return
        state = self.trainer.state
        if state.global_iteration > 0 and is_done(state, self.trainer.config):
            # A finished run started again trains no further: its logs are complete.
            self._open()
            return
        if self._record_loaded is not None:
            self._rewind(self._record_loaded)
        elif state.global_iteration == 0:
            self._restart()
        self._open()
        self._writing = True

    def _log_loss(self, state: TrainingState) -> None:
        """Every ``print_frequency`` optimiser steps: the running loss."""
        model = self.trainer.model
        loss = None if model is None else as_number(model.running_loss())
        if self._writing and loss is not None:
            self._write("train/loss", loss, state.current_iteration)
            self._flush()

    def _log_metrics(self, validation_cycle: int) -> None:
        """After each validation cycle: the model's metrics, at the cycle's number."""
        model = self.trainer.model
        if not self._writing or model is None:
            return
        for name, value in numbers(model.metrics).items():
            self._write(f"valid/{name}", value, validation_cycle)
        self._flush()

    def on_training_end(self) -> None:
        model = self.trainer.model
        if not self._writing or model is None:
            return
        final = {f"final/{name}": value for name, value in numbers(model.metrics).items()}
        self._write_final(self._hyperparameters(), final, self.trainer.state.current_iteration)
        self._flush()

    def _end(self) -> None:
        """At the end of the run, also after a failure: let go of the files."""
        self._writing = False
        self._close()

    def _hyperparameters(self) -> dict[str, Any]:
        if self.hparams is not None:
            return dict(self.hparams)
        tuner = self.trainer.plugins.get(_OPTUNA_ID)
        params = getattr(getattr(tuner, "trial", None), "params", None)
        return dict(params) if isinstance(params, Mapping) else {}

    # -- state ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """How far the logs had got when the checkpoint was written (rank 0's)."""
        return self._record() if self._writing else {}

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None:
        """Remember how far the logs had got, to cut them back there when training starts."""
        self._record_loaded = dict(state_dict) if state_dict else None
