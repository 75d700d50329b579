"""What the scenarios train: a small classifier on seeded random data.

Its dropout draws from the random generators on every step, so a resumed run ends with
the uninterrupted run's weights only if the checkpoint restored the generators too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import helios.data as hld
import helios.model as hlm
from helios.core import TrainingState


class Classifier(hlm.Model):
    """8 features -> 16 hidden units (ReLU, dropout) -> 3 classes; SGD with momentum,
    one optimiser step a batch."""

    def __init__(self, save_name: str, *, dropout: float = 0.2) -> None:
        super().__init__(save_name)
        self.dropout = dropout
        self.correct = 0
        self.seen = 0

    def setup(self, fast_init: bool = False) -> None:
        torch.manual_seed(1234)
        layers = [torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Dropout(self.dropout)]
        self.plain_net = torch.nn.Sequential(*layers, torch.nn.Linear(16, 3)).to(self.device)
        self.net = self.wrap_distributed(self.plain_net)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1, momentum=0.9)

    def train(self) -> None:
        self.net.train()

    def eval(self) -> None:
        self.net.eval()

    def train_step(self, batch: Any, state: TrainingState) -> None:
        inputs, labels = batch
        torch.autograd.backward(torch.nn.functional.cross_entropy(self.net(inputs), labels))
        self.optimizer.step()
        self.optimizer.zero_grad()

    def on_validation_start(self, validation_cycle: int) -> None:
        self.correct = self.seen = 0

    def valid_step(self, batch: Any, step: int) -> None:
        inputs, labels = batch
        self.correct += int((self.net(inputs).argmax(dim=1) == labels).sum())
        self.seen += int(labels.numel())

    def on_validation_end(self, validation_cycle: int) -> None:
        self.metrics["accuracy"] = self.correct / max(self.seen, 1)

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.plain_net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any], fast_init: bool = False) -> None:
        self.plain_net.load_state_dict(state_dict["net"])
        if not fast_init:
            self.optimizer.load_state_dict(state_dict["optimizer"])


def weights(model: Classifier) -> dict[str, torch.Tensor]:
    """A copy of the model's weights, as they are now."""
    return {key: value.detach().clone() for key, value in model.plain_net.state_dict().items()}


def _samples(size: int, seed: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, 8, generator=generator)
    labels = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0.5).long()
    return TensorDataset(inputs, labels)


class ClassifierData(hld.DataModule):
    """``size`` training samples in shuffled batches of ``batch_size`` and 32 validation
    samples, all through `DataModule.create_dataloader` (resumable, sharded per rank)."""

    def __init__(self, size: int, batch_size: int) -> None:
        super().__init__()
        self.size = size
        self.batch_size = batch_size

    def setup(self) -> None:
        self.train_set = _samples(self.size, seed=7)
        self.valid_set = _samples(32, seed=8)

    def train_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def valid_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.valid_set, batch_size=16)
