"""attrs validators for settings: one per kind of value, each naming the argument.

Every validator raises `ValueError` with ``"<name> must be ..., got <value>"``, where
``name`` is the field's name unless another is given (a setting may be stored under a
shorter name than the keyword users write).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import attrs

__all__ = [
    "flag",
    "is_a",
    "folder_or_none",
    "non_negative_int",
    "non_negative_int_or_none",
    "optional_flag",
    "positive_finite",
    "positive_int",
    "positive_int_or_none",
    "string",
]

Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


def is_int(value: object) -> bool:
    """An int that is not a bool (``True`` is an int to Python, never a count to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _check(test: Callable[[Any], bool], what: str, name: str | None) -> Validator:
    def validate(_: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if not test(value):
            raise ValueError(f"{name or attribute.name} must be {what}, got {value!r}")

    return validate


def is_a(kind: type, what: str, name: str | None = None) -> Validator:
    """An instance of ``kind`` (``what`` describes it in the message)."""
    return _check(lambda v: isinstance(v, kind), what, name)


def positive_int(name: str | None = None) -> Validator:
    """An int >= 1."""
    return _check(lambda v: is_int(v) and v >= 1, "a positive int", name)


def positive_int_or_none(name: str | None = None) -> Validator:
    """An int >= 1, or ``None``."""
    return _check(lambda v: v is None or (is_int(v) and v >= 1), "a positive int or None", name)


def non_negative_int(name: str | None = None) -> Validator:
    """An int >= 0."""
    return _check(lambda v: is_int(v) and v >= 0, "an int >= 0", name)


def non_negative_int_or_none(name: str | None = None) -> Validator:
    """An int >= 0, or ``None``."""
    return _check(lambda v: v is None or (is_int(v) and v >= 0), "an int >= 0 or None", name)


def flag(name: str | None = None) -> Validator:
    """``True`` or ``False``."""
    return _check(lambda v: isinstance(v, bool), "True or False", name)


def optional_flag(name: str | None = None) -> Validator:
    """``True``, ``False`` or ``None``."""
    return _check(lambda v: v is None or isinstance(v, bool), "True, False or None", name)


def string(name: str | None = None) -> Validator:
    """A ``str``."""
    return _check(lambda v: isinstance(v, str), "a string", name)


def folder_or_none(name: str | None = None) -> Validator:
    """A folder path (``str`` or path-like), or ``None``."""
    return _check(
        lambda v: v is None or isinstance(v, str | os.PathLike),
        "a folder path (str or Path)",
        name,
    )


def positive_finite(unit: str, name: str | None = None) -> Validator:
    """A finite number > 0 (``unit`` says of what, e.g. ``"seconds"``)."""
    return _check(
        lambda v: (isinstance(v, int | float) and not isinstance(v, bool)) and 0 < v < math.inf,
        f"> 0 {unit} (and finite)",
        name,
    )
