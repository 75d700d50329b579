"""Tests of `helios.nn`: networks by name."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import helios.nn as hln


def test_a_registered_network_is_created_by_name_with_its_arguments() -> None:
    @hln.NETWORK_REGISTRY.register
    class TwoLayer(nn.Module):
        def __init__(self, width: int, out: int = 1) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Linear(4, width), nn.ReLU(), nn.Linear(width, out))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)  # type: ignore[no-any-return]

    try:
        net = hln.create_network("TwoLayer", 8, out=3)
        assert isinstance(net, TwoLayer)
        assert net(torch.zeros(5, 4)).shape == (5, 3)
    finally:
        hln.NETWORK_REGISTRY._entries.pop("TwoLayer")


def test_an_unknown_network_name_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="no network named 'Missing' is registered"):
        hln.create_network("Missing")
