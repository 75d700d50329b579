"""Fuzzing the tree-map with odd leaves: identity, sharing, views, cycles.

Trees are built by hypothesis from every container kind of ``tests.strategies`` and, as
leaves, the usual ones plus a pool of odd objects made fresh for each example: 0-d and
empty tensors, non-contiguous views (transposed, strided, expanded) of one base,
tensors that require grad (a graph leaf and a result computed from it), half-precision
and complex tensors, and empty containers. A pool object is drawn as often as the tree
likes, so the same object sits at several places.

Properties, for ``helios.core.tree_map``, ``helios.core.to_device`` and
``helios.core.cast(torch.float64)``:

- the structure, container types, keys and values come back;
- a leaf the transform leaves alone comes back as the same object, so two places that
  held one object still do, and views still view the same storage;
- mutable containers come back new, and the input is not changed at all;
- a reference cycle anywhere is reported as `helios.core.TreeCycleError`.

`fuzz` runs every property for ``benchmarks/faults.py``.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import helios.core as hlc
from benchmarks.campaign.results import Outcome
from tests.helpers import assert_tree_equal, children, reference_leaves
from tests.strategies import AttrsBox, Bag, Box, WithInitFalse, _containers, leaves

#: Containers a map must return as new objects (changing them must not reach the input).
MUTABLE = (
    list,
    dict,
    collections.OrderedDict,
    collections.defaultdict,
    collections.deque,
    Box,
    WithInitFalse,
    AttrsBox,
    Bag,
)


def odd_pool(seed: int) -> tuple[Any, ...]:
    """Odd leaves and empty containers, several of them sharing one storage."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(4, 6, generator=generator)
    base64 = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    weight = torch.randn(5, generator=generator).requires_grad_()
    return (
        torch.tensor(1.5),
        torch.tensor(7),
        torch.tensor(2.5, dtype=torch.float64),
        torch.tensor(True),
        torch.empty(0),
        torch.empty(0, 3, dtype=torch.int64),
        base,
        base.t(),
        base[::2],
        base[:, 1::3],
        base.view(-1)[3:9],
        base[0].expand(3, 6),
        base.unsqueeze(0),
        base64,
        base64.t(),
        base64[1:, ::2],
        weight,
        weight * 2,
        weight.detach()[1:],
        torch.arange(6).view(2, 3).t(),
        torch.ones(2, dtype=torch.float16),
        torch.ones(2, dtype=torch.complex64),
        [],
        (),
        {},
        collections.OrderedDict(),
        collections.deque(),
    )


@attrs.frozen
class Odd:
    """A tree and the pool of odd objects it was built from."""

    tree: Any
    pool: tuple[Any, ...] = attrs.field(repr=False)


@st.composite
def odd_trees(draw: st.DrawFn) -> Odd:
    pool = odd_pool(draw(st.integers(0, 2**16)))
    pick = st.integers(0, len(pool) - 1).map(lambda index: pool[index])
    tree = draw(st.recursive(st.one_of(leaves(), pick, pick), _containers, max_leaves=16))
    return Odd(tree, pool)


def nodes(tree: Any) -> Iterator[Any]:
    """Every node of ``tree``, depth first (the independent oracle of ``tests.helpers``)."""
    yield tree
    for kid in children(tree) or ():
        yield from nodes(kid)


class InputChanged(AssertionError):
    """The transform changed its input: data the caller holds was damaged."""


def fingerprint(tree: Any) -> list[tuple[Any, ...]]:
    """What must not change in the input: every node's identity, every mapping's keys,
    every tensor's version counter, storage, layout and autograd flag."""
    prints: list[tuple[Any, ...]] = []
    for node in nodes(tree):
        if isinstance(node, torch.Tensor):
            prints.append(
                (
                    id(node),
                    node._version,
                    node.untyped_storage().data_ptr(),
                    node.storage_offset(),
                    tuple(node.shape),
                    node.stride(),
                    node.dtype,
                    node.requires_grad,
                )
            )
        elif isinstance(node, Mapping):
            prints.append((id(node), type(node), tuple(node)))
        else:
            prints.append((id(node), type(node)))
    return prints


def _intact(before: list[tuple[Any, ...]], tree: Any) -> None:
    if fingerprint(tree) != before:
        raise InputChanged("the input tree changed")


def _storage(tensor: torch.Tensor) -> int:
    return tensor.untyped_storage().data_ptr()


def _check_mapped(
    before: list[tuple[Any, ...]],
    tree: Any,
    out: Any,
    kept: Callable[[Any], bool],
) -> None:
    """The checks every map shares. ``kept(leaf)``: the transform leaves it alone."""
    _intact(before, tree)
    inputs = reference_leaves(tree)
    outputs = reference_leaves(out)
    assert len(inputs) == len(outputs)
    first_output: dict[int, Any] = {}
    for leaf, result in zip(inputs, outputs, strict=True):
        if not kept(leaf):
            continue
        assert result is leaf, f"the untouched leaf {leaf!r} was replaced by a copy"
        # The same object at two places maps to the same object at both.
        assert first_output.setdefault(id(leaf), result) is result
    kept_tensors = [
        (leaf, result)
        for leaf, result in zip(inputs, outputs, strict=True)
        if isinstance(leaf, torch.Tensor) and kept(leaf)
    ]
    for leaf, result in kept_tensors:
        # Views stay views of the same storage, at the same place.
        assert _storage(result) == _storage(leaf)
        assert result.storage_offset() == leaf.storage_offset()
        assert result.stride() == leaf.stride()
        assert result._base is leaf._base
    input_ids = {id(node) for node in nodes(tree) if isinstance(node, MUTABLE)}
    for node in nodes(out):
        assert not (isinstance(node, MUTABLE) and id(node) in input_ids), (
            f"the output shares the mutable container {node!r} with the input"
        )


def _structure(out: Any, tree: Any) -> None:
    """Same container types and keys, down to the leaves (compared by the caller)."""
    kids, out_kids = children(tree), children(out)
    if kids is None:
        return
    assert type(out) is type(tree)
    assert out_kids is not None
    assert len(out_kids) == len(kids)
    if isinstance(tree, Mapping):
        assert list(out) == list(tree)
    for a, b in zip(out_kids, kids, strict=True):
        _structure(a, b)


def check_identity_map(odd: Odd) -> None:
    before = fingerprint(odd.tree)
    out = hlc.tree_map(lambda leaf: leaf, odd.tree)
    _intact(before, odd.tree)
    assert_tree_equal(out, odd.tree)
    _check_mapped(before, odd.tree, out, kept=lambda leaf: True)


def check_once_per_leaf(odd: Odd) -> None:
    before = fingerprint(odd.tree)
    seen: list[Any] = []

    def tag(leaf: Any) -> Any:
        seen.append(leaf)
        return _TagLeaf(leaf)

    out = hlc.tree_map(tag, odd.tree)
    _intact(before, odd.tree)
    expected = reference_leaves(odd.tree)
    assert len(seen) == len(expected)
    assert all(a is b for a, b in zip(seen, expected, strict=True)), "leaves out of order"
    results = reference_leaves(out)
    assert all(
        isinstance(r, _TagLeaf) and r.value is leaf
        for r, leaf in zip(results, expected, strict=True)
    )
    _structure(out, odd.tree)


class _TagLeaf:
    """A plain leaf type (not a record, so not a container) wrapping a mapped leaf."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def check_to_cpu(odd: Odd) -> None:
    before = fingerprint(odd.tree)
    out = hlc.to_device("cpu")(odd.tree)
    _intact(before, odd.tree)
    assert_tree_equal(out, odd.tree)
    _check_mapped(before, odd.tree, out, kept=lambda leaf: True)


def check_to_meta(odd: Odd) -> None:
    before = fingerprint(odd.tree)
    out = hlc.to_device("meta")(odd.tree)
    _intact(before, odd.tree)
    _structure(out, odd.tree)
    for leaf, result in zip(reference_leaves(odd.tree), reference_leaves(out), strict=True):
        if isinstance(leaf, torch.Tensor):
            assert result.device.type == "meta"
            assert (result.shape, result.dtype) == (leaf.shape, leaf.dtype)
            assert result.requires_grad == leaf.requires_grad
    _check_mapped(before, odd.tree, out, kept=lambda leaf: not isinstance(leaf, torch.Tensor))


def _cast_keeps(leaf: Any) -> bool:
    return not (
        isinstance(leaf, torch.Tensor) and leaf.is_floating_point() and leaf.dtype != torch.float64
    )


def check_cast(odd: Odd) -> None:
    before = fingerprint(odd.tree)
    out = hlc.cast(torch.float64)(odd.tree)
    _intact(before, odd.tree)
    _structure(out, odd.tree)
    for leaf, result in zip(reference_leaves(odd.tree), reference_leaves(out), strict=True):
        if _cast_keeps(leaf):
            continue
        assert result.dtype == torch.float64
        assert result.shape == leaf.shape
        assert result.requires_grad == leaf.requires_grad
        assert torch.equal(result.detach(), leaf.detach().to(torch.float64))
    _check_mapped(before, odd.tree, out, kept=_cast_keeps)


@st.composite
def cyclic_trees(draw: st.DrawFn) -> Any:
    """An odd tree under a list root, with the root put back into one of its lists or
    mappings (the root itself included)."""
    root = [draw(odd_trees()).tree]
    holders = [
        node
        for node in nodes(root)
        if type(node) in (list, dict, collections.OrderedDict, collections.defaultdict)
    ]
    holder = draw(st.sampled_from(holders))
    if isinstance(holder, list):
        holder.append(root)
    else:
        holder["cycle"] = root
    return root


def check_cycle(root: Any) -> None:
    transforms: list[tuple[str, Callable[[Any], Any]]] = [
        ("tree_map", lambda tree: hlc.tree_map(lambda leaf: leaf, tree)),
        ("to_device", hlc.to_device("cpu")),
        ("cast", hlc.cast(torch.float64)),
    ]
    for name, transform in transforms:
        reported: hlc.TreeCycleError | None = None
        try:
            transform(root)
        except hlc.TreeCycleError as error:
            reported = error
        assert reported is not None, f"{name} mapped a tree with a cycle"
        assert "reference cycle" in str(reported), str(reported)


PROPERTIES: dict[str, tuple[Callable[[Any], None], st.SearchStrategy[Any]]] = {
    "tree_map(identity)": (check_identity_map, odd_trees()),
    "tree_map: each leaf once, in order": (check_once_per_leaf, odd_trees()),
    "to_device('cpu')": (check_to_cpu, odd_trees()),
    "to_device('meta')": (check_to_meta, odd_trees()),
    "cast(torch.float64)": (check_cast, odd_trees()),
    "a cycle anywhere": (check_cycle, cyclic_trees()),
}


# -- the tests -------------------------------------------------------------------------


@given(odd_trees())
def test_identity_map_keeps_structure_identity_and_sharing(odd: Odd) -> None:
    check_identity_map(odd)


@given(odd_trees())
def test_each_leaf_is_mapped_once_in_order(odd: Odd) -> None:
    check_once_per_leaf(odd)


@given(odd_trees())
def test_to_cpu_copies_nothing(odd: Odd) -> None:
    check_to_cpu(odd)


@given(odd_trees())
def test_to_meta_moves_every_tensor_and_nothing_else(odd: Odd) -> None:
    check_to_meta(odd)


@given(odd_trees())
def test_cast_converts_floats_only_and_keeps_the_rest(odd: Odd) -> None:
    check_cast(odd)


@settings(max_examples=40)  # each example recurses to the interpreter's limit, three times
@given(cyclic_trees())
def test_a_cycle_anywhere_is_reported(root: Any) -> None:
    check_cycle(root)


def test_the_pool_shares_storage_and_has_odd_layouts() -> None:
    pool = odd_pool(0)
    tensors = [leaf for leaf in pool if isinstance(leaf, torch.Tensor)]
    assert any(t.dim() == 0 for t in tensors)
    assert any(t.numel() == 0 for t in tensors)
    assert any(not t.is_contiguous() for t in tensors)
    assert any(0 in t.stride() for t in tensors)  # expanded
    assert any(t.requires_grad and t.grad_fn is not None for t in tensors)
    storages = collections.Counter(_storage(t) for t in tensors if t.numel())
    assert max(storages.values()) >= 5


# -- for benchmarks/faults.py ----------------------------------------------------------


def _counted(check: Callable[[Any], None], counts: dict[str, int]) -> Callable[[Any], None]:
    def run(value: Any) -> None:
        counts["run"] += 1
        try:
            check(value)
        except InputChanged:
            counts["lost"] += 1
            raise
        except BaseException:
            counts["failed"] += 1
            raise

    return run


def fuzz(examples: int = 200) -> Outcome:
    """Every property on ``examples`` trees each: tried = examples checked."""
    started = time.perf_counter()
    tried = failed = lost = 0
    problems: list[str] = []
    for name, (check, strategy) in PROPERTIES.items():
        counts = {"run": 0, "failed": 0, "lost": 0}
        run = _counted(check, counts)
        test = settings(
            max_examples=examples,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )(given(strategy)(run))
        try:
            test()
        except Exception as error:
            problems.append(f"{name}: {type(error).__name__}: {error}")
        tried += counts["run"]
        failed += min(counts["failed"] + counts["lost"], 1)
        lost += min(counts["lost"], 1)
    return Outcome(
        scenario="tree-map fuzz (hypothesis)",
        tried=tried,
        survived=tried - failed,
        data_lost=lost,
        hangs=0,
        seconds=time.perf_counter() - started,
        problems=tuple(problems),
    )
