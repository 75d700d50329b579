"""Models, data modules and plug-ins shared by the trainer tests (importable by workers)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

import helios.data as hld
import helios.model as hlm
import helios.plugins as hlp
import helios.trainer as hlt
from helios.core import TrainingState

Events = list[tuple[str, str]]


class ClassifierModel(hlm.Model):
    """A small classifier with dropout (so RNG state matters for exact resumption)."""

    def __init__(
        self, save_name: str = "classifier", *, lr: float = 0.1, dropout: float = 0.2
    ) -> None:
        super().__init__(save_name)
        self.lr = lr
        self.dropout = dropout
        self.losses: list[float] = []
        self.seen: list[torch.Tensor] = []
        self.record_batches = False

    def setup(self, fast_init: bool = False) -> None:
        torch.manual_seed(1234)
        self.plain_net = torch.nn.Sequential(
            torch.nn.Linear(8, 16),
            torch.nn.ReLU(),
            torch.nn.Dropout(self.dropout),
            torch.nn.Linear(16, 3),
        ).to(self.device)
        self.net = self.wrap_distributed(self.plain_net)
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=self.lr, momentum=0.9)
        self.correct = 0
        self.total = 0

    def train(self) -> None:
        self.net.train()

    def eval(self) -> None:
        self.net.eval()

    def train_step(self, batch: Any, state: TrainingState) -> None:
        inputs, labels = batch
        if self.record_batches:
            self.seen.append(labels.clone())
        loss = torch.nn.functional.cross_entropy(self.net(inputs), labels)
        loss = loss / self.trainer.config.accumulation_steps
        torch.autograd.backward(loss)
        if self.trainer.is_accumulation_boundary(state):
            self.optimizer.step()
            self.optimizer.zero_grad()
        self.losses.append(float(loss.item()))

    def on_validation_start(self, validation_cycle: int) -> None:
        self.correct = 0
        self.total = 0

    def valid_step(self, batch: Any, step: int) -> None:
        inputs, labels = batch
        predicted = self.net(inputs).argmax(dim=1)
        self.correct += int((predicted == labels).sum())
        self.total += int(labels.numel())

    def on_validation_end(self, validation_cycle: int) -> None:
        self.metrics["accuracy"] = self.correct / max(self.total, 1)

    def running_loss(self) -> float | None:
        return self.losses[-1] if self.losses else None

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.plain_net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any], fast_init: bool = False) -> None:
        self.plain_net.load_state_dict(state_dict["net"])
        if not fast_init:
            self.optimizer.load_state_dict(state_dict["optimizer"])


def make_dataset(size: int = 96, seed: int = 7) -> TensorDataset:
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, 8, generator=generator)
    labels = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0.5).long()
    return TensorDataset(inputs, labels)


class ClassifierData(hld.DataModule):
    """Random classification data; ``plain`` uses an ordinary (non-resumable) loader."""

    def __init__(self, size: int = 96, batch_size: int = 8, *, plain: bool = False) -> None:
        super().__init__()
        self.size = size
        self.batch_size = batch_size
        self.plain = plain

    def setup(self) -> None:
        self.train_set = make_dataset(self.size, seed=7)
        self.valid_set = make_dataset(32, seed=8)

    def train_dataloader(self) -> DataLoader[Any]:
        if self.plain:
            return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=False)
        return self.create_dataloader(self.train_set, batch_size=self.batch_size, shuffle=True)

    def valid_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.valid_set, batch_size=16)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.valid_set, batch_size=16)


def weights(model: ClassifierModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.plain_net.state_dict().items()}


class ReportingClassifier(ClassifierModel):
    """Sends what a distributed run produced to the main process through the queue.

    ``stop_rank`` / ``stop_at``: that rank alone asks to stop after that many batches.
    ``fail_rank`` / ``fail_at``: that rank raises (or, with ``kill``, SIGKILLs itself).
    """

    def __init__(
        self,
        save_name: str = "reporting",
        *,
        dropout: float = 0.0,
        every_rank: bool = False,
        stop_rank: int | None = None,
        stop_at: int = 0,
        fail_rank: int | None = None,
        fail_at: int = 0,
        kill: bool = False,
    ) -> None:
        super().__init__(save_name, dropout=dropout)
        self.every_rank = every_rank
        self.stop_rank = stop_rank
        self.stop_at = stop_at
        self.fail_rank = fail_rank
        self.fail_at = fail_at
        self.kill = kill
        self.batches = 0

    def train_step(self, batch: Any, state: TrainingState) -> None:
        self.batches += 1
        if self.rank == self.fail_rank and state.global_iteration >= self.fail_at:
            if self.kill:
                import os
                import signal

                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"rank {self.rank} failed on purpose")
        super().train_step(batch, state)

    def should_training_stop(self) -> bool:
        return self.rank == self.stop_rank and self.batches >= self.stop_at

    def on_training_end(self) -> None:
        queue = self.trainer.queue
        if queue is not None and (self.rank == 0 or self.every_rank):
            state = self.trainer.state
            queue.put(
                {
                    "rank": self.rank,
                    "weights": weights(self),
                    "global_iteration": state.global_iteration,
                    "batches": self.batches,
                    "world_size": self.trainer.world_size,
                    "device": str(self.device),
                }
            )


# -- hook recording -------------------------------------------------------------------


class RecordingModel(hlm.Model):
    """Records every hook; can ask to stop at a given batch or never improve."""

    def __init__(
        self, events: Events, *, stop_at: int | None = None, improves: bool = True
    ) -> None:
        super().__init__("recording")
        self.events = events
        self.stop_at = stop_at
        self.improves = improves
        self.batches = 0
        self.received: list[Any] = []

    def _log(self, name: str) -> None:
        self.events.append(("model", name))

    def setup(self, fast_init: bool = False) -> None:
        self._log("setup")

    def on_training_start(self) -> None:
        self._log("on_training_start")

    def on_training_epoch_start(self, current_epoch: int) -> None:
        self._log("on_training_epoch_start")

    def on_training_batch_start(self, state: TrainingState) -> None:
        self._log("on_training_batch_start")

    def train_step(self, batch: Any, state: TrainingState) -> None:
        self.batches += 1
        self.received.append(batch)
        self._log("train_step")

    def on_training_batch_end(self, state: TrainingState, should_log: bool = False) -> None:
        self._log("on_training_batch_end")

    def on_training_epoch_end(self, current_epoch: int) -> None:
        self._log("on_training_epoch_end")

    def on_training_end(self) -> None:
        self._log("on_training_end")

    def on_validation_start(self, validation_cycle: int) -> None:
        self._log("on_validation_start")

    def valid_step(self, batch: Any, step: int) -> None:
        self._log("valid_step")

    def on_validation_end(self, validation_cycle: int) -> None:
        self._log("on_validation_end")

    def have_metrics_improved(self) -> bool:
        return self.improves

    def should_training_stop(self) -> bool:
        self._log("should_training_stop")
        return self.stop_at is not None and self.batches >= self.stop_at

    def on_testing_start(self) -> None:
        self._log("on_testing_start")

    def test_step(self, batch: Any, step: int) -> None:
        self._log("test_step")

    def on_testing_end(self) -> None:
        self._log("on_testing_end")


class RecordingPlugin(hlp.Plugin):
    """An explicit plug-in that records its hooks and tags training batches."""

    def __init__(
        self,
        plug_id: str,
        events: Events,
        *,
        claim_batches: bool = False,
        stop_after: int | None = None,
    ) -> None:
        super().__init__(plug_id)
        self.events = events
        self.stop_after = stop_after
        self.asked = 0
        self.unique_overrides.training_batch = claim_batches
        self.unique_overrides.validation_batch = claim_batches
        self.unique_overrides.testing_batch = claim_batches
        self.unique_overrides.should_training_stop = stop_after is not None

    def _log(self, name: str) -> None:
        self.events.append((self.plug_id, name))

    def setup(self) -> None:
        self._log("setup")

    def on_training_start(self) -> None:
        self._log("on_training_start")

    def on_training_end(self) -> None:
        self._log("on_training_end")

    def on_validation_start(self, validation_cycle: int, /) -> None:
        self._log("on_validation_start")

    def on_validation_end(self, validation_cycle: int, /) -> None:
        self._log("on_validation_end")

    def on_testing_start(self) -> None:
        self._log("on_testing_start")

    def on_testing_end(self) -> None:
        self._log("on_testing_end")

    @hlp.pass_through
    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        self._log("process_training_batch")
        return ("processed", batch)

    @hlp.pass_through
    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        self._log("process_validation_batch")
        return ("processed", batch)

    @hlp.pass_through
    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        self._log("process_testing_batch")
        return ("processed", batch)

    @hlp.pass_through
    def should_training_stop(self) -> bool:
        self._log("should_training_stop")
        self.asked += 1
        return self.stop_after is not None and self.asked >= self.stop_after


class StructuralRecordingPlugin:
    """A plug-in that inherits nothing: it provides every protocol member itself."""

    trainer: hlt.Trainer
    device: torch.device
    rank: int
    is_distributed: bool
    map_loc: hlp.MapLocation

    def __init__(self, plug_id: str, events: Events) -> None:
        self._plug_id = plug_id
        self.events = events
        self.unique_overrides = hlp.UniquePluginOverrides()

    @property
    def plug_id(self) -> str:
        return self._plug_id

    def _log(self, name: str) -> None:
        self.events.append((self._plug_id, name))

    def configure_trainer(self, trainer: hlt.Trainer, /) -> None:
        trainer.register_plugin(self)

    def configure_model(self, model: hlm.Model, /) -> None:
        pass

    def setup(self) -> None:
        self._log("setup")

    def on_training_start(self) -> None:
        self._log("on_training_start")

    def on_training_end(self) -> None:
        self._log("on_training_end")

    def on_validation_start(self, validation_cycle: int, /) -> None:
        self._log("on_validation_start")

    def on_validation_end(self, validation_cycle: int, /) -> None:
        self._log("on_validation_end")

    def on_testing_start(self) -> None:
        self._log("on_testing_start")

    def on_testing_end(self) -> None:
        self._log("on_testing_end")

    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        raise AssertionError("not claimed: must never be called")

    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        raise AssertionError("not claimed: must never be called")

    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        raise AssertionError("not claimed: must never be called")

    def should_training_stop(self) -> bool:
        raise AssertionError("not claimed: must never be called")

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None:
        pass


class Integers(Dataset[int]):
    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self.size:
            raise IndexError(index)
        return index


class IntData(hld.DataModule):
    """Batches of integers 0..size-1 (batch size 1), for order tests."""

    def __init__(self, size: int, valid_size: int = 2) -> None:
        super().__init__()
        self.size = size
        self.valid_size = valid_size

    def train_dataloader(self) -> DataLoader[Any]:
        return DataLoader(Integers(self.size), batch_size=1)

    def valid_dataloader(self) -> DataLoader[Any]:
        return DataLoader(Integers(self.valid_size), batch_size=1)

    def test_dataloader(self) -> DataLoader[Any]:
        return DataLoader(Integers(self.valid_size), batch_size=1)
