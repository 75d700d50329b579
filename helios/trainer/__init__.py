"""The trainer, its state, and the helpers for distributed runs."""

from helios.core import TrainingState as TrainingState
from helios.core import TrainingUnit as TrainingUnit
from helios.core.loop import checkpoint_name as checkpoint_name
from helios.core.loop import parse_checkpoint_name as parse_checkpoint_name
from helios.trainer._checkpoint import CheckpointError as CheckpointError
from helios.trainer._checkpoint import find_checkpoints as find_checkpoints
from helios.trainer._checkpoint import load_checkpoint as load_checkpoint
from helios.trainer._distributed import ResultQueue as ResultQueue
from helios.trainer._distributed import WorkerError as WorkerError
from helios.trainer._distributed import reduce_metrics as reduce_metrics
from helios.trainer._trainer import Trainer as Trainer

__all__ = [
    "CheckpointError",
    "ResultQueue",
    "Trainer",
    "TrainingState",
    "TrainingUnit",
    "WorkerError",
    "checkpoint_name",
    "find_checkpoints",
    "load_checkpoint",
    "parse_checkpoint_name",
    "reduce_metrics",
]
