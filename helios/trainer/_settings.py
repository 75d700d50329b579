"""The trainer's settings: one frozen, validated record, and the devices it resolves to."""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterable
from pathlib import Path

import attrs
import torch

from helios.core import TrainingUnit
from helios.core._checks import (
    flag,
    folder_or_none,
    is_int,
    non_negative_int_or_none,
    optional_flag,
    positive_finite,
    positive_int,
    string,
)
from helios.core.loop import LoopConfig

__all__ = ["Devices", "TrainerSettings", "resolve_devices", "seed_and_determinism"]


def _exception_classes(name: str, values: object) -> tuple[type[BaseException], ...]:
    if isinstance(values, type) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a list of exception classes, got {values!r}")
    out = tuple(values)
    for value in out:
        if not (isinstance(value, type) and issubclass(value, BaseException)):
            raise ValueError(f"{name} must hold exception classes, got {value!r}")
    return out


def _train_exceptions(values: object) -> tuple[type[BaseException], ...]:
    return _exception_classes("train_exceptions", values)


def _test_exceptions(values: object) -> tuple[type[BaseException], ...]:
    return _exception_classes("test_exceptions", values)


def _unit(value: TrainingUnit | str) -> TrainingUnit:
    return TrainingUnit.parse(value)


def _gpu_ids(gpus: object) -> tuple[int, ...] | None:
    if gpus is None:
        return None
    if not isinstance(gpus, Iterable):
        raise ValueError(f"gpus must be a list of GPU ids, got {gpus!r}")
    ids = list(gpus)
    if not ids or any(not is_int(g) or g < 0 for g in ids):
        raise ValueError(f"gpus must be a non-empty list of GPU ids >= 0, got {ids!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"gpus lists an id twice: {ids!r}")
    return tuple(ids)


def _path_or_as_is(value: object) -> object:
    # Invalid values pass through unchanged for the validator to name them.
    return Path(value) if isinstance(value, str | os.PathLike) else value


#: The settings that `LoopConfig` takes under the same names.
_SCHEDULE = (
    "total_steps",
    "valid_frequency",
    "chkpt_frequency",
    "print_frequency",
    "accumulation_steps",
    "early_stop_cycles",
)


@attrs.frozen(kw_only=True)
class TrainerSettings:
    """Everything `Trainer` was asked for, checked; the keywords of `Trainer`.

    Raises:
        ValueError: naming the first invalid argument (or the pair that conflicts).
    """

    run_name: str = attrs.field(default="", validator=string())
    train_unit: TrainingUnit = attrs.field(default=TrainingUnit.EPOCH, converter=_unit)
    # Validated by the `LoopConfig` made from them.
    total_steps: int | float = 1
    valid_frequency: int | None = None
    chkpt_frequency: int | None = None
    print_frequency: int | None = None
    accumulation_steps: int = 1
    early_stop_cycles: int | None = None
    enable_deterministic: bool = attrs.field(default=False, validator=flag())
    enable_cudnn_benchmark: bool = attrs.field(default=False, validator=flag())
    use_cpu: bool | None = attrs.field(default=None, validator=optional_flag())
    gpus: tuple[int, ...] | None = attrs.field(default=None, converter=_gpu_ids)
    cpu_processes: int = attrs.field(default=1, validator=positive_int())
    random_seed: int | None = attrs.field(default=None, validator=non_negative_int_or_none())
    enable_progress_bar: bool = attrs.field(default=False, validator=flag())
    enable_file_logging: bool = attrs.field(default=False, validator=flag())
    capture_warnings: bool = attrs.field(default=False, validator=flag())
    chkpt_root: Path | None = attrs.field(
        default=None, converter=_path_or_as_is, validator=folder_or_none()
    )
    log_root: Path | None = attrs.field(
        default=None, converter=_path_or_as_is, validator=folder_or_none()
    )
    train_exceptions: tuple[type[BaseException], ...] = attrs.field(
        default=(), converter=_train_exceptions
    )
    test_exceptions: tuple[type[BaseException], ...] = attrs.field(
        default=(), converter=_test_exceptions
    )
    collective_timeout: float = attrs.field(default=300.0, validator=positive_finite("seconds"))
    #: The schedule, made from the fields above.
    loop: LoopConfig = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        schedule = {name: getattr(self, name) for name in _SCHEDULE}
        object.__setattr__(self, "loop", LoopConfig(unit=self.train_unit, **schedule))
        self._check_pairs()

    def _check_pairs(self) -> None:
        processes = self.cpu_processes
        if self.gpus is not None and self.use_cpu:
            raise ValueError("use_cpu=True and gpus were both given; choose one")
        if processes > 1 and self.use_cpu is False:
            raise ValueError("cpu_processes > 1 needs use_cpu=True (or use_cpu=None)")
        if processes > 1 and self.gpus is not None:
            raise ValueError(
                f"cpu_processes={processes} and gpus={list(self.gpus)!r} were both given: "
                "with gpus the run has one process per GPU; drop cpu_processes (or gpus and "
                "pass use_cpu=True)"
            )
        if self.chkpt_frequency is not None and self.chkpt_root is None:
            raise ValueError("chkpt_frequency needs chkpt_root: where should checkpoints go?")
        if self.enable_file_logging and self.log_root is None:
            raise ValueError("enable_file_logging=True needs log_root: where should logs go?")
        if self.enable_deterministic and self.enable_cudnn_benchmark:
            raise ValueError(
                "enable_cudnn_benchmark=True picks cuDNN algorithms by timing them, which "
                "enable_deterministic=True rules out; choose one"
            )


@attrs.frozen
class Devices:
    """Where a run's processes train."""

    use_cpu: bool
    #: GPU ids, one process each (empty on the CPU).
    gpus: tuple[int, ...]
    #: Gloo processes on the CPU (1 on GPUs).
    cpu_processes: int


def resolve_devices(
    settings: TrainerSettings, *, cuda_available: bool, device_count: int, launched: bool
) -> Devices:
    """Choose the devices of a run from its settings and what the machine has.

    Args:
        settings: The trainer's settings.
        cuda_available: Whether CUDA works here.
        device_count: How many GPUs are visible.
        launched: Whether this process was started by ``torchrun`` (then each process
            takes the GPU of its local rank).

    Raises:
        ValueError: GPUs asked for where there are none (or too few), or CPU processes
            asked for where ``use_cpu=None`` picks the GPU.
    """
    gpus, use_cpu, processes = settings.gpus, settings.use_cpu, settings.cpu_processes
    if processes > 1 and use_cpu is None and cuda_available:
        raise ValueError(
            f"cpu_processes={processes} asks for CPU processes, but use_cpu=None picks the "
            "GPU on this machine (CUDA is available), where cpu_processes does not apply: "
            "pass use_cpu=True to train on CPU processes, or gpus=[...] for GPUs"
        )
    if gpus is None and (use_cpu or (use_cpu is None and not cuda_available)):
        return Devices(True, (), processes)
    if not cuda_available:
        raise ValueError(
            "GPU training was asked for (use_cpu=False or gpus given) but CUDA is not "
            "available; pass use_cpu=True"
        )
    if gpus is None:
        gpus = tuple(range(device_count)) if launched else (0,)
    if max(gpus) >= device_count:
        raise ValueError(f"gpus={list(gpus)!r} but only {device_count} GPU(s) are visible")
    return Devices(False, gpus, 1)


def seed_and_determinism(settings: TrainerSettings) -> None:
    """Seed Python, NumPy and torch, and set torch's determinism, as ``settings`` ask."""
    seed = settings.random_seed
    if seed is not None:
        random.seed(seed)
        torch.manual_seed(seed)
        with contextlib.suppress(ImportError):
            import numpy as np

            np.random.seed(seed)
    if settings.enable_deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif settings.enable_cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
