"""The functional core: tree-map, pure batch transforms, the registry, training state.

Nothing here imports the rest of helios.
"""

from helios.core._loop import BatchOutcome as BatchOutcome
from helios.core._loop import EpochOutcome as EpochOutcome
from helios.core._loop import LoopConfig as LoopConfig
from helios.core._loop import ValidationOutcome as ValidationOutcome
from helios.core._loop import after_batch as after_batch
from helios.core._loop import after_epoch as after_epoch
from helios.core._loop import after_validation as after_validation
from helios.core._loop import checkpoint_name as checkpoint_name
from helios.core._loop import is_done as is_done
from helios.core._loop import parse_checkpoint_name as parse_checkpoint_name
from helios.core._optional import get_from_optional as get_from_optional
from helios.core._registry import Registry as Registry
from helios.core._state import TrainingState as TrainingState
from helios.core._state import TrainingUnit as TrainingUnit
from helios.core._state import state_from_dict as state_from_dict
from helios.core._state import state_to_dict as state_to_dict
from helios.core._transforms import BatchTransform as BatchTransform
from helios.core._transforms import TreeTransform as TreeTransform
from helios.core._transforms import cast as cast
from helios.core._transforms import compose as compose
from helios.core._transforms import drop_keys as drop_keys
from helios.core._transforms import identity as identity
from helios.core._transforms import select_keys as select_keys
from helios.core._transforms import take as take
from helios.core._transforms import to_device as to_device
from helios.core._tree import TreeCycleError as TreeCycleError
from helios.core._tree import register_container as register_container
from helios.core._tree import tree_leaves as tree_leaves
from helios.core._tree import tree_map as tree_map

__all__ = [
    "BatchOutcome",
    "EpochOutcome",
    "LoopConfig",
    "ValidationOutcome",
    "after_batch",
    "after_epoch",
    "after_validation",
    "checkpoint_name",
    "is_done",
    "parse_checkpoint_name",
    "state_from_dict",
    "state_to_dict",
    "BatchTransform",
    "Registry",
    "TrainingState",
    "TrainingUnit",
    "TreeCycleError",
    "TreeTransform",
    "cast",
    "compose",
    "drop_keys",
    "get_from_optional",
    "identity",
    "register_container",
    "select_keys",
    "take",
    "to_device",
    "tree_leaves",
    "tree_map",
]
