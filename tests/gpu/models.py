"""Data modules, models and plug-ins shared by the GPU tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data import DataLoader, Dataset

import helios.core as hlc
import helios.data as hld
import helios.model as hlm
import helios.plugins as hlp
from helios.core import TrainingState
from tests.trainer.helpers import ClassifierData, ClassifierModel


class PinnedData(ClassifierData):
    """`ClassifierData` whose loaders pin their batches (or not, with ``pin=False``)."""

    def __init__(self, size: int = 96, batch_size: int = 8, *, pin: bool = True) -> None:
        super().__init__(size, batch_size)
        self.pin = pin

    def train_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(
            self.train_set, batch_size=self.batch_size, shuffle=True, pin_memory=self.pin
        )

    def valid_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.valid_set, batch_size=16, pin_memory=self.pin)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.valid_set, batch_size=16, pin_memory=self.pin)


class RecordingClassifier(ClassifierModel):
    """`ClassifierModel` without dropout (CPU and GPU draw different random numbers),
    recording on the CPU the labels of every batch and the devices its tensors were on."""

    def __init__(self, save_name: str = "classifier") -> None:
        super().__init__(save_name, dropout=0.0)
        self.labels: list[torch.Tensor] = []
        self.devices: set[torch.device] = set()

    def train_step(self, batch: Any, state: TrainingState) -> None:
        inputs, labels = batch
        self.devices.update((inputs.device, labels.device))
        self.labels.append(labels.cpu())
        super().train_step(batch, state)


def cpu_weights(model: ClassifierModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.plain_net.state_dict().items()}


# -- mixed data: the lengths of padded sequences must stay on the CPU ---------------------


class Sequences(Dataset[dict[str, Any]]):
    """Token sequences of different lengths, padded to one width, with a label each."""

    def __init__(self, size: int, seed: int = 5, width: int = 7) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.lengths = torch.randint(1, width + 1, (size,), generator=generator)
        self.tokens = torch.randn(size, width, 4, generator=generator)
        for row, length in enumerate(self.lengths.tolist()):
            self.tokens[row, length:] = 0.0
        self.labels = (self.tokens.sum(dim=(1, 2)) > 0).long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {
            "tokens": self.tokens[index],
            "lengths": self.lengths[index],
            "labels": self.labels[index],
            "id": f"sample-{index}",
        }


class SequenceData(hld.DataModule):
    def __init__(self, *, pin: bool = True) -> None:
        super().__init__()
        self.pin = pin

    def setup(self) -> None:
        self.train_set = Sequences(48)

    def train_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(
            self.train_set, batch_size=8, shuffle=True, pin_memory=self.pin
        )


class KeepLengthsOnHost(hlp.DevicePlugin):
    """Moves every tensor but ``lengths``, which `pack_padded_sequence` wants on the CPU."""

    def _move_collection_to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        move = hlc.to_device(self.target_device)
        return {key: value if key == "lengths" else move(value) for key, value in batch.items()}


class SequenceModel(hlm.Model):
    """A GRU over packed sequences: a model that needs mixed CPU and GPU data."""

    def __init__(self) -> None:
        super().__init__("sequences")
        self.length_devices: set[torch.device] = set()
        self.ids: list[str] = []

    def setup(self, fast_init: bool = False) -> None:
        torch.manual_seed(99)
        self.gru = torch.nn.GRU(4, 8, batch_first=True).to(self.device)
        self.head = torch.nn.Linear(8, 2).to(self.device)
        params = [*self.gru.parameters(), *self.head.parameters()]
        self.optimizer = torch.optim.SGD(params, lr=0.1)

    def train_step(self, batch: dict[str, Any], state: TrainingState) -> None:
        lengths = batch["lengths"]
        self.length_devices.add(lengths.device)
        self.ids.extend(batch["id"])
        packed = pack_padded_sequence(
            batch["tokens"], lengths, batch_first=True, enforce_sorted=False
        )
        _, hidden = self.gru(packed)
        loss = torch.nn.functional.cross_entropy(self.head(hidden[-1]), batch["labels"])
        self.optimizer.zero_grad()
        torch.autograd.backward(loss)
        self.optimizer.step()

    def weights(self) -> dict[str, torch.Tensor]:
        return {
            **{f"gru.{k}": v.detach().cpu() for k, v in self.gru.state_dict().items()},
            **{f"head.{k}": v.detach().cpu() for k, v in self.head.state_dict().items()},
        }

    def state_dict(self) -> dict[str, Any]:
        return {"gru": self.gru.state_dict(), "head": self.head.state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any], fast_init: bool = False) -> None:
        self.gru.load_state_dict(state_dict["gru"])
        self.head.load_state_dict(state_dict["head"])
