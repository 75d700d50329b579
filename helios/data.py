"""The data module: where the trainer gets its data loaders; prefetching to a GPU."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sized
from typing import TYPE_CHECKING, Any, Final

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from helios._data_params import DataLoaderParams as DataLoaderParams
from helios._data_params import DatasetSpec as DatasetSpec
from helios._prefetch import LoaderWrapper as LoaderWrapper
from helios._prefetch import Prefetcher as Prefetcher
from helios._prefetch import PrefetchLoader as PrefetchLoader
from helios._prefetch import PrefetchWarning as PrefetchWarning

if TYPE_CHECKING:
    from helios.trainer import Trainer

__all__ = [
    "DataLoaderParams",
    "DataModule",
    "DatasetSpec",
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
    so that all ranks see the same number of samples, as `DistributedSampler` does —
    unless ``split`` is false: then every rank sees all of the data.

    Args:
        data_source: The dataset (or its length).
        shuffle: Draw a new permutation every epoch.
        seed: Seed of the permutations.
        drop_last: With several replicas, drop the tail instead of padding.
        split: Split the data across the ranks of a distributed run (`shard` does
            nothing when false).
    """

    def __init__(
        self,
        data_source: Sized | int,
        *,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        split: bool = True,
    ) -> None:
        self.size = data_source if isinstance(data_source, int) else len(data_source)
        self.split = split
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.epoch = 0
        self.start = 0
        self.rank = 0
        self.num_replicas = 1

    def shard(self, rank: int, num_replicas: int) -> None:
        """Make this sampler yield only the share of ``rank`` among ``num_replicas``
        (nothing changes for a sampler made with ``split=False``)."""
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank must be in [0, {num_replicas}), got {rank}")
        if not self.split:
            return
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
    a distributed one (a loader that already has a `DistributedSampler` is kept). A
    loader made with ``create_dataloader(..., shard=False)`` is not sharded: every rank
    sees all of its data.

    The Helios 1.x spelling works too: in `setup`, assign
    ``self._create_dataset(dataset, params)`` to ``self._train_dataset``,
    ``self._valid_dataset`` or ``self._test_dataset``, and the default loader methods
    build those loaders with `create_dataloader`.
    """

    # Set in `setup` by the Helios 1.x spelling (class-level, so that a subclass that
    # does not call ``super().__init__()`` still has them).
    _train_dataset: DatasetSpec | None = None
    _valid_dataset: DatasetSpec | None = None
    _test_dataset: DatasetSpec | None = None

    def __init__(self) -> None:
        self._trainer: Trainer | None = None
        self.is_distributed = False
        self.rank = 0
        self.world_size = 1

    @property
    def trainer(self) -> Trainer:
        """The trainer using the data module, set before `prepare_data` and `setup`.

        Through it the data module reaches the plug-ins (``trainer.plugins``), as the
        model does.

        Raises:
            RuntimeError: before the data module is handed to `Trainer.fit` /
                `Trainer.test`.
        """
        trainer: Trainer | None = self.__dict__.get("_trainer")
        if trainer is None:
            raise RuntimeError(
                f"data module {type(self).__qualname__} has no trainer yet; it gets one when "
                "passed to Trainer.fit or Trainer.test, before prepare_data() and setup()"
            )
        return trainer

    @trainer.setter
    def trainer(self, trainer: Trainer) -> None:
        self._trainer = trainer

    def prepare_data(self) -> None:
        """Download or build data (called once, before `setup`)."""

    def setup(self) -> None:
        """Create the datasets."""

    def train_dataloader(self) -> DataLoader[Any] | None:
        """The training loader, or ``None``.

        By default, the loader of ``self._train_dataset`` if `setup` set it.
        """
        return self._loader_of(self._train_dataset, "_train_dataset")

    def valid_dataloader(self) -> DataLoader[Any] | None:
        """The validation loader, or ``None``.

        By default, the loader of ``self._valid_dataset`` if `setup` set it.
        """
        return self._loader_of(self._valid_dataset, "_valid_dataset")

    def test_dataloader(self) -> DataLoader[Any] | None:
        """The testing loader, or ``None``.

        By default, the loader of ``self._test_dataset`` if `setup` set it.
        """
        return self._loader_of(self._test_dataset, "_test_dataset")

    def teardown(self) -> None:
        """Release what `setup` made."""

    def _create_dataset(
        self, dataset: Dataset[Any], params: DataLoaderParams | Mapping[str, Any]
    ) -> DatasetSpec:
        """Pair ``dataset`` with a copy of ``params`` (as Helios 1.x did).

        Assign the result to ``self._train_dataset``, ``self._valid_dataset`` or
        ``self._test_dataset`` in `setup`.

        Args:
            dataset: A map-style dataset.
            params: A `DataLoaderParams`, or a mapping of its fields.

        Raises:
            ValueError: for an unknown or invalid parameter.
        """
        if isinstance(params, DataLoaderParams):
            return DatasetSpec(dataset, params.copy())
        return DatasetSpec(dataset, DataLoaderParams.from_dict(params))

    def _loader_of(self, spec: object, attribute: str) -> DataLoader[Any] | None:
        if spec is None:
            return None
        if not isinstance(spec, DatasetSpec):
            raise TypeError(
                f"{type(self).__qualname__}.{attribute} must be made with "
                f"self._create_dataset(dataset, params), got {spec!r}"
            )
        params = spec.params
        return self.create_dataloader(
            spec.dataset,
            batch_size=params.batch_size,
            shuffle=params.shuffle,
            drop_last=params.drop_last,
            seed=params.random_seed,
            num_workers=0 if params.debug_mode else params.num_workers,
            pin_memory=params.pin_memory,
            collate_fn=params.collate_fn,
            shard=params.is_distributed is not False,
        )

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
        shard: bool = True,
    ) -> DataLoader[Any]:
        """Make a loader that resumes mid-epoch exactly and shards itself per rank.

        In a distributed run each rank gets its share of the data (``shard=True``), so
        metrics computed on a validation loader are per-rank values: combine them with
        `helios.trainer.reduce_metrics`. With ``shard=False`` every rank sees all of the
        data instead: each computes the metric of the whole set by itself (no
        combining, at the cost of every rank doing all of the work) — Helios 1.x's
        ``is_distributed=False``.

        Args:
            dataset: A map-style dataset.
            batch_size: Samples per batch.
            shuffle: A new (seeded) order every epoch.
            drop_last: Drop the last incomplete batch.
            seed: Seed of the order; the trainer's ``random_seed`` replaces it when set.
            num_workers: Loader worker processes.
            pin_memory: Pin batches (for fast asynchronous copies to a GPU).
            collate_fn: How samples become a batch.
            shard: Split the data across the ranks of a distributed run.
        """
        if not isinstance(dataset, Sized):
            raise TypeError("create_dataloader needs a map-style dataset with a length")
        sampler = ResumableSampler(
            dataset, shuffle=shuffle, seed=seed, drop_last=drop_last, split=shard
        )
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            num_workers=num_workers,
            pin_memory=pin_memory,
            collate_fn=collate_fn,
        )


#: The public members of `DataModule`: the hooks the trainer calls and its tools.
DATA_HOOKS: Final = frozenset(name for name in vars(DataModule) if not name.startswith("_"))
