"""Tests of the pure batch transforms and their composition."""

from __future__ import annotations

import collections
import functools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from helios.core import cast, compose, drop_keys, identity, select_keys, take, to_device
from tests.helpers import assert_tree_equal, assert_unchanged, reference_leaves, snapshot
from tests.strategies import Box, FrozenAttrsBox, Pair, batches, default_factory

# -- compose --------------------------------------------------------------------------


def add_one(xs: list[int]) -> list[int]:
    return [x + 1 for x in xs]


def double(xs: list[int]) -> list[int]:
    return [2 * x for x in xs]


def reverse(xs: list[int]) -> list[int]:
    return xs[::-1]


def append_len(xs: list[int]) -> list[int]:
    return [*xs, len(xs)]


def drop_first(xs: list[int]) -> list[int]:
    return xs[1:]


SIMPLE_FNS: list[Callable[[list[int]], list[int]]] = [
    add_one,
    double,
    reverse,
    append_len,
    drop_first,
    take(2),
    identity,
]

fn_lists = st.lists(st.sampled_from(SIMPLE_FNS), max_size=5)
int_lists = st.lists(st.integers(-50, 50), max_size=6)


def apply_in_order(fns: list[Callable[[list[int]], list[int]]], xs: list[int]) -> list[int]:
    return functools.reduce(lambda acc, fn: fn(acc), fns, xs)


def test_compose_runs_left_to_right() -> None:
    calls: list[str] = []

    def first(x: list[str]) -> list[str]:
        calls.append("first")
        return [*x, "f"]

    def second(x: list[str]) -> list[str]:
        calls.append("second")
        return [*x, "s"]

    assert compose(first, second)([]) == ["f", "s"]
    assert calls == ["first", "second"]


def test_compose_with_no_arguments_is_identity() -> None:
    batch = {"x": [1]}
    # With no function to infer the batch type from, the expected type supplies it.
    nothing: Callable[[dict[str, list[int]]], dict[str, list[int]]] = compose()
    assert nothing is identity
    assert nothing(batch) is batch
    assert identity(batch) is batch


def test_compose_of_one_function_is_that_function() -> None:
    assert compose(add_one) is add_one
    assert compose(identity, add_one, identity) is add_one


@given(fn_lists, int_lists)
@example([], [])
@example([take(2), reverse], [1, 2, 3])
def test_compose_applies_every_function_in_order(
    fns: list[Callable[[list[int]], list[int]]], xs: list[int]
) -> None:
    assert compose(*fns)(xs) == apply_in_order(fns, xs)


@given(fn_lists, fn_lists, fn_lists, int_lists)
@example([reverse], [append_len], [take(2)], [1, 2, 3])
def test_compose_is_associative(
    f: list[Callable[[list[int]], list[int]]],
    g: list[Callable[[list[int]], list[int]]],
    h: list[Callable[[list[int]], list[int]]],
    xs: list[int],
) -> None:
    cf, cg, ch = compose(*f), compose(*g), compose(*h)
    left = compose(compose(cf, cg), ch)
    right = compose(cf, compose(cg, ch))
    assert left(xs) == right(xs) == apply_in_order([*f, *g, *h], xs)


@given(fn_lists, int_lists)
def test_compose_identity_is_a_unit(
    fns: list[Callable[[list[int]], list[int]]], xs: list[int]
) -> None:
    composed = compose(*fns)
    assert compose(identity, composed)(xs) == compose(composed, identity)(xs) == composed(xs)


@given(fn_lists, int_lists)
def test_composed_transforms_do_not_mutate_their_input(
    fns: list[Callable[[list[int]], list[int]]], xs: list[int]
) -> None:
    before = list(xs)
    compose(*fns)(xs)
    assert xs == before


@given(batches())
def test_composed_tree_transforms_are_pure(batch: Any) -> None:
    before = snapshot(batch)
    out = compose(to_device("cpu"), cast(torch.float16), to_device("meta"))(batch)
    assert_unchanged(batch, before)
    for new, old in zip(reference_leaves(out), reference_leaves(batch), strict=True):
        if isinstance(old, torch.Tensor) and old.is_floating_point():
            assert new.dtype == torch.float16
            assert new.device.type == "meta"
        elif isinstance(old, torch.Tensor):
            assert new.dtype == old.dtype
            assert new.device.type == "meta"
        else:
            assert new is old


def test_compose_rejects_non_callables() -> None:
    with pytest.raises(TypeError, match="compose expects callables, got 3"):
        compose(add_one, 3)  # type: ignore[call-overload]


def test_compose_repr_lists_the_steps() -> None:
    assert "take(2)" in repr(compose(take(2), add_one))


# -- to_device ------------------------------------------------------------------------


def test_to_device_does_not_copy_tensors_already_there() -> None:
    x = torch.ones(3)
    batch: dict[str, Any] = {"x": x, "meta": ["name", 3, None], "pair": Pair(x, 1.5)}
    out = to_device("cpu")(batch)
    assert out["x"] is x
    assert out["pair"].first is x
    assert out["meta"] == ["name", 3, None]
    assert out is not batch
    assert out["meta"] is not batch["meta"]
    assert to_device(torch.device("cpu"), non_blocking=False)(batch)["x"] is x


def test_to_device_moves_nested_tensors() -> None:
    batch: dict[str, Any] = {
        "a": [torch.ones(2), (torch.zeros(1, dtype=torch.long),)],
        "b": Box(torch.ones(1), 2),
    }
    before = snapshot(batch)
    out = to_device("meta")(batch)
    assert out["a"][0].device.type == "meta"
    assert out["a"][1][0].device.type == "meta"
    assert out["a"][1][0].dtype == torch.long
    assert out["b"].left.device.type == "meta"
    assert out["b"].right == 2
    assert_unchanged(batch, before)


def test_to_device_with_explicit_non_blocking() -> None:
    batch: list[Any] = [torch.ones(1), "x"]
    out = to_device("meta", non_blocking=True)(batch)
    assert out[0].device.type == "meta"
    assert out[1] == "x"


def test_to_device_rejects_bad_devices() -> None:
    with pytest.raises(RuntimeError):
        to_device("no-such-device")


def test_to_device_on_a_bare_tensor_and_a_bare_leaf() -> None:
    x = torch.ones(1)
    assert to_device("cpu")(x) is x
    assert to_device("meta")(x).device.type == "meta"
    assert to_device("meta")("leaf") == "leaf"


# -- take -----------------------------------------------------------------------------


def test_take_is_the_seeds_slice_on_lists_tuples_and_tensors() -> None:
    tensors = [torch.ones(1), torch.zeros(1), torch.full((1,), 2.0)]
    out = take(2)(tensors)
    assert len(out) == 2
    assert out[0] is tensors[0]
    assert out[1] is tensors[1]
    assert len(tensors) == 3
    triple: tuple[int, ...] = (1, 2, 3)
    assert take(2)(triple) == (1, 2)
    assert torch.equal(take(2)(torch.arange(5)), torch.arange(2))
    assert take(2)("abc") == "ab"


@given(st.lists(st.integers(), max_size=6), st.integers(0, 8))
def test_take_matches_slicing(xs: list[int], n: int) -> None:
    before = list(xs)
    assert take(n)(xs) == xs[:n]
    assert xs == before


def test_take_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="n >= 0, got -1"):
        take(-1)
    with pytest.raises(TypeError, match="expects an integer"):
        take(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="expects an integer"):
        take(True)


# -- select_keys / drop_keys ----------------------------------------------------------


def test_select_keys_keeps_the_batchs_order_and_type() -> None:
    batch = collections.OrderedDict([("z", 1), ("x", 2), ("y", 3)])
    out = select_keys("y", "z")(batch)
    assert type(out) is collections.OrderedDict
    assert list(out.items()) == [("z", 1), ("y", 3)]
    assert list(batch) == ["z", "x", "y"]


def test_select_keys_keeps_a_defaultdict_factory() -> None:
    batch: collections.defaultdict[str, Any] = collections.defaultdict(default_factory)
    batch.update(a=1, b=2)
    out = select_keys("b")(batch)
    assert type(out) is collections.defaultdict
    assert out.default_factory is default_factory
    assert dict(out) == {"b": 2}


def test_select_keys_keeps_values_by_identity() -> None:
    x = torch.ones(1)
    assert select_keys("x")({"x": x, "y": 0})["x"] is x


def test_select_keys_missing_key_raises_key_error_naming_it() -> None:
    with pytest.raises(KeyError) as info:
        select_keys("x", "w", "v")({"x": 1, "y": 2})
    assert info.value.args[0] == (
        "select_keys: the batch has no key(s) 'v', 'w'; its keys are ['x', 'y']"
    )


def test_drop_keys_removes_those_present() -> None:
    batch = collections.OrderedDict([("a", 1), ("b", 2), ("c", 3)])
    out = drop_keys("b", "missing")(batch)
    assert type(out) is collections.OrderedDict
    assert list(out.items()) == [("a", 1), ("c", 3)]
    assert list(batch) == ["a", "b", "c"]
    assert drop_keys()({"a": 1}) == {"a": 1}


def test_drop_keys_keeps_a_defaultdict_factory() -> None:
    batch = collections.defaultdict(list, {"a": [1], "b": [2]})
    out = drop_keys("a")(batch)
    assert out.default_factory is list
    assert out == {"b": [2]}


@given(st.dictionaries(st.text(max_size=2), st.integers(), max_size=5), st.data())
def test_select_and_drop_partition_a_mapping(batch: dict[str, int], data: st.DataObject) -> None:
    keys = data.draw(
        st.lists(st.sampled_from(sorted(batch)), unique=True) if batch else st.just([])
    )
    kept, dropped = select_keys(*keys)(batch), drop_keys(*keys)(batch)
    assert set(kept) | set(dropped) == set(batch)
    assert not set(kept) & set(dropped)
    assert list(kept) == [k for k in batch if k in keys]
    assert list(dropped) == [k for k in batch if k not in keys]


@pytest.mark.parametrize("transform", [select_keys("a"), drop_keys("a")])
def test_key_transforms_refuse_non_mappings(transform: Callable[[Any], Any]) -> None:
    with pytest.raises(TypeError, match="works on mapping batches"):
        transform([("a", 1)])


# -- cast -----------------------------------------------------------------------------


def test_cast_converts_floating_tensors_only() -> None:
    labels = torch.tensor([1, 2])
    mask = torch.tensor([True, False])
    batch: dict[str, Any] = {
        "x": torch.ones(2, dtype=torch.float32),
        "y": labels,
        "m": mask,
        "w": FrozenAttrsBox(torch.zeros(1, dtype=torch.float64), "name"),
        "n": 1.5,
    }
    before = snapshot(batch)
    out = cast(torch.float16)(batch)
    assert out["x"].dtype == torch.float16
    assert out["w"].left.dtype == torch.float16
    assert out["y"] is labels
    assert out["m"] is mask
    assert out["n"] == 1.5
    assert out["w"].right == "name"
    assert_unchanged(batch, before)


def test_cast_to_the_same_dtype_keeps_the_tensor() -> None:
    x = torch.ones(1)
    assert cast(torch.float32)([x])[0] is x


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, "float32", float])
def test_cast_rejects_non_floating_dtypes(dtype: Any) -> None:
    with pytest.raises(TypeError, match=r"floating-point torch\.dtype"):
        cast(dtype)


@given(batches())
def test_cast_keeps_structure(batch: Any) -> None:
    out = cast(torch.float64)(batch)
    expected = [
        x.double() if isinstance(x, torch.Tensor) and x.is_floating_point() else x
        for x in reference_leaves(batch)
    ]
    for new, want in zip(reference_leaves(out), expected, strict=True):
        if isinstance(want, torch.Tensor):
            assert_tree_equal(new, want)
        else:
            assert new is want
