"""tqdm progress bars for training, validation and testing (rank 0 only)."""

from __future__ import annotations

import math
import multiprocessing
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from tqdm import tqdm

from helios.core import TrainingState, TrainingUnit

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from helios.model import Model
    from helios.trainer._trainer import Trainer

__all__ = ["Progress"]

T = TypeVar("T")


def _bars_in_this_process() -> None:
    """Give tqdm a thread lock in worker processes, before their first bar.

    tqdm's default lock includes a multiprocessing semaphore; a worker process the trainer
    started ends without interpreter teardown, which leaves that semaphore behind (the
    resource tracker then warns of a leak). Only rank 0 draws bars, so a lock shared
    between processes has no use there.
    """
    if multiprocessing.parent_process() is not None and not hasattr(tqdm, "_lock"):
        tqdm.set_lock(threading.RLock())


def _length(loader: Iterable[Any]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


class Progress:
    """The bars of one training run."""

    def __init__(self, trainer: Trainer, state: TrainingState) -> None:
        _bars_in_this_process()
        config = trainer.config
        self._unit = config.unit
        total = None if config.total_steps == math.inf else int(config.total_steps)
        if self._unit is TrainingUnit.ITERATION:
            self._main: tqdm[Any] = tqdm(
                total=total, initial=state.current_iteration, desc="training", unit="it"
            )
        else:
            self._main = tqdm(total=total, initial=state.global_epoch, desc="epochs", unit="ep")
        self._epoch_bar: tqdm[Any] | None = None
        self._last_epoch = state.global_epoch

    def start_epoch(self, epoch: int, loader: DataLoader[Any], state: TrainingState) -> None:
        if self._unit is TrainingUnit.EPOCH:
            if epoch != self._last_epoch:
                self._main.update(epoch - self._last_epoch)
                self._last_epoch = epoch
            if self._epoch_bar is not None:
                self._epoch_bar.close()
            self._epoch_bar = tqdm(
                total=_length(loader),
                initial=state.dataset_iter,
                desc=f"epoch {epoch}",
                leave=False,
                unit="batch",
            )

    def batch(self, state: TrainingState, model: Model, stepped: bool) -> None:
        bar = self._epoch_bar if self._unit is TrainingUnit.EPOCH else self._main
        if bar is None:
            return
        if self._unit is TrainingUnit.EPOCH or stepped:
            bar.update(1)
        loss = model.running_loss()
        if loss is not None and stepped:
            bar.set_postfix(loss=f"{loss:.4g}", refresh=False)

    @staticmethod
    def wrap(loader: Iterable[T], desc: str) -> Iterator[T]:
        """``loader`` with a transient bar (validation, testing)."""
        _bars_in_this_process()
        return iter(tqdm(loader, total=_length(loader), desc=desc, leave=False, unit="batch"))

    def close(self, state: TrainingState) -> None:
        if self._epoch_bar is not None:
            self._epoch_bar.close()
        if self._unit is TrainingUnit.EPOCH:
            self._main.update(state.global_epoch - self._main.n)
        self._main.close()
