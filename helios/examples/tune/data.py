"""The data: scikit-learn's digits, split once into training, validation and test sets."""

from __future__ import annotations

import dataclasses
import functools
import importlib
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

import helios.data as hld

__all__ = ["SPLIT_SEED", "DigitsData", "MissingDependencyError", "Splits", "load_splits"]

#: Seed of the training / validation / test split: fixed, so that every run of a study
#: (whatever its ``--seed``) tests on images no trial was trained or selected on.
SPLIT_SEED = 0


class MissingDependencyError(RuntimeError):
    """An optional package the example needs is not installed."""


def sklearn_datasets() -> Any:
    """scikit-learn's datasets module, or an error that says how to install it."""
    try:
        return importlib.import_module("sklearn.datasets")
    except ImportError as error:
        raise MissingDependencyError(
            "this example needs scikit-learn for its data set (load_digits): "
            "pip install scikit-learn (or pip install -e '.[examples]')"
        ) from error


@dataclasses.dataclass(frozen=True)
class Splits:
    """The digits, split once: 1077 training, 360 validation and 360 test images."""

    train: TensorDataset
    valid: TensorDataset
    test: TensorDataset


@functools.cache
def load_splits(seed: int) -> Splits:
    """scikit-learn's digits as tensors (pixels scaled to [0, 1]), split with ``seed``.

    Every class is spread evenly over the three sets (a stratified split).
    """
    digits = sklearn_datasets().load_digits()
    inputs = torch.as_tensor(digits.data, dtype=torch.float32) / 16.0
    labels = torch.as_tensor(digits.target, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    parts: list[list[int]] = [[], [], []]
    for label in range(10):
        found = torch.nonzero(labels == label).flatten()
        members: list[int] = found[torch.randperm(len(found), generator=generator)].tolist()
        # 20 % validation, 20 % test, the rest training (per class).
        n_valid = n_test = round(0.2 * len(members))
        parts[1] += members[:n_valid]
        parts[2] += members[n_valid : n_valid + n_test]
        parts[0] += members[n_valid + n_test :]
    # Exactly 360 validation and test images, so that 2, 3, 4, 5 or 6 processes split
    # them evenly (no padded duplicates); rounding differences move to or from training.
    for part in (1, 2):
        while len(parts[part]) > 360:
            parts[0].append(parts[part].pop())
        while len(parts[part]) < 360:
            parts[part].append(parts[0].pop())
    train, valid, test = (torch.tensor(sorted(part)) for part in parts)
    return Splits(
        TensorDataset(inputs[train], labels[train]),
        TensorDataset(inputs[valid], labels[valid]),
        TensorDataset(inputs[test], labels[test]),
    )


class DigitsData(hld.DataModule):
    """The digits split: loaders from `create_dataloader` (sharded and resumable).

    The training order is shuffled every epoch with the trainer's ``random_seed``.
    """

    def __init__(self, batch_size: int = 64, split_seed: int = SPLIT_SEED) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.split_seed = split_seed

    def setup(self) -> None:
        self.splits = load_splits(self.split_seed)

    def train_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.splits.train, batch_size=self.batch_size, shuffle=True)

    def valid_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.splits.valid, batch_size=360)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.splits.test, batch_size=360)
