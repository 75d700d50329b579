"""The plug-ins that ship with helios: device movers and the transform carrier."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import torch
from torch.utils.data import DataLoader

from helios._prefetch import PrefetchLoader, notify_once
from helios.core import Registry, TrainingState, TreeTransform, to_device
from helios.plugins._plugin import HOOK_PARAMETERS, Plugin
from helios.plugins._table import check_plugin, pass_through

__all__ = ["PLUGIN_REGISTRY", "BatchPlugin", "CUDAPlugin", "DevicePlugin", "create_plugin"]

B = TypeVar("B")
T = TypeVar("T")


def _check_plugin_class(factory: object) -> None:
    if not isinstance(factory, type):
        raise TypeError(f"only plug-in classes can be registered, got {factory!r}")
    # Data members may be set in __init__; create_plugin checks the instance in full.
    missing = [name for name in HOOK_PARAMETERS if not callable(getattr(factory, name, None))]
    if missing:
        raise TypeError(
            f"{factory.__qualname__} is not a plug-in class: it lacks {', '.join(missing)}"
        )


#: Plug-in classes by class name. Use ``@PLUGIN_REGISTRY`` or ``PLUGIN_REGISTRY.register``.
PLUGIN_REGISTRY: Registry[Plugin] = Registry("plug-in", check=_check_plugin_class)


def create_plugin(type_name: str, /, *args: object, **kwargs: object) -> Plugin:
    """Create a plug-in from its registered class name.

    Raises:
        KeyError: if no plug-in class has that name (the message lists the known names).

    Examples:
        >>> import helios.plugins as hlp
        >>> hlp.create_plugin("DevicePlugin", "cpu").plug_id
        'device'
    """
    plugin = PLUGIN_REGISTRY.create(type_name, *args, **kwargs)
    check_plugin(plugin)
    return plugin


@PLUGIN_REGISTRY.register
class DevicePlugin(Plugin):
    """Moves every tensor of each batch to a device, however deeply it is nested.

    Claims the training, validation and testing batch overrides. With ``device=None`` the
    target is the trainer's device (for distributed runs, the local rank's), which the
    trainer sets before `setup`.

    With ``prefetch=True`` and a CUDA target, each loader's next batch is copied on a
    side stream while the model computes on the current one (see
    `helios.data.PrefetchLoader`); `setup` asks the trainer to wrap its loaders with
    `wrap_loader`. The copy overlaps with compute when the loader pins its batches
    (``pin_memory=True``). On other devices the option changes nothing, and a
    `helios.data.PrefetchWarning` says so once.

    To handle a batch in some special way, subclass and override
    `_move_collection_to_device`; everything else keeps working. With prefetching, the
    override moves each batch in the loader (on the side stream), and the batch hooks
    then call it once more on the moved batch, so it must leave a moved batch as it is
    (the built-in mover does not copy a tensor already on the device).

    Args:
        device: Where to move batches; ``None`` for the trainer's device.
        prefetch: Copy the next batch while the model computes on this one.

    Examples:
        >>> import torch, helios.plugins as hlp
        >>> plugin = hlp.DevicePlugin("cpu")
        >>> out = plugin.process_training_batch({"x": [torch.ones(1)]}, hlp.TrainingState())
        >>> out["x"][0].device
        device(type='cpu')
    """

    plugin_id: ClassVar[str] = "device"

    def __init__(
        self, device: torch.device | str | None = None, *, prefetch: bool = False
    ) -> None:
        super().__init__(type(self).plugin_id)
        if not isinstance(prefetch, bool):
            raise TypeError(f"prefetch must be True or False, got {prefetch!r}")
        self._fixed_device = None if device is None else torch.device(device)
        self._mover_target: torch.device | None = None
        self._mover: TreeTransform = to_device("cpu")
        #: Copy the next batch while the model computes on this one.
        self.prefetch: bool = prefetch
        # The prefetch warnings already given: each is given once per plug-in.
        self._prefetch_warned: set[str] = set()
        self.unique_overrides.training_batch = True
        self.unique_overrides.validation_batch = True
        self.unique_overrides.testing_batch = True

    @property
    def target_device(self) -> torch.device:
        """The device batches are moved to."""
        return self.device if self._fixed_device is None else self._fixed_device

    def setup(self) -> None:
        """With ``prefetch``, have the trainer pass its loaders through `wrap_loader`."""
        if self.prefetch:
            self.trainer.set_loader_wrapper(self.plug_id, self.wrap_loader)

    def wrap_loader(self, loader: DataLoader[T], /) -> DataLoader[T]:
        """Return ``loader`` with its batches prefetched to `target_device`.

        Only with ``prefetch`` set and a CUDA target; otherwise ``loader`` itself (and, for
        another device, a `helios.data.PrefetchWarning` the first time).
        """
        if not self.prefetch:
            return loader
        target = self.target_device
        if target.type != "cuda":
            notify_once(
                self._prefetch_warned,
                "device",
                f"{type(self).__name__}(prefetch=True) changes nothing on {target}: only "
                "copies to a CUDA device can run while the model computes",
            )
            return loader
        return PrefetchLoader(
            loader, target, move=self._move_collection_to_device, warned=self._prefetch_warned
        )

    def _move_collection_to_device(self, batch: Any) -> Any:
        """Return ``batch`` with every tensor on `target_device` (a new batch; the input is
        left alone). Override to handle batches in a special way."""
        target = self.target_device
        if target != self._mover_target:
            self._mover = to_device(target)
            self._mover_target = target
        return self._mover(batch)

    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        return self._move_collection_to_device(batch)

    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        return self._move_collection_to_device(batch)

    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        return self._move_collection_to_device(batch)


@PLUGIN_REGISTRY.register
class CUDAPlugin(DevicePlugin):
    """Moves every tensor of each batch to the trainer's CUDA device.

    Without a trainer-set CUDA device the target is the current CUDA device.
    ``prefetch=True`` copies the next batch while the model computes on this one (see
    `DevicePlugin`).

    Raises:
        RuntimeError: at construction, when CUDA is not available.
    """

    plugin_id: ClassVar[str] = "cuda"

    def __init__(self, *, prefetch: bool = False) -> None:
        if not torch.cuda.is_available():
            raise RuntimeError(
                "CUDAPlugin needs CUDA, which is not available here (torch.cuda.is_available() "
                "is False). Use helios.plugins.DevicePlugin() to move batches to the "
                "trainer's device, whatever it is."
            )
        super().__init__(prefetch=prefetch)
        self.device: torch.device = torch.device("cuda", torch.cuda.current_device())

    def setup(self) -> None:
        if self.device.type != "cuda":
            raise RuntimeError(
                f"CUDAPlugin was set up with device {self.device}; the trainer must train "
                "on a GPU (use_cpu=False) for it. Use DevicePlugin for CPU training."
            )
        super().setup()


def _run(transform: Callable[[Any], Any] | None, batch: Any) -> Any:
    return batch if transform is None else transform(batch)


@PLUGIN_REGISTRY.register
class BatchPlugin(Plugin):
    """Carries one pure transform per phase and claims exactly the phases given.

    Compose several steps with `helios.core.compose` so they share one unique slot.

    Args:
        plug_id: The plug-in's id.
        training: Transform for training batches, or ``None`` to leave the slot free.
        validation: Transform for validation batches, or ``None``.
        testing: Transform for testing batches, or ``None``.

    Raises:
        TypeError: if a transform is not callable.
        ValueError: if no transform is given (the plug-in would never act).

    Examples:
        >>> import torch, helios.core as hlc, helios.plugins as hlp
        >>> plugin = hlp.BatchPlugin(
        ...     "prep", training=hlc.compose(hlc.to_device("cpu"), hlc.take(2)))
        >>> sorted(plugin.unique_overrides.claimed())
        ['training_batch']
        >>> plugin.process_training_batch([1, 2, 3], hlp.TrainingState())
        [1, 2]
    """

    def __init__(
        self,
        plug_id: str,
        *,
        training: Callable[[Any], Any] | None = None,
        validation: Callable[[Any], Any] | None = None,
        testing: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(plug_id)
        for name, transform in (
            ("training", training),
            ("validation", validation),
            ("testing", testing),
        ):
            if transform is not None and not callable(transform):
                raise TypeError(f"BatchPlugin {name}= must be callable, got {transform!r}")
        if training is None and validation is None and testing is None:
            raise ValueError(
                f"BatchPlugin {plug_id!r} was given no transform, so it would never act: pass "
                "training=, validation= and/or testing= (e.g. helios.core.to_device(...))"
            )
        self.training = training
        self.validation = validation
        self.testing = testing
        self.unique_overrides.training_batch = training is not None
        self.unique_overrides.validation_batch = validation is not None
        self.unique_overrides.testing_batch = testing is not None

    @pass_through
    def process_training_batch(self, batch: Any, state: TrainingState, /) -> Any:
        return _run(self.training, batch)

    @pass_through
    def process_validation_batch(self, batch: Any, step: int, /) -> Any:
        return _run(self.validation, batch)

    @pass_through
    def process_testing_batch(self, batch: Any, step: int, /) -> Any:
        return _run(self.testing, batch)
