"""What a user's own code sees: the public return types, checked by mypy and by pyright.

One small program written the way the docs teach: a model that reads its hyper-parameters
from the Optuna plug-in through a typed lookup, a data module, plug-ins composed from pure
transforms, and the values that `fit`, `test`, `create_plugin`, `tree_map`, `compose` and
`reduce_metrics` hand back. Every ``assert_type`` holds under ``mypy --strict`` and under
basedpyright's strict mode (see ``tests/typing/pyrightconfig.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, assert_type

import optuna
import torch
from optuna.distributions import CategoricalChoiceType
from torch.utils.data import DataLoader, TensorDataset

import helios as hl
import helios.core as hlc
import helios.data as hld
import helios.model as hlm
import helios.plugins as hlp
import helios.plugins.optuna as hlpo
import helios.trainer as hlt


class Batch(NamedTuple):
    inputs: torch.Tensor
    targets: torch.Tensor


def configured(value: str) -> str:
    """Stands for a value read from a configuration file."""
    return value


def scale_inputs(batch: Batch, /) -> Batch:
    return batch._replace(inputs=batch.inputs / 2)


class TunedRegressor(hlm.Model):
    def __init__(self) -> None:
        super().__init__("tuned")
        self.seen: list[Batch] = []

    def setup(self, fast_init: bool = False) -> None:
        # Typed lookup by plug-in class: the result is an OptunaPlugin, no cast needed.
        tuner = self.trainer.plugin(hlpo.OptunaPlugin.plugin_id, hlpo.OptunaPlugin)
        assert_type(tuner, hlpo.OptunaPlugin)
        assert_type(tuner.trial, optuna.Trial)
        assert_type(tuner.metric_name, str)
        # The overloads of suggest: the literal type name picks the return type.
        lr = tuner.suggest("float", "lr", low=1e-3, high=1e-1, log=True)
        assert_type(lr, float)
        width = tuner.suggest("int", "width", low=2, high=4)
        assert_type(width, int)
        activation = tuner.suggest("categorical", "activation", choices=["relu", "tanh"])
        assert_type(activation, CategoricalChoiceType)
        # Chosen by configuration, the type name is only known to be a str.
        momentum = tuner.suggest(configured("float"), "momentum", low=0.0, high=0.5)
        assert_type(momentum, float | int | CategoricalChoiceType)

        self.net = torch.nn.Sequential(
            torch.nn.Linear(3, width),
            torch.nn.ReLU() if activation == "relu" else torch.nn.Tanh(),
            torch.nn.Linear(width, 1),
        ).to(self.device)
        self.optimizer: torch.optim.Optimizer = torch.optim.SGD(self.net.parameters(), lr=lr)

    def train_step(self, batch: Batch, state: hlt.TrainingState) -> None:
        self.seen.append(batch)
        loss = torch.nn.functional.mse_loss(self.net(batch.inputs), batch.targets)
        self.optimizer.zero_grad()
        torch.autograd.backward(loss)
        self.optimizer.step()

    def valid_step(self, batch: Batch, step: int) -> None:
        with torch.no_grad():
            loss = torch.nn.functional.mse_loss(self.net(batch.inputs), batch.targets)
        self.metrics["loss"] = loss.item()

    def on_validation_end(self, validation_cycle: int) -> None:
        # A single process: reduce_metrics hands back a new dict with the same values.
        reduced = hlt.reduce_metrics(self.metrics, op="mean")
        assert_type(reduced, dict[str, float])
        self.metrics = reduced

    def state_dict(self) -> dict[str, Any]:
        return {"net": self.net.state_dict()}

    def load_state_dict(self, state_dict: Mapping[str, Any], fast_init: bool = False) -> None:
        self.net.load_state_dict(state_dict["net"])


class Points(hld.DataModule):
    def setup(self) -> None:
        inputs = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
        self.dataset = TensorDataset(inputs, inputs.sum(dim=1, keepdim=True))

    def train_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.dataset, batch_size=4)

    def valid_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.dataset, batch_size=8)

    def test_dataloader(self) -> DataLoader[Any]:
        return self.create_dataloader(self.dataset, batch_size=8)


# -- pure transforms: tree_map and compose keep the batch type --------------------------
x = torch.ones(2, 3)
assert_type(hl.tree_map(lambda leaf: leaf, Batch(x, x)), Batch)
assert_type(hlc.tree_map(lambda leaf: leaf, {"rows": [x, x]}), dict[str, list[torch.Tensor]])
# compose chains transforms that keep the batch type (batch -> batch).
on_device = hl.compose(hlc.to_device("cpu"), hlc.cast(torch.float32), scale_inputs)
assert_type(on_device, Callable[[Batch], Batch])


def to_batch(rows: list[torch.Tensor], /) -> Batch:
    """The loaders yield lists; the model wants a `Batch` on its device."""
    return on_device(Batch(rows[0], rows[1]))


assert_type(hlc.compose(hlc.to_device("cpu"), hlc.cast(torch.float32))(Batch(x, x)), Batch)
assert_type(hlc.compose(), hlc.TreeTransform)
assert_type(hlc.compose(hlc.identity)(Batch(x, x)), Batch)

# -- plug-ins: one composed transform per phase, and one made by name -------------------
prepare = hlp.BatchPlugin("prepare", training=to_batch, validation=to_batch, testing=to_batch)
made = hlp.create_plugin("DevicePlugin", device="cpu")
assert_type(made, hlp.Plugin)
assert_type(hlp.create_plugin("OptunaPlugin", optuna.create_study().ask(), "loss"), hlp.Plugin)

# -- a tuned run ------------------------------------------------------------------------
optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
trial = study.ask()
tuner = hlpo.OptunaPlugin(trial, "loss")
assert_type(tuner.plug_id, str)
assert_type(hlpo.OptunaPlugin.plugin_id, str)

trainer = hlt.Trainer(train_unit="epoch", total_steps=2, valid_frequency=1, use_cpu=True)
tuner.configure_trainer(trainer)
prepare.configure_trainer(trainer)
model = TunedRegressor()
tuner.configure_model(model)
assert_type(model.save_name, str)

assert_type(trainer.fit(model, Points()), bool)
assert_type(tuner.check_pruned(), None)
assert_type(trainer.test(model, Points()), bool)

# Lookups by id, narrowed by class.
assert_type(trainer.plugin("prepare", hlp.BatchPlugin), hlp.BatchPlugin)
assert_type(trainer.plugins.get_as("optuna", hlpo.OptunaPlugin), hlpo.OptunaPlugin)
assert_type(trainer.plugins["optuna"], hlp.PluginProtocol)
found = trainer.plugins.get("optuna")
if isinstance(found, hlpo.OptunaPlugin):
    assert_type(found, hlpo.OptunaPlugin)
assert_type(trainer.state, hlt.TrainingState)
assert_type(hl.__version__, str)

# The runtime agrees with the types.
assert all(isinstance(batch, Batch) for batch in model.seen)
assert set(trial.params) == {"lr", "width", "activation", "momentum"}
assert study.trials[0].intermediate_values.keys() == {1, 2}
assert trainer.state.global_epoch == 2
