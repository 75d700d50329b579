"""Comparing what a damaged run left on disk with an uninterrupted run's checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs
import torch

import helios.trainer as hlt
from helios.core import TrainingState
from helios.testing import assert_tree_equal

Weights = dict[str, torch.Tensor]


#: What a checkpoint is compared by: the training state's counters and everything else it
#: holds, but not the running average of iteration times and its count (timings differ
#: from run to run, and a resumed run starts the average afresh).
_TIMINGS = frozenset({"average_iter_time", "running_iter"})
_COUNTERS = tuple(f.name for f in attrs.fields(TrainingState) if f.name not in _TIMINGS)
_PARTS = ("version", "model", "plugins", "rng", "data")


def tree_difference(actual: object, expected: object, path: str) -> str | None:
    """Where two trees differ (see `helios.testing.assert_tree_equal`), or ``None``."""
    try:
        assert_tree_equal(actual, expected, path=path)
    except AssertionError as error:
        return str(error)
    return None


def _comparable(checkpoint: Mapping[str, Any], ignored: frozenset[str]) -> dict[str, Any]:
    state: TrainingState = checkpoint["training_state"]
    counters = {name: getattr(state, name) for name in _COUNTERS}
    parts = {key: checkpoint[key] for key in _PARTS}
    parts["plugins"] = {k: v for k, v in parts["plugins"].items() if k not in ignored}
    return {"training_state": counters, **parts}


def checkpoint_difference(
    a: Mapping[str, Any], b: Mapping[str, Any], ignored: frozenset[str] = frozenset()
) -> str | None:
    """Where two loaded checkpoints differ (timings and the states of the ``ignored``
    plug-ins aside), or ``None`` when they hold the same run at the same point."""
    return tree_difference(_comparable(a, ignored), _comparable(b, ignored), "checkpoint")


def weights_damage(resumed: Mapping[str, torch.Tensor], uninterrupted: Weights) -> list[str]:
    """Nothing if a resumed run ended with the uninterrupted run's weights; else that it
    did not, and where they differ."""
    difference = tree_difference(resumed, uninterrupted, "weights")
    if difference is None:
        return []
    return [f"the resumed run ends with other weights than the uninterrupted one: {difference}"]


def leftovers(folder: Path) -> list[str]:
    """Temporary files of checkpoint writes in ``folder``."""
    return sorted(path.name for path in folder.glob(".epoch_*.tmp")) if folder.is_dir() else []


def inspect_checkpoints(
    folder: Path,
    reference: Mapping[int, Mapping[str, Any]],
    ignored: frozenset[str] = frozenset(),
) -> tuple[list[int], list[str]]:
    """Load every checkpoint under a final name and compare it with the uninterrupted
    run's checkpoint of the same iteration (the ``ignored`` plug-ins' states aside).

    Returns:
        The iterations found, and what is damaged (unreadable or different files).
    """
    found: list[int] = []
    damaged: list[str] = []
    for path in hlt.find_checkpoints(folder):
        try:
            content = hlt.load_checkpoint(path)
        except hlt.CheckpointError as error:
            damaged.append(f"{path.name} sits under a final name but cannot be loaded: {error}")
            continue
        iteration = content["training_state"].global_iteration
        found.append(iteration)
        expected = reference.get(iteration)
        if expected is None:
            damaged.append(f"{path.name}: the uninterrupted run has no checkpoint there")
            continue
        difference = checkpoint_difference(content, expected, ignored)
        if difference is not None:
            damaged.append(f"{path.name} differs from the uninterrupted run's ({difference})")
    return found, damaged


@attrs.frozen
class Reference:
    """An uninterrupted run: its final weights and its checkpoints by iteration."""

    weights: Weights
    checkpoints: Mapping[int, Mapping[str, Any]]

    @property
    def iterations(self) -> list[int]:
        return sorted(self.checkpoints)

    @classmethod
    def read(cls, weights_file: Path, folder: Path) -> Reference:
        loaded: Weights = torch.load(weights_file, weights_only=True)
        checkpoints = {}
        for path in hlt.find_checkpoints(folder):
            content = hlt.load_checkpoint(path)
            checkpoints[content["training_state"].global_iteration] = content
        return cls(loaded, checkpoints)

    def after_resuming(self, folder: Path, resumed: Weights | None) -> tuple[list[str], list[str]]:
        """What is wrong once a damaged run in ``folder`` was resumed to its end, as
        ``(problems, damaged)``: its final weights (``resumed``; ``None`` when the resumed
        run failed, which the caller reports), its checkpoints and leftover files."""
        damaged = [] if resumed is None else weights_damage(resumed, self.weights)
        found, later = inspect_checkpoints(folder, self.checkpoints)
        damaged.extend(later)
        if found != self.iterations:
            damaged.append(f"after resuming the checkpoints are {found}, not {self.iterations}")
        left = leftovers(folder)
        problems = [f"temporary files remain after resuming: {left}"] if left else []
        return problems, damaged
