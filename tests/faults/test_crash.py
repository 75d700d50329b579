"""Crash tests with real processes: SIGKILL at a seeded sweep of points (during
checkpoint writes too), and a disk that fills up during a checkpoint write.

After every kill: the newest checkpoint loads, no partial file sits under a final name,
each surviving checkpoint equals the uninterrupted run's, resuming finishes training, and
the final weights are ``torch.equal`` to the uninterrupted run's (CPU, deterministic,
dropout, a shuffling loader from ``DataModule.create_dataloader``, checkpoints
mid-epoch). See `benchmarks.campaign` for how the damage is done.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.campaign.checkpoints import Reference
from benchmarks.campaign.disk import (
    DISK_FULL_KINDS,
    DiskFullSetup,
    disk_full_case,
    prepare_disk_full,
)
from benchmarks.campaign.sweep import KillPoint, kill_points, prepare_sweep, sweep_case

pytestmark = pytest.mark.faults

POINTS = kill_points()


@pytest.fixture(scope="module")
def sweep_reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return prepare_sweep(tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def disk_setup(tmp_path_factory: pytest.TempPathFactory) -> DiskFullSetup:
    return prepare_disk_full(tmp_path_factory.mktemp("disk"))


def test_the_sweep_covers_every_kind_of_kill_point() -> None:
    assert len(POINTS) >= 10
    assert {point.kind for point in POINTS} == {
        "train-step",
        "validation",
        "mid-write",
        "before-rename",
        "after-rename",
        "external",
    }
    assert kill_points() == POINTS, "the sweep must be the same for the same seed"


@pytest.mark.parametrize("point", POINTS, ids=lambda point: f"{point.kind}-{point.at}")
def test_sigkill_then_resume_matches_the_uninterrupted_run(
    sweep_reference: Reference, point: KillPoint, tmp_path: Path
) -> None:
    case = sweep_case(sweep_reference, point, tmp_path)
    assert not case.hung, case.problems
    assert not case.lost, case.problems
    assert case.problems == ()


@pytest.mark.parametrize("kind", DISK_FULL_KINDS)
def test_disk_full_keeps_earlier_checkpoints_and_says_so(
    disk_setup: DiskFullSetup, kind: str, tmp_path: Path
) -> None:
    case = disk_full_case(disk_setup, kind, tmp_path / "case")
    if case.skipped is not None:
        pytest.skip(case.skipped)
    assert not case.lost, case.problems
    assert case.problems == ()
