"""Where helios's log messages go while a run lasts."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

from helios.core import TrainingState

__all__ = ["log_progress", "logger", "run_logging"]

#: helios's logger: resuming, progress lines, failures.
logger = logging.getLogger("helios")


@contextlib.contextmanager
def run_logging(
    *, console: bool, log_file: Path | None, capture_warnings: bool = False
) -> Iterator[None]:
    """Show helios's INFO messages while the block runs.

    They go to the user's logging set-up when there is one; otherwise, where ``console``
    is true (rank 0), to the console, as Lightning's do. With ``log_file`` they also go
    to that file; with ``capture_warnings`` Python warnings are logged too (and reach
    the same places).
    """
    handlers: list[logging.Handler] = []
    if console and not logger.hasHandlers():
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("helios: %(message)s"))
        # An exception that ends the run is re-raised and shown by Python (or, in a
        # worker, by the main process): the console need not print it twice.
        stream.addFilter(lambda record: record.exc_info is None)
        handlers.append(stream)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(log_file)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handlers.append(to_file)
    loggers = [logger, logging.getLogger("py.warnings")] if capture_warnings else [logger]
    level = logger.level
    if level == logging.NOTSET or (log_file is not None and level > logging.INFO):
        logger.setLevel(logging.INFO)
    for handler in handlers:
        for target in loggers:
            target.addHandler(handler)
    if capture_warnings:
        logging.captureWarnings(True)
    try:
        yield
    finally:
        if capture_warnings:
            logging.captureWarnings(False)
        for handler in handlers:
            for target in loggers:
                target.removeHandler(handler)
            handler.close()
        logger.setLevel(level)


def log_progress(loss: float | None, state: TrainingState) -> None:
    """Log where training stands: the ``print_frequency`` line."""
    logger.info(
        "epoch %d iteration %d%s (%.2f ms/batch)",
        state.global_epoch,
        state.current_iteration,
        "" if loss is None else f" loss {loss:.6g}",
        state.average_iter_time * 1e3,
    )
