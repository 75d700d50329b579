"""Checkpoint retention under real SIGKILLs (`benchmarks.campaign.retention`): a run that
deletes old checkpoints is killed at a seeded sweep of points, right before and right
after a deletion among them, then resumed.

After every kill the newest checkpoint loads, every checkpoint left equals the
uninterrupted run's, and nothing the policy keeps is missing; the resumed run never
deletes the checkpoint it resumed from before a newer one is on disk, and it ends with
the uninterrupted run's weights and checkpoints.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.campaign.retention import (
    DELETE_KINDS,
    RetentionReference,
    prepare_retention,
    retention_case,
    retention_points,
)
from benchmarks.campaign.sweep import KillPoint

pytestmark = pytest.mark.faults

POINTS = retention_points()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> RetentionReference:
    return prepare_retention(tmp_path_factory.mktemp("retention"))


def test_the_sweep_kills_around_deletions_and_writes() -> None:
    kinds = {point.kind for point in POINTS}
    assert kinds >= {*DELETE_KINDS, "mid-write", "before-rename", "after-rename", "train-step"}
    assert retention_points() == POINTS, "the sweep must be the same for the same seed"


def test_the_reference_deletes_what_the_policy_drops(reference: RetentionReference) -> None:
    assert len(reference.names) == 8  # every checkpoint of the run, scored
    assert reference.kept == sorted(reference.must_keep(8))
    assert len(reference.kept) < len(reference.names)


@pytest.mark.parametrize("point", POINTS, ids=lambda point: f"{point.kind}-{point.at}")
def test_sigkill_with_retention_loses_nothing_kept(
    reference: RetentionReference, point: KillPoint, tmp_path: Path
) -> None:
    case = retention_case(reference, point, tmp_path)
    assert not case.hung, case.problems
    assert not case.lost, case.problems
    assert case.problems == ()
