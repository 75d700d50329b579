"""Shallow copies of records, as `copy.copy` makes them but faster where that is safe.

`tree_map` rebuilds a dataclass or attrs instance by copying it and replacing its fields
on the copy; for the common classes the copy is made here directly.
"""

from __future__ import annotations

import copy
import copyreg
from collections.abc import Callable
from typing import Any, Final

__all__ = ["shallow_copier"]


def _plain_copy(node: object) -> object:
    """`copy.copy` for a pure-Python class that customises none of the copy protocol."""
    out = object.__new__(type(node))
    state = node.__dict__
    if state:
        out.__dict__.update(state)
    return out


def _new_and_setstate(node: Any) -> object:
    """`copy.copy` for a class whose only copy hooks are ``__getstate__``/``__setstate__``."""
    cls: Any = type(node)
    out = cls.__new__(cls)
    state = node.__getstate__()
    if state is not None:
        out.__setstate__(state)
    return out


class _PlainClass:
    pass


_HEAPTYPE: Final = 1 << 9  # Py_TPFLAGS_HEAPTYPE
_PLAIN_BASICSIZE: Final = _PlainClass.__basicsize__


def _is_python_class(cls: type) -> bool:
    # A heap type with no more C-level storage than a bare Python class: its whole state
    # is in ``__dict__`` (and slots, checked separately).
    return bool(cls.__flags__ & _HEAPTYPE) and cls.__basicsize__ <= _PLAIN_BASICSIZE


def shallow_copier(cls: type) -> Callable[[Any], object]:
    """Return a function equivalent to `copy.copy` on instances of ``cls``, fast if possible.

    `copy.copy` goes through ``__reduce_ex__`` and `copyreg`, which costs microseconds per
    record. For a pure-Python class that leaves that machinery alone, ``copy.copy(x)``
    amounts to ``cls.__new__(cls)`` plus restoring ``x``'s state, which is done directly.
    Any other class gets `copy.copy` itself.
    """
    if (
        getattr(cls, "__copy__", None) is not None
        or cls in copyreg.dispatch_table
        or issubclass(cls, type)
        or getattr(cls, "__reduce_ex__", None) is not object.__reduce_ex__
        or getattr(cls, "__reduce__", None) is not object.__reduce__
        or hasattr(cls, "__getnewargs_ex__")
        or hasattr(cls, "__getnewargs__")
    ):
        return copy.copy
    custom_getstate = getattr(cls, "__getstate__", None) is not object.__getstate__
    has_setstate = hasattr(cls, "__setstate__")
    if custom_getstate and has_setstate:
        # What copy.copy does here: ``cls.__new__(cls)``, then ``__setstate__`` with the
        # result of ``__getstate__`` unless that is None. (Slotted attrs classes.)
        return _new_and_setstate
    if (
        not custom_getstate
        and not has_setstate
        and cls.__new__ is object.__new__
        and all(
            _is_python_class(base) and "__slots__" not in vars(base) for base in cls.__mro__[:-1]
        )
    ):
        # What copy.copy does here: ``object.__new__(cls)``, then the instance dict copied
        # over. (Plain dataclasses, dict-based attrs classes.)
        return _plain_copy
    return copy.copy
