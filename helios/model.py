"""The model: what the user writes to say how a network trains, validates and tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

import torch

from helios.core import TrainingState

if TYPE_CHECKING:
    from helios.plugins import MapLocation
    from helios.trainer import Trainer

__all__ = ["Model"]


class Model:
    """Base class for models; subclass it and override the hooks you need.

    The trainer sets `trainer`, `device`, `rank`, `is_distributed` and `map_loc` before it
    calls `setup`. Hooks run after the plug-ins' hook of the same name. In the training
    loop the order is::

        on_training_start()
        train()
        for each epoch:
            on_training_epoch_start(epoch)
            for each batch:
                on_training_batch_start(state)
                train_step(batch, state)
                on_training_batch_end(state, should_log)
                (validation, when due)
            on_training_epoch_end(epoch)
        on_training_end()

    Args:
        save_name: Name of the checkpoint folder under the trainer's ``chkpt_root``.

    Examples:
        >>> import helios.model as hlm
        >>> hlm.Model("classifier").save_name
        'classifier'
    """

    def __init__(self, save_name: str) -> None:
        if not isinstance(save_name, str) or not save_name:
            raise ValueError(f"save_name must be a non-empty string, got {save_name!r}")
        self._save_name = save_name
        self._trainer: Trainer | None = None
        self._metrics: dict[str, float] = {}
        self.device: torch.device = torch.device("cpu")
        self.rank: int = 0
        self.is_distributed: bool = False
        self.map_loc: MapLocation = "cpu"

    @property
    def save_name(self) -> str:
        """Name of the model's checkpoint folder."""
        return self._save_name

    @save_name.setter
    def save_name(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"save_name must be a non-empty string, got {name!r}")
        self._save_name = name

    @property
    def metrics(self) -> dict[str, float]:
        """Metrics the model computes (validation accuracy, ...); plug-ins read them.

        Fill or assign it in `on_validation_end`. A subclass may compute it instead, as
        a property of its own (as Helios 1.x models do).
        """
        return self._metrics

    @metrics.setter
    def metrics(self, metrics: dict[str, float]) -> None:
        self._metrics = metrics

    @property
    def trainer(self) -> Trainer:
        """The trainer running the model.

        Raises:
            RuntimeError: before the model is handed to `Trainer.fit` / `Trainer.test`.
        """
        if self._trainer is None:
            raise RuntimeError(
                f"model {self._save_name!r} has no trainer yet; it gets one when passed to "
                "Trainer.fit or Trainer.test"
            )
        return self._trainer

    @trainer.setter
    def trainer(self, trainer: Trainer) -> None:
        self._trainer = trainer

    def wrap_distributed(self, module: torch.nn.Module, **ddp_options: Any) -> torch.nn.Module:
        """Wrap ``module`` in `DistributedDataParallel` when the run is distributed.

        Call it in `setup` after moving the network to `device`, and keep the result: in a
        single process it is ``module`` itself. Reach the plain network of a wrapped one
        through its ``.module`` attribute (for example to save its state).

        Args:
            module: The network, already on `device`.
            **ddp_options: Passed on to `DistributedDataParallel`.
        """
        if not self.is_distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = None if self.device.type == "cpu" else [self.device]
        return DistributedDataParallel(module, device_ids=device_ids, **ddp_options)

    # -- set-up and state -------------------------------------------------------------

    def setup(self, fast_init: bool = False) -> None:
        """Build networks, optimisers and the like on `device`.

        Args:
            fast_init: ``True`` when only inference will run (testing): skip what
                training alone needs.
        """

    def state_dict(self) -> dict[str, Any]:
        """What to store in checkpoints (tensors, numbers, strings and containers)."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any], fast_init: bool = False) -> None:
        """Restore what `state_dict` returned.

        The parameter is a ``dict`` (as in Helios 1.x), so an override may declare it as
        a ``dict`` or as any wider type (``Mapping[str, Any]``).
        """

    def load_for_testing(self) -> None:
        """Called by `Trainer.test` when there is no checkpoint to load."""

    def train(self) -> None:
        """Put networks in training mode."""

    def eval(self) -> None:
        """Put networks in evaluation mode."""

    # -- training -----------------------------------------------------------------------

    def on_training_start(self) -> None:
        """Called once when training starts (after the plug-ins' hook)."""

    def on_training_epoch_start(self, current_epoch: int) -> None:
        """Called at the start of every epoch."""

    def on_training_batch_start(self, state: TrainingState) -> None:
        """Called before every `train_step`."""

    def train_step(self, batch: Any, state: TrainingState) -> None:
        """Run one training step on ``batch`` (as the plug-ins processed it).

        ``state`` already counts this batch. With gradient accumulation, step the
        optimiser when ``trainer.is_accumulation_boundary(state)`` is true.
        """

    def on_training_batch_end(self, state: TrainingState, should_log: bool = False) -> None:
        """Called after every `train_step`; ``should_log`` is true every
        ``print_frequency`` steps."""

    def on_training_epoch_end(self, current_epoch: int) -> None:
        """Called at the end of every epoch, also when training stops early mid-epoch."""

    def on_training_end(self) -> None:
        """Called once when training ends (after the plug-ins' hook)."""

    def should_training_stop(self) -> bool:
        """Return ``True`` to stop training; asked after every batch and validation."""
        return False

    def have_metrics_improved(self) -> bool:
        """Return ``True`` when the last validation improved on the best so far.

        Used for early stopping (``early_stop_cycles``).
        """
        return True

    def running_loss(self) -> float | None:
        """The loss to show in progress output and logs, or ``None``."""
        return None

    # -- validation ---------------------------------------------------------------------

    def on_validation_start(self, validation_cycle: int) -> None:
        """Called before a validation pass."""

    def on_validation_batch_start(self, step: int) -> None:
        """Called before every `valid_step`."""

    def valid_step(self, batch: Any, step: int) -> None:
        """Run one validation step."""

    def on_validation_batch_end(self, step: int) -> None:
        """Called after every `valid_step`."""

    def on_validation_end(self, validation_cycle: int) -> None:
        """Called after a validation pass; compute `metrics` here."""

    # -- testing ------------------------------------------------------------------------

    def on_testing_start(self) -> None:
        """Called before testing."""

    def on_testing_batch_start(self, step: int) -> None:
        """Called before every `test_step`."""

    def test_step(self, batch: Any, step: int) -> None:
        """Run one testing step."""

    def on_testing_batch_end(self, step: int) -> None:
        """Called after every `test_step`."""

    def on_testing_end(self) -> None:
        """Called after testing; compute `metrics` here."""


#: The public members of `Model`: the hooks the trainer calls and the model's tools.
MODEL_HOOKS: Final = frozenset(name for name in vars(Model) if not name.startswith("_"))

#: Hooks of Helios 1.x and 2.x that helios does not call, and what to do instead.
RETIRED_MODEL_HOOKS: Final[Mapping[str, str]] = {
    "append_metadata_to_chkpt_name": (
        "checkpoint names are always epoch_<e>_iter_<i>.pth (so that resuming finds them); "
        "keep metadata in state_dict() or metrics instead"
    ),
    "append_to_banner": "there is no banner; log what you need in on_training_start()",
    "trained_state_dict": (
        "save the trained network yourself (e.g. in on_training_end()), or test from the "
        "newest checkpoint with Trainer.test"
    ),
    "types_for_safe_load": (
        "checkpoints hold tensors and plain containers only (torch.load weights_only); "
        "return plain values from state_dict() instead of custom objects"
    ),
    "user_state_dict": (
        "return everything a checkpoint should hold from state_dict() (otherwise the "
        "checkpoints hold an empty model)"
    ),
    "load_user_state_dict": "restore it in load_state_dict()",
    "batch_to_device": (
        "move batches with helios.plugins.DevicePlugin or a BatchPlugin transform "
        "(helios.core.to_device)"
    ),
    "should_advance_dataset_phase": "not supported: the data module returns one loader per phase",
    "should_save_checkpoint": "checkpoints are written every chkpt_frequency units",
}
