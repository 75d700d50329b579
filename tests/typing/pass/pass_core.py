"""The functional core keeps batch types: what goes in comes out, under mypy --strict."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, assert_type

import attrs
import torch

import helios.core as hlc
import helios.plugins as hlp

Batch = list[torch.Tensor]


class Pair(NamedTuple):
    inputs: torch.Tensor
    labels: torch.Tensor


@dataclasses.dataclass(frozen=True)
class Sample:
    image: torch.Tensor
    extras: dict[str, list[torch.Tensor]]


@attrs.frozen
class Record:
    features: tuple[torch.Tensor, ...]
    name: str


x = torch.ones(2)
y = torch.zeros(2, dtype=torch.long)

# -- tree_map: the result has the type of the tree --------------------------------------
nested: dict[str, object] = {"a": [x, (x, None)], "b": "text"}
assert_type(hlc.tree_map(lambda leaf: leaf, nested), dict[str, object])
assert_type(hlc.tree_map(lambda leaf: leaf, Pair(x, y)), Pair)
assert_type(hlc.tree_map(lambda leaf: leaf, Sample(x, {"k": [x]})), Sample)
assert_type(hlc.tree_map(lambda leaf: leaf, Record((x,), "r"), is_leaf=None), Record)
assert_type(hlc.tree_leaves(nested), list[Any])

# -- ready transforms keep the batch type -----------------------------------------------
assert_type(hlc.to_device("cpu")(Pair(x, y)), Pair)
assert_type(hlc.to_device(torch.device("cpu"), non_blocking=False)([x, y]), list[torch.Tensor])
assert_type(hlc.cast(torch.float64)(Sample(x, {})), Sample)
assert_type(hlc.cast(torch.float16)({"x": x}), dict[str, torch.Tensor])

# Built, not annotated: pyright would narrow an annotated ``(x, y)`` to a pair.
row = tuple([x, y])
assert_type(row, tuple[torch.Tensor, ...])
assert_type(hlc.take(1)([x, y]), list[torch.Tensor])
assert_type(hlc.take(1)(row), tuple[torch.Tensor, ...])
assert_type(hlc.take(1)(x), torch.Tensor)
# A named tuple comes back as a plain tuple of its items: typed as one.
assert_type(hlc.take(1)(Pair(x, y)), tuple[torch.Tensor, ...])
assert type(hlc.take(1)(Pair(x, y))) is tuple
taker: hlc.Take = hlc.take(3)
selector: hlc.SelectKeys = hlc.select_keys("x")
dropper: hlc.DropKeys = hlc.drop_keys("x")

plain: dict[str, torch.Tensor] = {"x": x, "y": y}
ordered = collections.OrderedDict(plain)
defaulted: collections.defaultdict[str, list[torch.Tensor]] = collections.defaultdict(list)
assert_type(hlc.select_keys("x")(plain), dict[str, torch.Tensor])
assert_type(hlc.select_keys("x")(ordered), collections.OrderedDict[str, torch.Tensor])
assert_type(hlc.drop_keys("y")(plain), dict[str, torch.Tensor])
assert_type(hlc.drop_keys("y")(defaulted), collections.defaultdict[str, list[torch.Tensor]])

assert_type(hlc.identity(Pair(x, y)), Pair)

# -- the transform protocols ------------------------------------------------------------
tree_transform: hlc.TreeTransform = hlc.to_device("cpu")
assert_type(tree_transform(Pair(x, y)), Pair)
mapping_transform: hlc.BatchTransform[dict[str, torch.Tensor]] = hlc.select_keys("x")
list_transform: hlc.BatchTransform[Batch] = hlc.take(2)
assert_type(list_transform([x, y, x]), list[torch.Tensor])


def first_two(batch: Batch, /) -> Batch:
    return batch[:2]


def normalise(batch: Batch, /) -> Batch:
    return [t / t.abs().sum() if t.is_floating_point() else t for t in batch]


# -- compose: left to right, typed by its arguments -------------------------------------
pipeline = hlc.compose(hlc.to_device("cpu"), first_two, normalise, hlc.cast(torch.float64))
assert_type(pipeline, Callable[[Batch], Batch])
assert_type(pipeline([x, x, x]), list[torch.Tensor])

# Generic transforms alone stay generic under mypy. pyright solves the type variable to
# its bound instead, so there (and portably) the expected type picks the batch type.
generic = hlc.compose(hlc.take(2), hlc.to_device("cpu"))
assert_type(generic([x, y, x]), list[torch.Tensor])  # pyright: ignore[reportAssertTypeFailure]
assert_type(generic(row), tuple[torch.Tensor, ...])  # pyright: ignore[reportAssertTypeFailure]
list_generic: Callable[[Batch], Batch] = hlc.compose(hlc.take(2), hlc.to_device("cpu"))
assert_type(list_generic([x, y, x]), list[torch.Tensor])
mapping_pipeline: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] = hlc.compose(
    hlc.drop_keys("y"), hlc.to_device("cpu")
)
no_steps: Callable[[Batch], Batch] = hlc.compose()
assert_type(hlc.compose()([x, y]), list[torch.Tensor])  # the identity, still generic
nested_pipeline = hlc.compose(pipeline, hlc.compose(first_two, normalise))
assert_type(nested_pipeline, Callable[[Batch], Batch])

# The plug-in that carries a composed transform.
carrier = hlp.BatchPlugin("prepare", training=pipeline, validation=hlc.to_device("cpu"))
assert_type(carrier, hlp.BatchPlugin)
assert_type(carrier.plug_id, str)

# -- the registry: Registry[T].create returns a T ---------------------------------------


class Shape:
    def area(self) -> float:
        return 0.0


SHAPES: hlc.Registry[Shape] = hlc.Registry("shape")


@SHAPES
class Square(Shape):
    def __init__(self, side: float) -> None:
        self.side = side

    def area(self) -> float:
        return self.side**2


@SHAPES.register
class Circle(Shape):
    pass


assert_type(Square, type[Square])  # the decorators hand the class back unchanged
assert_type(SHAPES.create("Square", 2.0), Shape)
assert_type(SHAPES.get("Circle"), Callable[..., Shape])
assert_type(SHAPES.names(), list[str])
assert_type("Square" in SHAPES, bool)
assert SHAPES.create("Square", 2.0).area() == 4.0

# -- the training state is immutable and changed by evolve ------------------------------
state = hlc.TrainingState()
later = attrs.evolve(state, global_iteration=3)
assert_type(later, hlc.TrainingState)
assert_type(later.global_iteration, int)
assert_type(later.average_iter_time, float)
assert_type(hlc.TrainingUnit.parse("epoch"), hlc.TrainingUnit)

# The runtime agrees with the types.
assert pipeline([x, x, x])[0].dtype == torch.float64
assert len(pipeline([x, x, x])) == 2
assert list(mapping_pipeline(plain)) == ["x"]
assert no_steps([x]) == [x]
