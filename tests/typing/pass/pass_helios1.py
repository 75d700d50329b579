"""Helios 1.x spellings that helios keeps, under strict type checking: the optimizer and
network registries, get_from_optional, the root logger, DataLoaderParams with
_create_dataset, and a model whose load_state_dict takes a dict."""

from __future__ import annotations

import logging
from typing import Any, assert_type

import torch
from torch.utils.data import DataLoader, TensorDataset

import helios.core as hlc
import helios.data as hld
import helios.model as hlm
import helios.nn as hln
import helios.optim as hlo
from helios.core import logging as hl_logging


@hln.NETWORK_REGISTRY.register
class Pass1xNet(torch.nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(width, 2)


class OneXModel(hlm.Model):
    def __init__(self) -> None:
        super().__init__("one_x")
        self.net: torch.nn.Module | None = None

    def setup(self, fast_init: bool = False) -> None:
        self.net = hln.create_network("Pass1xNet", width=3)
        self.optimizer = hlo.create_optimizer("SGD", self.net.parameters(), lr=0.1)

    # Declared as Helios 1.x declared it: a dict, not a Mapping.
    def load_state_dict(self, state_dict: dict[str, Any], fast_init: bool = False) -> None:
        hlc.get_from_optional(self.net, what="the network").load_state_dict(state_dict["net"])


class OneXData(hld.DataModule):
    def setup(self) -> None:
        params = hld.DataLoaderParams()
        params.batch_size = 2
        params.is_distributed = False
        dataset = TensorDataset(torch.zeros(4, 3), torch.zeros(4))
        self._train_dataset = self._create_dataset(dataset, params)
        assert_type(self._train_dataset, hld.DatasetSpec)
        self._valid_dataset = self._create_dataset(dataset, {"batch_size": 4})


model = OneXModel()
model.setup()
assert_type(model.optimizer, torch.optim.Optimizer)
assert_type(hln.create_network("Pass1xNet"), torch.nn.Module)
assert_type(hlc.get_from_optional(model.net), torch.nn.Module)
assert_type(hl_logging.get_root_logger(), logging.Logger)

data = OneXData()
data.setup()
assert_type(data.train_dataloader(), DataLoader[Any] | None)
loader = data.valid_dataloader()
assert loader is not None
assert loader.batch_size == 4
