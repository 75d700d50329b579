"""Structure-preserving maps over nested batches.

A *tree* is any value built from the supported containers; everything else is a *leaf*.
`tree_map` applies a function to every leaf and rebuilds every container around the
results, keeping each container's type (and, for mappings, its key order). The input is
never mutated.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import threading
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

# A handler rebuilds one container from its children mapped through ``rec``.
_Handler = Callable[[Any, Callable[[Any], Any]], Any]


class TreeCycleError(ValueError):
    """Raised when a tree contains a container that (indirectly) contains itself."""


def _map_list(node: list[Any], rec: Callable[[Any], Any]) -> list[Any]:
    return [rec(child) for child in node]


def _map_tuple(node: tuple[Any, ...], rec: Callable[[Any], Any]) -> tuple[Any, ...]:
    return tuple([rec(child) for child in node])


def _map_dict(node: dict[Any, Any], rec: Callable[[Any], Any]) -> dict[Any, Any]:
    return {key: rec(value) for key, value in node.items()}


def _map_namedtuple(node: tuple[Any, ...], rec: Callable[[Any], Any]) -> tuple[Any, ...]:
    return type(node)(*[rec(child) for child in node])


def _map_sequence_subclass(node: Sequence[Any], rec: Callable[[Any], Any]) -> Sequence[Any]:
    return type(node)([rec(child) for child in node])  # type: ignore[call-arg]


def _map_deque(node: collections.deque[Any], rec: Callable[[Any], Any]) -> collections.deque[Any]:
    return type(node)([rec(child) for child in node], maxlen=node.maxlen)


def _map_defaultdict(
    node: collections.defaultdict[Any, Any], rec: Callable[[Any], Any]
) -> collections.defaultdict[Any, Any]:
    out = type(node)(node.default_factory)
    for key, value in node.items():
        out[key] = rec(value)
    return out


def _map_mapping(node: Mapping[Any, Any], rec: Callable[[Any], Any]) -> Mapping[Any, Any]:
    return type(node)({key: rec(value) for key, value in node.items()})  # type: ignore[call-arg]


def _field_handler(names: tuple[str, ...]) -> _Handler:
    """Rebuild a record (dataclass or attrs class) field by field.

    The record is shallow-copied and each field replaced on the copy, so frozen classes,
    ``init=False`` fields and attributes that are not fields all survive, and no
    ``__init__`` / ``__post_init__`` side effect runs twice.
    """

    def handler(node: object, rec: Callable[[Any], Any]) -> object:
        out = copy.copy(node)
        for name in names:
            object.__setattr__(out, name, rec(getattr(node, name)))
        return out

    return handler


def _registered_handler(flatten: Flatten, unflatten: Unflatten) -> _Handler:
    def handler(node: object, rec: Callable[[Any], Any]) -> object:
        children, aux = flatten(node)
        return unflatten(aux, [rec(child) for child in children])

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
_lock = threading.Lock()
_UNRESOLVED: Final = object()


def _resolve(cls: type) -> _Handler | None:
    """Find (and cache) the handler for a type that is not cached yet."""
    handler = _classify(cls)
    with _lock:
        _handlers[cls] = handler
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
        return _field_handler(tuple(field.name for field in dataclasses.fields(cls)))
    if attrs.has(cls):
        return _field_handler(tuple(field.name for field in attrs.fields(cls)))
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
    handlers = _handlers
    get = handlers.get
    unresolved = _UNRESOLVED

    if is_leaf is None:

        def rec(node: Any) -> Any:
            handler = get(type(node), unresolved)
            if handler is None:
                return fn(node)
            if handler is unresolved:
                handler = _resolve(type(node))
                if handler is None:
                    return fn(node)
            return handler(node, rec)  # type: ignore[operator]

    else:
        leaf_test = is_leaf

        def rec(node: Any) -> Any:
            if leaf_test(node):
                return fn(node)
            handler = get(type(node), unresolved)
            if handler is unresolved:
                handler = _resolve(type(node))
            if handler is None:
                return fn(node)
            return handler(node, rec)  # type: ignore[operator]

    try:
        return rec(tree)  # type: ignore[no-any-return]
    except RecursionError:
        path = _find_cycle(tree, is_leaf)
        if path is not None:
            raise TreeCycleError(
                f"the batch contains a reference cycle: {path}. Batches must be trees; "
                "break the cycle (or treat that object as a leaf with is_leaf=...) before "
                "passing it in."
            ) from None
        raise


def _children(node: object, handler: _Handler) -> list[Any]:
    seen: list[Any] = []

    def record(child: Any) -> Any:
        seen.append(child)
        return child

    handler(node, record)
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
