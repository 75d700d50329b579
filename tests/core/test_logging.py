"""`helios.core.logging.get_root_logger`: your messages go where helios's go."""

from __future__ import annotations

import logging
from pathlib import Path

import helios.trainer as hlt
from helios.core import logging as hl_logging
from tests.trainer.helpers import ClassifierData, ClassifierModel


class Talking(ClassifierModel):
    def on_validation_end(self, validation_cycle: int) -> None:
        super().on_validation_end(validation_cycle)
        hl_logging.get_root_logger().info(f"[Validation {validation_cycle}] from the model")


def test_it_is_the_logger_helios_writes_to() -> None:
    assert hl_logging.get_root_logger() is logging.getLogger("helios")


def test_a_models_messages_reach_the_runs_log_file_beside_helioss(tmp_path: Path) -> None:
    trainer = hlt.Trainer(
        run_name="talk",
        total_steps=2,
        valid_frequency=1,
        print_frequency=6,
        enable_file_logging=True,
        log_root=tmp_path,
        use_cpu=True,
    )
    trainer.fit(Talking("talking"), ClassifierData(size=48))
    lines = (tmp_path / "talk.log").read_text().splitlines()
    ours = [line.split(" INFO ")[1] for line in lines if "from the model" in line]
    assert ours == ["[Validation 1] from the model", "[Validation 2] from the model"]
    assert any("iteration 6" in line for line in lines)  # helios's own progress line
