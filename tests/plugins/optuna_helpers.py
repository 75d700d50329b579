"""Pruners and models for the Optuna tests (importable by worker processes)."""

from __future__ import annotations

import optuna

from helios.plugins.optuna import OptunaPlugin
from tests.trainer.helpers import ReportingClassifier


class AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        return True


class MetricModel(ReportingClassifier):
    """Reports ``metrics["score"] = 10 * cycle`` and records when training ends."""

    def __init__(self, save_name: str = "metric", **kwargs: object) -> None:
        super().__init__(save_name, **kwargs)  # type: ignore[arg-type]
        self.ended = 0
        self.metric_key = "score"

    def on_validation_end(self, validation_cycle: int) -> None:
        self.metrics[self.metric_key] = 10.0 * validation_cycle

    def on_training_end(self) -> None:
        self.ended += 1
        super().on_training_end()


class ManualReporter(MetricModel):
    """A Helios 1.x model: each rank computes its own value and reports it itself."""

    def on_validation_end(self, validation_cycle: int) -> None:
        self.metrics[self.metric_key] = 10.0 * validation_cycle + self.rank
        plugin = self.trainer.plugins["optuna"]
        assert isinstance(plugin, OptunaPlugin)
        plugin.report_metrics(validation_cycle)
