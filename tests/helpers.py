"""Tree-aware assertions shared by the tests.

`children` is an independent oracle for the structure `helios.core.tree_map` should see:
it knows the container types of ``tests.strategies`` and nothing of the library's code.
"""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import attrs
import torch

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


def _fail(path: str, message: str) -> None:
    raise AssertionError(f"at {path}: {message}")


def assert_tree_equal(actual: Any, expected: Any, path: str = "tree") -> None:
    """Assert the two trees are equal node by node, container types included.

    Checks types at every level (named tuples, ``OrderedDict``, subclasses), mapping keys
    and their order, a ``defaultdict``'s factory (by identity), a deque's ``maxlen``, the
    label of a ``Bag``, and tensors with `torch.equal` (dtype and device too). Floats
    compare equal when both are NaN.
    """
    if type(actual) is not type(expected):
        _fail(path, f"type {type(actual).__qualname__} != {type(expected).__qualname__}")
    if isinstance(expected, torch.Tensor):
        if actual.dtype != expected.dtype or actual.device != expected.device:
            _fail(
                path,
                f"tensor {actual.dtype}@{actual.device} != {expected.dtype}@{expected.device}",
            )
        if not torch.equal(actual, expected):
            _fail(path, f"tensor {actual!r} != {expected!r}")
        return
    if isinstance(expected, float):
        if not (actual == expected or (math.isnan(actual) and math.isnan(expected))):
            _fail(path, f"{actual!r} != {expected!r}")
        return
    if (
        isinstance(expected, collections.defaultdict)
        and actual.default_factory is not expected.default_factory
    ):
        _fail(path, f"factory {actual.default_factory!r} != {expected.default_factory!r}")
    if isinstance(expected, collections.deque) and actual.maxlen != expected.maxlen:
        _fail(path, f"maxlen {actual.maxlen} != {expected.maxlen}")
    if isinstance(expected, Mapping):
        if list(actual.keys()) != list(expected.keys()):
            _fail(path, f"keys {list(actual.keys())!r} != {list(expected.keys())!r}")
        for key in expected:
            assert_tree_equal(actual[key], expected[key], f"{path}[{key!r}]")
        return
    if isinstance(expected, Bag) and actual.label != expected.label:
        _fail(path, f"label {actual.label!r} != {expected.label!r}")
    kids = children(expected)
    if kids is None:
        if actual != expected:
            _fail(path, f"{actual!r} != {expected!r}")
        return
    actual_kids = children(actual)
    assert actual_kids is not None
    if len(actual_kids) != len(kids):
        _fail(path, f"{len(actual_kids)} children != {len(kids)}")
    for index, (a, e) in enumerate(zip(actual_kids, kids, strict=True)):
        assert_tree_equal(a, e, f"{path}[{index}]")


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
