"""A Model and a DataModule written by a user, trained with plug-ins, under mypy --strict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, assert_type

import torch
from torch.utils.data import DataLoader, TensorDataset

import helios as hl
import helios.core as hlc
import helios.data as hld
import helios.model as hlm
import helios.plugins as hlp
import helios.trainer as hlt

Batch = list[torch.Tensor]


class Regressor(hlm.Model):
    def __init__(self) -> None:
        super().__init__("regressor")
        self.losses: list[float] = []

    def setup(self, fast_init: bool = False) -> None:
        self.net = torch.nn.Linear(3, 1).to(self.device)
        # Typed as the base class, whose `step` is typed (SGD's own is not, for pyright).
        self.optimizer: torch.optim.Optimizer = torch.optim.SGD(self.net.parameters(), lr=0.1)

    def train(self) -> None:
        self.net.train()

    def eval(self) -> None:
        self.net.eval()

    def train_step(self, batch: Batch, state: hlt.TrainingState) -> None:
        inputs, targets = batch
        loss = torch.nn.functional.mse_loss(self.net(inputs), targets)
        self.optimizer.zero_grad()
        torch.autograd.backward(loss)  # Tensor.backward is untyped in torch's stubs
        self.optimizer.step()
        self.losses.append(loss.item())

    def valid_step(self, batch: Batch, step: int) -> None:
        inputs, targets = batch
        self.metrics["mse"] = torch.nn.functional.mse_loss(self.net(inputs), targets).item()

    def test_step(self, batch: Batch, step: int) -> None:
        self.valid_step(batch, step)

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any], fast_init: bool = False) -> None:
        self.net.load_state_dict(state_dict["net"])

    def have_metrics_improved(self) -> bool:
        return True


class Points(hld.DataModule):
    def setup(self) -> None:
        generator = torch.Generator().manual_seed(0)
        inputs = torch.randn(8, 3, generator=generator)
        self.dataset = TensorDataset(inputs, inputs.sum(dim=1, keepdim=True))

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, ...]]:
        return DataLoader(self.dataset, batch_size=4)

    def valid_dataloader(self) -> DataLoader[Any] | None:
        return self.create_dataloader(self.dataset, batch_size=4)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.dataset, batch_size=8)


model = Regressor()
data = Points()
assert_type(model.save_name, str)
assert_type(model.metrics, dict[str, float])
trainer = hlt.Trainer(
    train_unit=hlt.TrainingUnit.EPOCH,
    total_steps=2,
    valid_frequency=1,
    use_cpu=True,
    random_seed=0,
)
prepare = hlp.BatchPlugin(
    "prepare",
    training=hlc.compose(hlc.to_device("cpu"), hlc.cast(torch.float32)),
    testing=hlc.to_device("cpu"),
)
prepare.configure_trainer(trainer)
assert_type(trainer.fit(model, data), bool)
assert_type(trainer.test(model, data), bool)
assert_type(trainer.state, hlt.TrainingState)
assert_type(model.trainer, hlt.Trainer)
assert_type(model.device, torch.device)
assert_type(trainer.queue is None, bool)
assert_type(data.test_dataloader(), DataLoader[Any])

# The top-level package re-exports the main names.
assert_type(hl.Trainer, type[hlt.Trainer])
assert_type(hl.Model, type[hlm.Model])
assert_type(hl.DataModule, type[hld.DataModule])

# The runtime agrees with the types.
assert trainer.state.global_epoch == 2
assert len(model.losses) == 4
assert "mse" in model.metrics
