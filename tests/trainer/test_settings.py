"""The trainer's settings record and the device choice, as pure values."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import attrs
import hypothesis.strategies as st
import pytest
import torch
from hypothesis import given

import helios.trainer as hlt
from helios.trainer._settings import Devices, TrainerSettings, resolve_devices
from tests.trainer.helpers import ClassifierData, ClassifierModel

INT_FIELDS = ["cpu_processes", "accumulation_steps"]
OPTIONAL_INT_FIELDS = ["valid_frequency", "chkpt_frequency", "print_frequency"]
FLAGS = [
    "enable_deterministic",
    "enable_cudnn_benchmark",
    "enable_progress_bar",
    "enable_file_logging",
    "capture_warnings",
]
NOT_INTS = st.one_of(st.booleans(), st.floats(), st.text(max_size=3), st.just([1]))


@given(st.sampled_from(INT_FIELDS + OPTIONAL_INT_FIELDS), NOT_INTS)
def test_counts_refuse_anything_but_ints(field: str, value: object) -> None:
    kwargs: dict[str, Any] = {field: value}
    if field == "chkpt_frequency":
        kwargs["chkpt_root"] = "x"
    with pytest.raises(ValueError, match=rf"^{field} must be a positive int"):
        TrainerSettings(**kwargs)


@given(st.sampled_from(FLAGS), st.one_of(st.integers(), st.none(), st.text(max_size=3)))
def test_flags_refuse_anything_but_bools(field: str, value: object) -> None:
    kwargs: dict[str, Any] = {field: value}
    with pytest.raises(ValueError, match=rf"^{field} must be True or False"):
        TrainerSettings(**kwargs)


def test_settings_are_frozen_and_carry_the_schedule() -> None:
    settings = TrainerSettings(train_unit="iteration", total_steps=8, valid_frequency=2)
    assert settings.loop.unit is hlt.TrainingUnit.ITERATION
    assert (settings.loop.total_steps, settings.loop.valid_frequency) == (8, 2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        settings.total_steps = 3  # type: ignore[misc]
    trainer = hlt.Trainer(chkpt_root="here", use_cpu=True)
    assert trainer.settings.chkpt_root == Path("here") == trainer.chkpt_root


def test_cudnn_benchmark_and_determinism_conflict() -> None:
    with pytest.raises(ValueError, match=r"enable_cudnn_benchmark=True .*enable_deterministic"):
        hlt.Trainer(enable_cudnn_benchmark=True, enable_deterministic=True)


def _devices(
    *, cuda_available: bool = True, device_count: int = 2, launched: bool = False, **kwargs: Any
) -> Devices:
    return resolve_devices(
        TrainerSettings(**kwargs),
        cuda_available=cuda_available,
        device_count=device_count,
        launched=launched,
    )


def test_devices_on_a_cuda_machine() -> None:
    assert _devices() == Devices(False, (0,), 1)
    assert _devices(launched=True) == Devices(False, (0, 1), 1)
    assert _devices(gpus=[1]) == Devices(False, (1,), 1)
    assert _devices(use_cpu=True, cpu_processes=2) == Devices(True, (), 2)
    with pytest.raises(ValueError, match=r"cpu_processes=2 .*use_cpu=None picks the GPU"):
        _devices(cpu_processes=2)
    with pytest.raises(ValueError, match=r"gpus=\[2\] but only 2 GPU\(s\) are visible"):
        _devices(gpus=[2])


def test_devices_on_a_cpu_machine() -> None:
    assert _devices(cuda_available=False, device_count=0) == Devices(True, (), 1)
    assert _devices(cuda_available=False, cpu_processes=3) == Devices(True, (), 3)
    with pytest.raises(ValueError, match="CUDA is not available; pass use_cpu=True"):
        _devices(cuda_available=False, use_cpu=False)


def test_cudnn_benchmark_is_set_for_the_run() -> None:
    before = torch.backends.cudnn.benchmark
    try:
        hlt.Trainer(total_steps=1, use_cpu=True, enable_cudnn_benchmark=True).fit(
            ClassifierModel(), ClassifierData()
        )
        assert torch.backends.cudnn.benchmark is True
    finally:
        torch.backends.cudnn.benchmark = before


class Warns(ClassifierModel):
    def on_training_start(self) -> None:
        warnings.warn("something to see", UserWarning, stacklevel=1)


def test_captured_warnings_go_to_the_log_file(tmp_path: Path) -> None:
    trainer = hlt.Trainer(
        total_steps=1,
        use_cpu=True,
        capture_warnings=True,
        enable_file_logging=True,
        log_root=tmp_path,
        run_name="warned",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        trainer.fit(Warns(), ClassifierData())
    assert "something to see" in (tmp_path / "warned.log").read_text(encoding="utf-8")
    assert not logging.getLogger("py.warnings").handlers  # left as it was
