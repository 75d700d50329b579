"""SIGKILL one rank of a 2-rank gloo run from outside, at a seeded random time.

The parent must raise `helios.trainer.WorkerError` naming the rank and the signal within
`benchmarks.campaign.ranks.REPORT_BOUND` seconds of the kill (the collective timeout is
far longer), leave no worker process behind, keep every checkpoint loadable, and resume
from the newest one to the same final weights as an uninterrupted 2-rank run.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from benchmarks.campaign.checkpoints import Reference
from benchmarks.campaign.processes import SEED
from benchmarks.campaign.ranks import distributed_case, prepare_distributed

pytestmark = [pytest.mark.distributed, pytest.mark.faults]

_RNG = random.Random(SEED)
#: (rank to kill, seconds after the first checkpoint): each rank once.
KILLS = [(rank, round(_RNG.uniform(0.0, 0.5), 3)) for rank in (0, 1)]


@pytest.fixture(scope="module")
def two_rank_reference(tmp_path_factory: pytest.TempPathFactory) -> Reference:
    return prepare_distributed(tmp_path_factory.mktemp("two-ranks"))


@pytest.mark.parametrize(("rank", "delay"), KILLS, ids=[f"rank{rank}" for rank, _ in KILLS])
def test_killed_rank_is_reported_cleaned_up_and_resumed(
    two_rank_reference: Reference, rank: int, delay: float, tmp_path: Path
) -> None:
    case = distributed_case(two_rank_reference, rank, delay, tmp_path)
    assert not case.hung, case.problems
    assert not case.lost, case.problems
    assert case.problems == ()
