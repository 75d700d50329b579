"""What the trainer gives and checks of the user's model and data module: the data module
reaches the trainer, a ``metrics`` property works, misspelt and retired hooks are named."""

from __future__ import annotations

import warnings
from typing import Any

import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

import helios.data as hld
import helios.model as hlm
import helios.plugins as hlp
import helios.trainer as hlt
from helios.core._names import suggest_hook
from tests.trainer.helpers import ClassifierData, ClassifierModel


def _trainer(**kwargs: Any) -> hlt.Trainer:
    return hlt.Trainer(total_steps=1, use_cpu=True, **kwargs)


class LooksUpPlugins(ClassifierData):
    """Reaches the trainer's plug-ins while preparing its data, as the seed allows."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list[str]]] = []

    def prepare_data(self) -> None:
        self.seen.append(("prepare_data", list(self.trainer.plugins)))

    def setup(self) -> None:
        self.seen.append(("setup", list(self.trainer.plugins)))
        super().setup()


def test_the_data_module_reaches_the_trainer_before_prepare_data() -> None:
    trainer = _trainer()
    hlp.DevicePlugin("cpu").configure_trainer(trainer)
    data = LooksUpPlugins()
    with pytest.raises(RuntimeError, match="has no trainer yet"):
        data.trainer  # noqa: B018
    trainer.fit(ClassifierModel(), data)
    assert data.seen == [("prepare_data", ["device"]), ("setup", ["device"])]
    assert data.trainer is trainer


class ComputedMetrics(ClassifierModel):
    """Computes ``metrics`` as a property, as Helios 1.x models do."""

    def __init__(self) -> None:
        super().__init__("computed")
        self._scores: dict[str, float] = {}

    @property  # type: ignore[misc]  # a read-only override of the read-write base
    def metrics(self) -> dict[str, float]:
        return dict(self._scores)

    def on_validation_end(self, validation_cycle: int) -> None:
        self._scores["accuracy"] = self.correct / max(self.total, 1)


def test_a_model_may_compute_metrics_as_a_property() -> None:
    model = ComputedMetrics()
    assert model.metrics == {}
    _trainer(valid_frequency=1).fit(model, ClassifierData())
    assert set(model.metrics) == {"accuracy"}


def test_metrics_can_be_filled_or_assigned() -> None:
    model = hlm.Model("plain")
    model.metrics["loss"] = 1.0
    assert model.metrics == {"loss": 1.0}
    model.metrics = {"accuracy": 0.5}
    assert model.metrics == {"accuracy": 0.5}


class Lightningish(ClassifierModel):
    def training_step(self, batch: Any, state: hlt.TrainingState) -> None: ...
    def on_train_epoch_end(self, epoch: int) -> None: ...
    def compute_loss(self, batch: Any) -> torch.Tensor:
        return torch.zeros(())


class Ported(ClassifierModel):
    def append_metadata_to_chkpt_name(self, chkpt_name: str) -> str:
        return chkpt_name

    def user_state_dict(self) -> dict[str, Any]:
        return {}


class ValData(ClassifierData):
    def val_dataloader(self) -> None:
        return None


def _warnings_of_fit(model: hlm.Model, data: hld.DataModule) -> list[str]:
    with pytest.warns(UserWarning, match="is not a hook|is no longer called") as caught:
        _trainer().fit(model, data)
    assert all(w.filename == __file__ for w in caught)
    return [str(w.message) for w in caught]


def test_misspelt_model_hooks_are_named() -> None:
    messages = _warnings_of_fit(Lightningish(), ClassifierData())
    assert any("training_step is not a hook" in m and "train_step?" in m for m in messages)
    assert any("on_train_epoch_end" in m and "on_training_epoch_end?" in m for m in messages)
    assert not any("compute_loss" in m for m in messages)


def test_retired_model_hooks_say_what_replaced_them() -> None:
    messages = _warnings_of_fit(Ported(), ClassifierData())
    assert any(
        "append_metadata_to_chkpt_name is no longer called: checkpoint names" in m
        for m in messages
    )
    assert any("user_state_dict is no longer called: return" in m for m in messages)


def test_misspelt_data_module_hooks_are_named() -> None:
    messages = _warnings_of_fit(ClassifierModel(), ValData())
    assert messages == [
        "data module ValData: val_dataloader is not a hook and is never called; did you "
        "mean valid_dataloader?"
    ]


def test_correct_classes_do_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _trainer().fit(ClassifierModel(), ClassifierData())


_HOOKS = sorted(hlm.MODEL_HOOKS)


@given(st.sampled_from(_HOOKS))
def test_a_hook_itself_is_never_flagged(name: str) -> None:
    assert suggest_hook(name, _HOOKS) is None


@given(st.sampled_from([h for h in _HOOKS if h.count("_") >= 2]), st.data())
def test_reordered_words_of_a_hook_are_recognised(name: str, data: st.DataObject) -> None:
    words = name.split("_")
    shuffled = data.draw(st.permutations(words))
    candidate = "_".join(shuffled)
    if candidate != name:
        assert suggest_hook(candidate, _HOOKS) is not None
