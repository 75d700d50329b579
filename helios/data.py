"""The data module: where the trainer gets its data loaders; prefetching to a GPU."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sized
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from helios._prefetch import LoaderWrapper as LoaderWrapper
from helios._prefetch import Prefetcher as Prefetcher
from helios._prefetch import PrefetchLoader as PrefetchLoader
from helios._prefetch import PrefetchWarning as PrefetchWarning

__all__ = [
    "DataModule",
    "LoaderWrapper",
    "PrefetchLoader",
    "PrefetchWarning",
    "Prefetcher",
    "ResumableSampler",
]


class ResumableSampler(Sampler[int]):
    """Yields dataset indices in a reproducible order that can resume mid-epoch.

    The order of epoch ``e`` depends only on ``seed`` and ``e``. With several processes
    each rank takes every ``num_replicas``-th index (the trainer sets the shard), padding
    so that all ranks see the same number of samples, as `DistributedSampler` does.

    Args:
        data_source: The dataset (or its length).
        shuffle: Draw a new permutation every epoch.
        seed: Seed of the permutations.
        drop_last: With several replicas, drop the tail instead of padding.
    """

    def __init__(
        self,
        data_source: Sized | int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        self.size = data_source if isinstance(data_source, int) else len(data_source)
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.start = 0
        self.rank = 0
        self.num_replicas = 1

    def shard(self, rank: int, num_replicas: int) -> None:
        """Make this sampler yield only the share of ``rank`` among ``num_replicas``."""
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        self.rank = rank
        self.num_replicas = num_replicas

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch`` and start from its beginning."""
        self.epoch = epoch
        self.start = 0

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples (of this rank's share) of the current epoch."""
        if start < 0:
            raise ValueError(f"start must be >= 0, got {start}")
        self.start = start

    def _per_rank(self) -> int:
        if self.drop_last:
            return self.size // self.num_replicas
        return -(-self.size // self.num_replicas)

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            generator = torch.Generator()
            generator.manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = list(range(self.size))
        total = self._per_rank() * self.num_replicas
        if total > len(order):
            order += (order * (total // max(len(order), 1) + 1))[: total - len(order)]
        order = order[:total]
        mine = order[self.rank : total : self.num_replicas]
        return iter(mine[self.start :])

    def __len__(self) -> int:
        return max(self._per_rank() - self.start, 0)


class DataModule:
    """Base class for data modules; subclass it and return loaders.

    The trainer calls `prepare_data` and `setup` before training or testing, asks for the
    loaders, and calls `teardown` at the end. A loader may be any `DataLoader`. Those
    made with `create_dataloader` resume mid-epoch exactly and are sharded per rank; for
    other loaders a resumed run skips the batches already seen, which gives the same
    batches when the loader's order is deterministic.

    In distributed runs the trainer shards every loader: a plain sampler is replaced by
    a distributed one (a loader that already has a `DistributedSampler` is kept).
    """

    def __init__(self) -> None:
        self.is_distributed = False
        self.rank = 0
        self.world_size = 1

    def prepare_data(self) -> None:
        """Download or build data (called once, before `setup`)."""

    def setup(self) -> None:
        """Create the datasets."""

    def train_dataloader(self) -> DataLoader[Any] | None:
        """The training loader, or ``None``."""
        return None

    def valid_dataloader(self) -> DataLoader[Any] | None:
        """The validation loader, or ``None``."""
        return None

    def test_dataloader(self) -> DataLoader[Any] | None:
        """The testing loader, or ``None``."""
        return None

    def teardown(self) -> None:
        """Release what `setup` made."""

    @staticmethod
    def create_dataloader(
        dataset: Dataset[Any],
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        num_workers: int = 0,
        pin_memory: bool = False,
        collate_fn: Callable[[list[Any]], Any] | None = None,
    ) -> DataLoader[Any]:
        """Make a loader that resumes mid-epoch exactly and shards itself per rank.

        Args:
            dataset: A map-style dataset.
            batch_size: Samples per batch.
            shuffle: A new (seeded) order every epoch.
            drop_last: Drop the last incomplete batch.
            seed: Seed of the order; the trainer's ``random_seed`` replaces it when set.
            num_workers: Loader worker processes.
            pin_memory: Pin batches (for fast asynchronous copies to a GPU).
            collate_fn: How samples become a batch.
        """
        if not isinstance(dataset, Sized):
            raise TypeError("create_dataloader needs a map-style dataset with a length")
        sampler = ResumableSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=pin_memory,
            collate_fn=collate_fn,
        )
