"""Prefetching keeps the batch's type: loaders, prefetchers and wrappers are generic."""

from __future__ import annotations

import warnings
from typing import assert_type

import torch
from torch.utils.data import DataLoader, Dataset

import helios.data as hld
import helios.plugins as hlp
import helios.trainer as hlt

Batch = dict[str, torch.Tensor]


class Batches(Dataset[Batch]):
    def __len__(self) -> int:
        return 3

    def __getitem__(self, index: int) -> Batch:
        return {"x": torch.full((2,), float(index))}


def doubled(batch: Batch) -> Batch:
    return {key: value * 2 for key, value in batch.items()}


loader: DataLoader[Batch] = DataLoader(Batches(), batch_size=None)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", hld.PrefetchWarning)  # on the CPU nothing overlaps
    ahead = hld.Prefetcher([{"x": torch.ones(1)}], "cpu", move=doubled)
    view = hld.PrefetchLoader(loader, torch.device("cpu"))
assert_type(ahead, hld.Prefetcher[Batch])
for batch in ahead:
    assert_type(batch, Batch)
assert_type(view, hld.PrefetchLoader[Batch])
assert_type(view.loader, DataLoader[Batch])
for item in view:
    assert_type(item, Batch)

plugin = hlp.DevicePlugin(prefetch=True)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", hld.PrefetchWarning)  # the CPU again
    assert_type(plugin.wrap_loader(loader), DataLoader[Batch])
wrapper: hld.LoaderWrapper = plugin.wrap_loader
trainer = hlt.Trainer(use_cpu=True)
trainer.set_loader_wrapper("prefetch", wrapper)
trainer.set_loader_wrapper("prefetch", None)
