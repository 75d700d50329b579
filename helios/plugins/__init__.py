"""Plug-ins: the protocol, the plug-in table, the registry and the built-in plug-ins."""

from helios.core import BatchTransform as BatchTransform
from helios.core import TrainingState as TrainingState
from helios.core import TreeTransform as TreeTransform
from helios.core import cast as cast
from helios.core import compose as compose
from helios.core import drop_keys as drop_keys
from helios.core import identity as identity
from helios.core import select_keys as select_keys
from helios.core import take as take
from helios.core import to_device as to_device
from helios.plugins._builtin import PLUGIN_REGISTRY as PLUGIN_REGISTRY
from helios.plugins._builtin import BatchPlugin as BatchPlugin
from helios.plugins._builtin import CUDAPlugin as CUDAPlugin
from helios.plugins._builtin import DevicePlugin as DevicePlugin
from helios.plugins._builtin import create_plugin as create_plugin
from helios.plugins._plugin import OVERRIDE_FLAGS as OVERRIDE_FLAGS
from helios.plugins._plugin import BatchHooks as BatchHooks
from helios.plugins._plugin import LifecycleHooks as LifecycleHooks
from helios.plugins._plugin import MapLocation as MapLocation
from helios.plugins._plugin import Plugin as Plugin
from helios.plugins._plugin import PluginProtocol as PluginProtocol
from helios.plugins._plugin import StateHooks as StateHooks
from helios.plugins._plugin import StopHook as StopHook
from helios.plugins._plugin import UniquePluginOverrides as UniquePluginOverrides
from helios.plugins._retention import RetentionPlugin as RetentionPlugin
from helios.plugins._retention import retained as retained
from helios.plugins._scalars import ScalarLoggerPlugin as ScalarLoggerPlugin
from helios.plugins._table import PluginTable as PluginTable
from helios.plugins._table import check_plugin as check_plugin
from helios.plugins._table import decides_stop_at_validation as decides_stop_at_validation
from helios.plugins._table import pass_through as pass_through
from helios.plugins._table import register_plugin as register_plugin
from helios.plugins._table import stop_decided_at_validation as stop_decided_at_validation
from helios.plugins._tensorboard import CSVLoggerPlugin as CSVLoggerPlugin
from helios.plugins._tensorboard import TensorBoardPlugin as TensorBoardPlugin
from helios.plugins._watch import RunWatcher as RunWatcher

__all__ = [
    "OVERRIDE_FLAGS",
    "PLUGIN_REGISTRY",
    "BatchHooks",
    "BatchPlugin",
    "BatchTransform",
    "CSVLoggerPlugin",
    "CUDAPlugin",
    "DevicePlugin",
    "LifecycleHooks",
    "MapLocation",
    "Plugin",
    "PluginProtocol",
    "PluginTable",
    "RunWatcher",
    "RetentionPlugin",
    "ScalarLoggerPlugin",
    "StateHooks",
    "StopHook",
    "TensorBoardPlugin",
    "TrainingState",
    "TreeTransform",
    "UniquePluginOverrides",
    "cast",
    "check_plugin",
    "compose",
    "create_plugin",
    "decides_stop_at_validation",
    "drop_keys",
    "identity",
    "pass_through",
    "register_plugin",
    "retained",
    "select_keys",
    "stop_decided_at_validation",
    "take",
    "to_device",
]
