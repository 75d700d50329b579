"""Which values are containers to `tree_map`, and how each kind is rebuilt.

Built-in containers have a handler each; dataclasses and attrs classes get one made for
their fields; user types join with `register_container`. The decision for a type is
made once and cached (`_handlers`, with the leaf types also in `_leaf_types` for the
traversal's one-``in`` test); a registration clears the cache.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs

from helios.core._copying import shallow_copier

__all__ = ["Flatten", "Unflatten", "register_container"]

T = TypeVar("T")

#: ``flatten(obj) -> (children, aux)``; ``children`` is a sequence of sub-trees.
Flatten = Callable[[Any], tuple[Sequence[Any], Any]]
#: ``unflatten(aux, children) -> obj``, the inverse of `Flatten`.
Unflatten = Callable[[Any, Sequence[Any]], Any]

# A handler rebuilds one container: ``handler(node, fn, rec)`` maps each child ``c`` as
# ``fn(c) if type(c) in _leaf_types else rec(c)`` (the caller may pass ``rec`` for both)
# and builds the new container. Testing a child's leaf-ness inline, rather than calling
# ``rec`` on every child, saves a recursive call per leaf.
_Handler = Callable[[Any, Callable[[Any], Any], Callable[[Any], Any]], Any]
_Fn = Callable[[Any], Any]


def _map_list(node: list[Any], fn: _Fn, rec: _Fn) -> list[Any]:
    return [fn(c) if type(c) in _leaf_types else rec(c) for c in node]


def _map_tuple(node: tuple[Any, ...], fn: _Fn, rec: _Fn) -> tuple[Any, ...]:
    return tuple([fn(c) if type(c) in _leaf_types else rec(c) for c in node])


def _map_dict(node: dict[Any, Any], fn: _Fn, rec: _Fn) -> dict[Any, Any]:
    return {k: fn(v) if type(v) in _leaf_types else rec(v) for k, v in node.items()}


def _map_namedtuple(node: tuple[Any, ...], fn: _Fn, rec: _Fn) -> tuple[Any, ...]:
    return type(node)(*[fn(c) if type(c) in _leaf_types else rec(c) for c in node])


def _map_sequence_subclass(node: Sequence[Any], fn: _Fn, rec: _Fn) -> Sequence[Any]:
    items = [fn(c) if type(c) in _leaf_types else rec(c) for c in node]
    return type(node)(items)  # type: ignore[call-arg]


def _map_deque(node: collections.deque[Any], fn: _Fn, rec: _Fn) -> collections.deque[Any]:
    items = [fn(c) if type(c) in _leaf_types else rec(c) for c in node]
    return type(node)(items, maxlen=node.maxlen)


def _map_defaultdict(
    node: collections.defaultdict[Any, Any], fn: _Fn, rec: _Fn
) -> collections.defaultdict[Any, Any]:
    out = type(node)(node.default_factory)
    for key, value in node.items():
        out[key] = fn(value) if type(value) in _leaf_types else rec(value)
    return out


def _map_mapping(node: Mapping[Any, Any], fn: _Fn, rec: _Fn) -> Mapping[Any, Any]:
    items = {k: fn(v) if type(v) in _leaf_types else rec(v) for k, v in node.items()}
    return type(node)(items)  # type: ignore[call-arg]


def _field_handler(cls: type, names: tuple[str, ...]) -> _Handler:
    """Rebuild a record (dataclass or attrs class) field by field.

    The record is shallow-copied and each field replaced on the copy, so frozen classes,
    ``init=False`` fields and attributes that are not fields all survive, and no
    ``__init__`` / ``__post_init__`` side effect runs twice.
    """
    copier = shallow_copier(cls)
    setattr_ = object.__setattr__

    def handler(node: object, fn: _Fn, rec: _Fn) -> object:
        out = copier(node)
        for name in names:
            value = getattr(node, name)
            setattr_(out, name, fn(value) if type(value) in _leaf_types else rec(value))
        return out

    return handler


def _registered_handler(flatten: Flatten, unflatten: Unflatten) -> _Handler:
    def handler(node: object, fn: _Fn, rec: _Fn) -> object:
        children, aux = flatten(node)
        return unflatten(aux, [fn(c) if type(c) in _leaf_types else rec(c) for c in children])

    return handler


_BUILTIN_HANDLERS: Final[dict[type, _Handler | None]] = {
    list: _map_list,
    tuple: _map_tuple,
    dict: _map_dict,
    collections.OrderedDict: _map_mapping,
    collections.defaultdict: _map_defaultdict,
    collections.deque: _map_deque,
    # Common leaves, resolved up front so the hot path is a single dict lookup.
    type(None): None,
    bool: None,
    int: None,
    float: None,
    complex: None,
    str: None,
    bytes: None,
}

_registered: dict[type, _Handler] = {}
_handlers: dict[type, _Handler | None] = dict(_BUILTIN_HANDLERS)
# The types cached as leaves in `_handlers`, as a set so the traversal can test a child
# with one ``in`` instead of a call. Always updated together with `_handlers`.
_leaf_types: set[type] = {cls for cls, handler in _BUILTIN_HANDLERS.items() if handler is None}
_lock = threading.Lock()
_UNRESOLVED: Final = object()
# The live `_mapper_keeping` traversals: each one's ``keep_type``, and the function that
# switches its skipping off (the traversal itself is the weakly held key).
_keepers: weakref.WeakKeyDictionary[_Fn, tuple[type, Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)


def _resolve(cls: type) -> _Handler | None:
    """Find (and cache) the handler for a type that is not cached yet."""
    handler = _classify(cls)
    with _lock:
        _handlers[cls] = handler
        if handler is None:
            _leaf_types.add(cls)
    return handler


def _classify(cls: type) -> _Handler | None:
    for base in cls.__mro__:
        if base in _registered:
            return _registered[base]
    if issubclass(cls, tuple):
        if hasattr(cls, "_fields"):
            return _map_namedtuple
        return _map_sequence_subclass
    if issubclass(cls, list):
        return _map_sequence_subclass
    if issubclass(cls, collections.deque):
        return _map_deque
    if issubclass(cls, collections.defaultdict):
        return _map_defaultdict
    if issubclass(cls, Mapping):
        return _map_mapping
    if dataclasses.is_dataclass(cls):
        return _field_handler(cls, tuple(field.name for field in dataclasses.fields(cls)))
    if attrs.has(cls):
        return _field_handler(cls, tuple(field.name for field in attrs.fields(cls)))
    return None


def register_container(cls: type[T], flatten: Flatten, unflatten: Unflatten) -> None:
    """Teach `tree_map` to look inside instances of ``cls`` (and its subclasses).

    Args:
        cls: The container type.
        flatten: ``flatten(obj) -> (children, aux)``: the sub-trees to map, and whatever
            else is needed to rebuild the object.
        unflatten: ``unflatten(aux, children) -> obj``: builds a new object from ``aux``
            and the mapped children. It must not modify ``aux``.

    Raises:
        TypeError: if ``cls`` is not a class or either function is not callable.

    Examples:
        >>> import helios.core as hlc
        >>> class Pair:
        ...     def __init__(self, a: object, b: object) -> None:
        ...         self.a, self.b = a, b
        >>> hlc.register_container(Pair, lambda p: ((p.a, p.b), None),
        ...                        lambda _, kids: Pair(*kids))
        >>> hlc.tree_map(lambda x: x * 10, Pair(1, [2])).b
        [20]
    """
    if not isinstance(cls, type):
        raise TypeError(f"register_container expects a class, got {cls!r}")
    if not callable(flatten) or not callable(unflatten):
        raise TypeError("register_container expects callable flatten and unflatten functions")
    with _lock:
        _registered[cls] = _registered_handler(flatten, unflatten)
        # Cached decisions about subclasses (or about ``cls`` as a leaf) are now stale.
        _handlers.clear()
        _handlers.update(_BUILTIN_HANDLERS)
        _leaf_types.clear()
        _leaf_types.update(cls for cls, handler in _BUILTIN_HANDLERS.items() if handler is None)
        for keep_type, stop_skipping in list(_keepers.values()):
            if cls in keep_type.__mro__:
                stop_skipping()
