"""Training on one GPU gives what training on the CPU gives, with the same batches."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import helios.data as hld
import helios.plugins as hlp
import helios.trainer as hlt
from tests.gpu.models import (
    KeepLengthsOnHost,
    PinnedData,
    RecordingClassifier,
    SequenceData,
    SequenceModel,
    cpu_weights,
)

STEPS = 30  # epochs of 12 batches: the run crosses two epoch ends and stops mid-epoch


def trainer_for(device: str, **options: Any) -> hlt.Trainer:
    settings: dict[str, Any] = {
        "train_unit": "iteration",
        "total_steps": STEPS,
        "valid_frequency": 10,
        "random_seed": 4,
    }
    settings.update(options)
    if device == "cpu":
        return hlt.Trainer(use_cpu=True, **settings)
    return hlt.Trainer(gpus=[0], **settings)


def train(device: str, plugin: hlp.DevicePlugin, *, pin: bool = True) -> RecordingClassifier:
    trainer = trainer_for(device)
    plugin.configure_trainer(trainer)
    model = RecordingClassifier()
    assert trainer.fit(model, PinnedData(pin=pin)) is True
    assert trainer.state.global_iteration == STEPS
    return model


def assert_same_training(cpu: RecordingClassifier, gpu: RecordingClassifier) -> None:
    assert len(gpu.labels) == len(cpu.labels) == STEPS
    assert all(torch.equal(a, b) for a, b in zip(gpu.labels, cpu.labels, strict=True))
    torch.testing.assert_close(gpu.losses, cpu.losses, rtol=1e-4, atol=1e-5)
    expected = cpu_weights(cpu)
    for key, value in cpu_weights(gpu).items():
        torch.testing.assert_close(value, expected[key], rtol=1e-4, atol=1e-5)


@pytest.fixture(scope="module")
def cpu_run() -> RecordingClassifier:
    return train("cpu", hlp.DevicePlugin())


@pytest.mark.parametrize(
    "make_plugin",
    [
        pytest.param(lambda: hlp.CUDAPlugin(), id="CUDAPlugin"),
        pytest.param(lambda: hlp.DevicePlugin(), id="DevicePlugin"),
        pytest.param(lambda: hlp.CUDAPlugin(prefetch=True), id="CUDAPlugin-prefetch"),
        pytest.param(lambda: hlp.DevicePlugin(prefetch=True), id="DevicePlugin-prefetch"),
    ],
)
def test_gpu_training_matches_cpu_training(
    cpu_run: RecordingClassifier, make_plugin: Any, cuda: torch.device
) -> None:
    gpu_run = train("cuda", make_plugin())
    assert gpu_run.devices == {cuda}
    assert gpu_run.device == cuda
    assert next(gpu_run.plain_net.parameters()).device == cuda
    assert_same_training(cpu_run, gpu_run)


def test_prefetching_from_pageable_memory_says_so_once_and_trains_the_same(
    cpu_run: RecordingClassifier,
) -> None:
    with pytest.warns(hld.PrefetchWarning, match="pageable host memory") as caught:
        gpu_run = train("cuda", hlp.CUDAPlugin(prefetch=True), pin=False)
    assert sum(issubclass(w.category, hld.PrefetchWarning) for w in caught) == 1
    assert_same_training(cpu_run, gpu_run)


def test_the_trainer_picks_the_gpu_when_cuda_is_there(cuda: torch.device) -> None:
    trainer = hlt.Trainer()
    assert trainer.use_cpu is False
    assert trainer.device == cuda
    assert trainer.map_loc == {"cuda:0": "cuda:0"}


def test_cuda_plugin_refuses_a_cpu_trainer() -> None:
    trainer = hlt.Trainer(use_cpu=True)
    hlp.CUDAPlugin().configure_trainer(trainer)
    with pytest.raises(RuntimeError, match="the trainer must train on a GPU"):
        trainer.fit(RecordingClassifier(), PinnedData())


@pytest.mark.parametrize("prefetch", [False, True], ids=["plain", "prefetch"])
def test_mixed_data_keeps_the_leaves_that_must_stay_on_the_cpu(
    prefetch: bool, cuda: torch.device
) -> None:
    def run(device: str) -> SequenceModel:
        trainer = trainer_for(device, total_steps=9, valid_frequency=None)
        KeepLengthsOnHost(prefetch=prefetch and device != "cpu").configure_trainer(trainer)
        model = SequenceModel()
        trainer.fit(model, SequenceData())
        return model

    on_cpu, on_gpu = run("cpu"), run("cuda")
    assert on_gpu.length_devices == {torch.device("cpu")}
    assert on_gpu.ids == on_cpu.ids
    assert next(on_gpu.gru.parameters()).device == cuda
    expected = on_cpu.weights()
    # Looser than for the MLP: cuDNN may run a float32 GRU with TF32 tensor cores.
    for key, value in on_gpu.weights().items():
        torch.testing.assert_close(value, expected[key], rtol=1e-3, atol=1e-3)
