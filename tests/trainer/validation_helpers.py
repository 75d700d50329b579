"""Models and data for the validation-sharding tests (importable by worker processes)."""

from __future__ import annotations

from typing import Any

from torch.utils.data import DataLoader

import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel, make_dataset


class ValidationData(ClassifierData):
    """32 validation samples, sharded across ranks or not."""

    def __init__(self, *, shard: bool) -> None:
        super().__init__()
        self.shard = shard

    def valid_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(make_dataset(32, seed=8), batch_size=8, shard=self.shard)


class Counting(ClassifierModel):
    """Counts what validation saw; ``reduce`` combines the counts of every rank."""

    def __init__(self, *, reduce: bool) -> None:
        super().__init__("counting")
        self.reduce = reduce

    def on_validation_start(self, validation_cycle: int) -> None:
        self.counts = {"seen": 0.0, "label_sum": 0.0}

    def valid_step(self, batch: Any, step: int) -> None:
        _, labels = batch
        self.counts["seen"] += labels.numel()
        self.counts["label_sum"] += float(labels.sum())

    def on_validation_end(self, validation_cycle: int) -> None:
        counts = hlt.reduce_metrics(self.counts, op="sum") if self.reduce else self.counts
        self.metrics.update(counts)

    def on_training_end(self) -> None:
        queue = self.trainer.queue
        if queue is not None:
            queue.put({"rank": self.rank, **self.metrics})


def full_label_sum() -> float:
    return float(make_dataset(32, seed=8).tensors[1].sum())
