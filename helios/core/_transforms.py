"""Pure batch transforms and their composition.

A batch transform is a function ``batch -> batch`` that returns a new batch and leaves its
input alone. Transforms compose left to right with `compose`; `identity` is the unit.
"""

from __future__ import annotations

import collections
import operator
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Final, Protocol, Self, TypeVar, overload

import torch

from helios.core._tree import _mapper, _mapper_keeping, _raise_if_cycle

__all__ = [
    "BatchTransform",
    "DropKeys",
    "SelectKeys",
    "Take",
    "TreeTransform",
    "cast",
    "compose",
    "drop_keys",
    "identity",
    "select_keys",
    "take",
    "to_device",
]

B = TypeVar("B")
T = TypeVar("T")
M = TypeVar("M", bound=Mapping[Any, Any])


class BatchTransform(Protocol[B]):
    """A pure function from a batch of type ``B`` to a new batch of the same type."""

    def __call__(self, batch: B, /) -> B: ...


class TreeTransform(Protocol):
    """A transform that accepts a batch of any structure and returns the same structure."""

    def __call__(self, batch: B, /) -> B: ...


class _Sliceable(Protocol):
    def __getitem__(self, key: slice, /) -> Self: ...


S = TypeVar("S", bound=_Sliceable)


def identity(batch: B, /) -> B:
    """Return ``batch`` unchanged: the unit of `compose`."""
    return batch


class _Composed:
    """Left-to-right composition; nested compositions are flattened, so grouping is moot."""

    __slots__ = ("fns",)

    def __init__(self, fns: tuple[Callable[[Any], Any], ...]) -> None:
        self.fns = fns

    def __call__(self, batch: Any, /) -> Any:
        for fn in self.fns:
            batch = fn(batch)
        return batch

    def __repr__(self) -> str:
        return f"compose({', '.join(map(repr, self.fns))})"


@overload
def compose() -> TreeTransform: ...
@overload
def compose(*fns: Callable[[B], B]) -> Callable[[B], B]: ...


def compose(*fns: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Compose transforms left to right: ``compose(f, g)(x) == g(f(x))``.

    With no arguments the result is `identity`; with one it is that function. Composition
    is associative: ``compose(compose(f, g), h)`` and ``compose(f, compose(g, h))`` run the
    same three functions in the same order.

    Args:
        *fns: The transforms, in the order they run.

    Returns:
        A new transform; the arguments are not modified.

    Raises:
        TypeError: if an argument is not callable.

    Examples:
        >>> import helios.core as hlc
        >>> pipeline = hlc.compose(hlc.take(3), hlc.take(2))
        >>> pipeline([1, 2, 3, 4])
        [1, 2]
        >>> hlc.compose()([1, 2])
        [1, 2]
    """
    flat: list[Callable[[Any], Any]] = []
    for fn in fns:
        if not callable(fn):
            raise TypeError(f"compose expects callables, got {fn!r}")
        if isinstance(fn, _Composed):
            flat.extend(fn.fns)
        elif fn is not identity:
            flat.append(fn)
    if not flat:
        return identity
    if len(flat) == 1:
        return flat[0]
    return _Composed(tuple(flat))


def _default_non_blocking(tensor: torch.Tensor, device: torch.device) -> bool:
    # An asynchronous copy is only safe and useful from pinned host memory to a GPU.
    return device.type == "cuda" and tensor.is_cpu and tensor.is_pinned()


# ``tensor.is_<type>`` answers ``tensor.device.type == <type>`` several times faster than
# building the device object and reading its ``type``.
_DEVICE_TYPE_FLAGS: Final = {
    "cpu": "is_cpu",
    "cuda": "is_cuda",
    "meta": "is_meta",
    "mps": "is_mps",
    "xpu": "is_xpu",
}


def _already_on(device: torch.device) -> Callable[[torch.Tensor], bool]:
    """Return a test for "this tensor is on ``device`` already" (any index if it has none)."""
    index: int | None = device.index  # None for "cuda" (torch's stub says int)
    if index is not None:
        return lambda tensor: tensor.device == device
    flag = _DEVICE_TYPE_FLAGS.get(device.type)
    if flag is not None and hasattr(torch.Tensor, flag):
        return operator.attrgetter(flag)
    target_type = device.type
    return lambda tensor: tensor.device.type == target_type


class _LeafwiseTransform:
    """A transform applying one leaf function through a traversal built once."""

    __slots__ = ("_map",)

    _map: Callable[[Any], Any]

    def __call__(self, batch: B, /) -> B:
        try:
            return self._map(batch)  # type: ignore[no-any-return]
        except RecursionError:
            _raise_if_cycle(batch)
            raise


class _ToDevice(_LeafwiseTransform):
    __slots__ = ("device", "non_blocking")

    def __init__(self, device: torch.device, non_blocking: bool | None) -> None:
        self.device = device
        self.non_blocking = non_blocking
        tensor_type = torch.Tensor
        already_on = _already_on(device)

        if non_blocking is None and device.type == "cpu":

            def move(leaf: Any) -> Any:
                if isinstance(leaf, tensor_type) and not leaf.is_cpu:
                    return leaf.to(device)
                return leaf

        else:

            def move(leaf: Any) -> Any:
                if not isinstance(leaf, tensor_type) or already_on(leaf):
                    return leaf
                blocking = (
                    _default_non_blocking(leaf, device) if non_blocking is None else non_blocking
                )
                return leaf.to(device, non_blocking=blocking)

        # The traversal is built once rather than by `tree_map` on every call, and it
        # keeps a tensor already on ``device`` with a C-level check instead of a call to
        # ``move``: this is `tree_map(move, batch)`, only faster.
        self._map = _mapper_keeping(move, tensor_type, already_on)

    def __repr__(self) -> str:
        return f"to_device({str(self.device)!r})"

    def __reduce__(self) -> tuple[type[_ToDevice], tuple[torch.device, bool | None]]:
        # Rebuilt from its arguments: the closure inside cannot be pickled (spawned workers).
        return (_ToDevice, (self.device, self.non_blocking))


def to_device(device: torch.device | str, non_blocking: bool | None = None) -> TreeTransform:
    """Return a transform that moves every tensor of a batch to ``device``.

    Non-tensor leaves pass through; a tensor already on ``device`` is not copied. With
    ``non_blocking=None`` a copy is asynchronous exactly when it goes from pinned CPU
    memory to a CUDA device.

    Args:
        device: The target device. ``"cuda"`` (no index) accepts any CUDA device as
            already there.
        non_blocking: Force asynchronous (``True``) or synchronous (``False``) copies.

    Returns:
        A new transform; each call returns a new batch and leaves its input alone.

    Examples:
        >>> import torch, helios.core as hlc
        >>> batch = {"x": torch.zeros(2), "name": "a"}
        >>> moved = hlc.to_device("cpu")(batch)
        >>> moved["x"] is batch["x"], moved["name"]
        (True, 'a')
    """
    return _ToDevice(torch.device(device), non_blocking)


class Take:
    """The transform `take` returns: ``batch[:n]``.

    Lists, tensors and variable-length tuples keep their type. A named or fixed-length
    tuple comes back as a plain tuple of its items, and is typed as one (mypy, unlike
    pyright, lets an annotated fixed-length tuple keep its type: annotate the result as
    ``tuple[T, ...]`` there).
    """

    __slots__ = ("n",)

    def __init__(self, n: int) -> None:
        self.n = n

    # Lists, tensors and variable-length tuples slice to their own type; a named or
    # fixed-length tuple does not (its slice is a plain tuple), so it takes the second
    # form. The generic form comes first so that compositions with take stay generic.
    @overload
    def __call__(self, batch: S, /) -> S: ...
    @overload
    def __call__(self, batch: tuple[T, ...], /) -> tuple[T, ...]: ...

    def __call__(self, batch: Any, /) -> Any:
        return batch[: self.n]

    def __repr__(self) -> str:
        return f"take({self.n})"


def take(n: int) -> Take:
    """Return a transform that keeps the first ``n`` items: ``batch[:n]``.

    Args:
        n: How many items to keep (non-negative).

    Raises:
        ValueError: if ``n`` is negative.
        TypeError: if ``n`` is not an integer.

    Examples:
        >>> import helios.core as hlc
        >>> hlc.take(2)(["a", "b", "c"])
        ['a', 'b']
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"take(n) expects an integer, got {n!r}")
    if n < 0:
        raise ValueError(f"take(n) expects n >= 0, got {n}")
    return Take(n)


def _require_mapping(name: str, batch: object) -> None:
    if not isinstance(batch, Mapping):
        raise TypeError(f"{name} works on mapping batches (dicts), got {type(batch).__name__}")


def _rebuild_mapping(source: M, items: list[tuple[Any, Any]]) -> M:
    if isinstance(source, collections.defaultdict):
        out = type(source)(source.default_factory)
        out.update(items)
        return out
    return type(source)(items)  # type: ignore[call-arg]


class SelectKeys:
    """The transform `select_keys` returns; the result has the batch's mapping type."""

    __slots__ = ("keys",)

    def __init__(self, keys: tuple[Hashable, ...]) -> None:
        self.keys = frozenset(keys)

    def __call__(self, batch: M, /) -> M:
        _require_mapping("select_keys", batch)
        missing = [key for key in self.keys if key not in batch]
        if missing:
            raise KeyError(
                f"select_keys: the batch has no key(s) {', '.join(sorted(map(repr, missing)))}; "
                f"its keys are {list(batch)}"
            )
        return _rebuild_mapping(batch, [(k, v) for k, v in batch.items() if k in self.keys])


class DropKeys:
    """The transform `drop_keys` returns; the result has the batch's mapping type."""

    __slots__ = ("keys",)

    def __init__(self, keys: tuple[Hashable, ...]) -> None:
        self.keys = frozenset(keys)

    def __call__(self, batch: M, /) -> M:
        _require_mapping("drop_keys", batch)
        return _rebuild_mapping(batch, [(k, v) for k, v in batch.items() if k not in self.keys])


def select_keys(*keys: Hashable) -> SelectKeys:
    """Return a transform that keeps only ``keys`` of a mapping batch, in the batch's order.

    The result has the batch's mapping type. A missing key raises `KeyError`; a batch that
    is not a mapping raises `TypeError`.

    Examples:
        >>> import helios.core as hlc
        >>> hlc.select_keys("y", "x")({"x": 1, "y": 2, "z": 3})
        {'x': 1, 'y': 2}
    """
    return SelectKeys(keys)


def drop_keys(*keys: Hashable) -> DropKeys:
    """Return a transform that removes ``keys`` (those present) from a mapping batch.

    The result has the batch's mapping type; a batch that is not a mapping raises
    `TypeError`.

    Examples:
        >>> import helios.core as hlc
        >>> hlc.drop_keys("z", "w")({"x": 1, "z": 3})
        {'x': 1}
    """
    return DropKeys(keys)


class _Cast(_LeafwiseTransform):
    __slots__ = ("dtype",)

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        tensor_type = torch.Tensor

        def convert(leaf: Any) -> Any:
            if (
                isinstance(leaf, tensor_type)
                and leaf.dtype is not dtype
                and leaf.is_floating_point()
            ):
                return leaf.to(dtype)
            return leaf

        # Built once: a traversal made per call leaves a self-referencing closure for the
        # garbage collector on every batch.
        self._map = _mapper(convert)

    def __repr__(self) -> str:
        return f"cast({self.dtype})"

    def __reduce__(self) -> tuple[type[_Cast], tuple[torch.dtype]]:
        return (_Cast, (self.dtype,))


def cast(dtype: torch.dtype) -> TreeTransform:
    """Return a transform that converts floating-point tensors to ``dtype``.

    Integer and boolean tensors (labels, indices, masks) and non-tensor leaves are left
    alone.

    Raises:
        TypeError: if ``dtype`` is not a floating-point ``torch.dtype``.

    Examples:
        >>> import torch, helios.core as hlc
        >>> out = hlc.cast(torch.float64)((torch.zeros(1), torch.ones(1, dtype=torch.long)))
        >>> out[0].dtype, out[1].dtype
        (torch.float64, torch.int64)
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"cast expects a floating-point torch.dtype, got {dtype!r}")
    return _Cast(dtype)
