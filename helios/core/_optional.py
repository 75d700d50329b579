"""Narrowing an optional value, with an error that says what was missing."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["get_from_optional"]

T = TypeVar("T")


def get_from_optional(value: T | None, /, *, what: str = "value") -> T:
    """Return ``value``, known not to be ``None``, typed without the ``None``.

    A typed spelling of ``assert value is not None`` that still checks under
    ``python -O``, for attributes that are declared optional and set later.

    Args:
        value: The optional value.
        what: What ``value`` is, for the error message.

    Returns:
        ``value`` itself (not a copy).

    Raises:
        ValueError: if ``value`` is ``None``.

    Examples:
        >>> from helios.core import get_from_optional
        >>> get_from_optional(3)
        3
        >>> get_from_optional(None, what="the optimizer")
        Traceback (most recent call last):
        ...
        ValueError: expected the optimizer, got None
    """
    if value is None:
        raise ValueError(f"expected {what}, got None")
    return value
