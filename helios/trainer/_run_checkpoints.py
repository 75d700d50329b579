"""A run's checkpoints as one process sees them: resuming, loading for evaluation, saving."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from helios.core import TrainingState
from helios.core.loop import checkpoint_name, state_to_dict
from helios.model import Model
from helios.plugins import MapLocation, PluginTable, RetentionPlugin
from helios.trainer._checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    capture_rng,
    find_checkpoints,
    load_checkpoint,
    remove_partial_writes,
    save_checkpoint,
    training_state_of,
)
from helios.trainer._logging import logger
from helios.trainer._plan import DispatchPlan

__all__ = ["Collectives", "RunCheckpoints", "best_checkpoint", "checkpoint_to_validate"]


@attrs.frozen
class Collectives:
    """What a run needs of the other processes (identity functions in one process)."""

    #: True on every rank when true on any rank.
    any: Callable[[bool], bool]
    #: Every rank's value, in rank order.
    gather: Callable[[Any], list[Any]]
    distributed: bool = False


@attrs.frozen
class RunCheckpoints:
    """Writing and resuming a model's checkpoints from one process of a run."""

    folder: Path | None
    rank: int
    map_loc: MapLocation
    collectives: Collectives

    def resume(
        self, model: Model, plan: DispatchPlan
    ) -> tuple[TrainingState, dict[str, Any] | None]:
        """Load the newest checkpoint into the model and plug-ins; its state and this
        rank's random-generator states (a fresh state and ``None`` without one)."""
        folder = self.folder
        if folder is None:
            return TrainingState(), None
        if self.rank == 0:
            remove_partial_writes(folder)
        found = find_checkpoints(folder)
        if not found:
            return TrainingState(), None
        newest = found[-1]
        content = load_checkpoint(newest, self.map_loc)
        try:
            model.load_state_dict(content["model"])
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {newest} does not fit model {model.save_name!r}: {error}. Was it "
                "written by another model? Use another save_name or chkpt_root to start over."
            ) from error
        saved_plugins = content["plugins"]
        for plugin in plan.plugins:
            if plugin.plug_id in saved_plugins:
                plugin.load_state_dict(saved_plugins[plugin.plug_id])
        if self.rank == 0:
            logger.info("resuming %s from checkpoint %s", model.save_name, newest)
        rng_states = content["rng"]
        if not isinstance(rng_states, list) or not rng_states:
            raise CheckpointError(f"checkpoint {newest} has no random-generator states")
        # Each rank continues its own random stream (a smaller run reuses rank 0's).
        rng = rng_states[self.rank] if self.rank < len(rng_states) else rng_states[0]
        return training_state_of(content), rng

    def load_for_testing(self, model: Model, path: Path | None = None) -> TrainingState:
        """Load a checkpoint's model state for testing or validating: ``path``, or the
        newest checkpoint; call ``model.load_for_testing()`` when there is none.

        Returns the checkpoint's training state (a fresh one without a checkpoint).
        """
        if path is None:
            found = find_checkpoints(self.folder) if self.folder is not None else []
            if not found:
                model.load_for_testing()
                return TrainingState()
            path = found[-1]
        content = load_checkpoint(path, self.map_loc)
        try:
            model.load_state_dict(content["model"], fast_init=True)
        except Exception as error:
            raise CheckpointError(
                f"checkpoint {path} does not fit model {model.save_name!r}: {error}"
            ) from error
        return training_state_of(content)

    def save(self, model: Model, plan: DispatchPlan, state: TrainingState) -> Path | None:
        """Write a checkpoint of ``state`` (rank 0 writes; every rank's RNG is kept).

        Returns the file written (``None`` on the other ranks)."""
        rng_states = self.collectives.gather(capture_rng())
        if self.rank != 0:
            return None
        assert self.folder is not None
        content = {
            "version": FORMAT_VERSION,
            "training_state": state_to_dict(state),
            "model": model.state_dict(),
            "plugins": {plugin.plug_id: plugin.state_dict() for plugin in plan.plugins},
            "rng": rng_states,
            "data": {"epoch": state.global_epoch, "position": state.dataset_iter},
        }
        path = self.folder / checkpoint_name(state)
        save_checkpoint(path, content)
        return path


def best_checkpoint(plugins: PluginTable, folder: Path | None) -> Path:
    """The best checkpoint in ``folder`` by the metric of the registered `RetentionPlugin`.

    Raises:
        ValueError: no retention plug-in with a metric is registered, there is no
            checkpoint, or none has a recorded value of the metric.
    """
    found = [plugin for plugin in plugins.values() if isinstance(plugin, RetentionPlugin)]
    if not found or found[0].metric is None:
        raise ValueError(
            "checkpoint='best' needs a registered RetentionPlugin with a metric, which says "
            "what makes a checkpoint better: e.g. RetentionPlugin(metric='accuracy', "
            "mode='max').configure_trainer(trainer)"
        )
    retention = found[0]
    checkpoints = find_checkpoints(folder) if folder is not None else []
    if not checkpoints:
        raise ValueError(f"there is no checkpoint in {folder} to validate")
    saved = load_checkpoint(checkpoints[-1])["plugins"].get(retention.plug_id)
    best = retention.best(saved, [path.name for path in checkpoints])
    if best is None:
        raise ValueError(
            f"no checkpoint in {folder} has a recorded value of {retention.metric!r}: the "
            "scores are written by a RetentionPlugin with that metric during fit, from "
            "model.metrics after validation; validate checkpoint='newest' instead"
        )
    return checkpoints[0].parent / best


def checkpoint_to_validate(
    plugins: PluginTable, folder: Path | None, checkpoint: object
) -> Path | None:
    """The file ``Trainer.validate(..., checkpoint=...)`` names (``None``: the newest).

    Raises:
        ValueError: ``checkpoint`` is none of ``"newest"``, ``"best"`` or a path; or see
            `best_checkpoint`.
        FileNotFoundError: a path that is not a file.
    """
    if checkpoint == "newest":
        return None
    if checkpoint == "best":
        return best_checkpoint(plugins, folder)
    if not isinstance(checkpoint, Path):
        raise ValueError(
            f"checkpoint must be 'newest', 'best' or a pathlib.Path, got {checkpoint!r}"
        )
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} to validate does not exist")
    return checkpoint
