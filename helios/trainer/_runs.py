"""``fit`` and ``test`` in this process: set up the run's parts, then train or test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
from torch.utils.data import DataLoader

from helios.core import TrainingState
from helios.data import DataModule, LoaderWrapper, ResumableSampler
from helios.model import Model
from helios.plugins import RunWatcher
from helios.trainer import _distributed as dist_support
from helios.trainer._fitting import TrainingRun, run_testing, run_validation
from helios.trainer._logging import log_progress
from helios.trainer._plan import DispatchPlan
from helios.trainer._progress import Progress
from helios.trainer._run_checkpoints import Collectives, RunCheckpoints
from helios.trainer._settings import seed_and_determinism

if TYPE_CHECKING:
    from helios.trainer._trainer import Trainer

T = TypeVar("T")

__all__ = ["Extensions", "ProcessRun"]


class Extensions:
    """What plug-ins add to a trainer's runs, each under a key (the plug-in's id): loader
    wrappers and run watchers, in the order their keys were first given."""

    def __init__(self) -> None:
        self.wrappers: dict[str, LoaderWrapper] = {}
        self.watchers: dict[str, RunWatcher] = {}

    @staticmethod
    def put(table: dict[str, T], key: str, value: T | None) -> None:
        """Set ``key`` to ``value`` in ``table``; ``None`` removes it."""
        if value is None:
            table.pop(key, None)
        else:
            table[key] = value


@attrs.frozen
class ProcessRun:
    """One `fit` or `test` of ``trainer`` in this process.

    Attributes:
        trainer: The trainer (its settings, devices, plug-ins and state).
        collectives: What the run needs of the other processes.
        extensions: What the plug-ins added to the trainer's runs (read when it is used:
            plug-ins add to it in their ``setup``).
    """

    trainer: Trainer
    collectives: Collectives
    extensions: Extensions

    def fit(self, model: Model, datamodule: DataModule) -> bool:
        """Train, resuming from the newest checkpoint."""
        trainer = self.trainer
        with self._session(model, datamodule, fast_init=False) as plan:
            train_loader = self._required(
                datamodule.train_dataloader(), "train_dataloader()", "training"
            )
            valid_loader = self._loader(datamodule.valid_dataloader(), "valid_dataloader()")
            if valid_loader is None and trainer.config.valid_frequency is not None:
                raise ValueError(
                    "valid_frequency is set but valid_dataloader() returned None; return a "
                    "validation loader or drop valid_frequency"
                )
            checkpoints = self._checkpoints(model)
            state, rng = checkpoints.resume(model, plan)
            TrainingRun(
                config=trainer.config,
                model=model,
                plan=plan,
                loader=train_loader,
                valid_loader=valid_loader,
                checkpoints=checkpoints,
                progress=Progress(trainer, state) if self._shown else None,
                log=self._log,
                on_state=self._set_state,
            ).run(state, rng)
        return True

    def test(self, model: Model, datamodule: DataModule) -> bool:
        """Test the newest checkpoint (or what ``model.load_for_testing()`` loads)."""
        with self._session(model, datamodule, fast_init=True) as plan:
            loader = self._required(datamodule.test_dataloader(), "test_dataloader()", "test")
            self._checkpoints(model).load_for_testing(model)
            run_testing(model, plan, Progress.wrap(loader, "testing") if self._shown else loader)
        return True

    def validate(self, model: Model, datamodule: DataModule, checkpoint: Path | None) -> bool:
        """One validation pass on ``checkpoint``: by default the newest, or what
        ``model.load_for_testing()`` loads when there is none. The pass's cycle number is
        the number of validation cycles the checkpoint's run had completed."""
        with self._session(model, datamodule, fast_init=True) as plan:
            loader = self._required(
                datamodule.valid_dataloader(), "valid_dataloader()", "validation"
            )
            state = self._checkpoints(model).load_for_testing(model, checkpoint)
            self._set_state(state)
            batches = Progress.wrap(loader, "validation") if self._shown else loader
            run_validation(model, plan, batches, state.validation_cycles)
        return True

    @property
    def _shown(self) -> bool:
        """Whether this process shows progress bars."""
        return self.trainer.enable_progress_bar and self.trainer.rank == 0

    @contextlib.contextmanager
    def _session(
        self, model: Model, datamodule: DataModule, *, fast_init: bool
    ) -> Iterator[DispatchPlan]:
        """Set the run up; at the end, whatever happened, the watchers' ``on_end`` and
        then the data module's ``teardown``."""
        plan = self._prepare(model, datamodule, fast_init=fast_init)
        try:
            yield plan
        finally:
            try:
                for watcher in plan.watchers:
                    if watcher.on_end is not None:
                        watcher.on_end()
            finally:
                datamodule.teardown()

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
        # The plug-ins give their watchers in setup: read them once they have.
        return attrs.evolve(plan, watchers=tuple(self.extensions.watchers.values()))

    def _required(self, loader: DataLoader[Any] | None, what: str, phase: str) -> DataLoader[Any]:
        found = self._loader(loader, what)
        if found is None:
            raise ValueError(f"the data module returned no {phase} data: {what} gave None")
        return found

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
        for wrap in self.extensions.wrappers.values():
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
