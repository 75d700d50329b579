"""Warnings that point at the user's line, not at helios's own frames."""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from types import FrameType

__all__ = ["warn"]

_PACKAGE = str(Path(__file__).resolve().parent) + os.sep


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """`warnings.warn` with the ``stacklevel`` of the first frame outside helios."""
    frame: FrameType | None = sys._getframe(1)
    level = 2  # 1 is this function's own line
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
