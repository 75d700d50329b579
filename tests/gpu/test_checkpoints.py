"""Checkpoints move between devices: written on the GPU and resumed on the CPU, and back."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import helios.plugins as hlp
import helios.trainer as hlt
from tests.gpu.models import PinnedData, RecordingClassifier, cpu_weights


def fit(device: str, root: Path, steps: int) -> RecordingClassifier:
    trainer = hlt.Trainer(
        train_unit="iteration",
        total_steps=steps,
        chkpt_frequency=5,
        chkpt_root=root,
        random_seed=6,
        **({"use_cpu": True} if device == "cpu" else {"gpus": [0]}),
    )
    plugin = hlp.DevicePlugin() if device == "cpu" else hlp.CUDAPlugin(prefetch=True)
    plugin.configure_trainer(trainer)
    model = RecordingClassifier("moving")
    trainer.fit(model, PinnedData(size=60))
    return model


def devices_of(model: RecordingClassifier) -> set[torch.device]:
    found = {p.device for p in model.plain_net.parameters()}
    for state in model.optimizer.state.values():
        found.update(v.device for v in state.values() if isinstance(v, torch.Tensor))
    return found


@pytest.mark.parametrize(("first", "then"), [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_checkpoint_written_on_one_device_resumes_on_the_other(
    tmp_path: Path, first: str, then: str
) -> None:
    straight = fit("cpu", tmp_path / "straight", 23)
    fit(first, tmp_path / "moving", 12)  # checkpoints after 5 and 10 steps
    resumed = fit(then, tmp_path / "moving", 23)  # from the one after 10
    assert devices_of(resumed) == {torch.device(then, 0) if then == "cuda" else torch.device(then)}
    assert len(resumed.labels) == 13
    assert all(
        torch.equal(a, b) for a, b in zip(resumed.labels, straight.labels[10:], strict=True)
    )
    expected = cpu_weights(straight)
    for key, value in cpu_weights(resumed).items():
        torch.testing.assert_close(value, expected[key], rtol=1e-4, atol=1e-5)


def test_testing_on_the_cpu_loads_a_checkpoint_written_on_the_gpu(tmp_path: Path) -> None:
    trained = fit("cuda", tmp_path, 10)
    model = RecordingClassifier("moving")
    tester = hlt.Trainer(use_cpu=True, chkpt_root=tmp_path)
    assert tester.test(model, PinnedData(size=60)) is True
    assert devices_of(model) == {torch.device("cpu")}
    expected = cpu_weights(trained)
    for key, value in cpu_weights(model).items():
        assert torch.equal(value, expected[key]), key
