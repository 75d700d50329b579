"""The bad-input matrix: `Trainer()` given arguments it must refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helios.trainer as hlt
from tests.faults.bad_input.parts import (
    NO_CUDA,
    Row,
)
from tests.faults.bad_input.runner import assert_refused, parametrize


def _trainer_row(bad: str, match: str, skip: str | None = None, **kwargs: Any) -> Row:
    return Row("Trainer()", bad, lambda ws: hlt.Trainer(**kwargs), ValueError, match, skip=skip)


TRAINER_ROWS = [
    _trainer_row(
        "train_unit='fortnight'", r"train_unit must be .*'fortnight'", train_unit="fortnight"
    ),
    _trainer_row("train_unit=3", r"train_unit must be a TrainingUnit or one of", train_unit=3),
    _trainer_row("total_steps=0", r"total_steps must be at least 1, got 0", total_steps=0),
    _trainer_row("total_steps=1.5", r"total_steps must be an int .*1\.5", total_steps=1.5),
    _trainer_row("total_steps='5'", r"total_steps must be a positive int", total_steps="5"),
    _trainer_row(
        "total_steps=inf without early stopping",
        r"total_steps=float\('inf'\) trains forever unless early_stop_cycles is set",
        total_steps=float("inf"),
    ),
    _trainer_row(
        "valid_frequency=0", r"valid_frequency must be a positive int", valid_frequency=0
    ),
    _trainer_row(
        "valid_frequency=1.5", r"valid_frequency must be a positive int", valid_frequency=1.5
    ),
    _trainer_row(
        "chkpt_frequency=-2",
        r"chkpt_frequency must be a positive int",
        chkpt_frequency=-2,
        chkpt_root="x",
    ),
    _trainer_row(
        "chkpt_frequency without chkpt_root",
        r"chkpt_frequency needs chkpt_root: where should checkpoints go",
        chkpt_frequency=2,
    ),
    _trainer_row(
        "print_frequency=0", r"print_frequency must be a positive int", print_frequency=0
    ),
    _trainer_row(
        "accumulation_steps=0", r"accumulation_steps must be a positive int", accumulation_steps=0
    ),
    _trainer_row(
        "accumulation_steps=True",
        r"accumulation_steps must be a positive int",
        accumulation_steps=True,
    ),
    _trainer_row(
        "early_stop_cycles=0", r"early_stop_cycles must be a positive int", early_stop_cycles=0
    ),
    _trainer_row(
        "use_cpu='yes'", r"use_cpu must be True, False or None, got 'yes'", use_cpu="yes"
    ),
    _trainer_row(
        "use_cpu=True and gpus",
        r"use_cpu=True and gpus were both given; choose one",
        use_cpu=True,
        gpus=[0],
    ),
    _trainer_row("gpus=[]", r"gpus must be a non-empty list of GPU ids >= 0", gpus=[]),
    _trainer_row(
        "gpus=[-1]", r"gpus must be a non-empty list of GPU ids >= 0, got \[-1\]", gpus=[-1]
    ),
    _trainer_row("gpus=[0, 0]", r"gpus lists an id twice", gpus=[0, 0]),
    _trainer_row("gpus=0", r"gpus must be a list of GPU ids, got 0", gpus=0),
    _trainer_row(
        "gpus=[0] without CUDA",
        r"CUDA is not available; pass use_cpu=True",
        skip=NO_CUDA,
        gpus=[0],
    ),
    _trainer_row(
        "use_cpu=False without CUDA",
        r"CUDA is not available; pass use_cpu=True",
        skip=NO_CUDA,
        use_cpu=False,
    ),
    _trainer_row(
        "cpu_processes=0", r"cpu_processes must be a positive int, got 0", cpu_processes=0
    ),
    _trainer_row(
        "cpu_processes=True", r"cpu_processes must be a positive int", cpu_processes=True
    ),
    _trainer_row("cpu_processes=2.0", r"cpu_processes must be a positive int", cpu_processes=2.0),
    _trainer_row(
        "cpu_processes=2 with use_cpu=False",
        r"cpu_processes > 1 needs use_cpu=True",
        cpu_processes=2,
        use_cpu=False,
    ),
    _trainer_row(
        "random_seed=-1", r"random_seed must be an int >= 0 or None, got -1", random_seed=-1
    ),
    _trainer_row("random_seed='1'", r"random_seed must be an int >= 0", random_seed="1"),
    _trainer_row("random_seed=True", r"random_seed must be an int >= 0", random_seed=True),
    _trainer_row(
        "enable_deterministic='yes'",
        r"enable_deterministic must be True or False",
        enable_deterministic="yes",
    ),
    _trainer_row(
        "enable_progress_bar=1",
        r"enable_progress_bar must be True or False",
        enable_progress_bar=1,
    ),
    _trainer_row(
        "enable_file_logging without log_root",
        r"enable_file_logging=True needs log_root: where should logs go",
        enable_file_logging=True,
    ),
    _trainer_row("chkpt_root=3", r"chkpt_root must be a folder path", chkpt_root=3),
    _trainer_row(
        "log_root=5", r"log_root must be a folder path", log_root=5, enable_file_logging=True
    ),
    _trainer_row(
        "train_exceptions=[42]",
        r"train_exceptions must hold exception classes, got 42",
        train_exceptions=[42],
    ),
    _trainer_row(
        "train_exceptions=ValueError (not a list)",
        r"train_exceptions must be a list of exception classes",
        train_exceptions=ValueError,
    ),
    _trainer_row(
        "test_exceptions=['x']",
        r"test_exceptions must hold exception classes",
        test_exceptions=["x"],
    ),
    _trainer_row(
        "collective_timeout=0", r"collective_timeout must be > 0 seconds", collective_timeout=0
    ),
    _trainer_row(
        "collective_timeout=nan",
        r"collective_timeout must be > 0 seconds",
        collective_timeout=float("nan"),
    ),
    _trainer_row(
        "collective_timeout=inf",
        r"collective_timeout must be .*finite",
        collective_timeout=float("inf"),
    ),
    _trainer_row(
        "collective_timeout='5'", r"collective_timeout must be > 0 seconds", collective_timeout="5"
    ),
    _trainer_row("run_name=3", r"run_name must be a string, got 3", run_name=3),
]


@parametrize(TRAINER_ROWS)
def test_trainer_refuses(row: Row, matrix_template: Path, tmp_path: Path) -> None:
    assert_refused(row, matrix_template, tmp_path)
