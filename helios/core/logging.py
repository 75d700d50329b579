"""The logger helios writes to, for messages of your own beside helios's.

Helios 1.x spelling: ``from helios.core import logging`` then
``logging.get_root_logger().info(...)``.
"""

from __future__ import annotations

import logging

__all__ = ["get_root_logger"]

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
