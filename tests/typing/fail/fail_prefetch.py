"""Prefetching code that mypy --strict must refuse. Each erroring line ends in `# E: <code>`."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

import helios.data as hld
import helios.trainer as hlt

Batch = list[torch.Tensor]
batches: list[Batch] = [[torch.ones(1)]]


def count(batch: Batch) -> int:
    return len(batch)


def not_a_wrapper(loader: DataLoader[Batch]) -> list[Batch]:
    return list(loader)


# A move must return a batch of the same type.
hld.Prefetcher(batches, "cpu", move=count)  # E: arg-type
# Only DataLoaders can be viewed as one.
hld.PrefetchLoader(batches, "cpu")  # E: arg-type
# A loader wrapper returns a loader.
hlt.Trainer().set_loader_wrapper("list", not_a_wrapper)  # E: arg-type
