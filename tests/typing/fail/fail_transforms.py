"""Batch transforms that mypy --strict must refuse. Each erroring line ends in `# E: <code>`."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

import helios.core as hlc

Batch = list[torch.Tensor]


def to_dict(batch: Batch, /) -> dict[str, torch.Tensor]:
    """Changes the batch type: not a batch transform."""
    return {str(i): t for i, t in enumerate(batch)}


def first_two(batch: Batch, /) -> Batch:
    return batch[:2]


# Composing a type-changing function where the batch type must be kept.
pipeline: Callable[[Batch], Batch] = hlc.compose(first_two, to_dict)  # E: arg-type
mixed = hlc.compose(hlc.take(2), to_dict)  # E: misc
as_transform: hlc.BatchTransform[Batch] = to_dict  # E: assignment

# A transform for lists used on a dict batch.
batch: dict[str, torch.Tensor] = {"x": torch.ones(1)}
first_two(batch)  # E: arg-type
out: dict[str, torch.Tensor] = hlc.compose(first_two)(batch)  # E: arg-type, assignment

# The ready transforms keep the batch type, so the result cannot be used as another one.
taken: dict[str, torch.Tensor] = hlc.take(2)([torch.ones(1)])  # E: assignment
moved: Batch = hlc.to_device("cpu")(batch)  # E: arg-type
hlc.take(2)(3)  # E: call-overload
hlc.select_keys("x")([torch.ones(1)])  # E: type-var
hlc.drop_keys("x")(batch).append(torch.ones(1))  # E: attr-defined
hlc.cast("float64")  # E: arg-type
hlc.take("2")  # E: arg-type

# take on a named tuple gives a plain tuple, not the same kind.
class Pair(NamedTuple):
    inputs: torch.Tensor
    labels: torch.Tensor


same_pair: Pair = hlc.take(1)(Pair(torch.ones(1), torch.ones(1)))  # E: assignment
