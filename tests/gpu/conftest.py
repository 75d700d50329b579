"""The GPU suite: every test in this folder is marked ``cuda`` and needs a CUDA device.

Where CUDA is not available each of them is skipped, with the reason in the summary;
where it is, all of them run. ``scripts/gpu-check`` runs this folder on a GPU machine.
Only what that machine's Python has is imported here (torch, attrs, hypothesis, pytest;
Optuna where its wheels were carried): none of the CPU suite's development tools.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent

NO_CUDA = (
    "CUDA is not available here (torch.cuda.is_available() is False): the GPU suite runs on "
    "a machine with a GPU (scripts/gpu-check)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    available = torch.cuda.is_available()
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.cuda)
            if not available:
                item.add_marker(pytest.mark.skip(reason=NO_CUDA))


@pytest.fixture
def cuda() -> torch.device:
    """The GPU the tests use: the first one."""
    return torch.device("cuda", 0)
