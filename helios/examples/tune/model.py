"""The model: an MLP for 8x8 digits whose hyper-parameters come from the Optuna trial."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Mapping
from typing import Any

import torch

import helios.model as hlm
import helios.trainer as hlt
from helios.plugins.optuna import OptunaPlugin

__all__ = ["METRIC", "SAVE_NAME", "DigitsClassifier", "Hyper", "suggest_hyper"]

#: The metric the plug-in reports and the study maximises.
METRIC = "accuracy"
#: The model's save name before the plug-in appends ``_trial-<n>``.
SAVE_NAME = "digits"


@dataclasses.dataclass(frozen=True)
class Hyper:
    """The tuned hyper-parameters."""

    hidden: int
    lr: float
    dropout: float
    optimizer: str

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Hyper:
        """The hyper-parameters a finished trial recorded (``trial.params``)."""
        return cls(
            hidden=int(params["hidden"]),
            lr=float(params["lr"]),
            dropout=float(params["dropout"]),
            optimizer=str(params["optimizer"]),
        )


def suggest_hyper(plugin: OptunaPlugin) -> Hyper:
    """Ask the plug-in's trial for the hyper-parameters (the same values on every call)."""
    return Hyper(
        hidden=plugin.suggest("int", "hidden", low=16, high=256, log=True),
        lr=plugin.suggest("float", "lr", low=1e-4, high=0.3, log=True),
        dropout=plugin.suggest("float", "dropout", low=0.0, high=0.5),
        optimizer=str(plugin.suggest("categorical", "optimizer", choices=["adam", "sgd"])),
    )


class DigitsClassifier(hlm.Model):
    """An MLP for 8x8 digits whose hyper-parameters come from the trial.

    Args:
        hyper: Fixed hyper-parameters (testing a finished trial); ``None`` reads them from
            the `OptunaPlugin` registered in the trainer, in `setup`.
        step_delay: Seconds to sleep after every training batch (demonstrations).
        threads: Torch threads of each worker process in a distributed run (the
            processes the trainer starts are the model's own).
    """

    def __init__(
        self, hyper: Hyper | None = None, *, step_delay: float = 0.0, threads: int | None = None
    ) -> None:
        super().__init__(SAVE_NAME)
        self.hyper = hyper
        self.step_delay = step_delay
        self.threads = threads
        self.correct = 0
        self.total = 0
        self.loss = math.nan

    def setup(self, fast_init: bool = False) -> None:
        if self.is_distributed and self.threads is not None:
            torch.set_num_threads(self.threads)
        hyper = self.hyper
        if hyper is None:
            plugin = self.trainer.plugin(OptunaPlugin.plugin_id, OptunaPlugin)
            hyper = self.hyper = suggest_hyper(plugin)
        self.plain_net = torch.nn.Sequential(
            torch.nn.Linear(64, hyper.hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(hyper.dropout),
            torch.nn.Linear(hyper.hidden, 10),
        ).to(self.device)
        self.net = self.wrap_distributed(self.plain_net)
        self.optimizer: torch.optim.Optimizer | None = None
        if not fast_init:
            if hyper.optimizer == "adam":
                self.optimizer = torch.optim.Adam(self.net.parameters(), lr=hyper.lr)
            else:
                self.optimizer = torch.optim.SGD(self.net.parameters(), lr=hyper.lr, momentum=0.9)

    def train(self) -> None:
        self.net.train()

    def eval(self) -> None:
        self.net.eval()

    def train_step(self, batch: Any, state: hlt.TrainingState) -> None:
        assert self.optimizer is not None
        inputs, labels = batch
        loss = torch.nn.functional.cross_entropy(self.net(inputs), labels)
        self.optimizer.zero_grad()
        torch.autograd.backward(loss)
        self.optimizer.step()
        self.loss = float(loss.item())
        if self.step_delay:
            time.sleep(self.step_delay)

    def running_loss(self) -> float | None:
        return None if math.isnan(self.loss) else self.loss

    # Validation and testing count correct predictions; in a distributed run each rank
    # sees its shard, so the counts are summed over the ranks before dividing.

    def _count(self, batch: Any) -> None:
        inputs, labels = batch
        predicted = self.net(inputs).argmax(dim=1)
        self.correct += int((predicted == labels).sum())
        self.total += int(labels.numel())

    def _accuracy(self) -> float:
        counts = hlt.reduce_metrics({"correct": self.correct, "total": self.total}, op="sum")
        return counts["correct"] / max(counts["total"], 1.0)

    def on_validation_start(self, validation_cycle: int) -> None:
        self.correct = self.total = 0

    def valid_step(self, batch: Any, step: int) -> None:
        self._count(batch)

    def on_validation_end(self, validation_cycle: int) -> None:
        # The Optuna plug-in reports this value right after this hook returns.
        self.metrics[METRIC] = self._accuracy()

    def on_training_end(self) -> None:
        # Distributed: the main process has no model state, so rank 0 sends the result.
        if self.is_distributed and self.rank == 0:
            assert self.trainer.queue is not None
            self.trainer.queue.put({METRIC: self.metrics.get(METRIC, math.nan)})

    def on_testing_start(self) -> None:
        self.correct = self.total = 0

    def test_step(self, batch: Any, step: int) -> None:
        self._count(batch)

    def on_testing_end(self) -> None:
        self.metrics["test_" + METRIC] = self._accuracy()

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"net": self.plain_net.state_dict(), "metrics": dict(self.metrics)}
        if self.optimizer is not None:
            state["optimizer"] = self.optimizer.state_dict()
        return state

    def load_state_dict(self, state_dict: Mapping[str, Any], fast_init: bool = False) -> None:
        self.plain_net.load_state_dict(state_dict["net"])
        self.metrics.update(state_dict["metrics"])
        if self.optimizer is not None and not fast_init:
            self.optimizer.load_state_dict(state_dict["optimizer"])

    def load_for_testing(self) -> None:
        raise FileNotFoundError(
            f"no checkpoint of {self.save_name!r} to test: were the checkpoints in the "
            "working folder removed? Run the study again to train new trials."
        )
