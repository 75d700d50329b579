"""Tree-aware assertions shared by the tests.

`children` is an independent oracle for the structure `helios.core.tree_map` should see:
it knows the container types of ``tests.strategies`` and nothing of the library's code.
`assert_tree_equal` is `helios.testing`'s, which walks trees with rules of its own too.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import attrs

import helios.testing
from tests.strategies import Bag

__all__ = [
    "Snapshot",
    "assert_tree_equal",
    "assert_unchanged",
    "children",
    "reference_leaves",
    "snapshot",
]


def children(node: Any) -> list[Any] | None:
    """The sub-trees of ``node`` in container order, or ``None`` for a leaf."""
    if isinstance(node, list | tuple | collections.deque):
        return list(node)
    if isinstance(node, Mapping):
        return list(node.values())
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [getattr(node, f.name) for f in dataclasses.fields(node)]
    if attrs.has(type(node)):
        return [getattr(node, f.name) for f in attrs.fields(type(node))]
    if isinstance(node, Bag):
        return list(node.items)
    return None


def reference_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree``, depth first, in container order."""
    kids = children(tree)
    if kids is None:
        return [tree]
    return [leaf for kid in kids for leaf in reference_leaves(kid)]


def _bag_parts(bag: Bag) -> tuple[list[Any], str]:
    return list(bag.items), bag.label


def assert_tree_equal(actual: Any, expected: Any, path: str = "tree") -> None:
    """`helios.testing.assert_tree_equal`, which also knows this suite's own container:
    a `Bag` compares by its items and its label (split here, not by its registration)."""
    helios.testing.assert_tree_equal(actual, expected, containers={Bag: _bag_parts}, path=path)


@attrs.frozen
class Snapshot:
    """A deep copy of a tree plus the identity of every node, to detect any mutation."""

    copy: Any
    ids: list[int]


def _ids(tree: Any) -> list[int]:
    kids = children(tree)
    own = [id(tree)]
    if kids is None:
        return own
    return own + [i for kid in kids for i in _ids(kid)]


def snapshot(tree: Any) -> Snapshot:
    return Snapshot(copy.deepcopy(tree), _ids(tree))


def assert_unchanged(tree: Any, before: Snapshot) -> None:
    """Assert ``tree`` holds the same objects and the same values as when snapshotted."""
    assert _ids(tree) == before.ids, "a container of the input now holds different objects"
    assert_tree_equal(tree, before.copy, "input")
