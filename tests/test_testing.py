"""`helios.testing.assert_tree_equal`: equal trees pass, and every kind of difference
fails naming where it is."""

from __future__ import annotations

import collections
import copy
import dataclasses
import math
from typing import Any, NamedTuple

import attrs
import pytest
import torch
from hypothesis import given

from helios.testing import assert_tree_equal
from tests.strategies import Bag, SubBag, batches, default_factory


class Point(NamedTuple):
    x: Any
    y: Any


@dataclasses.dataclass
class Record:
    image: Any
    label: Any


@attrs.frozen
class Frozen:
    image: Any


def bag_parts(bag: Bag) -> tuple[list[Any], str]:
    return list(bag.items), bag.label


BAGS = {Bag: bag_parts}


@given(batches())
def test_a_tree_equals_its_deep_copy(tree: Any) -> None:
    assert_tree_equal(copy.deepcopy(tree), tree, containers=BAGS)


def test_nan_floats_are_equal_and_tensors_compare_exactly() -> None:
    assert_tree_equal([math.nan, 1.5], [math.nan, 1.5])
    assert_tree_equal({"t": torch.arange(3)}, {"t": torch.arange(3)})


@pytest.mark.parametrize(
    ("actual", "expected", "message"),
    [
        ({"a": 1}, collections.OrderedDict(a=1), "at tree: type dict != OrderedDict"),
        ((1, 2), Point(1, 2), "at tree: type tuple != Point"),
        ([1, [2, 3]], [1, [2, 4]], r"at tree\[1\]\[1\]: 3 != 4"),
        ([1, 2], [1, 2, 3], r"at tree: 2 children != 3"),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, r"at tree: keys \['a', 'b'\] != \['b', 'a'\]"),
        ({"k": [1.0]}, {"k": [2.0]}, r"at tree\['k'\]\[0\]: 1.0 != 2.0"),
        (
            collections.defaultdict(list),
            collections.defaultdict(default_factory),
            "at tree: factory <class 'list'> != <function default_factory",
        ),
        (
            collections.deque([1], maxlen=2),
            collections.deque([1], maxlen=3),
            "at tree: maxlen 2 != 3",
        ),
        (
            [torch.zeros(2)],
            [torch.zeros(2, dtype=torch.float64)],
            r"at tree\[0\]: tensor torch.float32@cpu != torch.float64@cpu",
        ),
        ([torch.zeros(2)], [torch.zeros(3)], r"at tree\[0\]: tensor tensor\(\[0., 0.\]\) !="),
        (Record(1, "cat"), Record(1, "dog"), r"at tree.label: 'cat' != 'dog'"),
        (Frozen([1]), Frozen([2]), r"at tree.image\[0\]: 1 != 2"),
    ],
)
def test_a_difference_fails_naming_where(actual: Any, expected: Any, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_tree_equal(actual, expected)


def test_user_containers_compare_by_children_and_the_rest() -> None:
    assert_tree_equal(SubBag([1, [2]], "x"), SubBag([1, [2]], "x"), containers=BAGS)
    with pytest.raises(AssertionError, match=r"at tree\[1\]\[0\]: 2 != 3"):
        assert_tree_equal(Bag([1, [2]], "x"), Bag([1, [3]], "x"), containers=BAGS)
    with pytest.raises(AssertionError, match=r"at tree: 'x' != 'y' \(the parts that are not"):
        assert_tree_equal(Bag([1], "x"), Bag([1], "y"), containers=BAGS)
    with pytest.raises(AssertionError, match=r"at batch: 1 children != 2"):
        assert_tree_equal(Bag([1], "x"), Bag([1, 2], "x"), containers=BAGS, path="batch")


def test_an_unknown_container_is_a_leaf_compared_with_eq() -> None:
    same = Bag([1], "x")
    assert_tree_equal(same, same)
    with pytest.raises(AssertionError, match=r"at tree: Bag\(\[1\], label='x'\) != Bag"):
        assert_tree_equal(Bag([1], "x"), Bag([1], "x"))
