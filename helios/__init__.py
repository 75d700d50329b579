"""helios: a typed, functional-core library for training PyTorch models with plug-ins."""

from helios._version import __version__ as __version__
from helios.core import TrainingState as TrainingState
from helios.core import TrainingUnit as TrainingUnit
from helios.core import compose as compose
from helios.core import tree_map as tree_map
from helios.data import DataModule as DataModule
from helios.model import Model as Model
from helios.plugins import BatchPlugin as BatchPlugin
from helios.plugins import CUDAPlugin as CUDAPlugin
from helios.plugins import DevicePlugin as DevicePlugin
from helios.plugins import Plugin as Plugin
from helios.plugins import UniquePluginOverrides as UniquePluginOverrides
from helios.trainer import Trainer as Trainer

__all__ = [
    "BatchPlugin",
    "CUDAPlugin",
    "DataModule",
    "DevicePlugin",
    "Model",
    "Plugin",
    "Trainer",
    "TrainingState",
    "TrainingUnit",
    "UniquePluginOverrides",
    "__version__",
    "compose",
    "tree_map",
]
