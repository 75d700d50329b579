"""Helios 1.x's description of a data loader: a parameter record, and a dataset paired
with one. `helios.data.DataModule` turns the pairs into loaders."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from torch.utils.data import Dataset

from helios.core._checks import flag, non_negative_int, optional_flag, positive_int

__all__ = ["DataLoaderParams", "DatasetSpec"]


def _optional_callable(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise ValueError(f"{attribute.name} must be a function or None, got {value!r}")


@attrs.define(kw_only=True)
class DataLoaderParams:
    """How to load one split of the data, set field by field as in Helios 1.x.

    Each assignment is checked at once (a ``ValueError`` names the field). Pass the
    record with its dataset to `helios.data.DataModule._create_dataset`, which keeps a
    copy: the same record can be changed and passed again for the next split.

    Attributes:
        batch_size: Samples per batch.
        shuffle: A new (seeded) order every epoch.
        num_workers: Loader worker processes.
        pin_memory: Pin batches for fast copies to a GPU (Helios 1.x pinned by default;
            here it is off unless asked for, as in `DataLoader`).
        drop_last: Drop the last incomplete batch.
        random_seed: Seed of the order; the trainer's ``random_seed`` replaces it when set.
        debug_mode: Load in the main process (``num_workers`` is then ignored).
        is_distributed: ``False``: every rank of a distributed run sees all of the data
            (``create_dataloader(..., shard=False)``), as for a validation set whose
            metric rank 0 computes alone. ``None`` or ``True``: each rank gets its shard.
        collate_fn: How samples become a batch (``None``: torch's default).

    Examples:
        >>> import helios.data as hld
        >>> params = hld.DataLoaderParams()
        >>> params.batch_size = 4
        >>> params.shuffle = True
        >>> params.batch_size, params.shuffle, params.is_distributed
        (4, True, None)
    """

    batch_size: int = attrs.field(default=1, validator=positive_int())
    shuffle: bool = attrs.field(default=False, validator=flag())
    num_workers: int = attrs.field(default=0, validator=non_negative_int())
    pin_memory: bool = attrs.field(default=False, validator=flag())
    drop_last: bool = attrs.field(default=False, validator=flag())
    random_seed: int = attrs.field(default=0, validator=non_negative_int())
    debug_mode: bool = attrs.field(default=False, validator=flag())
    is_distributed: bool | None = attrs.field(default=None, validator=optional_flag())
    collate_fn: Callable[[list[Any]], Any] | None = attrs.field(
        default=None, validator=_optional_callable
    )

    def to_dict(self) -> dict[str, Any]:
        """The fields as a new dict."""
        return attrs.asdict(self, recurse=False)

    @classmethod
    def from_dict(cls, table: Mapping[str, Any]) -> DataLoaderParams:
        """A record with the fields ``table`` gives (the others keep their defaults).

        Raises:
            ValueError: for a key that is not a field (listing the fields), or an
                invalid value.
        """
        fields = [field.name for field in attrs.fields(cls)]
        unknown = sorted(set(table) - set(fields))
        if unknown:
            raise ValueError(
                f"unknown data loader parameters {unknown}; the parameters are {fields}"
            )
        return cls(**table)

    def copy(self) -> DataLoaderParams:
        """A new record with the same fields."""
        return attrs.evolve(self)


@attrs.frozen
class DatasetSpec:
    """A dataset and how to load it: what `DataModule._create_dataset` returns."""

    dataset: Dataset[Any]
    params: DataLoaderParams = attrs.field(
        validator=attrs.validators.instance_of(DataLoaderParams)
    )
