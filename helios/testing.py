"""Assertions for tests of code that transforms batches, as `torch.testing` is for tensors.

`assert_tree_equal` compares two nested batches node by node, container types included.
It walks the trees with its own rules, not with `helios.core.tree_map`'s code, so a test
of a transform (or of `tree_map` itself) does not check the traversal with the
traversal.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import attrs
import torch

__all__ = ["assert_tree_equal"]

#: ``flatten(obj) -> (children, aux)``, as given to `helios.core.register_container`.
Flatten = Callable[[Any], tuple[Sequence[Any], Any]]


def assert_tree_equal(
    actual: object,
    expected: object,
    /,
    *,
    containers: Mapping[type[Any], Flatten] | None = None,
    path: str = "tree",
) -> None:
    """Assert that two trees are equal node by node, container types included.

    At every level the two nodes must be of the same type (a named tuple is not a tuple,
    an ``OrderedDict`` not a ``dict``). Then:

    - tensors must have the same dtype and device, and be equal (`torch.equal`);
    - floats must be equal, or both NaN;
    - mappings must have the same keys in the same order, and equal values; a
      ``defaultdict`` must have the same ``default_factory`` (the same object);
    - lists, tuples and deques must have equal items (and a deque the same ``maxlen``);
    - dataclasses and attrs instances must have equal fields;
    - an instance of a class in ``containers`` (or of a subclass) is split by its
      flatten function: the children must be equal trees and the ``aux`` parts equal;
    - anything else is a leaf, compared with ``==``.

    Args:
        actual: The tree the code under test produced.
        expected: The tree it should have produced.
        containers: Your own container types, each with the ``flatten`` function you
            gave `helios.core.register_container` (or any function that splits an
            instance into its children and the rest).
        path: How the message names the root of the trees.

    Raises:
        AssertionError: at the first difference, naming where it is
            (``tree['x'][0].mask``) and what differs.

    Examples:
        >>> import collections, torch
        >>> from helios.testing import assert_tree_equal
        >>> assert_tree_equal({"x": [torch.ones(2)]}, {"x": [torch.ones(2)]})
        >>> assert_tree_equal({"x": 1}, collections.OrderedDict(x=1))
        Traceback (most recent call last):
        ...
        AssertionError: at tree: type dict != OrderedDict
        >>> assert_tree_equal({"x": [torch.ones(2)]}, {"x": [torch.ones(2, dtype=torch.int64)]})
        Traceback (most recent call last):
        ...
        AssertionError: at tree['x'][0]: tensor torch.float32@cpu != torch.int64@cpu
    """
    _compare(actual, expected, dict(containers or {}), path)


def _fail(path: str, message: str) -> NoReturn:
    raise AssertionError(f"at {path}: {message}")


def _compare(actual: Any, expected: Any, containers: dict[type, Flatten], path: str) -> None:
    if type(actual) is not type(expected):
        _fail(path, f"type {type(actual).__qualname__} != {type(expected).__qualname__}")
    if _compare_leaf(actual, expected, path):
        return
    if isinstance(expected, collections.defaultdict) and (
        actual.default_factory is not expected.default_factory
    ):
        _fail(path, f"factory {actual.default_factory!r} != {expected.default_factory!r}")
    if isinstance(expected, collections.deque) and actual.maxlen != expected.maxlen:
        _fail(path, f"maxlen {actual.maxlen} != {expected.maxlen}")
    pairs = _pairs(actual, expected, containers, path)
    if pairs is None:
        if actual != expected:
            _fail(path, f"{actual!r} != {expected!r}")
        return
    for label, a, e in pairs:
        _compare(a, e, containers, path + label)


def _compare_leaf(actual: Any, expected: Any, path: str) -> bool:
    """Compare tensors and floats (of the same type); whether ``expected`` was one."""
    if isinstance(expected, torch.Tensor):
        if actual.dtype != expected.dtype or actual.device != expected.device:
            _fail(
                path,
                f"tensor {actual.dtype}@{actual.device} != {expected.dtype}@{expected.device}",
            )
        if not torch.equal(actual, expected):
            _fail(path, f"tensor {actual!r} != {expected!r}")
        return True
    if isinstance(expected, float):
        if not (actual == expected or (math.isnan(actual) and math.isnan(expected))):
            _fail(path, f"{actual!r} != {expected!r}")
        return True
    return False


def _pairs(
    actual: Any, expected: Any, containers: dict[type, Flatten], path: str
) -> list[tuple[str, Any, Any]] | None:
    """The children of two containers of the same type, paired, each with its place in a
    path; ``None`` for leaves. Fails where the two differ in shape."""
    flatten = next((containers[c] for c in type(expected).__mro__ if c in containers), None)
    if flatten is not None:
        actual_kids, actual_aux = flatten(actual)
        expected_kids, expected_aux = flatten(expected)
        if actual_aux != expected_aux:
            _fail(path, f"{actual_aux!r} != {expected_aux!r} (the parts that are not children)")
        labelled = [(f"[{index}]", kid) for index, kid in enumerate(expected_kids)]
        return _paired(list(actual_kids), labelled, path)
    if isinstance(expected, Mapping):
        if list(actual.keys()) != list(expected.keys()):
            _fail(path, f"keys {list(actual.keys())!r} != {list(expected.keys())!r}")
        return [(f"[{key!r}]", actual[key], expected[key]) for key in expected]
    kids = _children(expected)
    if kids is None:
        return None
    return _paired([kid for _, kid in _children(actual) or ()], kids, path)


def _paired(
    actual: list[Any], expected: list[tuple[str, Any]], path: str
) -> list[tuple[str, Any, Any]]:
    if len(actual) != len(expected):
        _fail(path, f"{len(actual)} children != {len(expected)}")
    return [(label, a, e) for a, (label, e) in zip(actual, expected, strict=True)]


def _children(node: Any) -> list[tuple[str, Any]] | None:
    """The children of a sequence or a record, each with its place in a path; ``None``
    for anything else."""
    if isinstance(node, list | tuple | collections.deque):
        return [(f"[{index}]", item) for index, item in enumerate(node)]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [(f".{f.name}", getattr(node, f.name)) for f in dataclasses.fields(node)]
    if attrs.has(type(node)):
        return [(f".{f.name}", getattr(node, f.name)) for f in attrs.fields(type(node))]
    return None
