"""Logging a run to TensorBoard event files, and to a CSV file for those without it."""

from __future__ import annotations

import csv
import importlib.util
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from helios.core.logging import TensorBoardWriter, set_tensorboard_writer
from helios.plugins._builtin import PLUGIN_REGISTRY
from helios.plugins._scalars import ScalarLoggerPlugin

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["CSVLoggerPlugin", "TensorBoardPlugin"]

#: How TensorBoard names its event files.
_EVENTS = "events.out.tfevents.*"


def _cut(path: Path, size: int) -> None:
    """Shorten ``path`` to ``size`` bytes if it is longer (records are only appended)."""
    if path.stat().st_size > size:
        os.truncate(path, size)


def _save_name(plugin: ScalarLoggerPlugin) -> str:
    model = plugin.trainer.model
    if model is None:
        raise RuntimeError(f"plug-in {plugin.plug_id!r}: the trainer has no model yet")
    return model.save_name


@PLUGIN_REGISTRY.register
class TensorBoardPlugin(ScalarLoggerPlugin):
    """Writes a run's scalars to TensorBoard event files, in ``<root>/<save name>/``.

    The scalars and their steps are those of `ScalarLoggerPlugin`: ``train/loss`` at the
    optimiser step, ``valid/<metric>`` at the validation cycle, and once at the end the
    hyper-parameters (TensorBoard's HParams tab) with the ``final/<metric>`` values. A
    retried Optuna trial keeps its save name, so it goes on writing its own run; a
    resumed run continues its curves without writing a step twice. While training runs,
    `helios.core.logging.get_tensorboard_writer` returns the writer, for what the model
    logs itself. Needs ``tensorboard`` (``pip install 'helios-train[tensorboard]'``).

    Args:
        root: The folder of the runs (``tensorboard --logdir <root>`` shows them).
        hparams: The hyper-parameters to record; ``None`` takes the Optuna trial's
            parameters when an ``OptunaPlugin`` is registered.

    Raises:
        ModuleNotFoundError: ``tensorboard`` is not installed.

    Examples:
        >>> import helios.plugins as hlp
        >>> plugin = hlp.TensorBoardPlugin("runs")
        >>> plugin.plug_id, sorted(plugin.unique_overrides.claimed())
        ('tensorboard', [])
    """

    plugin_id: ClassVar[str] = "tensorboard"

    def __init__(
        self, root: str | Path = "runs", *, hparams: Mapping[str, Any] | None = None
    ) -> None:
        if importlib.util.find_spec("tensorboard") is None:
            raise ModuleNotFoundError(
                "TensorBoardPlugin needs the tensorboard package: pip install "
                "'helios-train[tensorboard]' (or pip install tensorboard); without it, "
                "CSVLoggerPlugin writes the same scalars to a CSV file"
            )
        super().__init__(type(self).plugin_id, root, hparams=hparams)
        self._writer: SummaryWriter | None = None

    @property
    def run_path(self) -> Path:
        """The run's folder: ``<root>/<save name>``."""
        return self.root / _save_name(self)

    def _event_files(self) -> dict[str, Path]:
        folder = self.run_path
        found = folder.rglob(_EVENTS) if folder.is_dir() else ()
        return {path.relative_to(folder).as_posix(): path for path in found if path.is_file()}

    def _open(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(str(self.run_path))
        set_tensorboard_writer(TensorBoardWriter(self._writer, self.run_path))

    def _follow(self) -> None:
        set_tensorboard_writer(TensorBoardWriter(None, self.run_path))

    def _write(self, tag: str, value: float, step: int) -> None:
        assert self._writer is not None
        self._writer.add_scalar(tag, value, step)

    def _write_final(
        self, hparams: Mapping[str, Any], metrics: Mapping[str, float], step: int
    ) -> None:
        if not hparams:
            super()._write_final(hparams, metrics, step)
            return
        # TensorBoard takes numbers, strings and booleans; None and the rest as text.
        shown = {
            k: v if isinstance(v, int | float | str | bool) else str(v) for k, v in hparams.items()
        }
        TensorBoardWriter(self._writer, self.run_path).add_hparams(
            shown, metrics, global_step=step
        )

    def _flush(self) -> None:
        if self._writer is not None:
            self._writer.flush()

    def _record(self) -> dict[str, Any]:
        self._flush()
        sizes = {name: path.stat().st_size for name, path in self._event_files().items()}
        return {"files": sizes}

    def _rewind(self, record: Mapping[str, Any]) -> None:
        sizes: Mapping[str, int] = record.get("files", {})
        for name, path in self._event_files().items():
            if name in sizes:
                _cut(path, int(sizes[name]))
            else:  # written after the checkpoint, by a run that did not reach the next
                path.unlink()

    def _restart(self) -> None:
        for path in self._event_files().values():
            path.unlink()

    def _close(self) -> None:
        set_tensorboard_writer(None)
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@PLUGIN_REGISTRY.register
class CSVLoggerPlugin(ScalarLoggerPlugin):
    """Writes a run's scalars to ``<root>/<save name>.csv``, with no extra dependency.

    One row per value, with the columns ``tag,step,value``: the tags and steps of
    `ScalarLoggerPlugin` (``train/loss`` at the optimiser step, ``valid/<metric>`` at
    the validation cycle, ``final/<metric>`` at the end), and at the end one row
    ``hparam/<name>`` per hyper-parameter (its value as text). A resumed run appends
    without repeating a row.

    Args:
        root: The folder of the CSV files.
        hparams: The hyper-parameters to record; ``None`` takes the Optuna trial's
            parameters when an ``OptunaPlugin`` is registered.

    Examples:
        >>> import helios.plugins as hlp
        >>> hlp.CSVLoggerPlugin("logs").plug_id
        'csv_logger'
    """

    plugin_id: ClassVar[str] = "csv_logger"
    #: The header of every file.
    COLUMNS: ClassVar[tuple[str, str, str]] = ("tag", "step", "value")

    def __init__(
        self, root: str | Path = "logs", *, hparams: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__(type(self).plugin_id, root, hparams=hparams)
        self._rows: list[tuple[str, int, object]] = []

    @property
    def run_path(self) -> Path:
        """The run's file: ``<root>/<save name>.csv``."""
        return self.root / f"{_save_name(self)}.csv"

    def _open(self) -> None:
        path = self.run_path
        if not path.is_file() or path.stat().st_size == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._append([self.COLUMNS])

    def _write(self, tag: str, value: float, step: int) -> None:
        self._rows.append((tag, step, value))

    def _write_final(
        self, hparams: Mapping[str, Any], metrics: Mapping[str, float], step: int
    ) -> None:
        self._rows.extend((f"hparam/{name}", step, value) for name, value in hparams.items())
        super()._write_final(hparams, metrics, step)

    def _append(self, rows: Iterable[Sequence[object]]) -> None:
        with self.run_path.open("a", newline="", encoding="utf-8") as stream:
            csv.writer(stream).writerows(rows)

    def _flush(self) -> None:
        if self._rows:
            rows, self._rows = list(self._rows), []
            self._append(rows)

    def _record(self) -> dict[str, Any]:
        self._flush()
        path = self.run_path
        return {"size": path.stat().st_size if path.is_file() else 0}

    def _rewind(self, record: Mapping[str, Any]) -> None:
        if self.run_path.is_file():
            _cut(self.run_path, int(record.get("size", 0)))

    def _restart(self) -> None:
        self.run_path.unlink(missing_ok=True)

    def _close(self) -> None:
        self._flush()
