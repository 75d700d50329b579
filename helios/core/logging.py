"""The logger helios writes to, and the TensorBoard writer of a run, for your own records.

Helios 1.x spelling: ``from helios.core import logging`` then
``logging.get_root_logger().info(...)`` or ``logging.get_tensorboard_writer()``.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import torch

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = [
    "TensorBoardWriter",
    "get_root_logger",
    "get_tensorboard_writer",
    "set_tensorboard_writer",
]

#: The name of helios's logger.
LOGGER_NAME = "helios"


def get_root_logger() -> logging.Logger:
    """The `logging.Logger` that helios's own messages go to (``"helios"``).

    While `Trainer.fit` or `Trainer.test` runs, what you log on it reaches the same places
    as helios's messages: the console on rank 0 when logging is not configured, and the
    run's log file with ``enable_file_logging``. Outside a run it behaves as any logger
    under your logging configuration.

    Examples:
        >>> from helios.core import logging
        >>> logging.get_root_logger().name
        'helios'
    """
    return logging.getLogger(LOGGER_NAME)


class TensorBoardWriter:
    """The TensorBoard writer of a run, for what your model logs itself (Helios 1.x's).

    `helios.plugins.TensorBoardPlugin` makes one for each training run and
    `get_tensorboard_writer` returns it. On rank 0 it writes to the run's folder (the
    plug-in's); on the other ranks every method does nothing, so the same code runs on
    every rank. Each call reaches the event file before it returns. What you write after
    the newest checkpoint is removed when a killed run resumes, as the plug-in's own
    scalars are, so that the resumed run writes those steps once.

    Args:
        writer: The `torch.utils.tensorboard.SummaryWriter` (``None`` on ranks other
            than 0).
        run_path: The run's folder.
    """

    def __init__(self, writer: SummaryWriter | None, run_path: Path) -> None:
        self._writer = writer
        self._run_path = run_path

    @property
    def writer(self) -> SummaryWriter | None:
        """The `SummaryWriter` behind it (``None`` on ranks other than 0), for the rest
        of its methods; flush it after writing."""
        return self._writer

    @property
    def run_path(self) -> Path:
        """The run's folder."""
        return self._run_path

    def add_scalar(
        self, tag: str, scalar_value: float | torch.Tensor, global_step: int | None = None
    ) -> None:
        """One value of the curve ``tag`` at ``global_step``."""
        if self._writer is not None:
            self._writer.add_scalar(tag, scalar_value, global_step)
            self._writer.flush()

    def add_scalars(
        self,
        main_tag: str,
        tag_scalar_dict: Mapping[str, float | torch.Tensor],
        global_step: int | None = None,
    ) -> None:
        """Several curves in one chart (TensorBoard keeps each in a folder of its own)."""
        if self._writer is not None:
            self._writer.add_scalars(main_tag, dict(tag_scalar_dict), global_step)
            self._writer.flush()

    def add_text(self, tag: str, text_string: str, global_step: int | None = None) -> None:
        """A piece of text (Markdown)."""
        if self._writer is not None:
            self._writer.add_text(tag, text_string, global_step)
            self._writer.flush()

    def add_image(
        self,
        tag: str,
        img_tensor: torch.Tensor,
        global_step: int | None = None,
        dataformats: str = "CHW",
    ) -> None:
        """An image (a tensor in ``dataformats`` layout)."""
        if self._writer is not None:
            self._writer.add_image(tag, img_tensor, global_step, dataformats=dataformats)
            self._writer.flush()

    def add_images(
        self,
        tag: str,
        img_tensor: torch.Tensor,
        global_step: int | None = None,
        dataformats: str = "NCHW",
    ) -> None:
        """A batch of images."""
        if self._writer is not None:
            self._writer.add_images(tag, img_tensor, global_step, dataformats=dataformats)
            self._writer.flush()

    def add_figure(
        self, tag: str, figure: Any, global_step: int | None = None, close: bool = True
    ) -> None:
        """A matplotlib figure, as an image."""
        if self._writer is not None:
            self._writer.add_figure(tag, figure, global_step, close)
            self._writer.flush()

    def add_pr_curve(
        self,
        tag: str,
        labels: Any,
        predictions: Any,
        global_step: int | None = None,
        num_thresholds: int = 127,
    ) -> None:
        """A precision-recall curve."""
        if self._writer is not None:
            self._writer.add_pr_curve(tag, labels, predictions, global_step, num_thresholds)
            self._writer.flush()

    def add_graph(
        self,
        model: torch.nn.Module,
        input_to_model: torch.Tensor | Sequence[torch.Tensor] | None = None,
        verbose: bool = False,
        use_strict_trace: bool = True,
    ) -> None:
        """The graph of ``model`` (traced on the CPU, on a copy: ``model`` is unchanged)."""
        if self._writer is None:
            return
        on_cpu = copy.deepcopy(model).cpu()
        inputs: Any = input_to_model
        if isinstance(inputs, torch.Tensor):
            inputs = inputs.cpu()
        elif inputs is not None:
            inputs = [tensor.cpu() for tensor in inputs]
        with warnings.catch_warnings():
            # TensorBoard draws graphs with torch.jit.trace, which torch now marks
            # deprecated: a matter between the two libraries, not of the caller's code.
            warnings.filterwarnings("ignore", "`torch.jit.", DeprecationWarning)
            self._writer.add_graph(on_cpu, inputs, verbose, use_strict_trace)
        self._writer.flush()

    def add_hparams(
        self,
        hparam_dict: Mapping[str, Any],
        metric_dict: Mapping[str, float],
        hparam_domain_discrete: Mapping[str, Sequence[Any]] | None = None,
        global_step: int | None = None,
    ) -> None:
        """Hyper-parameters and the metrics they gave, for TensorBoard's HParams tab.

        Written into the run's own folder (as Helios 1.x did), with each metric also as
        a scalar of that tag.
        """
        if self._writer is None:
            return
        from torch.utils.tensorboard.summary import hparams

        discrete = None if hparam_domain_discrete is None else dict(hparam_domain_discrete)
        summaries = hparams(dict(hparam_dict), dict(metric_dict), discrete)  # type: ignore[no-untyped-call]
        # torch types the attribute by its first value, None: it is the open FileWriter.
        file_writer: Any = cast(Any, self._writer).file_writer
        if file_writer is None:
            raise RuntimeError(f"the TensorBoard writer of {self._run_path} is closed")
        for summary in summaries:
            file_writer.add_summary(summary, global_step)
        for tag, value in metric_dict.items():
            self._writer.add_scalar(tag, value, global_step)
        self._writer.flush()

    def flush(self) -> None:
        """Write what is pending (every method already does)."""
        if self._writer is not None:
            self._writer.flush()


_active_writer: TensorBoardWriter | None = None


def get_tensorboard_writer() -> TensorBoardWriter | None:
    """The TensorBoard writer of the training run in this process, or ``None``.

    There is one while `Trainer.fit` runs with a `helios.plugins.TensorBoardPlugin`
    registered (from the plug-in's ``on_training_start`` to the end of ``fit``), on
    every rank; only rank 0's writes. Helios 1.x code that writes its own scalars keeps
    working: ``hlc.get_from_optional(logging.get_tensorboard_writer()).add_scalar(...)``.

    Examples:
        >>> from helios.core import logging
        >>> logging.get_tensorboard_writer() is None  # no run with TensorBoard here
        True
    """
    return _active_writer


def set_tensorboard_writer(writer: TensorBoardWriter | None) -> None:
    """Make ``writer`` the one `get_tensorboard_writer` returns (``None``: no writer).

    `helios.plugins.TensorBoardPlugin` calls it when a run starts and ends.
    """
    global _active_writer
    _active_writer = writer
