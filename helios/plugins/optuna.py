"""Hyper-parameter tuning with Optuna: reporting, pruning, resumable trials.

Importing this module imports Optuna and registers `OptunaPlugin` in
`helios.plugins.PLUGIN_REGISTRY`; ``import helios`` alone does neither.
"""

from __future__ import annotations

import pickle
import uuid
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

try:
    import optuna
    from optuna.distributions import CategoricalChoiceType
    from optuna.storages import RetryHeartbeatStaleTrialCallback
except ImportError as error:  # pragma: no cover - optuna is a dependency of helios
    raise ImportError(
        "helios.plugins.optuna needs Optuna 4.9 or newer: pip install -U 'optuna>=4.9'"
    ) from error

from helios.plugins._builtin import PLUGIN_REGISTRY
from helios.plugins._plugin import Plugin
from helios.plugins._table import stop_decided_at_validation

if TYPE_CHECKING:
    from helios.model import Model
    from helios.trainer import Trainer

__all__ = ["OptunaPlugin"]

#: User attribute the plug-in sets on a trial that it pruned in a distributed run.
PRUNED_ATTR = "helios:pruned_at_cycle"
#: User attribute written once to check that a trial's storage is shared by processes.
PROBE_ATTR = "helios:storage_check"


def _check_validates(trainer: Trainer) -> None:
    if trainer.config.valid_frequency is None:
        raise ValueError(
            "OptunaPlugin reports and prunes after validation cycles, but the trainer has "
            "valid_frequency=None, so it would never report a value or prune the trial: "
            "give the Trainer a valid_frequency (and the data module a valid_dataloader)"
        )


@PLUGIN_REGISTRY.register
class OptunaPlugin(Plugin):
    """Connects a training run to an Optuna trial.

    After every validation cycle (once the model's ``on_validation_end`` has filled
    ``model.metrics``) the plug-in reports ``metrics[metric_name]`` to the trial, then asks
    the trial's pruner. When the trial should be pruned, training stops:

    * in one process, the model's ``on_training_end`` runs and `optuna.TrialPruned`
      leaves `Trainer.fit`;
    * in a distributed run every rank stops at the same step, `fit` returns, and
      `check_pruned` raises `optuna.TrialPruned` in the main process.

    Args:
        trial: The trial to report to.
        metric_name: Key of ``model.metrics`` to report; nothing is reported for a cycle
            in which the key is missing.

    Examples:
        >>> import optuna
        >>> import helios.plugins.optuna as hlpo
        >>> study = optuna.create_study()
        >>> plugin = hlpo.OptunaPlugin(study.ask(), "accuracy")
        >>> plugin.plug_id, sorted(plugin.unique_overrides.claimed())
        ('optuna', ['should_training_stop'])
    """

    plugin_id: ClassVar[str] = "optuna"

    def __init__(self, trial: optuna.Trial, metric_name: str) -> None:
        if not isinstance(trial, optuna.Trial):
            raise TypeError(f"OptunaPlugin needs an optuna.Trial, got {type(trial).__name__}")
        if not isinstance(metric_name, str) or not metric_name:
            raise ValueError(f"metric_name must be a non-empty string, got {metric_name!r}")
        super().__init__(type(self).plugin_id)
        self._trial = trial
        self.metric_name = metric_name
        self.unique_overrides.should_training_stop = True
        self._pending_cycle: int | None = None
        self._reported_cycle: int | None = None
        self._pruned_at: int | None = None
        self._storage_checked = False

    @property
    def trial(self) -> optuna.Trial:
        """The trial this plug-in reports to."""
        return self._trial

    @property
    def trial_number(self) -> int:
        """The trial's original number: a retried trial keeps the one it had first."""
        with warnings.catch_warnings():
            # Marked experimental by Optuna, but it is the public way to find the number.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retried = RetryHeartbeatStaleTrialCallback.retried_trial_number(self._frozen())
        return self._trial.number if retried is None else retried

    # -- configuration ------------------------------------------------------------------

    def configure_trainer(self, trainer: Trainer, /) -> None:
        """Register the plug-in and make `optuna.TrialPruned` leave `fit` unchanged.

        Raises:
            ValueError: if the trainer never validates (``valid_frequency=None``: nothing
                would be reported or pruned), or if the run is distributed and the trial's
                storage is not shared between processes (an in-memory study).
        """
        # Checked first, so that a refusal leaves the trainer as it was.
        if trainer.is_distributed:
            self._check_storage_is_shared()
        _check_validates(trainer)
        self._register_in_trainer(trainer)
        if optuna.TrialPruned not in trainer.train_exceptions:
            trainer.train_exceptions.append(optuna.TrialPruned)

    def configure_model(self, model: Model, /) -> None:
        """Append ``_trial-<n>`` to the model's save name so a retried trial finds the
        checkpoints of the trial it retries (``n`` is the original trial number)."""
        model.save_name = f"{model.save_name}_trial-{self.trial_number}"

    def _check_storage_is_shared(self) -> None:
        if self._storage_checked:
            return
        token = uuid.uuid4().hex
        copy: optuna.Trial = pickle.loads(pickle.dumps(self._trial))
        copy.set_user_attr(PROBE_ATTR, token)
        seen = self._frozen().user_attrs.get(PROBE_ATTR)
        if seen != token:
            raise ValueError(
                "distributed tuning needs a storage that every process shares, but this "
                "trial's study keeps its records in memory: each worker would report into "
                "its own copy. Create the study with a persistent storage, e.g. "
                "optuna.create_study(storage='sqlite:///study.db') or a PostgreSQL / "
                "journal-file storage."
            )
        self._storage_checked = True

    def _frozen(self) -> optuna.trial.FrozenTrial:
        number = self._trial.number
        for frozen in self._trial.study.get_trials(deepcopy=False):
            if frozen.number == number:
                return frozen
        raise RuntimeError(f"trial {number} is not in its study any more")

    # -- hooks ----------------------------------------------------------------------------

    def setup(self) -> None:
        if self.is_distributed and not self._storage_checked:
            raise ValueError(
                "OptunaPlugin in a distributed run must be attached with "
                "plugin.configure_trainer(trainer) before fit, which checks that the "
                "study's storage is shared by the worker processes"
            )
        self._pending_cycle = None
        self._reported_cycle = None
        self._pruned_at = None

    def on_training_start(self) -> None:
        # Also here for a plug-in registered with trainer.register_plugin.
        _check_validates(self.trainer)

    def on_validation_end(self, validation_cycle: int, /) -> None:
        # The model's on_validation_end has not run yet: report at the next stop check.
        self._pending_cycle = validation_cycle

    @stop_decided_at_validation
    def should_training_stop(self) -> bool:
        """Report the cycle's metric and ask the pruner (after each validation cycle)."""
        cycle = self._pending_cycle
        if cycle is None:
            return self._pruned_at is not None
        self._pending_cycle = None
        if self.rank != 0:
            # Rank 0 decides; the trainer spreads its answer to every rank.
            return False
        reported = self._reported_cycle == cycle or self.report_metrics(cycle)
        if reported and self._trial.should_prune():
            self._pruned_at = cycle
            if self.is_distributed:
                self._trial.set_user_attr(PRUNED_ATTR, cycle)
        return self._pruned_at is not None

    def report_metrics(self, validation_cycle: int) -> bool:
        """Report ``model.metrics[metric_name]`` for ``validation_cycle``, on rank 0 only.

        Called automatically after every validation cycle, so a model need not call it;
        one that does (as Helios 1.x models did, in ``on_validation_end``, on every rank)
        is not reported twice. In a distributed run only rank 0 reports: the other ranks'
        values would otherwise overwrite its own. Returns whether a value was reported
        (nothing is on the other ranks, nor when the key is missing).
        """
        model = self.trainer.model
        if self.rank != 0 or model is None or self.metric_name not in model.metrics:
            return False
        if self._reported_cycle != validation_cycle:
            self._trial.report(float(model.metrics[self.metric_name]), validation_cycle)
            self._reported_cycle = validation_cycle
        return True

    def on_training_end(self) -> None:
        """In one process, end a pruned trial: the ``on_training_end`` of the plug-ins
        registered after this one and of the model run, then `TrialPruned` is raised."""
        if self._pruned_at is None or self.is_distributed:
            return
        plugins = list(self.trainer.plugins.values())
        mine = next(index for index, plugin in enumerate(plugins) if plugin is self)
        for later in plugins[mine + 1 :]:
            later.on_training_end()  # a logger records the trial's end, for one
        model = self.trainer.model
        if model is not None:
            model.on_training_end()
        raise optuna.TrialPruned(
            f"trial {self._trial.number} pruned after validation cycle {self._pruned_at}"
        )

    def check_pruned(self) -> None:
        """Raise `optuna.TrialPruned` if the trial was pruned (call it after `fit`).

        Needed after distributed runs, where `fit` returns normally; harmless otherwise.
        """
        cycle = self._pruned_at
        if cycle is None and self.is_distributed_run():
            cycle = self._frozen().user_attrs.get(PRUNED_ATTR)
        if cycle is not None:
            raise optuna.TrialPruned(
                f"trial {self._trial.number} pruned after validation cycle {cycle}"
            )

    def is_distributed_run(self) -> bool:
        """Whether the trainer this plug-in belongs to runs several processes."""
        try:
            return self.trainer.is_distributed
        except RuntimeError:
            return False

    # -- state ----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The trial's parameters (checked against the trial when resuming)."""
        return dict(self._trial.params)

    def load_state_dict(self, state_dict: Mapping[str, Any], /) -> None:
        """Check that a checkpoint was written with this trial's parameters.

        Raises:
            ValueError: if a parameter the checkpoint recorded differs from the trial's.
        """
        current = self._trial.params
        different = {
            name: (value, current[name])
            for name, value in state_dict.items()
            if name in current and current[name] != value
        }
        if different:
            details = ", ".join(
                f"{k}: checkpoint {a!r}, trial {b!r}" for k, (a, b) in different.items()
            )
            raise ValueError(
                f"the checkpoint was written by a trial with other parameters ({details}); "
                "it belongs to another trial. Give this trial its own save name "
                "(plugin.configure_model(model)) or remove the stale checkpoints."
            )

    # -- suggestions ----------------------------------------------------------------------

    @overload
    def suggest(self, type_name: Literal["float"], name: str, **kwargs: Any) -> float: ...
    @overload
    def suggest(self, type_name: Literal["int"], name: str, **kwargs: Any) -> int: ...
    @overload
    def suggest(
        self, type_name: Literal["categorical"], name: str, **kwargs: Any
    ) -> CategoricalChoiceType: ...
    @overload
    def suggest(
        self, type_name: str, name: str, **kwargs: Any
    ) -> float | int | CategoricalChoiceType: ...

    def suggest(
        self, type_name: str, name: str, **kwargs: Any
    ) -> float | int | CategoricalChoiceType:
        """Suggest a value with ``trial.suggest_<type_name>(name, **kwargs)``.

        Lets configuration (a file, the command line) choose what to tune. Only the
        current suggest functions are wrapped: ``categorical``, ``int`` and ``float``.

        Raises:
            KeyError: for any other ``type_name``, listing the known ones.

        Examples:
            >>> import optuna, helios.plugins.optuna as hlpo
            >>> plugin = hlpo.OptunaPlugin(optuna.create_study().ask(), "loss")
            >>> plugin.suggest("int", "layers", low=1, high=1)
            1
        """
        suggesters: dict[str, Callable[..., Any]] = {
            "categorical": self._trial.suggest_categorical,
            "int": self._trial.suggest_int,
            "float": self._trial.suggest_float,
        }
        if type_name not in suggesters:
            raise KeyError(
                f"unknown suggestion type {type_name!r}; use one of {sorted(suggesters)}"
            )
        value: float | int | CategoricalChoiceType = suggesters[type_name](name, **kwargs)
        return value
