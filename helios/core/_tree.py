"""Structure-preserving maps over nested batches.

A *tree* is any value built from the supported containers; everything else is a *leaf*.
`tree_map` applies a function to every leaf and rebuilds every container around the
results, keeping each container's type (and, for mappings, its key order). The input is
never mutated.
"""

from __future__ import annotations

import linecache
from collections.abc import Callable
from typing import Any, TypeVar

from helios.core._containers import (
    _UNRESOLVED,
    _classify,
    _Fn,
    _Handler,
    _handlers,
    _keepers,
    _leaf_types,
    _lock,
    _map_namedtuple,
    _resolve,
)
from helios.core._containers import register_container as register_container
from helios.core._cycles import find_cycle

__all__ = [
    "TreeCycleError",
    "register_container",
    "tree_leaves",
    "tree_map",
]

T = TypeVar("T")


class TreeCycleError(ValueError):
    """Raised when a tree contains a container that (indirectly) contains itself."""


# The hot path, described once. `_traversal` turns this into the source of a function
# ``rec(node)`` that maps ``fn`` over a tree: lists, dicts, tuples and named tuples, the
# bulk of most batches, are rebuilt inline, and every such container's children are
# mapped by one comprehension whose element is the expression ``{child}`` (of a child
# ``c``). Anything else goes through its handler, which maps its children the same way.
# A hand-written ``rec`` per variant would repeat these branches; sharing them through a
# helper function would cost a Python call per container, and a call per leaf is what
# the comprehensions exist to avoid. So each variant is compiled once, at import, from
# the same text, and runs exactly the code one would have written by hand.
_TRAVERSAL = """
def make(fn{params}):
    leaf = _leaf_types
    get = _handlers.get
    unresolved = _UNRESOLVED
{setup}
    def rec(node):
        cls = type(node)
        if cls is list:
            return [{child} for c in node]
        if cls is dict:
            return {{k: {child} for k, c in node.items()}}
        if cls is tuple:
            return tuple([{child} for c in node])
        handler = get(cls, unresolved)
        if handler is unresolved:
            handler = _resolve(cls)
        if handler is None:
            return fn(node)
        if handler is _map_namedtuple:
            return cls(*[{child} for c in node])
        return handler(node, fn, rec)

    return {returns}
"""


def _traversal(name: str, child: str, *, keeps: bool = False) -> Callable[..., Any]:
    """Compile `_TRAVERSAL` into the factory of one variant of the hot path.

    Args:
        name: The variant's name, for tracebacks (its source is put in `linecache`).
        child: The expression that maps a child ``c``.
        keeps: Whether the factory is ``make(fn, keep, skip) -> (rec, stop_skipping)``
            (see `_mapper_keeping`) rather than ``make(fn) -> rec``.
    """
    source = _TRAVERSAL.format(
        params=", keep, skip" if keeps else "",
        setup=_STOP_SKIPPING if keeps else "",
        child=child,
        returns="rec, stop_skipping" if keeps else "rec",
    )
    filename = f"<helios.core._tree: {name}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {}
    exec(compile(source, filename, "exec"), dict(_TRAVERSAL_GLOBALS), namespace)
    make: Callable[..., Any] = namespace["make"]
    return make


#: What the compiled code reads as globals. Each of these objects is changed in place,
#: never replaced, so the compiled code always sees the current one.
_TRAVERSAL_GLOBALS: dict[str, object] = {
    "_leaf_types": _leaf_types,
    "_handlers": _handlers,
    "_UNRESOLVED": _UNRESOLVED,
    "_resolve": _resolve,
    "_map_namedtuple": _map_namedtuple,
}

_STOP_SKIPPING = """
    def stop_skipping():
        nonlocal skip
        skip = None
"""

#: ``_mapper(fn)`` returns ``rec(tree)``: `tree_map` of ``fn`` with no ``is_leaf``, minus
#: cycle reporting. A child that is a cached leaf goes straight to ``fn``: a leaf costs a
#: set lookup and the call to ``fn``, with no recursive call or handler lookup of its own.
_mapper: Callable[[_Fn], _Fn] = _traversal("mapper", "fn(c) if type(c) in leaf else rec(c)")
# `_mapper_keeping`'s: a child of type ``skip`` for which ``keep(c)`` holds stays as it is.
_make_keeping_mapper = _traversal(
    "keeping mapper",
    "(c if keep(c) else fn(c)) if type(c) is skip else fn(c) if type(c) in leaf else rec(c)",
    keeps=True,
)


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


def _children(node: object, handler: _Handler) -> list[Any]:
    seen: list[Any] = []

    def record(child: Any) -> Any:
        seen.append(child)
        return child

    handler(node, record, record)
    return seen


def _raise_if_cycle(tree: object, is_leaf: Callable[[Any], bool] | None = None) -> None:
    """After a `RecursionError` from a traversal: raise `TreeCycleError` if ``tree`` has a
    reference cycle (the caller re-raises the `RecursionError` otherwise)."""

    def children(node: object) -> list[Any] | None:
        if is_leaf is not None and is_leaf(node):
            return None
        cls = type(node)
        handler = _handlers[cls] if cls in _handlers else _classify(cls)
        return None if handler is None else _children(node, handler)

    path = find_cycle(tree, children)
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
    rec: _Fn
    stop_skipping: Callable[[], None]
    rec, stop_skipping = _make_keeping_mapper(fn, keep, keep_type)
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
