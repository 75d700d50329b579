"""User code that tests its batch transforms with `helios.testing`."""

from __future__ import annotations

from typing import assert_type

import torch

import helios.core as hlc
from helios.testing import assert_tree_equal


class Crop:
    """A user container: the image is a child, the box is kept as it is."""

    def __init__(self, image: torch.Tensor, box: tuple[int, int]) -> None:
        self.image = image
        self.box = box


def flatten_crop(crop: Crop) -> tuple[tuple[torch.Tensor], tuple[int, int]]:
    return (crop.image,), crop.box


hlc.register_container(Crop, flatten_crop, lambda box, kids: Crop(kids[0], box))
CONTAINERS = {Crop: flatten_crop}

batch = {"crop": Crop(torch.ones(2), (0, 2)), "label": torch.tensor([1])}
expected = {"crop": Crop(torch.ones(2, dtype=torch.float64), (0, 2)), "label": torch.tensor([1])}
assert_type(
    assert_tree_equal(hlc.cast(torch.float64)(batch), expected, containers=CONTAINERS), None
)
assert_tree_equal([torch.zeros(1)], [torch.zeros(1)], path="batch")

message = ""
try:
    assert_tree_equal(batch, expected, containers=CONTAINERS)
except AssertionError as error:
    message = str(error)
assert message == "at tree['crop'][0]: tensor torch.float32@cpu != torch.float64@cpu", message
