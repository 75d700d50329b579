"""The functional core: tree-map, pure batch transforms, the registry, training state.

What users compose with lives here; the decisions of the training loop are in
`helios.core.loop`. Nothing here imports the rest of helios.
"""

from helios.core._optional import get_from_optional as get_from_optional
from helios.core._registry import Registry as Registry
from helios.core._state import TrainingState as TrainingState
from helios.core._state import TrainingUnit as TrainingUnit
from helios.core._transforms import BatchTransform as BatchTransform
from helios.core._transforms import DropKeys as DropKeys
from helios.core._transforms import SelectKeys as SelectKeys
from helios.core._transforms import Take as Take
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
    "BatchTransform",
    "DropKeys",
    "Registry",
    "SelectKeys",
    "Take",
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
