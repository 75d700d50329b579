"""Structure-preserving maps over nested batches.

A *tree* is any value built from the supported containers; everything else is a *leaf*.
`tree_map` applies a function to every leaf and rebuilds every container around the
results, keeping each container's type (and, for mappings, its key order). The input is
never mutated.
"""

from __future__ import annotations

import collections
import copy
import copyreg
import dataclasses
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, TypeVar

import attrs

__all__ = [
    "TreeCycleError",
    "register_container",
    "tree_leaves",
    "tree_map",
]

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


class TreeCycleError(ValueError):
    """Raised when a tree contains a container that (indirectly) contains itself."""


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


def _copier(cls: type) -> Callable[[Any], object]:
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


def _field_handler(cls: type, names: tuple[str, ...]) -> _Handler:
    """Rebuild a record (dataclass or attrs class) field by field.

    The record is shallow-copied and each field replaced on the copy, so frozen classes,
    ``init=False`` fields and attributes that are not fields all survive, and no
    ``__init__`` / ``__post_init__`` side effect runs twice.
    """
    copier = _copier(cls)
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


def _mapper(fn: _Fn) -> _Fn:
    """Return ``rec(tree)``: `tree_map` of ``fn`` with no ``is_leaf``, minus cycle reporting.

    This is the hot path. Lists, tuples and dicts, the bulk of most batches, are rebuilt
    inline, and every container's children are mapped by one comprehension that hands a
    child of a cached leaf type straight to ``fn``: a leaf costs a set lookup and the call
    to ``fn``, with no recursive call or handler lookup of its own.
    """
    leaf_types = _leaf_types
    get = _handlers.get
    unresolved = _UNRESOLVED

    def rec(node: Any) -> Any:
        cls = type(node)
        if cls is list:
            return [fn(child) if type(child) in leaf_types else rec(child) for child in node]
        if cls is dict:
            return {
                key: fn(value) if type(value) in leaf_types else rec(value)
                for key, value in node.items()
            }
        if cls is tuple:
            return tuple(
                [fn(child) if type(child) in leaf_types else rec(child) for child in node]
            )
        handler = get(cls, unresolved)
        if handler is unresolved:
            handler = _resolve(cls)
        if handler is None:
            return fn(node)
        return handler(node, fn, rec)  # type: ignore[operator]

    return rec


def _mapper_with_leaf_test(fn: _Fn, is_leaf: Callable[[Any], bool]) -> _Fn:
    """`_mapper` for a call with ``is_leaf``, which must see every node, leaves included."""
    get = _handlers.get
    unresolved = _UNRESOLVED

    def rec(node: Any) -> Any:
        if is_leaf(node):
            return fn(node)
        handler = get(type(node), unresolved)
        if handler is unresolved:
            handler = _resolve(type(node))
        if handler is None:
            return fn(node)
        # ``rec`` for leaves too, so that ``is_leaf`` sees every child.
        return handler(node, rec, rec)  # type: ignore[operator]

    return rec


def _raise_if_cycle(tree: object, is_leaf: Callable[[Any], bool] | None = None) -> None:
    """After a `RecursionError` from a traversal: raise `TreeCycleError` if ``tree`` has a
    reference cycle (the caller re-raises the `RecursionError` otherwise)."""
    path = _find_cycle(tree, is_leaf)
    if path is not None:
        raise TreeCycleError(
            f"the batch contains a reference cycle: {path}. Batches must be trees; "
            "break the cycle (or treat that object as a leaf with is_leaf=...) before "
            "passing it in."
        ) from None


def _mapper_keeping(fn: _Fn, keep_type: type, keep: Callable[[Any], bool]) -> _Fn:
    """`_mapper` for an ``fn`` that returns some leaves unchanged.

    A child of exactly ``keep_type`` for which ``keep(child)`` holds is kept as it is,
    without calling ``fn``; ``fn`` must return such a leaf unchanged. With ``keep`` a
    C-level test (an `operator.attrgetter`) this saves a Python call per such leaf, e.g.
    per tensor already on the target device.

    This holds only while ``keep_type`` is a leaf type. Rather than check that on every
    call, the traversal is listed in `_keepers`, and `register_container` switches the
    skipping off when a registration makes ``keep_type`` a container; the traversal then
    behaves exactly as `_mapper`'s.
    """
    leaf = _leaf_types
    get = _handlers.get
    unresolved = _UNRESOLVED
    namedtuple_handler = _map_namedtuple
    # The type whose leaves may be kept; None (never a child's type) once switched off.
    skip: type | None = keep_type

    def stop_skipping() -> None:
        nonlocal skip
        skip = None

    def rec(node: Any) -> Any:
        cls = type(node)
        if cls is list:
            return [
                (c if keep(c) else fn(c))
                if type(c) is skip
                else fn(c)
                if type(c) in leaf
                else rec(c)
                for c in node
            ]
        if cls is dict:
            return {
                k: (v if keep(v) else fn(v))
                if type(v) is skip
                else fn(v)
                if type(v) in leaf
                else rec(v)
                for k, v in node.items()
            }
        if cls is tuple:
            return tuple(
                [
                    (c if keep(c) else fn(c))
                    if type(c) is skip
                    else fn(c)
                    if type(c) in leaf
                    else rec(c)
                    for c in node
                ]
            )
        handler = get(cls, unresolved)
        if handler is unresolved:
            handler = _resolve(cls)
        if handler is None:
            return fn(node)
        if handler is namedtuple_handler:
            return cls(
                *[
                    (c if keep(c) else fn(c))
                    if type(c) is skip
                    else fn(c)
                    if type(c) in leaf
                    else rec(c)
                    for c in node
                ]
            )
        return handler(node, fn, rec)  # type: ignore[operator]

    with _lock:
        if _classify(keep_type) is not None:
            stop_skipping()
        _keepers[rec] = (keep_type, stop_skipping)
    return rec


def tree_map(
    fn: Callable[[Any], Any],
    tree: T,
    /,
    *,
    is_leaf: Callable[[Any], bool] | None = None,
) -> T:
    """Apply ``fn`` to every leaf of ``tree`` and rebuild the containers around the results.

    Containers are lists, tuples, named tuples, dicts and other mappings (type and key
    order kept; a ``defaultdict`` keeps its ``default_factory``), deques (``maxlen`` kept),
    dataclasses and attrs classes (frozen ones and ``init=False`` fields included), and
    types added with `register_container`. Anything else, ``None`` included, is a leaf.

    Returns a new tree and leaves the input alone. Leaves are passed to ``fn`` exactly
    once each, depth first, in container order.

    Args:
        fn: Called on every leaf; its result takes the leaf's place.
        tree: The tree to map.
        is_leaf: Optional predicate; a node for which it returns ``True`` is handed to
            ``fn`` whole instead of being traversed.

    Returns:
        A new tree with the same structure as ``tree``.

    Raises:
        TreeCycleError: if a container in ``tree`` contains itself.

    Examples:
        >>> import helios.core as hlc
        >>> hlc.tree_map(lambda x: x if x is None else x + 1, {"a": [1, 2], "b": (3, None)})
        {'a': [2, 3], 'b': (4, None)}
    """
    rec = _mapper(fn) if is_leaf is None else _mapper_with_leaf_test(fn, is_leaf)
    try:
        return rec(tree)  # type: ignore[no-any-return]
    except RecursionError:
        _raise_if_cycle(tree, is_leaf)
        raise


def _children(node: object, handler: _Handler) -> list[Any]:
    seen: list[Any] = []

    def record(child: Any) -> Any:
        seen.append(child)
        return child

    handler(node, record, record)
    return seen


def _find_cycle(tree: object, is_leaf: Callable[[Any], bool] | None) -> str | None:
    """Describe where a container contains itself (paths use mapping keys), or ``None``."""
    on_path: dict[int, str] = {}
    # Iterative depth-first search; each frame is (node, path, remaining children).
    stack: list[tuple[object, str, Iterator[tuple[Any, Any]] | None]] = [(tree, "batch", None)]
    while stack:
        node, path, pending = stack[-1]
        if pending is None:
            handler = None if is_leaf is not None and is_leaf(node) else _handlers.get(type(node))
            if handler is None and type(node) not in _handlers:
                handler = _classify(type(node))
            if handler is None:
                stack.pop()
                continue
            if id(node) in on_path:
                return f"{path} is {on_path[id(node)]}, which contains it"
            on_path[id(node)] = path
            kids = _children(node, handler)
            labels: Sequence[Any] = range(len(kids))
            if isinstance(node, Mapping) and len(node) == len(kids):
                labels = list(node.keys())
            stack[-1] = (node, path, iter(zip(labels, kids, strict=True)))
            continue
        step = next(pending, None)
        if step is None:
            on_path.pop(id(node), None)
            stack.pop()
            continue
        label, child = step
        stack.append((child, f"{path}[{label!r}]", None))
    return None


def tree_leaves(tree: object, /, *, is_leaf: Callable[[Any], bool] | None = None) -> list[Any]:
    """Return the leaves of ``tree`` in the order `tree_map` visits them.

    Examples:
        >>> import helios.core as hlc
        >>> hlc.tree_leaves({"a": [1, 2], "b": (3, None)})
        [1, 2, 3, None]
    """
    leaves: list[Any] = []

    def collect(leaf: Any) -> Any:
        leaves.append(leaf)
        return leaf

    tree_map(collect, tree, is_leaf=is_leaf)
    return leaves
