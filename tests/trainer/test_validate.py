"""`Trainer.validate` across processes: spawned gloo ranks, each validating its shard of
the checkpoint it loaded, give what one process gives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import helios.plugins as hlp
import helios.trainer as hlt
from tests.trainer.helpers import ClassifierData, ClassifierModel


class Counting(ClassifierModel):
    """Counts correct validation predictions over every rank; rank 0 sends the counts."""

    def on_validation_end(self, validation_cycle: int) -> None:
        counts = hlt.reduce_metrics({"correct": self.correct, "total": self.total}, op="sum")
        self.metrics = {**counts, "cycle": validation_cycle}
        queue = self.trainer.queue
        if queue is not None and self.rank == 0:
            queue.put(dict(self.metrics))


def trainer(root: Path, **options: Any) -> hlt.Trainer:
    return hlt.Trainer(
        train_unit="iteration",
        total_steps=6,
        valid_frequency=3,
        chkpt_frequency=3,
        use_cpu=True,
        chkpt_root=root,
        random_seed=5,
        **options,
    )


@pytest.mark.distributed
def test_two_ranks_validate_the_same_checkpoint_as_one(tmp_path: Path) -> None:
    training = trainer(tmp_path)
    hlp.RetentionPlugin(2, metric="correct").configure_trainer(training)  # records scores
    training.fit(Counting("validated"), ClassifierData(size=64))
    alone = Counting("validated")
    trainer(tmp_path).validate(alone, ClassifierData(size=64))
    assert alone.metrics["total"] == 32

    spread = trainer(tmp_path, cpu_processes=2, collective_timeout=60)
    hlp.RetentionPlugin(metric="correct").configure_trainer(spread)
    hlp.DevicePlugin().configure_trainer(spread)
    assert spread.validate(Counting("validated"), ClassifierData(size=64)) is True
    assert spread.queue is not None
    assert spread.queue.get(timeout=30) == alone.metrics  # cycle 2: the newest's
    # "best" is chosen in the main process, before the workers start.
    assert spread.validate(Counting("validated"), ClassifierData(size=64), checkpoint="best")
    best = spread.queue.get(timeout=30)
    assert best["total"] == 32
    assert best["cycle"] in (1, 2)
