"""Validation in distributed runs: sharded by default (combine with reduce_metrics), or
unsharded (every rank sees all of the data), as a loader chooses."""

from __future__ import annotations

from typing import Any

import pytest

import helios.trainer as hlt
from helios.data import ResumableSampler
from tests.trainer.validation_helpers import Counting, ValidationData, full_label_sum


def _validate_on_two_ranks(*, shard: bool, reduce: bool) -> list[dict[str, Any]]:
    trainer = hlt.Trainer(
        total_steps=1, valid_frequency=1, use_cpu=True, cpu_processes=2, collective_timeout=60
    )
    trainer.fit(Counting(reduce=reduce), ValidationData(shard=shard))
    assert trainer.queue is not None
    results = [trainer.queue.get(timeout=30) for _ in range(2)]
    return sorted(results, key=lambda result: int(result["rank"]))


@pytest.mark.distributed
@pytest.mark.parametrize(
    ("shard", "reduce", "seen"),
    [(True, False, 16.0), (True, True, 32.0), (False, False, 32.0)],
    ids=["sharded", "sharded-and-reduced", "unsharded"],
)
def test_what_each_rank_validates_on(shard: bool, reduce: bool, seen: float) -> None:
    ranks = _validate_on_two_ranks(shard=shard, reduce=reduce)
    assert [rank["seen"] for rank in ranks] == [seen, seen]
    if seen == 32.0:
        assert [rank["label_sum"] for rank in ranks] == [full_label_sum()] * 2
    else:  # each rank saw its half: together, all of it
        assert sum(rank["label_sum"] for rank in ranks) == full_label_sum()


def test_an_unsplit_sampler_ignores_the_shard() -> None:
    split, whole = ResumableSampler(10, shuffle=False), ResumableSampler(10, split=False)
    split.shard(1, 2)
    whole.shard(1, 2)
    assert list(split) == [1, 3, 5, 7, 9]
    assert sorted(whole) == list(range(10))
