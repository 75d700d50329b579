"""``fit`` and ``test`` in this process: set up the run's parts, then train or test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
from torch.utils.data import DataLoader

from helios.core import TrainingState
from helios.data import DataModule, LoaderWrapper, ResumableSampler
from helios.model import Model
from helios.trainer import _distributed as dist_support
from helios.trainer._fitting import Collectives, RunCheckpoints, TrainingRun, run_testing
from helios.trainer._logging import log_progress
from helios.trainer._plan import DispatchPlan
from helios.trainer._progress import Progress
from helios.trainer._settings import seed_and_determinism

if TYPE_CHECKING:
    from helios.trainer._trainer import Trainer

__all__ = ["ProcessRun"]


@attrs.frozen
class ProcessRun:
    """One `fit` or `test` of ``trainer`` in this process.

    Attributes:
        trainer: The trainer (its settings, devices, plug-ins and state).
        collectives: What the run needs of the other processes.
        wrappers: What every data loader is passed through, in order.
    """

    trainer: Trainer
    collectives: Collectives
    wrappers: tuple[LoaderWrapper, ...] = ()

    def fit(self, model: Model, datamodule: DataModule) -> bool:
        """Train, resuming from the newest checkpoint."""
        trainer = self.trainer
        plan = self._prepare(model, datamodule, fast_init=False)
        try:
            train_loader = self._loader(datamodule.train_dataloader(), "train_dataloader()")
            if train_loader is None:
                raise ValueError(
                    "the data module returned no training data: train_dataloader() gave None"
                )
            valid_loader = self._loader(datamodule.valid_dataloader(), "valid_dataloader()")
            if valid_loader is None and trainer.config.valid_frequency is not None:
                raise ValueError(
                    "valid_frequency is set but valid_dataloader() returned None; return a "
                    "validation loader or drop valid_frequency"
                )
            checkpoints = self._checkpoints(model)
            state, rng = checkpoints.resume(model, plan)
            shown = trainer.enable_progress_bar and trainer.rank == 0
            TrainingRun(
                config=trainer.config,
                model=model,
                plan=plan,
                loader=train_loader,
                valid_loader=valid_loader,
                checkpoints=checkpoints,
                progress=Progress(trainer, state) if shown else None,
                log=self._log,
                on_state=self._set_state,
            ).run(state, rng)
        finally:
            datamodule.teardown()
        return True

    def test(self, model: Model, datamodule: DataModule) -> bool:
        """Test the newest checkpoint (or what ``model.load_for_testing()`` loads)."""
        trainer = self.trainer
        plan = self._prepare(model, datamodule, fast_init=True)
        try:
            loader = self._loader(datamodule.test_dataloader(), "test_dataloader()")
            if loader is None:
                raise ValueError(
                    "the data module returned no test data: test_dataloader() gave None"
                )
            self._checkpoints(model).load_for_testing(model)
            shown = trainer.enable_progress_bar and trainer.rank == 0
            run_testing(model, plan, Progress.wrap(loader, "testing") if shown else loader)
        finally:
            datamodule.teardown()
        return True

    def _prepare(self, model: Model, datamodule: DataModule, fast_init: bool) -> DispatchPlan:
        """Give the model, the data module and the plug-ins the run's facts; set them up."""
        trainer = self.trainer
        seed_and_determinism(trainer.settings)
        trainer.model = model
        facts = {
            "device": trainer.device,
            "rank": trainer.rank,
            "is_distributed": trainer.is_distributed,
            "map_loc": trainer.map_loc,
        }
        model.trainer = trainer
        for name, value in facts.items():
            setattr(model, name, value)
        datamodule.trainer = trainer
        datamodule.is_distributed = trainer.is_distributed
        datamodule.rank = trainer.rank
        datamodule.world_size = trainer.world_size
        plan = DispatchPlan.build(trainer.plugins)
        for plugin in plan.plugins:
            plugin.trainer = trainer
            for name, value in facts.items():
                setattr(plugin, name, value)
        # Data is prepared (downloaded, built) once per machine; the others wait for it.
        if trainer.local_rank == 0:
            datamodule.prepare_data()
        if trainer.is_distributed:
            self.collectives.gather(None)
        datamodule.setup()
        for plugin in plan.plugins:
            plugin.setup()
        model.setup(fast_init)
        return plan

    def _loader(self, loader: DataLoader[Any] | None, what: str) -> DataLoader[Any] | None:
        if loader is None:
            return None
        if not isinstance(loader, DataLoader):
            raise TypeError(f"{what} must return a torch DataLoader or None, got {loader!r}")
        trainer = self.trainer
        sampler = loader.sampler
        if isinstance(sampler, ResumableSampler) and trainer.random_seed is not None:
            sampler.seed = trainer.random_seed
        if trainer.is_distributed:
            loader = dist_support.shard_loader(loader, trainer.rank, trainer.world_size)
        for wrap in self.wrappers:
            loader = wrap(loader)
        return loader

    def _checkpoints(self, model: Model) -> RunCheckpoints:
        trainer = self.trainer
        folder = trainer.checkpoint_folder(model)
        return RunCheckpoints(folder, trainer.rank, trainer.map_loc, self.collectives)

    def _log(self, model: Model, state: TrainingState) -> None:
        if self.trainer.rank == 0:
            log_progress(model.running_loss(), state)

    def _set_state(self, state: TrainingState) -> None:
        self.trainer.state = state
