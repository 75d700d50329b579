"""Tests of `helios.optim`: torch's optimizers by name, and your own."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
import torch

import helios.optim as hlo


def test_torch_optimizers_are_registered_under_their_class_names() -> None:
    names = hlo.OPTIMIZER_REGISTRY.names()
    assert {"SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "LBFGS"} <= set(names)
    assert "Optimizer" not in names  # the base class builds nothing
    for name in names:
        factory = hlo.OPTIMIZER_REGISTRY.get(name)
        assert isinstance(factory, type)
        assert issubclass(factory, torch.optim.Optimizer)


def test_create_optimizer_builds_one_over_the_given_parameters() -> None:
    net = torch.nn.Linear(3, 1)
    optimizer = hlo.create_optimizer("SGD", net.parameters(), lr=0.5, momentum=0.9)
    assert isinstance(optimizer, torch.optim.SGD)
    assert optimizer.param_groups[0]["lr"] == 0.5
    assert optimizer.param_groups[0]["momentum"] == 0.9
    assert [p for group in optimizer.param_groups for p in group["params"]] == list(
        net.parameters()
    )


def test_an_unknown_name_lists_the_known_ones() -> None:
    known = r"no optimizer named 'Sgd' is registered; known names:.*'SGD'"
    with pytest.raises(KeyError, match=known):
        hlo.create_optimizer("Sgd", [torch.zeros(1, requires_grad=True)])


def test_a_user_optimizer_registers_and_is_created_by_name() -> None:
    @hlo.OPTIMIZER_REGISTRY
    class HalfStep(torch.optim.SGD):
        def __init__(self, params: Iterable[torch.Tensor], lr: float = 0.1) -> None:
            super().__init__(params, lr=lr / 2)

    try:
        weight = torch.ones(2, requires_grad=True)
        optimizer = hlo.create_optimizer("HalfStep", [weight], lr=1.0)
        torch.autograd.backward(weight.sum())
        optimizer.step()
        assert torch.equal(weight.detach(), torch.full((2,), 0.5))
    finally:
        hlo.OPTIMIZER_REGISTRY._entries.pop("HalfStep")
