"""The bad-input matrix as a whole: every public entry point has rows."""

from __future__ import annotations

import collections

from tests.faults.bad_input.parts import (
    Injected,
    Row,
)
from tests.faults.bad_input.test_checkpoints import CHECKPOINT_ROWS
from tests.faults.bad_input.test_data import DATA_ROWS
from tests.faults.bad_input.test_hooks import HOOK_ROWS
from tests.faults.bad_input.test_optuna import OPTUNA_ROWS
from tests.faults.bad_input.test_plugins import PLUGIN_ROWS
from tests.faults.bad_input.test_trainer_args import TRAINER_ROWS
from tests.faults.bad_input.test_trees import TREE_ROWS

ROWS: list[Row] = [
    *TRAINER_ROWS,
    *DATA_ROWS,
    *HOOK_ROWS,
    *CHECKPOINT_ROWS,
    *TREE_ROWS,
    *PLUGIN_ROWS,
    *OPTUNA_ROWS,
]


def test_the_matrix_covers_every_public_entry_point() -> None:
    entries = {row.entry.split(".")[0].split("(")[0] for row in ROWS}
    assert entries >= {
        "Trainer",
        "load_checkpoint",
        "tree_map",
        "to_device",
        "cast",
        "DevicePlugin",
        "PLUGIN_REGISTRY",
        "Registry",
        "OptunaPlugin",
        "Model",
        "DataModule",
        "tune",
    }
    assert len({row.id for row in ROWS}) == len(ROWS), "row ids must be unique"
    counts = collections.Counter(row.error for row in ROWS)
    assert counts[Injected] >= 15
