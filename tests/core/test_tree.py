"""Properties and unit tests of `helios.core.tree_map` and `tree_leaves`."""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from helios.core import TreeCycleError, register_container, tree_leaves, tree_map
from tests.helpers import (
    assert_tree_equal,
    assert_unchanged,
    children,
    reference_leaves,
    snapshot,
)
from tests.strategies import (
    AttrsBox,
    Bag,
    Box,
    FrozenAttrsBox,
    FrozenBox,
    Pair,
    SubBag,
    WithInitFalse,
    batches,
    default_factory,
    with_init_false,
)

# Awkward trees, pinned as examples of every property below.
AWKWARD: list[Any] = [
    None,
    [],
    {},
    (),
    [[], {}, ()],
    collections.deque(maxlen=0),
    collections.deque([1, None], maxlen=5),
    collections.defaultdict(default_factory),
    collections.OrderedDict([("b", 1), ("a", [None])]),
    Pair(None, []),
    (torch.zeros(0),),
    {"nan": float("nan"), 3: torch.tensor(True)},
    FrozenBox(Bag([], "x"), SubBag([Pair(1, 2)])),
    with_init_false([1], {"d": None}),
    FrozenAttrsBox(AttrsBox((), None), Box("", -0.0)),
]


def identity_leaf(x: Any) -> Any:
    return x


def bump(x: Any) -> Any:
    """A leaf-to-leaf function that changes every kind of leaf."""
    if isinstance(x, int):
        return x + 1
    if isinstance(x, float):
        return x * 2
    if isinstance(x, str):
        return x + "!"
    if isinstance(x, torch.Tensor):
        return x * 2
    return x


def touch_ints(x: Any) -> Any:
    return x + 1 if isinstance(x, int) else x


def describe(x: Any) -> Any:
    return type(x).__name__


def noneify(x: Any) -> Any:
    return None


LEAF_FNS: list[Callable[[Any], Any]] = [identity_leaf, bump, touch_ints, describe, noneify]


def with_awkward_examples(*more: Any) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Pin every tree of `AWKWARD` (followed by ``more`` arguments) as an example."""

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        for tree in AWKWARD:
            test = example(tree, *more)(test)
        return test

    return decorate


# -- properties -----------------------------------------------------------------------


@given(batches())
@with_awkward_examples()
def test_identity_map_preserves_structure(tree: Any) -> None:
    out = tree_map(identity_leaf, tree)
    assert_tree_equal(out, tree)


@given(batches())
@with_awkward_examples()
def test_map_returns_new_containers(tree: Any) -> None:
    out = tree_map(identity_leaf, tree)
    # Every container is rebuilt (the empty tuple is a singleton, so it cannot be).
    if children(tree) is not None and tree != ():
        assert out is not tree


@given(batches(), st.sampled_from(LEAF_FNS), st.sampled_from(LEAF_FNS))
@example(AWKWARD[-1], bump, describe)
@example(AWKWARD[-2], touch_ints, bump)
def test_map_fusion(tree: Any, f: Callable[[Any], Any], g: Callable[[Any], Any]) -> None:
    assert_tree_equal(tree_map(f, tree_map(g, tree)), tree_map(lambda x: f(g(x)), tree))


@given(batches())
@with_awkward_examples()
def test_untouched_leaves_keep_identity(tree: Any) -> None:
    out = tree_map(touch_ints, tree)
    for new, old in zip(reference_leaves(out), reference_leaves(tree), strict=True):
        if isinstance(old, int):
            assert new == old + 1
        else:
            assert new is old


@given(batches(), st.sampled_from(LEAF_FNS))
@with_awkward_examples(bump)
def test_input_is_never_mutated(tree: Any, fn: Callable[[Any], Any]) -> None:
    before = snapshot(tree)
    tree_map(fn, tree)
    assert_unchanged(tree, before)


@given(batches())
@with_awkward_examples()
def test_leaves_order_matches_containers(tree: Any) -> None:
    leaves = tree_leaves(tree)
    expected = reference_leaves(tree)
    assert len(leaves) == len(expected)
    assert all(a is b for a, b in zip(leaves, expected, strict=True))


@given(batches())
@with_awkward_examples()
def test_each_leaf_is_visited_once_in_order(tree: Any) -> None:
    counter = itertools.count()
    numbered = tree_map(lambda _: next(counter), tree)
    n = len(reference_leaves(tree))
    assert tree_leaves(numbered) == list(range(n))
    assert next(counter) == n


@given(batches())
@with_awkward_examples()
def test_is_leaf_stops_the_descent(tree: Any) -> None:
    def is_list(x: Any) -> bool:
        return type(x) is list

    seen: list[Any] = []

    def record(x: Any) -> Any:
        seen.append(x)
        return "L" if type(x) is list else x

    out = tree_map(record, tree, is_leaf=is_list)
    assert all(type(x) is not list for x in reference_leaves(out))
    leaves = tree_leaves(tree, is_leaf=is_list)
    assert len(leaves) == len(seen)
    assert all(a is b for a, b in zip(leaves, seen, strict=True))
    whole = tree_map(lambda x: ("whole", x), tree, is_leaf=lambda _: True)
    assert whole[0] == "whole"
    assert whole[1] is tree


# -- leaves ---------------------------------------------------------------------------


def test_none_is_a_leaf() -> None:
    assert tree_leaves(None) == [None]
    assert tree_leaves([None, (None,)]) == [None, None]
    assert tree_map(lambda x: "seen" if x is None else x, {"a": None}) == {"a": "seen"}


@pytest.mark.parametrize(
    "leaf",
    [0, 1.5, "text", b"bytes", True, 2j, torch.ones(2), range(3), object()],
)
def test_non_containers_are_leaves(leaf: Any) -> None:
    assert tree_leaves(leaf)[0] is leaf
    assert tree_map(lambda x: ("got", x), leaf)[1] is leaf


def test_strings_are_not_traversed() -> None:
    assert tree_leaves(["ab", ("cd",)]) == ["ab", "cd"]


# -- each container kind --------------------------------------------------------------


def test_list_and_tuple() -> None:
    out = tree_map(lambda x: x * 10, [1, (2, 3), [4]])
    assert out == [10, (20, 30), [40]]
    assert type(out[1]) is tuple


def test_list_and_tuple_subclasses_keep_their_type() -> None:
    class MyList(list[Any]):
        pass

    class MyTuple(tuple[Any, ...]):
        pass

    out = tree_map(lambda x: x + 1, MyList([MyTuple((1, 2))]))
    assert type(out) is MyList
    assert type(out[0]) is MyTuple
    assert out == [(2, 3)]


def test_named_tuple() -> None:
    class Sample(NamedTuple):
        image: torch.Tensor
        label: int

    legacy = collections.namedtuple("legacy", ["a", "b"])
    out = tree_map(lambda x: x + 1, [Sample(torch.zeros(2), 3), legacy(1, 2)])
    assert type(out[0]) is Sample
    assert out[0].label == 4
    assert torch.equal(out[0].image, torch.ones(2))
    assert type(out[1]) is legacy
    assert out[1] == legacy(2, 3)


def test_dict_keeps_key_order() -> None:
    out = tree_map(lambda x: x * 2, {"z": 1, "a": 2, 3: 3})
    assert list(out) == ["z", "a", 3]
    assert out == {"z": 2, "a": 4, 3: 6}


def test_ordered_dict_keeps_type_and_order() -> None:
    tree = collections.OrderedDict([("b", 1), ("a", 2)])
    tree.move_to_end("b")
    out = tree_map(lambda x: -x, tree)
    assert type(out) is collections.OrderedDict
    assert list(out.items()) == [("a", -2), ("b", -1)]


def test_dict_subclass_keeps_type() -> None:
    out = tree_map(lambda x: x + 1, collections.Counter({"a": 1, "b": 2}))
    assert type(out) is collections.Counter
    assert out == collections.Counter({"a": 2, "b": 3})


def test_defaultdict_keeps_factory() -> None:
    tree: collections.defaultdict[str, Any] = collections.defaultdict(default_factory)
    tree["x"] = [1]
    out = tree_map(lambda x: x + 1, tree)
    assert type(out) is collections.defaultdict
    assert out.default_factory is default_factory
    assert out == {"x": [2]}
    assert out["missing"] == []  # the factory still works
    assert "missing" not in tree


def test_deque_keeps_maxlen() -> None:
    tree = collections.deque([1, 2, 3], maxlen=3)
    out = tree_map(lambda x: x * 2, tree)
    assert type(out) is collections.deque
    assert out.maxlen == 3
    assert list(out) == [2, 4, 6]
    out.append(8)
    assert list(out) == [4, 6, 8]
    unbounded = tree_map(lambda x: x, collections.deque([1]))
    assert unbounded.maxlen is None


def test_dataclass() -> None:
    box = Box([1], {"k": 2})
    out = tree_map(lambda x: x + 1, box)
    assert type(out) is Box
    assert out == Box([2], {"k": 3})
    assert box == Box([1], {"k": 2})


def test_frozen_dataclass() -> None:
    out = tree_map(lambda x: x + 1, FrozenBox(1, (2,)))
    assert out == FrozenBox(2, (3,))
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.left = 0  # type: ignore[misc]


def test_slotted_frozen_dataclass() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Slotted:
        a: Any
        b: Any = 0

    out = tree_map(lambda x: x * 3, Slotted([1], 2))
    assert out == Slotted([3], 6)


def test_dataclass_with_init_false_field() -> None:
    tree = with_init_false(given=1, derived=[2])
    assert tree.post_inits == 1
    out = tree_map(lambda x: x * 10, tree)
    assert type(out) is WithInitFalse
    assert out.given == 10
    assert out.derived == [20]
    # The counter is a field too (mapped), but __post_init__ did not run again.
    assert out.post_inits == 10
    assert tree_map(lambda x: x, tree).post_inits == 1


def test_dataclass_keeps_non_field_attributes() -> None:
    box = Box(1, 2)
    box.note = "kept"  # type: ignore[attr-defined]
    out = tree_map(lambda x: x + 1, box)
    assert out.note == "kept"  # type: ignore[attr-defined]


def test_attrs_classes() -> None:
    out = tree_map(lambda x: x + 1, AttrsBox(1, [2]))
    assert out == AttrsBox(2, [3])
    frozen = tree_map(lambda x: x + 1, FrozenAttrsBox(1, {"a": 2}))
    assert frozen == FrozenAttrsBox(2, {"a": 3})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        frozen.left = 0  # type: ignore[misc]


def test_attrs_class_with_init_false_field() -> None:
    @attrs.frozen
    class Record:
        given: Any
        derived: Any = attrs.field(init=False, default=7)

    out = tree_map(lambda x: x + 1, Record(1))
    assert (out.given, out.derived) == (2, 8)


def test_dataclass_and_attrs_classes_themselves_are_leaves() -> None:
    assert tree_leaves([Box, AttrsBox]) == [Box, AttrsBox]


def test_registered_container() -> None:
    out = tree_map(lambda x: x * 2, Bag([1, (2,)], label="keep"))
    assert type(out) is Bag
    assert out.items == [2, (4,)]
    assert out.label == "keep"


def test_subclass_of_registered_container() -> None:
    out = tree_map(lambda x: x * 2, {"bag": SubBag([1, [2]], label="sub")})
    assert type(out["bag"]) is SubBag
    assert out["bag"].items == [2, [4]]
    assert out["bag"].label == "sub"


def test_register_container_after_use_takes_effect() -> None:
    class LateBox:
        def __init__(self, content: Any) -> None:
            self.content = content

    tree = LateBox([1])
    assert tree_leaves(tree) == [tree]  # a leaf until registered (and cached as one)
    register_container(LateBox, lambda b: ([b.content], None), lambda _, kids: LateBox(kids[0]))
    assert tree_leaves(tree) == [1]
    out = tree_map(lambda x: x + 1, tree)
    assert type(out) is LateBox
    assert out.content == [2]
    assert tree.content == [1]


@pytest.mark.parametrize(
    ("cls", "flatten", "unflatten"),
    [
        ("not a class", lambda x: ((), None), lambda a, c: None),
        (Bag, "not callable", lambda a, c: None),
        (Bag, lambda x: ((), None), None),
    ],
)
def test_register_container_rejects_bad_arguments(cls: Any, flatten: Any, unflatten: Any) -> None:
    with pytest.raises(TypeError, match="register_container expects"):
        register_container(cls, flatten, unflatten)


def test_tensors_are_leaves_not_sequences() -> None:
    t = torch.arange(3)
    assert tree_leaves({"t": t})[0] is t


def test_shared_subtrees_are_fine() -> None:
    shared = [1, 2]
    out = tree_map(lambda x: x + 1, {"a": shared, "b": shared})
    assert out == {"a": [2, 3], "b": [2, 3]}


def test_deep_nesting_is_not_a_cycle() -> None:
    tree: Any = 0
    for _ in range(100):
        tree = [tree]
    out = tree_map(lambda x: x + 1, tree)
    assert tree_leaves(out) == [1]


# -- cycles ---------------------------------------------------------------------------


def test_self_containing_list_raises() -> None:
    tree: list[Any] = [1]
    tree.append(tree)
    with pytest.raises(TreeCycleError, match=r"reference cycle: batch\[1\] is batch, which"):
        tree_map(identity_leaf, tree)


def test_self_containing_dict_names_the_keys() -> None:
    inner: dict[str, Any] = {"x": torch.zeros(1)}
    inner["again"] = [inner]
    with pytest.raises(TreeCycleError) as info:
        tree_map(identity_leaf, {"outer": inner})
    message = str(info.value)
    assert "batch['outer']['again'][0] is batch['outer']" in message
    assert "must be trees" in message


def test_cycle_through_dataclass_and_registered_container() -> None:
    box = Box(None, None)
    box.right = Bag([box])
    with pytest.raises(TreeCycleError, match="reference cycle"):
        tree_leaves(box)


def test_cycle_error_is_a_value_error() -> None:
    tree: list[Any] = []
    tree.append(tree)
    with pytest.raises(ValueError, match="reference cycle"):
        tree_map(identity_leaf, tree, is_leaf=lambda x: isinstance(x, int))


def test_cycle_hidden_by_is_leaf_is_fine() -> None:
    tree: list[Any] = []
    tree.append(tree)
    assert tree_leaves([tree], is_leaf=lambda x: x is tree) == [tree]
